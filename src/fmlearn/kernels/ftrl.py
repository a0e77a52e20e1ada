"""One epoch of per-coordinate FTRL-Proximal for the second-order FM, lock-free over threads.

McMahan et al. (KDD 2013), Algorithm 1, per coordinate ``i`` with gradient ``g``::

    sigma = (sqrt(n + g**2) - sqrt(n)) / alpha
    z += g - sigma * w;  n += g**2
    w = 0 if |z| <= l1 else -(z - sign(z) * l1) / ((beta + sqrt(n)) / alpha + l2)

applied lazily: a row updates ``(z, n)`` and the weight of the coordinates it touches only
(the bias, its features' weights and factor rows), and the stored weight is always the
closed form of its ``(z, n)``, or its starting value until first touched (as in xLearn,
the factors start random with ``z = n = 0``: the first step's ``sigma * w`` carries the
starting value into ``z``). Gradients are those of the score (Rendle 2010, eq. 4) times
``g = dloss/dscore`` times the row's sample weight, taken at the row's starting parameters,
each clipped to ``[-clip, clip]``.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from .losses import loss_and_derivative
from .no_alias import no_alias
from .predict import accumulate_factors, finish_score
from .sgd import thread_scratch
from .._numba_cache import CACHE
from .._threads import run_threads


class FTRLConfig(NamedTuple):
    """Hyperparameters of one epoch, scalars of the model dtype: ``alpha`` and ``beta`` of the
    per-coordinate rate, the L1 and L2 strengths of the bias (``*_b``), the linear weights
    (``*_w``) and the factors (``*_v``), the bound on every gradient coordinate and the bounds
    of the score inside the loss."""

    loss: int
    alpha: np.floating
    beta: np.floating
    l1_b: np.floating
    l2_b: np.floating
    l1_w: np.floating
    l2_w: np.floating
    l1_v: np.floating
    l2_v: np.floating
    clip: np.floating
    lower: np.floating
    upper: np.floating
    fit_intercept: bool
    fit_linear: bool


@njit(cache=CACHE, fastmath=True, inline="always")
def ftrl_weight(z, n, alpha, beta, l1, l2):
    """The closed-form FTRL-Proximal weight of a coordinate with state ``(z, n)``.

    Examples
    --------
    >>> float(ftrl_weight(0.5, 4.0, 1.0, 1.0, 1.0, 0.0))  # |z| <= l1: exactly 0
    0.0
    >>> float(ftrl_weight(3.0, 4.0, 1.0, 1.0, 1.0, 0.0))  # -(3 - 1) / (1 + 2)
    -0.6666666666666666
    """
    if abs(z) <= l1:
        return z * 0
    return -(z - np.sign(z) * l1) / ((beta + np.sqrt(n)) / alpha + l2)


@njit(cache=CACHE, fastmath=True, inline="always")
def ftrl_step(w, z, n, g, alpha, beta, l1, l2, clip):
    """One FTRL-Proximal update of a coordinate with weight ``w``, state ``(z, n)`` and
    gradient ``g`` (clipped to ``[-clip, clip]``): the new ``(w, z, n)``."""
    g = min(max(g, -clip), clip)
    n_new = n + g * g
    sigma = (np.sqrt(n_new) - np.sqrt(n)) / alpha
    z = z + g - sigma * w
    return ftrl_weight(z, n_new, alpha, beta, l1, l2), z, n_new


@njit(cache=CACHE, fastmath=True, inline="always")
def ftrl_bias_and_linear(start, end, indices, data, g, intercept, coef, z_b, n_b, z_w, n_w, cfg):
    """FTRL steps of the bias (gradient ``g``) and of the weights of a row's features
    ``indices[start:end]`` (gradient ``g * x``), where ``cfg`` learns them."""
    if cfg.fit_intercept:
        intercept[0], z_b[0], n_b[0] = ftrl_step(intercept[0], z_b[0], n_b[0], g, cfg.alpha,
                                                 cfg.beta, cfg.l1_b, cfg.l2_b, cfg.clip)
    if cfg.fit_linear:
        for p in range(start, end):
            j = indices[p]
            coef[j], z_w[j], n_w[j] = ftrl_step(coef[j], z_w[j], n_w[j], g * data[p], cfg.alpha,
                                                cfg.beta, cfg.l1_w, cfg.l2_w, cfg.clip)


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, y, sample_weight, block_starts,
                block_size, intercept, coef, factors, z_b, n_b, z_w, n_w, z_v, n_v, cfg,
                local_q):
    """Thread ``c``'s share of :func:`ftrl_epoch`: its contiguous share of the blocks,
    updating the shared parameters and their ``(z, n)`` in place; returns the summed
    weighted loss of its rows."""
    n_rows = indptr.shape[0] - 1
    n_blocks = block_starts.shape[0]
    k = factors.shape[1]
    tp = factors.dtype.type
    q = local_q[c, 0]
    total = 0.0
    for b in range(c * n_blocks // n_threads, (c + 1) * n_blocks // n_threads):
        for r in range(block_starts[b], min(block_starts[b] + block_size, n_rows)):
            sw = sample_weight[r]
            if sw == 0:
                continue
            start = indptr[r]
            end = indptr[r + 1]
            q[:] = 0
            score = intercept[0]
            squares = tp(0)
            for p in range(start, end):
                j = indices[p]
                score += coef[j] * data[p]
                squares += accumulate_factors(factors, j, data[p], q)
            score = min(max(finish_score(score, squares, q), cfg.lower), cfg.upper)
            l, d = loss_and_derivative(cfg.loss, score, y[r])
            total += sw * l
            g = tp(sw * d)
            ftrl_bias_and_linear(start, end, indices, data, g, intercept, coef, z_b, n_b, z_w,
                                 n_w, cfg)
            for p in range(start, end):
                j = indices[p]
                x = data[p]
                gx = g * x
                for f in range(k):
                    factors[j, f], z_v[j, f], n_v[j, f] = ftrl_step(
                        factors[j, f], z_v[j, f], n_v[j, f], gx * (q[f] - factors[j, f] * x),
                        cfg.alpha, cfg.beta, cfg.l1_v, cfg.l2_v, cfg.clip)
    return total


def ftrl_epoch(indptr, indices, data, y, sample_weight, block_starts, block_size, intercept,
               coef, factors, z_b, n_b, z_w, n_w, z_v, n_v, cfg, n_threads):
    """One pass over the rows, updating the parameters and their FTRL state in place.

    Rows are visited block by block in the order of ``block_starts`` (row offsets of
    blocks of ``block_size`` rows); thread ``c`` of ``n_threads`` takes the ``c``-th
    contiguous share of the blocks and updates the shared parameters without locks
    (Hogwild). With one thread this is exactly sequential FTRL-Proximal. Returns the sum
    of the weighted losses of the rows, each taken before its update.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> X = sp.csr_matrix(np.eye(2, dtype=np.float64)); y = np.ones(2)
    >>> cfg = FTRLConfig(0, *np.float64([0.5, 1, 0, 0, 0, 0, 0, 0, 9, -9, 9]), True, True)
    >>> w0, w, v = np.zeros(1), np.zeros(2), np.zeros((2, 1))
    >>> state = [np.zeros_like(a) for a in (w0, w0, w, w, v, v)]
    >>> loss = ftrl_epoch(X.indptr, X.indices, X.data, y, np.ones(2), np.array([0]), 2,
    ...                   w0, w, v, *state, cfg, 1)
    >>> # first row: g = -1, n = 1, z = -1, w = 1 / ((1 + 1) / 0.5) = 0.25
    >>> float(loss), [round(float(v), 4) for v in w]
    (0.78125, [0.25, 0.2143])
    """
    local_q = thread_scratch(n_threads, (1, factors.shape[1]), factors.dtype)
    losses = run_threads(thread_pass, n_threads, n_threads, indptr, indices, data, y,
                         sample_weight, block_starts, block_size, intercept, coef, factors,
                         z_b, n_b, z_w, n_w, z_v, n_v, cfg, local_q)
    return float(np.sum(losses))
