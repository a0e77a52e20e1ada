"""Row gathers, column counts and column renumberings of CSR matrices."""
import numpy as np
from numba import njit
from .._numba_cache import CACHE
from .prefetch import prefetch_entry


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


# Rows ahead whose renumbering :func:`stage_blocks` prefetches: the renumbering of a large
# model misses the caches, evicted by the epoch's own parameter rows (16 and 32 measured alike,
# 4 half as fast).
STAGE_AHEAD = 16


@njit(cache=CACHE)
def stage_blocks(indptr, indices, data, y, sample_weight, block_starts, block_size, positions,
                 columns, places, out_indptr, out_indices, out_data, out_y, out_weight):
    """Copy the rows of the blocks of ``block_size`` rows starting at ``block_starts`` (the
    matrix's last block may be shorter), their targets and weights into the ``out_*``
    arrays, with their column indices renumbered by ``columns`` (feature ``j`` becomes
    ``columns[j]``); return ``m``, the rows copied.

    The ``i``-th row read (block by block, each in storage order) goes to place
    ``places[i]``: the entries of the permutation ``positions`` (of at least ``m``) that
    are below ``m``, in their order, so a random permutation scatters the blocks' rows at
    random. ``places`` is scratch of ``positions``' length; the ``out_*`` arrays must hold
    the rows and their non-zeros. Reads each block in order, which the memory streams.

    Examples
    --------
    >>> import numpy as np
    >>> indptr, indices = np.array([0, 1, 3, 4]), np.array([0, 1, 2, 2], np.int32)
    >>> data, y, w = np.array([1.0, 2.0, 3.0, 4.0]), np.arange(3.0), np.ones(3)
    >>> out = (np.zeros(4, np.int64), np.zeros(4, np.int32), np.zeros(4), np.zeros(3),
    ...        np.zeros(3))
    >>> m = stage_blocks(indptr, indices, data, y, w, np.array([2, 0]), 2,
    ...                  np.array([2, 1, 0], np.int32), np.array([2, 1, 0], np.int32),
    ...                  np.zeros(3, np.int32), *out)
    >>> m, out[0].tolist(), out[1].tolist(), out[3].tolist()  # rows 2, 0, 1 to places 2, 1, 0
    (3, [0, 2, 3, 4], [1, 0, 2, 0], [1.0, 0.0, 2.0])
    """
    n_rows = indptr.shape[0] - 1
    m = 0
    for b in range(block_starts.shape[0]):
        m += min(block_starts[b] + block_size, n_rows) - block_starts[b]
    i = 0
    for p in range(positions.shape[0]):
        if positions[p] < m:
            places[i] = positions[p]
            i += 1
    i = 0
    for b in range(block_starts.shape[0]):
        for r in range(block_starts[b], min(block_starts[b] + block_size, n_rows)):
            out_indptr[places[i] + 1] = indptr[r + 1] - indptr[r]
            i += 1
    out_indptr[0] = 0
    for i in range(m):
        out_indptr[i + 1] += out_indptr[i]
    i = 0
    for b in range(block_starts.shape[0]):
        end = min(block_starts[b] + block_size, n_rows)
        for r in range(block_starts[b], end):
            if r + STAGE_AHEAD < end:
                for a in range(indptr[r + STAGE_AHEAD], indptr[r + STAGE_AHEAD + 1]):
                    prefetch_entry(columns, indices[a])
            place = places[i]
            out_y[place] = y[r]
            out_weight[place] = sample_weight[r]
            q = out_indptr[place]
            for p in range(indptr[r], indptr[r + 1]):
                out_indices[q] = columns[indices[p]]
                out_data[q] = data[p]
                q += 1
            i += 1
    return m
