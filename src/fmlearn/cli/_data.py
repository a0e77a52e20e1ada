"""Data files in and out of the commands: reading rows (with or without labels), loading a
model, writing values, metrics.

The readers of :mod:`fmlearn.io` are imported when a file is read, not before.
"""
import io
import os
import re
from typing import NamedTuple

import click
import numpy as np

from ._common import EXIT_USAGE, CommandError, file_error


class Dataset(NamedTuple):
    """Rows read from a file: ``X`` (CSR), ``y`` (None for rows without labels), FFM
    ``fields`` (or None), path and format.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> Dataset(sp.csr_matrix(np.eye(2)), None, None, "rows.libfm", "libsvm").X.shape
    (2, 2)
    """

    X: "scipy.sparse.csr_matrix"  # noqa: F821 - SciPy is imported when a file is read
    y: np.ndarray | None
    fields: np.ndarray | None
    path: str
    format: str


class Layout(NamedTuple):
    """What the head of a data file says: its ``format``; whether its rows start with a
    label (None for RecordIO, whose records say it themselves); the first data line and
    its first token.

    Examples
    --------
    >>> Layout("libsvm", False, 3, "0:1").labels
    False
    """

    format: str | None
    labels: bool | None
    line: int = 0
    token: str = ""


# --- reading -----------------------------------------------------------------------------------
def sniff(path):
    """The :class:`Layout` of a data file, from its first 64 KiB.

    RecordIO by its magic word; else the first data line decides the labels (a first token
    without ``:`` is a label, ``3:1`` or ``0:3:1`` is a feature) and the first feature
    token the format (``index:value`` is libSVM/libFM, ``field:index:value`` FFM); None
    where the head does not tell.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> files = {"a.svm": b"# c\\n1 3:1 7:0.5\\n", "b.ffm": b"0 1:3:1\\n", "c.svm": b"3:1 7:1\\n"}
    >>> for name, text in files.items():
    ...     _ = (folder / name).write_bytes(text)
    ...     print(name, sniff(folder / name)[:2])
    a.svm ('libsvm', True)
    b.ffm ('ffm', True)
    c.svm ('libsvm', False)
    """
    from ..io.stream import RECORDIO_MAGIC

    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise file_error(path, exc) from exc
    if head.startswith(RECORDIO_MAGIC):
        return Layout("recordio", None)
    first = None
    for number, line in enumerate(head.split(b"\n"), 1):
        tokens = line.split(b"#")[0].split()
        if not tokens:
            continue
        if first is None:
            first = Layout("", b":" not in tokens[0], number, tokens[0].decode(errors="replace"))
        entries = [t for t in tokens[first.labels:] if not t.startswith(b"qid:")]
        if entries:
            return first._replace(format="ffm" if entries[0].count(b":") == 2 else "libsvm")
    return first or Layout(None, None)


def data_files(path):
    """``[path]`` for a file; the visible files of a folder (a SageMaker channel), sorted.

    Raises ``CommandError`` (exit 2) when the path cannot be read or the folder is empty.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("part-1", "part-0", ".hidden"):
    ...     _ = (folder / name).write_text("1 0:1\\n")
    >>> [Path(f).name for f in data_files(folder)]
    ['part-0', 'part-1']
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise file_error(path, FileNotFoundError(2, os.strerror(2)))
        return [path]
    try:
        names = sorted(n for n in os.listdir(path) if not n.startswith("."))
    except OSError as exc:
        raise file_error(path, exc) from exc
    files = [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
    if not files:
        raise CommandError(f"cannot read '{path}': the folder holds no data files", EXIT_USAGE)
    return files


def read_data(path, fmt="auto", *, n_features=None, dtype=np.float32, labels=True,
              tokens=False, vocabulary=None):
    """Read a libSVM/libFM, FFM or RecordIO file (or a folder of them) as a ``Dataset``.

    Text files are read with zero-based feature indices (libFM's convention).

    Parameters
    ----------
    path : str or path
    fmt : {"auto", "libsvm", "ffm", "recordio"}, default="auto"
        "auto": the format of the first file (:func:`sniff`).
    n_features : int, optional
        The width the rows must fit in; by default one more than the largest index.
    dtype : numpy dtype, default=float32
    labels : bool or None, default=True
        True: every row starts with a label (a file whose first token is a feature is an
        error that says so). False: no row has one. None: each file's first data line
        tells. ``y`` is None unless every file has labels.
    tokens : bool, default=False
        FFM files: a column per (field, feature id) token, ``fields`` the vocabulary
        (:func:`fmlearn.io.load_ffm`; the files of a folder share one), for the FFM
        models. Else a column per feature id, an id taking the first field it has.
    vocabulary : ndarray of shape (n_columns, 2), optional
        FFM files: read into these (field, id) columns, dropping other tokens.

    Raises
    ------
    CommandError
        Exit 2 when the file cannot be read; exit 1 when RecordIO support is missing.
    DataFormatError
        For a malformed file, naming the file and line (or record).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "rows.libfm"
    >>> _ = path.write_text("4 0:1 5:1\\n2 1:1 6:1\\n")
    >>> data = read_data(path)
    >>> data.X.shape, data.y.tolist(), data.format
    ((2, 7), [4.0, 2.0], 'libsvm')
    >>> _ = path.write_text("0:1 5:1\\n1:1 6:1\\n")
    >>> read_data(path, labels=None).y is None
    True
    >>> read_data(path.parent / "missing.svm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fmlearn.cli._common.CommandError: cannot read '.../missing.svm': No such file or directory
    """
    import scipy.sparse as sp

    from ..io.errors import DataFormatError

    files = data_files(path)
    layouts = [sniff(f) for f in files]
    if fmt == "auto":
        fmt = layouts[0].format
        if fmt is None:
            raise DataFormatError(files[0], "cannot tell the format: no data line with "
                                  "index:value or field:index:value in the first 64 KiB, and "
                                  "no RecordIO header")
    if fmt == "ffm" and tokens and vocabulary is None and len(files) > 1:
        from ..io.ffm import merge_vocabularies

        vocabulary = merge_vocabularies([_read_one(f, fmt, layout, None, dtype, labels,
                                                   True, None).fields
                                         for f, layout in zip(files, layouts)])
    parts = [_read_one(f, fmt, layout, n_features, dtype, labels, tokens, vocabulary)
             for f, layout in zip(files, layouts)]
    if len(parts) == 1 or (fmt == "ffm" and vocabulary is not None):
        if len(parts) > 1:
            parts = [parts[0]._replace(X=sp.vstack([p.X for p in parts], format="csr"),
                                       y=None if any(p.y is None for p in parts)
                                       else np.concatenate([p.y for p in parts]))]
        return parts[0]._replace(path=os.fspath(path))
    width = max(p.X.shape[1] for p in parts)
    X = sp.vstack([widen(p, width).X for p in parts], format="csr")
    fields = None
    if fmt == "ffm":
        fields = np.full(width, -1, dtype=np.int32)
        for p in reversed(parts):  # the first file that has a feature names its field
            seen = p.fields >= 0
            fields[:seen.size][seen] = p.fields[seen]
    y = None if any(p.y is None for p in parts) else np.concatenate([p.y for p in parts])
    return Dataset(X, y, fields, os.fspath(path), fmt)


def _read_one(path, fmt, layout, n_features, dtype, labels, tokens=False, vocabulary=None):
    from ..io import load_ffm, load_libsvm
    from ..io.errors import DataFormatError

    if fmt == "recordio":
        return _read_recordio(path, n_features, dtype, labels)
    if labels and layout.labels is False:
        raise DataFormatError(path, f"the rows have no labels: the first token, "
                              f"{layout.token!r}, is a feature (this command needs a label "
                              "first on every line)", line=layout.line)
    if labels is False and layout.labels:
        raise DataFormatError(path, f"the rows have labels: the first token, {layout.token!r}, "
                              "is not a feature (leave out --no-labels)", line=layout.line)
    labelled = layout.labels if labels is None else labels
    source = path if labelled is not False else _with_zero_labels(path)
    try:
        if fmt == "libsvm":
            X, y = load_libsvm(source, n_features=n_features, zero_based=True, dtype=dtype)
            fields = None
        elif tokens or vocabulary is not None:  # a column per (field, id), as LIBFFM reads
            X, y, fields = load_ffm(source, zero_based=True, vocabulary=vocabulary, dtype=dtype)
        else:
            # Hashed FFM files may hold one feature id in two fields; keep the first.
            X, y, fields = load_ffm(source, n_features=n_features, zero_based=True,
                                    field_conflicts="first", dtype=dtype)
    except OSError as exc:
        raise file_error(path, exc) from exc
    except DataFormatError as exc:
        if source is path or exc.column is None:
            raise
        raise DataFormatError(exc.path, exc.problem, line=exc.line,
                              column=exc.column - 2) from None  # without the "0 " added
    return Dataset(X, y if labelled is not False else None, fields, path, fmt)


def _with_zero_labels(path):
    """The file's bytes with the label ``0`` put before every data line, as a named file
    object: the readers take rows with labels only. Lines keep their numbers; columns move
    by two."""
    try:
        with open(path, "rb") as fh:
            text = fh.read()
    except OSError as exc:
        raise file_error(path, exc) from exc
    source = io.BytesIO(re.sub(rb"(?m)^(?=[ \t]*[^\s#])", b"0 ", text))
    source.name = os.fspath(path)
    return source


def _read_recordio(path, n_features, dtype, labels):
    import scipy.sparse as sp

    from ..io.errors import DataFormatError

    try:
        from ..io.recordio import load_recordio
    except ImportError as exc:
        raise CommandError(f"cannot read RecordIO file '{path}': {exc} (pip install "
                           "'fmlearn[recordio]')") from exc
    X, y = load_recordio(path, n_features=n_features, dtype=dtype)
    if y is None and labels:
        raise DataFormatError(path, "the records hold no labels")
    y = None if y is None or labels is False else np.asarray(y, dtype=np.float64)
    data = Dataset(sp.csr_matrix(X, dtype=dtype), y, None, path, "recordio")
    return widen(data, n_features) if n_features is not None else data


def widen(data, n_features, why=None):
    """``data`` with ``X`` padded by empty columns to ``n_features`` columns.

    Raises ``DataFormatError`` when ``X`` is wider than that.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> data = Dataset(sp.csr_matrix(np.eye(2)), np.ones(2), None, "x.svm", "libsvm")
    >>> widen(data, 5).X.shape
    (2, 5)
    """
    import scipy.sparse as sp

    from ..io.errors import DataFormatError

    X = data.X
    if X.shape[1] > n_features:
        raise DataFormatError(data.path, f"the rows have {X.shape[1]} features, more than "
                              f"{why or f'the {n_features} expected'}")
    if X.shape[1] == n_features:
        return data
    fields = data.fields
    if fields is not None:
        fields = np.concatenate([fields, np.full(n_features - fields.size, -1, fields.dtype)])
    X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_features))
    return data._replace(X=X, fields=fields)


def read_for_model(estimator, path, fmt, labels=True):
    """Read ``path`` as rows for a fitted ``estimator``: its width and dtype (``labels`` as in
    :func:`read_data`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> reg = FMRegressor(max_iter=2, random_state=0).fit(np.eye(4), [1.0, 2.0, 3.0, 4.0])
    >>> path = Path(tempfile.mkdtemp()) / "rows.libfm"
    >>> _ = path.write_text("0 1:1\\n0 9:1\\n")
    >>> read_for_model(reg, path, "auto")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fmlearn.io.errors.DataFormatError: ...line 2: ...: the model was trained on 4 features
    """
    from ..io.errors import DataFormatError

    n = estimator.n_features_in_
    why = f"the {n} features the model was trained on"
    dtype = np.dtype(estimator.dtype)
    kind = sniff(data_files(path)[0]).format if fmt == "auto" else fmt
    # A model of (field, id) columns reads FFM rows by its vocabulary: its fields.
    fields = getattr(estimator, "fields", None)
    vocabulary = np.asarray(fields) if kind == "ffm" and np.ndim(fields) == 2 else None
    try:
        data = read_data(path, fmt, n_features=None if kind == "recordio" else n, dtype=dtype,
                         labels=labels, vocabulary=vocabulary)
    except DataFormatError as exc:
        if "out of range for n_features" not in exc.problem:
            raise
        raise DataFormatError(exc.path, f"{exc.problem}: the model was trained on {n} features",
                              line=exc.line) from exc
    return widen(data, n, why)


def load_model(path):
    """``fmlearn.load(path)`` (``fmlearn.sagemaker.load_model`` for a SageMaker
    ``model.tar.gz``), with a missing or unreadable file as a ``CommandError`` (exit 2).

    Examples
    --------
    >>> load_model("no-such-model.fm")
    Traceback (most recent call last):
    ...
    fmlearn.cli._common.CommandError: cannot read 'no-such-model.fm': No such file or directory
    """
    from .. import load
    from ..sagemaker.artifact import is_model_tarball, load_model as load_tarball

    try:
        return (load_tarball if is_model_tarball(path) else load)(path)
    except OSError as exc:
        raise file_error(path, exc) from exc


def check_readable(*paths):
    """Raise the ``CommandError`` (exit 2) of the first path that cannot be opened, before
    any library is loaded for reading it.

    Examples
    --------
    >>> check_readable("no-such-model.fm")
    Traceback (most recent call last):
    ...
    fmlearn.cli._common.CommandError: cannot read 'no-such-model.fm': No such file or directory
    """
    for path in paths:
        first = data_files(path)[0]
        try:
            open(first, "rb").close()
        except OSError as exc:
            raise file_error(first, exc) from exc


# --- writing -----------------------------------------------------------------------------------
def write_values(path, values):
    """Write one value per line to ``path`` (``"-"`` is stdout), each with the fewest digits
    that read back to the same number of its dtype.

    Examples
    --------
    >>> import numpy as np
    >>> write_values("-", np.array([0.1, 2.5], dtype=np.float32))
    0.1
    2.5
    """
    values = np.asarray(values)
    text = "".join(f"{v!s}\n" for v in values)  # str(): numpy's shortest repr per dtype
    if os.fspath(path) == "-":
        click.echo(text, nl=False)
        return
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise file_error(path, exc, "write") from exc


# --- scores ------------------------------------------------------------------------------------
def predictions(estimator, X, proba, relations=None):
    """``predict``, or with ``proba`` the probability of the second class (classifiers);
    ``relations`` those of the rows, for a model fitted with relations.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMClassifier
    >>> clf = FMClassifier(max_iter=2, random_state=0).fit(np.eye(2), [0, 1])
    >>> predictions(clf, np.eye(2), proba=True).shape
    (2,)
    """
    extra = {} if relations is None else {"relations": relations}
    if hasattr(estimator, "predict_expected"):  # ordinal: the expected value of the classes
        return estimator.predict_expected(X)
    if proba and hasattr(estimator, "classes_"):
        return estimator.predict_proba(X, **extra)[:, 1]
    return estimator.predict(X, **extra)


def binarize(y, classes):
    """Targets as ``classes``: kept where they already are, else ``> 0`` → ``classes[1]``.

    Examples
    --------
    >>> import numpy as np
    >>> binarize(np.array([0.0, 1.0, 5.0]), np.array([-1.0, 1.0])).tolist()
    [-1.0, 1.0, 1.0]
    """
    y = np.asarray(y)
    if np.isin(y, classes).all():
        return y
    return np.where(y > 0, classes[1], classes[0])


def metrics(estimator, X, y, relations=None):
    """Metrics of a fitted estimator on ``(X, y)`` (with its ``relations``, for a model fitted
    with relations): RMSE and MAE for a regressor; accuracy, log-loss (natural log) and ROC
    AUC (None when ``y`` holds one class) for a classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> reg = FMRegressor(max_iter=3, random_state=0).fit(np.eye(3), [1.0, 2.0, 3.0])
    >>> sorted(metrics(reg, np.eye(3), [1.0, 2.0, 3.0]))
    ['mae', 'rmse']
    """
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    y = np.asarray(y)
    if hasattr(estimator, "predict_expected"):  # ordinal: errors of the expected value
        err = estimator.predict_expected(X) - y
        return {"rmse": float(np.sqrt(np.mean(err * err))), "mae": float(np.mean(np.abs(err))),
                "accuracy": float(np.mean(estimator.predict(X) == y))}
    if not hasattr(estimator, "classes_"):
        err = predictions(estimator, X, False, relations).astype(np.float64) - y
        return {"rmse": float(np.sqrt(np.mean(err * err))), "mae": float(np.mean(np.abs(err)))}
    classes = estimator.classes_
    y = binarize(y, classes)
    proba = estimator.predict_proba(X, **({} if relations is None else {"relations": relations}))
    positive = y == classes[1]
    auc = float(roc_auc_score(positive, proba[:, 1])) if 0 < positive.sum() < y.size else None
    return {"accuracy": float(accuracy_score(y, classes[(proba[:, 1] > proba[:, 0]).astype(int)])),
            "logloss": float(log_loss(y, proba, labels=classes)),
            "auc": auc}


def format_metric(value):
    """A metric for printing: six decimals, or ``nan`` for None.

    Examples
    --------
    >>> format_metric(0.91234567), format_metric(None)
    ('0.912346', 'nan')
    """
    return "nan" if value is None else f"{value:.6f}"
