"""Reading a model file's members safely: sizes checked before anything is read.

:class:`Archive` reads a member of the zip archive only after checking, from the zip
directory and the member's ``.npy`` header, that it is as large as it says and no larger
than its compressed bytes can expand to: a file cannot make a reader allocate more than
about a thousand times its own size, nor parse a header larger than ``MAX_HEADER_BYTES``.
It raises :class:`FileProblem`; :mod:`fmlearn.persistence` adds the file's path.
"""
import zipfile
from dataclasses import dataclass

import numpy as np

MAX_HEADER_BYTES = 64 * 2**20
# DEFLATE expands at most 1032-fold (a 258-byte match per 2-bit code; zlib's technical notes).
MAX_DEFLATE_RATIO = 1032
_NPY_HEADER_LIMIT = 10000  # numpy's own max_header_size


class FileProblem(ValueError):
    """What is wrong with a model file, without its path (the caller adds it)."""


@dataclass
class Raw:
    """An object of a registered ``kind`` as read from a file: its fields, not yet built."""

    kind: str
    fields: dict


# --- reading members -----------------------------------------------------------------------------
class Archive:
    """The members of an opened model file, each read only after its sizes are checked.

    ``archive[name]`` is the array member ``name + ".npy"``, whose dtype and shape must be
    those ``table[name]`` (the header's ``arrays`` entry, set once the header is read) lists.

    Examples
    --------
    >>> import io, zipfile, numpy as np
    >>> buffer = io.BytesIO()
    >>> with zipfile.ZipFile(buffer, "w") as z, z.open("w.npy", "w") as member:
    ...     np.lib.format.write_array(member, np.arange(3.0))
    >>> archive = Archive(zipfile.ZipFile(buffer), len(buffer.getvalue()),
    ...                   {"w": {"dtype": "<f8", "shape": [3]}})
    >>> archive["w"]
    array([0., 1., 2.])
    """

    def __init__(self, archive, file_size, table=None):
        self.archive, self.file_size, self.table = archive, file_size, table

    def member(self, filename, what):
        """The checked ``ZipInfo`` of ``filename``; ``what`` names it in messages."""
        try:
            info = self.archive.getinfo(filename)
        except KeyError:
            raise FileProblem(f"missing {what}: the file is incomplete or was altered") from None
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise FileProblem(f"{what} uses zip compression method {info.compress_type}; "
                              "fmlearn writes stored or deflated members only")
        if info.header_offset + info.compress_size > self.file_size:
            raise FileProblem(f"{what} is truncated: its {info.compress_size} bytes run past "
                              f"the end of the {self.file_size}-byte file")
        stored = info.compress_type == zipfile.ZIP_STORED
        if (info.file_size != info.compress_size if stored
                else info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024):
            raise FileProblem(f"{what} claims {info.file_size} bytes, more than its "
                              f"{info.compress_size} stored bytes can hold")
        return info

    def header_bytes(self, filename):
        """The bytes of the header member, refused above ``MAX_HEADER_BYTES``."""
        info = self.member(filename, filename)
        if info.file_size > MAX_HEADER_BYTES:
            raise FileProblem(f"{filename} claims {info.file_size} bytes; a model header has at "
                              f"most {MAX_HEADER_BYTES}")
        return self.archive.read(info)

    def __getitem__(self, name):
        what = f"array {name!r}"
        info = self.member(f"{name}.npy", what)
        with self.archive.open(info) as member:
            dtype, shape = _npy_header(member, what)
            need = member.tell() + dtype.itemsize * int(np.prod(shape, dtype=object))
            if need != info.file_size:
                raise FileProblem(f"{what} declares shape {list(shape)} of {dtype.str} "
                                  f"({need} bytes with its header) but its member holds "
                                  f"{info.file_size} bytes")
            agree_with_table(name, dtype, shape, self.table.get(name))
            member.seek(0)
            return np.lib.format.read_array(member, allow_pickle=False)


def _npy_header(member, what):
    """``(dtype, shape)`` from the ``.npy`` header of the open ``member``, refusing what a
    model file never holds."""
    try:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy format version {version} is not one fmlearn writes")
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(member, max_header_size=_NPY_HEADER_LIMIT)
    except ValueError as exc:  # the zip layer's errors (a bad CRC, ...) go to the caller
        raise FileProblem(f"{what} is not a readable .npy array ({exc})") from exc
    if dtype.hasobject:
        raise FileProblem(f"{what} holds Python objects, which fmlearn never unpickles: not a "
                          "file fmlearn wrote")
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise FileProblem(f"{what} has dtype {dtype.str}; model files hold numbers only")
    if any(n < 0 for n in shape):
        raise FileProblem(f"{what} declares the negative shape {list(shape)}")
    return dtype, shape


def agree_with_table(name, dtype, shape, spec):
    """Refuse an array whose dtype or shape differs from its entry in the header's table."""
    if not isinstance(spec, dict) or spec.get("dtype") != dtype.str \
            or spec.get("shape") != list(shape):
        said = (f"{spec.get('dtype')} and {spec.get('shape')}" if isinstance(spec, dict)
                else "nothing of it")
        raise FileProblem(f"array {name!r} has dtype {dtype.str} and shape {list(shape)}; the "
                          f"header says {said}")
