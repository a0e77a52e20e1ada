"""One epoch of mini-batch Adam for the second-order FM, as MXNet's sparse FM trains it.

The model, loss and update of MXNet's ``example/sparse/factorization_machine`` (the
formulation behind SageMaker's FM): per batch of rows, the gradient of the summed loss
(``g = dloss/dscore`` per row, times its sample weight) at the batch's starting
parameters; then for the bias (always) and for the linear weights and factor rows the
batch touches (lazy, row-sparse), MXNet's ``adam_update``::

    grad = clip(grad * rescale_grad + wd * theta, clip_gradient)
    mean = beta1 * mean + (1 - beta1) * grad
    var = beta2 * var + (1 - beta2) * grad**2
    theta -= lr_t * mean / (sqrt(var) + eps),  lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)

with ``t`` the number of batches stepped so far (from 1). The factors' gradient is
MXNet's ``sum_r g_r x_rj q_rf - v_jf sum_r g_r x_rj**2``.

Threads share a batch twice: first its rows, each thread scoring its share and summing
their gradients into buffers of its own (:func:`rows_share`); then its features
(``j % n_threads``), each thread adding up the threads' buffers of its own features and
stepping them (:func:`update_share`); the bias is thread 0's. With one thread the whole epoch
runs in one call (:func:`epoch_one_thread`).
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from .losses import loss_and_derivative
from .predict import accumulate_factors, finish_score
from .sgd import thread_scratch
from .._numba_cache import CACHE
from .._threads import run_threads

# Least work per thread (a batch's non-zeros times k + 1) for threads to share a batch: each
# batch costs two hand-offs to the pool's threads, 0.1 to 0.4 ms on a 2-core machine. frappe
# (10 non-zeros a row, k=64), one thread against two (bench/sagemaker_defaults.py's machine):
# batches of 1000 rows 0.074 against 0.125 s per epoch, of 10,000 rows 0.066 against 0.059.
MIN_WORK_PER_THREAD = 2**21
# Most bytes of the threads' gradient buffers (a model's worth each); beyond, one thread.
MAX_THREAD_BUFFER_BYTES = 256 * 2**20


class AdamConfig(NamedTuple):
    """Hyperparameters of an epoch: the rates and ``betas`` are Python floats (the bias
    correction is computed in float64, as MXNet's Python optimizer does), the others
    scalars of the model dtype. ``rescale`` <= 0 means ``1 / rows in the batch``."""

    loss: int
    lr_intercept: float
    lr_linear: float
    lr_factors: float
    wd_intercept: np.floating
    wd_linear: np.floating
    wd_factors: np.floating
    beta1: float
    beta2: float
    eps: np.floating
    rescale: float
    clip: np.floating
    fit_intercept: bool
    fit_linear: bool


@njit(cache=CACHE, inline="always")
def batch_rates(cfg, t, n_rows, tp):
    """The bias-corrected rates of the bias, the linear weights and the factors at step
    ``t`` (from 1) and the gradient's scale, for a batch of ``n_rows`` rows, as ``tp``."""
    correction = np.sqrt(1.0 - cfg.beta2 ** t) / (1.0 - cfg.beta1 ** t)
    rescale = cfg.rescale if cfg.rescale > 0 else 1.0 / n_rows
    return (tp(cfg.lr_intercept * correction), tp(cfg.lr_linear * correction),
            tp(cfg.lr_factors * correction), tp(rescale))


@njit(cache=CACHE, inline="always")
def adam_step(theta, mean, var, grad, lr, wd, rescale, cfg):
    """MXNet's ``adam_update`` of one coordinate: the new ``(theta, mean, var)``."""
    tp = type(theta)
    one = tp(1)
    beta1, beta2 = tp(cfg.beta1), tp(cfg.beta2)
    g = grad * rescale + theta * wd
    g = min(max(g, -cfg.clip), cfg.clip)
    mean = beta1 * mean + (one - beta1) * g
    var = beta2 * var + (one - beta2) * g * g
    return theta - lr * mean / (np.sqrt(var) + cfg.eps), mean, var


@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def rows_share(c, n_threads, first, last, indptr, indices, data, y, sample_weight, intercept,
               coef, factors, cfg, q, grad_w, grad_s, grad_v, mark, touched, tag):
    """Thread ``c``'s contiguous share of rows ``first`` to ``last`` (excluded), at the
    batch's starting parameters: their gradients summed into the thread's buffers
    ``grad_w[c]``, ``grad_s[c]`` (``sum g x**2``) and ``grad_v[c]`` (``sum g x q``) for the
    features they hold, listed in ``touched[c]`` (``mark[c, j] == tag`` once listed).
    Returns ``(summed weighted loss, rows of non-zero weight, bias gradient, features
    listed)``."""
    tp = factors.dtype.type
    k = factors.shape[1]
    qc = q[c, 0]
    n = last - first
    total = 0.0
    weighted = 0
    bias = tp(0)
    n_touched = 0
    for r in range(first + c * n // n_threads, first + (c + 1) * n // n_threads):
        sw = sample_weight[r]
        if sw == 0:
            continue
        weighted += 1
        qc[:] = 0
        score = intercept[0]
        squares = tp(0)
        for p in range(indptr[r], indptr[r + 1]):
            j = indices[p]
            score += coef[j] * data[p]
            squares += accumulate_factors(factors, j, data[p], qc)
        l, d = loss_and_derivative(cfg.loss, finish_score(score, squares, qc), y[r])
        total += sw * l
        g = tp(sw * d)
        bias += g
        for p in range(indptr[r], indptr[r + 1]):
            j = indices[p]
            if mark[c, j] != tag:
                mark[c, j] = tag
                touched[c, n_touched] = j
                n_touched += 1
                grad_w[c, j] = 0
                grad_s[c, j] = 0
                for f in range(k):
                    grad_v[c, j, f] = 0
            gx = g * data[p]
            grad_w[c, j] += gx
            grad_s[c, j] += gx * data[p]
            for f in range(k):
                grad_v[c, j, f] += gx * qc[f]
    return total, weighted, bias, n_touched


@njit(cache=CACHE, error_model="numpy", nogil=True, _nrt=False)
def update_share(c, n_threads, counts, intercept, coef, factors, mean_b, var_b, mean_w, var_w,
                 mean_v, var_v, cfg, rates, bias, grad_w, grad_s, grad_v, mark, touched, seen,
                 tag):
    """Step thread ``c``'s features (``j % n_threads == c``) among those the threads listed
    (``touched[t, :counts[t]]``) by Adam, their gradients the sums of the threads' buffers;
    thread 0 also steps the bias by its gradient ``bias``. ``seen[j] == tag`` marks a
    feature already stepped."""
    k = factors.shape[1]
    tp = factors.dtype.type
    lr_b, lr_w, lr_v, rescale = rates
    if c == 0 and cfg.fit_intercept:
        intercept[0], mean_b[0], var_b[0] = adam_step(intercept[0], mean_b[0], var_b[0], bias,
                                                      lr_b, cfg.wd_intercept, rescale, cfg)
    for t in range(n_threads):
        for s in range(counts[t]):
            j = touched[t, s]
            if n_threads > 1:
                if j % n_threads != c or seen[j] == tag:
                    continue
                seen[j] = tag
            if cfg.fit_linear:
                gw = tp(0)
                for u in range(n_threads):
                    if mark[u, j] == tag:
                        gw += grad_w[u, j]
                coef[j], mean_w[j], var_w[j] = adam_step(coef[j], mean_w[j], var_w[j], gw,
                                                         lr_w, cfg.wd_linear, rescale, cfg)
            gs = tp(0)
            for u in range(n_threads):
                if mark[u, j] == tag:
                    gs += grad_s[u, j]
            for f in range(k):
                gv = tp(0)
                for u in range(n_threads):
                    if mark[u, j] == tag:
                        gv += grad_v[u, j, f]
                factors[j, f], mean_v[j, f], var_v[j, f] = adam_step(
                    factors[j, f], mean_v[j, f], var_v[j, f], gv - factors[j, f] * gs, lr_v,
                    cfg.wd_factors, rescale, cfg)


@njit(cache=CACHE, error_model="numpy", nogil=True, _nrt=False)
def epoch_one_thread(indptr, indices, data, y, sample_weight, batch_starts, batch_size,
                     intercept, coef, factors, mean_b, var_b, mean_w, var_w, mean_v, var_v,
                     step, cfg, q, grad_w, grad_s, grad_v, mark, touched, seen, counts):
    """:func:`adam_epoch` on one thread, every batch in this call."""
    n_rows = indptr.shape[0] - 1
    tp = factors.dtype.type
    total = 0.0
    for b in range(batch_starts.shape[0]):
        first = batch_starts[b]
        last = min(first + batch_size, n_rows)
        tag = step[0] + 1
        loss, weighted, bias, counts[0] = rows_share(
            0, 1, first, last, indptr, indices, data, y, sample_weight, intercept, coef,
            factors, cfg, q, grad_w, grad_s, grad_v, mark, touched, tag)
        total += loss
        if weighted == 0:
            continue
        step[0] = tag
        update_share(0, 1, counts, intercept, coef, factors, mean_b, var_b, mean_w, var_w,
                     mean_v, var_v, cfg, batch_rates(cfg, tag, last - first, tp), bias, grad_w,
                     grad_s, grad_v, mark, touched, seen, tag)
    return total


@njit(cache=CACHE)
def rates_at(cfg, t, n_rows, tp_of):
    """:func:`batch_rates` from Python, in the dtype of the array ``tp_of``."""
    return batch_rates(cfg, t, n_rows, tp_of.dtype.type)


def adam_epoch(indptr, indices, data, y, sample_weight, batch_starts, batch_size, intercept,
               coef, factors, mean_b, var_b, mean_w, var_w, mean_v, var_v, step, cfg,
               n_threads):
    """One pass over the rows in batches of ``batch_size`` starting at ``batch_starts`` (in
    that order), updating the parameters and Adam's moments in place; ``step[0]`` counts
    the batches stepped (a batch whose rows all weigh 0 is skipped). Returns the summed
    weighted loss of the rows, each taken at its batch's starting parameters.

    ``n_threads`` threads share each batch when it holds ``MIN_WORK_PER_THREAD`` non-zeros
    times ``k + 1`` per thread (on average) and their gradient buffers (a model's worth
    each) fit in ``MAX_THREAD_BUFFER_BYTES``.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32)); y = np.ones(4, np.float32)
    >>> cfg = AdamConfig(0, 0.1, 0.1, 0.1, *np.float32([0, 0, 0]), 0.9, 0.999,
    ...                  np.float32(1e-8), -1.0, np.float32(np.inf), True, True)
    >>> w0, w, v = np.zeros(1, np.float32), np.zeros(4, np.float32), np.zeros((4, 2), np.float32)
    >>> moments = [np.zeros_like(a) for a in (w0, w0, w, w, v, v)]
    >>> loss = adam_epoch(X.indptr, X.indices, X.data, y, np.ones(4, np.float32),
    ...                   np.array([0, 2]), 2, w0, w, v, *moments, np.zeros(1, np.int64), cfg, 1)
    >>> # each batch's loss at its starting parameters; Adam's first steps are about lr (0.1)
    >>> round(float(loss), 2), round(float(w0[0]), 4)
    (1.81, 0.1996)
    """
    n_features, k = factors.shape
    dtype = factors.dtype
    n_rows = indptr.shape[0] - 1
    work = indices.shape[0] / max(1, n_rows) * min(batch_size, n_rows) * (k + 1)
    n_threads = max(1, min(n_threads, int(work // MIN_WORK_PER_THREAD),
                           MAX_THREAD_BUFFER_BYTES // (n_features * (k + 2) * dtype.itemsize)))
    q = thread_scratch(n_threads, (1, k), dtype)
    grad_w = np.zeros((n_threads, n_features), dtype=dtype)
    grad_s = np.zeros((n_threads, n_features), dtype=dtype)
    grad_v = np.zeros((n_threads, n_features, k), dtype=dtype)
    mark = np.full((n_threads, n_features), -1, dtype=np.int64)
    touched = np.zeros((n_threads, n_features), dtype=np.int64)
    seen = np.full(n_features, -1, dtype=np.int64)
    counts = np.zeros(n_threads, dtype=np.int64)
    if n_threads == 1:
        return float(epoch_one_thread(indptr, indices, data, y, sample_weight, batch_starts,
                                      batch_size, intercept, coef, factors, mean_b, var_b,
                                      mean_w, var_w, mean_v, var_v, step, cfg, q, grad_w,
                                      grad_s, grad_v, mark, touched, seen, counts))
    total = 0.0
    for first in batch_starts:
        last = min(int(first) + batch_size, n_rows)
        tag = int(step[0]) + 1
        shares = run_threads(rows_share, n_threads, n_threads, first, last, indptr, indices,
                             data, y, sample_weight, intercept, coef, factors, cfg, q, grad_w,
                             grad_s, grad_v, mark, touched, tag)
        total += sum(share[0] for share in shares)
        if not any(share[1] for share in shares):
            continue
        counts[:] = [share[3] for share in shares]
        step[0] = tag
        run_threads(update_share, n_threads, n_threads, counts, intercept, coef, factors,
                    mean_b, var_b, mean_w, var_w, mean_v, var_v, cfg,
                    rates_at(cfg, tag, last - first, factors),
                    dtype.type(sum(share[2] for share in shares)), grad_w, grad_s, grad_v,
                    mark, touched, seen, tag)
    return total
