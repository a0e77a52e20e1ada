"""Structure checks of sparse index arrays, run before any kernel or SciPy routine reads them.

The other kernels index parameters with column indices unchecked; these passes find the
first entry that would make them read out of bounds. Each returns where the problem is
and the Python layer (``fmlearn._validation``) words the error.
"""
from numba import njit
from .._numba_cache import CACHE

# The problems ``first_bad_compressed`` reports.
FINE, NOT_FROM_ZERO, DECREASES, PAST_THE_ENTRIES, SHORT_OF_THE_ENTRIES, INDEX_OUTSIDE = range(6)


@njit(cache=CACHE, nogil=True)
def first_bad_compressed(indptr, indices, n_minor):
    """The first problem of the compressed (CSR, CSC or BSR) arrays ``indptr`` and ``indices``
    as ``(problem, line, position)``: ``line`` is the row (CSC: column) and ``position``
    the entry of ``indices`` concerned.

    ``indptr`` must start at 0, never decrease and end at ``len(indices)``; every index
    must lie in ``[0, n_minor)``. Rows are read in order and a row's entries only once
    its pointers are known to be within ``indices``, so the check itself never reads out
    of bounds. One pass: about 1 ns per entry.

    Examples
    --------
    >>> import numpy as np
    >>> first_bad_compressed(np.array([0, 1, 2]), np.array([0, 9]), 6)  # row 1, entry 1
    (5, 1, 1)
    >>> first_bad_compressed(np.array([0, 2, 1]), np.array([0, 1]), 6)  # row 1 ends before it starts
    (2, 1, 0)
    >>> first_bad_compressed(np.array([0, 1, 2]), np.array([0, 5]), 6)
    (0, 0, 0)
    """
    n_lines = indptr.shape[0] - 1
    n_entries = indices.shape[0]
    if indptr[0] != 0:
        return NOT_FROM_ZERO, 0, 0
    for line in range(n_lines):
        start, end = indptr[line], indptr[line + 1]
        if end < start:
            return DECREASES, line, 0
        if end > n_entries:
            return PAST_THE_ENTRIES, line, 0
        for p in range(start, end):
            if indices[p] < 0 or indices[p] >= n_minor:
                return INDEX_OUTSIDE, line, p
    if indptr[n_lines] != n_entries:
        return SHORT_OF_THE_ENTRIES, n_lines, 0
    return FINE, 0, 0


@njit(cache=CACHE, nogil=True)
def first_bad_coordinate(row, col, n_rows, n_cols):
    """The first entry of COO coordinates ``(row, col)`` outside ``n_rows x n_cols``, or -1.

    Examples
    --------
    >>> import numpy as np
    >>> first_bad_coordinate(np.array([0, 1, 4]), np.array([0, 1, 0]), 3, 2)
    2
    """
    for p in range(row.shape[0]):
        if row[p] < 0 or row[p] >= n_rows or col[p] < 0 or col[p] >= n_cols:
            return p
    return -1
