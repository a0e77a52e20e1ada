"""Shared machinery of the FM estimators: parameters, fit and partial_fit, the learners (the
epoch loop is in ``_epoch_loop``, the solver-state attributes in ``_solver_state_views``)."""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._epoch_loop import EpochLoop
from ._solver_state_views import SolverStateViews
from ._threads import effective_n_jobs, within_n_jobs
from ._validation import validate_feature_groups, validate_fm_data, validate_sample_weight
from .model import FMModel, FMSamples, HOFMModel, check_scores
from .relations import RelationBlock, relational_rows
from .solvers.adam import AdamSolver
from .solvers.ftrl import FTRLSolver
from .solvers.als import ALSSolver
from .solvers.hofm import HOFMSolver
from .solvers.mcmc import MCMCSolver
from .solvers.sgd import SCHEDULES, SGDSolver
from .solvers.sgda import SGDASolver
from .solvers.vb import VBSolver

if TYPE_CHECKING:
    from typing import TypeAlias

    from typing_extensions import Self

    from ._typing import (FloatDType, MatrixLike, Model, RandomStateLike, Schedule, Scoring,
                          Solver, fit_context as _fit_context)

    # Validation rows: the matrix, the encoded targets and the sample weights.
    _Validation: TypeAlias = tuple[Any, NDArray[Any], NDArray[Any]]
else:
    from sklearn.base import _fit_context


#: What ``"auto"`` means per solver, for the parameters whose good values differ by orders of
#: magnitude between learners (measured in bench/defaults.py): SGD penalises each step, ALS the
#: whole sum of squared errors (libFM's -regular), and MCMC samples its penalties from their
#: priors, so it uses none (0 here); ALS and MCMC start from libFM's factors.
SOLVER_DEFAULTS: dict[str, dict[str, float]] = {
    "sgd": {"reg_linear": 1e-3, "reg_factors": 1e-2, "init_std": 0.01},
    "sgda": {"reg_linear": 1e-5, "reg_factors": 1e-5, "init_std": 0.01},
    "als": {"reg_linear": 3.0, "reg_factors": 10.0, "init_std": 0.1},
    "mcmc": {"reg_linear": 0.0, "reg_factors": 0.0, "init_std": 0.1},
    # Variational Bayes learns its penalties as MCMC does; its factors start as myFM's.
    "vb": {"reg_linear": 0.0, "reg_factors": 0.0, "init_std": 0.1},
    # SageMaker's FM defaults: linear_wd, factors_wd, factors_init_sigma.
    "adam": {"reg_linear": 1e-3, "reg_factors": 1e-5, "init_std": 0.001},
    # FTRL's L2 is added once to the sum of a coordinate's losses, not at every row.
    "ftrl": {"reg_linear": 1e-3, "reg_factors": 1.0, "init_std": 0.01},
}
#: How ``init_intercept``, ``init_linear`` and ``init_factors`` draw their starting values
#: (MXNet's initializers): N(0, sigma**2), U(-scale, scale), or the value itself.
INIT_METHODS = ("normal", "uniform", "constant")


def initial_values(spec: tuple[str, float], shape: tuple[int, ...], dtype: np.dtype[Any],
                   rng: np.random.Generator, name: str) -> NDArray[Any]:
    """Starting values of ``shape`` drawn as ``spec = (method, number)`` says
    (:data:`INIT_METHODS`); ``name`` is the parameter named in errors.

    Examples
    --------
    >>> initial_values(("constant", 0.5), (2,), np.float32, None, "init_linear").tolist()
    [0.5, 0.5]
    >>> initial_values(("cauchy", 1.0), (2,), np.float32, None, "init_linear")
    Traceback (most recent call last):
    ...
    ValueError: init_linear=('cauchy', 1.0): expected (method, number) with method one of normal, uniform, constant and a finite number (>= 0 for normal and uniform).
    """
    method, number = tuple(spec) if len(spec) == 2 else (None, None)
    value = (float(number) if isinstance(number, (int, float, np.integer, np.floating))
             else math.nan)
    if (method not in INIT_METHODS or not math.isfinite(value)
            or (value < 0 and method != "constant")):
        raise ValueError(f"{name}={spec!r}: expected (method, number) with method one of "
                         f"{', '.join(INIT_METHODS)} and a finite number (>= 0 for normal "
                         "and uniform).")
    if method == "normal":
        values = rng.normal(0.0, value, size=shape)
    elif method == "uniform":
        values = rng.uniform(-value, value, size=shape)
    else:
        values = np.full(shape, value)
    return values.astype(dtype)


def with_solver_defaults(constraints: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``constraints`` with ``"auto"`` allowed for the parameters of :data:`SOLVER_DEFAULTS`.

    Examples
    --------
    >>> rules = with_solver_defaults(BaseFM._parameter_constraints)
    >>> rules["init_std"][-1].options
    {'auto'}
    """
    return {**constraints, **{name: [*constraints[name], StrOptions({"auto"})]
                              for name in SOLVER_DEFAULTS["sgd"]}}


def partial_fit_available(estimator: BaseFM) -> bool:
    """Whether the estimator's solver can learn chunk by chunk (not SGDA, which needs
    validation rows); raises AttributeError saying why not."""
    if estimator.solver == "sgda":
        raise AttributeError("partial_fit is not available with solver='sgda', which learns its "
                             "penalties on validation rows: use fit with eval_set, or "
                             "solver='sgd'.")
    return True


class BaseFM(EpochLoop, SolverStateViews, BaseEstimator):
    """Base class of the FM estimators; subclasses define the loss and the target encoding."""

    _parameter_constraints: dict = {
        "n_factors": [Interval(Integral, 0, None, closed="left")],
        "order": [Interval(Integral, 2, None, closed="left")],
        "solver": [StrOptions({"sgd", "sgda", "als", "mcmc", "adam", "ftrl", "vb"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, None, None, closed="neither"), None],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, None, None, closed="neither")],
        "reg_intercept": [Interval(Real, 0, None, closed="left")],
        "reg_linear": [Interval(Real, 0, None, closed="left")],
        "reg_factors": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "fit_linear": ["boolean"],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "clip_gradient": [Interval(Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "scoring": [str, callable, None],
        "shuffle": ["boolean"],
        "warm_start": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "dtype": [StrOptions({"float32", "float64"})],
        "burn_in": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "n_kept_samples": [Interval(Integral, 1, None, closed="left"), None],
        "lr_intercept": [Interval(Real, 0, None, closed="left")],
        "lr_linear": [Interval(Real, 0, None, closed="left")],
        "lr_factors": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "beta2": [Interval(Real, 0, 1, closed="left")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "rescale_grad": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "l1_linear": [Interval(Real, 0, None, closed="left")],
        "l1_factors": [Interval(Real, 0, None, closed="left")],
        # (method, number); a list too, as a model file gives it back.
        "init_intercept": [tuple, list, None],
        "init_linear": [tuple, list, None],
        "init_factors": [tuple, list, None],
    }

    def __init__(self, *, n_factors: int = 8, order: int = 2, solver: Solver = "sgd",
                 max_iter: int = 100, tol: float | None = 1e-4,
                 learning_rate: Schedule = "adagrad", eta0: float = 0.1, power_t: float = 0.25,
                 reg_intercept: float = 0.0, reg_linear: float | Literal["auto"] = "auto",
                 reg_factors: float | Literal["auto"] = "auto", fit_intercept: bool = True,
                 fit_linear: bool = True, init_std: float | Literal["auto"] = "auto",
                 clip_gradient: float | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 5,
                 scoring: Scoring = None, shuffle: bool = True, warm_start: bool = False,
                 n_jobs: int | None = None, random_state: RandomStateLike = None,
                 verbose: int = 0, dtype: FloatDType = "float32",
                 burn_in: int | Literal["auto"] = "auto",
                 n_kept_samples: int | None = None, lr_intercept: float = 0.1,
                 lr_linear: float = 0.001, lr_factors: float = 0.0001, batch_size: int = 1000,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 rescale_grad: float | Literal["auto"] = "auto",
                 init_intercept: tuple[str, float] | None = None,
                 init_linear: tuple[str, float] | None = None,
                 init_factors: tuple[str, float] | None = None, beta: float = 1.0,
                 l1_linear: float = 0.0, l1_factors: float = 0.0) -> None:
        self.n_factors = n_factors
        self.order = order
        self.solver: str = solver
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.reg_intercept = reg_intercept
        self.reg_linear = reg_linear
        self.reg_factors = reg_factors
        self.fit_intercept = fit_intercept
        self.fit_linear = fit_linear
        self.init_std = init_std
        self.clip_gradient = clip_gradient
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.scoring = scoring
        self.shuffle = shuffle
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.burn_in = burn_in
        self.n_kept_samples = n_kept_samples
        self.lr_intercept = lr_intercept
        self.lr_linear = lr_linear
        self.lr_factors = lr_factors
        self.batch_size = batch_size
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.rescale_grad = rescale_grad
        self.init_intercept = init_intercept
        self.init_linear = init_linear
        self.init_factors = init_factors
        self.beta = beta
        self.l1_linear = l1_linear
        self.l1_factors = l1_factors

    def _resolved(self, name: str) -> float:
        """The value of parameter ``name``, ``"auto"`` replaced by the solver's
        (:data:`SOLVER_DEFAULTS`): read at fit time, never in ``__init__``."""
        value = getattr(self, name)
        return self._solver_defaults[self.solver][name] if value == "auto" else value

    #: The ``"auto"`` values per solver (the FFM estimators have LIBFFM's for SGD).
    _solver_defaults: dict[str, dict[str, float]] = SOLVER_DEFAULTS

    # Parameters of the FM estimators only; the others start as these say.
    init_intercept: tuple[str, float] | None = None
    init_linear: tuple[str, float] | None = None
    init_factors: tuple[str, float] | None = None

    # --- what subclasses define -------------------------------------------------------------
    _loss: str = None  # type: ignore[assignment]  # "squared" or "logistic"
    model_: Any  # FMModel, FFMModel, HOFMModel, MulticlassFMModel or FMSamples

    def _encode_y(self, y: ArrayLike, classes: ArrayLike | None = None) -> NDArray[Any]:
        """Targets as the loss expects them, in the model dtype; sets label attributes."""
        raise NotImplementedError

    def _validation_loss(self, scores: NDArray[Any], y: NDArray[Any],
                         sample_weight: NDArray[Any]) -> float:
        """The default validation score (higher is better) from raw scores and encoded targets."""
        raise NotImplementedError

    #: The default validation score's metric, and its sign in the score (-1: a negated loss).
    _validation_metric: tuple[str, int] = ("score", 1)

    def _shown_score(self, score: float) -> tuple[str, float]:
        """How a validation score is printed: a negated loss as the loss (RMSE as RMSE).

        Examples
        --------
        >>> from fmlearn import FMRegressor
        >>> FMRegressor()._shown_score(-0.25), FMRegressor(scoring="r2")._shown_score(0.5)
        (('val_rmse', 0.25), ('val_r2', 0.5))
        """
        if self.scoring is None:
            name, sign = self._validation_metric
        elif isinstance(self.scoring, str):
            negated = self.scoring.startswith("neg_")
            name, sign = (self.scoring[4:], -1) if negated else (self.scoring, 1)
        else:
            name, sign = "score", 1
        return f"val_{name}", sign * score

    def _learn_target_range(self, target: NDArray[Any], reset: bool) -> None:
        """Record what the solver and ``predict`` need to know of the training targets."""

    def _target_range(self) -> tuple[float, float] | None:
        """Bounds the solver clips scores to inside the loss, or None."""
        return None

    def _finish_scores(self, scores: NDArray[Any]) -> NDArray[Any]:
        """Scores as ``predict`` returns them (the regressor may clip them)."""
        return scores

    # --- fitted attributes ----------------------------------------------------------------------
    @property
    def intercept_(self) -> float | NDArray[Any]:
        """The learned global bias w0."""
        check_is_fitted(self, "model_")
        return self.model_.intercept

    @property
    def coef_(self) -> NDArray[Any]:
        """The learned linear weights, shape (n_features,)."""
        check_is_fitted(self, "model_")
        return self.model_.coef

    @property
    def factors_(self) -> NDArray[Any]:
        """The learned latent factors, shape (n_features, n_factors); for ``order`` >= 3
        (order - 1, n_features, n_factors), one matrix per order."""
        check_is_fitted(self, "model_")
        return self.model_.factors

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags

    # --- training -----------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
            eval_set: tuple[Any, ...] | None = None,
            feature_groups: ArrayLike | None = None,
            relations: list[RelationBlock] | None = None) -> Self:
        """Fit the model by ``max_iter`` epochs (SGD), sweeps (ALS) or samples (MCMC) over ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Training rows; sparse input of any scipy format is converted to CSR.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights multiplying each sample's loss.
        eval_set : tuple (X_val, y_val) or (X_val, y_val, relations_val), default=None
            Held-out data scored after every epoch (``validation_scores_``); with
            ``early_stopping=True`` it replaces the random ``validation_fraction`` split.
        feature_groups : array-like of int of shape (n_features,), default=None
            ``solver="mcmc"``, ``"vb"`` and ``"sgda"``: the group of each feature (e.g. 0
            for user ids, 1 for item ids); each group has its own prior mean and precision
            (MCMC, VB) or its own learned penalties (SGDA), as libFM's ``-meta``. None puts
            all features in one group.
        relations : list of RelationBlock, default=None
            Blocks of features shared by many rows (libFM's ``-relation``, myFM's
            ``RelationBlock``): the features are X's columns followed by each block's.
            ALS and MCMC sweep through per-block caches, at a cost that grows with the
            blocks' non-zeros rather than rows times block width; the other solvers read
            the rows expanded. Pass the same blocks (for the rows predicted) to ``predict``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        warm = self.warm_start and hasattr(self, "model_")
        if self.solver == "mcmc" and self.early_stopping:
            raise ValueError("early_stopping is not available with solver='mcmc': every sample "
                             "counts towards the posterior average. Pass eval_set to watch "
                             "validation_scores_ instead.")
        if self.solver == "vb" and self.early_stopping:
            raise ValueError("early_stopping is not available with solver='vb': the posterior "
                             "variances are of the last iteration. VB stops when its ELBO "
                             "converges (tol); pass eval_set to watch validation_scores_.")
        X, y = validate_fm_data(self, X, y, reset=not warm, y_numeric=self._loss == "squared")
        # None (every weight 1) reaches the epoch loop, which holds no array of ones where it
        # need not (a fit that stages its rows).
        if sample_weight is not None:
            sample_weight = validate_sample_weight(sample_weight, X, X.dtype)
        widths = []  # the relations' widths, whose features follow X's
        if relations is not None:
            if self.early_stopping or self.solver == "sgda" or (
                    eval_set is not None and len(eval_set) != 3) or self.scoring is not None:
                raise ValueError("relations: validation rows need their own relations; pass "
                                 "eval_set=(X_val, y_val, relations_val) with scoring=None, "
                                 "and leave out early_stopping and solver='sgda'.")
            X = relational_rows(X, relations, X.dtype,
                                self.model_.n_features if warm else None)
            widths = [B.shape[1] for B in X.blocks]
            if self.solver not in ("als", "mcmc"):
                X = X.expand()
        groups = validate_feature_groups(feature_groups, X.shape[1], self.solver)
        if not warm:
            self._rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
        rng = self._rng
        target = self._encode_y(y, classes=getattr(self, "classes_", None) if warm else None)
        validation = None
        if eval_set is not None:
            X_val, y_val = eval_set[:2]
            X_val, y_val = validate_fm_data(self, X_val, y_val, reset=False,
                                            y_numeric=self._loss == "squared")
            if relations is not None:
                X_val = relational_rows(X_val, eval_set[2], X_val.dtype, X.shape[1])
                X_val = X_val.expand() if self.solver not in ("als", "mcmc") else X_val
            validation = (X_val, self._encode_y(y_val, classes=getattr(self, "classes_", None)),
                          np.ones(X_val.shape[0], X.dtype))
        elif self.early_stopping or self.solver == "sgda":
            # Stratify the classes when both sides of the split can hold each of them.
            n_val = math.ceil(self.validation_fraction * X.shape[0])
            n_classes = np.unique(target).shape[0]
            stratify = (target if self._loss == "logistic"
                        and min(n_val, X.shape[0] - n_val) >= n_classes else None)
            if sample_weight is None:
                sample_weight = validate_sample_weight(None, X, X.dtype)
            X, X_val, target, y_val, sample_weight, w_val = train_test_split(
                X, target, sample_weight, test_size=self.validation_fraction,
                random_state=rng.integers(2**31), stratify=stratify)
            validation = (X_val, y_val, w_val)
        self._learn_target_range(target, reset=not warm)
        if not warm:
            self._initialise(X.shape[1], X.dtype, groups)
        self._run_epochs(X, target, sample_weight, validation, rng, self.max_iter,
                         stop_early=True, fresh=not warm)
        if not warm:
            self.relation_widths_ = widths
        return self

    def _initialise(self, n_features: int, dtype: np.dtype[Any],
                    groups: NDArray[np.int64] | None) -> None:
        if self.solver == "mcmc":  # the burn-in is fixed for the chain, also when warm starts
            self._burn_in = self.max_iter // 10 if self.burn_in == "auto" else self.burn_in
        self.model_ = self._new_model(n_features, dtype)
        self._solver_state = self._solver().initial_state(self.model_, groups)
        self.t_ = 0

    def _new_model(self, n_features: int, dtype: np.dtype[Any]) -> Model:
        """The model a fit starts from."""
        if self.order == 2:
            model = FMModel.initial(n_features, self.n_factors, self._resolved("init_std"),
                                    dtype, self._rng)
            if self.init_intercept is not None and self.fit_intercept:
                model.intercept = float(initial_values(self.init_intercept, (1,), dtype,
                                                       self._rng, "init_intercept")[0])
            if self.init_linear is not None and self.fit_linear:
                model.coef = initial_values(self.init_linear, model.coef.shape, dtype,
                                            self._rng, "init_linear")
            if self.init_factors is not None:
                model.factors = initial_values(self.init_factors, model.factors.shape, dtype,
                                               self._rng, "init_factors")
            return model
        if (self.init_intercept, self.init_linear, self.init_factors) != (None, None, None):
            raise ValueError("init_intercept, init_linear and init_factors start order=2 "
                             "models only; leave them None.")
        if self.solver != "sgd":
            raise ValueError(f"order={self.order} is learned by solver='sgd' only; "
                             f"solver={self.solver!r} fits second-order models.")
        return HOFMModel.initial(n_features, self.order, self.n_factors,
                                 self._resolved("init_std"), dtype, self._rng)

    def _sgd_learner(self) -> type:
        """The learner class of ``solver="sgd"`` for this model."""
        return SGDSolver if self.order == 2 else HOFMSolver

    def _ftrl_learner(self) -> type:
        """The learner class of ``solver="ftrl"`` for this model."""
        return FTRLSolver

    def _partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None,
                     classes: ArrayLike | None) -> Self:
        first = not hasattr(self, "model_")
        X, y = validate_fm_data(self, X, y, reset=first, y_numeric=self._loss == "squared")
        sample_weight = validate_sample_weight(sample_weight, X, X.dtype)
        target = self._encode_y(y, classes=classes if first else getattr(self, "classes_", None))
        self._learn_target_range(target, reset=first)
        if first:
            self._rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
            self._initialise(X.shape[1], X.dtype, None)
        self._run_epochs(X, target, sample_weight, None, self._rng, 1, stop_early=False,
                         in_place=True)
        return self

    def _solver(self, validation: _Validation | None = None) -> Any:
        """The learner of ``solver``; ``validation`` is the ``(X, y, weight)`` SGDA tunes on."""
        n_threads = effective_n_jobs(self.n_jobs)
        switches = {"fit_intercept": self.fit_intercept, "fit_linear": self.fit_linear}
        penalties = (self.reg_intercept, self._resolved("reg_linear"),
                     self._resolved("reg_factors"))
        if self.solver == "adam":
            return AdamSolver(self._loss, self.lr_intercept, self.lr_linear, self.lr_factors,
                              *penalties, self.clip_gradient, batch_size=self.batch_size,
                              beta1=self.beta1, beta2=self.beta2, eps=self.eps,
                              rescale_grad=(None if self.rescale_grad == "auto"
                                            else self.rescale_grad),
                              n_threads=n_threads, **switches)
        if self.solver == "ftrl":
            return self._ftrl_learner()(self._loss, self.eta0, self.beta, 0.0, penalties[0],
                              self.l1_linear, penalties[1], self.l1_factors, penalties[2],
                              self.clip_gradient, n_threads=n_threads, target_range=self._target_range(),
                              **switches)
        if self.solver in ("sgd", "sgda"):
            cls, extra = ((self._sgd_learner(), {"n_threads": n_threads}) if self.solver == "sgd"
                          else (SGDASolver, {"validation": validation}))
            return cls(self._loss, self.learning_rate, self.eta0, self.power_t, *penalties,
                       self.clip_gradient,
                       target_range=self._target_range(), **switches, **extra)
        # The coordinate learners fit classes through the probit link, as libFM does.
        loss = "probit" if self._loss == "logistic" else self._loss
        if self.solver == "als":
            return ALSSolver(loss, *penalties, n_threads=n_threads, **switches)
        if self.solver == "vb":
            return VBSolver(loss, *penalties, n_threads=n_threads,
                            init_std=self._resolved("init_std"), **switches)
        return MCMCSolver(loss, *penalties, n_threads=n_threads, burn_in=self._burn_in,
                          n_kept_samples=self.n_kept_samples,
                          target_range=self._target_range(), carry_sums=self.warm_start,
                          **switches)

    # --- prediction --------------------------------------------------------------------------
    @within_n_jobs
    def _decision(self, X: MatrixLike, relations: list[RelationBlock] | None = None
                  ) -> NDArray[Any]:
        check_is_fitted(self, "model_")
        X = validate_fm_data(self, X, reset=False)
        dtype = X.dtype
        if relations is not None:
            X = relational_rows(X, relations, dtype, self.model_.n_features)
            if not isinstance(self.model_, (FMModel, FMSamples)):  # scored on CSR rows only
                X = X.expand()
        elif isinstance(self.model_, (FMModel, FMSamples)) and self.model_.n_features > X.shape[1]:
            raise ValueError(f"The model was fitted with relations ({self.model_.n_features} "
                             f"features, X has {X.shape[1]}): pass relations= to predict.")
        scores = self.model_.predict_csr(X, self.n_jobs, check=False)  # X is checked above
        return self._finish_scores(check_scores(scores, dtype))
