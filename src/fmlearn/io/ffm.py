"""FFM text files (libffm, xLearn): ``label field:index:value ...`` per line."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._files import write_atomically
from ._text import (DEFAULT_BLOCK_BYTES, describe, feature_columns, format_rows, iter_blocks,
                    line_of_entry, parse_buffer, read_bytes, to_csr)
from .errors import DataFormatError
from .libsvm import _check_streaming

if TYPE_CHECKING:
    from typing import TypeAlias

    from .._typing import CSRMatrix, MatrixLike, Source, StrPath

    # What the readers return: the rows, their labels and the field of each feature (or the
    # (field, feature id) of each column).
    Rows: TypeAlias = tuple[CSRMatrix, NDArray[np.float64], NDArray[np.int32]]
    Conflicts: TypeAlias = Literal["token", "raise", "first"]

DEFAULT_MAX_FEATURES = 2**26


def load_ffm(source: Source, *, n_features: int | None = None, zero_based: bool = True,
             field_conflicts: Conflicts = "token", vocabulary: ArrayLike | None = None,
             dtype: DTypeLike = np.float32, max_features: int = DEFAULT_MAX_FEATURES) -> Rows:
    """Read an FFM file into a CSR matrix, its labels and the field of every column.

    By default every distinct (field, feature id) token is a column, as LIBFFM and
    xLearn read a file: the first field an id occurs in keeps column ``id``, and each
    further field of that id gets a column after the id range (``n_features + t``, in
    the order they first occur), so a file where every id has one field reads as
    columns ``0 .. n_features - 1``. Each column has parameters of its own; LIBFFM
    instead shares one latent vector per id between the fields it occurs in (a hash
    collision). Comments, blank lines and Windows line endings are accepted as in
    :func:`~fmlearn.io.load_libsvm`.

    Parameters
    ----------
    source : str, path or binary file object
    n_features : int, optional
        Width of the matrix; by default one more than the largest index.
        With ``field_conflicts="token"``, the width of the id range before the
        added columns.
    zero_based : bool or "auto", default=True
        Whether feature index 0 is the first feature (libffm). Field ids are
        always zero-based.
    field_conflicts : {"token", "raise", "first"}, default="token"
        For a feature id seen under several fields: a column per (field, id)
        (``fields`` is then the vocabulary, see below), raise ``DataFormatError``,
        or keep the field it has first in the file (two entries of that feature
        in one row are then summed). The last two give one column per id.
    vocabulary : array-like of int of shape (n_columns, 2), optional
        The ``fields`` another file was read with (``field_conflicts="token"``):
        the rows are read into its columns, and a (field, id) token it lacks is
        dropped, as ``OneHotEncoder(handle_unknown="ignore")`` does with an unseen
        category. Not with ``n_features``.
    dtype : numpy dtype, default=float32
    max_features : int, default=2**26
        The widest matrix read without ``n_features``: ``fields`` takes 4 bytes per
        feature, so a larger index (one token can say 2147483646) is an error
        rather than gigabytes. Ignored when ``n_features`` is given.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_rows, n_columns)
        ``n_columns`` is ``n_features``, and with ``field_conflicts="token"`` one more
        for each further field of an id (or the vocabulary's length).
    y : ndarray of shape (n_rows,)
    fields : ndarray of int32 of shape (n_columns, 2) or (n_features,)
        With ``field_conflicts="token"``, the vocabulary: the (field id, feature id)
        of each column, zero-based; a column of the id range whose id never occurs
        is ``(-1, id)``. Otherwise the field id of each feature, -1 for features
        that never occur. Either form is what the FFM estimators take as
        ``fields``.

    Raises
    ------
    DataFormatError
        Naming file, line and column, as :func:`~fmlearn.io.load_libsvm` does,
        for a feature that occurs in two fields with ``field_conflicts="raise"``,
        for a (field, id) token twice in one row and for an index of ``max_features`` or more without ``n_features``.

    Examples
    --------
    >>> import io
    >>> X, y, fields = load_ffm(io.BytesIO(b"1 0:0:1 1:2:0.5\\n0 0:1:1 1:0:1\\n"))
    >>> X.toarray()
    array([[1. , 0. , 0.5, 0. ],
           [0. , 1. , 0. , 1. ]], dtype=float32)
    >>> fields  # id 0 is in fields 0 and 1: columns 0 and 3
    array([[0, 0],
           [0, 1],
           [1, 2],
           [1, 0]], dtype=int32)
    >>> X2, _, _ = load_ffm(io.BytesIO(b"1 1:0:1 2:0:1 1:2:1\\n"), vocabulary=fields)
    >>> X2.toarray()  # (2, 0) is not in the vocabulary
    array([[0., 0., 1., 1.]], dtype=float32)
    >>> load_ffm(io.BytesIO(b"1 0:0:1 1:2:0.5\\n0 0:1:1 1:3:1\\n"), field_conflicts="raise")[2]
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
    return _rows(parsed, name, zero_based, n_features, field_conflicts, vocabulary, dtype,
                 max_features)


def iter_ffm(source: Source, *, n_features: int | None = None, zero_based: bool = True,
             field_conflicts: Conflicts | None = None, vocabulary: ArrayLike | None = None,
             dtype: DTypeLike = np.float32,
             block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[Rows]:
    """Read an FFM file in chunks of about ``block_bytes`` bytes of text.

    As :func:`~fmlearn.io.iter_libsvm`. Every chunk must have the same columns, so
    per-token columns need a fixed ``vocabulary`` (the ``fields`` of
    :func:`load_ffm` on the training file): each chunk is then read as
    :func:`load_ffm` reads it with that vocabulary. Without one, give
    ``n_features``: there is a column per feature id, and ``fields`` of each chunk
    lists the fields of the features that chunk holds (-1 for the others).
    ``field_conflicts`` is ``"token"`` with a vocabulary and ``"raise"`` (or
    ``"first"``) without.

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
    >>> vocabulary = [[0, 0], [1, 1], [1, 0]]
    >>> for X, y, fields in iter_ffm(io.BytesIO(b"1 1:0:1\\n0 1:1:1\\n"), vocabulary=vocabulary,
    ...                              block_bytes=4):
    ...     print(X.toarray())
    [[0. 0. 1.]]
    [[0. 1. 0.]]
    """
    _check_streaming(zero_based)
    if (n_features is None) == (vocabulary is None):
        raise ValueError("iter_ffm needs exactly one of n_features (a column per feature id) "
                         "and vocabulary (a column per (field, id) token)")
    if field_conflicts is None:
        field_conflicts = "raise" if vocabulary is None else "token"
    if field_conflicts == "token" and vocabulary is None:
        raise ValueError("field_conflicts='token' reads chunks by a fixed vocabulary: pass "
                         "vocabulary= (the fields load_ffm gives the training file)")
    name = describe(source)
    for first_line, buf in iter_blocks(source, block_bytes):
        parsed = parse_buffer(buf, name=name, with_fields=True, first_line=first_line)
        if parsed.labels.size:
            yield _rows(parsed, name, zero_based, n_features, field_conflicts, vocabulary, dtype)


def dump_ffm(X: MatrixLike, y: ArrayLike, fields: ArrayLike, path: StrPath, *,
             zero_based: bool = True) -> None:
    """Write ``X``, ``y`` and the field of each feature as an FFM file, atomically.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_rows, n_features)
    y : array-like of shape (n_rows,)
    fields : array-like of shape (n_features,) or (n_features, 2)
        The non-negative field id of every feature, or the vocabulary
        :func:`load_ffm` gives (the field id and feature id of every column):
        each entry is then written as the token it was read from.
    path : str or path
    zero_based : bool, default=True

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.ffm")
    >>> dump_ffm(np.array([[1.0, 0.0, 0.5]]), [1], [0, 0, 1], path)
    >>> print(open(path).read(), end="")
    1 0:0:1.0 1:2:0.5
    >>> dump_ffm(np.array([[1.0, 0.0, 0.5]]), [1], [[0, 0], [0, 1], [1, 0]], path)
    >>> print(open(path).read(), end="")
    1 0:0:1.0 1:0:0.5
    """
    fields = np.asarray(fields)
    n_features = np.shape(X)[1]
    if fields.shape not in ((n_features,), (n_features, 2)) or fields.dtype.kind not in "iu":
        raise ValueError(f"fields must hold a non-negative integer field id for each of the "
                         f"{n_features} features (or its field and feature id, shape "
                         f"({n_features}, 2)); got shape {fields.shape}, dtype {fields.dtype}")
    X = sp.csr_matrix(X)
    negative = np.flatnonzero((fields < 0).any(axis=1) if fields.ndim == 2 else fields < 0)
    if fields.ndim == 2:  # a vocabulary's columns that never occurred are (-1, id)
        negative = negative[np.isin(negative, X.indices[X.data != 0])]
    if negative.size:
        raise ValueError(f"fields must hold a non-negative integer field id for each of the "
                         f"{n_features} features; feature {negative[0]} has "
                         f"{fields[negative[0]].tolist()}")
    pairs = fields if fields.ndim == 2 else None
    text = format_rows(X, y, fields=fields if pairs is None else pairs[:, 0],
                       ids=None if pairs is None else pairs[:, 1], zero_based=zero_based)
    write_atomically(path, lambda handle: handle.write(text))


def _rows(parsed: Any, name: str, zero_based: bool, n_features: int | None,
          field_conflicts: str, vocabulary: ArrayLike | None, dtype: DTypeLike,
          max_features: int | None = None) -> Rows:
    if field_conflicts not in ("token", "raise", "first"):
        raise ValueError("field_conflicts must be 'token', 'raise' or 'first'; got "
                         f"{field_conflicts!r}")
    if vocabulary is not None:
        if field_conflicts != "token" or n_features is not None:
            raise ValueError("vocabulary= gives the columns of (field, id) tokens: it goes with "
                             "field_conflicts='token' and without n_features")
        vocabulary = _checked_vocabulary(vocabulary)
        ids, _ = feature_columns(parsed, name=name, zero_based=zero_based, n_features=None)
        parsed, columns = _known_tokens(parsed, ids, vocabulary)
        X = to_csr(parsed, columns, vocabulary.shape[0], name=name, dtype=dtype)
        return X, parsed.labels, vocabulary
    columns, n_features = feature_columns(parsed, name=name, zero_based=zero_based,
                                          n_features=n_features, max_features=max_features)
    fields = np.full(n_features, -1, dtype=np.int32)
    fields[columns[::-1]] = parsed.fields[::-1]  # the first occurrence of each feature wins
    clash = np.flatnonzero(fields[columns] != parsed.fields)
    if field_conflicts == "token":
        columns, fields = _token_columns(parsed.fields, columns, fields, clash)
    elif clash.size and field_conflicts == "raise":
        entry = clash[0]
        first = np.flatnonzero(columns == columns[entry])[0]
        raise DataFormatError(
            name, f"feature {parsed.indices[entry]} is in field {parsed.fields[entry]} here but in "
            f"field {parsed.fields[first]} on line {line_of_entry(parsed, first)}; each feature "
            "must belong to one field here (field_conflicts='token' gives each (field, id) a "
            "column, 'first' keeps the first field)",
            line=line_of_entry(parsed, entry))
    X = to_csr(parsed, columns, fields.shape[0], name=name, dtype=dtype,
               sum_duplicates=field_conflicts == "first")
    return X, parsed.labels, fields


def merge_vocabularies(vocabularies: list[ArrayLike]) -> NDArray[np.int32]:
    """One vocabulary holding every (field, id) of ``vocabularies``, numbered as
    :func:`load_ffm` numbers the tokens of one file that holds them in that order.

    For the files of a folder: read each with ``vocabulary=`` the merged one.

    Examples
    --------
    >>> merge_vocabularies([[[0, 0], [-1, 1], [1, 0]], [[0, 0], [2, 1]]])
    array([[0, 0],
           [2, 1],
           [1, 0]], dtype=int32)
    """
    pairs = np.concatenate([_checked_vocabulary(v) for v in vocabularies])
    pairs = pairs[pairs[:, 0] >= 0]
    _, first_at = np.unique(pairs, axis=0, return_index=True)
    pairs = pairs[np.sort(first_at)]
    ids, token_fields = pairs[:, 1], pairs[:, 0]
    first_fields = np.full(int(ids.max(initial=-1)) + 1, -1, dtype=np.int32)
    first_fields[ids[::-1]] = token_fields[::-1]
    clash = np.flatnonzero(first_fields[ids] != token_fields)
    return _token_columns(token_fields, ids, first_fields, clash)[1]


def _token_columns(token_fields: NDArray[np.int32], ids: NDArray[np.int32],
                   first_fields: NDArray[np.int32],
                   clash: NDArray[np.intp]) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """The column of every token and the vocabulary: id ``j`` in its first field is column
    ``j``; the ``clash`` tokens (an id in a further field) get columns after the id range."""
    n_ids = first_fields.shape[0]
    keys = token_fields[clash].astype(np.int64) * n_ids + ids[clash]
    pairs, first_at, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first_at, kind="stable")  # numbered in the order they first occur
    rank = np.empty(pairs.size, dtype=np.int64)
    rank[order] = np.arange(pairs.size)
    columns = ids.copy()
    columns[clash] = n_ids + rank[inverse.reshape(-1)]
    vocabulary = np.empty((n_ids + pairs.size, 2), dtype=np.int32)
    vocabulary[:n_ids, 0] = first_fields
    vocabulary[:n_ids, 1] = np.arange(n_ids)
    vocabulary[n_ids:, 0] = pairs[order] // n_ids
    vocabulary[n_ids:, 1] = pairs[order] % n_ids
    return columns, vocabulary


def _checked_vocabulary(vocabulary: ArrayLike) -> NDArray[np.int32]:
    """``vocabulary`` as int32 (field, id) rows, distinct where the field is not -1."""
    pairs = np.asarray(vocabulary)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
        raise ValueError(f"vocabulary must be the (field id, feature id) integers of every "
                         f"column, shape (n_columns, 2); got shape {pairs.shape}, dtype "
                         f"{pairs.dtype}")
    if (pairs[:, 0] < -1).any() or (pairs[:, 1] < 0).any() \
            or (pairs > np.iinfo(np.int32).max).any():
        raise ValueError("vocabulary holds an id out of range: field and feature ids are "
                         "0 .. 2**31 - 1 (a field of -1 marks an unused column)")
    known = np.flatnonzero(pairs[:, 0] >= 0)
    _, first = np.unique(pairs[known], axis=0, return_index=True)
    if first.size < known.size:
        column = known[np.setdiff1d(np.arange(known.size), first)[0]]
        raise ValueError(f"vocabulary row {column} repeats the (field, id) pair "
                         f"{pairs[column].tolist()} of an earlier row")
    return pairs.astype(np.int32)


def _known_tokens(parsed: Any, ids: NDArray[np.int32],
                  vocabulary: NDArray[np.int32]) -> tuple[Any, NDArray[np.int32]]:
    """The parsed rows without the tokens ``vocabulary`` lacks, and the column of each kept."""
    known = np.flatnonzero(vocabulary[:, 0] >= 0)
    width = int(max(vocabulary[:, 1].max(initial=0), ids.max(initial=0))) + 1
    keys = vocabulary[known, 0].astype(np.int64) * width + vocabulary[known, 1]
    order = np.argsort(keys)
    tokens = parsed.fields.astype(np.int64) * width + ids
    at = np.minimum(np.searchsorted(keys[order], tokens), max(keys.size - 1, 0))
    found = keys[order][at] == tokens if keys.size else np.zeros(tokens.size, dtype=bool)
    kept = np.concatenate([[0], np.cumsum(found)])
    rows = dataclasses.replace(parsed, indptr=kept[parsed.indptr], indices=parsed.indices[found],
                               fields=parsed.fields[found], values=parsed.values[found])
    return rows, known[order][at][found].astype(np.int32)
