"""SGD for the higher-order FM through the ANOVA kernel (Blondel et al., NIPS 2016)."""
from dataclasses import dataclass

import numpy as np

from ..kernels.anova import sgd_epoch
from .sgd import SGDSolver


@dataclass
class HOFMSolver(SGDSolver):
    """Per-sample SGD epochs of a :class:`~fmlearn.model.HOFMModel`, lock-free over threads.

    The parameters, the row order and the state (:class:`~fmlearn.solvers.sgd.SGDState`)
    are :class:`~fmlearn.solvers.sgd.SGDSolver`'s.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import HOFMModel
    >>> from fmlearn.solvers.sgd import SGDState
    >>> X = sp.csr_matrix(np.ones((4, 3), dtype=np.float32)); y = np.ones(4, np.float32)
    >>> model = HOFMModel.initial(3, 3, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = HOFMSolver("squared", "adagrad", 0.1, 0.25, 0.0, 0.0, 0.0, None)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), SGDState.initial(model))
    >>> bool(model.predict(X)[0] > 0)
    True
    """

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed loss.

        Blocks of rows are visited in a random order drawn from ``rng``, or in storage
        order when ``rng`` is None.
        """
        block_starts, n_threads = self.blocks(X, rng)
        intercept = np.array([model.intercept], dtype=model.dtype)
        total = sgd_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                          self.block_size, intercept, model.coef, model.factors,
                          state.acc_intercept, state.acc_coef, state.acc_factors, state.step,
                          self.config(model.dtype), n_threads)
        model.intercept = float(intercept[0])
        return total
