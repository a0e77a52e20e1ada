"""The conditional of one coordinate of a model linear in it (Rendle, ACM TIST 2012, sec. 4-5):
shared by the coordinate sweeps over columns (``coordinate``) and over block columns
(``relations``)."""
import math

import numpy as np
from numba import njit
from .._numba_cache import CACHE


@njit(cache=CACHE, inline="always")
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
