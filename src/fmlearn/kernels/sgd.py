"""One epoch of per-sample SGD for the second-order FM, lock-free over threads.

Gradients of the score (Rendle 2010, eq. 4): d/dw0 = 1, d/dw_i = x_i,
d/dv_if = x_i (q_f - v_if x_i) with q_f = sum_j v_jf x_j. Each row's step is
``theta -= eta * clip(g * dscore/dtheta + reg * theta)`` on the parameters the
row touches, with ``g = dloss/dscore``; a row's whole step, penalty included, is
multiplied by its sample weight, so a weight of 0 leaves everything unchanged.
"""
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .losses import loss_and_derivative
from .predict import accumulate_factors, finish_score
from .prefetch import prefetch_entry, prefetch_row

CONSTANT = 0
INVSCALING = 1
ADAGRAD = 2
_PAD_BYTES = 256  # gap between threads' private arrays: more than a cache line, and its neighbour
# Non-zeros ahead of the one being scored whose weight, factors and sums are prefetched: far
# enough for the memory's latency, near enough to stay in cache (2 to 16 measured alike).
PREFETCH_AHEAD = 8


class SGDConfig(NamedTuple):
    """Hyperparameters of one epoch; floats are scalars of the model dtype.

    ``lower`` and ``upper`` bound the score inside the loss (libFM's clipping of
    regression predictions to the target range). ``fit_intercept`` and ``fit_linear``
    switch the updates of the bias and of the linear weights (libFM's ``-dim k0,k1,k``).
    ``prefetch`` asks for the weight, factors and AdaGrad sums of the feature
    ``PREFETCH_AHEAD`` non-zeros ahead while a row is scored, for parameters that do not
    fit in cache.
    """

    loss: int
    schedule: int
    eta0: np.floating
    power_t: np.floating
    reg_intercept: np.floating
    reg_linear: np.floating
    reg_factors: np.floating
    clip: np.floating
    lower: np.floating
    upper: np.floating
    fit_intercept: bool
    fit_linear: bool
    prefetch: bool = False


@njit(cache=True, fastmath=True, inline="always")
def _clip(g, c):
    return min(max(g, -c), c)


@njit(cache=True, fastmath=True, inline="always")
def step_size(cfg, t, tp):
    """The learning rate of the ``t``-th sample (from 0), of type ``tp``:
    ``eta0 / (t + 1)**power_t`` for the inverse-scaling schedule, else ``eta0``."""
    if cfg.schedule == INVSCALING:
        return tp(cfg.eta0 / (t + 1.0) ** cfg.power_t)
    return cfg.eta0


@njit(cache=True, inline="always")
def thread_copies(values, acc, n_threads):
    """Copies of ``values`` and of their AdaGrad sums ``acc`` for each thread, shape
    (n_threads, 2, width), each thread's rows more than a cache line from the next's.

    For the parameters every row updates (the bias): stepped in a private copy per
    thread, so no cache line bounces between cores on each row, then averaged by
    :func:`average_copies`.
    """
    n = values.shape[0]
    local = np.empty((n_threads, 2, n + _PAD_BYTES // values.itemsize), dtype=values.dtype)
    for c in range(n_threads):
        local[c, 0, :n] = values
        local[c, 1, :n] = acc
    return local


@njit(cache=True, inline="always")
def average_copies(local, values, acc):
    """Write the threads' mean of the copies in ``local`` back into ``values`` and ``acc``."""
    scale = values.dtype.type(1.0 / local.shape[0])
    for m in range(values.shape[0]):
        values[m] = local[:, 0, m].sum() * scale
        acc[m] = local[:, 1, m].sum() * scale


@njit(cache=True, fastmath=True, inline="always")
def _update_feature(w, acc_w, V, acc_V, i, x, g, q, reg_w, reg_v, eta, cfg, fit_w):
    """Step the first ``len(q)`` factors of ``V[i]`` and, if ``fit_w``, the weight ``w[i]``,
    for feature value ``x``."""
    gx = g * x
    gw = _clip(gx + reg_w * w[i], cfg.clip)
    if cfg.schedule == ADAGRAD:
        if fit_w:
            acc_w[i] += gw * gw
            w[i] -= eta * gw / np.sqrt(acc_w[i])
        for f in range(q.shape[0]):
            gv = _clip(gx * (q[f] - V[i, f] * x) + reg_v * V[i, f], cfg.clip)
            acc_V[i, f] += gv * gv
            V[i, f] -= eta * gv / np.sqrt(acc_V[i, f])
    else:
        if fit_w:
            w[i] -= eta * gw
        for f in range(q.shape[0]):
            V[i, f] -= eta * _clip(gx * (q[f] - V[i, f] * x) + reg_v * V[i, f], cfg.clip)


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy", nogil=True)
def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size,
              intercept, coef, factors, acc_intercept, acc_coef, acc_factors,
              hot_slot, hot_features, step, cfg, n_threads):
    """Run one pass over the rows, updating the parameters in place.

    Rows are visited block by block in the order of ``block_starts`` (row
    offsets of blocks of ``block_size`` rows); thread ``c`` of ``n_threads``
    takes the ``c``-th contiguous share of the blocks and updates the shared
    parameters without locks (Hogwild). The features every thread would write on
    almost every row, the intercept and ``hot_features`` (``hot_slot[j]`` is
    ``j``'s position among them, or -1), are updated in per-thread copies that
    are averaged at the end, so that no cache line bounces between cores on each
    row; with one thread this is exactly sequential SGD. ``acc_*`` hold AdaGrad's
    sums of squared gradients (ignored by the other schedules); ``step[0]`` counts
    samples seen for the inverse-scaling schedule. Returns the sum of the weighted
    losses of the rows, each taken before its update.
    """
    n_rows = indptr.shape[0] - 1
    n_nonzero = indices.shape[0]
    n_blocks = block_starts.shape[0]
    n_hot = hot_features.shape[0]
    k = factors.shape[1]
    tp = factors.dtype.type
    losses = np.zeros(n_threads, dtype=np.float64)
    # Per-thread arrays, padded so that no two threads' entries share a cache line.
    # Row n_hot of the local arrays holds the intercept (its factor row is never read).
    pad = _PAD_BYTES // factors.itemsize
    pad_rows = 1 + pad // max(k, 1)
    local_w = np.empty((n_threads, n_hot + 1 + pad), dtype=factors.dtype)
    local_acc_w = np.empty((n_threads, n_hot + 1 + pad), dtype=factors.dtype)
    local_v = np.zeros((n_threads, n_hot + 1 + pad_rows, k), dtype=factors.dtype)
    local_acc_v = np.ones((n_threads, n_hot + 1 + pad_rows, k), dtype=factors.dtype)
    local_q = np.empty((n_threads, k + pad), dtype=factors.dtype)
    for c in prange(n_threads):
        w, acc_w, v, acc_v = local_w[c], local_acc_w[c], local_v[c], local_acc_v[c]
        q = local_q[c, :k]
        for s in range(n_hot):
            j = hot_features[s]
            w[s] = coef[j]
            acc_w[s] = acc_coef[j]
            for f in range(k):
                v[s, f] = factors[j, f]
                acc_v[s, f] = acc_factors[j, f]
        w[n_hot] = intercept[0]
        acc_w[n_hot] = acc_intercept[0]
        no_factors = np.zeros(0, dtype=factors.dtype)
        t = step[0] + c
        total = 0.0
        for b in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
            for r in range(block_starts[b], min(block_starts[b] + block_size, n_rows)):
                sw = sample_weight[r]
                if sw == 0:
                    continue
                start = indptr[r]
                end = indptr[r + 1]
                q[:] = 0
                score = w[n_hot]
                squares = tp(0)
                for p in range(start, end):
                    j = indices[p]
                    if cfg.prefetch and p + PREFETCH_AHEAD < n_nonzero:
                        ahead = indices[p + PREFETCH_AHEAD]
                        prefetch_row(factors, ahead)
                        prefetch_row(acc_factors, ahead)
                        prefetch_entry(coef, ahead)
                        prefetch_entry(acc_coef, ahead)
                    s = hot_slot[j] if n_hot > 0 else -1
                    x = data[p]
                    if s >= 0:
                        score += w[s] * x
                        squares += accumulate_factors(v, s, x, q)
                    else:
                        score += coef[j] * x
                        squares += accumulate_factors(factors, j, x, q)
                score = min(max(finish_score(score, squares, q), cfg.lower), cfg.upper)
                l, d = loss_and_derivative(cfg.loss, score, y[r])
                total += sw * l
                g = tp(sw * d)
                eta = step_size(cfg, t, tp)
                reg_w = sw * cfg.reg_linear
                reg_v = sw * cfg.reg_factors
                _update_feature(w, acc_w, v, acc_v, n_hot, tp(1), g, no_factors,
                                sw * cfg.reg_intercept, reg_v, eta, cfg, cfg.fit_intercept)
                for p in range(start, end):
                    j = indices[p]
                    s = hot_slot[j] if n_hot > 0 else -1
                    if s >= 0:
                        _update_feature(w, acc_w, v, acc_v, s, data[p], g, q, reg_w, reg_v,
                                        eta, cfg, cfg.fit_linear)
                    else:
                        _update_feature(coef, acc_coef, factors, acc_factors, j, data[p], g, q,
                                        reg_w, reg_v, eta, cfg, cfg.fit_linear)
                t += n_threads
        losses[c] = total
    scale = tp(1.0 / n_threads)
    for s in range(n_hot):
        j = hot_features[s]
        coef[j] = local_w[:, s].sum() * scale
        acc_coef[j] = local_acc_w[:, s].sum() * scale
        for f in range(k):
            factors[j, f] = local_v[:, s, f].sum() * scale
            acc_factors[j, f] = local_acc_v[:, s, f].sum() * scale
    intercept[0] = local_w[:, n_hot].sum() * scale
    acc_intercept[0] = local_acc_w[:, n_hot].sum() * scale
    step[0] += n_rows
    return losses.sum()
