"""SageMaker RecordIO-protobuf over uint8 buffers: MXNet RecordIO framing, ``aialgs.data.Record``.

Framing (MXNet/dmlc RecordIO): each part is the little-endian word ``MAGIC``, a word whose upper
3 bits are the continuation flag ``cflag`` and lower 29 bits the part length, the part's bytes
and zero padding to a multiple of 4. A payload that contains ``MAGIC`` at a 4-aligned offset is
split there by the dmlc writer: the parts carry ``cflag`` 1 (first), 2 (middle), 3 (last), the
magic words themselves are dropped and a reader puts them back between the parts; a whole
record has ``cflag`` 0.

Payload: a protobuf ``Record`` (``sagemaker/amazon/record.proto``, proto2)::

    Record        { map<string, Value> features = 1; map<string, Value> label = 2;
                    string uid = 3; string metadata = 4; string configuration = 5; }
    Value         { oneof { Float32Tensor float32_tensor = 2; Float64Tensor float64_tensor = 3;
                            Int32Tensor int32_tensor = 7; Bytes bytes = 9; } }
    *Tensor       { repeated <float|double|int32> values = 1 [packed];
                    repeated uint64 keys = 2 [packed]; repeated uint64 shape = 3 [packed]; }

The decoder follows the protobuf parsing rules for this schema: repeated scalars are accepted
packed (wire type 2) and unpacked, in any number of runs and interleaved with other fields; a
known field with an unexpected wire type and unknown fields (groups included) are skipped; of
two map entries with one key the last wins; a message field that occurs twice is merged and a
oneof member replaced by another one is cleared. Everything a ``Record`` can hold is checked to
be well-formed wire format, as protobuf would, but only ``features["values"]`` and
``label["values"]`` are decoded. Decoders return a status code; the Python layer
(``fmlearn.io.recordio``) turns it into a message.
"""
import numpy as np
from numba import njit

from .protobuf_wire import (MAX_GROUP_DEPTH, NO_REFCOUNT, STACK, check_message, clip62,
                            float32_at, float64_at, int32_of, length_delimited, skip, tag, u32,
                            varint)
from .._numba_cache import CACHE

MAGIC = 0xCED7230A
LENGTH_MASK = (1 << 29) - 1
INDEX_LIMIT = 2**31 - 1  # the largest column index an int32 holds

# Status codes of ``decode_records``.
OK = 0
NEED_MORE = 1  # the buffer ends inside a record (a truncated file when nothing follows)
BAD_MAGIC = 2
BAD_CONTINUATION = 3  # a continuation flag out of the 0 | 1 (2)* 3 sequence
BAD_WIRE = 4  # the payload is not a well-formed Record
NO_FEATURES = 5  # no features["values"]
NOT_NUMERIC = 6  # features["values"] holds Bytes or nothing
KEYS_VALUES = 7  # a sparse tensor whose key and value counts differ
NO_SHAPE = 8  # keys without shape
SHAPE_NDIM = 9  # a shape of more than one dimension
KEY_RANGE = 10  # a key outside [0, shape)
DENSE_SHAPE = 11  # a dense tensor whose shape is not its length
LABEL_SIZE = 12  # label["values"] holds other than one value
LABEL_NOT_NUMERIC = 13
WIDTH_LIMIT = 14  # a shape beyond INDEX_LIMIT columns

# Members of Value's oneof (their field numbers); 0 when none is set.
FLOAT32 = 2
FLOAT64 = 3
INT32 = 7
BYTES = 9

# Slots of the int64 state array shared by the helpers.
_NV = 0  # values read
_NK = 1  # keys read
_NS = 2  # shape entries read
_SHAPE0 = 3  # the first shape entry, clipped to 2**62
_KIND = 4  # the oneof member set
_BIGKEY = 5  # a key beyond INDEX_LIMIT was read (its value, clipped), else -1
_ERRPOS = 6  # where the wire format broke
_STATE_SIZE = STACK + MAX_GROUP_DEPTH  # st[STACK:]: the groups being skipped (protobuf_wire)

# Slots of ``info``, the error details returned to Python.
INFO_POS = 0  # byte offset of the record (its first header) in the buffer
INFO_VALUE = 1  # the offending value: magic word, key, shape, count, oneof member
INFO_OTHER = 2  # a second value (the key count beside the value count, the record length)
INFO_PAYLOAD_POS = 3  # for BAD_WIRE: the byte within the payload
INFO_SIZE = 4

VALUES = np.frombuffer(b"values", dtype=np.uint8)


@njit(cache=CACHE, inline="always")
def _put_value(value, mode, data, base, st, first):
    """Count a tensor value; ``mode`` 1 also stores it in ``data``, 2 keeps the first one."""
    if mode == 1:
        data[base + st[_NV]] = value
    elif mode == 2 and st[_NV] == 0:
        first[0] = value
    st[_NV] += 1


@njit(cache=CACHE, inline="always")
def _put_key(key, mode, indices, base, st):
    if mode == 1:
        if key > np.uint64(INDEX_LIMIT):
            if st[_BIGKEY] < 0:
                st[_BIGKEY] = clip62(key)
            indices[base + st[_NK]] = -1
        else:
            indices[base + st[_NK]] = np.int32(key)
    st[_NK] += 1


@njit(cache=CACHE, **NO_REFCOUNT)
def _read_tensor(buf, pos, end, kind, mode, data, indices, base, st, first):
    """Read one occurrence of a tensor message ``buf[pos:end]``, appending to what ``st`` holds.

    ``mode`` 1 stores values and keys at ``data[base:]`` and ``indices[base:]``, 2 keeps the
    first value in ``first``, 0 only checks the wire format. Returns False on malformed input,
    with ``st[_ERRPOS]`` where it is.
    """
    while pos < end:
        at = pos
        field, wire, pos = tag(buf, pos, end)
        if pos < 0:
            st[_ERRPOS] = at
            return False
        if field == 1 and wire == 2:  # packed values
            start, stop = length_delimited(buf, pos, end)
            if start < 0:
                st[_ERRPOS] = at
                return False
            if kind == FLOAT32:
                if (stop - start) % 4:
                    st[_ERRPOS] = at
                    return False
                if mode == 1:
                    k = base + st[_NV]
                    for p in range(start, stop, 4):
                        data[k] = float32_at(buf, p)
                        k += 1
                    st[_NV] = k - base
                else:
                    for p in range(start, stop, 4):
                        _put_value(float32_at(buf, p), mode, data, base, st, first)
            elif kind == FLOAT64:
                if (stop - start) % 8:
                    st[_ERRPOS] = at
                    return False
                for p in range(start, stop, 8):
                    _put_value(float64_at(buf, p), mode, data, base, st, first)
            else:
                p = start
                while p < stop:
                    value, p = varint(buf, p, stop)
                    if p < 0:
                        st[_ERRPOS] = at
                        return False
                    _put_value(int32_of(value), mode, data, base, st, first)
            pos = stop
        elif field == 1 and ((kind == FLOAT32 and wire == 5) or (kind == FLOAT64 and wire == 1)
                             or (kind == INT32 and wire == 0)):  # one unpacked value
            if wire == 5:
                if end - pos < 4:
                    st[_ERRPOS] = at
                    return False
                _put_value(float32_at(buf, pos), mode, data, base, st, first)
                pos += 4
            elif wire == 1:
                if end - pos < 8:
                    st[_ERRPOS] = at
                    return False
                _put_value(float64_at(buf, pos), mode, data, base, st, first)
                pos += 8
            else:
                value, pos = varint(buf, pos, end)
                if pos < 0:
                    st[_ERRPOS] = at
                    return False
                _put_value(int32_of(value), mode, data, base, st, first)
        elif (field == 2 or field == 3) and (wire == 2 or wire == 0):  # keys or shape
            if wire == 2:
                start, stop = length_delimited(buf, pos, end)
                if start < 0:
                    st[_ERRPOS] = at
                    return False
            else:
                start, stop = pos, end
            p = start
            while p < stop:
                value, p = varint(buf, p, stop)
                if p < 0:
                    st[_ERRPOS] = at
                    return False
                if field == 2:
                    _put_key(value, mode, indices, base, st)
                else:
                    if st[_NS] == 0:
                        st[_SHAPE0] = clip62(value)
                    st[_NS] += 1
                if wire == 0:
                    break
            pos = p if wire == 0 else stop
        else:
            pos = skip(buf, pos, end, field, wire, st)
            if pos < 0:
                st[_ERRPOS] = at
                return False
    return True


@njit(cache=CACHE, **NO_REFCOUNT)
def _reset(st):
    st[_NV] = 0
    st[_NK] = 0
    st[_NS] = 0
    st[_SHAPE0] = 0
    st[_BIGKEY] = -1


@njit(cache=CACHE, **NO_REFCOUNT)
def _read_value(buf, pos, end, mode, data, indices, base, st, first):
    """Merge one occurrence of a ``Value`` message into the state ``st``."""
    while pos < end:
        at = pos
        field, wire, pos = tag(buf, pos, end)
        if pos < 0:
            st[_ERRPOS] = at
            return False
        if wire == 2 and (field == FLOAT32 or field == FLOAT64 or field == INT32 or field == BYTES):
            start, stop = length_delimited(buf, pos, end)
            if start < 0:
                st[_ERRPOS] = at
                return False
            if field != st[_KIND]:  # another oneof member replaces the one set
                st[_KIND] = field
                _reset(st)
            if field == BYTES:
                if not check_message(buf, start, stop, st):
                    st[_ERRPOS] = at
                    return False
            else:
                if not _read_tensor(buf, start, stop, field, mode, data, indices, base, st,
                                    first):
                    return False
            pos = stop
        else:
            pos = skip(buf, pos, end, field, wire, st)
            if pos < 0:
                st[_ERRPOS] = at
                return False
    return True


@njit(cache=CACHE, **NO_REFCOUNT)
def _entry_key(buf, pos, end, st):
    """Check a map entry ``buf[pos:end]``; return ``(ok, key_start, key_stop)`` of its last key."""
    key_start = np.int64(0)
    key_stop = np.int64(0)
    while pos < end:
        at = pos
        field, wire, pos = tag(buf, pos, end)
        if pos < 0:
            return False, at, at
        if field == 1 and wire == 2:
            key_start, key_stop = length_delimited(buf, pos, end)
            if key_start < 0:
                return False, at, at
            pos = key_stop
        else:
            pos = skip(buf, pos, end, field, wire, st)
            if pos < 0:
                return False, at, at
    return True, key_start, key_stop


@njit(cache=CACHE, **NO_REFCOUNT)
def _read_entry(buf, pos, end, mode, data, indices, base, st, first):
    """Read the value of a map entry (all its occurrences, merged) into a fresh state ``st``."""
    _reset(st)
    st[_KIND] = 0
    while pos < end:
        field, wire, pos = tag(buf, pos, end)  # the entry was checked by _entry_key
        if field == 2 and wire == 2:
            start, stop = length_delimited(buf, pos, end)
            if not _read_value(buf, start, stop, mode, data, indices, base, st, first):
                return False
            pos = stop
        else:
            pos = skip(buf, pos, end, field, wire, st)
    return True


@njit(cache=CACHE, **NO_REFCOUNT)
def _same(buf, start, stop, name):
    if stop - start != name.shape[0]:
        return False
    for i in range(name.shape[0]):
        if buf[start + i] != name[i]:
            return False
    return True


@njit(cache=CACHE, **NO_REFCOUNT)
def _read_record(buf, pos, end, data, indices, base, st, first, info):
    """Decode one ``Record`` payload ``buf[pos:end]``, its features appended at ``data[base:]``.

    ``data`` and ``indices`` must have room for ``base + end - pos`` entries. Returns
    ``(status, nnz, width, has_label, label)``.
    """
    start0 = pos
    features = (np.int64(-1), np.int64(-1))
    label = (np.int64(-1), np.int64(-1))
    while pos < end:
        at = pos
        field, wire, pos = tag(buf, pos, end)
        bad = pos < 0
        if not bad:
            if wire == 2 and (field == 1 or field == 2):
                start, stop = length_delimited(buf, pos, end)
                bad = start < 0
                if not bad:
                    ok, key_start, key_stop = _entry_key(buf, start, stop, st)
                    if not ok:
                        bad = True
                        at = key_start
                    else:
                        earlier = (np.int64(-1), np.int64(-1))
                        if _same(buf, key_start, key_stop, VALUES):  # the last entry wins
                            if field == 1:
                                earlier, features = features, (start, stop)
                            else:
                                earlier, label = label, (start, stop)
                        else:
                            earlier = (start, stop)
                        if earlier[0] >= 0:  # read no further than protobuf checks
                            if not _read_entry(buf, earlier[0], earlier[1], 0, data, indices,
                                               base, st, first):
                                bad = True
                                at = st[_ERRPOS]
                    pos = stop
            else:
                pos = skip(buf, pos, end, field, wire, st)
                bad = pos < 0
        if bad:
            info[INFO_PAYLOAD_POS] = at - start0
            return BAD_WIRE, 0, 0, False, 0.0
    # Read both entries before judging either: a malformed payload is reported as such.
    kind = 0
    n_values = n_keys = n_shape = shape0 = big_key = 0
    if features[0] >= 0:
        if not _read_entry(buf, features[0], features[1], 1, data, indices, base, st, first):
            info[INFO_PAYLOAD_POS] = st[_ERRPOS] - start0
            return BAD_WIRE, 0, 0, False, 0.0
        kind = st[_KIND]
        n_values = st[_NV]
        n_keys = st[_NK]
        n_shape = st[_NS]
        shape0 = st[_SHAPE0]
        big_key = st[_BIGKEY]
    label_kind = 0
    n_labels = 0
    if label[0] >= 0:
        if not _read_entry(buf, label[0], label[1], 2, data, indices, base, st, first):
            info[INFO_PAYLOAD_POS] = st[_ERRPOS] - start0
            return BAD_WIRE, 0, 0, False, 0.0
        label_kind = st[_KIND]
        n_labels = st[_NV]
    if features[0] < 0:
        return NO_FEATURES, 0, 0, False, 0.0
    if kind != FLOAT32 and kind != FLOAT64 and kind != INT32:
        info[INFO_VALUE] = kind
        return NOT_NUMERIC, 0, 0, False, 0.0
    if n_shape > 1:
        info[INFO_VALUE] = n_shape
        return SHAPE_NDIM, 0, 0, False, 0.0
    if n_keys > 0:
        if n_keys != n_values:
            info[INFO_VALUE] = n_values
            info[INFO_OTHER] = n_keys
            return KEYS_VALUES, 0, 0, False, 0.0
        if n_shape == 0:
            return NO_SHAPE, 0, 0, False, 0.0
        if shape0 > INDEX_LIMIT:
            info[INFO_VALUE] = shape0
            return WIDTH_LIMIT, 0, 0, False, 0.0
        if big_key >= 0:
            info[INFO_VALUE] = big_key
            info[INFO_OTHER] = shape0
            return KEY_RANGE, 0, 0, False, 0.0
        for p in range(base, base + n_keys):
            if indices[p] >= shape0:
                info[INFO_VALUE] = indices[p]
                info[INFO_OTHER] = shape0
                return KEY_RANGE, 0, 0, False, 0.0
        nnz = n_keys
        width = shape0
    elif n_values > 0:  # dense: columns 0..n-1, zeros dropped
        if n_shape == 1 and shape0 != n_values:
            info[INFO_VALUE] = shape0
            info[INFO_OTHER] = n_values
            return DENSE_SHAPE, 0, 0, False, 0.0
        if n_values > INDEX_LIMIT:
            info[INFO_VALUE] = n_values
            return WIDTH_LIMIT, 0, 0, False, 0.0
        w = base
        for j in range(n_values):
            value = data[base + j]
            if value != 0:
                data[w] = value
                indices[w] = j
                w += 1
        nnz = w - base
        width = n_values
    else:
        width = shape0 if n_shape == 1 else 0
        if width > INDEX_LIMIT:
            info[INFO_VALUE] = width
            return WIDTH_LIMIT, 0, 0, False, 0.0
        nnz = 0
    if label[0] < 0:
        return OK, nnz, width, False, 0.0
    if label_kind != FLOAT32 and label_kind != FLOAT64 and label_kind != INT32:
        info[INFO_VALUE] = label_kind
        return LABEL_NOT_NUMERIC, 0, 0, False, 0.0
    if n_labels != 1:
        info[INFO_VALUE] = n_labels
        return LABEL_SIZE, 0, 0, False, 0.0
    return OK, nnz, width, True, first[0]


@njit(cache=CACHE, **NO_REFCOUNT)
def _frame(buf, pos, end, info):
    """Check the framing of the record at ``pos``: ``(status, payload_size, next_pos, parts)``."""
    size = np.int64(0)
    parts = np.int64(0)
    p = pos
    while True:
        if end - p < 8:
            info[INFO_VALUE] = -1
            info[INFO_OTHER] = end - p
            return NEED_MORE, size, p, parts
        word = u32(buf, p)
        if word != np.uint32(MAGIC):
            info[INFO_POS] = p
            info[INFO_VALUE] = word
            return BAD_MAGIC, size, p, parts
        head = u32(buf, p + 4)
        flag = np.int64(head >> np.uint32(29))
        length = np.int64(head & np.uint32(LENGTH_MASK))
        if (parts == 0 and flag != 0 and flag != 1) or (parts > 0 and flag != 2 and flag != 3):
            info[INFO_POS] = p
            info[INFO_VALUE] = flag
            info[INFO_OTHER] = parts
            return BAD_CONTINUATION, size, p, parts
        padded = (length + 3) & ~np.int64(3)
        if end - p - 8 < padded:
            info[INFO_VALUE] = length
            info[INFO_OTHER] = end - p - 8
            return NEED_MORE, size, p, parts
        size += length
        parts += 1
        p += 8 + padded
        if flag == 0 or flag == 3:
            return OK, size + 4 * (parts - 1), p, parts
        # flag 1 or 2: more parts follow, with the magic word between them


@njit(cache=CACHE)
def decode_records(buf, start, max_records, data, indices, indptr, labels, has_label, widths, info):
    """Decode up to ``max_records`` whole records from ``buf[start:]``.

    Record ``r`` gets CSR row ``indptr[r]:indptr[r + 1]`` of ``indices``/``data`` (relative to
    this call, ``indptr[0] = 0``), ``widths[r]`` (its shape) and, where ``has_label[r]``, the
    label ``labels[r]``. A record never has more entries than payload bytes, so ``data`` and
    ``indices`` need room for ``buf.shape[0] - start`` entries; ``indptr`` and the per-record
    arrays for ``max_records``.

    Returns ``(status, n_records, pos)``: ``pos`` is where the next record
    starts, or for an error other than ``NEED_MORE`` where the failing record starts (record
    number ``n_records``, 0-based); ``info`` holds the details.
    """
    end = buf.shape[0]
    st = np.zeros(_STATE_SIZE, np.int64)
    first = np.zeros(1, np.float64)
    joined = np.empty(0, np.uint8)
    pos = start
    row = 0
    indptr[0] = 0
    while row < max_records:
        if pos == end:
            return OK, row, pos
        info[INFO_POS] = pos
        status, size, after, parts = _frame(buf, pos, end, info)
        if status != OK:
            return status, row, pos
        base = indptr[row]
        if parts == 1:
            status, nnz, width, labelled, label = _read_record(
                buf, pos + 8, pos + 8 + size, data, indices, base, st, first, info)
        else:  # put the record back together, magic words between the parts
            if joined.shape[0] < size:
                joined = np.empty(max(size, 2 * joined.shape[0]), np.uint8)
            p = pos
            k = 0
            for part in range(parts):
                length = np.int64(u32(buf, p + 4) & np.uint32(LENGTH_MASK))
                joined[k:k + length] = buf[p + 8:p + 8 + length]
                k += length
                if part < parts - 1:
                    for b in range(4):
                        joined[k + b] = (MAGIC >> (8 * b)) & 255
                    k += 4
                p += 8 + ((length + 3) & ~np.int64(3))
            status, nnz, width, labelled, label = _read_record(
                joined, 0, size, data, indices, base, st, first, info)
        if status != OK:
            info[INFO_POS] = pos
            info[INFO_OTHER] = size if status == BAD_WIRE else info[INFO_OTHER]
            return status, row, pos
        indptr[row + 1] = base + nnz
        widths[row] = width
        has_label[row] = labelled
        labels[row] = label
        row += 1
        pos = after
    return OK, row, pos
