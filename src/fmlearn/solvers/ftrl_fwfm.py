"""FTRL-Proximal for the field-weighted FM (McMahan et al. 2013; Pan et al. 2018)."""
from dataclasses import dataclass, field

import numpy as np

from ..kernels.ftrl_fwfm import ftrl_epoch
from .ffm import FFMSolver
from .ftrl import FTRLSolver, FTRLState
from .sgd import shuffled_blocks


@dataclass
class FwFMFTRLState(FTRLState):
    """:class:`~fmlearn.solvers.ftrl.FTRLState` and the ``(z, n)`` of the field weights,
    zeros to start with."""

    z_field_weights: np.ndarray
    n_field_weights: np.ndarray

    @classmethod
    def initial(cls, model):
        """Fresh state for ``model``."""
        ftrl = FTRLState.initial(model)
        weights = np.zeros_like(model.field_weights)
        return cls(ftrl.z_intercept, ftrl.n_intercept, ftrl.z_coef, ftrl.n_coef, ftrl.z_factors,
                   ftrl.n_factors, weights, weights.copy())


@dataclass
class FwFMFTRLSolver(FTRLSolver):
    """Per-row FTRL-Proximal epochs of a :class:`~fmlearn.fwfm_model.FwFMModel`
    (:mod:`fmlearn.kernels.ftrl_fwfm`), lock-free over threads.

    :class:`~fmlearn.solvers.ftrl.FTRLSolver`'s parameters and row order, the rows scaled
    to unit norm first when the model ``normalize``-s them, and ``reg_field_weights``, the
    L2 strength of the field weights.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fmlearn.fwfm_model import FwFMModel
    >>> X = sp.csr_matrix(np.ones((4, 3), dtype=np.float32)); y = np.ones(4, np.float32)
    >>> fields = np.array([0, 1, 1], dtype=np.int32)
    >>> model = FwFMModel.initial(fields, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = FwFMFTRLSolver("squared", 0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), state)
    >>> bool(state.n_field_weights[0, 1] > 0), bool(state.n_field_weights[0, 0] == 0)
    (True, True)
    """

    reg_field_weights: float = 0.0
    _normalized: tuple = field(default=None, init=False, repr=False)
    rows = FFMSolver.rows

    def initial_state(self, model, groups):
        """Zero ``(z, n)`` (``groups`` has no meaning here)."""
        return FwFMFTRLState.initial(model)

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed
        loss (NaN if a field weight is no longer finite). Blocks are visited in a random
        order drawn from ``rng``, or in storage order when ``rng`` is None."""
        X = self.rows(X, model)
        block_starts, n_threads = shuffled_blocks(X.shape[0], self.block_size, self.n_threads,
                                                  rng)
        intercept = np.array([model.intercept], dtype=model.dtype)
        total = ftrl_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                           self.block_size, model.fields, intercept, model.coef, model.factors,
                           model.field_weights, state.z_intercept, state.n_intercept,
                           state.z_coef, state.n_coef, state.z_factors, state.n_factors,
                           state.z_field_weights, state.n_field_weights,
                           self.config(model.dtype), self.reg_field_weights, n_threads)
        model.intercept = float(intercept[0])
        return total if np.isfinite(model.field_weights).all() else float("nan")
