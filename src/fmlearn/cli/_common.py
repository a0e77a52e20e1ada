"""What the commands share: errors and exit codes, reading data files, writing values, metrics."""
import os
from dataclasses import dataclass, field
from typing import NamedTuple

import click
import numpy as np
import scipy.sparse as sp

from ..io.errors import DataFormatError
from ..io.stream import detect_format

#: Exit statuses of the ``fmlearn`` command.
EXIT_OK = 0
EXIT_FAILURE = 1  # training or prediction failed (diverged, a missing optional dependency, ...)
EXIT_USAGE = 2  # a bad flag or value, or a file that cannot be read or written
EXIT_DATA = 65  # a malformed data, groups, hyperparameters or model file (sysexits' EX_DATAERR)

FORMATS = ("auto", "libsvm", "ffm", "recordio")


class CommandError(click.ClickException):
    """An error a shell user can act on: ``fmlearn: error: <message>`` and an exit status.

    Parameters
    ----------
    message : str
        What went wrong and, where it helps, what to do.
    exit_code : int, default=1
        The exit status (see the ``EXIT_*`` constants of this module).

    Examples
    --------
    >>> import io
    >>> err = CommandError("cannot read 'x.svm': No such file or directory", exit_code=2)
    >>> stream = io.StringIO(); err.show(stream); print(stream.getvalue(), end="")
    fmlearn: error: cannot read 'x.svm': No such file or directory
    >>> err.exit_code
    2
    """

    def __init__(self, message, exit_code=EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None):
        """Write ``fmlearn: error: <message>`` to ``file`` (default: stderr)."""
        click.echo(f"fmlearn: error: {self.format_message()}", file=file, err=file is None)


def file_error(path, exc, verb="read"):
    """The ``CommandError`` (exit 2) for an ``OSError`` on ``path``.

    Examples
    --------
    >>> print(file_error("x.svm", FileNotFoundError(2, "No such file or directory")))
    cannot read 'x.svm': No such file or directory
    """
    reason = exc.strerror or str(exc)
    return CommandError(f"cannot {verb} '{os.fspath(path)}': {reason}", EXIT_USAGE)


def note(message):
    """Print ``fmlearn: note: <message>`` on stderr.

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     note("-cache_size is ignored")
    >>> err.getvalue()
    'fmlearn: note: -cache_size is ignored\\n'
    """
    click.echo(f"fmlearn: note: {message}", err=True)


def warn(message):
    """Print ``fmlearn: warning: <message>`` on stderr.

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     warn("eps is ignored")
    >>> err.getvalue()
    'fmlearn: warning: eps is ignored\\n'
    """
    click.echo(f"fmlearn: warning: {message}", err=True)


@dataclass
class TrainSpec:
    """What a command line or a hyperparameter file asks ``train`` to fit.

    Attributes
    ----------
    task : {"regression", "classification"}
    params : dict
        Keyword arguments of :class:`~fmlearn.FMRegressor` or :class:`~fmlearn.FMClassifier`.
    negative_label : float
        The label rows with a target ``<= 0`` get for classification (libFM: -1,
        SageMaker: 0); the others get 1.
    n_features : int or None
        A width the data must fit in (SageMaker's ``feature_dim``).
    notes : list of str
        What was mapped loosely or ignored, printed before training.
    """

    task: str
    params: dict
    negative_label: float = -1.0
    n_features: int | None = None
    notes: list = field(default_factory=list)

    def estimator(self):
        """The unfitted estimator.

        Examples
        --------
        >>> TrainSpec("regression", {"n_factors": 4}).estimator()
        FMRegressor(n_factors=4)
        """
        from .. import FMClassifier, FMRegressor

        cls = FMRegressor if self.task == "regression" else FMClassifier
        return cls(**self.params)


class Dataset(NamedTuple):
    """Rows read from a file: ``X`` (CSR), ``y``, FFM ``fields`` (or None), path and format."""

    X: sp.csr_matrix
    y: np.ndarray
    fields: np.ndarray | None
    path: str
    format: str


# --- reading -----------------------------------------------------------------------------------
def sniff_format(path):
    """The format of a data file (or of the first file of a folder): by RecordIO's magic
    word, else by the shape of the first feature token: ``index:value`` is libSVM/libFM,
    ``field:index:value`` is FFM.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name, text in [("a.svm", b"# c\\n1 3:1 7:0.5\\n"), ("b.ffm", b"0 1:3:1\\n")]:
    ...     _ = (folder / name).write_bytes(text)
    ...     print(name, sniff_format(folder / name))
    a.svm libsvm
    b.ffm ffm
    """
    return detect_format(data_files(path)[0])


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


def read_data(path, fmt="auto", *, n_features=None, dtype=np.float32):
    """Read a libSVM/libFM, FFM or RecordIO file (or a folder of them) as a ``Dataset``.

    Text files are read with zero-based feature indices (libFM's convention).

    Parameters
    ----------
    path : str or path
    fmt : {"auto", "libsvm", "ffm", "recordio"}, default="auto"
    n_features : int, optional
        The width the rows must fit in; by default one more than the largest index.
    dtype : numpy dtype, default=float32

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
    >>> read_data(path.parent / "missing.svm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fmlearn.cli._common.CommandError: cannot read '.../missing.svm': No such file or directory
    """
    files = data_files(path)
    if fmt == "auto":
        fmt = sniff_format(files[0])
    parts = [_read_one(f, fmt, n_features, dtype) for f in files]
    if len(parts) == 1:
        return parts[0]._replace(path=os.fspath(path))
    width = max(p.X.shape[1] for p in parts)
    X = sp.vstack([widen(p, width).X for p in parts], format="csr")
    fields = None
    if fmt == "ffm":
        fields = np.full(width, -1, dtype=np.int32)
        for p in reversed(parts):  # the first file that has a feature names its field
            seen = p.fields >= 0
            fields[:seen.size][seen] = p.fields[seen]
    return Dataset(X, np.concatenate([p.y for p in parts]), fields, os.fspath(path), fmt)


def _read_one(path, fmt, n_features, dtype):
    from ..io import load_ffm, load_libsvm

    try:
        if fmt == "libsvm":
            X, y = load_libsvm(path, n_features=n_features, zero_based=True, dtype=dtype)
            return Dataset(X, y, None, path, fmt)
        if fmt == "ffm":
            # Hashed FFM files may hold one feature id in two fields; keep the first.
            X, y, fields = load_ffm(path, n_features=n_features, zero_based=True,
                                    field_conflicts="first", dtype=dtype)
            return Dataset(X, y, fields, path, fmt)
        return _read_recordio(path, n_features, dtype)
    except OSError as exc:
        raise file_error(path, exc) from exc


def _read_recordio(path, n_features, dtype):
    try:
        from ..io.recordio import load_recordio
    except ImportError as exc:
        raise CommandError(f"cannot read RecordIO file '{path}': {exc} (pip install "
                           "'fmlearn[recordio]')") from exc
    X, y = load_recordio(path, n_features=n_features, dtype=dtype)
    if y is None:
        raise DataFormatError(path, "the records hold no labels")
    data = Dataset(sp.csr_matrix(X, dtype=dtype), np.asarray(y, dtype=np.float64), None, path,
                   "recordio")
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


def read_for_model(estimator, path, fmt):
    """Read ``path`` as rows for a fitted ``estimator``: its width and dtype.

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
    n = estimator.n_features_in_
    why = f"the {n} features the model was trained on"
    dtype = np.dtype(estimator.dtype)
    fmt = sniff_format(path) if fmt == "auto" else fmt
    try:
        data = read_data(path, fmt, n_features=None if fmt == "recordio" else n, dtype=dtype)
    except DataFormatError as exc:
        if "out of range for n_features" not in exc.problem:
            raise
        raise DataFormatError(exc.path, f"{exc.problem}: the model was trained on {n} features",
                              line=exc.line) from exc
    return widen(data, n, why)


def load_model(path):
    """``fmlearn.load(path)``, with a missing or unreadable file as a ``CommandError`` (exit 2).

    Examples
    --------
    >>> load_model("no-such-model.fm")
    Traceback (most recent call last):
    ...
    fmlearn.cli._common.CommandError: cannot read 'no-such-model.fm': No such file or directory
    """
    from .. import load

    try:
        return load(path)
    except OSError as exc:
        raise file_error(path, exc) from exc


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


# --- metrics -----------------------------------------------------------------------------------
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


def metrics(estimator, X, y):
    """Metrics of a fitted estimator on ``(X, y)``: RMSE and MAE for a regressor; accuracy,
    log-loss (natural log) and ROC AUC (None when ``y`` holds one class) for a classifier.

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
    if not hasattr(estimator, "classes_"):
        err = estimator.predict(X).astype(np.float64) - y
        return {"rmse": float(np.sqrt(np.mean(err * err))), "mae": float(np.mean(np.abs(err)))}
    classes = estimator.classes_
    y = binarize(y, classes)
    proba = estimator.predict_proba(X)
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
