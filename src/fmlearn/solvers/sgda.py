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
    :attr:`penalty_rate`. One thread.

    libFM's ``sgda`` (``fm_learn_sgd_element_adapt_reg.h``) with learning rate ``a``
    steps ``theta -= a (dL/dtheta + 2 lam_L theta)`` and ``lam_L -= a dL'/dlam_L`` for
    ``L = (y_hat - y)^2`` (regression) or the log loss, and penalties ``lam_L |theta|^2``.
    The parameters here step on SGD's objective, ``(y_hat - y)^2 / 2`` or the log loss
    plus ``lam |theta|^2 / 2``, so with ``learning_rate="constant"`` the two take the same
    steps exactly when

    - regression: ``eta0 = 2 a``, ``lam = lam_L``, penalty rate ``eta0``;
    - classification: ``eta0 = a``, ``lam = 2 lam_L``, penalty rate ``4 eta0``;

    :attr:`penalty_rate` is that rate. libFM's bias takes no penalty (give
    ``reg_intercept=0``) and its validation rows restart at the first one every epoch;
    here they cycle on (the same when the training rows are a multiple of the
    validation rows).

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

    @property
    def penalty_rate(self):
        """The penalties' step size: libFM's, ``eta0`` for the squared loss and ``4 * eta0``
        for the log loss (see the class notes)."""
        return self.eta0 * (1.0 if self.loss == "squared" else 4.0)

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
        # A warm start may bring fewer validation rows than the state's place in them.
        state.val_next[0] %= max(X_val.shape[0], 1)
        order = np.arange(X.shape[0]) if rng is None else rng.permutation(X.shape[0])
        cfg = self.config(model.dtype)
        intercept = np.array([model.intercept], dtype=model.dtype)
        sgd = state.sgd
        total = sgda_epoch(X.indptr, X.indices, X.data, y, sample_weight, order, X_val.indptr,
                           X_val.indices, X_val.data, y_val, w_val, state.val_next, intercept,
                           model.coef, model.factors, sgd.acc_intercept, sgd.acc_coef,
                           sgd.acc_factors, sgd.step, state.grad_coef, state.grad_factors,
                           state.groups, state.lam_w, state.lam_v, state.n_epochs > 0,
                           float(self.penalty_rate), cfg)
        model.intercept = float(intercept[0])
        state.n_epochs += 1
        return total
