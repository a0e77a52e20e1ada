"""MXNet's NDArray-list files (``mx.nd.save`` / ``mx.nd.load``), read and written without MXNet.

The layout, from MXNet's ``src/ndarray/ndarray.cc`` (``NDArray::Save`` / ``NDArray::Load``),
all little-endian:

- u64 magic ``0x112`` (``kMXAPINDArrayListMagic``), u64 reserved 0, u64 count;
- ``count`` records: u32 magic, ``0xF993FAC9`` (V2) or ``0xF993FACA`` (V3) followed by an
  i32 storage type (0 dense; 1 row-sparse and 2 CSR are refused here), ``0xF993FAC8`` (V1),
  or, in files older than V1, the number of dimensions itself; the shape as i32 ndim and
  i64 dims (before V1: u32 dims); the context as i32 device type and i32 device id; an
  i32 dtype flag (:data:`DTYPES`); the raw data;
- u64 name count (0, or one name per record), each name a u64 length and its bytes
  (``arg:v``, ``aux:...`` in checkpoints).

:func:`read_ndarrays` checks every length and size against the bytes left before it reads
(a shape's bytes must fit in what remains, so no file makes it allocate more than the file
holds) and refuses anything else with a :class:`~fmlearn.persistence.ModelFileError` naming
the file, the member and the record.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np

from ..persistence import ModelFileError

__all__ = ["DTYPES", "read_ndarrays", "write_ndarrays"]

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
#: MXNet's dtype flags (``mshadow::TypeFlag``) and the NumPy dtypes they stand for.
DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"), 1: np.dtype("<f8"), 2: np.dtype("<f2"), 3: np.dtype("u1"),
    4: np.dtype("<i4"), 5: np.dtype("i1"), 6: np.dtype("<i8")}
_FLAGS = {dtype: flag for flag, dtype in DTYPES.items()}
_STORAGE = {1: "row_sparse", 2: "csr"}
_DEVICES = (1, 2, 3, 5)  # cpu, gpu, cpu_pinned, cpu_shared
_MAX_NDIM = 32
_MAX_DIM = 1 << 40


class _Bytes:
    """A cursor over ``data`` that refuses to read past its end."""

    def __init__(self, data: bytes, fail) -> None:
        self.data, self.at, self.fail = memoryview(data), 0, fail

    @property
    def left(self) -> int:
        return len(self.data) - self.at

    def take(self, n: int, what: str) -> memoryview:
        if n > self.left:
            raise self.fail(f"truncated: {what}: {n} bytes needed, {self.left} left")
        self.at += n
        return self.data[self.at - n:self.at]

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def read_ndarrays(data: bytes, path: str = "<bytes>", member: str = "params"
                  ) -> dict[str, np.ndarray] | list[np.ndarray]:
    """The arrays of an NDArray-list file, as ``mx.nd.load`` gives them.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    path, member : str
        The file and the member (inside an archive) to name in errors.

    Returns
    -------
    arrays : dict or list
        ``{name: array}`` when the file names its arrays, else the arrays in order; each a
        dense NumPy array of the stored dtype and shape.

    Raises
    ------
    ModelFileError
        If the bytes are not such a file: a wrong magic, a truncated record, a shape or
        size larger than the bytes left, sparse storage, an unknown dtype flag or device,
        a name count other than 0 or the number of arrays, repeated names, trailing bytes.

    Examples
    --------
    >>> import numpy as np
    >>> data = write_ndarrays({"arg:v": np.ones((2, 3), np.float32)})
    >>> arrays = read_ndarrays(data)
    >>> arrays["arg:v"].shape, arrays["arg:v"].dtype
    ((2, 3), dtype('float32'))
    >>> try:
    ...     read_ndarrays(data[:-2], "m.params")
    ... except ModelFileError as exc:
    ...     print(exc.problem)
    params: name 0: truncated: its bytes: 5 bytes needed, 3 left
    """
    def fail_at(where):
        return lambda problem: ModelFileError(path, f"{member}: {where}: {problem}")

    cursor = _Bytes(data, fail_at("header"))
    magic, reserved, count = cursor.unpack("QQQ", "the list header")
    if magic != LIST_MAGIC:
        raise cursor.fail(f"not an MXNet NDArray file: magic {magic:#x}, expected "
                          f"{LIST_MAGIC:#x}")
    if reserved != 0:
        raise cursor.fail(f"reserved field is {reserved}, expected 0")
    if count > cursor.left // 20:  # a record takes at least 20 bytes
        raise cursor.fail(f"{count} arrays cannot fit in the {cursor.left} bytes left")
    arrays = []
    for i in range(count):
        cursor.fail = fail_at(f"record {i} of {count}")
        arrays.append(_read_record(cursor))
    cursor.fail = fail_at("names")
    (n_names,) = cursor.unpack("Q", "the name count")
    if n_names not in (0, count):
        raise cursor.fail(f"{n_names} names for {count} arrays")
    names = []
    for i in range(n_names):
        cursor.fail = fail_at(f"name {i}")
        (length,) = cursor.unpack("Q", "its length")
        try:
            names.append(bytes(cursor.take(length, "its bytes")).decode("utf-8"))
        except UnicodeDecodeError:
            raise cursor.fail("not UTF-8") from None
    cursor.fail = fail_at("end")
    if cursor.left:
        raise cursor.fail(f"{cursor.left} bytes after the last name")
    if not names:
        return arrays
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise ModelFileError(path, f"{member}: names: {repeated!r} names two arrays")
    return dict(zip(names, arrays))


def _read_record(cursor: _Bytes) -> np.ndarray:
    (magic,) = cursor.unpack("I", "the record magic")
    if magic in (V2_MAGIC, V3_MAGIC):
        (storage,) = cursor.unpack("i", "the storage type")
        if storage in _STORAGE:
            raise cursor.fail(f"{_STORAGE[storage]} storage is not supported; save dense arrays "
                              "(tostype('default'))")
        if storage != 0:
            raise cursor.fail(f"unknown storage type {storage}")
    if magic in (V1_MAGIC, V2_MAGIC, V3_MAGIC):
        (ndim,) = cursor.unpack("i", "the number of dimensions")
        dim_format = "q"
    elif magic <= _MAX_NDIM:  # before V1 the record starts with ndim and dims are u32
        ndim, dim_format = magic, "I"
    else:
        raise cursor.fail(f"unknown record magic {magic:#x}")
    if not 0 < ndim <= _MAX_NDIM and not (ndim == 0 and magic == V3_MAGIC):
        raise cursor.fail(f"ndim {ndim} is not 1 to {_MAX_NDIM}" if ndim else
                          "an empty NDArray (no shape)")
    shape = cursor.unpack(dim_format * ndim, "the shape")
    if any(d < 0 for d in shape):
        raise cursor.fail(f"shape {shape} has a negative dimension")
    if max(shape, default=0) > _MAX_DIM:  # NumPy cannot shape even an empty array so
        raise cursor.fail(f"shape {shape} has a dimension over 2**40")
    device, device_id = cursor.unpack("ii", "the context")
    if device not in _DEVICES or device_id < 0:
        raise cursor.fail(f"unknown context (device type {device}, id {device_id})")
    (flag,) = cursor.unpack("i", "the dtype flag")
    if flag not in DTYPES:
        raise cursor.fail(f"unknown dtype flag {flag}; known: {sorted(DTYPES)}")
    dtype = DTYPES[flag]
    size = 1
    for d in shape:
        size *= d
    if size * dtype.itemsize > cursor.left:
        raise cursor.fail(f"shape {shape} of {dtype.name} needs {size * dtype.itemsize} bytes, "
                          f"{cursor.left} left")
    raw = cursor.take(size * dtype.itemsize, "the data")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_ndarrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of an NDArray-list file holding ``arrays`` (dense V2 records on the CPU
    context), as ``mx.nd.save`` writes them.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        Names and arrays; each array's dtype must have an MXNet flag (:data:`DTYPES`).

    Returns
    -------
    data : bytes
        What ``mx.nd.load`` and :func:`read_ndarrays` read back.

    Examples
    --------
    >>> import numpy as np
    >>> data = write_ndarrays({"arg:w0_weight": np.zeros(1, np.float32)})
    >>> len(data), data[:8]
    (89, b'\\x12\\x01\\x00\\x00\\x00\\x00\\x00\\x00')
    """
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for name, array in arrays.items():
        array = np.asarray(array)
        flag = _FLAGS.get(array.dtype.newbyteorder("<"))
        if flag is None or array.ndim == 0:
            raise ValueError(f"{name}: MXNet stores no {array.ndim}-d {array.dtype} array")
        parts.append(struct.pack(f"<Iii{array.ndim}qiii", V2_MAGIC, 0, array.ndim, *array.shape,
                                 1, 0, flag))
        parts.append(np.ascontiguousarray(array, dtype=DTYPES[flag]).tobytes())
    parts.append(struct.pack("<Q", len(arrays)))
    for name in arrays:
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(parts)
