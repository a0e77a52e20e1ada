"""Higher-order FM scores and SGD epochs through the ANOVA kernel (Blondel, Fujino, Ueda,
Ishihata, NIPS 2016).

A model of order m has factors ``P[t - 2]`` (shape (n_features, k)) for each order
t = 2..m and scores

    w0 + sum_i w_i x_i + sum_{t=2..m} sum_f A^t(P[t - 2][:, f], x),
    A^t(p, x) = sum_{i_1 < ... < i_t} prod_s p_{i_s} x_{i_s}.

The dynamic programme ``a[p + 1, s] = a[p, s] + p_j x_j a[p, s - 1]`` over the row's
non-zeros (``a[p, s]``: A^s of the first p of them) gives ``A^t = a[nnz, t]`` in O(t * nnz)
per factor. The gradient is the reverse pass over that table (Blondel et al., Algorithm 2):
with ``g[p, s] = dA^t / da[p + 1, s]``, ``g[nnz - 1] = e_t`` and ``g[p - 1, s] = g[p, s] +
p_j x_j g[p, s + 1]``, the non-zero ``p`` at column ``j`` has ``dA^t/dp_j = x_j sum_s g[p, s]
a[p, s - 1]``. Both tables hold sums of products with the data's own signs only, so the
gradient is as accurate as the score; the closed form ``x_j sum_u (-p_j x_j)^u A^{t-1-u}``
cancels terms of size ``(p_j x_j)^{t-1}`` and lost every digit in float32 once ``p_j x_j``
reached 20 at order 5. Order 2 is the FM.
"""
import numpy as np
from numba import njit

from .losses import loss_and_derivative
from .no_alias import no_alias
from .sgd import (ADAGRAD, OWN, _clip, _update_feature, epoch_with_copies, longest_row,
                  mark_copies, push_copies, step_size, thread_scratch)
from .._numba_cache import CACHE


@njit(cache=CACHE, fastmath=True, inline="always")
def anova_scores(start, end, indices, data, factors, a):
    """The row's interaction score ``sum_o sum_f A^{o+2}(factors[o][:, f], x)``, summed in
    ``a``'s dtype; ``a`` (shape (n_orders, n_orders + 2, k)) is scratch space holding the
    latest column ``a[o, s, f]`` of each order's table. The innermost loops run over the
    factors, which are contiguous."""
    tp = a.dtype.type
    total = tp(0)
    k = factors.shape[2]
    for o in range(factors.shape[0]):
        t = o + 2
        a[o, 0, :] = 1
        a[o, 1:t + 1, :] = 0
        for p in range(start, end):
            j = indices[p]
            x = tp(data[p])
            for s in range(t, 0, -1):
                for f in range(k):
                    a[o, s, f] += a[o, s - 1, f] * tp(factors[o, j, f]) * x
        for f in range(k):
            total += a[o, t, f]
    return total


@njit(cache=CACHE, fastmath=True, inline="always")
def anova_table(start, end, indices, data, factors, o, a):
    """Fill ``a[p, s, f] = A^s`` of the row's first ``p`` non-zeros under order ``o + 2``'s
    factors ``factors[o]``, ``p = 0..nnz``, ``s = 0..o + 2``; return ``sum_f A^{o+2}``."""
    t = o + 2
    k = factors.shape[2]
    a[0, 0, :] = 1
    a[0, 1:t + 1, :] = 0
    for p in range(end - start):
        j = indices[start + p]
        x = data[start + p]
        a[p + 1, 0, :] = 1
        for s in range(1, t + 1):
            for f in range(k):
                a[p + 1, s, f] = a[p, s, f] + a[p, s - 1, f] * factors[o, j, f] * x
    total = a.dtype.type(0)
    for f in range(k):
        total += a[end - start, t, f]
    return total


@njit(cache=CACHE, fastmath=True, nogil=True)
def predict_chunk(c, n_chunks, indptr, indices, data, intercept, coef, factors, out):
    """Write the score of chunk ``c`` of ``n_chunks`` equal chunks of the CSR rows into
    ``out``; ``factors`` has shape (order - 1, n_features, k). Sums run in float64 whatever
    the parameters' dtype."""
    n_rows = indptr.shape[0] - 1
    chunk = (n_rows + n_chunks - 1) // n_chunks
    a = np.empty((factors.shape[0], factors.shape[0] + 2, factors.shape[2]))
    for r in range(c * chunk, min(n_rows, (c + 1) * chunk)):
        linear = np.float64(intercept)
        for p in range(indptr[r], indptr[r + 1]):
            linear += np.float64(coef[indices[p]]) * data[p]
        out[r] = linear + anova_scores(indptr[r], indptr[r + 1], indices, data, factors, a)


@njit(cache=CACHE, fastmath=True, inline="always")
def step_factors(start, end, indices, data, factors, acc_factors, o, a, back, deriv, g, reg_v,
                 eta, cfg):
    """Step order ``o + 2``'s factors of the row's non-zeros along the reverse pass over its
    table ``a`` (:func:`anova_table`), last non-zero first; ``back`` (at least (o + 3, k))
    holds ``g[p, s]`` and ``deriv`` (k) is scratch space. A non-zero's gradient is taken
    before its step and the recursion reads its old ``p_j x_j``, so every step uses the
    values before the row's update."""
    t = o + 2
    k = factors.shape[2]
    back[:t + 1, :] = 0
    back[t, :] = 1
    for p in range(end - start - 1, -1, -1):
        j = indices[start + p]
        x = data[start + p]
        deriv[:] = 0
        for s in range(1, t + 1):
            for f in range(k):
                deriv[f] += back[s, f] * a[p, s - 1, f]
        for s in range(1, t):
            for f in range(k):
                back[s, f] += factors[o, j, f] * x * back[s + 1, f]
        for f in range(k):
            v = factors[o, j, f]
            grad = _clip(g * x * deriv[f] + reg_v * v, cfg.clip)
            if cfg.schedule == ADAGRAD:
                acc_factors[o, j, f] += grad * grad
                factors[o, j, f] = v - eta * grad / np.sqrt(acc_factors[o, j, f])
            else:
                factors[o, j, f] = v - eta * grad


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, intercept, coef, factors, acc_intercept, acc_coef, acc_factors, step,
                cfg, local, tables, backs, derivs, no_factors, no_q):
    """Thread ``c``'s share of :func:`sgd_epoch`, its bias stepped in ``local[c]`` and
    ``tables[c]``, ``backs[c]``, ``derivs[c]`` its scratch space; returns the summed weighted
    loss of its rows. Compiled without reference counting."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    n_orders = factors.shape[0]
    tp = factors.dtype.type
    a, back, deriv = tables[c, :n_orders], backs[c, :n_orders + 2], derivs[c, 0]
    bias, acc_bias = local[c, OWN, 0], local[c, OWN, 1]
    t = step[0] + c
    total = 0.0
    for blk in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
        for r in range(block_starts[blk], min(block_starts[blk] + block_size, n_rows)):
            if n_threads > 1 and r == block_starts[blk] + block_size // 2:
                mark_copies(local[c])
            sw = sample_weight[r]
            if sw == 0:
                continue
            start = indptr[r]
            end = indptr[r + 1]
            score = bias[0]
            for p in range(start, end):
                score += coef[indices[p]] * data[p]
            for o in range(n_orders):
                score += anova_table(start, end, indices, data, factors, o, a[o])
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
                step_factors(start, end, indices, data, factors, acc_factors, o, a[o], back,
                             deriv, g, reg_v, eta, cfg)
            t += n_threads
        push_copies(local[c], intercept, acc_intercept, n_threads)
    return total


def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, intercept,
              coef, factors, acc_intercept, acc_coef, acc_factors, step, cfg, n_threads):
    """One pass over the rows, updating the parameters in place; returns the summed
    weighted loss, each row's taken before its update.

    Threads, blocks, the bias copies and the schedules are as in
    :func:`fmlearn.kernels.ffm.sgd_epoch`; each factor steps by
    ``-eta * (g * dscore/dp + reg * p)``, all from the values before the row's step. Each
    thread holds the tables of the longest row: ``(order - 1) * (nnz + 1) * (order + 1) * k``
    numbers of the model dtype.
    """
    n_orders, _, k = factors.shape
    longest = longest_row(indptr)
    args = (indptr, indices, data, y, sample_weight, block_starts, block_size, intercept, coef,
            factors, acc_intercept, acc_coef, acc_factors, step, cfg)
    tables = (n_orders, longest + 1, n_orders + 2, k)
    scratch = (thread_scratch(n_threads, tables, factors.dtype),
               thread_scratch(n_threads, (n_orders + 2, k), factors.dtype),
               thread_scratch(n_threads, (1, k), factors.dtype))
    return epoch_with_copies(thread_pass, n_threads, args, intercept, acc_intercept, step,
                                  scratch)
