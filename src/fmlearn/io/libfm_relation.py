"""libFM's relational block structure (BS) files: ``-relation R`` reads ``R.x`` or ``R.xt``,
``R.train``, ``R.test`` and, when present, ``R.groups`` (libFM 1.4.4, ``relation.h``).

``R.x`` is the block's design matrix in libFM's binary sparse format (written by its
``convert`` tool), ``R.xt`` its transpose (``transpose``; libFM's MCMC and ALS read only
this one): a header ``(id=2, float_size, num_values: uint64, num_rows, num_cols)``, then per
row its entry count (uint32) and its ``(feature id: uint32, value)`` pairs, values float32
(``float_size`` 4) or float64 (8, padded to 16-byte pairs). ``R.train`` and ``R.test`` give
the block row of each training and test case, one integer per line, or as libFM's binary
vector ``(1, 4, n)`` followed by ``n`` uint32. ``R.groups`` gives the group of each block
feature, one per line, as ``-meta`` does for the main table.
"""
import os
import struct
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .errors import DataFormatError

_HEADER = struct.Struct("<IIQII")  # libFM's file_header: id, float_size, num_values, rows, cols
_MATRIX_ID = 2
_VECTOR = struct.Struct("<III")  # DVector: file_version 1, data_size 4, dim


@dataclass
class LibFMRelation:
    """One relation of libFM's block structure: the block rows and how cases index them.

    Attributes
    ----------
    X : scipy.sparse.csr_matrix of shape (n_block_rows, n_block_features)
    train, test : ndarray of int64
        The block row of each training and test case.
    groups : ndarray of int64 or None
        The group of each block feature (``R.groups``), None without the file.
    """

    X: sp.csr_matrix
    train: np.ndarray
    test: np.ndarray
    groups: np.ndarray | None


def read_sparse_binary(path):
    """A libFM binary sparse matrix (``.x`` / ``.xt``) as float64 CSR; ``DataFormatError``
    naming the file (and the row) where it breaks the format.

    Examples
    --------
    >>> import struct, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "block.x")
    >>> body = struct.pack("<IIQII", 2, 4, 2, 2, 3) + struct.pack("<IIf", 1, 2, 0.5)
    >>> body += struct.pack("<IIf", 1, 0, 1.5)
    >>> _ = open(path, "wb").write(body)
    >>> read_sparse_binary(path).toarray()
    array([[0. , 0. , 0.5],
           [1.5, 0. , 0. ]])
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < _HEADER.size:
        raise DataFormatError(path, f"{len(data)} bytes: shorter than libFM's binary header")
    ident, float_size, n_values, n_rows, n_cols = _HEADER.unpack_from(data)
    if ident != _MATRIX_ID or float_size not in (4, 8):
        raise DataFormatError(path, f"not a libFM binary sparse matrix (id {ident}, float size "
                              f"{float_size}; expected id 2 and float size 4 or 8)")
    pair = np.dtype([("id", "<u4"), ("value", "<f4")]) if float_size == 4 else np.dtype(
        [("id", "<u4"), ("pad", "<u4"), ("value", "<f8")])
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    chunks = []
    offset = _HEADER.size
    for r in range(n_rows):
        if offset + 4 > len(data):
            raise DataFormatError(path, f"row {r}: the file ends before its entry count "
                                  f"({n_rows} rows expected)")
        size = struct.unpack_from("<I", data, offset)[0]
        offset += 4
        if offset + size * pair.itemsize > len(data):
            raise DataFormatError(path, f"row {r}: the file ends inside its {size} entries")
        chunks.append(np.frombuffer(data, pair, size, offset))
        offset += size * pair.itemsize
        indptr[r + 1] = indptr[r] + size
    if offset != len(data) or indptr[-1] != n_values:
        raise DataFormatError(path, f"{indptr[-1]} values in {n_rows} rows and {len(data) - offset}"
                              f" bytes after them; the header says {n_values} values")
    entries = np.concatenate(chunks) if chunks else np.zeros(0, pair)
    bad = np.flatnonzero(entries["id"] >= n_cols)
    if bad.size:
        row = int(np.searchsorted(indptr, bad[0], side="right") - 1)
        raise DataFormatError(path, f"row {row}: feature id {entries['id'][bad[0]]} is outside "
                              f"[0, {n_cols})")
    X = sp.csr_matrix((entries["value"].astype(np.float64), entries["id"].astype(np.int32),
                       indptr), shape=(n_rows, n_cols))
    X.sum_duplicates()
    return X


def read_row_index(path, n_block_rows):
    """The block row of each case: ``R.train`` or ``R.test``, text (one integer per line) or
    libFM's binary vector; each must lie in ``[0, n_block_rows)``.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "R.train")
    >>> _ = open(path, "w").write("1\\n0\\n1\\n")
    >>> read_row_index(path, 2)
    array([1, 0, 1])
    >>> read_row_index(path, 1)
    Traceback (most recent call last):
    ...
    fmlearn.io.errors.DataFormatError: ...R.train, line 1: block row 1 is outside [0, 1), the rows of the relation's .x
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) >= _VECTOR.size and _VECTOR.unpack_from(data)[:2] == (1, 4):
        n = _VECTOR.unpack_from(data)[2]
        if len(data) != _VECTOR.size + 4 * n:
            raise DataFormatError(path, f"a binary vector of {n} entries should have "
                                  f"{_VECTOR.size + 4 * n} bytes, not {len(data)}")
        index = np.frombuffer(data, "<u4", n, _VECTOR.size).astype(np.int64)
    else:
        lines = data.decode("ascii", errors="replace").split()
        try:
            index = np.array([int(v) for v in lines], dtype=np.int64)
        except ValueError:
            bad = next(i for i, v in enumerate(lines) if not v.lstrip("-").isdigit())
            raise DataFormatError(path, f"{lines[bad]!r} is not a block row number",
                                  line=bad + 1) from None
    outside = np.flatnonzero((index < 0) | (index >= n_block_rows))
    if outside.size:
        raise DataFormatError(path, f"block row {index[outside[0]]} is outside "
                              f"[0, {n_block_rows}), the rows of the relation's .x",
                              line=int(outside[0]) + 1)
    return index


def load_libfm_relation(prefix):
    """Read libFM's block files ``prefix.x`` (else ``prefix.xt``), ``prefix.train``,
    ``prefix.test`` and ``prefix.groups`` (optional) of one ``-relation``.

    Returns
    -------
    LibFMRelation
        ``fmlearn.RelationBlock(relation.train, relation.X)`` then joins the training rows.

    Examples
    --------
    >>> import struct, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "user")
    >>> body = struct.pack("<IIQII", 2, 4, 2, 2, 2) + struct.pack("<IIf", 1, 0, 1.0)
    >>> _ = open(prefix + ".x", "wb").write(body + struct.pack("<IIf", 1, 1, 1.0))
    >>> _ = open(prefix + ".train", "w").write("0\\n1\\n1\\n")
    >>> _ = open(prefix + ".test", "w").write("1\\n")
    >>> rel = load_libfm_relation(prefix)
    >>> rel.X.shape, rel.train.tolist(), rel.test.tolist(), rel.groups
    ((2, 2), [0, 1, 1], [1], None)
    """
    if os.path.exists(prefix + ".x"):
        X = read_sparse_binary(prefix + ".x")
    elif os.path.exists(prefix + ".xt"):
        X = read_sparse_binary(prefix + ".xt").T.tocsr()
    else:
        raise DataFormatError(prefix, "neither the block's design matrix .x nor its transpose "
                              ".xt exists")
    train = read_row_index(prefix + ".train", X.shape[0])
    test = read_row_index(prefix + ".test", X.shape[0])
    groups = None
    if os.path.exists(prefix + ".groups"):
        with open(prefix + ".groups") as fh:
            words = fh.read().split()
        if len(words) != X.shape[1] or not all(w.isdigit() for w in words):
            raise DataFormatError(prefix + ".groups", f"expected {X.shape[1]} group ids "
                                  f"(non-negative integers, one per block feature), got "
                                  f"{len(words)} words")
        groups = np.array([int(w) for w in words], dtype=np.int64)
    return LibFMRelation(X, train, test, groups)
