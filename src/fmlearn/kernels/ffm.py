"""Field-aware FM scores and SGD epochs (Juan, Zhuang, Chin, Lin, RecSys 2016).

Each feature ``i`` belongs to a field ``fields[i]`` and has one latent vector per
field, ``factors[i, g]`` (shape (n_features, n_fields, k)). A row scores

    w0 + sum_a w_{i_a} x_a + sum_{a<b} <V[i_a, field(i_b)], V[i_b, field(i_a)]> x_a x_b

over its non-zeros ``a, b``: O(k * nnz^2), since the vector a pair uses depends on
both sides. With one field this is the FM. The SGD step of a pair is
``V[i_a, field(i_b)] -= eta * (g x_a x_b V[i_b, field(i_a)] + reg * V[i_a, field(i_b)])``
and its mirror, both from the values before the step, as in LIBFFM; the bias and the
linear weights step as in :mod:`fmlearn.kernels.sgd`.
"""
import numpy as np
from numba import njit

from .lanes import adagrad_pair, pair_dot
from .losses import loss_and_derivative
from .no_alias import no_alias
from .sgd import (ADAGRAD, HOT_PUSH_BLOCKS, OWN, _clip, _update_feature, epoch_with_copies,
                  longest_row, mark_copies, push_copies, step_size, thread_scratch)
from .._numba_cache import CACHE


@njit(cache=CACHE, fastmath=True, inline="always")
def score_row(start, end, indices, data, fields, intercept, coef, factors, lanes=False):
    """The FFM score of one CSR row ``data[start:end]`` at columns ``indices[start:end]``,
    summed in the type of ``intercept`` (float64 from ``predict_csr``); with ``lanes`` each
    pair's dot product is summed in the factors' dtype, several entries at a time
    (:func:`fmlearn.kernels.lanes.pair_dot`: training)."""
    k = factors.shape[2]
    tp = type(intercept)
    linear = intercept
    pairs = tp(0)
    for a in range(start, end):
        i = indices[a]
        xa = data[a]
        fa = fields[i]
        linear += tp(coef[i]) * xa
        for b in range(a + 1, end):
            j = indices[b]
            fb = fields[j]
            if lanes:
                dot = tp(pair_dot(factors, i, fb, factors, j, fa))
            else:
                dot = tp(0)
                for f in range(k):
                    dot += tp(factors[i, fb, f]) * factors[j, fa, f]
            pairs += dot * xa * data[b]
    return linear + pairs


@njit(cache=CACHE, fastmath=True, nogil=True)
def predict_chunk(c, n_chunks, indptr, indices, data, fields, intercept, coef, factors, out):
    """Write the FFM score of chunk ``c`` of ``n_chunks`` equal chunks of the CSR rows into
    ``out``."""
    n_rows = indptr.shape[0] - 1
    chunk = (n_rows + n_chunks - 1) // n_chunks
    for r in range(c * chunk, min(n_rows, (c + 1) * chunk)):
        out[r] = score_row(indptr[r], indptr[r + 1], indices, data, fields,
                           np.float64(intercept), coef, factors)


@njit(cache=CACHE, fastmath=True, inline="always")
def _step_pair(Vi, acc_i, i, fb, Vj, acc_j, j, fa, gxx, reg, eta, cfg):
    """Step ``Vi[i, fb]`` and ``Vj[j, fa]`` (a feature's factors in the shared array or in a
    thread's copy, with their AdaGrad sums) for a pair whose score derivative scale is
    ``gxx``; AdaGrad's step 4 or 8 factors at a time (:func:`fmlearn.kernels.lanes.adagrad_pair`:
    frappe at k=4, one thread, 0.18 s an epoch against 0.37 s entry by entry)."""
    if cfg.schedule == ADAGRAD:  # one loop per schedule, each without a branch inside
        clip = Vi.dtype.type(cfg.clip)
        adagrad_pair(Vi, acc_i, i, fb, Vj, acc_j, j, fa, gxx, reg, eta, clip)
    else:
        for f in range(Vi.shape[2]):
            vi = Vi[i, fb, f]
            vj = Vj[j, fa, f]
            Vi[i, fb, f] = vi - eta * _clip(gxx * vj + reg * vi, cfg.clip)
            Vj[j, fa, f] = vj - eta * _clip(gxx * vi + reg * vj, cfg.clip)


@njit(cache=CACHE, fastmath=True, inline="always")
def _split_row(start, end, indices, fields, hot_slot, split):
    """Lay out the non-zeros of the CSR row ``[start, end)`` in ``split``, the hot ones
    (``hot_slot[i] >= 0``) first, each in row order: ``split[p] = (position, row of its
    parameters, field)``, the row in the thread's copies for a hot feature and in the shared
    arrays for the others. Returns the number of hot non-zeros."""
    n_hot = 0
    for a in range(start, end):
        if hot_slot[indices[a]] >= 0:
            n_hot += 1
    h, c = 0, n_hot
    for a in range(start, end):
        i = indices[a]
        s = hot_slot[i]
        p = h if s >= 0 else c
        split[p, 0] = a
        split[p, 1] = s if s >= 0 else i
        split[p, 2] = fields[i]
        if s >= 0:
            h += 1
        else:
            c += 1
    return n_hot


@njit(cache=CACHE, fastmath=True, inline="always")
def _dot_pairs(Va, Vb, split, data, first, last, second, end, tp):
    """The pair sum over the laid-out non-zeros ``p`` in ``[first, last)`` and ``q`` in
    ``[max(p + 1, second), end)``: ``<Va[p's row, q's field], Vb[q's row, p's field]> x_p x_q``."""
    total = tp(0)
    for p in range(first, last):
        ia, fa, xa = split[p, 1], split[p, 2], data[split[p, 0]]
        for q in range(max(p + 1, second), end):
            dot = pair_dot(Va, ia, split[q, 2], Vb, split[q, 1], fa)
            total += tp(dot) * xa * data[split[q, 0]]
    return total


@njit(cache=CACHE, fastmath=True, inline="always")
def _score_split(n_hot, n, split, data, bias, coef, factors, w, v):
    """:func:`score_row` for training over a row laid out by :func:`_split_row`: the hot
    features' weights and factors read from the thread's copies ``w`` and ``v``, the others
    from ``coef`` and ``factors``, each group of pairs over one pair of arrays."""
    tp = type(bias)
    linear = bias
    for p in range(n_hot):
        linear += w[split[p, 1]] * data[split[p, 0]]
    for p in range(n_hot, n):
        linear += coef[split[p, 1]] * data[split[p, 0]]
    return (linear + _dot_pairs(v, v, split, data, 0, n_hot, 0, n_hot, tp)
            + _dot_pairs(v, factors, split, data, 0, n_hot, n_hot, n, tp)
            + _dot_pairs(factors, factors, split, data, n_hot, n, n_hot, n, tp))


@njit(cache=CACHE, fastmath=True, inline="always")
def _step_row(start, end, indices, data, fields, coef, factors, acc_coef, acc_factors, g, sw,
              reg_v, eta, cfg, no_factors, no_q):
    """Step the linear weights and pair factors of one row for the score derivative ``g``."""
    tp = factors.dtype.type
    for a in range(start, end):
        i = indices[a]
        xa = data[a]
        fa = fields[i]
        _update_feature(coef, acc_coef, no_factors, no_factors, i, xa, g, no_q,
                        sw * cfg.reg_linear, tp(0), eta, cfg, cfg.fit_linear)
        for b in range(a + 1, end):
            j = indices[b]
            _step_pair(factors, acc_factors, i, fields[j], factors, acc_factors, j, fa,
                       g * xa * data[b], reg_v, eta, cfg)


@njit(cache=CACHE, fastmath=True, inline="always")
def _step_pairs(Va, acc_a, Vb, acc_b, split, data, first, last, second, end, g, reg_v, eta,
                cfg):
    """Step the pairs of :func:`_dot_pairs` (``Va``'s rows for ``p``, ``Vb``'s for ``q``)."""
    for p in range(first, last):
        ia, fa, xa = split[p, 1], split[p, 2], data[split[p, 0]]
        for q in range(max(p + 1, second), end):
            _step_pair(Va, acc_a, ia, split[q, 2], Vb, acc_b, split[q, 1], fa,
                       g * xa * data[split[q, 0]], reg_v, eta, cfg)


@njit(cache=CACHE, fastmath=True, inline="always")
def _step_split(n_hot, n, split, data, coef, factors, acc_coef, acc_factors, w, acc_w, v,
                acc_v, g, sw, reg_v, eta, cfg, no_factors, no_q):
    """:func:`_step_row` over a row laid out by :func:`_split_row`, the hot features stepped
    in the thread's copies ``w``, ``v`` and their sums: the linear weights, then the pairs
    among hot features, between hot and other features, and among the others, each group
    over one pair of arrays (a choice of arrays inside the pair loop compiles to slower code:
    frappe, one thread, 0.111 s per epoch at k=4 against 0.089 s without it)."""
    tp = factors.dtype.type
    for p in range(n):
        x = data[split[p, 0]]
        if p < n_hot:
            _update_feature(w, acc_w, no_factors, no_factors, split[p, 1], x, g, no_q,
                            sw * cfg.reg_linear, tp(0), eta, cfg, cfg.fit_linear)
        else:
            _update_feature(coef, acc_coef, no_factors, no_factors, split[p, 1], x, g, no_q,
                            sw * cfg.reg_linear, tp(0), eta, cfg, cfg.fit_linear)
    _step_pairs(v, acc_v, v, acc_v, split, data, 0, n_hot, 0, n_hot, g, reg_v, eta, cfg)
    _step_pairs(v, acc_v, factors, acc_factors, split, data, 0, n_hot, n_hot, n, g, reg_v, eta,
                cfg)
    _step_pairs(factors, acc_factors, factors, acc_factors, split, data, n_hot, n, n_hot, n, g,
                reg_v, eta, cfg)


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, fields, intercept, coef, factors, acc_intercept, acc_coef,
                acc_factors, hot_slot, hot_features, step, cfg, local_bias, local_w, local_v,
                splits, no_factors, no_q):
    """Thread ``c``'s share of :func:`sgd_epoch`, its bias and hot features stepped in its
    copies (``local_*[c]``); returns the summed weighted loss of its rows. Compiled without
    reference counting."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    n_hot = hot_features.shape[0]
    tp = factors.dtype.type
    bias, acc_bias = local_bias[c, OWN, 0], local_bias[c, OWN, 1]
    w, acc_w = local_w[c, OWN, 0], local_w[c, OWN, 1]
    v, acc_v = local_v[c, OWN, 0], local_v[c, OWN, 1]
    split = splits[c]
    first = c * n_hot // n_threads
    t = step[0] + c
    total = 0.0
    last = (c + 1) * n_blocks // n_threads - 1
    since = 0  # blocks since the hot features' last push
    for blk in range(c * n_blocks // n_threads, last + 1):
        if n_hot > 0 and since == HOT_PUSH_BLOCKS // 2:
            mark_copies(local_w[c])
            mark_copies(local_v[c])
        for r in range(block_starts[blk], min(block_starts[blk] + block_size, n_rows)):
            if n_threads > 1 and r == block_starts[blk] + block_size // 2:
                mark_copies(local_bias[c])
            sw = sample_weight[r]
            if sw == 0:
                continue
            start = indptr[r]
            end = indptr[r + 1]
            row_hot = 0
            if n_hot > 0:
                row_hot = _split_row(start, end, indices, fields, hot_slot, split)
                score = _score_split(row_hot, end - start, split, data, bias[0], coef,
                                     factors, w, v)
            else:
                score = score_row(start, end, indices, data, fields, bias[0], coef, factors,
                                  True)
            score = min(max(score, cfg.lower), cfg.upper)
            l, d = loss_and_derivative(cfg.loss, score, y[r])
            total += sw * l
            g = tp(sw * d)
            eta = step_size(cfg, t, tp)
            _update_feature(bias, acc_bias, no_factors, no_factors, 0, tp(1), g, no_q,
                            sw * cfg.reg_intercept, tp(0), eta, cfg, cfg.fit_intercept)
            reg_v = sw * cfg.reg_factors
            if n_hot > 0:
                _step_split(row_hot, end - start, split, data, coef, factors, acc_coef,
                            acc_factors, w, acc_w, v, acc_v, g, sw, reg_v, eta, cfg,
                            no_factors, no_q)
            else:
                _step_row(start, end, indices, data, fields, coef, factors, acc_coef,
                          acc_factors, g, sw, reg_v, eta, cfg, no_factors, no_q)
            t += n_threads
        push_copies(local_bias[c], intercept, acc_intercept, n_threads)
        since += 1
        if n_hot > 0 and (since == HOT_PUSH_BLOCKS or blk == last):
            push_copies(local_w[c], coef, acc_coef, n_threads, hot_features, first)
            push_copies(local_v[c], factors, acc_factors, n_threads, hot_features, first)
            since = 0
    return total


def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, fields,
              intercept, coef, factors, acc_intercept, acc_coef, acc_factors, hot_slot,
              hot_features, step, cfg, n_threads):
    """One pass over the rows, updating the parameters in place; returns the summed
    weighted loss, each row's taken before its update.

    Blocks of ``block_size`` rows are visited in the order of ``block_starts``, thread
    ``c`` of ``n_threads`` taking the ``c``-th contiguous share and updating the shared
    ``coef`` and ``factors`` without locks (Hogwild). The bias and ``hot_features``
    (``hot_slot[j]`` is ``j``'s position among them, or -1; none with one thread), which
    nearly every row updates, are stepped in per-thread copies and merged as in
    :func:`fmlearn.kernels.sgd.sgd_epoch`: the bias after every block, the hot features
    every ``HOT_PUSH_BLOCKS``. ``acc_*`` and ``step`` are AdaGrad's sums and the sample
    count, as there. With one thread this is exactly sequential SGD. With hot features each
    thread lays a row out in its scratch ``splits[c]`` (:func:`_split_row`), and steps its
    pairs by group, hot with hot, hot with the others, the others among themselves.
    """
    longest = longest_row(indptr) if hot_features.shape[0] else 0
    splits = thread_scratch(n_threads, (max(longest, 1), 3), np.int64)
    args = (indptr, indices, data, y, sample_weight, block_starts, block_size, fields, intercept,
            coef, factors, acc_intercept, acc_coef, acc_factors, hot_slot, hot_features, step,
            cfg)
    return epoch_with_copies(thread_pass, n_threads, args, intercept, acc_intercept, step,
                             scratch=(splits,),
                             hot=(coef, acc_coef, factors, acc_factors, hot_features))
