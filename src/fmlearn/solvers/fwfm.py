"""SGD for the field-weighted FM (Pan et al., WWW 2018): AdaGrad by default, as the FFM's."""
from dataclasses import dataclass

import numpy as np

from ..kernels.fwfm import sgd_epoch
from .ffm import FFMSolver
from .sgd import SGDState


@dataclass
class FwFMState(SGDState):
    """:class:`~fmlearn.solvers.sgd.SGDState` and AdaGrad's sums of the field weights
    (starting at 1, as the others)."""

    acc_field_weights: np.ndarray

    @classmethod
    def initial(cls, model):
        """Fresh state for ``model``."""
        sgd = SGDState.initial(model)
        return cls(sgd.acc_intercept, sgd.acc_coef, sgd.acc_factors, sgd.step,
                   np.ones_like(model.field_weights))


@dataclass
class FwFMSolver(FFMSolver):
    """Per-sample SGD epochs of a :class:`~fmlearn.fwfm_model.FwFMModel`, lock-free over
    threads.

    :class:`~fmlearn.solvers.ffm.FFMSolver`'s parameters, rows and normalisation, and
    ``reg_field_weights``, the L2 penalty of the field weights (applied, as the others, to
    the weights each row uses).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.fwfm_model import FwFMModel
    >>> X = sp.csr_matrix(np.ones((4, 3), dtype=np.float32)); y = np.ones(4, np.float32)
    >>> fields = np.array([0, 1, 1], dtype=np.int32)
    >>> model = FwFMModel.initial(fields, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = FwFMSolver("squared", "adagrad", 0.1, 0.25, 0.0, 0.0, 0.0, None)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), FwFMState.initial(model))
    >>> bool(model.predict(X)[0] > 0)
    True
    """

    reg_field_weights: float = 0.0

    def initial_state(self, model, groups):
        """Fresh AdaGrad sums (``groups`` has no meaning here)."""
        return FwFMState.initial(model)

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed
        loss (NaN if a field weight is no longer finite).

        Blocks of rows are visited in a random order drawn from ``rng``, or in storage
        order when ``rng`` is None.
        """
        X = self.rows(X, model)
        block_starts, n_threads = self.blocks(X, rng)
        intercept = np.array([model.intercept], dtype=model.dtype)
        total = sgd_epoch(X.indptr, X.indices, X.data, y, sample_weight, block_starts,
                          self.block_size, model.fields, intercept, model.coef, model.factors,
                          model.field_weights, state.acc_intercept, state.acc_coef,
                          state.acc_factors, state.acc_field_weights, state.step,
                          self.config(model.dtype), model.dtype.type(self.reg_field_weights),
                          n_threads)
        model.intercept = float(intercept[0])
        return total if np.isfinite(model.field_weights).all() else float("nan")
