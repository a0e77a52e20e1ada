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
from .predict import score_row

CONSTANT = 0
INVSCALING = 1
ADAGRAD = 2


class SGDConfig(NamedTuple):
    """Hyperparameters of one epoch; floats are scalars of the model dtype."""

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


@njit(cache=True, fastmath=True, inline="always")
def _clip(g, c):
    return min(max(g, -c), c)


@njit(parallel=True, cache=True, fastmath=True)
def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size,
              intercept, coef, factors, acc_intercept, acc_coef, acc_factors,
              step, cfg, n_threads):
    """Run one pass over the rows, updating the parameters in place.

    Rows are visited block by block in the order of ``block_starts`` (row
    offsets of blocks of ``block_size`` rows); thread ``c`` of ``n_threads``
    takes the ``c``-th contiguous share of the blocks and updates ``coef`` and
    ``factors`` without locks (Hogwild). Each thread keeps its own copy of the
    intercept (and of its AdaGrad accumulator), averaged at the end, so that no
    cache line is written by every thread on every row. ``acc_*`` hold AdaGrad's
    sums of squared gradients (ignored by the other schedules); ``step[0]`` counts
    samples seen for the inverse-scaling schedule. Returns the sum of the weighted
    losses of the rows, each taken before its update.
    """
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    k = factors.shape[1]
    tp = factors.dtype.type
    losses = np.zeros(n_threads, dtype=np.float64)
    intercepts = np.empty(n_threads, dtype=factors.dtype)
    acc_intercepts = np.empty(n_threads, dtype=factors.dtype)
    for c in prange(n_threads):
        q = np.empty(k, dtype=factors.dtype)
        w0 = intercept[0]
        a0 = acc_intercept[0]
        t = step[0] + c
        total = 0.0
        for b in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
            for r in range(block_starts[b], min(block_starts[b] + block_size, n_rows)):
                sw = sample_weight[r]
                if sw == 0:
                    continue
                start = indptr[r]
                end = indptr[r + 1]
                score = min(max(score_row(start, end, indices, data, w0, coef, factors, q),
                                cfg.lower), cfg.upper)
                l, d = loss_and_derivative(cfg.loss, score, y[r])
                total += sw * l
                g = tp(sw * d)
                reg0 = sw * cfg.reg_intercept
                reg1 = sw * cfg.reg_linear
                reg2 = sw * cfg.reg_factors
                if cfg.schedule == ADAGRAD:
                    g0 = _clip(g + reg0 * w0, cfg.clip)
                    a0 += g0 * g0
                    w0 -= cfg.eta0 * g0 / np.sqrt(a0)
                    for p in range(start, end):
                        j = indices[p]
                        x = data[p]
                        gx = g * x
                        gw = _clip(gx + reg1 * coef[j], cfg.clip)
                        acc_coef[j] += gw * gw
                        coef[j] -= cfg.eta0 * gw / np.sqrt(acc_coef[j])
                        for f in range(k):
                            v = factors[j, f]
                            gv = _clip(gx * (q[f] - v * x) + reg2 * v, cfg.clip)
                            acc_factors[j, f] += gv * gv
                            factors[j, f] = v - cfg.eta0 * gv / np.sqrt(acc_factors[j, f])
                else:
                    if cfg.schedule == INVSCALING:
                        eta = tp(cfg.eta0 / (t + 1.0) ** cfg.power_t)
                    else:
                        eta = cfg.eta0
                    w0 -= eta * _clip(g + reg0 * w0, cfg.clip)
                    for p in range(start, end):
                        j = indices[p]
                        x = data[p]
                        gx = g * x
                        coef[j] -= eta * _clip(gx + reg1 * coef[j], cfg.clip)
                        for f in range(k):
                            v = factors[j, f]
                            factors[j, f] = v - eta * _clip(
                                gx * (q[f] - v * x) + reg2 * v, cfg.clip)
                t += n_threads
        losses[c] = total
        intercepts[c] = w0
        acc_intercepts[c] = a0
    intercept[0] = intercepts.mean()
    acc_intercept[0] = acc_intercepts.mean()
    step[0] += n_rows
    return losses.sum()
