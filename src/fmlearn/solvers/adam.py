"""Mini-batch Adam for the second-order FM, as SageMaker's FM (MXNet's sparse FM) trains it."""
from dataclasses import dataclass

import numpy as np

from ..kernels.adam import AdamConfig, adam_epoch
from ..kernels.losses import LOGISTIC, SQUARED
from .base import PointSolver

LOSSES = {"squared": SQUARED, "logistic": LOGISTIC}


@dataclass
class AdamState:
    """What Adam carries between epochs and calls: the first and second moments of every
    parameter (zeros to start with) and ``step``, the batches stepped so far."""

    mean_intercept: np.ndarray
    var_intercept: np.ndarray
    mean_coef: np.ndarray
    var_coef: np.ndarray
    mean_factors: np.ndarray
    var_factors: np.ndarray
    step: np.ndarray

    @classmethod
    def initial(cls, model):
        """Fresh state for ``model``."""
        bias = np.zeros(1, dtype=model.dtype)
        return cls(bias, bias.copy(), np.zeros_like(model.coef), np.zeros_like(model.coef),
                   np.zeros_like(model.factors), np.zeros_like(model.factors),
                   np.zeros(1, dtype=np.int64))


@dataclass
class AdamSolver(PointSolver):
    """Adam over mini-batches of ``batch_size`` rows, with a learning rate and a weight
    decay per term (MXNet's ``lr_mult``/``wd_mult`` at base rate 1) and lazy updates of the
    rows of ``w`` and ``V`` a batch touches (:mod:`fmlearn.kernels.adam`).

    The rows are read in storage order in batches of consecutive rows; the caller
    shuffles the rows once per fit and ``epoch`` takes a fresh random order of the
    batches. ``rescale_grad`` None scales each batch's gradient by 1 / its rows (MXNet's
    Module: 1 / ``batch_size``). Scores are not clipped inside the loss (MXNet's
    ``LinearRegressionOutput``).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> X = sp.csr_matrix(np.eye(4, dtype=np.float32)); y = np.ones(4, np.float32)
    >>> model = FMModel.initial(4, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = AdamSolver("squared", 0.1, 0.01, 0.01, 0.0, 0.0, 0.0, None, batch_size=2)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(4, np.float32), state)
    >>> int(state.step[0]), loss > 0
    (2, True)
    """

    loss: str
    lr_intercept: float
    lr_linear: float
    lr_factors: float
    reg_intercept: float
    reg_linear: float
    reg_factors: float
    clip_gradient: float | None
    batch_size: int = 1000
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    rescale_grad: float | None = None
    n_threads: int = 1
    fit_intercept: bool = True
    fit_linear: bool = True

    def initial_state(self, model, groups):
        """Zero moments (``groups`` has no meaning here)."""
        return AdamState.initial(model)

    def config(self, dtype):
        """The kernel's hyperparameters."""
        tp = np.dtype(dtype).type
        clip = np.inf if self.clip_gradient is None else self.clip_gradient
        return AdamConfig(LOSSES[self.loss], float(self.lr_intercept), float(self.lr_linear),
                          float(self.lr_factors), tp(self.reg_intercept), tp(self.reg_linear),
                          tp(self.reg_factors), float(self.beta1), float(self.beta2),
                          tp(self.eps), -1.0 if self.rescale_grad is None
                          else float(self.rescale_grad), tp(clip), self.fit_intercept,
                          self.fit_linear)

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """Update ``model`` and ``state`` in place by one pass over ``X``; return the summed
        loss. Batches are visited in a random order drawn from ``rng``, or in storage order
        when ``rng`` is None."""
        n_batches = -(-X.shape[0] // self.batch_size)
        order = np.arange(n_batches) if rng is None else rng.permutation(n_batches)
        intercept = np.array([model.intercept], dtype=model.dtype)
        total = adam_epoch(X.indptr, X.indices, X.data, y, sample_weight,
                           order.astype(np.int64) * self.batch_size, self.batch_size,
                           intercept, model.coef, model.factors, state.mean_intercept,
                           state.var_intercept, state.mean_coef, state.var_coef,
                           state.mean_factors, state.var_factors, state.step,
                           self.config(model.dtype), self.n_threads)
        model.intercept = float(intercept[0])
        return total
