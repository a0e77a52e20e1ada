"""Mean-field variational Bayes for the FM (myFM's ``VariationalFMRegressor`` and
``VariationalFMClassifier``; the model of Freudenthaler et al. 2011 with a factorised posterior)."""
from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma, gammaln, log_ndtr

from .._threads import numba_threads
from ..kernels.coordinate import probit_targets, scores_and_sums, update_intercept, update_layer
from ..kernels.variational import update_factors, variance_sums
from .als import ALSSolver, Hyperparameters, pointwise_loss

#: Shape and rate of the Gamma hyperpriors of the noise precision and of each group's
#: precision (libFM's and the Gibbs sampler's alpha_0 = beta_0 = 1, halved).
PRIOR_SHAPE = PRIOR_RATE = 0.5


@dataclass
class VBState:
    """The variational posterior besides the means (which are the model's parameters).

    ``hyper`` holds ``E[alpha]``, the means of ``q(mu)`` and ``E[lambda]`` per group, as the
    sweep kernels read them; ``noise`` is ``(shape, rate)`` of ``q(alpha)`` (regression);
    ``mu_*_var`` the variances of ``q(mu)`` and ``lam_*_rate`` the rates of ``q(lambda)``,
    whose shapes ``(1 + n_g + 1) / 2`` follow from the group sizes. The variances of the
    parameters are float64; ``elbo`` holds the evidence lower bound after each iteration.
    """

    hyper: Hyperparameters
    groups: np.ndarray
    intercept_var: float
    coef_var: np.ndarray
    factors_var: np.ndarray
    noise: np.ndarray
    mu_w_var: np.ndarray
    lam_w_rate: np.ndarray
    mu_v_var: np.ndarray
    lam_v_rate: np.ndarray
    elbo: list = field(default_factory=list)


def _gamma_terms(shape, rate):
    """``E[log p(lambda)] + H[q(lambda)]`` of ``q = Gamma(shape, rate)`` under the prior."""
    e_log = digamma(shape) - np.log(rate)
    return ((PRIOR_SHAPE - 1.0) * e_log - PRIOR_RATE * shape / rate
            + PRIOR_SHAPE * np.log(PRIOR_RATE) - gammaln(PRIOR_SHAPE)
            + shape - np.log(rate) + gammaln(shape) + (1.0 - shape) * digamma(shape))


def _group_sums(groups, values, n_groups):
    """Sums of ``values`` (n_features,) or (n_features, n_layers) over each group's rows."""
    sums = np.zeros((n_groups, *values.shape[1:]))
    np.add.at(sums, groups, values)
    return sums


def _update_prior(values, variances, groups, counts, mu, mu_var, lam, lam_rate):
    """Set ``q(lambda_g)``, then ``q(mu_g)`` (in place) to their optima, for the layer
    ``values`` (n_features,) or each layer ``values[:, f]`` (their priors are independent):
    ``mu_g | lambda_g ~ N(0, 1 / lambda_g)`` and ``lambda_g ~ Gamma(1/2, 1/2)``."""
    counts = counts.reshape(-1, *([1] * (values.ndim - 1)))
    spread = (values - mu[groups]) ** 2 + variances + mu_var[groups]
    lam_rate[:] = PRIOR_RATE + 0.5 * (_group_sums(groups, spread, mu.shape[0]) + mu * mu
                                      + mu_var)
    lam[:] = (PRIOR_SHAPE + 0.5 * (counts + 1.0)) / lam_rate
    mu_var[:] = 1.0 / (lam * (counts + 1.0))
    mu[:] = _group_sums(groups, values, mu.shape[0]) / (counts + 1.0)


def _layer_elbo(values, variances, groups, counts, mu, mu_var, lam_rate):
    """The bound's terms of the parameters of one layer (or of layers side by side, as in
    ``_update_prior``), their ``q(mu)`` and ``q(lambda)``."""
    shape = PRIOR_SHAPE + 0.5 * (counts.reshape(-1, *([1] * (values.ndim - 1))) + 1.0)
    e_lam, e_log = shape / lam_rate, digamma(shape) - np.log(lam_rate)
    spread = (values - mu[groups]) ** 2 + variances + mu_var[groups]
    total = np.sum(0.5 * e_log[groups] - 0.5 * e_lam[groups] * spread + 0.5 * np.log(variances))
    total += np.sum(0.5 * e_log - 0.5 * e_lam * (mu * mu + mu_var) + 0.5 * np.log(mu_var))
    return total + np.sum(_gamma_terms(shape, lam_rate)) + 0.5 * (values.size + mu.size)


@dataclass
class VBSolver(ALSSolver):
    """Coordinate ascent of the evidence lower bound (ELBO) of the Bayesian FM.

    The posterior is approximated by independent Gaussians ``q(w0) q(w_i) q(v_if)``, a Gamma
    ``q(alpha)`` for the noise precision and, per feature group and layer, a Gaussian
    ``q(mu)`` and a Gamma ``q(lambda)`` (the Gibbs sampler's priors). Each iteration sets
    ``q(alpha)``, ``q(w0)``, then layer by layer ``q(lambda)``, ``q(mu)`` and the layer's
    parameters to their optima given the rest, in the Gibbs sampler's order; each step
    raises the ELBO, which is computed after every iteration. The parameters' updates are
    the ALS updates with the other parameters' variances added to ``sum h^2`` and
    ``sum h e`` (:mod:`fmlearn.kernels.variational`). Classification uses the probit link
    with the expected latent targets of the current means (``alpha = 1``).

    Weighted sums are taken by NumPy's ``sum`` rather than ``dot``, whose BLAS threads
    cost milliseconds per call on a busy machine. The sweep runs in float64; the model keeps the means in its dtype, so in float32 the
    rounding of the means can lower the ELBO by rounding-sized amounts near convergence.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn.model import FMModel
    >>> X = sp.csr_matrix(np.eye(3)); y = np.arange(3.0)
    >>> model = FMModel.initial(3, 2, 0.1, np.float64, np.random.default_rng(0))
    >>> solver = VBSolver("squared", 0.0, 0.0, 0.0)
    >>> state = solver.initial_state(model, None)
    >>> loss = solver.epoch(model, X, y, np.ones(3), state)
    >>> loss = solver.epoch(model, X, y, np.ones(3), state)
    >>> bool(state.elbo[1] >= state.elbo[0])
    True
    """

    init_std: float = 0.1
    _stats: tuple = field(default=(None, None, None), init=False, repr=False)
    _squares: tuple = field(default=(None, None, None), init=False, repr=False)

    def initial_state(self, model, groups):
        """Zero means, unit precisions; the factors' variances start at ``init_std**2`` (as
        myFM's), the weights' at 0 (they start at 0)."""
        n_features, k = model.factors.shape
        groups = np.zeros(n_features, dtype=np.int64) if groups is None else groups
        n_groups = int(groups.max()) + 1 if n_features else 1
        return VBState(Hyperparameters.initial(n_groups, k, 1.0, 1.0), groups, 0.0,
                       np.zeros(n_features), np.full((n_features, k), self.init_std ** 2),
                       np.ones(2), np.ones(n_groups), np.ones(n_groups), np.ones((n_groups, k)),
                       np.ones((n_groups, k)))

    def statistics(self, model, state, X, out=None):
        """Scores of the means, factor sums ``q``, ``S``, ``T`` (float64, (k, n_rows)) and
        the posterior variance of each row's score (:func:`variance_sums`), written into the
        arrays of ``out`` (an earlier result for ``X``) when given."""
        n_rows, k = X.shape[0], model.factors.shape[1]
        if out is None:
            out = (np.empty(n_rows), np.empty((k, n_rows)), np.empty((k, n_rows)),
                   np.empty((k, n_rows)), np.empty(n_rows))
        scores, q, S, T, var = out
        q_model = q if model.dtype == np.float64 else np.empty((k, n_rows), dtype=model.dtype)
        with numba_threads(self.n_threads):
            scores_and_sums(X.indptr, X.indices, X.data, model.intercept, model.coef,
                            model.factors, scores, q_model)
        if q_model is not q:
            q[:] = q_model
        variance_sums(X.indptr, X.indices, X.data, state.intercept_var, state.coef_var,
                      model.factors, state.factors_var, q, S, T, var)
        return out

    def squares(self, X, sample_weight):
        """``sum_r s_r x_ri^2`` of each feature (float64); computed once per matrix."""
        X_seen, weight_seen, squares = self._squares
        if X_seen is not X or weight_seen is not sample_weight:
            squares = X.multiply(X).T @ sample_weight.astype(np.float64)
            self._squares = (X, sample_weight, squares)
        return squares

    def noise_variance(self, state):
        """``E[1 / alpha]`` under ``q(alpha)``; 0 for classification (the probit's unit
        noise is in its link)."""
        if self.loss == "probit":
            return 0.0
        shape, rate = state.noise
        return float(rate / (shape - 1.0))

    def epoch(self, model, X, y, sample_weight, state, rng=None):
        """One coordinate-ascent iteration; appends the ELBO to ``state.elbo`` and returns
        the summed weighted training loss of the posterior means."""
        X_seen, model_seen, stats = self._stats
        if X_seen is not X or model_seen is not model:
            stats = self.statistics(model, state, X)
        scores, q, S, T, var = stats
        s = sample_weight.astype(np.float64)
        weighted = bool(np.any(s != 1))
        if self.loss == "probit":
            z = np.empty(X.shape[0])
            probit_targets(scores, y.astype(np.float64), z, None)
        else:
            z = y.astype(np.float64)
        e = scores - z
        hyper, groups = state.hyper, state.groups
        counts = np.bincount(groups, minlength=hyper.mu_w.shape[0]).astype(np.float64)
        if self.loss == "squared":
            state.noise[:] = (PRIOR_SHAPE + 0.5 * s.sum(),
                              PRIOR_RATE + 0.5 * np.sum(s * (e * e + var)))
            hyper.alpha[0] = state.noise[0] / state.noise[1]
        alpha = float(hyper.alpha[0])
        if self.fit_intercept:
            w0 = np.array([float(model.intercept)])
            update_intercept(w0, e, s, weighted, alpha, float(self.reg_intercept), False)
            model.intercept = float(w0[0])
            state.intercept_var = float(1.0 / (alpha * s.sum() + self.reg_intercept))
        layout = self.layout(X)
        if self.fit_linear:
            _update_prior(model.coef.astype(np.float64), state.coef_var, groups, counts,
                          hyper.mu_w, state.mu_w_var, hyper.lam_w, state.lam_w_rate)
            w = model.coef.astype(np.float64)
            with numba_threads(self.n_threads):
                update_layer(w, None, layout, s, weighted, e, groups, alpha, hyper.mu_w,
                             hyper.lam_w, False, 1)
            model.coef[:] = w
            state.coef_var[:] = 1.0 / (alpha * self.squares(X, sample_weight)
                                       + hyper.lam_w[groups])
        # A layer's priors depend on its own parameters only: all are set before the layers.
        V = model.factors.astype(np.float64)
        _update_prior(V, state.factors_var, groups, counts, hyper.mu_v, state.mu_v_var,
                      hyper.lam_v, state.lam_v_rate)
        update_factors(V, state.factors_var, q, S, T, layout, s, weighted, e, groups, alpha,
                       hyper.mu_v, hyper.lam_v)
        model.factors[:] = V
        stats = self.statistics(model, state, X, stats)
        self._stats = (X, model, stats)
        state.elbo.append(self.elbo(model, state, stats, y, s, counts))
        return float(np.sum(sample_weight * pointwise_loss(self.loss, stats[0], y)))

    def elbo(self, model, state, stats, y, s, counts):
        """The evidence lower bound of the current posterior, up to a constant."""
        scores, var = stats[0], stats[4]
        hyper, groups = state.hyper, state.groups
        if self.loss == "probit":  # q(z) at its optimum: E log N(z; score, 1) + H = log Phi
            total = np.sum(s * (log_ndtr(y * scores) - 0.5 * var))
        else:
            shape, rate = state.noise
            e = scores - y
            total = (0.5 * s.sum() * (digamma(shape) - np.log(rate))
                     - 0.5 * shape / rate * np.sum(s * (e * e + var))
                     + float(_gamma_terms(shape, rate)))
        if self.fit_intercept:
            v0, reg0 = state.intercept_var, self.reg_intercept
            total += 0.5 * np.log(v0)
            if reg0 > 0:
                total += 0.5 * np.log(reg0) - 0.5 * reg0 * (model.intercept ** 2 + v0)
        if self.fit_linear:
            total += _layer_elbo(model.coef.astype(np.float64), state.coef_var, groups, counts,
                                 hyper.mu_w, state.mu_w_var, state.lam_w_rate)
        total += _layer_elbo(model.factors.astype(np.float64), state.factors_var, groups, counts,
                             hyper.mu_v, state.mu_v_var, state.lam_v_rate)
        return float(total)
