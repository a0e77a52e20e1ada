"""``fmlearn convert``: a table (CSV, TSV or Parquet) to libFM, libSVM, FFM or RecordIO rows.

Each column named on the command line becomes a block of features, in the table's column
order:

- ``--categorical``: one feature per distinct value (value 1): ids, categories;
- ``--multi``: cells holding several values (``Action|Comedy``), one feature per value;
- ``--numeric``: one feature holding the cell's number.

Features are numbered from 0, a column's values sorted (as numbers when they all are), so
MovieLens' users 1..943 become features 0..942. Each source column is one group of libFM's
``-meta`` file and one field of the FFM format. The vocabulary (which value of which column
is which feature) is written as JSON beside the output; ``--vocabulary`` reads it back to
convert a test table with the same feature ids.

A vocabulary file::

    {"format": "fmlearn-vocabulary", "version": 1, "target": "rating", "n_features": 2626,
     "columns": [{"name": "user", "kind": "categorical", "values": {"1": 0, "2": 1, ...}},
                 {"name": "genres", "kind": "multi", "separator": "|", "values": {...}},
                 {"name": "age", "kind": "numeric", "feature": 2625}]}
"""
import json
import os
from pathlib import Path

import click
import numpy as np

from ._common import CONTEXT, EXIT_USAGE, CommandError, debug_option, file_error, note

#: Output formats by the suffix of OUTPUT (any other: libfm).
SUFFIXES = {".ffm": "ffm", ".svm": "libsvm", ".libsvm": "libsvm", ".recordio": "recordio",
            ".rec": "recordio", ".protobuf": "recordio"}
_KINDS = ("categorical", "multi", "numeric")
_VOCABULARY = "fmlearn-vocabulary"


def _columns(text):
    return [] if text is None else [name.strip() for name in text.split(",") if name.strip()]


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
    roles = {"categorical": _columns(categorical), "multi": _columns(multi),
             "numeric": _columns(numeric)}
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
        groups[_feature_ids(column)] = group
    _write_rows(output, fmt, X, y, groups)
    if meta_path is not None:
        _write_text(meta_path, "".join(f"{g}\n" for g in groups))
    if vocabulary_path is None:
        vocabulary_out = vocabulary_out or os.fspath(Path(output).with_suffix(".vocab.json"))
    if vocabulary_out is not None:
        _write_text(vocabulary_out, json.dumps(vocabulary, indent=1) + "\n")
    for name, count in dropped.items():
        note(f"{count} value{'s' if count != 1 else ''} of {name!r} "
             f"{'are' if count != 1 else 'is'} not in {vocabulary_path}: dropped (their rows "
             "keep their other features)")
    unused = [c for c in frame.columns if c not in kinds and c != target]
    if unused:
        note(f"left out {_count(unused, 'column')}: {', '.join(map(repr, unused))} (name "
             "them in --categorical, --multi or --numeric to use them)")
    sizes = ", ".join(f"{c['name']}: {len(_feature_ids(c))}" for c in vocabulary["columns"])
    note(f"wrote {X.shape[0]} rows and {X.shape[1]} features ({sizes}) to {output} ({fmt})"
         + (f"; the vocabulary to {vocabulary_out}" if vocabulary_out is not None else ""))


def _count(names, noun):
    """``"the 1 column"`` or ``"the 2 columns"``."""
    return f"the {len(names)} {noun}" + ("s" if len(names) != 1 else "")


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


# --- reading the table -------------------------------------------------------------------------
def read_table(path, *, sep=None, names=None):
    """Read a CSV/TSV table (every cell as text) or a Parquet table with pandas.

    Blank lines are skipped. Returns the frame, with a fresh index, and the line of the
    file each row is on (for text tables; the row number, from 1, for Parquet).

    Raises
    ------
    CommandError
        Exit 2 when the file cannot be read, or ``--names`` does not fit it; exit 1 when
        Parquet is asked for without pyarrow.
    DataFormatError
        When pandas cannot parse it.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "u.data"
    >>> _ = path.write_text("196\\t242\\t3\\n\\n186\\t302\\t3\\n")
    >>> frame, lines = read_table(path, sep="\\\\t", names="user,item,rating")
    >>> frame.to_dict("list"), lines.tolist()
    ({'user': ['196', '186'], 'item': ['242', '302'], 'rating': ['3', '3']}, [1, 3])
    """
    import pandas as pd

    from ..io.errors import DataFormatError

    parquet = Path(path).suffix.lower() in (".parquet", ".pq")
    try:
        open(path, "rb").close()
    except OSError as exc:
        raise file_error(path, exc) from exc
    try:
        if parquet:
            if sep is not None or names is not None:
                raise click.UsageError("--sep and --names are for text tables; a Parquet "
                                       "table names its columns.")
            frame = _read_parquet(path)
            first_line = 1
        else:
            sep = {"\\t": "\t", "tab": "\t"}.get(sep, sep)
            if sep is None:
                sep = "\t" if Path(path).suffix.lower() in (".tsv", ".tab") else ","
            frame = pd.read_csv(path, sep=sep, header=None if names else 0, dtype=str,
                                keep_default_na=False, na_values=[""], skip_blank_lines=False,
                                engine="c" if len(sep) == 1 else "python")
            first_line = 1 if names else 2
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"not a table pandas can read ({exc})") from exc
    if names:
        names = _columns(names)
        if len(names) != frame.shape[1] or len(set(names)) != len(names):
            raise CommandError(f"--names gives {len(names)} distinct names but {path} has "
                               f"{_count(frame.columns, 'column')[4:]} (separated by "
                               f"{sep!r}: is --sep right?)", EXIT_USAGE)
        frame.columns = names
    frame.columns = [str(c) for c in frame.columns]
    frame = frame[frame.notna().any(axis=1)]  # blank lines
    if frame.empty:
        raise DataFormatError(path, "the table holds no rows")
    lines = frame.index.to_numpy() + first_line
    return frame.reset_index(drop=True), lines


def _read_parquet(path):
    import importlib.util

    import pandas as pd

    if importlib.util.find_spec("pyarrow") is None:
        raise CommandError(f"cannot read the Parquet table '{path}': reading Parquet needs "
                           "the pyarrow package (pip install pyarrow)")
    return pd.read_parquet(path, engine="pyarrow")


# --- the vocabulary ----------------------------------------------------------------------------
def _cells(series):
    """The non-empty cells of ``series`` as text, by row (integral floats without ``.0``)."""
    cells = series.dropna()
    if cells.dtype.kind == "f" and np.array_equal(cells, np.floor(cells)):
        cells = cells.astype(np.int64)
    return cells.astype(str)


def _values(series, kind, separator):
    """The (row, value) pairs of a categorical or multi-valued column, as a text Series
    indexed by row; a multi-valued cell's repeated values count once."""
    if kind == "categorical":
        return _cells(series)
    cells = series.dropna()
    parts = cells.map(lambda cell: cell.split(separator) if isinstance(cell, str)
                      else [str(v) for v in cell]).explode().dropna().str.strip()
    parts = parts[parts != ""]
    return parts[~parts.reset_index().duplicated().to_numpy()]


def _sorted(values):
    """Distinct values sorted as numbers when they all are, else as text."""
    import pandas as pd

    unique = pd.unique(values)
    numbers = pd.to_numeric(pd.Series(unique), errors="coerce").to_numpy()
    keys = numbers if not np.isnan(numbers).any() else unique.astype(str)
    return unique[np.argsort(keys, kind="stable")].tolist()


def build_vocabulary(frame, kinds, separator="|", target=None):
    """Number the features of the columns of ``frame`` named in ``kinds``, in the frame's
    column order (see the module's documentation).

    Parameters
    ----------
    frame : pandas.DataFrame
    kinds : dict
        Column name → "categorical", "multi" or "numeric".
    separator : str, default="|"
        What separates the values of a multi-valued cell.
    target : str, optional
        The label column, recorded in the vocabulary.

    Returns
    -------
    dict
        The vocabulary, as written to its JSON file.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"user": ["10", "9", "10"], "tags": ["a|b", None, "b"],
    ...                       "age": ["31", "", "40"]})
    >>> vocabulary = build_vocabulary(frame, {"user": "categorical", "tags": "multi",
    ...                                       "age": "numeric"})
    >>> [c.get("values", c.get("feature")) for c in vocabulary["columns"]]
    [{'9': 0, '10': 1}, {'a': 2, 'b': 3}, 4]
    """
    columns, n_features = [], 0
    for name in frame.columns:
        kind = kinds.get(name)
        if kind is None:
            continue
        column = {"name": name, "kind": kind}
        if kind == "numeric":
            column["feature"] = n_features
            n_features += 1
        else:
            values = _sorted(_values(frame[name], kind, separator))
            if kind == "multi":
                column["separator"] = separator
            column["values"] = {v: n_features + i for i, v in enumerate(values)}
            n_features += len(values)
        columns.append(column)
    return {"format": _VOCABULARY, "version": 1, "target": target, "n_features": n_features,
            "columns": columns}


def _feature_ids(column):
    if column["kind"] == "numeric":
        return [column["feature"]]
    return list(column["values"].values())


def read_vocabulary(path):
    """Read and check a vocabulary file written by ``fmlearn convert``.

    Raises ``CommandError`` (exit 2) when it cannot be read and ``DataFormatError`` when it
    is not a vocabulary.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "vocab.json"
    >>> _ = path.write_text(json.dumps({"format": "fmlearn-vocabulary", "version": 1,
    ...     "target": None, "n_features": 2,
    ...     "columns": [{"name": "user", "kind": "categorical", "values": {"a": 0, "b": 1}}]}))
    >>> read_vocabulary(path)["columns"][0]["values"]
    {'a': 0, 'b': 1}
    >>> _ = path.write_text('{"format": "fmlearn-vocabulary", "version": 1, "n_features": 1,'
    ...                     ' "target": null, "columns": [{"name": "x", "kind": "dense"}]}')
    >>> read_vocabulary(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fmlearn.io.errors.DataFormatError: ...vocab.json: column 1 ('x'): the kind 'dense' is not ...
    """
    from ..io.errors import DataFormatError

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise file_error(path, exc) from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not a text file ({exc.reason})") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DataFormatError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != _VOCABULARY:
        raise DataFormatError(path, "not a vocabulary of fmlearn convert (no \"format\": "
                              f"\"{_VOCABULARY}\")")
    n = doc.get("n_features")
    if doc.get("version") != 1 or not isinstance(n, int) or not isinstance(
            doc.get("columns"), list) or not isinstance(doc.get("target"), (str, type(None))):
        raise DataFormatError(path, "a vocabulary needs version 1, an integer n_features, a "
                              "target (a name or null) and a list of columns")
    for i, column in enumerate(doc["columns"], 1):
        problem = _column_problem(column, n)
        if problem:
            name = column.get("name") if isinstance(column, dict) else None
            raise DataFormatError(path, f"column {i} ({name!r}): {problem}")
    return doc


def _column_problem(column, n_features):
    """What is wrong with one column of a vocabulary, or None."""
    if not isinstance(column, dict) or not isinstance(column.get("name"), str):
        return "not an object with a name"
    kind = column.get("kind")
    if kind not in _KINDS:
        return f"the kind {kind!r} is not one of {', '.join(_KINDS)}"
    if kind == "multi" and not isinstance(column.get("separator"), str):
        return "a multi-valued column needs its separator"
    ids = ([column.get("feature")] if kind == "numeric" else
           list(column["values"].values()) if isinstance(column.get("values"), dict) else None)
    if ids is None or not all(isinstance(i, int) and 0 <= i < n_features for i in ids):
        return f"needs feature ids, integers from 0 to n_features - 1 = {n_features - 1}"
    return None


# --- encoding ----------------------------------------------------------------------------------
def parse_numbers(series, name, lines, path, missing="skip"):
    """The numbers of a column as float64 (NaN for empty cells when ``missing="skip"``).

    Raises ``DataFormatError`` naming the line of a cell that is not a finite number, or
    (``missing="error"``) that is empty.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> parse_numbers(pd.Series(["1.5", None, "2"]), "age", np.arange(1, 4), "t.csv").tolist()
    [1.5, nan, 2.0]
    >>> parse_numbers(pd.Series(["1.5", "x"]), "age", np.array([2, 3]), "t.csv")
    Traceback (most recent call last):
    ...
    fmlearn.io.errors.DataFormatError: t.csv, line 3: the column 'age' holds 'x', not a number
    """
    import pandas as pd

    from ..io.errors import DataFormatError

    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers) & (series.notna().to_numpy() | (missing == "error"))
    if bad.any():
        row = int(np.argmax(bad))
        cell = series.iloc[row]
        problem = (f"the column {name!r} is empty" if pd.isna(cell) else
                   f"the column {name!r} holds {cell!r}, not "
                   + ("a finite number" if np.isinf(numbers[row]) else "a number"))
        raise DataFormatError(path, problem, line=int(lines[row]))
    return numbers


def encode(frame, vocabulary, lines, path):
    """The CSR matrix of ``frame``'s rows under ``vocabulary``, and how many values of each
    column it does not hold (dropped).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> vocabulary = build_vocabulary(pd.DataFrame({"u": ["a", "b"]}), {"u": "categorical"})
    >>> X, dropped = encode(pd.DataFrame({"u": ["b", "z"]}), vocabulary, np.arange(2), "t")
    >>> X.toarray().tolist(), dropped
    ([[0.0, 1.0], [0.0, 0.0]], {'u': 1})
    """
    import scipy.sparse as sp

    rows, cols, data, dropped = [], [], [], {}
    for column in vocabulary["columns"]:
        name = column["name"]
        if column["kind"] == "numeric":
            numbers = parse_numbers(frame[name], name, lines, path)
            present = np.flatnonzero(~np.isnan(numbers) & (numbers != 0))
            rows.append(present)
            cols.append(np.full(present.size, column["feature"]))
            data.append(numbers[present])
            continue
        values = _values(frame[name], column["kind"], column.get("separator"))
        ids = values.map(column["values"])
        known = ids.notna().to_numpy()
        if not known.all():
            dropped[name] = int((~known).sum())
        rows.append(values.index.to_numpy()[known])
        cols.append(ids.to_numpy()[known].astype(np.int64))
        data.append(np.ones(int(known.sum())))
    shape = (len(frame), vocabulary["n_features"])
    X = sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                      shape=shape)
    return X, dropped


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
