"""Multiclass FM: one second-order FM score per class, a softmax over them, and its SGD epoch.

Class ``c`` has parameters ``intercept[c]``, ``coef[c]`` and ``factors[c]`` (each the
second-order FM's); ``p = softmax(scores)`` and the loss of a row of class ``y`` is
``-log p_y``, whose derivative with respect to score ``c`` is ``p_c - [c == y]``. Each
class's parameters then step as in :mod:`fmlearn.kernels.sgd`.
"""
import numpy as np
from numba import njit

from .no_alias import no_alias
from .predict import score_row
from .sgd import (OWN, _update_feature, epoch_with_copies, mark_copies, push_copies,
                  step_size, thread_scratch)
from .._numba_cache import CACHE


@njit(cache=CACHE, fastmath=True, nogil=True)
def predict_chunk(c, n_chunks, indptr, indices, data, intercept, coef, factors, out):
    """Write every class's FM score of chunk ``c`` of ``n_chunks`` equal chunks of the CSR
    rows into ``out`` (n_rows, n_classes)."""
    n_rows = indptr.shape[0] - 1
    chunk = (n_rows + n_chunks - 1) // n_chunks
    q = np.empty(factors.shape[2])  # float64 sums
    for r in range(c * chunk, min(n_rows, (c + 1) * chunk)):
        for k in range(intercept.shape[0]):
            out[r, k] = score_row(indptr[r], indptr[r + 1], indices, data, intercept[k],
                                  coef[k], factors[k], q)


@njit(cache=CACHE, fastmath=True, inline="always")
def softmax_loss(scores, label, proba):
    """Write ``softmax(scores)`` into ``proba``; return ``-log proba[label]`` (float64)."""
    top = scores[0]
    for k in range(1, scores.shape[0]):
        top = max(top, scores[k])
    total = 0.0
    for k in range(scores.shape[0]):
        proba[k] = np.exp(scores[k] - top)
        total += proba[k]
    for k in range(scores.shape[0]):
        proba[k] /= total
    return np.log(total) + top - scores[label]


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, intercept, coef, factors, acc_intercept, acc_coef, acc_factors, step,
                cfg, local, local_q, local_p, no_factors, no_q):
    """Thread ``c``'s share of :func:`sgd_epoch`, its intercepts stepped in ``local[c]``;
    ``local_q[c]`` and ``local_p[c]`` are its scratch space. Returns the summed weighted loss
    of its rows. Compiled without reference counting, so it allocates nothing."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    n_classes = factors.shape[0]
    tp = factors.dtype.type
    q = local_q[c, :n_classes]
    scores, proba = local_p[c, 0], local_p[c, 1]
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
            label = int(y[r])
            for m in range(n_classes):
                scores[m] = score_row(start, end, indices, data, bias[m], coef[m], factors[m],
                                      q[m])
            total += sw * softmax_loss(scores, label, proba)
            eta = step_size(cfg, t, tp)
            reg_w = sw * cfg.reg_linear
            reg_v = sw * cfg.reg_factors
            for m in range(n_classes):
                g = tp(sw * (proba[m] - (1.0 if m == label else 0.0)))
                _update_feature(bias, acc_bias, no_factors, no_factors, m, tp(1), g, no_q,
                                sw * cfg.reg_intercept, tp(0), eta, cfg, cfg.fit_intercept)
                for p in range(start, end):
                    _update_feature(coef[m], acc_coef[m], factors[m], acc_factors[m],
                                    indices[p], data[p], g, q[m], reg_w, reg_v, eta, cfg,
                                    cfg.fit_linear)
            t += n_threads
        push_copies(local[c], intercept, acc_intercept, n_threads)
    return total


def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, intercept,
              coef, factors, acc_intercept, acc_coef, acc_factors, step, cfg, n_threads):
    """One pass over the rows (labels ``y`` are class codes 0..C-1), updating the parameters
    in place; returns the summed weighted cross-entropy, each row's taken before its update.

    Threads, blocks and the schedules are as in :func:`fmlearn.kernels.sgd.sgd_epoch`; the
    intercepts, which every row updates, are stepped in copies per thread, pushed after
    every block (:func:`fmlearn.kernels.sgd.push_copies`). Every parameter steps from the
    scores before the row's step.
    """
    n_classes, _, k = factors.shape
    args = (indptr, indices, data, y, sample_weight, block_starts, block_size, intercept, coef,
            factors, acc_intercept, acc_coef, acc_factors, step, cfg)
    scratch = (thread_scratch(n_threads, (n_classes, k), factors.dtype),
               thread_scratch(n_threads, (2, n_classes), factors.dtype))
    return epoch_with_copies(thread_pass, n_threads, args, intercept, acc_intercept, step,
                                  scratch)
