"""Field-weighted FM scores and SGD epochs (Pan et al., "Field-weighted Factorization
Machines for Click-Through Rate Prediction in Display Advertising", WWW 2018).

Each feature ``i`` belongs to a field ``fields[i]`` and has one latent vector
``factors[i]`` (shape (n_features, k), as the FM's); a symmetric matrix ``r`` of
shape (n_fields, n_fields) weighs the pairs by their fields. A row scores

    w0 + sum_a w_{i_a} x_a + sum_{a<b} r[F(i_a), F(i_b)] <v_{i_a}, v_{i_b}> x_a x_b,

computed through the field sums ``s_f = sum_{F(i_a) = f} v_{i_a} x_a`` of the row's
fields in O(F^2 k + nnz k) (F the fields the row holds): the pairs are
``sum_{f<g} r[f, g] <s_f, s_g> + sum_f r[f, f] (|s_f|^2 - sum_{F(i_a) = f} |v_{i_a}|^2 x_a^2) / 2``.
The score's derivatives are ``<s_f, s_g>`` (and the same-field term) for ``r[f, g]``, and
``x_a (t_f - r[f, f] v_{i_a} x_a)`` for ``v_{i_a}`` in field ``f``, where
``t_f = sum_g r[f, g] s_g``; every step uses the values before it.

Scratch, per thread: ``vectors`` (n_fields, 2, k), ``[f, 0]`` the sum ``s_f`` and
``[f, 1]`` the term ``t_f``; ``dots`` (n_fields, n_fields), the pair products by position
among the row's fields; ``slots`` (n_fields, 2) int32, ``[f, 0]`` field ``f``'s position
(-1 outside a row) and ``[p, 1]`` the field at position ``p``.
"""
import numpy as np
from numba import njit

from .losses import loss_and_derivative
from .no_alias import no_alias
from .sgd import (ADAGRAD, OWN, _clip, _update_feature, epoch_with_copies, mark_copies,
                  push_copies, settle_copies, step_size, thread_copies,
                  thread_scratch)
from .._numba_cache import CACHE


@njit(cache=CACHE, fastmath=True, inline="always")
def field_products(start, end, indices, data, fields, factors, vectors, dots, slots):
    """Fill ``vectors[f, 0]`` with the field sums of the CSR row ``data[start:end]`` and
    ``dots[p, q]`` (``p <= q``) with the products of the sums at positions ``p`` and ``q``
    among its fields (``dots[p, p]`` the same-field term); return the number of fields."""
    k = factors.shape[1]
    tp = dots.dtype.type
    n = 0
    for a in range(start, end):
        i = indices[a]
        x = tp(data[a])
        f = fields[i]
        p = slots[f, 0]
        if p < 0:
            p = n
            slots[f, 0] = p
            slots[p, 1] = f
            n += 1
            dots[p, p] = 0
            for m in range(k):
                vectors[f, 0, m] = 0
        squares = tp(0)
        for m in range(k):
            v = factors[i, m] * x
            vectors[f, 0, m] += v
            squares += v * v
        dots[p, p] += squares
    for p in range(n):
        f = slots[p, 1]
        slots[f, 0] = -1
        own = tp(0)
        for m in range(k):
            own += vectors[f, 0, m] * vectors[f, 0, m]
        dots[p, p] = (own - dots[p, p]) / 2
        for q in range(p + 1, n):
            g = slots[q, 1]
            dot = tp(0)
            for m in range(k):
                dot += vectors[f, 0, m] * vectors[g, 0, m]
            dots[p, q] = dot
    return n


@njit(cache=CACHE, fastmath=True, inline="always")
def score_row(start, end, indices, data, fields, intercept, coef, factors, field_weights,
              vectors, dots, slots):
    """The FwFM score of one CSR row, summed in the type of ``intercept``; leaves the field
    sums and products in the scratch arrays and returns ``(score, n_row_fields)``."""
    tp = type(intercept)
    score = intercept
    for a in range(start, end):
        score += tp(coef[indices[a]]) * data[a]
    n = field_products(start, end, indices, data, fields, factors, vectors, dots, slots)
    for p in range(n):
        f = slots[p, 1]
        for q in range(p, n):
            score += tp(field_weights[f, slots[q, 1]]) * dots[p, q]
    return score, n


@njit(cache=CACHE, fastmath=True, nogil=True)
def predict_chunk(c, n_chunks, indptr, indices, data, fields, intercept, coef, factors,
                  field_weights, out):
    """Write the FwFM score of chunk ``c`` of ``n_chunks`` equal chunks of the CSR rows into
    ``out``, summed in float64."""
    n_rows = indptr.shape[0] - 1
    n_fields = field_weights.shape[0]
    vectors = np.empty((n_fields, 2, factors.shape[1]))
    dots = np.empty((n_fields, n_fields))
    slots = np.full((n_fields, 2), -1, dtype=np.int32)
    chunk = (n_rows + n_chunks - 1) // n_chunks
    for r in range(c * chunk, min(n_rows, (c + 1) * chunk)):
        out[r] = score_row(indptr[r], indptr[r + 1], indices, data, fields, np.float64(intercept),
                           coef, factors, field_weights, vectors, dots, slots)[0]


@njit(cache=CACHE, fastmath=True, inline="always")
def _step(values, acc, at, grad, eta, cfg):
    """Step ``values[at]`` by the clipped ``grad`` (AdaGrad's sum ``acc[at]``); return it."""
    grad = _clip(grad, cfg.clip)
    if cfg.schedule == ADAGRAD:
        acc[at] += grad * grad
        values[at] -= eta * grad / np.sqrt(acc[at])
    else:
        values[at] -= eta * grad
    return values[at]


@njit(cache=CACHE, fastmath=True, inline="always")
def _field_terms(n, weights, vectors, slots):
    """Put ``t_f = sum_g r[f, g] s_g`` in ``vectors[f, 1]`` for the row's ``n`` fields."""
    for p in range(n):
        f = slots[p, 1]
        for m in range(vectors.shape[2]):
            vectors[f, 1, m] = 0
        for q in range(n):
            h = slots[q, 1]
            r = weights[f, h]
            for m in range(vectors.shape[2]):
                vectors[f, 1, m] += r * vectors[h, 0, m]


@njit(cache=CACHE, fastmath=True, inline="always")
def _step_weights(n, weights, acc_weights, dots, slots, g, reg, eta, cfg):
    """Step the weights of the row's ``n`` fields' pairs, keeping ``weights`` symmetric."""
    for p in range(n):
        f = slots[p, 1]
        for q in range(p, n):
            h = slots[q, 1]
            weights[h, f] = _step(weights, acc_weights, (f, h),
                                  g * dots[p, q] + reg * weights[f, h], eta, cfg)
            acc_weights[h, f] = acc_weights[f, h]


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, fields, intercept, coef, factors, field_weights, acc_intercept,
                acc_coef, acc_factors, acc_field_weights, step, cfg, reg_field_weights, local,
                local_r, vectors_all, dots_all, slots_all, no_factors, no_q):
    """Thread ``c``'s share of :func:`sgd_epoch`, its bias and field weights stepped in
    ``local[c]`` and ``local_r[c]``; returns the summed weighted loss of its rows. Compiled
    without reference counting."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    k = factors.shape[1]
    tp = factors.dtype.type
    bias, acc_bias = local[c, OWN, 0], local[c, OWN, 1]
    weights, acc_weights = local_r[c, OWN, 0], local_r[c, OWN, 1]
    vectors, dots, slots = vectors_all[c], dots_all[c], slots_all[c]
    t = step[0] + c
    total = 0.0
    for blk in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
        for r in range(block_starts[blk], min(block_starts[blk] + block_size, n_rows)):
            if n_threads > 1 and r == block_starts[blk] + block_size // 2:
                mark_copies(local[c])
                mark_copies(local_r[c])
            sw = sample_weight[r]
            if sw == 0:
                continue
            start = indptr[r]
            end = indptr[r + 1]
            score, n = score_row(start, end, indices, data, fields, bias[0], coef, factors,
                                 weights, vectors, dots, slots)
            score = min(max(score, cfg.lower), cfg.upper)
            l, d = loss_and_derivative(cfg.loss, score, y[r])
            total += sw * l
            g = tp(sw * d)
            eta = step_size(cfg, t, tp)
            _update_feature(bias, acc_bias, no_factors, no_factors, 0, tp(1), g, no_q,
                            sw * cfg.reg_intercept, tp(0), eta, cfg, cfg.fit_intercept)
            _field_terms(n, weights, vectors, slots)
            reg_v = sw * cfg.reg_factors
            for a in range(start, end):
                i = indices[a]
                x = data[a]
                f = fields[i]
                _update_feature(coef, acc_coef, no_factors, no_factors, i, x, g, no_q,
                                sw * cfg.reg_linear, tp(0), eta, cfg, cfg.fit_linear)
                gx = g * x
                same = weights[f, f]
                for m in range(k):
                    v = factors[i, m]
                    _step(factors[i], acc_factors[i], m,
                          gx * (vectors[f, 1, m] - same * v * x) + reg_v * v, eta, cfg)
            _step_weights(n, weights, acc_weights, dots, slots, g, sw * reg_field_weights,
                          eta, cfg)
            t += n_threads
        push_copies(local[c], intercept, acc_intercept, n_threads)
        push_copies(local_r[c], field_weights, acc_field_weights, n_threads)
    return total


def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, fields,
              intercept, coef, factors, field_weights, acc_intercept, acc_coef, acc_factors,
              acc_field_weights, step, cfg, reg_field_weights, n_threads):
    """One pass over the rows, updating the parameters in place; returns the summed
    weighted loss, each row's taken before its update.

    As :func:`fmlearn.kernels.ffm.sgd_epoch`: blocks of ``block_size`` rows in the order of
    ``block_starts``, thread ``c`` of ``n_threads`` taking the ``c``-th contiguous share and
    updating ``coef`` and ``factors`` without locks. The bias and the field weights, which
    almost every row updates, are stepped in copies per thread, pushed after every block
    and settled after the pass (:func:`fmlearn.kernels.sgd.push_copies`), the field weights
    then made symmetric again (their rows merge by their own trends); with one thread this is
    sequential SGD. ``reg_field_weights`` is the L2 penalty of the field weights, a
    scalar of the model dtype.
    """
    n_fields = field_weights.shape[0]
    local_r, start_r = thread_copies(field_weights, acc_field_weights, n_threads)
    slots = thread_scratch(n_threads, (n_fields, 2), np.int32)
    slots[:] = -1
    scratch = (local_r, thread_scratch(n_threads, (n_fields, 2, factors.shape[1]), factors.dtype),
               thread_scratch(n_threads, (n_fields, n_fields), factors.dtype), slots)
    args = (indptr, indices, data, y, sample_weight, block_starts, block_size, fields, intercept,
            coef, factors, field_weights, acc_intercept, acc_coef, acc_factors,
            acc_field_weights, step, cfg, reg_field_weights)
    total = epoch_with_copies(thread_pass, n_threads, args, intercept, acc_intercept, step,
                                   scratch)
    settle_copies(local_r, start_r, field_weights, acc_field_weights)
    for shared in (field_weights, acc_field_weights):  # each row of a copy merges by its trend
        shared[:] = (shared + shared.T) / 2
    return total
