"""Coordinate-wise ALS and Gibbs sweeps for the second-order FM (Rendle, ACM TIST 2012, sec. 4-5).

Every parameter ``theta`` enters the score linearly, ``y_hat = g + theta * h`` with
``h = 1`` (w0), ``x_i`` (w_i) or ``x_i (q_f - v_if x_i)`` (v_if), where
``q_f = sum_j v_jf x_j``. With the residual ``e = y_hat - z`` and row weights ``s``,
the conditional of ``theta`` given everything else has precision
``alpha * sum s h^2 + lambda`` and mean
``(alpha * (theta * sum s h^2 - sum s h e) + mu * lambda) / precision``. ALS sets
``theta`` to that mean (the exact minimiser of ``sum s e^2 + lambda (theta - mu)^2``),
Gibbs sampling draws it. After each update ``e`` and ``q_f`` change in O(nnz) of the
column, read from a CSC matrix. ``q`` is stored as (n_factors, n_rows) so that one
factor layer is contiguous.

Random numbers come from numba's generator, seeded by ``seed_generator`` before
each sweep: the sweeps run on one thread, so a seed fixes the whole sweep.
"""
import math

import numpy as np
from numba import njit, prange

_SQRT_2PI = math.sqrt(2.0 * math.pi)


@njit(cache=True)
def seed_generator(seed):
    """Seed numba's random generator of the calling thread."""
    np.random.seed(seed)


@njit(cache=True, inline="always")
def posterior_value(theta, shh, she, alpha, mu, lam, sample):
    """The conditional mean of ``theta`` (ALS) or a draw from its conditional (Gibbs).

    ``shh = sum s h^2`` and ``she = sum s h e`` over the rows the parameter touches.
    A parameter with neither data nor prior keeps its value.
    """
    precision = alpha * shh + lam
    if precision <= 0.0:
        return theta
    mean = (alpha * (theta * shh - she) + mu * lam) / precision
    if sample:
        return mean + np.random.standard_normal() / math.sqrt(precision)
    return mean


@njit(cache=True)
def update_intercept(w0, e, s, alpha, lam, sample):
    """Update ``w0[0]`` (``h = 1`` on every row) and the residual; prior mean 0."""
    shh = 0.0
    she = 0.0
    for r in range(e.shape[0]):
        shh += s[r]
        she += s[r] * e[r]
    old = w0[0]
    w0[0] = posterior_value(old, shh, she, alpha, 0.0, lam, sample)
    delta = w0[0] - old
    for r in range(e.shape[0]):
        e[r] += delta


@njit(cache=True)
def update_linear(w, i, indptr, rows, data, e, s, alpha, mu, lam, sample):
    """Update ``w[i]`` (``h = x_i``) and the residual of the rows of column ``i``."""
    shh = 0.0
    she = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        r = rows[p]
        h = data[p]
        shh += s[r] * h * h
        she += s[r] * h * e[r]
    old = w[i]
    w[i] = posterior_value(old, shh, she, alpha, mu, lam, sample)
    delta = w[i] - old
    if delta != 0.0:
        for p in range(indptr[i], indptr[i + 1]):
            e[rows[p]] += delta * data[p]


@njit(cache=True)
def update_factor(V, i, f, indptr, rows, data, e, q_f, s, alpha, mu, lam, sample):
    """Update ``V[i, f]`` (``h = x_i (q_f - v_if x_i)``), the residual and ``q_f`` of column ``i``."""
    old = V[i, f]
    shh = 0.0
    she = 0.0
    for p in range(indptr[i], indptr[i + 1]):
        r = rows[p]
        x = data[p]
        h = x * (q_f[r] - old * x)
        shh += s[r] * h * h
        she += s[r] * h * e[r]
    V[i, f] = posterior_value(old, shh, she, alpha, mu, lam, sample)
    delta = V[i, f] - old
    if delta != 0.0:
        for p in range(indptr[i], indptr[i + 1]):
            r = rows[p]
            x = data[p]
            e[r] += delta * x * (q_f[r] - old * x)
            q_f[r] += delta * x


@njit(cache=True)
def draw_group_prior(values, groups, mu, lam, sample):
    """Gibbs step of the Normal-Gamma hyperprior of each group: first ``lam``, then ``mu``.

    ``lam_g ~ Gamma((1 + n_g + 1) / 2, rate=(1 + sum (theta - mu_g)^2 + mu_g^2) / 2)`` and
    ``mu_g ~ N(sum theta / (n_g + 1), 1 / ((n_g + 1) lam_g))`` (libFM's alpha_lambda =
    beta_lambda = gamma_0 = 1, mu_0 = 0). Nothing changes unless ``sample``.
    """
    if not sample:
        return
    n_groups = mu.shape[0]
    count = np.zeros(n_groups)
    total = np.zeros(n_groups)
    squares = np.zeros(n_groups)
    for i in range(values.shape[0]):
        g = groups[i]
        d = values[i] - mu[g]
        count[g] += 1.0
        total[g] += values[i]
        squares[g] += d * d
    for g in range(n_groups):
        rate = 0.5 * (1.0 + squares[g] + mu[g] * mu[g])
        lam[g] = np.random.gamma(0.5 * (2.0 + count[g]), 1.0 / rate)
        spread = 1.0 / math.sqrt((count[g] + 1.0) * lam[g])
        mu[g] = total[g] / (count[g] + 1.0) + spread * np.random.standard_normal()


@njit(cache=True)
def draw_noise_precision(e, s):
    """Draw the noise precision ``alpha ~ Gamma((1 + sum s) / 2, rate=(1 + sum s e^2) / 2)``."""
    n = 0.0
    sse = 0.0
    for r in range(e.shape[0]):
        n += s[r]
        sse += s[r] * e[r] * e[r]
    return np.random.gamma(0.5 * (1.0 + n), 2.0 / (1.0 + sse))


@njit(cache=True)
def coordinate_sweep(indptr, rows, data, s, e, q, w0, w, V, groups, hyper, reg_intercept,
                     sample, sample_alpha):
    """One pass over every parameter: ``alpha``, ``w0``, then ``w``, then ``V`` layer by layer.

    ``hyper`` holds ``alpha`` (shape (1,)), ``mu_w``/``lam_w`` (n_groups,) and
    ``mu_v``/``lam_v`` (n_groups, n_factors); with ``sample`` they are drawn before the
    parameters they govern, otherwise they stay fixed (ALS's ``lam`` is the L2 penalty).
    ``e`` and ``q`` must hold the residual and factor sums of the current parameters.
    """
    alpha_arr, mu_w, lam_w, mu_v, lam_v = hyper
    if sample_alpha:
        alpha_arr[0] = draw_noise_precision(e, s)
    alpha = alpha_arr[0]
    update_intercept(w0, e, s, alpha, reg_intercept, sample)
    draw_group_prior(w, groups, mu_w, lam_w, sample)
    for i in range(w.shape[0]):
        g = groups[i]
        update_linear(w, i, indptr, rows, data, e, s, alpha, mu_w[g], lam_w[g], sample)
    for f in range(V.shape[1]):
        draw_group_prior(V[:, f], groups, mu_v[:, f], lam_v[:, f], sample)
        q_f = q[f]
        for i in range(V.shape[0]):
            g = groups[i]
            update_factor(V, i, f, indptr, rows, data, e, q_f, s, alpha, mu_v[g, f], lam_v[g, f],
                          sample)


@njit(cache=True, parallel=True)
def scores_and_sums(indptr, indices, data, w0, w, V, out, q):
    """Scores of CSR rows into ``out`` and their factor sums into ``q`` (n_factors, n_rows)."""
    n_rows = indptr.shape[0] - 1
    k = V.shape[1]
    for r in prange(n_rows):
        total = w0
        squares = 0.0
        for f in range(k):
            q[f, r] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            i = indices[p]
            x = data[p]
            total += w[i] * x
            for f in range(k):
                vx = V[i, f] * x
                q[f, r] += vx
                squares += vx * vx
        pairs = 0.0
        for f in range(k):
            pairs += q[f, r] * q[f, r]
        out[r] = total + 0.5 * (pairs - squares)


@njit(cache=True)
def _mills_ratio(t):
    """``phi(t) / Phi(t)``, stable for very negative ``t``."""
    if t < -35.0:
        return -t
    return math.exp(-0.5 * t * t) / _SQRT_2PI / (0.5 * math.erfc(-t / math.sqrt(2.0)))


@njit(cache=True)
def _positive_truncated_normal(mean):
    """A draw of ``z ~ N(mean, 1)`` conditioned on ``z > 0`` (Robert 1995)."""
    a = -mean
    if a < 0.45:
        while True:
            z = np.random.standard_normal()
            if z > a:
                return mean + z
    rate = 0.5 * (a + math.sqrt(a * a + 4.0))
    while True:
        z = a + np.random.exponential(1.0 / rate)
        if np.random.random() <= math.exp(-0.5 * (z - rate) * (z - rate)):
            return mean + z


@njit(cache=True)
def probit_targets(scores, labels, z, sample):
    """Latent targets of the probit link for labels in {-1, +1}.

    ``z ~ N(score, 1)`` truncated to the label's side (Gibbs, Albert & Chib 1993), or its
    expectation ``score + label * phi(score) / Phi(label * score)`` (ALS, as libFM).
    """
    for r in range(scores.shape[0]):
        m = labels[r] * scores[r]
        if sample:
            z[r] = labels[r] * _positive_truncated_normal(m)
        else:
            z[r] = labels[r] * (m + _mills_ratio(m))
