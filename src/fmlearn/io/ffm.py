"""FFM text files (libffm, xLearn): ``label field:index:value ...`` per line."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._files import write_atomically
from ._text import (DEFAULT_BLOCK_BYTES, describe, feature_columns, format_rows, iter_blocks,
                    line_of_entry, parse_buffer, read_bytes, to_csr)
from .errors import DataFormatError
from .libsvm import _check_streaming

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._typing import CSRMatrix, MatrixLike, Source, StrPath

    # What the readers return: the rows, their labels and the field of each feature.
    Rows: TypeAlias = tuple[CSRMatrix, NDArray[np.float64], NDArray[np.int32]]

DEFAULT_MAX_FEATURES = 2**26


def load_ffm(source: Source, *, n_features: int | None = None, zero_based: bool = True,
             field_conflicts: Literal["raise", "first"] = "raise", dtype: DTypeLike = np.float32,
             max_features: int = DEFAULT_MAX_FEATURES) -> Rows:
    """Read an FFM file into a CSR matrix, its labels and the field of every feature.

    fmlearn's field-aware model gives each feature one field. Files whose
    feature ids were hashed over all fields can hold the same id under two
    fields (libffm then shares its parameters between them); ``field_conflicts``
    says what to do then. Comments, blank lines and Windows line endings are
    accepted as in :func:`~fmlearn.io.load_libsvm`.

    Parameters
    ----------
    source : str, path or binary file object
    n_features : int, optional
        Width of the matrix; by default one more than the largest index.
    zero_based : bool or "auto", default=True
        Whether feature index 0 is the first feature (libffm). Field ids are
        always zero-based.
    field_conflicts : {"raise", "first"}, default="raise"
        For a feature seen under two fields: raise ``DataFormatError``, or keep
        the field it has first in the file (two entries of that feature in one
        row are then summed).
    dtype : numpy dtype, default=float32
    max_features : int, default=2**26
        The widest matrix read without ``n_features``: ``fields`` takes 4 bytes per
        feature, so a larger index (one token can say 2147483646) is an error
        rather than gigabytes. Ignored when ``n_features`` is given.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
    fields : ndarray of shape (n_features,)
        The field id of each feature, -1 for features that never occur.

    Raises
    ------
    DataFormatError
        Naming file, line and column, as :func:`~fmlearn.io.load_libsvm` does,
        for a feature that occurs in two fields (unless ``field_conflicts="first"``)
        and for an index of ``max_features`` or more without ``n_features``.

    Examples
    --------
    >>> import io
    >>> X, y, fields = load_ffm(io.BytesIO(b"1 0:0:1 1:3:0.5\\n0 0:1:1 1:2:1\\n"))
    >>> X.toarray()
    array([[1. , 0. , 0. , 0.5],
           [0. , 1. , 1. , 0. ]], dtype=float32)
    >>> fields
    array([0, 0, 1, 1], dtype=int32)
    >>> load_ffm(io.BytesIO(b"1 0:2147483646:1\\n"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fmlearn.io.errors.DataFormatError: <stream>, line 1: feature index 2147483646 makes the ...
    """
    name = describe(source)
    parsed = parse_buffer(read_bytes(source), name=name, with_fields=True)
    if parsed.labels.size == 0:
        raise DataFormatError(name, "the file holds no data rows")
    return _rows(parsed, name, zero_based, n_features, field_conflicts, dtype, max_features)


def iter_ffm(source: Source, *, n_features: int, zero_based: bool = True,
             field_conflicts: Literal["raise", "first"] = "raise", dtype: DTypeLike = np.float32,
             block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Rows]:
    """Read an FFM file in chunks of about ``block_bytes`` bytes of text.

    As :func:`~fmlearn.io.iter_libsvm`; ``fields`` of each chunk lists the
    fields of the features that chunk holds (-1 for the others).

    Yields
    ------
    X, y, fields
        As :func:`load_ffm` returns them, for the rows of one chunk.

    Examples
    --------
    >>> import io
    >>> for X, y, fields in iter_ffm(io.BytesIO(b"1 0:0:1\\n0 1:1:1\\n"), n_features=2,
    ...                              block_bytes=4):
    ...     print(X.shape, fields)
    (1, 2) [ 0 -1]
    (1, 2) [-1  1]
    """
    _check_streaming(zero_based)
    name = describe(source)
    for first_line, buf in iter_blocks(source, block_bytes):
        parsed = parse_buffer(buf, name=name, with_fields=True, first_line=first_line)
        if parsed.labels.size:
            yield _rows(parsed, name, zero_based, n_features, field_conflicts, dtype)


def dump_ffm(X: MatrixLike, y: ArrayLike, fields: ArrayLike, path: StrPath, *,
             zero_based: bool = True) -> None:
    """Write ``X``, ``y`` and the field of each feature as an FFM file, atomically.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_rows, n_features)
    y : array-like of shape (n_rows,)
    fields : array-like of shape (n_features,)
        The non-negative field id of every feature.
    path : str or path
    zero_based : bool, default=True

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.ffm")
    >>> dump_ffm(np.array([[1.0, 0.0, 0.5]]), [1], [0, 0, 1], path)
    >>> print(open(path).read(), end="")
    1 0:0:1.0 1:2:0.5
    """
    fields = np.asarray(fields)
    n_features = np.shape(X)[1]
    if fields.shape != (n_features,) or fields.dtype.kind not in "iu" or (fields < 0).any():
        raise ValueError(f"fields must hold a non-negative integer field id for each of the "
                         f"{n_features} features; got shape {fields.shape}, dtype {fields.dtype}")
    text = format_rows(X, y, fields=fields, zero_based=zero_based)
    write_atomically(path, lambda handle: handle.write(text))


def _rows(parsed: Any, name: str, zero_based: bool, n_features: int | None,
          field_conflicts: str, dtype: DTypeLike, max_features: int | None = None) -> Rows:
    if field_conflicts not in ("raise", "first"):
        raise ValueError(f"field_conflicts must be 'raise' or 'first'; got {field_conflicts!r}")
    columns, n_features = feature_columns(parsed, name=name, zero_based=zero_based,
                                          n_features=n_features, max_features=max_features)
    fields = np.full(n_features, -1, dtype=np.int32)
    fields[columns[::-1]] = parsed.fields[::-1]  # the first occurrence of each feature wins
    clash = np.flatnonzero(fields[columns] != parsed.fields)
    if clash.size and field_conflicts == "raise":
        entry = clash[0]
        first = np.flatnonzero(columns == columns[entry])[0]
        raise DataFormatError(
            name, f"feature {parsed.indices[entry]} is in field {parsed.fields[entry]} here but in "
            f"field {parsed.fields[first]} on line {line_of_entry(parsed, first)}; each feature "
            "must belong to one field (field_conflicts='first' keeps the first)",
            line=line_of_entry(parsed, entry))
    X = to_csr(parsed, columns, n_features, name=name, dtype=dtype,
               sum_duplicates=field_conflicts == "first")
    return X, parsed.labels, fields
