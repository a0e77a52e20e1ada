"""Higher-order FM scores and SGD epochs through the ANOVA kernel (Blondel, Fujino, Ueda,
Ishihata, NIPS 2016).

A model of order m has factors ``P[t - 2]`` (shape (n_features, k)) for each order
t = 2..m and scores

    w0 + sum_i w_i x_i + sum_{t=2..m} sum_f A^t(P[t - 2][:, f], x),
    A^t(p, x) = sum_{i_1 < ... < i_t} prod_s p_{i_s} x_{i_s}.

The dynamic programme ``a[s] += a[s - 1] * p_j x_j`` (s = t..1) over the row's non-zeros
gives every ``a[s] = A^s`` in O(t * nnz) per factor. The derivative is
``dA^t/dp_j = x_j * sum_{u=0..t-1} (-p_j x_j)^u A^{t-1-u}`` (from ``A^t = A^t_{-j} + p_j
x_j A^{t-1}_{-j}`` unrolled). Order 2 is the FM.
"""
import numpy as np
from numba import njit, prange

from .losses import loss_and_derivative
from .sgd import ADAGRAD, _clip, _update_feature, average_copies, step_size, thread_copies


@njit(cache=True, fastmath=True, inline="always")
def anova_tables(start, end, indices, data, factors, a):
    """Fill ``a[o, s, f] = A^s`` of the row for order ``o + 2``'s factors ``factors[o]``,
    s = 0..o + 2; return the sum of the top entries, the row's interaction score. The
    innermost loops run over the factors, which are contiguous."""
    total = factors.dtype.type(0)
    k = factors.shape[2]
    for o in range(factors.shape[0]):
        t = o + 2
        a[o, 0, :] = 1
        a[o, 1:t + 1, :] = 0
        for p in range(start, end):
            j = indices[p]
            x = data[p]
            for s in range(t, 0, -1):
                for f in range(k):
                    a[o, s, f] += a[o, s - 1, f] * factors[o, j, f] * x
        for f in range(k):
            total += a[o, t, f]
    return total


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def predict_csr(indptr, indices, data, intercept, coef, factors, out, n_chunks):
    """Write the score of every CSR row into ``out``, rows split into ``n_chunks`` parallel
    chunks; ``factors`` has shape (order - 1, n_features, k)."""
    n_rows = indptr.shape[0] - 1
    chunk = (n_rows + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        a = np.empty((factors.shape[0], factors.shape[0] + 2, factors.shape[2]),
                     dtype=factors.dtype)
        for r in range(c * chunk, min(n_rows, (c + 1) * chunk)):
            linear = intercept
            for p in range(indptr[r], indptr[r + 1]):
                linear += coef[indices[p]] * data[p]
            out[r] = linear + anova_tables(indptr[r], indptr[r + 1], indices, data, factors, a)


@njit(cache=True, fastmath=True, inline="always")
def anova_derivative(a, o, px, power, out):
    """``out[f] = dA^t/dp_jf / x_j`` for order ``t = o + 2`` from the row's tables, given
    ``px[f] = p_jf x_j``; ``power`` is scratch space."""
    t = o + 2
    for f in range(out.shape[0]):
        out[f] = a[o, t - 1, f]
        power[f] = 1
    for u in range(1, t):
        for f in range(out.shape[0]):
            power[f] *= -px[f]
            out[f] += power[f] * a[o, t - 1 - u, f]


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, intercept,
              coef, factors, acc_intercept, acc_coef, acc_factors, step, cfg, n_threads):
    """One pass over the rows, updating the parameters in place; returns the summed
    weighted loss, each row's taken before its update.

    Threads, blocks, the bias copies and the schedules are as in
    :func:`fmlearn.kernels.ffm.sgd_epoch`; each factor steps by
    ``-eta * (g * dscore/dp + reg * p)``, all from the values before the row's step.
    """
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    n_orders, _, k = factors.shape
    tp = factors.dtype.type
    losses = np.zeros(n_threads, dtype=np.float64)
    local = thread_copies(intercept, acc_intercept, n_threads)
    for c in prange(n_threads):
        bias, acc_bias = local[c, 0], local[c, 1]
        no_factors = np.zeros((1, 0), dtype=factors.dtype)
        no_q = np.zeros(0, dtype=factors.dtype)
        a = np.empty((n_orders, n_orders + 2, k), dtype=factors.dtype)
        px = np.empty(k, dtype=factors.dtype)
        power = np.empty(k, dtype=factors.dtype)
        deriv = np.empty(k, dtype=factors.dtype)
        t = step[0] + c
        total = 0.0
        for blk in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
            for r in range(block_starts[blk], min(block_starts[blk] + block_size, n_rows)):
                sw = sample_weight[r]
                if sw == 0:
                    continue
                start = indptr[r]
                end = indptr[r + 1]
                score = bias[0]
                for p in range(start, end):
                    score += coef[indices[p]] * data[p]
                score += anova_tables(start, end, indices, data, factors, a)
                score = min(max(score, cfg.lower), cfg.upper)
                l, d = loss_and_derivative(cfg.loss, score, y[r])
                total += sw * l
                g = tp(sw * d)
                eta = step_size(cfg, t, tp)
                _update_feature(bias, acc_bias, no_factors, no_factors, 0, tp(1), g, no_q,
                                sw * cfg.reg_intercept, tp(0), eta, cfg, cfg.fit_intercept)
                reg_v = sw * cfg.reg_factors
                for p in range(start, end):
                    j = indices[p]
                    x = data[p]
                    _update_feature(coef, acc_coef, no_factors, no_factors, j, x, g, no_q,
                                    sw * cfg.reg_linear, tp(0), eta, cfg, cfg.fit_linear)
                    for o in range(n_orders):
                        for f in range(k):
                            px[f] = factors[o, j, f] * x
                        anova_derivative(a, o, px, power, deriv)
                        for f in range(k):
                            v = factors[o, j, f]
                            grad = _clip(g * x * deriv[f] + reg_v * v, cfg.clip)
                            if cfg.schedule == ADAGRAD:
                                acc_factors[o, j, f] += grad * grad
                                factors[o, j, f] = v - eta * grad / np.sqrt(acc_factors[o, j, f])
                            else:
                                factors[o, j, f] = v - eta * grad
                t += n_threads
        losses[c] = total
    average_copies(local, intercept, acc_intercept)
    step[0] += n_rows
    return losses.sum()
