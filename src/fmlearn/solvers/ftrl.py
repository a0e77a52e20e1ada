"""FTRL-Proximal for the second-order FM (McMahan et al. 2013; xLearn's ``opt='ftrl'``)."""
from dataclasses import dataclass

import numpy as np

from ..kernels.ftrl import FTRLConfig, ftrl_epoch
from ..kernels.losses import LOGISTIC, SQUARED
from .base import PointSolver
from .sgd import shuffled_blocks

LOSSES = {"squared": SQUARED, "logistic": LOGISTIC}


@dataclass
class FTRLState:
    """What FTRL carries between epochs and calls: per coordinate of the bias, the linear
    weights and the factors, ``z`` (the gradients less the proximal centres' pulls) and
    ``n`` (the summed squared gradients), zeros to start with."""

    z_intercept: np.ndarray
    n_intercept: np.ndarray
    z_coef: np.ndarray
    n_coef: np.ndarray
    z_factors: np.ndarray
    n_factors: np.ndarray

    @classmethod
    def initial(cls, model):
        """Fresh state for ``model``."""
        bias = np.zeros(1, dtype=model.dtype)
        return cls(bias, bias.copy(), np.zeros_like(model.coef), np.zeros_like(model.coef),
                   np.zeros_like(model.factors), np.zeros_like(model.factors))


@dataclass
class FTRLSolver(PointSolver):
    """Per-row FTRL-Proximal epochs over CSR rows stored in the order they are visited
    (:mod:`fmlearn.kernels.ftrl`), with a random order of blocks of ``block_size`` rows
    each epoch, as :class:`~fmlearn.solvers.sgd.SGDSolver`; ``n_threads`` threads update
    shared parameters without locks.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32)); y = np.ones(4, np.float32)
    >>> model = FMModel.initial(4, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = FTRLSolver("squared", 0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), state)
    >>> loss > 0, float(state.n_intercept[0]) > 0
    (True, True)
    """

    loss: str
    alpha: float
    beta: float
    l1_intercept: float
    l2_intercept: float
    l1_linear: float
    l2_linear: float
    l1_factors: float
    l2_factors: float
    clip_gradient: float | None
    n_threads: int = 1
    block_size: int = 256
    target_range: tuple | None = None
    fit_intercept: bool = True
    fit_linear: bool = True

    def initial_state(self, model, groups):
        """Zero ``(z, n)`` (``groups`` has no meaning here)."""
        return FTRLState.initial(model)

    def config(self, dtype):
        """The kernel's hyperparameters as scalars of ``dtype``."""
        tp = np.dtype(dtype).type
        big = np.finfo(dtype).max
        clip = big if self.clip_gradient is None else self.clip_gradient
        lower, upper = (-big, big) if self.target_range is None else self.target_range
        return FTRLConfig(LOSSES[self.loss], *(tp(v) for v in (
            self.alpha, self.beta, self.l1_intercept, self.l2_intercept, self.l1_linear,
            self.l2_linear, self.l1_factors, self.l2_factors, clip, lower, upper)),
            self.fit_intercept, self.fit_linear)

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed
        loss. Blocks are visited in a random order drawn from ``rng``, or in storage order
        when ``rng`` is None."""
        block_starts, n_threads = shuffled_blocks(X.shape[0], self.block_size, self.n_threads,
                                                  rng)
        intercept = np.array([model.intercept], dtype=model.dtype)
        total = ftrl_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                           self.block_size, intercept, model.coef, model.factors,
                           state.z_intercept, state.n_intercept, state.z_coef, state.n_coef,
                           state.z_factors, state.n_factors, self.config(model.dtype), n_threads)
        model.intercept = float(intercept[0])
        return total
