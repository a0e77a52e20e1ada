"""One epoch of per-coordinate FTRL-Proximal for the field-weighted FM, lock-free over threads.

The score and its gradients are those of :mod:`fmlearn.kernels.fwfm` (field sums ``s_f``,
terms ``t_f = sum_g r[f, g] s_g``), the per-coordinate update
:func:`fmlearn.kernels.ftrl.ftrl_step` (McMahan et al., KDD 2013, Algorithm 1), applied
lazily to the coordinates a row touches: the bias, its features' weights and latent
vectors, and the weights ``r[f, g]`` of the pairs of its fields (kept symmetric, with their
own ``(z, n)``). Every gradient is taken at the row's starting parameters, so each row is
one FTRL-Proximal step of every coordinate it touches.
"""
import numpy as np
from numba import njit

from .ftrl import ftrl_bias_and_linear, ftrl_step
from .fwfm import _field_terms, score_row
from .losses import loss_and_derivative
from .no_alias import no_alias
from .sgd import thread_scratch
from .._numba_cache import CACHE
from .._threads import run_threads


@njit(cache=CACHE, fastmath=True, inline="always")
def ftrl_field_weights(n, weights, z_r, n_r, dots, slots, g, l2_r, cfg):
    """FTRL steps of the weights of the pairs of the row's ``n`` fields (gradient ``g`` times
    the pair's product ``dots``), writing both halves of the symmetric ``weights``. A zero
    gradient is no step: a field holding one feature of the row has no pair of its own,
    and its weight keeps its value rather than FTRL's closed form of ``z = n = 0``."""
    for p in range(n):
        f = slots[p, 1]
        for q in range(p, n):
            h = slots[q, 1]
            grad = g * dots[p, q]
            if grad == 0:
                continue
            w, z, s = ftrl_step(weights[f, h], z_r[f, h], n_r[f, h], grad, cfg.alpha,
                                cfg.beta, l2_r * 0, l2_r, cfg.clip)
            weights[f, h] = weights[h, f] = w
            z_r[f, h] = z_r[h, f] = z
            n_r[f, h] = n_r[h, f] = s


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, fields, intercept, coef, factors, field_weights, z_b, n_b, z_w, n_w,
                z_v, n_v, z_r, n_r, cfg, l2_r, vectors_all, dots_all, slots_all):
    """Thread ``c``'s share of :func:`ftrl_epoch`: its contiguous share of the blocks,
    updating the shared parameters and their ``(z, n)`` in place; returns the summed
    weighted loss of its rows."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    k = factors.shape[1]
    tp = factors.dtype.type
    vectors, dots, slots = vectors_all[c], dots_all[c], slots_all[c]
    total = 0.0
    for blk in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
        for r in range(block_starts[blk], min(block_starts[blk] + block_size, n_rows)):
            sw = sample_weight[r]
            if sw == 0:
                continue
            start = indptr[r]
            end = indptr[r + 1]
            score, n = score_row(start, end, indices, data, fields, intercept[0], coef, factors,
                                 field_weights, vectors, dots, slots)
            score = min(max(score, cfg.lower), cfg.upper)
            l, d = loss_and_derivative(cfg.loss, score, y[r])
            total += sw * l
            g = tp(sw * d)
            ftrl_bias_and_linear(start, end, indices, data, g, intercept, coef, z_b, n_b, z_w,
                                 n_w, cfg)
            _field_terms(n, field_weights, vectors, slots)
            for a in range(start, end):
                i = indices[a]
                x = data[a]
                f = fields[i]
                gx = g * x
                same = field_weights[f, f]
                for m in range(k):
                    v = factors[i, m]
                    factors[i, m], z_v[i, m], n_v[i, m] = ftrl_step(
                        v, z_v[i, m], n_v[i, m], gx * (vectors[f, 1, m] - same * v * x),
                        cfg.alpha, cfg.beta, cfg.l1_v, cfg.l2_v, cfg.clip)
            ftrl_field_weights(n, field_weights, z_r, n_r, dots, slots, g, l2_r, cfg)
    return total


def ftrl_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, fields,
               intercept, coef, factors, field_weights, z_b, n_b, z_w, n_w, z_v, n_v, z_r, n_r,
               cfg, l2_r, n_threads):
    """One pass over the rows, updating the FwFM parameters and their FTRL state in place.

    As :func:`fmlearn.kernels.ftrl.ftrl_epoch`, with ``fields`` (the field code of each
    feature), ``field_weights`` and its state ``z_r``, ``n_r`` of shape (n_fields, n_fields),
    and ``l2_r`` their L2 strength (no L1: the weights of field pairs are few). Returns the
    sum of the weighted losses of the rows, each taken before its update.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fmlearn.kernels.ftrl import FTRLConfig
    >>> X = sp.csr_matrix(np.ones((1, 2))); y = np.array([3.0])
    >>> cfg = FTRLConfig(0, *np.float64([1, 1, 0, 0, 0, 0, 0, 0, 9, -9, 9]), True, True)
    >>> w0, w, v, r = np.zeros(1), np.zeros(2), np.ones((2, 1)), np.ones((2, 2))
    >>> state = [np.zeros_like(a) for a in (w0, w0, w, w, v, v, r, r)]
    >>> loss = ftrl_epoch(X.indptr, X.indices, X.data, y, np.ones(1), np.array([0]), 1,
    ...                   np.array([0, 1], np.int32), w0, w, v, r, *state, cfg, 0.0, 1)
    >>> # score r01 <v0, v1> = 1, g = -2: each of v0, v1 and r01 gets n = 4, z = -2 - 2 * 1
    >>> float(loss), [round(float(x), 4) for x in (*v.ravel(), r[0, 1], r[1, 0], r[0, 0])]
    (2.0, [1.3333, 1.3333, 1.3333, 1.3333, 1.0])
    """
    n_fields = field_weights.shape[0]
    slots = thread_scratch(n_threads, (n_fields, 2), np.int32)
    slots[:] = -1
    vectors = thread_scratch(n_threads, (n_fields, 2, factors.shape[1]), factors.dtype)
    dots = thread_scratch(n_threads, (n_fields, n_fields), factors.dtype)
    losses = run_threads(thread_pass, n_threads, n_threads, indptr, indices, data, y,
                         sample_weight, block_starts, block_size, fields, intercept, coef,
                         factors, field_weights, z_b, n_b, z_w, n_w, z_v, n_v, z_r, n_r, cfg,
                         factors.dtype.type(l2_r), vectors, dots, slots)
    return float(np.sum(losses))
