"""SGD for the field-aware FM (Juan et al., RecSys 2016): AdaGrad by default, as LIBFFM."""
from dataclasses import dataclass, field

import numpy as np

from ..kernels.ffm import sgd_epoch
from ..model import normalize_rows
from .sgd import SGDSolver


@dataclass
class FFMSolver(SGDSolver):
    """Per-sample SGD epochs of an :class:`~fmlearn.model.FFMModel`, lock-free over threads.

    The parameters and the row order are :class:`~fmlearn.solvers.sgd.SGDSolver`'s; the
    state is its :class:`~fmlearn.solvers.sgd.SGDState`. Rows are scaled to unit norm
    first when the model ``normalize``-s them, once per matrix.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FFMModel
    >>> from fmlearn.solvers.sgd import SGDState
    >>> from fmlearn._validation import with_fm_indices  # the kernels' int64 row pointers
    >>> X = with_fm_indices(sp.csr_matrix(np.ones((4, 3), dtype=np.float32)))
    >>> y = np.ones(4, np.float32)
    >>> fields = np.array([0, 1, 1], dtype=np.int32)
    >>> model = FFMModel.initial(fields, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = FFMSolver("squared", "adagrad", 0.1, 0.25, 0.0, 0.0, 0.0, None)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), SGDState.initial(model))
    >>> bool(model.predict(X)[0] > 0)
    True
    """

    _normalized: tuple = field(default=None, init=False, repr=False)

    def rows(self, X, model):
        """``X`` as the kernel reads it: normalised if the model says so (cached per matrix)."""
        if not model.normalize:
            return X
        if self._normalized is None or self._normalized[0] is not X:
            self._normalized = (X, normalize_rows(X))
        return self._normalized[1]

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed loss.

        Blocks of rows are visited in a random order drawn from ``rng``, or in storage
        order when ``rng`` is None.
        """
        X = self.rows(X, model)
        block_starts, n_threads = self.blocks(X, rng)
        intercept = np.array([model.intercept], dtype=model.dtype)
        hot_slot, hot = self.hot_features(X) if n_threads > 1 else (np.zeros(0, np.int32),
                                                                    np.zeros(0, np.int64))
        total = sgd_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                          self.block_size, model.fields, intercept, model.coef, model.factors,
                          state.acc_intercept, state.acc_coef, state.acc_factors, hot_slot,
                          hot, state.step, self.config(model.dtype), n_threads)
        model.intercept = float(intercept[0])
        return total
