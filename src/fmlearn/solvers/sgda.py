"""SGD with adaptive regularisation: penalties learned on validation rows (Rendle, WSDM 2012)."""
from dataclasses import dataclass

import numpy as np

from ..kernels.sgda import sgda_epoch
from .sgd import SGDSolver, SGDState


@dataclass
class SGDAState:
    """The penalties being learned, the last gradient of every parameter, and the cursor.

    ``sgd`` holds the learning-rate state (AdaGrad's sums, the sample count);
    ``lam_w`` (n_groups,) and ``lam_v`` (n_groups, n_factors) are the penalties of
    the linear weights and of each factor layer per feature group; ``grad_coef`` and
    ``grad_factors`` hold each parameter's data gradient from its last training step;
    ``val_next`` is the next validation row; ``n_epochs`` counts epochs run.
    """

    sgd: SGDState
    lam_w: np.ndarray
    lam_v: np.ndarray
    groups: np.ndarray
    grad_coef: np.ndarray
    grad_factors: np.ndarray
    val_next: np.ndarray
    n_epochs: int = 0


@dataclass
class SGDASolver(SGDSolver):
    """Per-sample SGD whose L2 penalties are tuned while it runs; the parameters are
    :class:`~fmlearn.solvers.sgd.SGDSolver`'s, and ``validation``.

    After each training row's step, the next row of ``validation`` (``(X, y, weight)``)
    steps the penalties down the gradient of its loss after the look-ahead update
    (see :mod:`fmlearn.kernels.sgda`). As in libFM the penalties start at ``reg_linear``
    and ``reg_factors`` and the first epoch leaves them there, while the gradients
    they need are being recorded. ``learning_rate`` is the schedule of the parameter
    steps, as for :class:`~fmlearn.solvers.sgd.SGDSolver`; the penalties step by
    ``eta0``. One thread.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32)); y = np.ones(4, np.float32)
    >>> model = FMModel.initial(4, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = SGDASolver("squared", "constant", 0.05, 0.25, 0.0, 0.0, 0.0, None,
    ...                     validation=(X, y, np.ones(4, np.float32)))
    >>> state = solver.initial_state(model, None)
    >>> for _ in range(2):
    ...     loss = solver.epoch(model, X, y, np.ones(4, np.float32), state)
    >>> state.lam_v.shape
    (1, 2)
    """

    validation: tuple | None = None

    def initial_state(self, model, groups):
        """Penalties at their starting values for each group (``groups``: ids 0..G-1, or None)."""
        n_features, k = model.factors.shape
        groups = np.zeros(n_features, dtype=np.int64) if groups is None else groups
        n_groups = int(groups.max()) + 1 if n_features else 1
        return SGDAState(SGDState.initial(model), np.full(n_groups, float(self.reg_linear)),
                         np.full((n_groups, k), float(self.reg_factors)), groups,
                         np.zeros_like(model.coef), np.zeros_like(model.factors),
                         np.zeros(1, dtype=np.int64))

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed loss.

        Rows are visited in a random order drawn from ``rng``, or in storage order.
        """
        if self.validation is None:
            raise ValueError("solver='sgda' learns its penalties on validation rows: pass "
                             "eval_set to fit, or let it hold out validation_fraction.")
        X_val, y_val, w_val = self.validation
        order = np.arange(X.shape[0]) if rng is None else rng.permutation(X.shape[0])
        cfg = self.config(model.dtype)
        intercept = np.array([model.intercept], dtype=model.dtype)
        sgd = state.sgd
        total = sgda_epoch(X.indptr, X.indices, X.data, y, sample_weight, order, X_val.indptr,
                           X_val.indices, X_val.data, y_val, w_val, state.val_next, intercept,
                           model.coef, model.factors, sgd.acc_intercept, sgd.acc_coef,
                           sgd.acc_factors, sgd.step, state.grad_coef, state.grad_factors,
                           state.groups, state.lam_w, state.lam_v, state.n_epochs > 0, cfg)
        model.intercept = float(intercept[0])
        state.n_epochs += 1
        return total
