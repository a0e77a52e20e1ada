"""Protobuf's wire format over uint8 buffers, for the RecordIO-protobuf decoder
(:mod:`fmlearn.kernels.recordio`): varints, tags, skipping unknown fields and groups as
protobuf does, and little-endian scalars read from their bytes.

A position past ``end`` or -1 means the wire format broke; the decoder turns it into a status.
"""
import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic
from .._numba_cache import CACHE

try:  # the decoding helpers allocate nothing, so they can do without reference counting
    from numba.core.options import DefaultOptions
    NO_REFCOUNT = {"_nrt": False} if hasattr(DefaultOptions, "_nrt") else {}
except ImportError:  # pragma: no cover - a numba without the option: slower, same results
    NO_REFCOUNT = {}

STACK = 8  # st[STACK:] of a decoder's state holds the field numbers of the groups being skipped
MAX_GROUP_DEPTH = 100  # protobuf's default recursion limit
_CLIP = np.uint64(2**62)


@njit(cache=CACHE, inline="always")
def varint(buf, pos, end):
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
def clip62(value):
    return np.int64(value) if value < _CLIP else np.int64(_CLIP)


@njit(cache=CACHE, inline="always")
def tag(buf, pos, end):
    """``(field, wire_type, next_pos)`` of the tag at ``pos``; ``next_pos`` -1 when malformed.

    As protobuf: at most 5 bytes, at most 32 bits, field number not 0.
    """
    if pos < end and buf[pos] < 128:
        tag = np.int64(buf[pos])
        pos += 1
    else:
        start = pos
        value, pos = varint(buf, pos, end)
        if pos < 0 or pos - start > 5 or value > np.uint64(0xFFFFFFFF):
            return np.int64(0), np.int64(0), np.int64(-1)
        tag = np.int64(value)
    if tag >> 3 == 0:
        return np.int64(0), np.int64(0), np.int64(-1)
    return tag >> 3, tag & 7, pos


@njit(cache=CACHE, **NO_REFCOUNT)
def skip_scalar(buf, pos, end, wire):
    """The position after a non-group field body of wire type ``wire`` at ``pos``, or -1."""
    if wire == 0:
        _, pos = varint(buf, pos, end)
        return pos
    if wire == 1:
        return pos + 8 if end - pos >= 8 else np.int64(-1)
    if wire == 5:
        return pos + 4 if end - pos >= 4 else np.int64(-1)
    if wire == 2:
        n, pos = varint(buf, pos, end)
        if pos < 0 or n > np.uint64(end - pos):
            return np.int64(-1)
        return pos + np.int64(n)
    return np.int64(-1)


@njit(cache=CACHE, **NO_REFCOUNT)
def skip(buf, pos, end, field, wire, st):
    """The position after the body of an unknown field, or -1 (an END_GROUP here is malformed).

    A group is skipped through nested groups to the END_GROUP of the same field number, the
    open groups' numbers kept in ``st[STACK:]`` (numba's cache does not take recursion).
    """
    if wire != 3:
        return skip_scalar(buf, pos, end, wire)
    st[STACK] = field
    depth = 1
    while depth > 0:
        inner, wire, pos = tag(buf, pos, end)
        if pos < 0:
            return pos
        if wire == 4:
            if inner != st[STACK + depth - 1]:
                return np.int64(-1)
            depth -= 1
        elif wire == 3:
            if depth >= MAX_GROUP_DEPTH:
                return np.int64(-1)
            st[STACK + depth] = inner
            depth += 1
        else:
            pos = skip_scalar(buf, pos, end, wire)
            if pos < 0:
                return pos
    return pos


@njit(cache=CACHE, **NO_REFCOUNT)
def check_message(buf, pos, end, st):
    """Whether ``buf[pos:end]`` is a sequence of well-formed fields (for messages not read)."""
    while pos < end:
        field, wire, pos = tag(buf, pos, end)
        if pos < 0:
            return False
        pos = skip(buf, pos, end, field, wire, st)
        if pos < 0:
            return False
    return True


@njit(cache=CACHE, **NO_REFCOUNT)
def length_delimited(buf, pos, end):
    """The body ``(start, stop)`` of a length-delimited field whose length varint is at ``pos``."""
    n, pos = varint(buf, pos, end)
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
def u32(buf, pos):
    """The little-endian uint32 at ``buf[pos:pos + 4]``."""
    return (np.uint32(buf[pos]) | (np.uint32(buf[pos + 1]) << np.uint32(8))
            | (np.uint32(buf[pos + 2]) << np.uint32(16))
            | (np.uint32(buf[pos + 3]) << np.uint32(24)))


@njit(cache=CACHE, inline="always")
def float32_at(buf, pos):
    return _float32_from_bits(np.uint32(u32(buf, pos)))


@njit(cache=CACHE, inline="always")
def float64_at(buf, pos):
    bits = np.uint64(0)
    for b in range(8):
        bits |= np.uint64(buf[pos + b]) << np.uint64(8 * b)
    return _float64_from_bits(bits)


@njit(cache=CACHE, inline="always")
def int32_of(value):
    """An int32 field's value from its varint (the low 32 bits, two's complement)."""
    low = np.int64(value & np.uint64(0xFFFFFFFF))
    return low - 2**32 if low >= 2**31 else low
