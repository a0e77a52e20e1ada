"""Ordinal regression: the ordered-probit factorization machine by Gibbs sampling."""
from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._base import BaseFM
from ._threads import effective_n_jobs, within_n_jobs
from ._validation import validate_fm_data
from .model import FMModel
from .ordinal_model import OrdinalFMModel
from .solvers.ordinal import OrdinalMCMCSolver

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._typing import FloatDType, MatrixLike, RandomStateLike, fit_context as _fit_context
else:
    from sklearn.base import _fit_context


class FMOrdinalRegressor(ClassifierMixin, BaseFM):
    """Ordinal regression with a factorization machine: the ordered probit, learned by
    Gibbs sampling (Albert & Chib 1993; myFM's ``MyFMOrderedProbit``).

    The labels are ordered classes (ratings 1..5, "low" < "mid" < "high" as sorted), and
    row ``x`` has class ``k`` when the latent ``z ~ N(score(x), 1)`` falls between the
    cut-points ``c_{k-1} < z <= c_k``, so ``P(k | x) = Phi(c_k - score) -
    Phi(c_{k-1} - score)``. Each iteration draws the cut-points given the scores (a
    Metropolis-Hastings step with a t proposal at their posterior mode, Albert & Chib 1997,
    as myFM), the latent targets in their intervals, then the FM parameters and their
    Normal-Gamma hyperpriors by the Gibbs sweep of ``FMRegressor(solver="mcmc")``. With
    ``fit_intercept`` the first cut-point is fixed at 0 (the intercept sets the location);
    without it, it is drawn too. Predictions average the kept samples' class probabilities.

    A class of its own, not an option of :class:`FMRegressor` or :class:`FMClassifier`: it is
    a classifier in scikit-learn's sense (``classes_``, ``predict_proba``, ``predict`` the
    most probable class, ``score`` the accuracy as ``ClassifierMixin`` defines it, so that
    ``predict`` and ``score`` agree), it has fitted cut-points neither of them has, and it
    learns by one solver only; an option would have changed the meaning of ``predict``,
    ``score`` and the model file of an existing estimator. The expected label, what a
    rating regression predicts, is :meth:`predict_expected` (a method, so that one fitted
    model gives both without a refit); score it with RMSE where ratings are the goal.

    Parameters
    ----------
    n_factors : int, default=8
        Dimension of the latent factors.
    max_iter : int, default=100
        Samples drawn (Gibbs iterations) by ``fit``.
    fit_intercept, fit_linear : bool, default=True
        Learn the bias w0 and the linear weights w (off, they stay 0).
    init_std : float, default=0.1
        Standard deviation of the normal distribution the factors start from.
    warm_start : bool, default=False
        Continue the same chain in the next ``fit`` (two fits of 50 samples equal one of 100).
    n_jobs : int or None, default=None
        Threads for the sweep's large column blocks and the prediction passes; None means 1,
        -1 all (the cut-point step and the latent targets run on one).
    random_state : int, RandomState or None, default=None
        Seed for the initial factors and the chain.
    verbose : int, default=0
        1: a progress bar; 2 or more: one line per iteration on stderr.
    dtype : {"float32", "float64"}, default="float32"
        Floating type of the FM parameters (cut-points are float64).
    burn_in : int or "auto", default="auto"
        The first ``burn_in`` samples are drawn and discarded; ``"auto"`` is a tenth of
        ``max_iter`` of the first fit.
    n_kept_samples : int or None, default=None
        Keep at most this many of the latest samples for prediction (None: all after
        ``burn_in``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The ordered labels; ``predict_proba[:, k]`` is the probability of ``classes_[k]``.
    model_ : OrdinalFMSamples
        The kept samples: FM parameters and cut-points.
    cutpoints_ : ndarray of shape (n_classes - 1,)
        Posterior mean of the cut-points.
    intercept_, coef_, factors_, n_iter_, t_, loss_curve_, validation_scores_, \
best_validation_score_, hyperparameter_trace_, n_features_in_, feature_names_in_
        As in :class:`FMRegressor` with ``solver="mcmc"``; ``loss_curve_`` is the mean
        weighted ``-log p(y)`` of the averaged class probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMOrdinalRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3)); y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=300),
    ...                                                [-0.5, 0.5]) + 1
    >>> ordinal = FMOrdinalRegressor(n_factors=2, max_iter=50, random_state=0).fit(X, y)
    >>> ordinal.classes_
    array([1, 2, 3])
    >>> bool(ordinal.score(X, y) > 0.8), ordinal.predict_proba(X[:2]).shape
    (True, (2, 3))
    """

    _parameter_constraints: dict = {
        **{name: BaseFM._parameter_constraints[name] for name in (
            "n_factors", "max_iter", "fit_intercept", "fit_linear", "warm_start", "n_jobs",
            "random_state", "verbose", "dtype", "burn_in", "n_kept_samples")},
        "init_std": [Interval(Real, 0, None, closed="left")],
    }
    _loss = "ordinal"
    _validation_metric = ("log_loss", -1)
    # What the shared epoch loop reads of the other learners' settings, fixed for the sampler.
    solver = "mcmc"
    order = 2
    tol = None
    early_stopping = False
    shuffle = False
    scoring = None
    eta0 = reg_intercept = reg_linear = reg_factors = 0.0

    def __init__(self, *, n_factors: int = 8, max_iter: int = 100, fit_intercept: bool = True,
                 fit_linear: bool = True, init_std: float = 0.1, warm_start: bool = False,
                 n_jobs: int | None = None, random_state: RandomStateLike = None,
                 verbose: int = 0, dtype: FloatDType = "float32",
                 burn_in: int | Literal["auto"] = "auto",
                 n_kept_samples: int | None = None) -> None:
        self.n_factors = n_factors
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.fit_linear = fit_linear
        self.init_std = init_std
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype
        self.burn_in = burn_in
        self.n_kept_samples = n_kept_samples

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        # The classes are ordered along one score; scikit-learn's checks train on blobs whose
        # labels are not (in their own order 70 % training accuracy, in two others 87-89 %).
        tags.classifier_tags.poor_score = True
        return tags

    def _encode_y(self, y: ArrayLike, classes: ArrayLike | None = None) -> NDArray[Any]:
        """The class codes 0..K-1 of the sorted labels; sets ``classes_``."""
        check_classification_targets(y)
        given = classes is not None
        classes = np.asarray(classes) if given else np.unique(y)
        if given:
            unseen = np.setdiff1d(np.unique(y), classes)
            if unseen.size:
                raise ValueError(f"y holds labels {unseen.tolist()} that are not among the "
                                 f"classes {classes.tolist()}.")
        if classes.shape[0] < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least two classes; y "
                             f"has only one class: {classes[0].item()!r}." if not given else
                             f"classes must name at least two labels; got {classes.tolist()}.")
        classes = np.unique(classes)
        self.classes_ = classes
        return np.searchsorted(classes, y).astype(self.dtype)

    def _decode_y(self, y: NDArray[Any]) -> NDArray[Any]:
        return self.classes_[y.astype(np.intp)]

    def _validation_loss(self, scores: NDArray[Any], y: NDArray[Any],
                         sample_weight: NDArray[Any]) -> float:
        chosen = scores[y.astype(np.intp), np.arange(y.shape[0])]
        return float(np.average(np.log(np.maximum(chosen, np.finfo(np.float64).tiny)),
                                weights=sample_weight))

    def _new_model(self, n_features: int, dtype: np.dtype[Any]) -> OrdinalFMModel:
        fm = FMModel.initial(n_features, self.n_factors, self.init_std, dtype, self._rng)
        m = self.classes_.shape[0] - 1
        # Unit gaps, the first at 0 when the intercept sets the location, else centred.
        cutpoints = np.arange(m, dtype=np.float64) - (0.0 if self.fit_intercept else (m - 1) / 2)
        return OrdinalFMModel(fm.intercept, fm.coef, fm.factors, cutpoints)

    def _solver(self, validation: Any = None) -> OrdinalMCMCSolver:
        return OrdinalMCMCSolver(self._loss, 0.0, 0.0, 0.0, n_threads=effective_n_jobs(self.n_jobs),
                                 burn_in=self._burn_in, n_kept_samples=self.n_kept_samples,
                                 fit_intercept=self.fit_intercept, fit_linear=self.fit_linear,
                                 carry_sums=self.warm_start)

    @property
    def cutpoints_(self) -> NDArray[np.float64]:
        """Posterior mean of the cut-points, shape (n_classes - 1,).

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMOrdinalRegressor
        >>> X = np.eye(3); y = [0, 1, 2]
        >>> FMOrdinalRegressor(max_iter=5, random_state=0).fit(X, y).cutpoints_.shape
        (2,)
        """
        check_is_fitted(self, "model_")
        return self.model_.cutpoints.mean(axis=0)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> Self:
        """Draw one more sample of the chain on the rows ``X`` (a new chain on the first call).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like of shape (n_classes,), default=None
            All the labels; required on the first call, since one batch may lack some.

        Returns
        -------
        self : object

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMOrdinalRegressor
        >>> reg = FMOrdinalRegressor(random_state=0)
        >>> reg.partial_fit(np.eye(2), [1, 1], classes=[1, 2, 3]).partial_fit(np.eye(2), [3, 2]).t_
        4
        """
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._partial_fit(X, y, sample_weight, classes)

    @within_n_jobs
    def predict_proba(self, X: MatrixLike) -> NDArray[np.float64]:
        """Probabilities of the ordered classes ``classes_``, averaged over the kept samples,
        shape (n_samples, n_classes).

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMOrdinalRegressor
        >>> reg = FMOrdinalRegressor(max_iter=5, random_state=0).fit(np.eye(3), [0, 1, 2])
        >>> reg.predict_proba(np.eye(3)).sum(axis=1).round(6).tolist()
        [1.0, 1.0, 1.0]
        """
        check_is_fitted(self, "model_")
        X = validate_fm_data(self, X, reset=False)
        return self.model_.proba_csr(X, self.n_jobs)

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """The most probable class of each row of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMOrdinalRegressor
        >>> FMOrdinalRegressor(max_iter=5, random_state=0).fit(np.eye(2), ["a", "b"]).predict(
        ...     np.eye(2)).shape
        (2,)
        """
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]

    def predict_expected(self, X: MatrixLike) -> NDArray[np.float64]:
        """The expected label ``sum_k p_k * classes_[k]`` of each row (numeric labels only):
        the rating to compare with a regression's prediction by RMSE.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMOrdinalRegressor
        >>> reg = FMOrdinalRegressor(max_iter=5, random_state=0).fit(np.eye(3), [1, 2, 3])
        >>> bool(np.all((reg.predict_expected(np.eye(3)) >= 1) & (reg.predict_expected(np.eye(3)) <= 3)))
        True
        """
        check_is_fitted(self, "model_")
        if self.classes_.dtype.kind not in "biuf":
            raise ValueError(f"predict_expected needs numeric labels; classes_ are "
                             f"{self.classes_.tolist()}. Use predict_proba or predict.")
        return self.predict_proba(X) @ self.classes_.astype(np.float64)
