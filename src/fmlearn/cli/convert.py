"""``fmlearn convert``: a table (CSV, TSV or Parquet) to libFM, libSVM, FFM or RecordIO rows.

Each column named on the command line becomes a block of features, in the table's column
order:

- ``--categorical``: one feature per distinct value (value 1): ids, categories;
- ``--multi``: cells holding several values (``Action|Comedy``), one feature per value;
- ``--numeric``: one feature holding the cell's number.

Features are numbered from 0, a column's values sorted (as numbers when they all are), so
MovieLens' users 1..943 become features 0..942. Each source column is one group of libFM's
``-meta`` file and one field of the FFM format. The vocabulary (which value of which column
is which feature, :mod:`fmlearn.cli._tables`) is written as JSON beside the output;
``--vocabulary`` reads it back to convert a test table with the same feature ids.
"""
import json
import os
from pathlib import Path

import click
import numpy as np

from ._common import CONTEXT, EXIT_USAGE, CommandError, debug_option, file_error, note
from ._tables import (build_vocabulary, count, encode, feature_ids, parse_numbers, read_table,
                      read_vocabulary, split_names)

#: Output formats by the suffix of OUTPUT (any other: libfm).
SUFFIXES = {".ffm": "ffm", ".svm": "libsvm", ".libsvm": "libsvm", ".recordio": "recordio",
            ".rec": "recordio", ".protobuf": "recordio"}


@click.command(context_settings=CONTEXT,
               short_help="Convert a CSV/TSV/Parquet table to libFM, libSVM, FFM or RecordIO.")
@click.argument("table")
@click.argument("output")
@click.option("--to", "to", type=click.Choice(["libfm", "libsvm", "ffm", "recordio"]),
              help="Output format; libsvm numbers features from 1, the others from 0.  "
                   "[default: by OUTPUT's suffix: .ffm, .svm/.libsvm, .recordio/.rec/.protobuf; "
                   "else libfm]")
@click.option("--sep", metavar="TEXT",
              help="Column separator of a text table; '\\t' or 'tab' for a tab.  [default: a "
                   "tab for .tsv and .tab files, else ',']")
@click.option("--names", metavar="A,B,...",
              help="Column names, for a table without a header line.")
@click.option("--target", metavar="COLUMN",
              help="The label column (numbers). Without it every label is 0: rows for "
                   "fmlearn predict.")
@click.option("--categorical", metavar="A,B,...",
              help="Columns of ids or categories: one feature (value 1) per distinct value.")
@click.option("--multi", metavar="A,B,...",
              help="Columns holding several values per cell, split at --multi-sep: one "
                   "feature (value 1) per value.")
@click.option("--multi-sep", "multi_sep", default="|", show_default=True, metavar="TEXT",
              help="What separates the values of a --multi cell.")
@click.option("--numeric", metavar="A,B,...",
              help="Columns of numbers: one feature each, holding the cell's value.")
@click.option("--meta", "meta_path", metavar="FILE",
              help="Also write libFM's -meta groups file: the group of each feature, one per "
                   "line, a group per source column.")
@click.option("--vocabulary", "vocabulary_path", metavar="FILE",
              help="Number the features as an earlier conversion did (its vocabulary file), "
                   "e.g. for a test table; it also names the columns and their kinds. Values "
                   "not in it are dropped: the row keeps its other features (a note counts "
                   "them).")
@click.option("--vocabulary-out", "vocabulary_out", metavar="FILE",
              help="Where to write the vocabulary.  [default: OUTPUT with the suffix "
                   ".vocab.json; none with --vocabulary]")
@debug_option
def convert(table, output, to, sep, names, target, categorical, multi, multi_sep, numeric,
            meta_path, vocabulary_path, vocabulary_out):
    """Convert TABLE (CSV, TSV or Parquet) to OUTPUT, a libFM, libSVM, FFM or RecordIO file.

    Each column named by --categorical, --multi or --numeric becomes features (other
    columns are left out); --target is the label. Empty cells give no feature. Each source
    column is one -meta group (--meta) and one FFM field. The vocabulary (which value of
    which column is which feature) is written beside OUTPUT; --vocabulary reads it back to
    convert another table, e.g. the test rows, with the same feature ids.

    \b
    fmlearn convert ../shared/data/ml-100k/u.data ml.libfm --sep '\\t' \\
        --names user,item,rating,ts --categorical user,item --target rating --meta ml.groups
    fmlearn convert test.csv test.libfm --vocabulary ml.vocab.json

    Parquet tables need pyarrow (pip install pyarrow).
    \f

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from click.testing import CliRunner
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "r.csv").write_text("user,movie,genres,stars\\n7,m1,Drama|War,4\\n"
    ...                                   "3,m2,,5\\n7,m2,Drama,1\\n")
    >>> result = CliRunner().invoke(convert, [str(folder / "r.csv"), str(folder / "r.libfm"),
    ...     "--categorical", "user,movie", "--multi", "genres", "--target", "stars"])
    >>> print((folder / "r.libfm").read_text(), end="")
    4 1:1 2:1 4:1 5:1
    5 0:1 3:1
    1 1:1 3:1 4:1
    """
    fmt = to or SUFFIXES.get(Path(output).suffix.lower(), "libfm")
    roles = {"categorical": split_names(categorical), "multi": split_names(multi),
             "numeric": split_names(numeric)}
    if vocabulary_path is not None:
        given = [f"--{kind}" for kind, named in roles.items() if named]
        given += ["--multi-sep"] if multi_sep != "|" else []
        if given:
            raise click.UsageError(f"{', '.join(given)} cannot be combined with --vocabulary, "
                                   "which names the columns and their kinds.")
        vocabulary = read_vocabulary(vocabulary_path)
    else:
        _check_roles(roles, target)
        vocabulary = None
    frame, lines = read_table(table, sep=sep, names=names)
    kinds = ({c["name"]: c["kind"] for c in vocabulary["columns"]} if vocabulary is not None
             else {name: kind for kind, named in roles.items() for name in named})
    _check_present(frame, table, kinds, target, vocabulary_path)
    if target is None and vocabulary is not None:
        target = vocabulary["target"]  # a test table may lack it: then the labels are 0
    if vocabulary is None:
        vocabulary = build_vocabulary(frame, kinds, multi_sep, target)
    X, dropped = encode(frame, vocabulary, lines, table)
    if target is not None and target in frame.columns:
        y = parse_numbers(frame[target], target, lines, table, missing="error")
    else:
        if target is not None:
            note(f"{table} has no column {target!r}: every label is 0")
        y = np.zeros(len(frame))
    groups = np.zeros(vocabulary["n_features"], dtype=np.int64)
    for group, column in enumerate(vocabulary["columns"]):
        groups[feature_ids(column)] = group
    _write_rows(output, fmt, X, y, groups)
    if meta_path is not None:
        _write_text(meta_path, "".join(f"{g}\n" for g in groups))
    if vocabulary_path is None:
        vocabulary_out = vocabulary_out or os.fspath(Path(output).with_suffix(".vocab.json"))
    if vocabulary_out is not None:
        _write_text(vocabulary_out, json.dumps(vocabulary, indent=1) + "\n")
    for name, n in dropped.items():
        note(f"{n} value{'s' if n != 1 else ''} of {name!r} "
             f"{'are' if n != 1 else 'is'} not in {vocabulary_path}: dropped (their rows "
             "keep their other features)")
    unused = [c for c in frame.columns if c not in kinds and c != target]
    if unused:
        note(f"left out {count(unused, 'column')}: {', '.join(map(repr, unused))} (name "
             "them in --categorical, --multi or --numeric to use them)")
    sizes = ", ".join(f"{c['name']}: {len(feature_ids(c))}" for c in vocabulary["columns"])
    note(f"wrote {X.shape[0]} rows and {X.shape[1]} features ({sizes}) to {output} ({fmt})"
         + (f"; the vocabulary to {vocabulary_out}" if vocabulary_out is not None else ""))


def _check_roles(roles, target):
    seen = {}
    for kind, named in roles.items():
        for name in named:
            if name in seen:
                raise click.UsageError(f"the column {name!r} is named by --{seen[name]} and "
                                       f"--{kind}; give each column one kind.")
            seen[name] = kind
    if not seen:
        raise click.UsageError("name the columns to convert: --categorical, --multi or "
                               "--numeric.")
    if target in seen:
        raise click.UsageError(f"the target {target!r} cannot also be a feature "
                               f"(--{seen[target]}).")


def _check_present(frame, table, kinds, target, vocabulary_path):
    missing = [name for name in kinds if name not in frame.columns]
    if missing:
        by = f"the vocabulary {vocabulary_path}" if vocabulary_path else "the command line"
        raise CommandError(f"{table} has no column {' or '.join(map(repr, missing))} (named "
                           f"by {by}); its columns: {', '.join(map(str, frame.columns))}",
                           EXIT_USAGE)
    if target is not None and target not in frame.columns:
        raise CommandError(f"{table} has no column {target!r} (--target); its columns: "
                           f"{', '.join(map(str, frame.columns))}", EXIT_USAGE)


# --- writing -----------------------------------------------------------------------------------
def _integral(values):
    """``values`` as int64 when they are all whole numbers (so that 5.0 is written 5)."""
    if values.size and np.array_equal(values, np.round(values)) and np.abs(values).max() < 2**53:
        return values.astype(np.int64)
    return values


def _write_rows(path, fmt, X, y, groups):
    from ..io import dump_ffm, dump_libsvm, dump_recordio

    X = X.astype(np.int64) if _integral(X.data).dtype == np.int64 else X
    y = _integral(y)
    try:
        if fmt == "ffm":
            dump_ffm(X, y, groups, path)
        elif fmt == "recordio":
            dump_recordio(X, y, path)
        else:
            dump_libsvm(X, y, path, zero_based=fmt == "libfm")
    except OSError as exc:
        raise file_error(path, exc, "write") from exc


def _write_text(path, text):
    from .._files import write_atomically

    try:
        write_atomically(path, lambda handle: handle.write(text.encode()))
    except OSError as exc:
        raise file_error(path, exc, "write") from exc


__test__ = {"convert_command": convert.callback}
