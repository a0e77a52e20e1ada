"""Mean-field variational Bayes sweeps for the second-order FM (myFM's ``VariationalFM``).

Every parameter ``theta`` has a Gaussian posterior ``N(m, v)``, independent of the others.
The score is ``g + theta * h`` as in :mod:`fmlearn.kernels.coordinate`; for a factor
``v_if``, ``h = x_i u`` with ``u = sum_{j != i} v_jf x_j``, whose mean is
``M = q_f - m_if x_i`` and whose variance is ``S = sum_{j != i} v_jf x_j^2``. The update of
``theta`` maximises the evidence lower bound: precision ``alpha E[h^2] + lambda`` with
``E[h^2] = x^2 (M^2 + S)``, mean ``(alpha (m E[h]^2 - E[h] e - x cov) + lambda mu) /
precision``, where ``e`` is the residual of the posterior means and ``cov = M S - T``
(``T = sum_{j != i} m_jf v_jf x_j^3``) is the covariance of ``h`` with the rest of the
layer's pairwise term. Each row keeps ``q_f``, ``S_f = sum_j v_jf x_j^2`` and
``T_f = sum_j m_jf v_jf x_j^3`` per factor, stored (n_factors, n_rows) as ``q``.
"""
import numpy as np
from numba import njit

from .._numba_cache import CACHE
from .coordinate import _entry


@njit(cache=CACHE)
def variance_sums(indptr, indices, data, w0_var, w_var, V, V_var, q, S, T, var):
    """Fill ``S`` and ``T`` (n_factors, n_rows) of CSR rows whose factor sums ``q`` are
    given, and ``var`` (n_rows,) with the posterior variance of each row's score.

    The pairwise term of layer ``f`` is ``sum_{j<l} a_j a_l`` with independent
    ``a_j = v_jf x_j``; its variance is ``S M^2 + S^2 / 2 - 2 M T - sum s_j^2 / 2 +
    sum s_j m_j^2`` (``m_j``, ``s_j`` the mean and variance of ``a_j``, ``M = sum m_j``).
    Rows go in tiles of 64 whose sums are built in local buffers and written one factor at
    a time, so each write to ``S`` and ``T`` is a contiguous run.
    """
    n_rows, k, tile = indptr.shape[0] - 1, V.shape[1], 64
    s_buf, t_buf = np.empty((tile, k)), np.empty((tile, k))
    for first in range(0, n_rows, tile):
        last = min(n_rows, first + tile)
        s_buf[:] = 0.0
        t_buf[:] = 0.0
        for r in range(first, last):
            total = w0_var
            for p in range(indptr[r], indptr[r + 1]):
                i = indices[p]
                x = np.float64(data[p])
                x2 = x * x
                total += x2 * w_var[i]
                for f in range(k):
                    m = V[i, f] * x
                    s = V_var[i, f] * x2
                    s_buf[r - first, f] += s
                    t_buf[r - first, f] += m * s
                    total += s * (m * m - 0.5 * s)
            var[r] = total
        for f in range(k):
            for r in range(first, last):
                M, s_sum, t_sum = q[f, r], s_buf[r - first, f], t_buf[r - first, f]
                S[f, r] = s_sum
                T[f, r] = t_sum
                var[r] += s_sum * (M * M + 0.5 * s_sum) - 2.0 * M * t_sum


@njit(cache=CACHE)
def update_factor_block(V, V_var, f, q_f, S_f, T_f, c0, c1, start, end, rows, features, data, s,
                        weighted, e, groups, alpha, mu, lam):
    """Set the posterior means ``V[c0:c1, f]`` and variances ``V_var[c0:c1, f]`` of the
    features of a column block (entries ``start:end``, no row holding two of them, so their
    updates are independent): one pass over the entries gathers the sums, a second moves
    ``e``, ``q_f``, ``S_f`` and ``T_f``. ``rows`` None means the block holds every row
    once, entry ``p`` on row ``p - start``; ``data`` None means every value is 1.
    """
    nb = c1 - c0
    sums = np.zeros((nb, 3))  # sum s h^2, sum s x^2 S, sum s (h e + x cov)
    for p in range(start, end):
        r, x = _entry(p, start, rows, data)
        i = features[p]
        m, v = V[c0 + i, f], V_var[c0 + i, f]
        rest = q_f[r] - m * x
        spread = S_f[r] - v * x * x
        h = x * rest
        sr = s[r] if weighted else 1.0
        sums[i, 0] += sr * h * h
        sums[i, 1] += sr * x * x * spread
        sums[i, 2] += sr * (h * e[r] + x * (rest * spread - (T_f[r] - m * v * x * x * x)))
    old_m, old_v = np.empty(nb), np.empty(nb)
    for i in range(nb):
        g = groups[c0 + i]
        old_m[i], old_v[i] = V[c0 + i, f], V_var[c0 + i, f]
        precision = alpha * (sums[i, 0] + sums[i, 1]) + lam[g, f]
        V[c0 + i, f] = (alpha * (old_m[i] * sums[i, 0] - sums[i, 2])
                        + lam[g, f] * mu[g, f]) / precision
        V_var[c0 + i, f] = 1.0 / precision
    for p in range(start, end):
        r, x = _entry(p, start, rows, data)
        i = features[p]
        m, v = V[c0 + i, f], V_var[c0 + i, f]
        x2 = x * x
        e[r] += (m - old_m[i]) * x * (q_f[r] - old_m[i] * x)
        q_f[r] += (m - old_m[i]) * x
        S_f[r] += x2 * (v - old_v[i])
        T_f[r] += x2 * x * (m * v - old_m[i] * old_v[i])


@njit(cache=CACHE)
def update_factors(V, V_var, q, S, T, layout, s, weighted, e, groups, alpha, mu, lam):
    """Update the factor layers ``V[:, f]`` one after the other, each column block by
    column block of ``layout`` (see :func:`fmlearn.kernels.coordinate.coordinate_sweep`)
    with ``update_factor_block``; ``mu`` and ``lam`` are (n_groups, n_factors), all arrays
    float64."""
    bounds, entry_ptr, rows, features, data = layout
    for f in range(V.shape[1]):
        for b in range(bounds.shape[0] - 1):
            start, end = entry_ptr[b], entry_ptr[b + 1]
            if end - start == e.shape[0]:  # every row once: entry p is on row p - start
                update_factor_block(V, V_var, f, q[f], S[f], T[f], bounds[b], bounds[b + 1],
                                    start, end, None, features, data, s, weighted, e, groups,
                                    alpha, mu, lam)
            else:
                update_factor_block(V, V_var, f, q[f], S[f], T[f], bounds[b], bounds[b + 1],
                                    start, end, rows, features, data, s, weighted, e, groups,
                                    alpha, mu, lam)
