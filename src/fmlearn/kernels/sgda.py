"""One epoch of SGD with adaptive regularisation (Rendle, WSDM 2012; libFM's ``sgda``).

Each training row takes an SGD step with one penalty per feature group and factor
layer, ``theta -= eta_theta * (g_theta + lam * theta)``, where ``eta_theta`` is the
schedule's step for that coordinate (constant, inverse scaling, or AdaGrad's
``eta0 / sqrt(accumulated squares)``), and its data gradient ``g_theta`` is kept per
parameter. Then one validation row steps the penalties: its loss at the look-ahead
parameters ``theta' = theta - eta_theta * (g_theta + lam * theta)`` (what the next
step would make of them) depends on ``lam`` through ``d theta' / d lam = -eta_theta *
theta``, so

    dl/dlam_w[g]    = -l'(y') * sum_{i in g} eta_i x_i w_i
    dl/dlam_v[g, f] = -l'(y') * sum_{i in g} eta_if x_i v_if (q'_f - x_i v'_if)

with ``q'_f = sum_i x_i v'_if``, and ``lam -= penalty_rate * dl/dlam``, kept at or
above 0. The bias keeps its fixed penalty, as in libFM. One thread: the penalty steps
follow the parameter steps row by row. How these steps map to libFM's ``sgda`` is in
:class:`fmlearn.solvers.sgda.SGDASolver`.
"""
import numpy as np
from numba import njit

from .losses import loss_and_derivative
from .predict import finish_score, score_row
from .sgd import ADAGRAD, _clip, step_size
from .._numba_cache import CACHE


@njit(cache=CACHE, fastmath=True, inline="always")
def _rate(cfg, eta, acc):
    """The step of a coordinate whose AdaGrad sum is ``acc``; ``eta`` is the schedule's step."""
    return eta / np.sqrt(acc) if cfg.schedule == ADAGRAD else eta


@njit(cache=CACHE, fastmath=True)
def lookahead_score(start, end, indices, data, intercept, coef, factors, grad_coef,
                    grad_factors, acc_coef, acc_factors, groups, lam_w, lam_v, eta, q_ahead,
                    cfg):
    """The score of one CSR row under the look-ahead parameters; their factor sums go to
    ``q_ahead``."""
    q_ahead[:] = 0
    linear = intercept
    squares = q_ahead.dtype.type(0)
    for p in range(start, end):
        i = indices[p]
        x = data[p]
        g = groups[i]
        if cfg.fit_linear:
            step = _rate(cfg, eta, acc_coef[i]) * (grad_coef[i] + lam_w[g] * coef[i])
            linear += (coef[i] - step) * x
        for f in range(q_ahead.shape[0]):
            v = factors[i, f]
            vx = (v - _rate(cfg, eta, acc_factors[i, f]) * (grad_factors[i, f]
                                                          + lam_v[g, f] * v)) * x
            q_ahead[f] += vx
            squares += vx * vx
    return finish_score(linear, squares, q_ahead)


@njit(cache=CACHE, fastmath=True)
def penalty_gradient(start, end, indices, data, coef, factors, grad_factors, acc_coef,
                     acc_factors, groups, lam_v, eta, dloss, q_ahead, out_w, out_v, cfg):
    """Write ``dl/dlam_w`` and ``dl/dlam_v`` of one validation row into ``out_w`` (n_groups,)
    and ``out_v`` (n_groups, n_factors), given ``dloss = l'(y')`` and the look-ahead factor
    sums ``q_ahead`` of ``lookahead_score``."""
    out_w[:] = 0
    out_v[:] = 0
    for p in range(start, end):
        i = indices[p]
        x = data[p]
        g = groups[i]
        if cfg.fit_linear:
            out_w[g] -= _rate(cfg, eta, acc_coef[i]) * x * coef[i]
        for f in range(q_ahead.shape[0]):
            v = factors[i, f]
            rate = _rate(cfg, eta, acc_factors[i, f])
            v_ahead = v - rate * (grad_factors[i, f] + lam_v[g, f] * v)
            out_v[g, f] -= rate * x * v * (q_ahead[f] - x * v_ahead)
    for g in range(out_w.shape[0]):
        out_w[g] *= dloss
        for f in range(out_v.shape[1]):
            out_v[g, f] *= dloss


@njit(cache=CACHE, fastmath=True, inline="always")
def _step(theta, acc, grad, penalty, eta, cfg):
    """One coordinate's step ``theta -= rate * (grad + penalty * theta)``; returns the new value."""
    full = _clip(grad + penalty * theta, cfg.clip)
    if cfg.schedule == ADAGRAD:
        acc[0] += full * full
    return theta - _rate(cfg, eta, acc[0]) * full


@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True)
def sgda_epoch(indptr, indices, data, y, sample_weight, order, val_indptr, val_indices,
               val_data, val_y, val_weight, val_next, intercept, coef, factors, acc_intercept,
               acc_coef, acc_factors, step, grad_coef, grad_factors, groups, lam_w, lam_v,
               step_penalties, penalty_rate, cfg):
    """One pass over the training rows in ``order``, each followed (with ``step_penalties``)
    by a penalty step of ``penalty_rate`` on the next validation row, cycling;
    ``val_next[0]`` is that row.

    ``cfg`` is the SGD kernel's configuration (its ``reg_linear`` and ``reg_factors`` are
    not read: ``lam_w`` and ``lam_v`` replace them); ``acc_*`` are AdaGrad's sums and
    ``step[0]`` the sample count of the inverse-scaling schedule, as in ``sgd_epoch``.
    Sample weights multiply each training row's step. Returns the sum of the weighted
    training losses, each taken before its row's update.
    """
    k = factors.shape[1]
    tp = factors.dtype.type
    q = np.empty(k, dtype=factors.dtype)
    q_ahead = np.empty(k, dtype=factors.dtype)
    out_w = np.empty_like(lam_w)
    out_v = np.empty_like(lam_v)
    n_val = val_indptr.shape[0] - 1
    total = 0.0
    for r in order:
        sw = sample_weight[r]
        if sw == 0:
            continue
        start, end = indptr[r], indptr[r + 1]
        score = score_row(start, end, indices, data, intercept[0], coef, factors, q)
        score = min(max(score, cfg.lower), cfg.upper)
        l, d = loss_and_derivative(cfg.loss, score, y[r])
        total += sw * l
        g = tp(sw * d)
        eta = step_size(cfg, step[0], tp)
        step[0] += 1
        if cfg.fit_intercept:
            intercept[0] = _step(intercept[0], acc_intercept, g, sw * cfg.reg_intercept, eta, cfg)
        for p in range(start, end):
            i = indices[p]
            x = data[p]
            grp = groups[i]
            if cfg.fit_linear:
                grad_coef[i] = g * x
                coef[i] = _step(coef[i], acc_coef[i:i + 1], grad_coef[i], sw * lam_w[grp], eta,
                                cfg)
            for f in range(k):
                grad_factors[i, f] = g * x * (q[f] - factors[i, f] * x)
                factors[i, f] = _step(factors[i, f], acc_factors[i, f:f + 1], grad_factors[i, f],
                                      sw * lam_v[grp, f], eta, cfg)
        if not step_penalties or n_val == 0:
            continue
        s = val_next[0]
        val_next[0] = (s + 1) % n_val
        vs, ve = val_indptr[s], val_indptr[s + 1]
        ahead = lookahead_score(vs, ve, val_indices, val_data, intercept[0], coef, factors,
                                grad_coef, grad_factors, acc_coef, acc_factors, groups, lam_w,
                                lam_v, eta, q_ahead, cfg)
        ahead = min(max(ahead, cfg.lower), cfg.upper)
        dloss = val_weight[s] * loss_and_derivative(cfg.loss, ahead, val_y[s])[1]
        penalty_gradient(vs, ve, val_indices, val_data, coef, factors, grad_factors, acc_coef,
                         acc_factors, groups, lam_v, eta, dloss, q_ahead, out_w, out_v, cfg)
        for grp in range(lam_w.shape[0]):
            lam_w[grp] = max(0.0, lam_w[grp] - penalty_rate * out_w[grp])
            for f in range(k):
                lam_v[grp, f] = max(0.0, lam_v[grp, f] - penalty_rate * out_v[grp, f])
    return total
