"""SageMaker RecordIO-protobuf written: rows with their labels, and predictions, in the format
:mod:`fmlearn.io.recordio` reads (see there); the encoding is a numba kernel
(:mod:`fmlearn.kernels.recordio_write`), written atomically.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from .._files import write_atomically
from ..kernels import recordio as kr
from ..kernels import recordio_write as kw

if TYPE_CHECKING:
    from .._typing import CSRMatrix, MatrixLike, Source

__all__ = ["dump_predictions_recordio", "dump_recordio", "recordio_bytes"]

_WRITE_ROWS = 65536  # rows encoded at a time


def _as_rows(X: Any, y: Any) -> tuple[CSRMatrix, NDArray[np.float32] | None]:
    """``X`` as CSR with float32 data, int32 indices and no duplicates; ``y`` as float32 or None."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (rows of features), got shape {X.shape}")
        with np.errstate(over="ignore"):
            X = sp.csr_matrix(X.astype(np.float32))
    if X.shape[1] > kr.INDEX_LIMIT:
        raise ValueError(f"X has {X.shape[1]} columns; at most {kr.INDEX_LIMIT} are supported")
    with np.errstate(over="ignore"):
        data = X.data.astype(np.float32)
    X = sp.csr_matrix((data, X.indices.astype(np.int32, copy=False), X.indptr), shape=X.shape,
                      copy=False)
    if not X.has_canonical_format:  # sort and sum a copy: the index arrays may be the caller's
        X = X.copy()
        X.sum_duplicates()
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row of X ({X.shape[0]}), got "
                             f"shape {y.shape}")
        with np.errstate(over="ignore"):
            y = y.astype(np.float32)
    return X, y


def _encoded_blocks(X: CSRMatrix, y: Any) -> Iterator[memoryview]:
    """Yield the framed records of the rows of ``X`` (from ``_as_rows``), a block at a time."""
    n_rows, n_cols = X.shape
    with_labels = y is not None
    no_labels = np.empty(0, np.uint32)
    for r0 in range(0, n_rows, _WRITE_ROWS):
        r1 = min(r0 + _WRITE_ROWS, n_rows)
        a, b = int(X.indptr[r0]), int(X.indptr[r1])
        indptr = np.asarray(X.indptr[r0:r1 + 1], dtype=np.int64) - a
        indices = np.ascontiguousarray(X.indices[a:b], dtype=np.int32)
        data = np.ascontiguousarray(X.data[a:b])
        labels: Any = y[r0:r1] if with_labels else None
        if not np.isfinite(data).all():
            entry = int(np.flatnonzero(~np.isfinite(data))[0])
            row = r0 + int(np.searchsorted(indptr, entry, side="right")) - 1
            raise ValueError(f"X holds the non-finite value {float(data[entry])!r} (as float32) "
                             f"in row {row}; RecordIO readers reject it")
        if with_labels and not np.isfinite(labels).all():
            row = r0 + int(np.flatnonzero(~np.isfinite(labels))[0])
            raise ValueError(f"y holds the non-finite value {float(y[row])!r} (as float32) in "
                             f"row {row}; RecordIO readers reject it")
        sizes = np.empty(r1 - r0, np.int64)
        total = kw.encoded_sizes(indptr, indices, n_cols, with_labels, sizes)
        largest = int(sizes.max())
        if largest > kr.LENGTH_MASK:
            row = r0 + int(np.argmax(sizes))
            raise ValueError(f"row {row} would make a {largest}-byte record; RecordIO records "
                             f"are at most {kr.LENGTH_MASK} bytes")
        out = np.empty(total + 64, np.uint8)
        payload = np.empty(largest, np.uint8)
        label_bits = labels.view(np.uint32) if with_labels else no_labels
        row, pos = 0, 0
        while True:
            row, pos = kw.encode_records(indptr, indices, data.view(np.uint32), label_bits,
                                         with_labels, n_cols, sizes, row, out, pos, payload)
            if row == r1 - r0:
                break
            grown = np.empty(2 * out.size, np.uint8)  # payloads split at magic words
            grown[:pos] = out[:pos]
            out = grown
        yield memoryview(out[:pos])  # type: ignore[arg-type]


def _write_blocks(handle: IO[bytes], blocks: Iterable[memoryview]) -> None:
    for block in blocks:
        handle.write(block)


def dump_recordio(X: MatrixLike, y: ArrayLike | None, path_or_file: Source) -> None:
    """Write rows as RecordIO-protobuf, the way the SageMaker SDK writes sparse matrices.

    Every row becomes one record with ``features["values"]`` a Float32 tensor of its nonzeros
    (``values``), their columns (``keys``) and ``shape = [n_features]``, and, when ``y`` is
    given, ``label["values"]`` a Float32 tensor holding its label: byte for byte what
    ``sagemaker.amazon.common.write_spmatrix_to_sparse_tensor`` writes for float32 data, except
    that a payload containing the magic number at a 4-aligned offset is split as MXNet's
    writer splits it (the SDK leaves it whole, which record-splitting readers misread).

    Parameters
    ----------
    X : array-like or scipy sparse matrix of shape (n_rows, n_features)
        Values are written as float32; repeated entries of a sparse row are summed.
    y : array-like of shape (n_rows,) or None
        Labels, written as float32; None writes records without labels (inference input).
    path_or_file : str, path-like or binary file object
        A path is written to a temporary file beside it and renamed into place when complete,
        so a failure never leaves part of a file there. A file object is written from its
        current position.

    Raises
    ------
    ValueError
        For non-finite values or labels (after conversion to float32), a ``y`` that does not
        match ``X``, or more than 2**31 - 1 features.

    Examples
    --------
    >>> import io
    >>> import scipy.sparse as sp
    >>> from fmlearn.io import load_recordio
    >>> buffer = io.BytesIO()
    >>> dump_recordio(sp.csr_matrix([[0.0, 1.5], [2.0, 0.0]]), [1, 0], buffer)
    >>> buffer.getvalue()[:4].hex()
    '0a23d7ce'
    >>> load_recordio(io.BytesIO(buffer.getvalue()))[0].toarray().tolist()
    [[0.0, 1.5], [2.0, 0.0]]
    """
    X, y = _as_rows(X, y)
    blocks = _encoded_blocks(X, y)
    if isinstance(path_or_file, (str, os.PathLike)):
        write_atomically(path_or_file, lambda handle: _write_blocks(handle, blocks))
    else:
        _write_blocks(path_or_file, blocks)


def recordio_bytes(X: MatrixLike, y: ArrayLike | None = None) -> bytes:
    """The RecordIO-protobuf bytes of rows: a request body for a SageMaker FM endpoint.

    Parameters
    ----------
    X : array-like or scipy sparse matrix of shape (n_rows, n_features)
    y : array-like of shape (n_rows,), optional
        As for ``dump_recordio``.

    Returns
    -------
    bytes
        What ``dump_recordio`` writes to a file.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.io import load_recordio_bytes
    >>> body = recordio_bytes(np.array([[1.0, 0.0]]))
    >>> len(body), load_recordio_bytes(body)[0].toarray().tolist()
    (36, [[1.0, 0.0]])
    """
    X, y = _as_rows(X, y)
    buffer = io.BytesIO()
    _write_blocks(buffer, _encoded_blocks(X, y))
    return buffer.getvalue()


def dump_predictions_recordio(scores: ArrayLike, predicted_labels: ArrayLike | None = None
                              ) -> bytes:
    """The RecordIO-protobuf response of SageMaker's Factorization Machines for these predictions.

    One record per prediction, with no features and ``label["score"]`` (and, for binary
    classifiers, ``label["predicted_label"]``) a Float32 tensor of one value, as in the AWS
    documentation "Factorization Machines Response Formats".

    Parameters
    ----------
    scores : array-like of shape (n_rows,)
        The scores: the predicted value (regression) or the probability of the positive class.
    predicted_labels : array-like of shape (n_rows,), optional
        The predicted classes (0 or 1) for classification; left out for regression.

    Returns
    -------
    bytes
        The response body (content type ``application/x-recordio-protobuf``). Values are
        written as float32.

    Examples
    --------
    >>> body = dump_predictions_recordio([0.25, 0.75], [0, 1])
    >>> len(body), body[:4].hex()
    (112, '0a23d7ce')
    """
    with np.errstate(over="ignore"):
        scores = np.asarray(scores, dtype=np.float32).reshape(-1).copy()
        with_labels = predicted_labels is not None
        if with_labels:
            labels = np.asarray(predicted_labels, dtype=np.float32).reshape(-1).copy()
            if labels.shape != scores.shape:
                raise ValueError(f"predicted_labels has {labels.size} values for {scores.size} "
                                 "scores")
        else:
            labels = np.empty(0, np.float32)
    size = 8 + (48 if with_labels else 20)
    capacity = size * scores.size + 64
    while True:
        out = np.empty(capacity, np.uint8)
        written = kw.encode_predictions(scores.view(np.uint32), labels.view(np.uint32),
                                        with_labels, out)
        if written >= 0:
            return out[:written].tobytes()
        capacity *= 2  # payloads split at magic words
