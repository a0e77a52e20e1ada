"""Tables to features for ``fmlearn convert``: reading a CSV/TSV/Parquet table, the
vocabulary (which value of which column is which feature), and the rows under it.

Features are numbered from 0, column by column in the table's order, a column's values sorted
(as numbers when they all are), so MovieLens' users 1..943 become features 0..942. A
vocabulary file::

    {"format": "fmlearn-vocabulary", "version": 1, "target": "rating", "n_features": 2626,
     "columns": [{"name": "user", "kind": "categorical", "values": {"1": 0, "2": 1, ...}},
                 {"name": "genres", "kind": "multi", "separator": "|", "values": {...}},
                 {"name": "age", "kind": "numeric", "feature": 2625}]}

pandas and SciPy are imported when a table is read.
"""
import json
from pathlib import Path

import click
import numpy as np

from ._common import EXIT_USAGE, CommandError, file_error

_KINDS = ("categorical", "multi", "numeric")
_VOCABULARY = "fmlearn-vocabulary"


def split_names(text):
    """The names of a comma-separated list (``--categorical user,item``).

    Examples
    --------
    >>> split_names("user, item,"), split_names(None)
    (['user', 'item'], [])
    """
    return [] if text is None else [name.strip() for name in text.split(",") if name.strip()]


def count(names, noun):
    """``"the 1 column"`` or ``"the 2 columns"``.

    Examples
    --------
    >>> count(["ts"], "column")
    'the 1 column'
    """
    return f"the {len(names)} {noun}" + ("s" if len(names) != 1 else "")


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
        names = split_names(names)
        if len(names) != frame.shape[1] or len(set(names)) != len(names):
            raise CommandError(f"--names gives {len(names)} distinct names but {path} has "
                               f"{count(frame.columns, 'column')[4:]} (separated by "
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


def feature_ids(column):
    """The features of one column of a vocabulary.

    Examples
    --------
    >>> feature_ids({"name": "u", "kind": "categorical", "values": {"a": 3, "b": 4}})
    [3, 4]
    """
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
