"""libSVM / libFM text files: ``label [qid:q] index:value ...`` per line."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._files import write_atomically
from ._text import (DEFAULT_BLOCK_BYTES, describe, feature_columns, format_rows, iter_blocks,
                    parse_buffer, read_bytes, to_csr)
from .errors import DataFormatError

if TYPE_CHECKING:
    from .._typing import MatrixLike, Source, StrPath
    from ._text import ParsedRows


def load_libsvm(source: Source, *, n_features: int | None = None,
                zero_based: bool | Literal["auto"] = True, query_id: bool = False,
                dtype: DTypeLike = np.float32) -> tuple[Any, ...]:
    """Read a libSVM / libFM file into a CSR matrix and its labels.

    Accepts ``#`` comments, blank lines, Windows line endings, an optional
    ``qid:`` after the label and feature indices in any order within a row
    (libFM does not sort them; the matrix is returned with sorted rows).

    Parameters
    ----------
    source : str, path or binary file object
    n_features : int, optional
        Width of the matrix; by default one more than the largest index. Give
        it so that train and test files agree.
    zero_based : bool or "auto", default=True
        Whether index 0 is the first feature (libFM, libffm) or index 1 is
        (LIBSVM). ``"auto"`` reads the file as one-based unless it holds a 0.
    query_id : bool, default=False
        Also return the ``qid`` of each row (-1 where a row has none).
    dtype : numpy dtype, default=float32
        The dtype of the matrix values; labels are float64.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_rows, n_features)
    y : ndarray of shape (n_rows,)
    qid : ndarray of shape (n_rows,), only when ``query_id`` is true

    Raises
    ------
    DataFormatError
        Naming the file, line and column of a malformed token, a non-finite
        value, a negative or too large index or a repeated index; also for a
        file without any row.

    Examples
    --------
    >>> import io
    >>> X, y = load_libsvm(io.BytesIO(b"1 0:2.5 3:1\\r\\n# a comment\\n0 2:1\\n"))
    >>> X.toarray()
    array([[2.5, 0. , 0. , 1. ],
           [0. , 0. , 1. , 0. ]], dtype=float32)
    >>> y
    array([1., 0.])
    """
    name = describe(source)
    parsed = parse_buffer(read_bytes(source), name=name, with_fields=False)
    if parsed.labels.size == 0:
        raise DataFormatError(name, "the file holds no data rows")
    return _rows(parsed, name, zero_based, n_features, dtype, query_id)


def iter_libsvm(source: Source, *, n_features: int, zero_based: bool = True,
                query_id: bool = False, dtype: DTypeLike = np.float32,
                block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[tuple[Any, ...]]:
    """Read a libSVM / libFM file in chunks of about ``block_bytes`` bytes of text.

    Memory stays bounded by one chunk however large the file, so files larger
    than memory can be streamed into ``partial_fit``. Errors name the line in
    the whole file. Parameters are those of :func:`load_libsvm`, except that
    ``n_features`` must be given (every chunk has the same width) and
    ``zero_based`` must be True or False.

    Yields
    ------
    X, y[, qid]
        As :func:`load_libsvm` returns them, for the rows of one chunk.

    Examples
    --------
    >>> import io
    >>> chunks = iter_libsvm(io.BytesIO(b"1 0:1\\n0 1:1\\n1 2:1\\n"), n_features=3, block_bytes=8)
    >>> [X.shape[0] for X, y in chunks]
    [1, 1, 1]
    """
    _check_streaming(zero_based)
    name = describe(source)
    for first_line, buf in iter_blocks(source, block_bytes):
        parsed = parse_buffer(buf, name=name, with_fields=False, first_line=first_line)
        if parsed.labels.size:
            yield _rows(parsed, name, zero_based, n_features, dtype, query_id)


def dump_libsvm(X: MatrixLike, y: ArrayLike, path: StrPath, *, zero_based: bool = True,
                query_id: ArrayLike | None = None) -> None:
    """Write ``X`` and ``y`` as a libSVM / libFM file, atomically.

    Values are written with the fewest digits that read back to the same
    number of their dtype. The file appears complete or not at all.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_rows, n_features)
    y : array-like of shape (n_rows,)
    path : str or path
    zero_based : bool, default=True
        Write feature 0 as index 0 (libFM) or as index 1 (LIBSVM).
    query_id : array-like of shape (n_rows,), optional
        Written as ``qid:`` after each label.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.libfm")
    >>> dump_libsvm(np.array([[0.5, 0.0], [0.0, 2.0]]), [1, -1], path)
    >>> print(open(path).read(), end="")
    1 0:0.5
    -1 1:2.0
    """
    text = format_rows(X, y, qid=query_id, zero_based=zero_based)
    write_atomically(path, lambda handle: handle.write(text))


def _rows(parsed: ParsedRows, name: str, zero_based: bool | Literal["auto"], n_features: int | None,
          dtype: DTypeLike, query_id: bool) -> tuple[Any, ...]:
    columns, n_features = feature_columns(parsed, name=name, zero_based=zero_based,
                                          n_features=n_features)
    X = to_csr(parsed, columns, n_features, name=name, dtype=dtype)
    return (X, parsed.labels, parsed.qids) if query_id else (X, parsed.labels)


def _check_streaming(zero_based: object) -> None:
    if zero_based not in (True, False):
        raise ValueError("reading in chunks needs zero_based=True or False: 'auto' could "
                         "decide differently for each chunk")
