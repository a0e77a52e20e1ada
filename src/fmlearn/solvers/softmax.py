"""SGD for the multiclass FM: a softmax over one FM score per class."""
from dataclasses import dataclass

from ..kernels.softmax import sgd_epoch
from .sgd import SGDSolver


@dataclass
class SoftmaxSolver(SGDSolver):
    """Per-sample SGD epochs of a :class:`~fmlearn.model.MulticlassFMModel` on the
    cross-entropy, lock-free over threads; targets are class codes 0..C-1.

    The parameters, the row order and the state (:class:`~fmlearn.solvers.sgd.SGDState`)
    are :class:`~fmlearn.solvers.sgd.SGDSolver`'s (``loss`` is not read).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import MulticlassFMModel
    >>> from fmlearn.solvers.sgd import SGDState
    >>> X = sp.csr_matrix(np.eye(3, dtype=np.float32)); y = np.arange(3, dtype=np.float32)
    >>> model = MulticlassFMModel.initial(3, 3, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = SoftmaxSolver("softmax", "adagrad", 0.5, 0.25, 0.0, 0.0, 0.0, None)
    >>> for _ in range(20):
    ...     loss = solver.epoch(model, X, y, np.ones(3, np.float32), SGDState.initial(model))
    >>> model.predict(X).argmax(axis=1)
    array([0, 1, 2])
    """

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed loss.

        Blocks of rows are visited in a random order drawn from ``rng``, or in storage
        order when ``rng`` is None.
        """
        block_starts, n_threads = self.blocks(X, rng)
        return sgd_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                         self.block_size, model.intercept, model.coef, model.factors,
                         state.acc_intercept, state.acc_coef, state.acc_factors, state.step,
                         self.config(model.dtype), n_threads)
