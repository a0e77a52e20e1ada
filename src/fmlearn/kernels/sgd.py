"""One epoch of per-sample SGD for the second-order FM, lock-free over threads.

Gradients of the score (Rendle 2010, eq. 4): d/dw0 = 1, d/dw_i = x_i,
d/dv_if = x_i (q_f - v_if x_i) with q_f = sum_j v_jf x_j. Each row's step is
``theta -= eta * clip(g * dscore/dtheta + reg * theta)`` on the parameters the
row touches, with ``g = dloss/dscore``; a row's whole step, penalty included, is
multiplied by its sample weight, so a weight of 0 leaves everything unchanged.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from .losses import loss_and_derivative
from .no_alias import no_alias
from .predict import accumulate_factors, finish_score
from .prefetch import prefetch_entry, prefetch_row
from .rows import stage_blocks
from .._numba_cache import CACHE
from .._threads import run_threads

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


# Per-thread planes of thread_copies: what the thread steps, what it last pushed, the start
# plus its own merged steps, its copy in the middle of the window between two pushes, and
# the trend of its steps.
OWN, PUSHED, ALONE, MIDDLE, TREND = range(5)
# Weight of the earlier windows in the trend, per window: about four windows' memory.
TREND_DECAY = 0.75
# Blocks between pushes of the hot features' copies (the bias's: every block). A push merges
# every copied value (4 us for frappe's 45 hot features at k=64, beside 1 ms of rows per 4
# blocks).
HOT_PUSH_BLOCKS = 4


@njit(cache=CACHE, fastmath=False)
def merged(own, pushed, shared):
    """Shared parameters (or AdaGrad sums) after a learner whose copy of them went from
    ``pushed`` to ``own`` adds its steps: ``shared + (own - pushed)``.

    The rule of every learner that steps copies of shared parameters (the threads' copies
    of the bias and the hot features, the Dask partitions' AdaGrad sums): merging each copy
    in turn sums their steps, and AdaGrad's sums become the starting sums plus every
    learner's squared gradients. Computed as ``own + (shared - pushed)`` without fastmath:
    exactly ``own`` when no other learner stepped in between. Scalars or arrays.

    Examples
    --------
    >>> float(merged(3.0, 1.0, 1.5))  # a step of 2 from 1, onto 1.5 another learner left
    3.5
    """
    return own + (shared - pushed)


@njit(cache=CACHE, inline="always")
def merge_weight(products, squares, n_threads):
    """The weight of a thread's steps when ``n_threads`` threads step copies of the same
    parameters over a window of rows each, from the trend of its steps: ``products`` and
    ``squares`` sum ``d1 * d2`` and ``d1**2`` over recent windows, ``d1`` and ``d2`` the
    steps of the first and second halves of a window.

    Near a minimum along which the steps contract by ``r = products / squares`` per half
    window (0 to 1), ``n_threads`` windows in a row contract by ``rho**n_threads``,
    ``rho = r**2``, and each thread's window by ``rho``: the threads' steps, weighted by
    ``(1 - rho**n_threads) / (n_threads * (1 - rho))``, add up to what the windows would
    do one after the other. That is their sum (weight 1) where the steps keep their
    direction, as far from a minimum at a small rate, and their mean (``1 / n_threads``)
    where each window already reaches the minimum, as the bias at a large rate, where the
    sum would overshoot it ``n_threads``-fold; noise in the steps, uncorrelated between
    the halves, lowers ``r`` and averages it out.

    Examples
    --------
    >>> merge_weight(1.0, 1.0, 4), merge_weight(0.0, 1.0, 4), merge_weight(0.0, 0.0, 4)
    (1.0, 0.25, 1.0)
    """
    r = min(max(products / squares, 0.0), 1.0) if squares > 0 else 1.0
    rho = r * r
    if rho >= 1.0:
        return 1.0
    return (1.0 - rho ** n_threads) / (n_threads * (1.0 - rho))


def thread_copies(values, acc, n_threads, rows=None):
    """Each thread's copies of ``values`` (the rows ``rows`` of them, or all) and of their
    AdaGrad sums ``acc``, and both as they were.

    For the parameters every row updates (the bias, the hot features): stepped in a
    private copy per thread, so that no cache line bounces between cores on each row,
    merged into the shared ones after every window of rows (a block for the bias,
    ``HOT_PUSH_BLOCKS`` blocks for the hot features) by :func:`push_copies`, and after the
    threads by :func:`settle_copies`.

    Returns ``(local, start)``: ``local`` of shape (n_threads, 5, 2, n, ...), ``[c, OWN]``
    what thread ``c`` steps, ``[c, PUSHED]`` what it last pushed, ``[c, ALONE]`` the start
    plus its own merged steps, ``[c, MIDDLE]`` its copy in the middle of the window
    (:func:`mark_copies`), each ``[..., 0, :]`` values and ``[..., 1, :]`` sums (all as
    they were to start with), and ``[c, TREND]`` the trend of its steps (zeros); each
    thread's more than a cache line from the next's. ``start`` of shape (2, n, ...).

    Examples
    --------
    >>> local, start = thread_copies(np.array([1.0]), np.array([0.5]), 2)
    >>> local.shape[:3], start.tolist()
    ((2, 5, 2), [[1.0], [0.5]])
    """
    if rows is None:
        start = np.stack([values, acc])
    else:
        start = np.stack([values[rows], acc[rows]])
    n = start.shape[1]
    pad = 1 + _PAD_BYTES // (values.itemsize * max(1, values[:1].size))
    local = np.zeros((n_threads, 5, 2, n + pad) + values.shape[1:], dtype=values.dtype)
    local[:, :TREND, :, :n] = start
    return local, start


@njit(cache=CACHE, inline="always")
def _as_rows(array):
    """``array`` of shape (n, ...) as a C-contiguous 2-D view (n, width)."""
    return array.reshape((array.shape[0], -1))


@njit(cache=CACHE, inline="always")
def mark_copies(copy):
    """Note one thread's ``copy`` (``local[c]`` of :func:`thread_copies`) of the values in the
    middle of a window, for :func:`merge_weight`."""
    own, middle = _as_rows(copy[OWN, 0]), _as_rows(copy[MIDDLE, 0])
    for s in range(own.shape[0]):  # a loop: an array assignment compiles a shape check
        for m in range(own.shape[1]):
            middle[s, m] = own[s, m]


@njit(cache=CACHE, inline="always")
def _trend_weight(own, pushed, middle, trend, s, n_threads):
    """Fold the halves of copied row ``s``'s last window into its trend (the sums
    ``trend[0][s]`` and ``trend[1][s]`` of :func:`merge_weight`, decaying by
    ``TREND_DECAY`` per window) and return its weight."""
    products = own.dtype.type(0)
    squares = own.dtype.type(0)
    for m in range(own.shape[1]):
        first = middle[s, m] - pushed[s, m]
        products += first * (own[s, m] - middle[s, m])
        squares += first * first
    trend[0][s] = TREND_DECAY * trend[0][s] + products
    trend[1][s] = TREND_DECAY * trend[1][s] + squares
    return merge_weight(trend[0][s], trend[1][s], n_threads)


@njit(cache=CACHE, inline="always")
def push_copies(copy, values, acc, n_threads, rows=None, first=0, value_column=0, acc_column=0):
    """Merge one thread's ``copy`` (``local[c]`` of :func:`thread_copies`) of ``values`` and
    their sums ``acc`` into them by :func:`merged`: add its steps since its last push,
    weighted by :func:`merge_weight` (the sums' with weight 1), and take the other
    threads' into the copy. Starts at copied row ``first``, so that threads pushing at the
    same time seldom write the same row (one of them would lose its steps here, never in
    :func:`settle_copies`' result). One thread's copy is merged as it is. The copied values
    of a row lie in the columns of ``values`` (as a 2-D view) from ``value_column`` on, the
    sums in those of ``acc`` from ``acc_column`` on: a packed table (:func:`pack_rows`) is
    both ``values`` and ``acc``."""
    n = values.shape[0] if rows is None else rows.shape[0]
    # Each copied row's trend: the first entry of its row in either half of the trend plane.
    trend = (_as_rows(copy[TREND, 0])[:, 0], _as_rows(copy[TREND, 1])[:, 0])
    for held in range(2):
        own, pushed = _as_rows(copy[OWN, held]), _as_rows(copy[PUSHED, held])
        alone, middle = _as_rows(copy[ALONE, held]), _as_rows(copy[MIDDLE, held])
        shared = _as_rows(values if held == 0 else acc)
        column = value_column if held == 0 else acc_column
        for i in range(n):
            s = first + i if first + i < n else first + i - n
            j = s if rows is None else rows[s]
            weight = 1.0
            if held == 0 and n_threads > 1:
                weight = _trend_weight(own, pushed, middle, trend, s, n_threads)
            w = own.dtype.type(weight)
            for m in range(own.shape[1]):
                weighted = own[s, m] if weight == 1.0 else pushed[s, m] + w * (own[s, m]
                                                                             - pushed[s, m])
                alone[s, m] += weighted - pushed[s, m]
                value = merged(weighted, pushed[s, m], shared[j, column + m])
                shared[j, column + m] = value
                own[s, m] = value
                pushed[s, m] = value
                middle[s, m] = value


def thread_scratch(n_threads, shape, dtype):
    """Scratch space for each of ``n_threads`` threads: ``out[c, :shape[0]]`` of ``shape``,
    C-contiguous, each thread's more than a cache line from the next's (extra rows between).

    Examples
    --------
    >>> thread_scratch(2, (3, 4), np.float32)[1, :3].shape
    (3, 4)
    """
    row_bytes = np.dtype(dtype).itemsize * int(np.prod(shape[1:], dtype=np.int64))
    extra = -(-_PAD_BYTES // max(1, row_bytes))
    return np.empty((n_threads, shape[0] + extra) + tuple(shape[1:]), dtype=dtype)


def longest_row(indptr):
    """The most non-zeros in one row of a CSR row pointer (0 without rows): the length a
    thread's per-row scratch (:func:`thread_scratch`) must hold.

    Examples
    --------
    >>> longest_row(np.array([0, 2, 7, 7])), longest_row(np.array([0]))
    (5, 0)
    """
    return int(np.diff(indptr).max()) if indptr.shape[0] > 1 else 0


def settle_copies(local, start, values, acc, rows=None):
    """After the threads' last pushes: ``values`` and ``acc`` (their rows ``rows``) are
    ``start`` plus every thread's merged steps (:func:`merged`, in thread order), exactly,
    whatever the pushes lost. One thread's copy is already in them, exactly.

    Examples
    --------
    >>> values, acc = np.array([1.0]), np.array([0.0])
    >>> local, start = thread_copies(values, acc, 2)
    >>> local[0, ALONE, 0, 0] += 2.0; local[1, ALONE, 0, 0] += 3.0  # the threads' steps
    >>> settle_copies(local, start, values, acc); values.tolist()
    [6.0]
    """
    if local.shape[0] == 1:
        return
    n = start.shape[1]
    for held, shared in enumerate((values, acc)):
        begin = start[held]
        row = begin.copy()
        for c in range(local.shape[0]):
            row = local[c, ALONE, held, :n] + (row - begin)  # merged(alone, begin, row)
        if rows is None:
            shared[:] = row
        else:
            shared[rows] = row


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


@njit(cache=CACHE, fastmath=True, inline="always")
def _update_packed(packed, i, k, x, g, q, reg_w, reg_v, eta, cfg, fit_w):
    """:func:`_update_feature` with AdaGrad for feature ``i`` of a packed table
    (:func:`pack_rows`): the same step, in the same order, on row ``packed[i]``."""
    row = packed[i]
    gx = g * x
    gw = _clip(gx + reg_w * row[2 * k], cfg.clip)
    if fit_w:
        row[2 * k + 1] += gw * gw
        row[2 * k] -= eta * gw / np.sqrt(row[2 * k + 1])
    v, acc_v = row[:k], row[k:2 * k]
    for f in range(k):
        gv = _clip(gx * (q[f] - v[f] * x) + reg_v * v[f], cfg.clip)
        acc_v[f] += gv * gv
        v[f] -= eta * gv / np.sqrt(acc_v[f])


def pack_rows(coef, acc_coef, factors, acc_factors, out=None):
    """Each feature's parameters and AdaGrad sums side by side in one row, ``[v_j (k),
    sums of v_j (k), w_j, sum of w_j]``: the table an SGD epoch over parameters that miss
    the caches steps (:func:`sgd_epoch`'s ``packed``), where a feature's step then reads
    and writes one stretch of memory instead of four. Written into ``out`` when given.

    Examples
    --------
    >>> coef, factors = np.array([1.0, 2.0]), np.array([[3.0], [4.0]])
    >>> pack_rows(coef, coef + 10, factors, factors + 10).tolist()
    [[3.0, 13.0, 1.0, 11.0], [4.0, 14.0, 2.0, 12.0]]
    """
    k = factors.shape[1]
    if out is None:
        out = np.empty((factors.shape[0], 2 * k + 2), dtype=factors.dtype)
    out[:, :k] = factors
    out[:, k:2 * k] = acc_factors
    out[:, 2 * k] = coef
    out[:, 2 * k + 1] = acc_coef
    return out


def unpack_rows(packed, coef, acc_coef, factors, acc_factors):
    """Write a table of :func:`pack_rows` back into the separate arrays.

    Examples
    --------
    >>> coef, acc_coef, factors, acc_factors = (np.zeros(1), np.zeros(1), np.zeros((1, 1)),
    ...                                         np.zeros((1, 1)))
    >>> unpack_rows(np.array([[3.0, 13.0, 1.0, 11.0]]), coef, acc_coef, factors, acc_factors)
    >>> coef.tolist(), acc_coef.tolist(), factors.tolist(), acc_factors.tolist()
    ([1.0], [11.0], [[3.0]], [[13.0]])
    """
    k = factors.shape[1]
    factors[:] = packed[:, :k]
    acc_factors[:] = packed[:, k:2 * k]
    coef[:] = packed[:, 2 * k]
    acc_coef[:] = packed[:, 2 * k + 1]


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, staged, packed,
                block_starts, block_size, intercept, coef, factors, acc_intercept, acc_coef,
                acc_factors, hot_slot, hot_features, step, cfg, local_bias, local_w, local_v,
                local_q, no_factors, no_q):
    """Thread ``c``'s share of :func:`sgd_epoch`: its contiguous share of the blocks, the
    bias and hot features stepped in its copies (``local_*[c]``), the other features in
    ``packed`` when given (then ``coef``, ``factors`` and their sums are not read); returns
    the summed weighted loss of its rows."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    n_hot = hot_features.shape[0]
    k = factors.shape[1]
    tp = factors.dtype.type
    q = local_q[c, 0]
    bias, acc_bias = local_bias[c, OWN, 0], local_bias[c, OWN, 1]
    w, acc_w = local_w[c, OWN, 0], local_w[c, OWN, 1]
    v, acc_v = local_v[c, OWN, 0], local_v[c, OWN, 1]
    first = c * n_hot // n_threads
    # Hot features numbered 0 .. n_hot - 1 (features renumbered by frequency) are told by
    # their number, without reading ``hot_slot`` at random (a miss per non-zero when a
    # million features' slots outgrow the caches).
    hot_prefix = n_hot == 0 or hot_features[n_hot - 1] == n_hot - 1
    t = step[0] + c
    total = 0.0
    last = (c + 1) * n_blocks // n_threads  # one past the thread's last block
    group = 1 if staged is None else staged[0].shape[0] // block_size
    since = 0  # blocks since the hot features' last push
    # ``staged is None`` is settled when numba compiles.
    for g in range(c * n_blocks // n_threads, last, group):
        if staged is None:  # one block of the rows as they are
            rows_indptr, rows_indices, rows_data, rows_y, rows_weight = (
                indptr, indices, data, y, sample_weight)
            lo = block_starts[g]
            hi = min(lo + block_size, n_rows)
        else:  # a group of blocks, copied in the thread's buffers and scattered
            positions, columns, places, out_indptr, out_indices, out_data, out_y, out_w = staged
            rows_indptr, rows_indices, rows_data = out_indptr[c], out_indices[c], out_data[c]
            rows_y, rows_weight = out_y[c], out_w[c]
            lo = 0
            hi = stage_blocks(indptr, indices, data, y, sample_weight,
                              block_starts[g:min(g + group, last)], block_size, positions,
                              columns, places[c], rows_indptr, rows_indices, rows_data, rows_y,
                              rows_weight)
        limit = rows_indptr[hi]  # the prefetch ahead stays in these rows
        for s in range(lo, hi, block_size):
            if n_threads > 1 and since == HOT_PUSH_BLOCKS // 2:
                mark_copies(local_w[c])
                mark_copies(local_v[c])
            stop = min(s + block_size, hi)
            for r in range(s, stop):
                if n_threads > 1 and r == s + block_size // 2:
                    mark_copies(local_bias[c])
                sw = rows_weight[r]
                if sw == 0:
                    continue
                start = rows_indptr[r]
                end = rows_indptr[r + 1]
                q[:] = 0
                score = bias[0]
                squares = tp(0)
                for p in range(start, end):
                    j = rows_indices[p]
                    if cfg.prefetch and p + PREFETCH_AHEAD < limit:
                        ahead = rows_indices[p + PREFETCH_AHEAD]
                        if packed is None:
                            prefetch_row(factors, ahead)
                            prefetch_row(acc_factors, ahead)
                            prefetch_entry(coef, ahead)
                            prefetch_entry(acc_coef, ahead)
                        else:
                            prefetch_row(packed, ahead)
                    s_hot = (j if j < n_hot else -1) if hot_prefix else hot_slot[j]
                    x = rows_data[p]
                    if s_hot >= 0:
                        score += w[s_hot] * x
                        squares += accumulate_factors(v, s_hot, x, q)
                    elif packed is None:
                        score += coef[j] * x
                        squares += accumulate_factors(factors, j, x, q)
                    else:  # the first k entries of a packed row are the factors
                        score += packed[j, 2 * k] * x
                        squares += accumulate_factors(packed, j, x, q)
                score = min(max(finish_score(score, squares, q), cfg.lower), cfg.upper)
                l, d = loss_and_derivative(cfg.loss, score, rows_y[r])
                total += sw * l
                g_row = tp(sw * d)
                eta = step_size(cfg, t, tp)
                reg_w = sw * cfg.reg_linear
                reg_v = sw * cfg.reg_factors
                _update_feature(bias, acc_bias, no_factors, no_factors, 0, tp(1), g_row, no_q,
                                sw * cfg.reg_intercept, tp(0), eta, cfg, cfg.fit_intercept)
                for p in range(start, end):
                    j = rows_indices[p]
                    s_hot = (j if j < n_hot else -1) if hot_prefix else hot_slot[j]
                    if s_hot >= 0:
                        _update_feature(w, acc_w, v, acc_v, s_hot, rows_data[p], g_row, q,
                                        reg_w, reg_v, eta, cfg, cfg.fit_linear)
                    elif packed is None:
                        _update_feature(coef, acc_coef, factors, acc_factors, j, rows_data[p],
                                        g_row, q, reg_w, reg_v, eta, cfg, cfg.fit_linear)
                    else:
                        _update_packed(packed, j, k, rows_data[p], g_row, q, reg_w, reg_v,
                                       eta, cfg, cfg.fit_linear)
                t += n_threads
            push_copies(local_bias[c], intercept, acc_intercept, n_threads)
            since += 1
            if since == HOT_PUSH_BLOCKS or (stop == hi and g + group >= last):
                if packed is None:
                    push_copies(local_w[c], coef, acc_coef, n_threads, hot_features, first)
                    push_copies(local_v[c], factors, acc_factors, n_threads, hot_features,
                                first)
                else:
                    push_copies(local_w[c], packed, packed, n_threads, hot_features, first,
                                2 * k, 2 * k + 1)
                    push_copies(local_v[c], packed, packed, n_threads, hot_features, first,
                                0, k)
                since = 0
    return total


def epoch_with_copies(thread_pass, n_threads, args, intercept, acc_intercept, step,
                      scratch=(), hot=None):
    """One epoch of ``thread_pass(c, n_threads, *args, local, *scratch, no_factors, no_q)`` on
    ``n_threads`` threads, the parameters every row updates stepped in per-thread copies
    (:func:`thread_copies`) and settled after (:func:`settle_copies`): the intercepts
    (``local``), and with ``hot = (coef, acc_coef, factors, acc_factors, hot_features)`` the
    hot features' weights and factors too (``local_w`` and ``local_v`` after ``local``).
    ``no_factors`` and ``no_q`` are the empty arrays a bias step passes to
    :func:`_update_feature`. ``args[0]`` is the row pointer: ``step[0]`` advances by its
    rows. Returns the summed loss of the threads.

    Examples
    --------
    >>> step = np.zeros(1, np.int64)
    >>> half = lambda c, n_threads, indptr, local, no_factors, no_q: 0.5  # each thread's loss
    >>> epoch_with_copies(half, 2, (np.array([0, 1, 2]),), np.zeros(1), np.zeros(1), step)
    1.0
    >>> step.tolist()
    [2]
    """
    local, initial = thread_copies(intercept, acc_intercept, n_threads)
    copies = []  # (local copies, their start, values, sums) of the hot features' arrays
    if hot is not None:
        coef, acc_coef, factors, acc_factors, rows = hot
        copies = [(*thread_copies(values, acc, n_threads, rows), values, acc)
                  for values, acc in ((coef, acc_coef), (factors, acc_factors))]
    empty = np.zeros((1, 0), dtype=intercept.dtype), np.zeros(0, dtype=intercept.dtype)
    losses = run_threads(thread_pass, n_threads, n_threads, *args, local,
                         *(c[0] for c in copies), *scratch, *empty)
    settle_copies(local, initial, intercept, acc_intercept)
    for local_copy, start, values, acc in copies:
        settle_copies(local_copy, start, values, acc, hot[4])
    step[0] += args[0].shape[0] - 1
    return float(np.sum(losses))


def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size,
              intercept, coef, factors, acc_intercept, acc_coef, acc_factors,
              hot_slot, hot_features, step, cfg, n_threads, staged=None, packed=None):
    """Run one pass over the rows, updating the parameters in place.

    Rows are visited block by block in the order of ``block_starts`` (the first rows of
    blocks of ``block_size`` rows). With ``staged`` (from :func:`stage_buffers`), each
    thread copies a group of its blocks at a time into its buffers (as many as
    ``staged[0]``, a permutation, holds blocks), their features renumbered and their rows
    scattered by the permutation, and steps through the copy: a fit that neither holds a
    shuffled copy of its rows nor reads them at random (a None compiles a kernel without
    it). Thread ``c`` of ``n_threads`` takes the ``c``-th contiguous share of the blocks
    and updates the shared parameters without locks (Hogwild). The parameters every thread would write on
    almost every row, the intercept and ``hot_features`` (``hot_slot[j]`` is ``j``'s
    position among them, or -1), are stepped in per-thread copies, so that no cache line
    bounces between cores on each row (:func:`thread_copies`), and merged into the shared
    ones after every block (the hot features every ``HOT_PUSH_BLOCKS``): each thread adds
    its steps, weighted by how they trend (:func:`merge_weight`: summed while they keep
    their direction, averaged once each thread reaches the minimum), and takes the
    others'; after the pass they are the start plus every thread's merged steps, exactly,
    and AdaGrad's sums the start plus every squared gradient. With one thread this is
    exactly sequential SGD. ``acc_*`` hold AdaGrad's sums of squared gradients (ignored
    by the other schedules); ``step[0]`` counts samples seen for the inverse-scaling
    schedule. With ``packed``, AdaGrad only, the epoch steps the features' parameters and
    sums in that table of :func:`pack_rows` (the same steps), leaving ``coef``,
    ``factors`` and their sums as they were. Returns the sum of the weighted losses of the
    rows, each taken before its update.
    """
    if packed is not None and cfg.schedule != ADAGRAD:
        raise ValueError("a packed table holds AdaGrad's sums: packed epochs are AdaGrad's")
    args = (indptr, indices, data, y, sample_weight, staged, packed, block_starts, block_size,
            intercept, coef, factors, acc_intercept, acc_coef, acc_factors, hot_slot,
            hot_features, step, cfg)
    k = factors.shape[1]
    hot = ((coef, acc_coef, factors, acc_factors) if packed is None else
           (packed[:, 2 * k], packed[:, 2 * k + 1], packed[:, :k], packed[:, k:2 * k]))
    return epoch_with_copies(thread_pass, n_threads, args, intercept, acc_intercept, step,
                             (thread_scratch(n_threads, (1, k), factors.dtype),),
                             (*hot, hot_features))


def stage_buffers(indptr, data, y, sample_weight, block_size, n_threads, positions, columns):
    """What :func:`sgd_epoch` stages the rows of a CSR matrix with: ``positions`` (a
    permutation of a group of blocks' rows, which scatters each staged group; the identity
    keeps their order), the renumbering ``columns``, and each thread's scratch and
    buffers, large enough for the group of blocks with the most non-zeros.

    Examples
    --------
    >>> indptr, data = np.arange(0, 2001, 2), np.ones(2000)  # 1,000 rows of 2 non-zeros
    >>> staged = stage_buffers(indptr, data, np.zeros(1000), np.ones(1000), 256, 2,
    ...                        np.arange(512), np.arange(9, dtype=np.int32))
    >>> [buffer.shape for buffer in staged[3:]]  # rows + 1, non-zeros twice, rows twice
    [(2, 513), (2, 1024), (2, 1024), (2, 512), (2, 512)]
    """
    starts = np.arange(0, indptr.shape[0] - 1, block_size)
    per_block = indptr[np.minimum(starts + block_size, indptr.shape[0] - 1)] - indptr[starts]
    capacity = int(np.sort(per_block)[-(positions.shape[0] // block_size):].sum())
    n = positions.shape[0]
    return (positions, columns, np.empty((n_threads, n), np.int32),
            np.empty((n_threads, n + 1), indptr.dtype),
            np.empty((n_threads, capacity), np.int32),
            np.empty((n_threads, capacity), data.dtype),
            np.empty((n_threads, n), y.dtype), np.empty((n_threads, n), sample_weight.dtype))
