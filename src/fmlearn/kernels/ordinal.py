"""Ordered-probit kernels: latent targets in the class intervals and the cut-points'
Metropolis-Hastings step (Albert & Chib, JASA 1993 and 1997; Cowles, Stat. Comput. 1996; as
myFM's ``OprobitSampler``).

With cut-points ``c_0 < ... < c_{m-1}`` (``m = K - 1`` for ``K`` ordered classes,
``c_{-1} = -inf``, ``c_m = +inf``), a row of class ``k`` and score ``s`` has the latent
target ``z ~ N(s, 1)`` truncated to ``(c_{k-1}, c_k]``, and probability
``Phi(c_k - s) - Phi(c_{k-1} - s)``. The cut-points are drawn given the scores with ``z``
integrated out (Albert & Chib 1997), which mixes far faster than drawing them given ``z``
(Cowles 1996), in the unconstrained parameters ``a_0 = c_0``, ``a_j = log(c_j - c_{j-1})``:
Newton's method finds the mode of their log-posterior and a multivariate t proposal
(``NU`` degrees of freedom) centred there, with the negative Hessian as precision, is
accepted or rejected (an independence Metropolis-Hastings step). Each ``a_j`` has a weak
``N(0, PRIOR_VAR)`` prior, which keeps the posterior proper when a class has no rows.
Random numbers come from numba's generator (``coordinate.seed_generator``).
"""
import math

import numpy as np
from numba import njit

from .._numba_cache import CACHE
from .coordinate import _positive_truncated_normal

NU = 5.0  # degrees of freedom of the t proposal (myFM's)
PRIOR_VAR = 100.0  # variance of the normal prior of each free parameter a_j
# Newton stops when the gain its step promises, ``grad . step``, is below this share of the
# log-posterior: the sum's own rounding, where a line search would only creep.
DECREMENT_TOL = 1e-10
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=CACHE)
def log_ndtr(x):
    """``log Phi(x)``, accurate in both tails (an asymptotic series below -30)."""
    if x > 0.0:
        return math.log1p(-0.5 * math.erfc(x / _SQRT2))
    if x > -30.0:
        return math.log(0.5 * math.erfc(-x / _SQRT2))
    u = 1.0 / (x * x)
    return -0.5 * x * x - math.log(-x) - _LOG_SQRT_2PI + math.log1p(-u + 3.0 * u * u
                                                                     - 15.0 * u * u * u)


@njit(cache=CACHE, inline="always")
def _tail(x):
    """``min(Phi(x), 1 - Phi(x))``, exact in the tail (0 at infinity)."""
    return 0.5 * math.erfc(abs(x) / _SQRT2)


@njit(cache=CACHE, inline="always")
def _mass(lo, hi, t_lo, t_hi):
    """``Phi(hi) - Phi(lo)`` from the bounds' ``_tail`` values, as a difference of upper tails
    above the interval's middle and of lower tails below it, so that a small mass far out
    keeps its digits."""
    if lo + hi > 0.0:
        return (t_lo if lo > 0.0 else 1.0 - t_lo) - (t_hi if hi > 0.0 else 1.0 - t_hi)
    return (t_hi if hi < 0.0 else 1.0 - t_hi) - (t_lo if lo < 0.0 else 1.0 - t_lo)


@njit(cache=CACHE)
def class_probabilities(scores, cut, out):
    """``out[k, r] = Phi(c_k - score_r) - Phi(c_{k-1} - score_r)``, shape (m + 1, n_rows),
    one ``erfc`` per cut-point and row."""
    m = cut.shape[0]
    tails = np.empty(m + 2)
    for r in range(scores.shape[0]):
        tails[0] = tails[m + 1] = 0.0
        for j in range(m):
            tails[j + 1] = _tail(cut[j] - scores[r])
        for k in range(m + 1):
            lo = cut[k - 1] - scores[r] if k > 0 else -np.inf
            hi = cut[k] - scores[r] if k < m else np.inf
            out[k, r] = _mass(lo, hi, tails[k], tails[k + 1])


@njit(cache=CACHE)
def interval_terms(lo, hi):
    """``(log D, phi(hi) / D, phi(lo) / D)`` for ``D = Phi(hi) - Phi(lo)``, ``lo < hi``
    (either may be infinite; an infinite bound's ratio is 0). ``D`` comes from ``_mass``;
    where it is below ``1e-280`` (bounds some 36 standard deviations out) the tail nearer
    the interval is read in logs instead, so that it keeps its digits."""
    mass = _mass(lo, hi, _tail(lo), _tail(hi))
    if mass > 1e-280:
        a = math.exp(-0.5 * hi * hi) * _INV_SQRT_2PI / mass if hi < np.inf else 0.0
        b = math.exp(-0.5 * lo * lo) * _INV_SQRT_2PI / mass if lo > -np.inf else 0.0
        return math.log(mass), a, b
    if lo == -np.inf:
        log_mass = log_ndtr(hi)
    elif hi == np.inf:
        log_mass = log_ndtr(-lo)
    else:
        if lo + hi > 0.0:  # the upper tail holds the digits: Phi(hi) - Phi(lo) = Q(lo) - Q(hi)
            top, bottom = log_ndtr(-lo), log_ndtr(-hi)
        else:
            top, bottom = log_ndtr(hi), log_ndtr(lo)
        log_mass = top + math.log1p(-math.exp(bottom - top))
    a = math.exp(-0.5 * hi * hi - _LOG_SQRT_2PI - log_mass) if hi < np.inf else 0.0
    b = math.exp(-0.5 * lo * lo - _LOG_SQRT_2PI - log_mass) if lo > -np.inf else 0.0
    return log_mass, a, b


@njit(cache=CACHE)
def log_likelihood(cut, scores, labels, s, weighted, grad, hess):
    """``sum_r s_r log(Phi(c_k - score_r) - Phi(c_{k-1} - score_r))`` over the rows (class
    ``k = labels[r]``); its gradient and Hessian in the cut-points into ``grad`` (m,) and
    ``hess`` (m, m). Rows of weight 0 are skipped."""
    m = cut.shape[0]
    grad[:] = 0.0
    hess[:, :] = 0.0
    total = 0.0
    for r in range(scores.shape[0]):
        w = s[r] if weighted else 1.0
        if w == 0.0:
            continue
        k = labels[r]
        lo = cut[k - 1] - scores[r] if k > 0 else -np.inf
        hi = cut[k] - scores[r] if k < m else np.inf
        log_mass, a, b = interval_terms(lo, hi)
        total += w * log_mass
        if k < m:
            grad[k] += w * a
            hess[k, k] -= w * (hi * a + a * a)
        if k > 0:
            grad[k - 1] -= w * b
            hess[k - 1, k - 1] += w * (lo * b - b * b)
        if 0 < k < m:
            hess[k, k - 1] += w * a * b
            hess[k - 1, k] += w * a * b
    return total


@njit(cache=CACHE)
def to_cutpoints(alpha, cut):
    """``c_0 = a_0``, ``c_j = c_{j-1} + exp(a_j)``."""
    cut[0] = alpha[0]
    for j in range(1, alpha.shape[0]):
        cut[j] = cut[j - 1] + math.exp(alpha[j])


@njit(cache=CACHE)
def to_alpha(cut):
    """The inverse of ``to_cutpoints`` (``cut`` strictly increasing)."""
    alpha = np.empty(cut.shape[0])
    alpha[0] = cut[0]
    for j in range(1, cut.shape[0]):
        alpha[j] = math.log(cut[j] - cut[j - 1])
    return alpha


@njit(cache=CACHE)
def log_posterior(alpha, scores, labels, s, weighted, fixed_first, grad, hess):
    """The log-posterior of ``alpha`` (likelihood and priors), its gradient into ``grad``
    and its Hessian into ``hess``; with ``fixed_first`` ``a_0`` is held (its row and
    column of the Hessian are those of the identity, its gradient 0)."""
    m = alpha.shape[0]
    cut = np.empty(m)
    to_cutpoints(alpha, cut)
    g_cut, h_cut = np.empty(m), np.empty((m, m))
    total = log_likelihood(cut, scores, labels, s, weighted, g_cut, h_cut)
    # d c_j / d a_i = e_i for j >= i (e_0 = 1, e_i = exp(a_i)): suffix sums over j.
    e = np.empty(m)
    for i in range(m):
        e[i] = 1.0 if i == 0 else math.exp(alpha[i])
    tail_g = np.zeros(m + 1)
    tail_h = np.zeros((m + 1, m + 1))
    for i in range(m - 1, -1, -1):
        tail_g[i] = tail_g[i + 1] + g_cut[i]
        for j in range(m - 1, -1, -1):
            tail_h[i, j] = h_cut[i, j] + tail_h[i + 1, j] + tail_h[i, j + 1] - tail_h[i + 1, j + 1]
    first = 1 if fixed_first else 0
    for i in range(m):
        grad[i] = e[i] * tail_g[i] - alpha[i] / PRIOR_VAR
        for j in range(m):
            hess[i, j] = e[i] * e[j] * tail_h[i, j]
        hess[i, i] -= 1.0 / PRIOR_VAR
        if i > 0:
            hess[i, i] += e[i] * tail_g[i]
    for i in range(first):
        grad[i] = 0.0
        hess[i, :] = 0.0
        hess[:, i] = 0.0
        hess[i, i] = -1.0
    for i in range(first, m):
        total -= 0.5 * alpha[i] * alpha[i] / PRIOR_VAR
    return total


@njit(cache=CACHE)
def cholesky(a, lower):
    """The lower Cholesky factor of the symmetric ``a`` into ``lower``; False when ``a`` is
    not positive definite."""
    n = a.shape[0]
    lower[:, :] = 0.0
    for j in range(n):
        d = a[j, j]
        for p in range(j):
            d -= lower[j, p] * lower[j, p]
        if not d > 0.0:
            return False
        lower[j, j] = math.sqrt(d)
        for i in range(j + 1, n):
            v = a[i, j]
            for p in range(j):
                v -= lower[i, p] * lower[j, p]
            lower[i, j] = v / lower[j, j]
    return True


@njit(cache=CACHE)
def precision_factor(hess, lower):
    """The Cholesky factor of ``-hess``, damped by a multiple of the identity until it is
    positive definite (the log-posterior is not concave in ``alpha`` everywhere)."""
    n = hess.shape[0]
    p = -hess
    damping = 0.0
    while not cholesky(p, lower):
        damping = 1e-8 if damping == 0.0 else damping * 10.0
        for i in range(n):
            p[i, i] = -hess[i, i] + damping


@njit(cache=CACHE)
def newton_mode(alpha, scores, labels, s, weighted, fixed_first, lower, max_iter=50):
    """Move ``alpha`` to the mode of ``log_posterior`` by damped Newton steps with
    backtracking; once the gain a step promises is below ``DECREMENT_TOL`` (the quadratic
    regime) the last step is taken whole. The Cholesky factor of the negative Hessian there
    into ``lower``. Return the log-posterior at the start (not finite: nothing
    moved, ``lower`` not set)."""
    m = alpha.shape[0]
    grad, hess = np.empty(m), np.empty((m, m))
    g_new, h_new = np.empty(m), np.empty((m, m))
    step, candidate = np.empty(m), np.empty(m)
    start = current = log_posterior(alpha, scores, labels, s, weighted, fixed_first, grad, hess)
    if not abs(start) < np.inf:
        return start
    for _ in range(max_iter):
        precision_factor(hess, lower)
        solve_lower(lower, grad, step)
        solve_upper(lower, step, step)
        if np.dot(grad, step) < DECREMENT_TOL * (1.0 + abs(current)):
            alpha += step
            break
        t = 1.0
        moved = False
        for _ in range(40):
            for i in range(m):
                candidate[i] = alpha[i] + t * step[i]
            value = log_posterior(candidate, scores, labels, s, weighted, fixed_first, g_new,
                                  h_new)
            if value >= current:
                moved = True
                break
            t *= 0.5
        if not moved:
            break
        alpha[:] = candidate
        grad[:] = g_new
        hess[:, :] = h_new
        current = value
    precision_factor(hess, lower)
    return start


@njit(cache=CACHE)
def solve_lower(lower, b, out):
    """``out = L^-1 b`` by forward substitution (``out`` may be ``b``)."""
    for i in range(b.shape[0]):
        v = b[i]
        for p in range(i):
            v -= lower[i, p] * out[p]
        out[i] = v / lower[i, i]


@njit(cache=CACHE)
def solve_upper(lower, b, out):
    """``out = L^-T b`` by back substitution (``out`` may be ``b``)."""
    n = b.shape[0]
    for i in range(n - 1, -1, -1):
        v = b[i]
        for p in range(i + 1, n):
            v -= lower[p, i] * out[p]
        out[i] = v / lower[i, i]


@njit(cache=CACHE)
def _log_t_kernel(lower, centre, x, n_free):
    """``log`` of the t proposal's density at ``x`` up to a constant: ``-(NU + d) / 2
    log(1 + (x - centre)^T P (x - centre) / NU)`` with ``P = L L^T``."""
    quad = 0.0
    for j in range(x.shape[0]):
        v = 0.0
        for i in range(j, x.shape[0]):
            v += lower[i, j] * (x[i] - centre[i])
        quad += v * v
    return -0.5 * (NU + n_free) * math.log1p(quad / NU)


@njit(cache=CACHE)
def draw_cutpoints(cut, scores, labels, s, weighted, fixed_first):
    """One Metropolis-Hastings step of the cut-points ``cut`` (in place) given the scores;
    return whether the proposal was accepted. With ``fixed_first`` ``c_0`` stays where it
    is (the model's intercept then sets the location); with nothing free it does nothing."""
    m = cut.shape[0]
    first = 1 if fixed_first else 0
    if m - first == 0:
        return False
    alpha = to_alpha(cut)
    centre = alpha.copy()
    lower = np.empty((m, m))
    current = newton_mode(centre, scores, labels, s, weighted, fixed_first, lower)
    if not abs(current) < np.inf:  # a collapsed interval or diverged scores: keep them
        return False
    grad, hess = np.empty(m), np.empty((m, m))
    noise = np.zeros(m)
    for i in range(first, m):
        noise[i] = np.random.standard_normal()
    scale = math.sqrt(np.random.chisquare(NU) / NU)
    proposal = np.empty(m)
    solve_upper(lower, noise, proposal)
    for i in range(m):
        proposal[i] = centre[i] + proposal[i] / scale
    value = log_posterior(proposal, scores, labels, s, weighted, fixed_first, grad, hess)
    n_free = m - first
    log_ratio = (value - current - _log_t_kernel(lower, centre, proposal, n_free)
                 + _log_t_kernel(lower, centre, alpha, n_free))
    if not log_ratio >= math.log(np.random.random()):
        return False
    to_cutpoints(proposal, cut)
    return True


@njit(cache=CACHE)
def _standard_between(lo, hi):
    """A draw of ``x ~ N(0, 1)`` conditioned on ``lo < x <= hi`` (both finite), exactly, by
    rejection (Robert 1995): from a uniform proposal when the interval is short, else from
    the normal or its one-sided tail."""
    sign = 1.0
    if lo + hi < 0.0:  # mirror onto the upper side
        lo, hi, sign = -hi, -lo, -1.0
    width = hi - lo
    if lo <= 0.0:
        if width < 2.5:
            while True:
                x = lo + width * np.random.random()
                if np.random.random() <= math.exp(-0.5 * x * x):
                    return sign * x
        while True:
            x = np.random.standard_normal()
            if lo < x <= hi:
                return sign * x
    if width * (lo + 0.5 * width) < 1.0:
        while True:
            x = lo + width * np.random.random()
            if np.random.random() <= math.exp(0.5 * (lo * lo - x * x)):
                return sign * x
    while True:
        x = lo + _positive_truncated_normal(-lo, math.nan)
        if x <= hi:
            return sign * x


@njit(cache=CACHE)
def ordinal_targets(scores, labels, cut, z, normals):
    """Latent targets ``z_r ~ N(score_r, 1)`` truncated to the interval of class
    ``labels[r]``, ``(c_{k-1}, c_k]`` (Albert & Chib 1993); in the first and last class
    (one-sided intervals) the first try is ``normals[r]``, as in the binary probit's
    ``probit_targets``. A score that is not finite comes back as it is, for the epoch
    loop's check."""
    m = cut.shape[0]
    for r in range(scores.shape[0]):
        mean = scores[r]
        k = labels[r]
        if not abs(mean) < np.inf:
            z[r] = mean
        elif k == 0:
            z[r] = cut[0] - _positive_truncated_normal(cut[0] - mean, normals[r])
        elif k == m:
            z[r] = cut[m - 1] + _positive_truncated_normal(mean - cut[m - 1], normals[r])
        else:
            z[r] = mean + _standard_between(cut[k - 1] - mean, cut[k] - mean)
