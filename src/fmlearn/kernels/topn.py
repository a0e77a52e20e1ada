"""Top-N learning from an interaction matrix: SGD on (user, item) positives with negatives
sampled from the catalogue inside the kernel (never materialised).

The model is an FM over feature columns of both sides; the row of a pair is the user's
side (its feature row, with the interaction's context when there is one) next to the
item's feature row, so with ``q`` the factor sums
(Rendle 2010, Lemma 3.1) the score of user ``u`` and item ``i`` is

    ``w0 + lin(u) + lin(i) + 1/2 (|q_u + q_i|^2 - sq(u) - sq(i))``,

``lin`` the linear part and ``sq`` the summed squares ``sum_j |v_j x_j|^2`` of each side.
Losses, for a positive ``(u, i)`` of weight ``c`` (its confidence):

* BPR: one negative ``j``, ``c * -log sigmoid(s(u, i) - s(u, j))``;
* WARP (Weston et al. 2011, as LightFM): draw negatives until one violates the margin,
  ``s(u, j) > s(u, i) - 1``, at most ``max_sampled``; after ``n`` draws the loss is
  ``c * log(max(1, floor((n_items - 1) / n))) * (1 - s(u, i) + s(u, j))`` (none found:
  no step);
* logistic: ``c * -log sigmoid(s(u, i)) + sum_{k negatives} -log sigmoid(-s(u, j_k))``.

A negative is drawn uniformly or in proportion to the item's number of interactions (a
random stored interaction's item), and redrawn while it is one of the user's positives,
checked by binary search in the user's sorted row; a user who has every item (or whose
``_MAX_DRAWS`` draws all hit positives) gets no negative and no step for that positive.
Each thread draws from its own splitmix64 stream. Parameters step as in
:mod:`fmlearn.kernels.bpr` (AdaGrad or a schedule; each step's penalty multiplied by the
weight of its positive, 1 for the logistic loss's negatives).
"""
import numpy as np
from numba import njit

from .bpr import _step
from .no_alias import no_alias
from .predict import accumulate_factors
from .sgd import ADAGRAD, step_size, thread_scratch
from .._numba_cache import CACHE
from .._threads import run_threads

BPR, WARP, LOGISTIC = 0, 1, 2
UNIFORM, POPULARITY = 0, 1
# Draws of a negative before giving up on a positive whose user has (nearly) every item.
_MAX_DRAWS = 64
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=CACHE, inline="always")
def _below(state, c, n):
    """A random integer in ``[0, n)`` from thread ``c``'s splitmix64 stream ``state[c, 0]``."""
    state[c, 0] += _GOLDEN
    z = state[c, 0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z % np.uint64(n))


@njit(cache=CACHE, inline="always")
def is_liked(indptr, indices, u, item):
    """Whether ``item`` is in user ``u``'s sorted CSR row (binary search)."""
    lo, end = indptr[u], indptr[u + 1]
    hi = end
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < item:
            lo = mid + 1
        else:
            hi = mid
    return lo < end and indices[lo] == item


@njit(cache=CACHE, inline="always")
def sample_negative(state, c, sampling, n_items, pop_items, indptr, indices, u):
    """An item that is not one of user ``u``'s positives (``indices[indptr[u]:indptr[u+1]]``,
    sorted), drawn uniformly or as the item of a random interaction ``pop_items``; -1 when
    the user has every item or ``_MAX_DRAWS`` draws hit positives."""
    if indptr[u + 1] - indptr[u] >= n_items:
        return -1
    for _ in range(_MAX_DRAWS):
        if sampling == UNIFORM:
            j = _below(state, c, n_items)
        else:
            j = pop_items[_below(state, c, pop_items.shape[0])]
        if not is_liked(indptr, indices, u, j):
            return j
    return -1


@njit(cache=CACHE, fastmath=True, inline="always")
def _side(indptr, indices, data, r, coef, factors, q):
    """Linear part and summed squares of CSR row ``r``; its factor sums into ``q``."""
    tp = q.dtype.type
    q[:] = 0
    linear = tp(0)
    squares = tp(0)
    for p in range(indptr[r], indptr[r + 1]):
        linear += tp(coef[indices[p]]) * data[p]
        squares += accumulate_factors(factors, indices[p], data[p], q)
    return linear, squares


@njit(cache=CACHE, fastmath=True, inline="always")
def _pair(lin_u, sq_u, q_u, item, i_indptr, i_indices, i_data, coef, factors, q_i, q_sum):
    """The score (without intercept) of the user side and item ``item``; ``q_i`` receives the
    item's factor sums, ``q_sum`` the pair's."""
    tp = q_sum.dtype.type
    lin_i, sq_i = _side(i_indptr, i_indices, i_data, item, coef, factors, q_i)
    pairs = tp(0)
    for f in range(q_sum.shape[0]):
        q_sum[f] = q_u[f] + q_i[f]
        pairs += q_sum[f] * q_sum[f]
    return lin_u + lin_i + tp(0.5) * (pairs - sq_u - sq_i)


@njit(cache=CACHE, fastmath=True, inline="always")
def _step_feature(coef, factors, acc_coef, acc_factors, j, xp, xn, qp, qn, g, reg_w, reg_v,
                  eta, cfg):
    """Step feature ``j`` for ``g`` times the difference of its gradients in two rows, where
    it has values ``xp`` and ``xn`` and the rows have factor sums ``qp`` and ``qn``; the
    schedule's branch outside the loop over the factors, so that the loop vectorises."""
    _step(coef, acc_coef, j, g * (xp - xn) + reg_w * coef[j], eta, cfg)
    row = factors[j]
    acc = acc_factors[j]
    if cfg.schedule == ADAGRAD:
        for f in range(qp.shape[0]):
            v = row[f]
            grad = g * (xp * (qp[f] - v * xp) - xn * (qn[f] - v * xn)) + reg_v * v
            acc[f] += grad * grad
            row[f] = v - eta * grad / np.sqrt(acc[f])
    else:
        for f in range(qp.shape[0]):
            v = row[f]
            row[f] = v - eta * (g * (xp * (qp[f] - v * xp) - xn * (qn[f] - v * xn)) + reg_v * v)


@njit(cache=CACHE, fastmath=True, inline="always")
def _pair_step(u, i, j, u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, coef,
               factors, acc_coef, acc_factors, q_p, q_n, g, reg_w, reg_v, eta, cfg):
    """Step for ``g`` times the gradient of ``s(u, i) - s(u, j)``, ``q_p`` and ``q_n`` the
    pairs' factor sums; the items' shared features get one step of the difference."""
    tp = factors.dtype.type
    for p in range(u_indptr[u], u_indptr[u + 1]):
        _step_feature(coef, factors, acc_coef, acc_factors, u_indices[p], u_data[p], u_data[p],
                      q_p, q_n, g, reg_w, reg_v, eta, cfg)
    a, a_end = i_indptr[i], i_indptr[i + 1]
    b, b_end = i_indptr[j], i_indptr[j + 1]
    while a < a_end or b < b_end:
        ja = i_indices[a] if a < a_end else 2**62
        jb = i_indices[b] if b < b_end else 2**62
        if ja < jb:
            _step_feature(coef, factors, acc_coef, acc_factors, ja, i_data[a], tp(0), q_p, q_n,
                          g, reg_w, reg_v, eta, cfg)
            a += 1
        elif jb < ja:
            _step_feature(coef, factors, acc_coef, acc_factors, jb, tp(0), i_data[b], q_p, q_n,
                          g, reg_w, reg_v, eta, cfg)
            b += 1
        else:
            _step_feature(coef, factors, acc_coef, acc_factors, ja, i_data[a], i_data[b], q_p,
                          q_n, g, reg_w, reg_v, eta, cfg)
            a += 1
            b += 1


@njit(cache=CACHE, fastmath=True, inline="always")
def _point_step(u, i, u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, intercept,
                coef, factors, acc_intercept, acc_coef, acc_factors, q, g, reg_w, reg_v, eta,
                cfg):
    """Step for ``g`` times the gradient of ``s(u, i)``, ``q`` the pair's factor sums."""
    tp = factors.dtype.type
    if cfg.fit_intercept:
        _step(intercept, acc_intercept, 0, g + cfg.reg_intercept * intercept[0], eta, cfg)
    for p in range(u_indptr[u], u_indptr[u + 1]):
        _step_feature(coef, factors, acc_coef, acc_factors, u_indices[p], u_data[p], tp(0),
                      q, q, g, reg_w, reg_v, eta, cfg)
    for p in range(i_indptr[i], i_indptr[i + 1]):
        _step_feature(coef, factors, acc_coef, acc_factors, i_indices[p], i_data[p], tp(0),
                      q, q, g, reg_w, reg_v, eta, cfg)


@njit(cache=CACHE, inline="always")
def _softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return np.log1p(np.exp(x)) if x < 0 else x + np.log1p(np.exp(-x))


@njit(cache=CACHE, inline="always")
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x)) if x >= 0 else np.exp(x) / (1.0 + np.exp(x))


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, order, users, rows, items, weights, liked_indptr, liked_indices,
                pop_items, u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, intercept,
                coef, factors, acc_intercept, acc_coef, acc_factors, step, cfg, loss, sampling,
                n_negatives, max_sampled, n_items, state, local_q):
    """Thread ``c``'s share of :func:`topn_epoch`; returns its summed weighted loss. Compiled
    without reference counting."""
    tp = factors.dtype.type
    q_u, q_i, q_p, q_n = local_q[c, 0], local_q[c, 1], local_q[c, 2], local_q[c, 3]
    n = order.shape[0]
    t = step[0] + c
    total = 0.0
    for s in range(c * n // n_threads, (c + 1) * n // n_threads):
        e = order[s]
        u, r, i, w = users[e], rows[e], items[e], weights[e]
        eta = step_size(cfg, t, tp)
        t += n_threads
        reg_w, reg_v = w * cfg.reg_linear, w * cfg.reg_factors
        lin_u, sq_u = _side(u_indptr, u_indices, u_data, r, coef, factors, q_u)
        s_p = _pair(lin_u, sq_u, q_u, i, i_indptr, i_indices, i_data, coef, factors, q_i, q_p)
        if loss == LOGISTIC:
            s_p += intercept[0]
            total += w * _softplus(-s_p)
            _point_step(r, i, u_indptr, u_indices, u_data, i_indptr, i_indices, i_data,
                        intercept, coef, factors, acc_intercept, acc_coef, acc_factors, q_p,
                        tp(-w * _sigmoid(-s_p)), reg_w, reg_v, eta, cfg)
            for _ in range(n_negatives):
                j = sample_negative(state, c, sampling, n_items, pop_items, liked_indptr,
                                    liked_indices, u)
                if j < 0:
                    break
                lin_u, sq_u = _side(u_indptr, u_indices, u_data, r, coef, factors, q_u)
                s_n = intercept[0] + _pair(lin_u, sq_u, q_u, j, i_indptr, i_indices, i_data,
                                           coef, factors, q_i, q_n)
                total += _softplus(s_n)
                _point_step(r, j, u_indptr, u_indices, u_data, i_indptr, i_indices, i_data,
                            intercept, coef, factors, acc_intercept, acc_coef, acc_factors, q_n,
                            tp(_sigmoid(s_n)), cfg.reg_linear, cfg.reg_factors, eta, cfg)
            continue
        g = 0.0
        j = -1
        for draws in range(1, (max_sampled if loss == WARP else 1) + 1):
            j = sample_negative(state, c, sampling, n_items, pop_items, liked_indptr,
                                liked_indices, u)
            if j < 0:
                break
            d = s_p - _pair(lin_u, sq_u, q_u, j, i_indptr, i_indices, i_data, coef, factors,
                            q_i, q_n)
            if loss == BPR:
                total += w * _softplus(-d)
                g = -w * _sigmoid(-d)
                break
            if d < 1.0:
                rank = np.log(max(1.0, np.floor((n_items - 1) / draws)))
                total += w * rank * (1.0 - d)
                g = -w * rank
                break
            j = -1
        if j >= 0 and g != 0.0:
            _pair_step(r, i, j, u_indptr, u_indices, u_data, i_indptr, i_indices, i_data, coef,
                       factors, acc_coef, acc_factors, q_p, q_n, tp(g), reg_w, reg_v, eta, cfg)
    return total


def topn_epoch(order, users, rows, items, weights, liked, pop_items, user_rows, item_rows,
               intercept, coef, factors, acc_intercept, acc_coef, acc_factors, step, cfg, loss, sampling,
               n_negatives, max_sampled, state, n_threads):
    """One pass over the positives ``(users[e], items[e])`` with weights ``weights[e]`` in the
    order ``order``, the user side of positive ``e`` (and of its negatives) being row
    ``rows[e]`` of ``user_rows`` (its user's row, or a row of its own with context), thread
    ``c`` of ``n_threads`` taking the ``c``-th contiguous share and updating the shared
    parameters without locks.

    ``liked`` is the interaction matrix as a CSR with sorted indices (the negatives'
    exclusion), ``user_rows`` and ``item_rows`` the feature CSRs with the model's column
    numbers, ``intercept`` and ``acc_intercept`` arrays of one element, ``state`` of shape
    (n_threads, 8) uint64 the threads' random streams (row ``c``'s first entry). Returns
    the summed weighted loss, each positive's taken before its step.
    """
    local_q = thread_scratch(n_threads, (4, factors.shape[1]), factors.dtype)
    losses = run_threads(thread_pass, n_threads, n_threads, order, users, rows, items, weights,
                         liked.indptr, liked.indices, pop_items, user_rows.indptr,
                         user_rows.indices, user_rows.data, item_rows.indptr, item_rows.indices,
                         item_rows.data, intercept, coef, factors, acc_intercept, acc_coef,
                         acc_factors, step, cfg, loss, sampling, n_negatives, max_sampled,
                         item_rows.shape[0], state, local_q)
    step[0] += order.shape[0]
    return float(np.sum(losses))


@njit(cache=CACHE, fastmath=True, inline="always")
def _gram_row(gram, m, bias, q, r):
    """``phi_r . gram[m]`` for ``phi_r = (bias[r], 1, q[r])``."""
    total = bias[r] * gram[m, 0] + gram[m, 1]
    for f in range(q.shape[1]):
        total += q[r, f] * gram[m, 2 + f]
    return total


@njit(cache=CACHE, fastmath=True, inline="always")
def _cd_positives(r, x, f, e, pos_indptr, pos_other, pos_entry, other_q, y_hat, conf):
    """The positives' share ``(G, H)`` of the step of a parameter entering the scores of row
    ``r``'s pairs with ``h = x`` (``f < 0``) or ``h = x (e + p_of)``."""
    g = 0.0
    h = 0.0
    for s in range(pos_indptr[r], pos_indptr[r + 1]):
        d = pos_entry[s]
        hh = x if f < 0 else x * (e + other_q[pos_other[s], f])
        g += hh * ((conf[d] - 1.0) * y_hat[d] - conf[d])
        h += hh * hh * (conf[d] - 1.0)
    return g, h


@njit(cache=CACHE, fastmath=True, inline="always")
def _cd_update(r, x, f, e, delta, pos_indptr, pos_other, pos_entry, other_q, y_hat):
    """Add ``delta * h`` to the cached scores of row ``r``'s positives (``h`` as above)."""
    for s in range(pos_indptr[r], pos_indptr[r + 1]):
        y_hat[pos_entry[s]] += delta * (x if f < 0 else x * (e + other_q[pos_other[s], f]))


@njit(cache=CACHE, fastmath=True)
def cd_side(columns, c_indptr, c_rows, c_data, bias, q, other_q, gram, pos_indptr, pos_other,
            pos_entry, y_hat, conf, coef, factors, reg_w, reg_v):
    """One coordinate-descent pass (iCD, Bayer et al., WWW 2017) over the linear weight and
    then each factor of the feature columns ``columns`` of one side, the other side fixed.

    The objective is implicit ALS's over every pair ``(r, o)`` of a row of this side and
    one of the other side: ``sum_o,r w (y_hat - t)^2`` with ``t = 1, w = conf`` on the
    positives and ``t = 0, w = 1`` elsewhere, plus ``reg_w w_j^2 + reg_v v_jf^2``. The
    score is ``y_hat = phi_r . psi_o`` with ``phi_r = (bias[r], 1, q[r])`` (this side's
    linear part, self-interactions and intercept; its factor sums) and ``psi_o = (1, b_o,
    p_o)``; ``gram = sum_o psi_o psi_o^T`` turns the sum over all pairs into O(k) per row
    of a column (Rendle 2010's ``h`` as in :mod:`fmlearn.kernels.coordinate`). Each
    parameter moves to the exact minimiser along its coordinate; ``bias``, ``q`` and the
    cached scores ``y_hat`` of the positives follow.

    ``c_indptr``, ``c_rows``, ``c_data`` hold this side's feature rows by column (CSC in
    the model's column numbers); row ``r``'s positives are ``pos_other[s]`` (the other
    side's row) and ``pos_entry[s]`` (their index in ``y_hat`` and ``conf``) for ``s`` in
    ``pos_indptr[r]:pos_indptr[r + 1]``.
    """
    n_other = gram[0, 0]
    for j in columns:
        start, end = c_indptr[j], c_indptr[j + 1]
        if start == end:
            continue
        g = 0.0
        h = 0.0
        for p in range(start, end):
            r, x = c_rows[p], c_data[p]
            g += x * _gram_row(gram, 0, bias, q, r)
            h += x * x * n_other
            pg, ph = _cd_positives(r, x, -1, 0.0, pos_indptr, pos_other, pos_entry, other_q,
                                   y_hat, conf)
            g += pg
            h += ph
        if h + reg_w > 0:
            old = coef[j]
            coef[j] = old - (g + reg_w * old) / (h + reg_w)
            delta = coef[j] - old  # the step as stored (float32 or float64)
            for p in range(start, end):
                r, x = c_rows[p], c_data[p]
                bias[r] += x * delta
                _cd_update(r, x, -1, 0.0, delta, pos_indptr, pos_other, pos_entry, other_q,
                           y_hat)
        for f in range(q.shape[1]):
            v = factors[j, f]
            g = 0.0
            h = 0.0
            for p in range(start, end):
                r, x = c_rows[p], c_data[p]
                e = q[r, f] - v * x
                g += x * (e * _gram_row(gram, 0, bias, q, r) + _gram_row(gram, 2 + f, bias, q, r))
                h += x * x * (n_other * e * e + 2.0 * e * gram[0, 2 + f] + gram[2 + f, 2 + f])
                pg, ph = _cd_positives(r, x, f, e, pos_indptr, pos_other, pos_entry, other_q,
                                       y_hat, conf)
                g += pg
                h += ph
            if h + reg_v <= 0:
                continue
            factors[j, f] = v - (g + reg_v * v) / (h + reg_v)
            delta = factors[j, f] - v
            for p in range(start, end):
                r, x = c_rows[p], c_data[p]
                e = q[r, f] - v * x  # unchanged by the step: q moves by x * delta, v by delta
                bias[r] += delta * x * e
                q[r, f] += delta * x
                _cd_update(r, x, f, e, delta, pos_indptr, pos_other, pos_entry, other_q, y_hat)
