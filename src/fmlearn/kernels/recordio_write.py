"""SageMaker RecordIO-protobuf records written from CSR rows and from predictions: the
framing and ``Record`` payloads :mod:`fmlearn.kernels.recordio` reads (see there for the
format), a payload split where it holds the magic word at an aligned offset, as dmlc's writer
does.
"""
import numpy as np
from numba import njit

from .protobuf_wire import u32
from .recordio import MAGIC, VALUES
from .._numba_cache import CACHE

_SCORE = np.frombuffer(b"score", dtype=np.uint8)
_PREDICTED_LABEL = np.frombuffer(b"predicted_label", dtype=np.uint8)


@njit(cache=CACHE, inline="always")
def _varint_size(value):
    n = 1
    while value >= 128:
        value >>= 7
        n += 1
    return n


@njit(cache=CACHE, inline="always")
def _put_varint(out, pos, value):
    while value >= 128:
        out[pos] = (value & 127) | 128
        value >>= 7
        pos += 1
    out[pos] = value
    return pos + 1


@njit(cache=CACHE, inline="always")
def _put_u32(out, pos, word):
    for b in range(4):
        out[pos + b] = (word >> (8 * b)) & 255
    return pos + 4


@njit(cache=CACHE)
def _tensor_sizes(indices, start, stop, n_cols):
    """Sizes of the Float32Tensor, Value, entry and Record of one CSR row, as protobuf has them."""
    nnz = stop - start
    tensor = 0
    keys = 0
    if nnz > 0:
        tensor += 1 + _varint_size(4 * nnz) + 4 * nnz
        for p in range(start, stop):
            keys += _varint_size(np.int64(indices[p]))
        tensor += 1 + _varint_size(keys) + keys
    shape = _varint_size(n_cols)
    tensor += 1 + _varint_size(shape) + shape
    value = 1 + _varint_size(tensor) + tensor
    entry = 8 + 1 + _varint_size(value) + value
    return keys, tensor, value, entry, 1 + _varint_size(entry) + entry


LABEL_FIELD_SIZE = 20  # label {key: "values", value {float32_tensor {values: [y]}}}


@njit(cache=CACHE)
def encoded_sizes(indptr, indices, n_cols, with_labels, sizes):
    """Write the payload size of every CSR row's record into ``sizes``; return the framed total."""
    total = 0
    for r in range(indptr.shape[0] - 1):
        size = _tensor_sizes(indices, indptr[r], indptr[r + 1], n_cols)[4]
        if with_labels:
            size += LABEL_FIELD_SIZE
        sizes[r] = size
        total += 8 + ((size + 3) & ~3)
    return total


@njit(cache=CACHE)
def _put_name(out, pos, name):
    out[pos] = 0x0A  # map entry key: field 1, length-delimited
    out[pos + 1] = name.shape[0]
    pos += 2
    for i in range(name.shape[0]):
        out[pos + i] = name[i]
    return pos + name.shape[0]


@njit(cache=CACHE)
def _put_scalar_entry(out, pos, name, bits):
    """A ``label`` entry ``name -> Value{float32_tensor{values: [value]}}`` with its field tag."""
    out[pos] = 0x12
    out[pos + 1] = name.shape[0] + 12
    pos = _put_name(out, pos + 2, name)
    out[pos] = 0x12  # entry value: Value
    out[pos + 1] = 8
    out[pos + 2] = 0x12  # Value.float32_tensor
    out[pos + 3] = 6
    out[pos + 4] = 0x0A  # Float32Tensor.values, packed
    out[pos + 5] = 4
    return _put_u32(out, pos + 6, bits)


@njit(cache=CACHE)
def _put_framed(out, pos, payload, size):
    """Frame the payload already at ``out[pos + 8:pos + 8 + size]``, split at aligned magic words.

    Returns the position after the record, or -1 when ``out`` is too small for the split (the
    payload is then left as it was).
    """
    magic = np.uint32(MAGIC)
    found = 0
    for i in range(0, size - 3, 4):
        if u32(out, pos + 8 + i) == magic:
            found += 1
    padded = (size + 3) & ~3
    if found == 0:
        _put_u32(out, pos, magic)
        _put_u32(out, pos + 4, np.uint32(size))
        for i in range(pos + 8 + size, pos + 8 + padded):
            out[i] = 0
        return pos + 8 + padded
    if pos + 8 + padded + 4 * found > out.shape[0]:
        return np.int64(-1)
    payload[:size] = out[pos + 8:pos + 8 + size]
    done = 0  # dmlc's RecordIOWriter::WriteRecord
    for i in range(0, size - 3, 4):
        if u32(payload, i) == magic:
            pos = _put_u32(out, pos, magic)
            pos = _put_u32(out, pos, np.uint32(((1 if done == 0 else 2) << 29) | (i - done)))
            out[pos:pos + i - done] = payload[done:i]
            pos += i - done
            done = i + 4
    pos = _put_u32(out, pos, magic)
    pos = _put_u32(out, pos, np.uint32(((3 if done else 0) << 29) | (size - done)))
    out[pos:pos + size - done] = payload[done:size]
    pos += size - done
    for _ in range(padded - size):
        out[pos] = 0
        pos += 1
    return pos


@njit(cache=CACHE)
def encode_records(indptr, indices, bits, label_bits, with_labels, n_cols, sizes, row, out, pos,
                   payload):
    """Write framed records for CSR rows ``row:`` into ``out`` from ``pos``.

    ``bits`` and ``label_bits`` are the float32 values as uint32 words; ``sizes`` the payload
    sizes from ``encoded_sizes``, ``payload`` scratch of at least the largest. Every record is
    the one protobuf serialises for ``features["values"] = Float32Tensor(values, keys,
    shape=[n_cols])`` (and ``label["values"] = Float32Tensor([y])``), fields in number order,
    empty repeated fields left out. Returns ``(row, pos)`` where it stopped: all rows, or the
    first one that does not fit in ``out``.
    """
    n_rows = indptr.shape[0] - 1
    while row < n_rows:
        start = indptr[row]
        stop = indptr[row + 1]
        size = sizes[row]
        if pos + 8 + size + 3 > out.shape[0]:
            return row, pos
        keys, tensor, value, entry, _ = _tensor_sizes(indices, start, stop, n_cols)
        p = pos + 8
        out[p] = 0x0A  # Record.features
        p = _put_varint(out, p + 1, entry)
        p = _put_name(out, p, VALUES)
        out[p] = 0x12  # entry value
        p = _put_varint(out, p + 1, value)
        out[p] = 0x12  # Value.float32_tensor
        p = _put_varint(out, p + 1, tensor)
        nnz = stop - start
        if nnz > 0:
            out[p] = 0x0A  # values, packed
            p = _put_varint(out, p + 1, 4 * nnz)
            for k in range(start, stop):
                p = _put_u32(out, p, bits[k])
            out[p] = 0x12  # keys, packed
            p = _put_varint(out, p + 1, keys)
            for k in range(start, stop):
                p = _put_varint(out, p, np.int64(indices[k]))
        out[p] = 0x1A  # shape, packed
        p = _put_varint(out, p + 1, _varint_size(n_cols))
        p = _put_varint(out, p, n_cols)
        if with_labels:
            p = _put_scalar_entry(out, p, VALUES, label_bits[row])
        after = _put_framed(out, pos, payload, size)
        if after < 0:
            return row, pos
        pos = after
        row += 1
    return row, pos


@njit(cache=CACHE)
def encode_predictions(score_bits, label_bits, with_labels, out):
    """Framed response records ``label = {"score": [s], "predicted_label": [l]}`` (no features).

    Returns the number of bytes written, or -1 when ``out`` is too small.
    """
    size = 2 + 12 + _SCORE.shape[0]
    if with_labels:
        size += 2 + 12 + _PREDICTED_LABEL.shape[0]
    payload = np.empty(size, np.uint8)
    pos = 0
    for r in range(score_bits.shape[0]):
        if pos + 8 + size + 3 > out.shape[0]:
            return np.int64(-1)
        p = _put_scalar_entry(out, pos + 8, _SCORE, score_bits[r])
        if with_labels:
            _put_scalar_entry(out, p, _PREDICTED_LABEL, label_bits[r])
        pos = _put_framed(out, pos, payload, size)
        if pos < 0:
            return pos
    return pos
