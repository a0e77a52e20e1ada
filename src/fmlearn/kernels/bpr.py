"""Pairwise ranking of the second-order FM by BPR (Rendle, Freudenthaler, Gantner,
Schmidt-Thieme, UAI 2009): SGD on ``-log sigmoid(score(x_p) - score(x_n))`` over pairs of
rows, ``x_p`` to be ranked above ``x_n``.

With ``d = score(x_p) - score(x_n)`` and ``g = dloss/dd = -sigmoid(-d)``, a parameter
steps by ``g * (dscore(x_p) - dscore(x_n))``: both rows' non-zeros are walked together
(indices sorted within rows), so a feature in both, such as the user's, gets one step
from the difference. The bias cancels and is not learned.
"""
import numpy as np
from numba import njit

from .no_alias import no_alias
from .predict import score_row
from .sgd import ADAGRAD, _clip, step_size, thread_scratch
from .._numba_cache import CACHE
from .._threads import run_threads


@njit(cache=CACHE, fastmath=True, inline="always")
def _step(theta, acc, i, grad, eta, cfg):
    grad = _clip(grad, cfg.clip)
    if cfg.schedule == ADAGRAD:
        acc[i] += grad * grad
        theta[i] -= eta * grad / np.sqrt(acc[i])
    else:
        theta[i] -= eta * grad


@njit(cache=CACHE, fastmath=True, inline="always")
def _step_feature(coef, factors, acc_coef, acc_factors, j, xp, xn, qp, qn, g, reg_w, reg_v,
                  eta, cfg):
    """Step feature ``j``'s weight and factors; ``xp`` and ``xn`` are its values in the two
    rows (0 where absent)."""
    if cfg.fit_linear:
        _step(coef, acc_coef, j, g * (xp - xn) + reg_w * coef[j], eta, cfg)
    row = factors[j]
    acc = acc_factors[j]
    for f in range(qp.shape[0]):
        v = row[f]
        dscore = xp * (qp[f] - v * xp) - xn * (qn[f] - v * xn)
        _step(row, acc, f, g * dscore + reg_v * v, eta, cfg)


@no_alias
@njit(cache=CACHE, fastmath=True, error_model="numpy", nogil=True, _nrt=False)
def thread_pass(c, n_threads, indptr, indices, data, pairs, weights, coef, factors, acc_coef,
                acc_factors, step, cfg, local_q):
    """Thread ``c``'s share of :func:`bpr_epoch`, ``local_q[c]`` its scratch space; returns
    the summed weighted loss of its pairs. Compiled without reference counting."""
    n_pairs = pairs.shape[0]
    tp = factors.dtype.type
    qp, qn = local_q[c, 0], local_q[c, 1]
    t = step[0] + c
    total = 0.0
    for s in range(c * n_pairs // n_threads, (c + 1) * n_pairs // n_threads):
        sw = weights[s]
        if sw == 0:
            continue
        rp, rn = pairs[s, 0], pairs[s, 1]
        a, a_end = indptr[rp], indptr[rp + 1]
        b, b_end = indptr[rn], indptr[rn + 1]
        d = (score_row(a, a_end, indices, data, tp(0), coef, factors, qp)
             - score_row(b, b_end, indices, data, tp(0), coef, factors, qn))
        if d > 0:
            total += sw * np.log1p(np.exp(-d))
            g = tp(-sw / (1.0 + np.exp(d)))
        else:
            total += sw * (np.log1p(np.exp(d)) - d)
            g = tp(-sw * (1.0 - 1.0 / (1.0 + np.exp(-d))))
        eta = step_size(cfg, t, tp)
        reg_w = sw * cfg.reg_linear
        reg_v = sw * cfg.reg_factors
        while a < a_end or b < b_end:
            ja = indices[a] if a < a_end else 2**31
            jb = indices[b] if b < b_end else 2**31
            if ja < jb:
                _step_feature(coef, factors, acc_coef, acc_factors, ja, data[a], tp(0),
                              qp, qn, g, reg_w, reg_v, eta, cfg)
                a += 1
            elif jb < ja:
                _step_feature(coef, factors, acc_coef, acc_factors, jb, tp(0), data[b],
                              qp, qn, g, reg_w, reg_v, eta, cfg)
                b += 1
            else:
                _step_feature(coef, factors, acc_coef, acc_factors, ja, data[a], data[b],
                              qp, qn, g, reg_w, reg_v, eta, cfg)
                a += 1
                b += 1
        t += n_threads
    return total


def bpr_epoch(indptr, indices, data, pairs, weights, coef, factors, acc_coef, acc_factors, step,
              cfg, n_threads):
    """One pass over ``pairs`` (n_pairs, 2) of row numbers, ``pairs[:, 0]`` preferred, each
    pair's step multiplied by its weight; thread ``c`` of ``n_threads`` takes the ``c``-th
    contiguous share and updates the shared parameters without locks. Returns the summed
    weighted BPR loss, each pair's taken before its step.
    """
    k = factors.shape[1]
    local_q = thread_scratch(n_threads, (2, k), factors.dtype)
    losses = run_threads(thread_pass, n_threads, n_threads, indptr, indices, data, pairs,
                         weights, coef, factors, acc_coef, acc_factors, step, cfg, local_q)
    step[0] += pairs.shape[0]
    return float(np.sum(losses))
