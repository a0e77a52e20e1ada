"""Training on files larger than memory: chunks read ahead on a second thread into ``partial_fit``."""
from __future__ import annotations

import copy
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from sklearn.base import clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .._validation import as_fm_csr
from ._shuffle import chunk_spans, iter_spans, pooled
from ._text import describe
from .errors import DataFormatError

if TYPE_CHECKING:
    from .._typing import CSRMatrix, MatrixLike, StrPath

T = TypeVar("T")

STREAM_BLOCK_BYTES = 16 * 2**20
RECORDIO_MAGIC = b"\x0a\x23\xd7\xce"  # 0xced7230a, little-endian
FORMATS = ("libsvm", "ffm", "recordio")
PIECES = 16  # pieces of a file read in shuffled order that make one partial_fit call


def detect_format(path: StrPath) -> str:
    """Guess a data file's format: ``"recordio"`` by its magic number, else by its first data line.

    A line whose second token has two colons (``field:index:value``) is FFM;
    one colon is libSVM / libFM.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.txt")
    >>> _ = open(path, "w").write("# a comment\\n1 0:3:1 1:7:0.5\\n")
    >>> detect_format(path)
    'ffm'
    """
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head.startswith(RECORDIO_MAGIC):
        return "recordio"
    for line in head.split(b"\n"):
        tokens = line.split(b"#")[0].split()
        entries = [t for t in tokens[1:] if not t.startswith(b"qid:")]
        if entries:
            return "ffm" if entries[0].count(b":") == 2 else "libsvm"
    raise DataFormatError(path, "cannot tell the format: no data line with index:value or "
                          "field:index:value in the first 64 KiB, and no RecordIO header")


def iter_chunks(path: StrPath, *, n_features: int, format: str = "auto", zero_based: bool = True,
                dtype: DTypeLike = np.float32, block_bytes: int = STREAM_BLOCK_BYTES
                ) -> Iterator[tuple[CSRMatrix, NDArray[np.float64] | None]]:
    """Yield ``(X, y)`` chunks of a libSVM, FFM or RecordIO file, without holding the file.

    Parameters
    ----------
    path : str or path
    n_features : int
        The width of every chunk.
    format : {"auto", "libsvm", "ffm", "recordio"}, default="auto"
        See :func:`detect_format`.
    zero_based : bool, default=True
        For the text formats: whether feature index 0 is the first feature.
    dtype : numpy dtype, default=float32
    block_bytes : int
        About how many bytes of the file each chunk holds.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from fmlearn.io import dump_libsvm
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.libfm")
    >>> dump_libsvm(np.eye(3), [1, 2, 3], path)
    >>> [y.tolist() for X, y in iter_chunks(path, n_features=3, block_bytes=10)]
    [[1.0], [2.0], [3.0]]
    """
    if format == "auto":
        format = detect_format(path)
    if format == "libsvm":
        from .libsvm import iter_libsvm
        yield from iter_libsvm(path, n_features=n_features, zero_based=zero_based, dtype=dtype,
                               block_bytes=block_bytes)
    elif format == "ffm":
        from .ffm import iter_ffm
        for X, y, _ in iter_ffm(path, n_features=n_features, zero_based=zero_based, dtype=dtype,
                                field_conflicts="first", block_bytes=block_bytes):
            yield X, y
    elif format == "recordio":
        from .recordio import iter_recordio
        yield from iter_recordio(path, n_features=n_features, dtype=dtype,
                                 chunk_bytes=block_bytes)
    else:
        raise ValueError(f"format must be one of {('auto',) + FORMATS}; got {format!r}")


def read_ahead(chunks: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate over ``chunks`` while a background thread produces the next ``depth`` of them.

    The parsing kernels release the GIL, so on a machine with a spare core the
    next chunk is read while the caller trains on this one. Errors raised
    while producing a chunk are raised here, in order.

    Examples
    --------
    >>> list(read_ahead(iter(range(4))))
    [0, 1, 2, 3]
    """
    done = object()
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in chunks:
                if stop.is_set():
                    return
                slots.put((item, None))
        except BaseException as exc:  # handed to the consumer
            slots.put((None, exc))
            return
        slots.put((done, None))

    worker = threading.Thread(target=produce, daemon=True, name="fmlearn-read-ahead")
    worker.start()
    try:
        while True:
            item, exc = slots.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.01)


def partial_fit_file(estimator: Any, path: StrPath, *, n_features: int, n_epochs: int = 1,
                     classes: ArrayLike | None = None,
                     eval_set: tuple[MatrixLike, ArrayLike] | None = None,
                     early_stopping: bool | None = None, n_iter_no_change: int | None = None,
                     shuffle: bool | None = None, shuffle_buffer: int | None = None,
                     verbose: int | None = None, format: str = "auto", zero_based: bool = True,
                     block_bytes: int = STREAM_BLOCK_BYTES,
                     callback: Callable[[int, int], object] | None = None) -> Any:
    """Train ``estimator`` on a file of any size: passes of ``partial_fit`` on chunks read ahead.

    Each pass reads the whole file once, about ``block_bytes`` bytes of it per
    ``partial_fit`` call (one epoch over those rows), while a second thread reads on.
    As ``fit`` does with its epochs, the passes can be scored on ``eval_set``, stopped
    early (keeping the best pass's model), shown as a progress bar, and shuffled: by
    default each call trains on 16 pieces of the file from random places, a new
    order every pass, so that a file sorted by label, user or time trains about as
    well as a shuffled one.

    Works with every estimator that has ``partial_fit``: :class:`~fmlearn.FMRegressor`
    and :class:`~fmlearn.FMClassifier` with ``solver="sgd"`` (any ``order``; more than
    two classes too), ``"als"`` or ``"mcmc"``, and :class:`~fmlearn.FFMRegressor` and
    :class:`~fmlearn.FFMClassifier`. Not ``solver="sgda"`` (it learns its penalties on
    validation rows) nor :class:`~fmlearn.FMRanker` (its pairs are drawn within
    groups); these raise ``AttributeError`` saying why.

    Parameters
    ----------
    estimator : estimator with ``partial_fit``
        Trained further if already fitted (its ``n_features_in_`` must match).
        ALS sweeps and MCMC samples once per call, over that call's rows only: MCMC's
        ``burn_in`` counts calls, and it keeps every later call's sample unless
        ``n_kept_samples`` bounds them. The FFM estimators need their ``fields``
        parameter: the field tokens of an FFM file are not read.
    path : str or path
        A libSVM/libFM, FFM or RecordIO-protobuf file.
    n_features : int
        The width of the data: a chunk cannot tell the width of the whole file.
    n_epochs : int, default=1
        The most passes over the file.
    classes : array-like, optional
        All the labels, for a classifier that is not fitted yet.
    eval_set : tuple (X_val, y_val), optional
        Held-out rows scored after every pass (``validation_scores_``) as ``fit``
        scores them: by the estimator's ``scoring``, by default the negative RMSE
        (regressors) or the mean log-likelihood of the labels (classifiers).
    early_stopping : bool, optional
        Stop when the validation score has not improved by the estimator's ``tol``
        for ``n_iter_no_change`` passes, and keep the model of the best pass. Needs
        ``eval_set``; not with MCMC. By default the estimator's ``early_stopping``.
        Without it, the passes stop as ``fit``'s epochs do when ``tol`` is set:
        when the training loss stops falling.
    n_iter_no_change : int, optional
        By default the estimator's.
    shuffle : bool, optional
        Read the file in pieces of ``block_bytes / 16`` bytes, in a new random order
        every pass (a permutation drawn from the estimator's ``random_state``), and
        pool 16 pieces into each call. Finding where the pieces start costs a short
        read per piece for text and, for RecordIO, a read of every record's 8-byte
        header. By default the estimator's ``shuffle`` (True unless set off). The
        rows of a call are shuffled by ``partial_fit`` itself.
    shuffle_buffer : int, optional
        Pool pieces (shuffled) or chunks (in file order) until they hold at least
        this many rows before each ``partial_fit`` call, instead of 16 pieces
        (shuffled) or one chunk (in file order); 0 trains on each piece or chunk
        alone. The pool takes about ``shuffle_buffer`` times the average row size, a
        row of ``m`` non-zeros ``16 + 8 m`` bytes in float32 (``16 + 12 m`` in
        float64), and twice that while ``partial_fit`` shuffles it.
    verbose : int, optional
        1: a progress bar per pass, with rows/s, on stderr; 2 or more: one line per
        pass (for logs). By default the estimator's ``verbose``.
    format, zero_based
        As for :func:`iter_chunks`.
    block_bytes : int, default=16 MiB
        About how many bytes of the file each ``partial_fit`` call trains on.
    callback : callable, optional
        Called as ``callback(pass_number, n_rows_so_far)`` after each ``partial_fit``
        call; passes are counted from 1.

    Returns
    -------
    estimator
        With ``n_iter_`` the passes run, ``loss_curve_`` the mean training loss of each
        pass, ``validation_scores_`` and ``best_validation_score_`` (None without
        ``eval_set``), as after ``fit``.

    Notes
    -----
    Peak memory is about three chunks of ``block_bytes`` (or ``shuffle_buffer`` rows)
    as read into CSR matrices: the rows of the call being trained, a copy of them
    that ``partial_fit`` shuffles, and the chunk or pieces being read and queued for
    the next call; then the model, and with ``early_stopping`` one copy of the model
    (the best pass's).

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from fmlearn import FMClassifier
    >>> from fmlearn.io import dump_libsvm
    >>> rng = np.random.default_rng(0)
    >>> X = np.eye(10)[rng.integers(0, 10, 400)]
    >>> y = (X.argmax(axis=1) % 2 == 0).astype(int)
    >>> path = os.path.join(tempfile.mkdtemp(), "sorted.libfm")
    >>> order = np.argsort(y, kind="stable")  # every 0 first, then every 1
    >>> dump_libsvm(X[order], y[order], path)
    >>> clf = FMClassifier(n_factors=2, random_state=0)
    >>> clf = partial_fit_file(clf, path, n_features=10, classes=[0, 1], n_epochs=5,
    ...                        eval_set=(X, y), early_stopping=True, n_iter_no_change=2,
    ...                        block_bytes=800)
    >>> len(clf.validation_scores_) == clf.n_iter_
    True
    >>> clf.score(X, y)
    1.0
    """
    params = estimator.get_params()
    name = type(estimator).__name__
    try:
        learn = estimator.partial_fit
    except AttributeError as exc:  # scikit-learn's available_if keeps the reason as the cause
        raise AttributeError(f"partial_fit_file trains by partial_fit, which {name} lacks: "
                             f"{exc.__cause__ or exc}") from None
    n_epochs = _positive(n_epochs, "n_epochs", 1)
    if shuffle_buffer is not None:
        shuffle_buffer = _positive(shuffle_buffer, "shuffle_buffer", 0)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{describe(path)}: no such file")
    format = detect_format(path) if format == "auto" else format
    if format not in FORMATS:
        raise ValueError(f"format must be one of {('auto',) + FORMATS}; got {format!r}")
    dtype = np.dtype(params.get("dtype", "float32"))
    if early_stopping is None:
        early_stopping = params.get("early_stopping", False)
    n_iter_no_change = _positive(params.get("n_iter_no_change", 5) if n_iter_no_change is None
                                 else n_iter_no_change, "n_iter_no_change", 1)
    shuffle = params.get("shuffle", True) if shuffle is None else shuffle
    verbose = params.get("verbose", 0) if verbose is None else verbose
    tol = params.get("tol")
    if early_stopping and eval_set is None:
        raise ValueError("early_stopping needs eval_set=(X_val, y_val): a file read in chunks "
                         "is not split into a validation set. Pass eval_set, or "
                         "early_stopping=False.")
    if early_stopping and params.get("solver") == "mcmc":
        raise ValueError("early_stopping is not available with solver='mcmc': every sample "
                         "counts towards the posterior average. Pass eval_set to watch "
                         "validation_scores_ instead.")
    validation = None if eval_set is None else _Validation(estimator, eval_set, n_features,
                                                           dtype, classes)
    watch = params.get("solver") != "mcmc" and (early_stopping or tol is not None)
    rng = np.random.default_rng([check_random_state(params.get("random_state")).randint(2**31),
                                 getattr(estimator, "t_", 0)])  # a new order on each call

    def read(source: Any, n_bytes: int  # a path, or for a shuffled file one span of it
             ) -> Iterator[tuple[CSRMatrix, NDArray[np.float64]]]:
        rows = 0
        for X, y in iter_chunks(source, n_features=n_features, format=format,
                                zero_based=zero_based, dtype=dtype, block_bytes=n_bytes):
            if y is None:  # RecordIO without labels
                raise DataFormatError(describe(source), "the record has no label to train on",
                                      record=rows + 1)
            rows += X.shape[0]
            yield X, y

    spans = chunk_spans(path, format, max(block_bytes // PIECES, 1)) if shuffle else None
    losses, scores, n_rows, pass_rows = [], [], 0, None
    best, best_model, no_improvement = -np.inf, None, 0
    quiet = params.get("verbose", 0) >= 2  # partial_fit would print a line per call
    if quiet:
        estimator.set_params(verbose=0)
    try:
        for epoch in range(1, n_epochs + 1):
            chunks = (read(path, block_bytes) if spans is None
                      else iter_spans(path, spans, rng.permutation(len(spans)), read))
            batches = read_ahead(chunks, depth=1 if spans is None else PIECES)  # ~ one call
            if shuffle_buffer is not None or spans is not None:
                batches = pooled(batches, n_rows=shuffle_buffer,
                                 n_chunks=PIECES if shuffle_buffer is None else None)
            start, rows, loss = time.perf_counter(), 0, 0.0
            with tqdm(total=pass_rows, desc=f"{name} pass {epoch}/{n_epochs}", unit=" rows",
                      unit_scale=True, disable=verbose != 1, file=sys.stderr) as bar:
                for X, y in batches:
                    if classes is not None and not hasattr(estimator, "classes_"):
                        learn(X, y, classes=classes)
                    else:
                        learn(X, y)
                    rows += X.shape[0]
                    loss += estimator.loss_curve_[-1] * X.shape[0]
                    bar.update(X.shape[0])
                    if callback is not None:
                        callback(epoch, n_rows + rows)
                if rows == 0:
                    raise DataFormatError(path, "the file holds no data rows")
                seconds = time.perf_counter() - start
                n_rows, pass_rows = n_rows + rows, rows
                losses.append(loss / rows)
                report = {"loss": f"{losses[-1]:.5f}"}
                if validation is not None:
                    scores.append(validation.score(estimator))
                    shown = estimator._shown_score(scores[-1])
                    report[shown[0]] = f"{shown[1]:.5f}"
                bar.set_postfix(report)
            if verbose >= 2:
                tqdm.write(f"{name} pass {epoch}/{n_epochs}: {rows} rows in {seconds:.1f} s "
                           f"({rows / max(seconds, 1e-9):,.0f} rows/s), " + ", ".join(
                               f"{key} {value}" for key, value in report.items()),
                           file=sys.stderr)
            if not watch:
                continue
            criterion = scores[-1] if early_stopping else -losses[-1]
            no_improvement = 0 if criterion > best + (tol or 0.0) else no_improvement + 1
            if criterion > best:
                best = criterion
                if early_stopping:
                    best_model = copy.deepcopy(estimator.model_)
            if no_improvement >= n_iter_no_change:
                break
    finally:
        if quiet:
            estimator.set_params(verbose=params["verbose"])
    if best_model is not None:
        estimator.model_ = best_model
    estimator.n_iter_ = epoch
    estimator.loss_curve_ = losses
    estimator.validation_scores_ = scores if validation is not None else None
    estimator.best_validation_score_ = max(scores) if scores else None
    return estimator


def _positive(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


class _Validation:
    """``eval_set`` checked before the first pass, and scored as ``fit`` scores it."""

    def __init__(self, estimator: Any, eval_set: tuple[MatrixLike, ArrayLike], n_features: int,
                 dtype: np.dtype[Any], classes: ArrayLike | None) -> None:
        X_val, y_val = eval_set
        self.X = as_fm_csr(X_val, dtype, n_features, name="X_val")
        self.y = np.asarray(y_val)
        if self.y.ndim != 1 or self.y.shape[0] != self.X.shape[0]:
            raise ValueError(f"y_val must hold one target per row of X_val ({self.X.shape[0]}); "
                             f"got shape {self.y.shape}.")
        classes = getattr(estimator, "classes_", classes)
        self.target = None  # the targets as the loss reads them, once the classes are known
        if classes is not None or not is_classifier(estimator):
            self.target = clone(estimator)._encode_y(self.y, classes=classes)

    def score(self, estimator: Any) -> float:
        """The validation score of ``estimator`` (higher is better)."""
        scoring = getattr(estimator, "scoring", None)
        if scoring is not None:
            return float(get_scorer(scoring)(estimator, self.X, self.y))
        if self.target is None:
            self.target = clone(estimator)._encode_y(self.y, classes=estimator.classes_)
        weight = np.ones(self.X.shape[0], self.X.dtype)
        return estimator._validation_loss(estimator._decision(self.X), self.target, weight)
