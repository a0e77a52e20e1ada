"""FTRL-Proximal for the field-aware FM (xLearn's ``-s 2`` with ``opt='ftrl'``)."""
from dataclasses import dataclass, field

import numpy as np

from ..kernels.ftrl_ffm import ftrl_epoch
from .ffm import FFMSolver
from .ftrl import FTRLSolver
from .sgd import shuffled_blocks


@dataclass
class FFMFTRLSolver(FTRLSolver):
    """Per-row FTRL-Proximal epochs of an :class:`~fmlearn.model.FFMModel`
    (:mod:`fmlearn.kernels.ftrl_ffm`), lock-free over threads.

    The parameters, the row order and the state (an
    :class:`~fmlearn.solvers.ftrl.FTRLState`, its factor arrays shaped as the model's) are
    :class:`~fmlearn.solvers.ftrl.FTRLSolver`'s; rows are scaled to unit norm first when the
    model ``normalize``-s them, as :class:`~fmlearn.solvers.ffm.FFMSolver` does.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fmlearn.model import FFMModel
    >>> X = sp.csr_matrix(np.ones((4, 3), dtype=np.float32)); y = np.ones(4, np.float32)
    >>> fields = np.array([0, 1, 1], dtype=np.int32)
    >>> model = FFMModel.initial(fields, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = FFMFTRLSolver("squared", 0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), state)
    >>> state.n_factors.shape, bool(state.n_factors[0, 1, 0] > 0)
    ((3, 2, 2), True)
    """

    _normalized: tuple = field(default=None, init=False, repr=False)
    rows = FFMSolver.rows

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed
        loss. Blocks are visited in a random order drawn from ``rng``, or in storage order
        when ``rng`` is None."""
        X = self.rows(X, model)
        block_starts, n_threads = shuffled_blocks(X.shape[0], self.block_size, self.n_threads,
                                                  rng)
        intercept = np.array([model.intercept], dtype=model.dtype)
        total = ftrl_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                           self.block_size, model.fields, intercept, model.coef, model.factors,
                           state.z_intercept, state.n_intercept, state.z_coef, state.n_coef,
                           state.z_factors, state.n_factors, self.config(model.dtype), n_threads)
        model.intercept = float(intercept[0])
        return total
