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
from numba.core import types
from numba.extending import intrinsic
from .._numba_cache import CACHE

try:  # the decoding helpers allocate nothing, so they can do without reference counting
    from numba.core.options import DefaultOptions
    _NO_REFCOUNT = {"_nrt": False} if hasattr(DefaultOptions, "_nrt") else {}
except ImportError:  # pragma: no cover - a numba without the option: slower, same results
    _NO_REFCOUNT = {}

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
_STACK = 8  # st[_STACK:] holds the field numbers of the unknown groups being skipped
_MAX_GROUP_DEPTH = 100  # protobuf's default recursion limit
_STATE_SIZE = _STACK + _MAX_GROUP_DEPTH

# Slots of ``info``, the error details returned to Python.
INFO_POS = 0  # byte offset of the record (its first header) in the buffer
INFO_VALUE = 1  # the offending value: magic word, key, shape, count, oneof member
INFO_OTHER = 2  # a second value (the key count beside the value count, the record length)
INFO_PAYLOAD_POS = 3  # for BAD_WIRE: the byte within the payload
INFO_SIZE = 4

_CLIP = np.uint64(2**62)
_VALUES = np.frombuffer(b"values", dtype=np.uint8)
_SCORE = np.frombuffer(b"score", dtype=np.uint8)
_PREDICTED_LABEL = np.frombuffer(b"predicted_label", dtype=np.uint8)


@njit(cache=CACHE, inline="always")
def _varint(buf, pos, end):
    """The unsigned varint at ``buf[pos:end]`` and the position after it (-1 when malformed)."""
    if pos < end and buf[pos] < 128:
        return np.uint64(buf[pos]), pos + 1
    result = np.uint64(0)
    shift = np.uint64(0)
    for _ in range(10):
        if pos >= end:
            return np.uint64(0), np.int64(-1)
        byte = buf[pos]
        pos += 1
        result |= np.uint64(byte & 127) << shift
        if byte < 128:
            return result, pos
        shift += np.uint64(7)
    return np.uint64(0), np.int64(-1)


@njit(cache=CACHE, inline="always")
def _clip(value):
    return np.int64(value) if value < _CLIP else np.int64(_CLIP)


@njit(cache=CACHE, inline="always")
def _tag(buf, pos, end):
    """``(field, wire_type, next_pos)`` of the tag at ``pos``; ``next_pos`` -1 when malformed.

    As protobuf: at most 5 bytes, at most 32 bits, field number not 0.
    """
    if pos < end and buf[pos] < 128:
        tag = np.int64(buf[pos])
        pos += 1
    else:
        start = pos
        value, pos = _varint(buf, pos, end)
        if pos < 0 or pos - start > 5 or value > np.uint64(0xFFFFFFFF):
            return np.int64(0), np.int64(0), np.int64(-1)
        tag = np.int64(value)
    if tag >> 3 == 0:
        return np.int64(0), np.int64(0), np.int64(-1)
    return tag >> 3, tag & 7, pos


@njit(cache=CACHE, **_NO_REFCOUNT)
def _skip_scalar(buf, pos, end, wire):
    """The position after a non-group field body of wire type ``wire`` at ``pos``, or -1."""
    if wire == 0:
        _, pos = _varint(buf, pos, end)
        return pos
    if wire == 1:
        return pos + 8 if end - pos >= 8 else np.int64(-1)
    if wire == 5:
        return pos + 4 if end - pos >= 4 else np.int64(-1)
    if wire == 2:
        n, pos = _varint(buf, pos, end)
        if pos < 0 or n > np.uint64(end - pos):
            return np.int64(-1)
        return pos + np.int64(n)
    return np.int64(-1)


@njit(cache=CACHE, **_NO_REFCOUNT)
def _skip(buf, pos, end, field, wire, st):
    """The position after the body of an unknown field, or -1 (an END_GROUP here is malformed).

    A group is skipped through nested groups to the END_GROUP of the same field number, the
    open groups' numbers kept in ``st[_STACK:]`` (numba's cache does not take recursion).
    """
    if wire != 3:
        return _skip_scalar(buf, pos, end, wire)
    st[_STACK] = field
    depth = 1
    while depth > 0:
        inner, wire, pos = _tag(buf, pos, end)
        if pos < 0:
            return pos
        if wire == 4:
            if inner != st[_STACK + depth - 1]:
                return np.int64(-1)
            depth -= 1
        elif wire == 3:
            if depth >= _MAX_GROUP_DEPTH:
                return np.int64(-1)
            st[_STACK + depth] = inner
            depth += 1
        else:
            pos = _skip_scalar(buf, pos, end, wire)
            if pos < 0:
                return pos
    return pos


@njit(cache=CACHE, **_NO_REFCOUNT)
def _check_message(buf, pos, end, st):
    """Whether ``buf[pos:end]`` is a sequence of well-formed fields (for messages not read)."""
    while pos < end:
        field, wire, pos = _tag(buf, pos, end)
        if pos < 0:
            return False
        pos = _skip(buf, pos, end, field, wire, st)
        if pos < 0:
            return False
    return True


@njit(cache=CACHE, **_NO_REFCOUNT)
def _length_delimited(buf, pos, end):
    """The body ``(start, stop)`` of a length-delimited field whose length varint is at ``pos``."""
    n, pos = _varint(buf, pos, end)
    if pos < 0 or n > np.uint64(end - pos):
        return np.int64(-1), np.int64(-1)
    return pos, pos + np.int64(n)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret a uint32 as the float32 with those bits."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return types.float32(types.uint32), codegen


@intrinsic
def _float64_from_bits(typingctx, bits):
    """Reinterpret a uint64 as the float64 with those bits."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.uint64), codegen


@njit(cache=CACHE, inline="always")
def _u32(buf, pos):
    """The little-endian uint32 at ``buf[pos:pos + 4]``."""
    return (np.uint32(buf[pos]) | (np.uint32(buf[pos + 1]) << np.uint32(8))
            | (np.uint32(buf[pos + 2]) << np.uint32(16))
            | (np.uint32(buf[pos + 3]) << np.uint32(24)))


@njit(cache=CACHE, inline="always")
def _float32_at(buf, pos):
    return _float32_from_bits(np.uint32(_u32(buf, pos)))


@njit(cache=CACHE, inline="always")
def _float64_at(buf, pos):
    bits = np.uint64(0)
    for b in range(8):
        bits |= np.uint64(buf[pos + b]) << np.uint64(8 * b)
    return _float64_from_bits(bits)


@njit(cache=CACHE, inline="always")
def _int32_of(value):
    """An int32 field's value from its varint (the low 32 bits, two's complement)."""
    low = np.int64(value & np.uint64(0xFFFFFFFF))
    return low - 2**32 if low >= 2**31 else low


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
                st[_BIGKEY] = _clip(key)
            indices[base + st[_NK]] = -1
        else:
            indices[base + st[_NK]] = np.int32(key)
    st[_NK] += 1


@njit(cache=CACHE, **_NO_REFCOUNT)
def _read_tensor(buf, pos, end, kind, mode, data, indices, base, st, first):
    """Read one occurrence of a tensor message ``buf[pos:end]``, appending to what ``st`` holds.

    ``mode`` 1 stores values and keys at ``data[base:]`` and ``indices[base:]``, 2 keeps the
    first value in ``first``, 0 only checks the wire format. Returns False on malformed input,
    with ``st[_ERRPOS]`` where it is.
    """
    while pos < end:
        at = pos
        field, wire, pos = _tag(buf, pos, end)
        if pos < 0:
            st[_ERRPOS] = at
            return False
        if field == 1 and wire == 2:  # packed values
            start, stop = _length_delimited(buf, pos, end)
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
                        data[k] = _float32_at(buf, p)
                        k += 1
                    st[_NV] = k - base
                else:
                    for p in range(start, stop, 4):
                        _put_value(_float32_at(buf, p), mode, data, base, st, first)
            elif kind == FLOAT64:
                if (stop - start) % 8:
                    st[_ERRPOS] = at
                    return False
                for p in range(start, stop, 8):
                    _put_value(_float64_at(buf, p), mode, data, base, st, first)
            else:
                p = start
                while p < stop:
                    value, p = _varint(buf, p, stop)
                    if p < 0:
                        st[_ERRPOS] = at
                        return False
                    _put_value(_int32_of(value), mode, data, base, st, first)
            pos = stop
        elif field == 1 and ((kind == FLOAT32 and wire == 5) or (kind == FLOAT64 and wire == 1)
                             or (kind == INT32 and wire == 0)):  # one unpacked value
            if wire == 5:
                if end - pos < 4:
                    st[_ERRPOS] = at
                    return False
                _put_value(_float32_at(buf, pos), mode, data, base, st, first)
                pos += 4
            elif wire == 1:
                if end - pos < 8:
                    st[_ERRPOS] = at
                    return False
                _put_value(_float64_at(buf, pos), mode, data, base, st, first)
                pos += 8
            else:
                value, pos = _varint(buf, pos, end)
                if pos < 0:
                    st[_ERRPOS] = at
                    return False
                _put_value(_int32_of(value), mode, data, base, st, first)
        elif (field == 2 or field == 3) and (wire == 2 or wire == 0):  # keys or shape
            if wire == 2:
                start, stop = _length_delimited(buf, pos, end)
                if start < 0:
                    st[_ERRPOS] = at
                    return False
            else:
                start, stop = pos, end
            p = start
            while p < stop:
                value, p = _varint(buf, p, stop)
                if p < 0:
                    st[_ERRPOS] = at
                    return False
                if field == 2:
                    _put_key(value, mode, indices, base, st)
                else:
                    if st[_NS] == 0:
                        st[_SHAPE0] = _clip(value)
                    st[_NS] += 1
                if wire == 0:
                    break
            pos = p if wire == 0 else stop
        else:
            pos = _skip(buf, pos, end, field, wire, st)
            if pos < 0:
                st[_ERRPOS] = at
                return False
    return True


@njit(cache=CACHE, **_NO_REFCOUNT)
def _reset(st):
    st[_NV] = 0
    st[_NK] = 0
    st[_NS] = 0
    st[_SHAPE0] = 0
    st[_BIGKEY] = -1


@njit(cache=CACHE, **_NO_REFCOUNT)
def _read_value(buf, pos, end, mode, data, indices, base, st, first):
    """Merge one occurrence of a ``Value`` message into the state ``st``."""
    while pos < end:
        at = pos
        field, wire, pos = _tag(buf, pos, end)
        if pos < 0:
            st[_ERRPOS] = at
            return False
        if wire == 2 and (field == FLOAT32 or field == FLOAT64 or field == INT32 or field == BYTES):
            start, stop = _length_delimited(buf, pos, end)
            if start < 0:
                st[_ERRPOS] = at
                return False
            if field != st[_KIND]:  # another oneof member replaces the one set
                st[_KIND] = field
                _reset(st)
            if field == BYTES:
                if not _check_message(buf, start, stop, st):
                    st[_ERRPOS] = at
                    return False
            else:
                if not _read_tensor(buf, start, stop, field, mode, data, indices, base, st,
                                    first):
                    return False
            pos = stop
        else:
            pos = _skip(buf, pos, end, field, wire, st)
            if pos < 0:
                st[_ERRPOS] = at
                return False
    return True


@njit(cache=CACHE, **_NO_REFCOUNT)
def _entry_key(buf, pos, end, st):
    """Check a map entry ``buf[pos:end]``; return ``(ok, key_start, key_stop)`` of its last key."""
    key_start = np.int64(0)
    key_stop = np.int64(0)
    while pos < end:
        at = pos
        field, wire, pos = _tag(buf, pos, end)
        if pos < 0:
            return False, at, at
        if field == 1 and wire == 2:
            key_start, key_stop = _length_delimited(buf, pos, end)
            if key_start < 0:
                return False, at, at
            pos = key_stop
        else:
            pos = _skip(buf, pos, end, field, wire, st)
            if pos < 0:
                return False, at, at
    return True, key_start, key_stop


@njit(cache=CACHE, **_NO_REFCOUNT)
def _read_entry(buf, pos, end, mode, data, indices, base, st, first):
    """Read the value of a map entry (all its occurrences, merged) into a fresh state ``st``."""
    _reset(st)
    st[_KIND] = 0
    while pos < end:
        field, wire, pos = _tag(buf, pos, end)  # the entry was checked by _entry_key
        if field == 2 and wire == 2:
            start, stop = _length_delimited(buf, pos, end)
            if not _read_value(buf, start, stop, mode, data, indices, base, st, first):
                return False
            pos = stop
        else:
            pos = _skip(buf, pos, end, field, wire, st)
    return True


@njit(cache=CACHE, **_NO_REFCOUNT)
def _same(buf, start, stop, name):
    if stop - start != name.shape[0]:
        return False
    for i in range(name.shape[0]):
        if buf[start + i] != name[i]:
            return False
    return True


@njit(cache=CACHE, **_NO_REFCOUNT)
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
        field, wire, pos = _tag(buf, pos, end)
        bad = pos < 0
        if not bad:
            if wire == 2 and (field == 1 or field == 2):
                start, stop = _length_delimited(buf, pos, end)
                bad = start < 0
                if not bad:
                    ok, key_start, key_stop = _entry_key(buf, start, stop, st)
                    if not ok:
                        bad = True
                        at = key_start
                    else:
                        earlier = (np.int64(-1), np.int64(-1))
                        if _same(buf, key_start, key_stop, _VALUES):  # the last entry wins
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
                pos = _skip(buf, pos, end, field, wire, st)
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


@njit(cache=CACHE, **_NO_REFCOUNT)
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
        word = _u32(buf, p)
        if word != np.uint32(MAGIC):
            info[INFO_POS] = p
            info[INFO_VALUE] = word
            return BAD_MAGIC, size, p, parts
        head = _u32(buf, p + 4)
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
                length = np.int64(_u32(buf, p + 4) & np.uint32(LENGTH_MASK))
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


# ---------------------------------------------------------------------------------------------
# Encoding


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
        if _u32(out, pos + 8 + i) == magic:
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
        if _u32(payload, i) == magic:
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
        p = _put_name(out, p, _VALUES)
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
            p = _put_scalar_entry(out, p, _VALUES, label_bits[row])
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
