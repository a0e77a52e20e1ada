"""Alternating least squares (coordinate descent) for the FM (Rendle, ACM TIST 2012, sec. 4)."""
from dataclasses import dataclass, field

import numpy as np

from .._threads import numba_threads
from ..kernels.coordinate import (coordinate_sweep, exclusive_blocks, probit_targets,
                                  scores_and_sums, seed_generator)
from ..model import log_phi
from ..relations import RelationalRows
from .base import PointSolver


def pointwise_loss(loss, scores, y):
    """Per-row loss of scores: squared ``(s - y)^2 / 2``, probit ``-log Phi(y s)``, or ordinal
    ``-log p_y`` (``scores`` the class probabilities), float64.

    Examples
    --------
    >>> import numpy as np
    >>> pointwise_loss("squared", np.array([1.0]), np.array([3.0]))
    array([2.])
    """
    if loss == "ordinal":  # scores: class probabilities (n_classes, n_rows); y: class codes
        chosen = scores[y.astype(np.intp), np.arange(y.shape[0])]
        return -np.log(np.maximum(chosen, np.finfo(np.float64).tiny))
    scores = scores.astype(np.float64)
    if loss == "probit":
        return -log_phi(y * scores)
    d = scores - y
    return 0.5 * d * d


def block_layout(X, bounds=None):
    """The entries of CSR ``X`` ordered by column block, then row, as ``coordinate_sweep``
    reads them: ``(bounds, entry_ptr, rows, features, data)``, ``data`` None when every
    value is 1 (one-hot data: the sweep then reads no values).

    ``bounds`` are the blocks' first columns and the column count; by default the runs of
    columns no row of ``X`` holds two of (``exclusive_blocks``). Given bounds must split
    the columns at least as finely.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=np.float32))
    >>> block_layout(X)[0]
    array([0, 2, 4])
    """
    if bounds is None:
        csc = X.tocsc()
        bounds = exclusive_blocks(csc.indptr, csc.indices, X.shape[0])
    block_of_entry = np.searchsorted(bounds, X.indices, side="right") - 1
    order = np.argsort(block_of_entry, kind="stable")
    rows = np.repeat(np.arange(X.shape[0], dtype=np.uint32), np.diff(X.indptr))[order]
    block_of_entry = block_of_entry[order]
    local = (X.indices[order] - bounds[block_of_entry]).astype(np.uint32)
    entry_ptr = np.searchsorted(block_of_entry, np.arange(bounds.shape[0]))
    data = None if np.all(X.data == 1) else X.data[order]
    return bounds, entry_ptr.astype(np.int64), rows, local, data


@dataclass
class Hyperparameters:
    """The priors of a coordinate sweep: noise precision, and mean and precision per group.

    ALS keeps them fixed (``lam_*`` are the L2 penalties, means 0); Gibbs sampling
    draws them. Shapes: ``alpha`` (1,), ``mu_w``/``lam_w`` (n_groups,),
    ``mu_v``/``lam_v`` (n_groups, n_factors).
    """

    alpha: np.ndarray
    mu_w: np.ndarray
    lam_w: np.ndarray
    mu_v: np.ndarray
    lam_v: np.ndarray

    @classmethod
    def initial(cls, n_groups, n_factors, lam_w=0.0, lam_v=0.0):
        """Unit noise precision, zero means and the given precisions."""
        return cls(np.ones(1), np.zeros(n_groups), np.full(n_groups, float(lam_w)),
                   np.zeros((n_groups, n_factors)), np.full((n_groups, n_factors), float(lam_v)))

    def arrays(self):
        """The arrays in the order the sweep kernel takes them."""
        return self.alpha, self.mu_w, self.lam_w, self.mu_v, self.lam_v

    def copy(self):
        """A deep copy."""
        return Hyperparameters(*(a.copy() for a in self.arrays()))


@dataclass
class ALSSolver(PointSolver):
    """Exact coordinate-wise minimisation of ``sum_r s_r (y_hat_r - y_r)^2 + penalties``.

    Each sweep updates w0, every w_i, then every v_if layer by layer to the minimiser
    of the objective with all other parameters fixed, reading the data by column
    blocks that no row holds two of.
    The penalties are ``reg_intercept * w0^2 + reg_linear * |w|^2 + reg_factors * |V|^2``
    on the whole objective (libFM's ``-regular`` for ALS). Classification uses the
    probit link with the expected latent targets of the current model (libFM's ALS).
    The residual and factor sums are recomputed from the parameters at the start of
    every sweep, so sweeps do not accumulate rounding drift; they are held in the model
    dtype (float32 halves the memory traffic that bounds the sweep), the sums of each
    update in float64.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> X = sp.csr_matrix(np.eye(3, dtype=np.float32)); y = np.arange(3.0, dtype=np.float32)
    >>> model = FMModel.initial(3, 2, 0.1, np.float32, np.random.default_rng(0))
    >>> solver = ALSSolver("squared", 0.0, 0.0, 0.0)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(3, np.float32), state, np.random.default_rng(0))
    >>> bool(np.allclose(model.predict(X), y, atol=1e-5))
    True
    """

    loss: str
    reg_intercept: float
    reg_linear: float
    reg_factors: float
    n_threads: int = 1
    fit_intercept: bool = True
    fit_linear: bool = True
    sample = False
    _layout: tuple = field(default=None, init=False, repr=False)

    def initial_state(self, model, groups):
        """Fixed priors: one group whose precisions are the penalties."""
        return Hyperparameters.initial(1, model.factors.shape[1], self.reg_linear,
                                       self.reg_factors)

    def layout(self, X):
        """The entries of ``X`` by column block, then row (see ``block_layout``); computed
        once per matrix."""
        if self._layout is None or self._layout[0] is not X:
            self._layout = (X, block_layout(X))
        return self._layout[1]

    def sweep(self, model, X, y, sample_weight, hyper, groups, rng, sums=None):
        """One pass over all parameters of ``model`` (in place). ``sums``: the training
        scores and factor sums of ``model`` (``training_sums``), updated in place; computed
        afresh when None. Return the new training scores and factor sums."""
        seed = None
        if self.sample:
            seed = int(rng.integers(2**31))
            seed_generator(seed)
        w0 = np.array([model.intercept])
        # Relational rows: X's own columns by the layout, the blocks' through their caches.
        relations = X.packed if isinstance(X, RelationalRows) else None
        with numba_threads(self.n_threads):
            scores, q = self.training_sums(model, X) if sums is None else sums
            X = X.X if relations is not None else X
            z = self.latent_targets(model, scores, y, sample_weight, seed)
            e = (scores - z).astype(model.dtype)
            weighted = bool(np.any(sample_weight != 1))
            coordinate_sweep(self.layout(X), sample_weight.astype(np.float64), weighted, e, q, w0,
                             model.coef, model.factors, groups, hyper.arrays(),
                             float(self.reg_intercept), self.sample,
                             self.sample and self.loss == "squared", self.sample, self.n_threads,
                             self.fit_intercept, self.fit_linear, relations)
        model.intercept = float(w0[0])
        np.add(e, z, out=scores)
        return scores, q

    def training_sums(self, model, X):
        """The scores (float64) of the rows of ``X`` and their factor sums (n_factors, n_rows;
        the model's dtype), as the sweep starts from them."""
        scores = np.empty(X.shape[0])
        q = np.empty((model.factors.shape[1], X.shape[0]), dtype=model.dtype)
        with numba_threads(self.n_threads):
            if isinstance(X, RelationalRows):
                scores[:] = X.scores(model.intercept, model.coef, model.factors, q)
            else:
                scores_and_sums(X.indptr, X.indices, X.data, model.intercept, model.coef,
                                model.factors, scores, q)
        return scores, q

    def latent_targets(self, model, scores, y, sample_weight, seed=None):
        """The targets the sweep fits, float64: ``y`` (squared loss), or the probit link's
        latent targets given the current ``scores``: drawn when sampling (each row's first
        try from numpy's generator seeded by ``seed``), else expected."""
        if self.loss != "probit":
            return y.astype(np.float64)
        z = np.empty(scores.shape[0])
        normals = None if seed is None else np.random.default_rng(seed).standard_normal(z.shape[0])
        probit_targets(scores, y.astype(np.float64), z, normals)
        return z

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """One ALS sweep; return the summed weighted training loss of the updated model."""
        one_group = np.zeros(X.shape[1], dtype=np.int64)
        scores, _ = self.sweep(model, X, y, sample_weight, state, one_group, rng)
        return float(np.sum(sample_weight * pointwise_loss(self.loss, scores, y)))  # no BLAS
