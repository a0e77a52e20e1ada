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
from .._numba_cache import CACHE

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


@njit(cache=CACHE, fastmath=True, inline="always")
def _clip(g, c):
    return min(max(g, -c), c)


@njit(cache=CACHE, fastmath=True, inline="always")
def step_size(cfg, t, tp):
    """The learning rate of the ``t``-th sample (from 0), of type ``tp``:
    ``eta0 / (t + 1)**power_t`` for the inverse-scaling schedule, else ``eta0``."""
    if cfg.schedule == INVSCALING:
        return tp(cfg.eta0 / (t + 1.0) ** cfg.power_t)
    return cfg.eta0


@njit(cache=CACHE, fastmath=False)
def merged(own, pushed, shared):
    """Shared parameters (or AdaGrad sums) after a learner whose copy of them went from
    ``pushed`` to ``own`` adds its steps: ``shared + (own - pushed)``.

    The rule of every learner that steps copies (the threads' copies of the bias and of
    the hot features, the Dask partitions' AdaGrad sums): merging each copy in turn sums
    their steps, and AdaGrad's sums become the starting sums plus every learner's squared
    gradients. Computed as ``own + (shared - pushed)`` without fastmath, which is exactly
    ``own`` when no other learner stepped in between. Scalars or arrays.

    Examples
    --------
    >>> float(merged(3.0, 1.0, 1.5))  # a step of 2 from 1, onto 1.5 another learner left
    3.5
    """
    return own + (shared - pushed)


@njit(cache=CACHE, inline="always")
def _merge_row(own, pushed, alone, s, shared, j):
    """Merge row ``s`` of a thread's copy ``own`` of row ``j`` of ``shared``, which it last
    pushed as ``pushed[s]``, into ``shared[j]`` by :func:`merged`, and add its steps since
    to ``alone[s]``; the copy then holds the merged values. 2-D arrays."""
    for m in range(shared.shape[1]):
        alone[s, m] += own[s, m] - pushed[s, m]
        value = merged(own[s, m], pushed[s, m], shared[j, m])
        shared[j, m] = value
        own[s, m] = value
        pushed[s, m] = value


@njit(cache=CACHE, inline="always")
def thread_copies(values, acc, n_threads, rows=None):
    """Each thread's copies of ``values`` (the rows ``rows`` of them, or all) and of their
    AdaGrad sums ``acc``, and both as they were.

    For the parameters every row updates (the bias, the hot features): stepped in a
    private copy per thread, so that no cache line bounces between cores on each row,
    merged into the shared ones after every block of rows by :func:`push_copies`, and
    after the threads by :func:`settle_copies`.

    Returns ``(local, start)``: ``local`` of shape (n_threads, 3, 2, n, ...), ``[c, 0]``
    what thread ``c`` steps, ``[c, 1]`` what it last pushed and ``[c, 2]`` the start plus
    its own steps, each ``[..., 0, :]`` values and ``[..., 1, :]`` sums (all as they were
    to start with), each thread's more than a cache line from the next's; ``start`` of
    shape (2, n, ...).
    """
    n = values.shape[0] if rows is None else rows.shape[0]
    pad = 1 + _PAD_BYTES // (values.itemsize * max(1, values[:1].size))
    local = np.empty((n_threads, 3, 2, n + pad) + values.shape[1:], dtype=values.dtype)
    start = np.empty((2, n) + values.shape[1:], dtype=values.dtype)
    for s in range(n):
        j = s if rows is None else rows[s]
        start[0, s] = values[j]
        start[1, s] = acc[j]
    for c in range(n_threads):
        for held in range(3):
            local[c, held, :, :n] = start
    return local, start


@njit(cache=CACHE, inline="always")
def _as_rows(array):
    """``array`` of shape (n, ...) as a C-contiguous 2-D view (n, width)."""
    return array.reshape((array.shape[0], -1))


@njit(cache=CACHE, inline="always")
def push_copies(copy, values, acc, rows=None, first=0):
    """Merge one thread's ``copy`` (``local[c]`` of :func:`thread_copies`) of ``values`` and
    their sums ``acc`` into them by :func:`merged`: add its steps since its last push, and
    take the other threads' into the copy. Starts at copied row ``first``, so that
    threads pushing at the same time seldom write the same row (one of them would lose
    its steps here, never in :func:`settle_copies`' result)."""
    n = values.shape[0] if rows is None else rows.shape[0]
    for held in range(2):
        own, pushed = _as_rows(copy[0, held]), _as_rows(copy[1, held])
        alone, shared = _as_rows(copy[2, held]), _as_rows(values if held == 0 else acc)
        for i in range(n):
            s = first + i if first + i < n else first + i - n
            _merge_row(own, pushed, alone, s, shared, s if rows is None else rows[s])


@njit(cache=CACHE, inline="always")
def settle_copies(local, start, values, acc, rows=None):
    """After the threads' last pushes: ``values`` and ``acc`` (their rows ``rows``) are
    ``start`` plus every thread's steps (:func:`merged`), exactly, whatever the pushes
    lost. One thread's copy is already in them, exactly."""
    if local.shape[0] == 1:
        return
    for held in range(2):
        begin = _as_rows(start[held])
        shared = _as_rows(values if held == 0 else acc)
        for s in range(begin.shape[0]):
            row = shared[s if rows is None else rows[s]]
            row[:] = begin[s]
            for c in range(local.shape[0]):
                alone = _as_rows(local[c, 2, held])[s]
                for m in range(row.shape[0]):
                    row[m] = merged(alone[m], begin[s, m], row[m])


@njit(cache=CACHE, fastmath=True, inline="always")
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


@njit(parallel=True, cache=CACHE, fastmath=True, error_model="numpy", nogil=True)
def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size,
              intercept, coef, factors, acc_intercept, acc_coef, acc_factors,
              hot_slot, hot_features, step, cfg, n_threads):
    """Run one pass over the rows, updating the parameters in place.

    Rows are visited block by block in the order of ``block_starts`` (row
    offsets of blocks of ``block_size`` rows); thread ``c`` of ``n_threads``
    takes the ``c``-th contiguous share of the blocks and updates the shared
    parameters without locks (Hogwild). The parameters every thread would write on
    almost every row, the intercept and ``hot_features`` (``hot_slot[j]`` is ``j``'s
    position among them, or -1), are stepped in per-thread copies, so that no cache line
    bounces between cores on each row (:func:`thread_copies`). After every block each
    thread adds its steps to the shared ones and takes the others' (:func:`merged`), and
    after the pass they are the start plus every thread's steps, exactly: the epoch makes
    the progress of all the threads' rows and AdaGrad's sums hold every squared gradient
    (averaging the copies at the end made 1/T of it). With one thread this is exactly
    sequential SGD. ``acc_*`` hold AdaGrad's sums of squared gradients (ignored by the
    other schedules); ``step[0]`` counts samples seen for the inverse-scaling schedule.
    Returns the sum of the weighted losses of the rows, each taken before its update.
    """
    n_rows = indptr.shape[0] - 1
    n_nonzero = indices.shape[0]
    n_blocks = block_starts.shape[0]
    n_hot = hot_features.shape[0]
    k = factors.shape[1]
    tp = factors.dtype.type
    losses = np.zeros(n_threads, dtype=np.float64)
    local_bias, start_bias = thread_copies(intercept, acc_intercept, n_threads)
    local_w, start_w = thread_copies(coef, acc_coef, n_threads, hot_features)
    local_v, start_v = thread_copies(factors, acc_factors, n_threads, hot_features)
    local_q = np.empty((n_threads, k + _PAD_BYTES // factors.itemsize), dtype=factors.dtype)
    for c in prange(n_threads):
        bias, acc_bias = local_bias[c, 0, 0], local_bias[c, 0, 1]
        w, acc_w = local_w[c, 0, 0], local_w[c, 0, 1]
        v, acc_v = local_v[c, 0, 0], local_v[c, 0, 1]
        q = local_q[c, :k]
        first = c * n_hot // n_threads
        no_factors = np.zeros((1, 0), dtype=factors.dtype)
        no_q = np.zeros(0, dtype=factors.dtype)
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
                score = bias[0]
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
                _update_feature(bias, acc_bias, no_factors, no_factors, 0, tp(1), g, no_q,
                                sw * cfg.reg_intercept, tp(0), eta, cfg, cfg.fit_intercept)
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
            push_copies(local_bias[c], intercept, acc_intercept)
            push_copies(local_w[c], coef, acc_coef, hot_features, first)
            push_copies(local_v[c], factors, acc_factors, hot_features, first)
        losses[c] = total
    settle_copies(local_bias, start_bias, intercept, acc_intercept)
    settle_copies(local_w, start_w, coef, acc_coef, hot_features)
    settle_copies(local_v, start_v, factors, acc_factors, hot_features)
    step[0] += n_rows
    return losses.sum()
