"""Pointwise losses and their derivatives with respect to the raw score.

Codes shared by every learner kernel: ``SQUARED`` (regression, targets are
real numbers), ``LOGISTIC`` (binary classification, targets are -1 / +1) and
``SOFTMAX`` (multiclass, targets are class codes; its cross-entropy is computed by
:mod:`fmlearn.kernels.softmax`, over all the classes' scores at once) and ``BPR``
(pairwise ranking, computed by :mod:`fmlearn.kernels.bpr` from two rows' scores).

The learner kernels (and this module) divide with numpy's error model: a diverging pass
carries NaN or inf through every division, log and exp to the parameters, which the epoch
loop checks after the pass, where Python's model raised ZeroDivisionError inside the
parallel loop (seen as a SystemError) once fastmath let a NaN reach a division.
"""
import numpy as np
from numba import njit
from .._numba_cache import CACHE

SQUARED = 0
LOGISTIC = 1
SOFTMAX = 2
BPR = 3


@njit(cache=CACHE, fastmath=True, error_model="numpy")
def loss_and_derivative(loss, score, target):
    """Return ``(l, dl/dscore)`` for one sample.

    Squared: ``l = (score - target)**2 / 2``. Logistic with ``target`` in
    {-1, +1}: ``l = log(1 + exp(-target * score))``, computed without overflow.
    """
    if loss == SQUARED:
        d = score - target
        return 0.5 * d * d, d
    m = -target * score
    if m > 0:
        e = np.exp(-m)
        return m + np.log1p(e), -target / (1 + e)
    e = np.exp(m)
    return np.log1p(e), -target * e / (1 + e)
