"""One epoch of per-coordinate FTRL-Proximal for the field-aware FM, lock-free over threads.

The score and its gradients are those of :mod:`fmlearn.kernels.ffm`, the per-coordinate
update :func:`fmlearn.kernels.ftrl.ftrl_step` (McMahan et al., KDD 2013, Algorithm 1),
applied lazily to the coordinates a row touches: the bias, its features' weights and, per
pair ``a < b`` of its non-zeros, ``V[i_a, field(i_b)]`` and ``V[i_b, field(i_a)]``, each
from the pair's gradient ``g x_a x_b V[other]`` at the values before the pair's step, as
LIBFFM's AdaGrad and xLearn's FFM FTRL step them. Where a row has at most one feature per
field (one-hot fields), every coordinate is in one pair, so each takes one step from the
gradient of the row's loss at its starting parameters: FTRL-Proximal exactly.
"""
import numpy as np
from numba import njit

from .ffm import score_row
from .ftrl import ftrl_bias_and_linear, ftrl_step
from .losses import loss_and_derivative
from .no_alias import no_alias
from .._numba_cache import CACHE
from .._threads import run_threads


@njit(cache=CACHE, fastmath=True, inline="always")
def ftrl_pair(V, z, n, i, fb, j, fa, gxx, cfg):
    """FTRL steps of ``V[i, fb]`` and ``V[j, fa]`` for a pair whose score derivative scale is
    ``gxx``, each from the other's value before the step."""
    for f in range(V.shape[2]):
        vi = V[i, fb, f]
        vj = V[j, fa, f]
        V[i, fb, f], z[i, fb, f], n[i, fb, f] = ftrl_step(
            vi, z[i, fb, f], n[i, fb, f], gxx * vj, cfg.alpha, cfg.beta, cfg.l1_v, cfg.l2_v,
            cfg.clip)
        V[j, fa, f], z[j, fa, f], n[j, fa, f] = ftrl_step(
            vj, z[j, fa, f], n[j, fa, f], gxx * vi, cfg.alpha, cfg.beta, cfg.l1_v, cfg.l2_v,
            cfg.clip)


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, fields, intercept, coef, factors, z_b, n_b, z_w, n_w, z_v, n_v,
                cfg):
    """Thread ``c``'s share of :func:`ftrl_epoch`: its contiguous share of the blocks,
    updating the shared parameters and their ``(z, n)`` in place; returns the summed
    weighted loss of its rows."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    tp = factors.dtype.type
    total = 0.0
    for blk in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
        for r in range(block_starts[blk], min(block_starts[blk] + block_size, n_rows)):
            sw = sample_weight[r]
            if sw == 0:
                continue
            start = indptr[r]
            end = indptr[r + 1]
            score = score_row(start, end, indices, data, fields, intercept[0], coef, factors)
            score = min(max(score, cfg.lower), cfg.upper)
            l, d = loss_and_derivative(cfg.loss, score, y[r])
            total += sw * l
            g = tp(sw * d)
            ftrl_bias_and_linear(start, end, indices, data, g, intercept, coef, z_b, n_b, z_w,
                                 n_w, cfg)
            for a in range(start, end):
                i = indices[a]
                xa = data[a]
                for b in range(a + 1, end):
                    j = indices[b]
                    ftrl_pair(factors, z_v, n_v, i, fields[j], j, fields[i], g * xa * data[b],
                              cfg)
    return total


def ftrl_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, fields,
               intercept, coef, factors, z_b, n_b, z_w, n_w, z_v, n_v, cfg, n_threads):
    """One pass over the rows, updating the FFM parameters and their FTRL state in place.

    As :func:`fmlearn.kernels.ftrl.ftrl_epoch`, with ``fields`` (the field code of each
    feature) and ``factors``, ``z_v``, ``n_v`` of shape (n_features, n_fields, k). Returns
    the sum of the weighted losses of the rows, each taken before its update.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fmlearn.kernels.ftrl import FTRLConfig
    >>> X = sp.csr_matrix(np.ones((1, 2))); y = np.array([3.0])
    >>> cfg = FTRLConfig(0, *np.float64([1, 1, 0, 0, 0, 0, 0, 0, 9, -9, 9]), True, True)
    >>> w0, w, v = np.zeros(1), np.zeros(2), np.ones((2, 2, 1))
    >>> state = [np.zeros_like(a) for a in (w0, w0, w, w, v, v)]
    >>> loss = ftrl_epoch(X.indptr, X.indices, X.data, y, np.ones(1), np.array([0]), 1,
    ...                   np.array([0, 1], np.int32), w0, w, v, *state, cfg, 1)
    >>> # score 1, g = -2: V[0, 1] gets n = 4, z = -2 - (2 - 0) * 1, V = 4 / (1 + 2)
    >>> float(loss), [round(float(x), 4) for x in v.ravel()]
    (2.0, [1.0, 1.3333, 1.3333, 1.0])
    """
    losses = run_threads(thread_pass, n_threads, n_threads, indptr, indices, data, y,
                         sample_weight, block_starts, block_size, fields, intercept, coef,
                         factors, z_b, n_b, z_w, n_w, z_v, n_v, cfg)
    return float(np.sum(losses))
