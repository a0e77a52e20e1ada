"""Training on files larger than memory: chunks read ahead on a second thread into ``partial_fit``."""
import queue
import threading
from pathlib import Path

import numpy as np

from ._text import describe
from .errors import DataFormatError

STREAM_BLOCK_BYTES = 16 * 2**20
RECORDIO_MAGIC = b"\x0a\x23\xd7\xce"  # 0xced7230a, little-endian
FORMATS = ("libsvm", "ffm", "recordio")


def detect_format(path):
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


def iter_chunks(path, *, n_features, format="auto", zero_based=True, dtype=np.float32,
                block_bytes=STREAM_BLOCK_BYTES):
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


def read_ahead(chunks, depth=1):
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
    slots = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
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


def partial_fit_file(estimator, path, *, n_features, n_epochs=1, classes=None, format="auto",
                     zero_based=True, block_bytes=STREAM_BLOCK_BYTES, callback=None):
    """Train ``estimator`` on a file of any size by ``partial_fit`` on chunks read ahead.

    Peak memory is about three chunks (one trained on, one queued, one being
    read) plus the model, whatever the file's size. Each epoch reads the file
    once, in order; ``partial_fit`` shuffles within each chunk.

    Parameters
    ----------
    estimator : FMRegressor or FMClassifier
        Fitted further if already fitted (its ``n_features_in_`` must match).
    path : str or path
    n_features : int
    n_epochs : int, default=1
    classes : array-like, optional
        Both labels, for a classifier that is not fitted yet.
    format, zero_based, block_bytes
        As for :func:`iter_chunks`.
    callback : callable, optional
        Called as ``callback(epoch, n_rows_so_far)`` after each chunk.

    Returns
    -------
    estimator

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from fmlearn import FMRegressor
    >>> from fmlearn.io import dump_libsvm
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.libfm")
    >>> dump_libsvm(np.eye(4), [1.0, 2.0, 3.0, 4.0], path)
    >>> reg = partial_fit_file(FMRegressor(random_state=0), path, n_features=4, n_epochs=2)
    >>> reg.n_features_in_
    4
    """
    dtype = np.dtype(getattr(estimator, "dtype", "float32"))
    if not Path(path).is_file():
        raise FileNotFoundError(f"{describe(path)}: no such file")
    n_rows = 0
    for epoch in range(n_epochs):
        chunks = iter_chunks(path, n_features=n_features, format=format, zero_based=zero_based,
                             dtype=dtype, block_bytes=block_bytes)
        for X, y in read_ahead(chunks):
            if classes is not None and not hasattr(estimator, "classes_"):
                estimator.partial_fit(X, y, classes=classes)
            else:
                estimator.partial_fit(X, y)
            n_rows += X.shape[0]
            if callback is not None:
                callback(epoch, n_rows)
    return estimator

