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

from .losses import loss_and_derivative
from .no_alias import no_alias
from .sgd import (ADAGRAD, OWN, _clip, _update_feature, epoch_with_bias_copies, mark_copies,
                  push_copies, step_size)
from .._numba_cache import CACHE


@njit(cache=CACHE, fastmath=True, inline="always")
def score_row(start, end, indices, data, fields, intercept, coef, factors):
    """The FFM score of one CSR row ``data[start:end]`` at columns ``indices[start:end]``,
    summed in the type of ``intercept`` (float64 from ``predict_csr``)."""
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
def _step_pair(V, acc, i, fb, j, fa, gxx, reg, eta, cfg):
    """Step ``V[i, fb]`` and ``V[j, fa]`` for a pair whose score derivative scale is ``gxx``."""
    if cfg.schedule == ADAGRAD:  # one loop per schedule, each without a branch inside
        for f in range(V.shape[2]):
            vi = V[i, fb, f]
            vj = V[j, fa, f]
            gi = _clip(gxx * vj + reg * vi, cfg.clip)
            gj = _clip(gxx * vi + reg * vj, cfg.clip)
            ai = acc[i, fb, f] + gi * gi
            aj = acc[j, fa, f] + gj * gj
            acc[i, fb, f] = ai
            acc[j, fa, f] = aj
            V[i, fb, f] = vi - eta * gi / np.sqrt(ai)
            V[j, fa, f] = vj - eta * gj / np.sqrt(aj)
    else:
        for f in range(V.shape[2]):
            vi = V[i, fb, f]
            vj = V[j, fa, f]
            V[i, fb, f] = vi - eta * _clip(gxx * vj + reg * vi, cfg.clip)
            V[j, fa, f] = vj - eta * _clip(gxx * vi + reg * vj, cfg.clip)


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, fields, intercept, coef, factors, acc_intercept, acc_coef,
                acc_factors, step, cfg, local, no_factors, no_q):
    """Thread ``c``'s share of :func:`sgd_epoch`, its bias stepped in ``local[c]``; returns the
    summed weighted loss of its rows. Compiled without reference counting."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    tp = factors.dtype.type
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
            score = score_row(start, end, indices, data, fields, bias[0], coef, factors)
            score = min(max(score, cfg.lower), cfg.upper)
            l, d = loss_and_derivative(cfg.loss, score, y[r])
            total += sw * l
            g = tp(sw * d)
            eta = step_size(cfg, t, tp)
            _update_feature(bias, acc_bias, no_factors, no_factors, 0, tp(1), g, no_q,
                            sw * cfg.reg_intercept, tp(0), eta, cfg, cfg.fit_intercept)
            reg_v = sw * cfg.reg_factors
            for a in range(start, end):
                i = indices[a]
                xa = data[a]
                fa = fields[i]
                _update_feature(coef, acc_coef, no_factors, no_factors, i, xa, g, no_q,
                                sw * cfg.reg_linear, tp(0), eta, cfg, cfg.fit_linear)
                for b in range(a + 1, end):
                    j = indices[b]
                    _step_pair(factors, acc_factors, i, fields[j], j, fa, g * xa * data[b],
                               reg_v, eta, cfg)
            t += n_threads
        push_copies(local[c], intercept, acc_intercept, n_threads)
    return total


def sgd_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, fields,
              intercept, coef, factors, acc_intercept, acc_coef, acc_factors, step, cfg,
              n_threads):
    """One pass over the rows, updating the parameters in place; returns the summed
    weighted loss, each row's taken before its update.

    Blocks of ``block_size`` rows are visited in the order of ``block_starts``, thread
    ``c`` of ``n_threads`` taking the ``c``-th contiguous share and updating the shared
    ``coef`` and ``factors`` without locks (Hogwild). The bias, which every row
    updates, is stepped in a copy per thread, pushed after every block
    (:func:`fmlearn.kernels.sgd.push_copies`). ``acc_*`` and
    ``step`` are AdaGrad's sums and the sample count, as in
    :func:`fmlearn.kernels.sgd.sgd_epoch`.
    """
    args = (indptr, indices, data, y, sample_weight, block_starts, block_size, fields, intercept,
            coef, factors, acc_intercept, acc_coef, acc_factors, step, cfg)
    return epoch_with_bias_copies(thread_pass, n_threads, args, intercept, acc_intercept, step)
