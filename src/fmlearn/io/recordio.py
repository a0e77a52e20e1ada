"""SageMaker RecordIO-protobuf: the format SageMaker's built-in Factorization Machines trains on.

A file is a sequence of MXNet RecordIO records (magic word ``0xced7230a``, a length word whose
upper 3 bits are a continuation flag, the payload, zero padding to 4 bytes), each payload an
``aialgs.data.Record`` protobuf message (``sagemaker/amazon/record.proto``). One record is one
row: ``features["values"]`` is a tensor whose ``values`` are the row's nonzeros, ``keys`` their
columns and ``shape`` ``[n_features]``; ``label["values"]`` holds the target. Readers here also
take dense records (``values`` without ``keys``: column ``j`` is ``values[j]``, zeros are
dropped), Float64 and Int32 tensors (what the SDK writes for float64 and integer arrays), and
every encoding protobuf allows (packed or not, unknown fields, multi-part records).

Decoding is a numba kernel over the bytes (:mod:`fmlearn.kernels.recordio`); the writers are
in :mod:`fmlearn.io.recordio_write`. Both are checked in the tests against protobuf and the
SageMaker SDK; protobuf itself is not needed to read or write. The message classes ship in
``fmlearn.io._record_pb2`` for those who want them.
"""
from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, NoReturn

import numpy as np
import scipy.sparse as sp
from numpy.typing import DTypeLike, NDArray

from .._validation import with_fm_indices
from ..kernels import recordio as kr
from .errors import DataFormatError

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._typing import CSRMatrix, Source

    # One chunk as the readers yield it: the rows and their labels (None without labels).
    Rows: TypeAlias = tuple[CSRMatrix, NDArray[np.float64] | None]
    # Decoded records: indptr, indices, data and labels (None without labels).
    Piece: TypeAlias = tuple[NDArray[np.int64], NDArray[np.int32], NDArray[Any],
                             NDArray[np.float64] | None]

__all__ = ["iter_recordio", "load_recordio", "load_recordio_bytes"]

_BLOCK_BYTES = 16 * 2**20  # bytes read at a time; a record longer than this grows the buffer

_TENSOR_NAMES = {0: "no tensor", kr.BYTES: "a Bytes value"}


def _describe(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _check_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_count(value: Any, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} or None, got {value!r}")
    return int(value)


def _read_some(handle: IO[bytes], view: memoryview) -> int:
    """Read into the writable memoryview ``view``; return the number of bytes (0 at the end)."""
    readinto = getattr(handle, "readinto", None)
    if readinto is not None:
        return readinto(view) or 0
    data = handle.read(len(view))
    if isinstance(data, str):
        raise TypeError("RecordIO is binary: open the file with mode 'rb'")
    view[:len(data)] = data
    return len(data)


class _Buffer:
    """The unread part ``buf[lo:hi]`` of a stream, refilled and grown on demand."""

    def __init__(self, handle: IO[bytes], block_bytes: int) -> None:
        self.handle = handle
        self.buf = np.empty(block_bytes, np.uint8)
        self.lo = 0
        self.hi = 0
        self.offset = 0  # the stream position of buf[0]
        self.eof = False

    def refill(self) -> None:
        kept = self.hi - self.lo
        if self.lo:
            self.buf[:kept] = self.buf[self.lo:self.hi]
            self.offset += self.lo
            self.lo, self.hi = 0, kept
        if self.hi == self.buf.size:  # one record fills the buffer
            grown = np.empty(2 * self.buf.size, np.uint8)
            grown[:kept] = self.buf[:kept]
            self.buf = grown
        got = _read_some(self.handle, memoryview(self.buf)[self.hi:])  # type: ignore[arg-type]
        self.hi += got
        self.eof = got == 0


class _Scratch:
    """Kernel output arrays, reused from call to call and grown with the buffer."""

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.entries = -1
        self.records = -1

    def arrays(self, entries: int, records: int) -> _Scratch:
        if entries > self.entries:
            self.entries = max(entries, 2 * self.entries)
            self.data = np.empty(self.entries, self.dtype)
            self.indices = np.empty(self.entries, np.int32)
        if records > self.records:
            self.records = max(records, 2 * self.records)
            self.indptr = np.empty(self.records + 1, np.int64)
            self.labels = np.empty(self.records, np.float64)
            self.has_label = np.empty(self.records, np.bool_)
            self.widths = np.empty(self.records, np.int64)
        return self


class _Decoder:
    """Checks across records (one width, labels on all or none) and the error messages."""

    def __init__(self, name: str, n_features: int | None, dtype: np.dtype[Any]) -> None:
        self.name = name
        self.n_features = n_features
        self.dtype = dtype
        self.width = n_features
        self.labelled: bool | None = None
        self.records = 0  # records accepted so far

    def fail(self, problem: str, index: int) -> NoReturn:
        """Raise for the record at 0-based ``index`` counted from the start of the stream."""
        raise DataFormatError(self.name, problem, record=index + 1)

    def kernel_error(self, status: int, info: NDArray[np.int64], offset: int,
                     index: int) -> NoReturn:
        value, other = int(info[kr.INFO_VALUE]), int(info[kr.INFO_OTHER])
        at = offset + int(info[kr.INFO_POS])
        features = 'features["values"]'
        if status == kr.BAD_MAGIC:
            problem = (f"expected the RecordIO magic number 0xced7230a at byte {at}, found "
                       f"{value:#010x}")
            problem += (" (not a RecordIO file?)" if index == 0 else
                        " (the previous record's length word is wrong or the file is corrupt)")
        elif status == kr.BAD_CONTINUATION:
            expected = ("0 or 1 (a record starts)" if other == 0 else
                        "2 or 3 (a split record goes on)")
            problem = f"continuation flag {value} at byte {at} where {expected} was expected"
        elif status == kr.BAD_WIRE:
            problem = (f"the {other}-byte payload does not parse as an aialgs.data.Record protobuf "
                       f"message (malformed field at byte {int(info[kr.INFO_PAYLOAD_POS])} of it)")
        elif status == kr.NO_FEATURES:
            problem = f"the record has no {features} tensor"
        elif status == kr.NOT_NUMERIC:
            problem = (f"{features} holds {_TENSOR_NAMES.get(value, 'an unknown value')}, not a "
                       "Float32, Float64 or Int32 tensor")
        elif status == kr.KEYS_VALUES:
            problem = f"{features} has {other} keys but {value} values"
        elif status == kr.NO_SHAPE:
            problem = f"{features} is sparse (it has keys) but has no shape"
        elif status == kr.SHAPE_NDIM:
            problem = (f"{features} has a shape of {value} dimensions; a row needs shape "
                       "[n_features]")
        elif status == kr.KEY_RANGE:
            problem = f"key {value} of {features} is out of range for its shape [{other}]"
        elif status == kr.DENSE_SHAPE:
            problem = f"{features} is dense with {other} values but its shape is [{value}]"
        elif status == kr.LABEL_SIZE:
            problem = f'label["values"] holds {value} values; a label is one value'
        elif status == kr.LABEL_NOT_NUMERIC:
            problem = (f'label["values"] holds {_TENSOR_NAMES.get(value, "an unknown value")}, '
                       "not a Float32, Float64 or Int32 tensor")
        elif status == kr.WIDTH_LIMIT:
            problem = (f"{features} has shape [{value}]; at most {kr.INDEX_LIMIT} features are "
                       "supported")
        else:  # pragma: no cover - every status is handled above
            problem = f"unexpected decoder status {status}"
        self.fail(problem, index)

    def truncated(self, info: NDArray[np.int64], offset: int, index: int) -> NoReturn:
        remaining = int(info[kr.INFO_OTHER])
        if int(info[kr.INFO_VALUE]) < 0:
            problem = (f"the file ends {remaining} bytes into a record header at byte "
                       f"{offset + int(info[kr.INFO_POS])}: it is truncated")
        else:
            length = int(info[kr.INFO_VALUE])
            problem = (f"the record's length word says {length} bytes (padded to "
                       f"{(length + 3) & ~3}) but only {remaining} remain: the file is truncated")
        self.fail(problem, index)

    def accept(self, s: _Scratch, n: int, nnz: int) -> Piece:
        """Check ``n`` decoded records in scratch ``s``; return a copy of them as one piece."""
        first = self.records
        problems = []  # (index within the piece, message)
        widths = s.widths[:n]
        if self.width is None:
            self.width = int(widths[0])
        bad = np.flatnonzero(widths != self.width)
        if bad.size:
            i = int(bad[0])
            expected = (f"n_features={self.n_features}" if self.n_features is not None else
                        f"record 1 has [{self.width}]")
            problems.append((i, f'features["values"] has shape [{int(widths[i])}] but '
                                f"{expected}"))
        has_label = s.has_label[:n]
        if self.labelled is None:
            self.labelled = bool(has_label[0])
            self.labelled_at = first
        bad = np.flatnonzero(has_label != self.labelled)
        if bad.size:
            i = int(bad[0])
            if self.labelled:
                message = (f'the record has no label["values"] but record {self.labelled_at + 1} '
                           "has one (labels go on every record or none)")
            else:
                message = (f'the record has a label["values"] but record {self.labelled_at + 1} '
                           "has none (labels go on every record or none)")
            problems.append((i, message))
        data = s.data[:nnz]
        if not np.isfinite(data).all():
            entry = int(np.flatnonzero(~np.isfinite(data))[0])
            i = int(np.searchsorted(s.indptr[:n + 1], entry, side="right")) - 1
            beyond = " (or beyond the range of float32)" if self.dtype == np.float32 else ""
            problems.append((i, f'features["values"] holds the non-finite value '
                                f"{float(data[entry])!r}{beyond}"))
        labels = s.labels[:n]
        if self.labelled:
            bad = np.flatnonzero(has_label & ~np.isfinite(labels))
            if bad.size:
                i = int(bad[0])
                problems.append((i, f'label["values"] is {float(labels[i])!r}, not a finite '
                                    "number"))
        if problems:
            i, message = min(problems, key=lambda problem: problem[0])
            self.fail(message, first + i)
        self.records += n
        return (s.indptr[:n + 1].copy(), s.indices[:nnz].copy(), data.copy(),
                labels.copy() if self.labelled else None)

    def assemble(self, pieces: list[Piece]) -> Rows:
        if len(pieces) == 1:
            indptr, indices, data, labels = pieces[0]
        else:
            counts = [piece[0].size - 1 for piece in pieces]
            indptr = np.empty(sum(counts) + 1, np.int64)
            indptr[0] = 0
            at, base = 1, 0
            for (piece_indptr, _, _, _), count in zip(pieces, counts):
                indptr[at:at + count] = piece_indptr[1:] + base
                base += int(piece_indptr[-1])
                at += count
            indices = np.concatenate([piece[1] for piece in pieces])
            data = np.concatenate([piece[2] for piece in pieces])
            labels = (np.concatenate([piece[3] for piece in pieces]) if self.labelled else None)
        X = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, self.width), copy=False)
        if not X.has_canonical_format:  # a record with unsorted or repeated keys
            with np.errstate(over="ignore"):
                X.sum_duplicates()
            if not np.isfinite(X.data).all():
                row = int(np.searchsorted(X.indptr, np.flatnonzero(~np.isfinite(X.data))[0],
                                          side="right")) - 1
                self.fail("the values of a repeated key of features[\"values\"] sum beyond the "
                          f"range of {np.dtype(self.dtype).name}", self.records - X.shape[0] + row)
        return with_fm_indices(X), labels


def _decode_stream(handle: IO[bytes], name: str, *, chunk_size: int, chunk_bytes: int | None,
                   n_features: int | None, dtype: np.dtype[Any],
                   size: int | None = None) -> Iterator[Rows]:
    """Yield ``(X, y)`` per ``chunk_size`` records (or ``chunk_bytes`` bytes) of ``handle``.

    ``size``, the number of bytes left in ``handle`` when known, keeps the buffer no
    larger than the data.
    """
    decoder = _Decoder(name, n_features, dtype)
    stream = _Buffer(handle, _BLOCK_BYTES if size is None else min(_BLOCK_BYTES, size + 1))
    scratch = _Scratch(dtype)
    info = np.zeros(kr.INFO_SIZE, np.int64)
    pieces = []
    rows = 0
    used = 0  # bytes of the stream in the chunk so far
    while True:
        # With a byte budget, a chunk starts with one record of any size, then takes the
        # records that fit in what is left of the budget.
        budgeted = chunk_bytes is not None and rows > 0
        end = (min(stream.hi, stream.lo + chunk_bytes - used)  # type: ignore[operator]
               if budgeted else stream.hi)
        most = min(chunk_size - rows, (end - stream.lo) // 8)
        if chunk_bytes is not None and rows == 0:
            most = min(most, 1)
        status = kr.NEED_MORE
        if most > 0:
            s = scratch.arrays(end - stream.lo, most)
            info[:] = 0
            status, n, pos = kr.decode_records(stream.buf[:end], stream.lo, most, s.data,
                                               s.indices, s.indptr, s.labels, s.has_label,
                                               s.widths, info)
            if n:
                pieces.append(decoder.accept(s, n, int(s.indptr[n])))
                rows += n
            if status not in (kr.OK, kr.NEED_MORE):
                decoder.kernel_error(status, info, stream.offset, decoder.records)
            used += pos - stream.lo
            stream.lo = pos
        else:
            info[:] = 0
            info[kr.INFO_POS] = stream.lo
            info[kr.INFO_VALUE] = -1
            info[kr.INFO_OTHER] = end - stream.lo
        if rows and (rows == chunk_size or (chunk_bytes is not None and (
                used >= chunk_bytes or (status == kr.NEED_MORE and end < stream.hi)))):
            yield decoder.assemble(pieces)
            pieces, rows, used = [], 0, 0
        elif status == kr.NEED_MORE or stream.lo == stream.hi:
            if stream.eof:
                if stream.lo < stream.hi:
                    decoder.truncated(info, stream.offset, decoder.records)
                break
            stream.refill()
    if pieces:
        yield decoder.assemble(pieces)
    if decoder.records == 0:
        raise DataFormatError(name, "the file holds no records")


def _open_and_decode(path_or_file: Source, **options: Any) -> Iterator[Rows]:
    name = _describe(path_or_file)
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as handle:
            options["size"] = os.fstat(handle.fileno()).st_size
            yield from _decode_stream(handle, name, **options)
    else:
        yield from _decode_stream(path_or_file, name, **options)


def iter_recordio(path_or_file: Source, *, chunk_size: int = 100_000,
                  chunk_bytes: int | None = None, n_features: int | None = None,
                  dtype: DTypeLike = np.float32) -> Iterator[Rows]:
    """Read a RecordIO-protobuf file in chunks of rows, holding one chunk in memory at a time.

    Parameters
    ----------
    path_or_file : str, path-like or binary file object
        The file; a file object is read from its current position and left open.
    chunk_size : int, default=100_000
        The most rows per chunk; without ``chunk_bytes`` every chunk but the last has exactly
        this many.
    chunk_bytes : int, optional
        Also end a chunk before its records would take more than this many bytes of the file
        (a chunk holds at least one record), to bound memory when rows vary in size.
    n_features : int, optional
        The expected ``shape`` of every record; by default the first record's.
    dtype : {np.float32, np.float64}, default=np.float32
        The dtype of ``X.data``.

    Yields
    ------
    X : scipy.sparse.csr_matrix of shape (n_rows, n_features)
        Rows in file order: ``int64`` ``indptr``, ``int32`` ``indices``, sorted within rows.
    y : ndarray of shape (n_rows,), float64, or None
        The labels; None when the records have none.

    Raises
    ------
    DataFormatError
        Naming the file and the 1-based record, for anything but well-formed records of one
        shape with finite values and labels on all or none. Chunks before the bad record have
        been yielded by then; ``load_recordio`` checks the whole file first.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from fmlearn.io import recordio_bytes
    >>> body = recordio_bytes(np.eye(5), y=np.arange(5))
    >>> [(X.shape, y.tolist()) for X, y in iter_recordio(io.BytesIO(body), chunk_size=2)]
    [((2, 5), [0.0, 1.0]), ((2, 5), [2.0, 3.0]), ((1, 5), [4.0])]
    """
    chunk_size = _check_count(chunk_size, "chunk_size", 1)
    if chunk_size is None:
        raise ValueError("chunk_size must be an integer >= 1, got None")
    options = dict(chunk_size=chunk_size, chunk_bytes=_check_count(chunk_bytes, "chunk_bytes", 1),
                   n_features=_check_count(n_features, "n_features", 0), dtype=_check_dtype(dtype))
    return _open_and_decode(path_or_file, **options)


def load_recordio(path_or_file: Source, *, n_features: int | None = None,
                  dtype: DTypeLike = np.float32) -> Rows:
    """Read a whole RecordIO-protobuf file: SageMaker's training format for Factorization Machines.

    Every record must hold ``features["values"]``, sparse (``keys`` and ``shape``) or dense
    (``values`` only), as a Float32 (SageMaker's requirement), Float64 or Int32 tensor.

    Parameters
    ----------
    path_or_file : str, path-like or binary file object
        The file; a file object is read to its end and left open.
    n_features : int, optional
        The expected ``shape`` of every record; by default the first record's.
    dtype : {np.float32, np.float64}, default=np.float32
        The dtype of ``X.data``.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_records, n_features)
        ``int64`` ``indptr``, ``int32`` ``indices`` sorted within rows (repeated keys summed),
        ``dtype`` data. Explicit zeros of sparse records are kept; those of dense records
        dropped.
    y : ndarray of shape (n_records,), float64, or None
        ``label["values"]`` of every record, or None when no record has a label (inference
        requests). Some records with a label and some without is an error.

    Raises
    ------
    DataFormatError
        Naming the file and the 1-based record: a bad magic number or continuation flag, a
        truncated record, a payload that is not a ``Record``, no ``features["values"]``, keys
        out of ``[0, shape)``, shapes that disagree (with each other or ``n_features``),
        non-finite values or labels, an empty file. Nothing is returned then.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from fmlearn.io import dump_recordio
    >>> buffer = io.BytesIO()
    >>> dump_recordio(np.array([[0.0, 2.0, 0.0], [1.0, 0.0, 0.5]]), [1.0, 0.0], buffer)
    >>> X, y = load_recordio(io.BytesIO(buffer.getvalue()))
    >>> X.toarray().tolist(), y.tolist()
    ([[0.0, 2.0, 0.0], [1.0, 0.0, 0.5]], [1.0, 0.0])
    >>> X.dtype, X.indptr.dtype, X.indices.dtype
    (dtype('float32'), dtype('int64'), dtype('int32'))
    """
    return _load(path_or_file, n_features, dtype)


def _load(path_or_file: Source, n_features: int | None, dtype: DTypeLike,
          size: int | None = None) -> Rows:
    chunks = _open_and_decode(path_or_file, chunk_size=sys.maxsize, chunk_bytes=None,
                              n_features=_check_count(n_features, "n_features", 0),
                              dtype=_check_dtype(dtype), size=size)
    (X, y), = chunks
    return X, y


def load_recordio_bytes(data: bytes | bytearray | memoryview, *, n_features: int | None = None,
                        dtype: DTypeLike = np.float32, name: str = "<bytes>") -> Rows:
    """Read RecordIO-protobuf from memory, e.g. an ``application/x-recordio-protobuf`` request body.

    Parameters
    ----------
    data : bytes-like
        The records.
    n_features, dtype
        As for ``load_recordio``.
    name : str, default="<bytes>"
        What error messages call the data.

    Returns
    -------
    X : scipy.sparse.csr_matrix
    y : ndarray of float64 or None
        As for ``load_recordio``; inference requests carry no labels, so ``y`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.io import recordio_bytes
    >>> X, y = load_recordio_bytes(recordio_bytes(np.array([[0, 3], [4, 0]])))
    >>> X.toarray().tolist(), y
    ([[0.0, 3.0], [4.0, 0.0]], None)
    """
    handle = io.BytesIO(data)
    handle.name = name
    return _load(handle, n_features, dtype, size=len(handle.getbuffer()))
