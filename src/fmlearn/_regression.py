"""Factorization machine regression (squared loss)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import RegressorMixin

from ._base import BaseFM, partial_fit_available, with_solver_defaults

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._typing import (FloatDType, MatrixLike, RandomStateLike, Schedule, Scoring, Solver,
                          available_if, fit_context as _fit_context)
else:
    from sklearn.base import _fit_context
    from sklearn.utils.metaestimators import available_if


class FMRegressionMixin(RegressorMixin):
    """The squared loss, target clipping and ``predict`` of the FM-family regressors."""

    _loss = "squared"
    target_range_: tuple[float, float]

    def _learn_target_range(self, target: NDArray[Any], reset: bool) -> None:
        low, high = float(target.min()), float(target.max())
        if not reset:
            low, high = min(low, self.target_range_[0]), max(high, self.target_range_[1])
        self.target_range_ = (low, high)

    def _target_range(self) -> tuple[float, float] | None:
        return self.target_range_ if self.clip_predictions else None

    def _finish_scores(self, scores: NDArray[Any]) -> NDArray[Any]:
        if self.clip_predictions:
            return np.clip(scores, *self.target_range_).astype(scores.dtype, copy=False)
        return scores

    def _encode_y(self, y: ArrayLike, classes: ArrayLike | None = None) -> NDArray[Any]:
        return np.asarray(y, dtype=self.dtype)

    def _decode_y(self, y: NDArray[Any]) -> NDArray[Any]:
        return y

    _validation_metric = ("rmse", -1)

    def _validation_loss(self, scores: NDArray[Any], y: NDArray[Any],
                         sample_weight: NDArray[Any]) -> float:
        err = scores.astype(np.float64) - y
        return -float(np.sqrt(np.average(err * err, weights=sample_weight)))

    @available_if(partial_fit_available)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: MatrixLike, y: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> Self:
        """Run one epoch over ``X``, starting from the current model (or a new one).

        The parameters are updated in place, so that training on many chunks (see
        :func:`fmlearn.io.partial_fit_file`) copies nothing; if the epoch diverges the
        estimator is reset to unfitted and a ``ValueError`` says why.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRegressor
        >>> reg = FMRegressor(random_state=0).partial_fit(np.eye(3), [1.0, 2.0, 3.0])
        >>> reg.n_iter_
        1
        """
        return self._partial_fit(X, y, sample_weight, None)

    @overload
    def predict(self, X: MatrixLike, relations: list[Any] | None = None,
                return_std: Literal[False] = False) -> NDArray[np.floating[Any]]: ...

    @overload
    def predict(self, X: MatrixLike, relations: list[Any] | None = None, *,
                return_std: Literal[True]) -> tuple[NDArray[np.floating[Any]],
                                                    NDArray[np.float64]]: ...

    def predict(self, X: MatrixLike, relations: list[Any] | None = None,
                return_std: bool = False) -> Any:
        """Predicted targets for the rows of ``X`` (with their ``relations``, the
        :class:`~fmlearn.RelationBlock` list of a model fitted with them).

        With ``return_std`` (``solver="vb"``), also the standard deviation of each row's
        target under the variational posterior, ``sqrt(Var[score] + E[1 / alpha])``, as
        scikit-learn's ``BayesianRidge`` and ``GaussianProcessRegressor`` return it: a
        tuple ``(mean, std)``; the mean is what ``predict`` returns, clipped to
        ``target_range_``, the deviation is not.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRegressor
        >>> FMRegressor(random_state=0).fit(np.eye(2), [1.0, 3.0]).predict(np.eye(2)).shape
        (2,)
        """
        mean = self._decision(X, relations)
        if not return_std:
            return mean
        return mean, self._predictive_std(X, relations)


class FMRegressor(FMRegressionMixin, BaseFM):
    """Factorization machine regressor.

    Predicts ``w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j`` and fits it to
    the squared loss by stochastic gradient descent, alternating least squares, or
    Bayesian inference by Gibbs sampling (MCMC, libFM's default learner, which needs
    neither a learning rate nor regularisation: each feature group's prior is learned).

    Parameters
    ----------
    n_factors : int, default=8
        Length k of each feature's latent vector; 0 gives a linear model.
    order : int, default=2
        The highest order of interactions. 3 and above make a higher-order FM (Blondel
        et al., NIPS 2016): the ANOVA kernel of each order t <= ``order`` with factors of
        its own, evaluated by a dynamic programme in O(order**2 * k * nnz) per row and
        learned by ``solver="sgd"`` only; ``factors_`` then has shape
        (order - 1, n_features, n_factors).
    solver : {"sgd", "sgda", "als", "mcmc", "adam", "ftrl", "vb"}, default="sgd"
        The learner. ``"sgd"``: per-sample gradient steps (``learning_rate``,
        ``eta0``, ``reg_*``). ``"sgda"``: SGD whose penalties on ``w`` and on each
        factor layer, one per feature group, are learned on validation rows
        (``eval_set``, else ``validation_fraction`` held out) while it trains
        (Rendle, WSDM 2012; libFM's ``-method sgda``); ``reg_linear`` and
        ``reg_factors`` are where they start. ``"als"``: exact coordinate descent,
        one sweep over all parameters per epoch, no learning rate; ``reg_*`` penalise the whole
        objective ``sum (y_hat - y)**2 + reg * theta**2`` (libFM's ALS), so they are
        larger than for SGD (their ``"auto"`` values differ accordingly).
        ``"mcmc"``: Gibbs sampling with Normal-Gamma hyperpriors per feature group
        (``feature_groups`` in ``fit``); predictions average the kept samples.
        ``"vb"``: variational Bayes of the same model (myFM's ``VariationalFMRegressor``):
        a Gaussian posterior of each parameter, independent of the others, fitted by
        coordinate ascent of the evidence lower bound (``elbo_``, which never decreases);
        the means are the model, their variances ``coef_var_`` and ``factors_var_``, and
        ``predict(X, return_std=True)`` gives the predictive standard deviation.
        ``"adam"``: SageMaker's FM learner (MXNet's sparse FM): Adam over
        mini-batches of ``batch_size`` rows with a rate per term (``lr_intercept``,
        ``lr_linear``, ``lr_factors``), ``reg_*`` as MXNet's weight decay (added to
        the batch's mean gradient), and lazy updates of the weights and factors of
        the features a batch holds; its ``"auto"`` values are SageMaker's defaults.
        ``"ftrl"``: per-row FTRL-Proximal (McMahan et al., KDD 2013; xLearn's
        ``opt='ftrl'``) on every coordinate, with ``eta0`` as its ``alpha``, ``beta``,
        ``l1_linear``/``l1_factors`` as its L1 and ``reg_*`` as its L2 strengths.
        SGDA runs on one thread; ALS and MCMC read the data by column and run on one
        thread, apart from the prediction passes. When the factors and their AdaGrad
        sums outgrow the caches (8 MiB), ``"sgd"`` (``order=2``, one score per row)
        trains with the features renumbered by frequency and numbers them back at the
        end: the same parameters, faster epochs (with ``shuffle=False`` it copies the
        column indices to do so).
    max_iter : int, default=100
        Maximum number of epochs (passes over the training rows; for MCMC the
        number of samples drawn).
    tol : float or None, default=1e-4
        Stop when the training loss (or, with ``early_stopping``, the validation
        score) has not improved by ``tol`` for ``n_iter_no_change`` epochs; None
        runs all ``max_iter`` epochs unless ``early_stopping`` is set. MCMC always
        draws ``max_iter`` samples; VB watches its ELBO per training row instead of the
        loss (myFM's VB runs all its iterations: ``tol=None``).
    learning_rate : {"adagrad", "constant", "invscaling"}, default="adagrad"
        Step size: AdaGrad's per-coordinate ``eta0 / sqrt(1 + sum g**2)``, a
        constant ``eta0``, or ``eta0 / t**power_t`` after ``t`` samples.
    eta0 : float, default=0.1
        Initial learning rate.
    power_t : float, default=0.25
        Exponent of the inverse-scaling schedule.
    reg_intercept : float, default=0
        L2 penalty on the bias.
    reg_linear, reg_factors : float or "auto", default="auto"
        L2 penalties on the linear weights and on the factors: SGD applies them to the
        parameters each sample touches, ALS to the whole sum of squared errors, so good
        values differ by orders of magnitude. ``"auto"`` (resolved in ``fit``) is 1e-3
        and 1e-2 for SGD, 1e-5 and 1e-5 for SGDA (where its learned penalties start),
        3 and 10 for ALS, 1e-3 and 1e-5 for Adam (SageMaker's ``linear_wd`` and
        ``factors_wd``); MCMC samples its penalties from their priors and uses neither.
        With ``"auto"`` and ``n_factors=10``, SGD (``early_stopping=True``), ALS and
        MCMC reach a test RMSE of 0.93 or less on MovieLens 100K (bench/defaults.py).
    fit_intercept, fit_linear : bool, default=True
        Learn the bias w0 and the linear weights w; off, they stay 0 (libFM's
        ``-dim '0,0,k'``). With both off and ``n_factors > 0`` the model is a pure
        pairwise-interaction model.
    init_std : float or "auto", default="auto"
        Standard deviation of the normal distribution the factors start from;
        ``"auto"`` is 0.01 for SGD, SGDA and FTRL, 0.1 (libFM's) for ALS and MCMC, whose
        chain mixes faster from it, 0.001 for Adam (SageMaker's ``factors_init_sigma``).
    clip_gradient : float or None, default=None
        Clip every gradient coordinate to ``[-clip_gradient, clip_gradient]``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (or use ``eval_set``), stop
        when the validation score stops improving, and keep the best epoch's model.
        Not available with MCMC.
    validation_fraction : float, default=0.1
        Share of the training rows held out for early stopping.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    scoring : str, callable or None, default=None
        Validation score (higher is better): None is the negative RMSE, otherwise
        a scikit-learn scorer name or callable.
    shuffle : bool, default=True
        SGD: shuffle the rows once per fit and the order of row blocks every epoch.
    warm_start : bool, default=False
        Continue from the previous fit's parameters and learning-rate state; MCMC
        continues the same chain (same sampler state and random stream), so two
        warm-started fits of 50 samples equal one fit of 100; for that its state keeps
        the training rows' scores and factor sums (``n_rows * (n_factors + 1)`` numbers).
    n_jobs : int or None, default=None
        Threads for training (lock-free updates) and prediction; None means 1, -1 all.
        ``n_jobs=1`` with a fixed ``random_state`` is exactly reproducible.
    random_state : int, RandomState or None, default=None
        Seed for the initial factors, the shuffles and the validation split.
    verbose : int, default=0
        1: a progress bar with the loss and the validation score per epoch; 2 or more: one
        line per epoch on stderr instead (for logs).
    dtype : {"float32", "float64"}, default="float32"
        Floating type of the parameters and of the SGD computation (ALS and MCMC
        accumulate in float64 and store parameters in ``dtype``).
    burn_in : int or "auto", default="auto"
        MCMC: the first ``burn_in`` samples of the chain are drawn and discarded;
        ``"auto"`` is a tenth of ``max_iter`` of the first fit (warm starts continue
        the same chain with the same burn-in).
    n_kept_samples : int or None, default=None
        MCMC: keep at most this many of the latest samples for prediction (None keeps
        all after ``burn_in``). The model holds ``n_kept_samples * n_features *
        (n_factors + 1)`` numbers of ``dtype``, e.g. 100 samples of 10,000 features
        with 32 factors in float32 take 132 MB; prediction costs one FM pass per
        kept sample.
    clip_predictions : bool, default=True
        Clip predictions to the range of the training targets, in ``predict`` and
        inside the loss during training, as libFM does: a prediction already past
        the bound on the target's side gets no further push (Adam follows MXNet's
        unclipped loss instead); MCMC clips each sample's
        prediction before averaging them, as libFM's MCMC does. Helps bounded targets
        (ratings, -1/+1 labels); set False to extrapolate beyond the seen range.
    lr_intercept, lr_linear, lr_factors : float, default=0.1, 0.001, 0.0001
        Adam: the learning rates of the bias, the linear weights and the factors
        (SageMaker's ``bias_lr``, ``linear_lr``, ``factors_lr``, and their defaults);
        the other solvers use ``eta0``.
    batch_size : int, default=1000
        Adam: rows per mini-batch (SageMaker's ``mini_batch_size``); batches are
        consecutive rows of the once-shuffled data, visited in a new random order
        every epoch.
    beta1, beta2, eps : float, default=0.9, 0.999, 1e-8
        Adam: the decay of the first and second moments and the term added to the
        root of the second in the step's denominator.
    rescale_grad : float or "auto", default="auto"
        Adam: the factor of a batch's summed gradient before the penalty and the
        clipping; ``"auto"`` is 1 / the rows in the batch (MXNet's 1 / batch_size).
    init_intercept, init_linear, init_factors : tuple (method, number) or None, default=None
        How the bias, the linear weights and the factors start (``order=2``):
        ``("normal", sigma)``, ``("uniform", scale)`` for U(-scale, scale), or
        ``("constant", value)``; SageMaker's ``*_init_method`` with ``*_init_sigma``,
        ``*_init_scale``, ``*_init_value``. None: the bias and weights start at 0,
        the factors from N(0, ``init_std**2``). Terms switched off by
        ``fit_intercept``/``fit_linear`` stay 0.
    beta : float, default=1.0
        FTRL: the ``beta`` of the per-coordinate rate ``alpha / (beta + sqrt(n))``
        (``alpha`` is ``eta0``, ``n`` the coordinate's summed squared gradients).
    l1_linear, l1_factors : float, default=0.0
        FTRL: the L1 strengths of the linear weights and of the factors (the paper's and
        xLearn's ``lambda_1``; the factors' is 0 by default, as in xLearn, and none is
        applied to the bias). A weight whose ``|z|`` stays within its L1 strength is
        exactly 0, so ``l1_linear > 0`` gives sparse ``coef_``. Their L2 strengths
        (``lambda_2``) are ``reg_intercept``, ``reg_linear`` and ``reg_factors``, added
        once to a coordinate's summed loss rather than at every row, so their ``"auto"``
        values are 1e-3 and 1. Named after ``reg_*``, one per term, as the other
        solvers' penalties are.

    Attributes
    ----------
    model_ : FMModel or FMSamples
        The learned parameters; for MCMC the kept posterior samples.
    intercept_ : float
        The bias w0 (MCMC: its posterior mean).
    coef_ : ndarray of shape (n_features,)
        The linear weights (MCMC: posterior means).
    factors_ : ndarray of shape (n_features, n_factors)
        The latent factors (MCMC: posterior means).
    n_iter_ : int
        Epochs run by the last fit.
    t_ : int
        Training samples seen in all epochs so far.
    loss_curve_ : list of float
        Mean weighted training loss ``(y_pred - y)**2 / 2`` per epoch: for SGD each
        row's loss just before its update, for ALS after the sweep, for MCMC of the
        prediction averaged over the samples kept so far.
    validation_scores_ : list of float or None
        Validation score after each epoch, when there is validation data (MCMC: of
        the averaged prediction, libFM's running test RMSE).
    hyperparameter_trace_ : dict of ndarray
        MCMC only: the noise precision and each group's prior means and
        precisions, one row per iteration.
    regularization_ : dict of ndarray
        SGDA only: the learned penalties, ``reg_linear`` per feature group and
        ``reg_factors`` per group and factor layer.
    elbo_ : ndarray of shape (n_iter,)
        VB only: the evidence lower bound after each iteration, which never decreases.
    intercept_var_, coef_var_, factors_var_ : float, ndarray
        VB only: the posterior variances of the bias, the linear weights and the factors,
        whose means are ``intercept_``, ``coef_`` and ``factors_``.
    relation_widths_ : list of int
        The width of each block of ``fit``'s ``relations`` (empty without): the
        features are ``n_features_in_`` columns of X, then each block's.
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    target_range_ : tuple of float
        Smallest and largest training target, the bounds of ``clip_predictions``.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Column names, when fit on a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 5)); y = X[:, 0] * X[:, 1] + X[:, 2]
    >>> reg = FMRegressor(n_factors=4, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    >>> bayes = FMRegressor(n_factors=4, solver="mcmc", max_iter=50, random_state=0).fit(X, y)
    >>> bayes.model_.n_samples
    45
    """

    _parameter_constraints: dict = {**with_solver_defaults(BaseFM._parameter_constraints),
                                    "clip_predictions": ["boolean"]}

    def __init__(self, *, n_factors: int = 8, order: int = 2,
                 solver: Solver = "sgd", max_iter: int = 100,
                 tol: float | None = 1e-4, learning_rate: Schedule = "adagrad",
                 eta0: float = 0.1, power_t: float = 0.25, reg_intercept: float = 0.0,
                 reg_linear: float | Literal["auto"] = "auto",
                 reg_factors: float | Literal["auto"] = "auto", fit_intercept: bool = True,
                 fit_linear: bool = True, init_std: float | Literal["auto"] = "auto",
                 clip_gradient: float | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 scoring: Scoring = None, shuffle: bool = True,
                 warm_start: bool = False, n_jobs: int | None = None,
                 random_state: RandomStateLike = None, verbose: int = 0,
                 dtype: FloatDType = "float32", burn_in: int | Literal["auto"] = "auto",
                 n_kept_samples: int | None = None, clip_predictions: bool = True,
                 lr_intercept: float = 0.1, lr_linear: float = 0.001,
                 lr_factors: float = 0.0001, batch_size: int = 1000, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8,
                 rescale_grad: float | Literal["auto"] = "auto",
                 init_intercept: tuple[str, float] | None = None,
                 init_linear: tuple[str, float] | None = None,
                 init_factors: tuple[str, float] | None = None, beta: float = 1.0,
                 l1_linear: float = 0.0, l1_factors: float = 0.0) -> None:
        super().__init__(
            n_factors=n_factors, order=order, solver=solver, max_iter=max_iter, tol=tol,
            learning_rate=learning_rate, eta0=eta0, power_t=power_t, reg_intercept=reg_intercept,
            reg_linear=reg_linear, reg_factors=reg_factors, fit_intercept=fit_intercept,
            fit_linear=fit_linear, init_std=init_std,
            clip_gradient=clip_gradient, early_stopping=early_stopping,
            validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
            scoring=scoring, shuffle=shuffle, warm_start=warm_start, n_jobs=n_jobs,
            random_state=random_state, verbose=verbose, dtype=dtype, burn_in=burn_in,
            n_kept_samples=n_kept_samples, lr_intercept=lr_intercept, lr_linear=lr_linear,
            lr_factors=lr_factors, batch_size=batch_size, beta1=beta1, beta2=beta2, eps=eps,
            rescale_grad=rescale_grad, init_intercept=init_intercept, init_linear=init_linear,
            init_factors=init_factors, beta=beta, l1_linear=l1_linear, l1_factors=l1_factors)
        self.clip_predictions = clip_predictions
