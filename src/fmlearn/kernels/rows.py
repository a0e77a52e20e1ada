"""Row gathers, column counts and column renumberings of CSR matrices."""
import numpy as np
from numba import njit
from .._numba_cache import CACHE


@njit(cache=CACHE)
def take_rows(indptr, indices, data, order):
    """The CSR arrays ``(data, indices, indptr)`` of rows ``order`` of a CSR matrix, in that
    order: one pass, and no array allocated but the three returned.

    Examples
    --------
    >>> import numpy as np
    >>> data, indices, indptr = take_rows(np.array([0, 1, 3]), np.array([0, 0, 1], np.int32),
    ...                                   np.array([1.0, 2.0, 3.0]), np.array([1, 0]))
    >>> data.tolist(), indices.tolist(), indptr.tolist()
    ([2.0, 3.0, 1.0], [0, 1, 0], [0, 2, 3])
    """
    n = order.shape[0]
    out_indptr = np.empty(n + 1, np.int64)
    out_indptr[0] = 0
    for i in range(n):
        r = order[i]
        out_indptr[i + 1] = out_indptr[i] + indptr[r + 1] - indptr[r]
    out_indices = np.empty(out_indptr[n], indices.dtype)
    out_data = np.empty(out_indptr[n], data.dtype)
    for i in range(n):
        start, first = indptr[order[i]], out_indptr[i]
        for p in range(out_indptr[i + 1] - first):
            out_indices[first + p] = indices[start + p]
            out_data[first + p] = data[start + p]
    return out_data, out_indices, out_indptr


@njit(cache=CACHE)
def relabel_columns(indices, new, out):
    """Write ``new[indices]`` into ``out`` (which may be ``indices``), without a temporary.

    Examples
    --------
    >>> import numpy as np
    >>> indices = np.array([0, 2, 1], np.int32)
    >>> relabel_columns(indices, np.array([2, 0, 1], np.int32), indices)
    >>> indices.tolist()
    [2, 1, 0]
    """
    for p in range(indices.shape[0]):
        out[p] = new[indices[p]]


@njit(cache=CACHE)
def column_counts(indices, n_columns):
    """How many times each of ``n_columns`` columns occurs in ``indices``, as int64.

    ``np.bincount`` would first copy int32 indices to int64: 8 bytes per non-zero.

    Examples
    --------
    >>> import numpy as np
    >>> column_counts(np.array([2, 0, 2], np.int32), 4).tolist()
    [1, 0, 2, 0]
    """
    counts = np.zeros(n_columns, np.int64)
    for p in range(indices.shape[0]):
        counts[indices[p]] += 1
    return counts


@njit(cache=CACHE)
def permute_rows(array, source):
    """Reorder the rows of the 2-D ``array`` in place so that row ``i`` becomes
    what row ``source[i]`` was (``source`` a permutation), following its cycles: no copy of
    ``array``, a byte per row and one row of scratch.

    Examples
    --------
    >>> import numpy as np
    >>> array = np.array([[1.0], [2.0], [3.0]])
    >>> permute_rows(array, np.array([2, 0, 1], np.int32))
    >>> array.ravel().tolist()
    [3.0, 1.0, 2.0]
    """
    done = np.zeros(source.shape[0], np.bool_)
    held = np.empty(array.shape[1], array.dtype)
    for first in range(source.shape[0]):
        if done[first]:
            continue
        held[:] = array[first]
        i = first
        while source[i] != first:
            array[i] = array[source[i]]
            done[i] = True
            i = source[i]
        array[i] = held
        done[i] = True
