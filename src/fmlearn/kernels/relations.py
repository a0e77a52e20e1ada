"""Relational block structure (Rendle, "Scaling Factorization Machines to Relational Data",
VLDB 2013): rows that repeat the same sub-vector hold an index into a block matrix instead.

The feature space is X's columns followed by each block's. ``relations`` is the packed
tuple ``(offset, index, col_start, n_block_rows, col_ptr, block_rows, block_data)``:
``offset`` is X's width; ``index[b, r]`` the row of block ``b`` that row ``r`` holds;
block ``b`` owns the block columns ``col_start[b]:col_start[b + 1]`` (feature
``offset + j`` for block column ``j``) and has ``n_block_rows[b]`` rows; block column ``j``
holds the entries ``col_ptr[j]:col_ptr[j + 1]`` at block rows ``block_rows[p]`` with values
``block_data[p]`` (CSC, rows ascending).

Scores and coordinate updates go through per-block-row caches: a block row's linear sum,
factor sums ``q_b`` and squares are computed once for every row that holds it, and the
sufficient statistics of a block column are sums over its block rows of sums over the
rows that hold them, so a layer costs O(nnz of the block + rows), not O(rows x width).
"""
import numpy as np
from numba import njit
from .._numba_cache import CACHE
from .posterior import posterior_value


@njit(cache=CACHE)
def block_sums(values, offset, j0, j1, col_ptr, block_rows, block_data, out, squares):
    """Add ``sum_j values[offset + j] x_bj`` over block columns ``j0:j1`` to ``out[b]`` and
    ``sum_j (values[offset + j] x_bj)^2`` to ``squares[b]``, per block row."""
    for j in range(j0, j1):
        v = np.float64(values[offset + j])
        for p in range(col_ptr[j], col_ptr[j + 1]):
            vx = v * block_data[p]
            out[block_rows[p]] += vx
            squares[block_rows[p]] += vx * vx


@njit(cache=CACHE)
def relational_scores_and_sums(indptr, indices, data, w0, w, V, relations, out, q):
    """Scores of the rows (X's CSR rows with their blocks) into ``out`` and, when ``q`` is
    not None, their factor sums into ``q`` (n_factors, n_rows); O(k (nnz(x) + blocks)) a row
    once each block row's linear sum, factor sums and squares are cached (all blocks' rows
    in one table, block ``b``'s from ``first[b]``)."""
    offset, index, col_start, n_block_rows, col_ptr, block_rows, block_data = relations
    n_rows, k, n_blocks = indptr.shape[0] - 1, V.shape[1], n_block_rows.shape[0]
    first = np.zeros(n_blocks + 1, dtype=np.int64)
    for b in range(n_blocks):
        first[b + 1] = first[b] + n_block_rows[b]
    lin, squares, sums = np.zeros(first[-1]), np.zeros(first[-1]), np.zeros((first[-1], k))
    for b in range(n_blocks):
        for j in range(col_start[b], col_start[b + 1]):
            c = offset + j
            for p in range(col_ptr[j], col_ptr[j + 1]):
                i, x = first[b] + block_rows[p], np.float64(block_data[p])
                lin[i] += w[c] * x
                for f in range(k):
                    vx = V[c, f] * x
                    sums[i, f] += vx
                    squares[i] += vx * vx
    acc = np.empty(k)
    for r in range(n_rows):
        total = w0
        sq = 0.0
        acc[:] = 0.0
        for b in range(n_blocks):
            i = first[b] + index[b, r]
            total += lin[i]
            sq += squares[i]
            for f in range(k):
                acc[f] += sums[i, f]
        for p in range(indptr[r], indptr[r + 1]):
            i = indices[p]
            x = np.float64(data[p])
            total += w[i] * x
            for f in range(k):
                vx = V[i, f] * x
                acc[f] += vx
                sq += vx * vx
        pairs = 0.0
        for f in range(k):
            pairs += acc[f] * acc[f]
            if q is not None:
                q[f, r] = acc[f]
        out[r] = total + 0.5 * (pairs - sq)


@njit(cache=CACHE)
def update_relation_block(values, q_f, b, relations, s, weighted, e, groups, alpha, mu, lam,
                          sample):
    """Update one layer (``values`` is ``w`` when ``q_f`` is None, else ``V[:, f]`` with row
    sums ``q_f``) of the columns of block ``b``, one column after another in column order
    (the draws and results of the same columns in the expanded matrix); the residual ``e``
    (and ``q_f``) of the rows follow.

    Per block row ``i`` (over the rows ``r`` holding it, ``q_r = qrest_r + q_i``): ``S0 =
    sum s``, ``SE = sum s e`` and, for a factor layer, ``R1 = sum s qrest``, ``R2 = sum s
    qrest^2``, ``RE = sum s qrest e``. With ``c = q_i - v x`` a column's statistics are
    ``sum s h^2 = sum_i x^2 (R2 + 2 c R1 + c^2 S0)`` and ``sum s h e = sum_i x (RE + c
    SE)``; its change ``d`` moves ``SE`` by ``d x (R1 + c S0)``, ``RE`` by ``d x (R2 + c
    R1)`` and ``q_i`` by ``d x``. The rows take the block rows' changes at the end, from
    ``q_i`` and the squares ``sum_j (v_j x_ij)^2`` before and after.
    """
    offset, index, col_start, n_block_rows, col_ptr, block_rows, block_data = relations
    linear = q_f is None
    m, idx = n_block_rows[b], index[b]
    q_b, sq_b = np.zeros(m), np.zeros(m)
    block_sums(values, offset, col_start[b], col_start[b + 1], col_ptr, block_rows, block_data,
               q_b, sq_b)
    q_old, sq_old = q_b.copy(), sq_b.copy()
    S0, SE, R1, R2, RE = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    for r in range(e.shape[0]):
        i = idx[r]
        sr = s[r] if weighted else 1.0
        S0[i] += sr
        SE[i] += sr * e[r]
        if not linear:
            rest = q_f[r] - q_b[i]
            R1[i] += sr * rest
            R2[i] += sr * rest * rest
            RE[i] += sr * rest * e[r]
    for j in range(col_start[b], col_start[b + 1]):
        c = offset + j
        theta = np.float64(values[c])
        shh = 0.0
        she = 0.0
        for p in range(col_ptr[j], col_ptr[j + 1]):
            i, x = block_rows[p], np.float64(block_data[p])
            if linear:
                shh += x * x * S0[i]
                she += x * SE[i]
            else:
                ci = q_b[i] - theta * x
                shh += x * x * (R2[i] + 2.0 * ci * R1[i] + ci * ci * S0[i])
                she += x * (RE[i] + ci * SE[i])
        g = groups[c]
        values[c] = posterior_value(theta, shh, she, alpha, mu[g], lam[g], sample)
        d = np.float64(values[c]) - theta
        if d == 0.0:
            continue
        squares = (theta + d) * (theta + d) - theta * theta
        for p in range(col_ptr[j], col_ptr[j + 1]):
            i, x = block_rows[p], np.float64(block_data[p])
            if linear:
                SE[i] += d * x * S0[i]
            else:
                ci = q_b[i] - theta * x
                SE[i] += d * x * (R1[i] + ci * S0[i])
                RE[i] += d * x * (R2[i] + ci * R1[i])
                sq_b[i] += squares * x * x
            q_b[i] += d * x
    # What each row of block row i gains: e += rest * dq + shift, q_f += dq.
    dq = q_b - q_old
    if linear:
        for r in range(e.shape[0]):
            e[r] += dq[idx[r]]
        return
    shift = 0.5 * (q_b * q_b - q_old * q_old - sq_b + sq_old)
    for r in range(e.shape[0]):
        i = idx[r]
        e[r] += (q_f[r] - q_old[i]) * dq[i] + shift[i]
        q_f[r] += dq[i]


@njit(cache=CACHE)
def update_relations(values, q_f, relations, s, weighted, e, groups, alpha, mu, lam, sample):
    """``update_relation_block`` over every block, in order."""
    for b in range(relations[3].shape[0]):
        update_relation_block(values, q_f, b, relations, s, weighted, e, groups, alpha, mu, lam,
                              sample)
