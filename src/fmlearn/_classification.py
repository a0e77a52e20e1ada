"""Factorization machine classification: logistic (or probit) for two classes, softmax for more."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, log_ndtr, log_softmax, ndtr, softmax
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from ._base import BaseFM, partial_fit_available, with_solver_defaults
from .model import MulticlassFMModel
from .solvers.softmax import SoftmaxSolver

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._typing import MatrixLike, Model, available_if, fit_context as _fit_context
else:
    from sklearn.base import _fit_context
    from sklearn.utils.metaestimators import available_if


class FMClassificationMixin(ClassifierMixin):
    """The labels, the links and the probabilities of the FM-family classifiers.

    Two classes: one score, the log-odds (or probit) of ``classes_[1]``, targets -1/+1.
    More classes (where ``_multiclass`` allows): one score per class and a softmax,
    targets the class codes 0..C-1.
    """

    _loss = "logistic"
    classes_: NDArray[Any]

    def _multiclass(self) -> bool:
        """Whether this estimator, as configured, can learn more than two classes."""
        return False

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = self._multiclass()
        return tags

    def _encode_y(self, y: ArrayLike, classes: ArrayLike | None = None) -> NDArray[Any]:
        check_classification_targets(y)
        name = type(self).__name__
        given = classes is not None
        classes = np.asarray(classes) if given else np.unique(y)
        unseen: Any = np.setdiff1d(np.unique(y), classes) if given else ()
        if len(unseen):
            raise ValueError(f"y holds labels {unseen.tolist()} that are not among the classes "
                             f"{classes.tolist()}.")
        if classes.shape[0] < 2:
            raise ValueError(f"{name} needs samples of two classes; y has only one class: "
                             f"{classes[0].item()!r}." if not given else
                             f"classes must name at least two labels; got {classes.tolist()}.")
        if classes.shape[0] > 2 and not self._multiclass():
            raise ValueError(f"Only binary classification is supported. The type of the target is "
                             f"{type_of_target(y)}, with {classes.shape[0]} classes; {name} with "
                             "these parameters is binary. More than two classes are learned by "
                             "FMClassifier with solver='sgd' and order=2.")
        self.classes_ = classes
        if classes.shape[0] > 2:
            sorter = np.argsort(classes, kind="stable")
            return sorter[np.searchsorted(classes, y, sorter=sorter)].astype(self.dtype)
        return np.where(y == classes[1], 1, -1).astype(self.dtype)

    def _decode_y(self, y: NDArray[Any]) -> NDArray[Any]:
        if self.classes_.shape[0] > 2:
            return self.classes_[y.astype(int)]
        return self.classes_[(y > 0).astype(int)]

    _validation_metric = ("log_loss", -1)

    def _validation_loss(self, scores: NDArray[Any], y: NDArray[Any],
                         sample_weight: NDArray[Any]) -> float:
        scores = scores.astype(np.float64)
        if scores.ndim == 2:
            log_proba = np.take_along_axis(log_softmax(scores, axis=1),
                                           y.astype(int)[:, None], axis=1)[:, 0]
            return float(np.average(log_proba, weights=sample_weight))
        return float(np.average(self._log_proba_of(y * scores), weights=sample_weight))

    def _link_cdf(self) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
        """The function from scores to probabilities of ``classes_[1]``: the logistic for the
        SGD learners, the normal CDF for the probit learners (ALS, MCMC and VB)."""
        return ndtr if self.solver in ("als", "mcmc", "vb") else expit

    def _log_proba_of(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """Log-probability of the second class for each score, by the solver's link."""
        if self.solver in ("als", "mcmc", "vb"):
            return log_ndtr(scores)
        return -np.logaddexp(0.0, -scores)

    @available_if(partial_fit_available)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> Self:
        """Run one epoch over ``X``, starting from the current model (or a new one).

        The parameters are updated in place, as in :meth:`FMRegressor.partial_fit`.

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
        >>> from fmlearn import FMClassifier
        >>> clf = FMClassifier(random_state=0).partial_fit(np.eye(2), [0, 0], classes=[0, 1])
        >>> clf.classes_
        array([0, 1])
        """
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._partial_fit(X, y, sample_weight, classes)

    def decision_function(self, X: MatrixLike, relations: list[Any] | None = None
                          ) -> NDArray[np.floating[Any]]:
        """The FM score, the log-odds of ``classes_[1]``, for each row of ``X``; with more
        than two classes one score per class, shape (n_samples, n_classes).

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMClassifier
        >>> clf = FMClassifier(random_state=0).fit(np.eye(2), [0, 1])
        >>> clf.decision_function(np.eye(2)).shape
        (2,)
        """
        return self._decision(X, relations)

    def predict_proba(self, X: MatrixLike, relations: list[Any] | None = None
                      ) -> NDArray[np.float64]:
        """Probabilities of each class in ``classes_``, shape (n_samples, n_classes).

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMClassifier
        >>> clf = FMClassifier(random_state=0).fit(np.eye(2), [0, 1])
        >>> clf.predict_proba(np.eye(2)).sum(axis=1)
        array([1., 1.])
        """
        s = self._decision(X, relations).astype(np.float64)
        if s.ndim == 2:
            return softmax(s, axis=1)
        cdf = self._link_cdf()
        return np.column_stack([cdf(-s), cdf(s)])  # 1 - cdf(s) would round to 0 for large s

    def predict_log_proba(self, X: MatrixLike, relations: list[Any] | None = None
                          ) -> NDArray[np.float64]:
        """Logarithms of ``predict_proba``, computed without underflow."""
        s = self._decision(X, relations).astype(np.float64)
        if s.ndim == 2:
            return log_softmax(s, axis=1)
        return np.column_stack([self._log_proba_of(-s), self._log_proba_of(s)])

    def predict(self, X: MatrixLike, relations: list[Any] | None = None
                ) -> NDArray[Any]:
        """The more probable label for each row of ``X`` (with its ``relations``, the
        :class:`~fmlearn.RelationBlock` list of a model fitted with them).

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMClassifier
        >>> FMClassifier(random_state=0).fit(np.eye(2), ["a", "b"]).predict(np.eye(2)).shape
        (2,)
        """
        s = self._decision(X, relations)
        if s.ndim == 2:
            return self.classes_[s.argmax(axis=1)]
        return self.classes_[(s > 0).astype(int)]


class FMClassifier(FMClassificationMixin, BaseFM):
    """Factorization machine classifier, binary or multiclass.

    With ``solver="sgd"`` or ``"adam"`` the FM score is the log-odds of the second class in
    ``classes_`` and training minimises the logistic loss. ``solver="als"`` and
    ``"mcmc"`` use the probit link, as libFM does, and ``"vb"`` too, as myFM's
    ``VariationalFMClassifier``: the probability of the second class is ``Phi(score)``
    (VB: of the posterior means' score); MCMC averages that probability over its samples and
    reports ``Phi^-1`` of the average as the score. Any labels are accepted
    (numbers, strings, booleans).

    With more than two classes (``solver="sgd"``, ``order=2``) every class has an FM
    of its own, bias, weights and factors, and a softmax over their scores gives the
    probabilities; training minimises the cross-entropy. Each class needs its own
    factors: shared ones would add the same pairwise term to every class's score,
    which the softmax cancels. The model is then ``n_classes`` times as large.

    Parameters
    ----------
    n_factors, order, solver, max_iter, tol, learning_rate, eta0, power_t, reg_intercept, \
reg_linear, reg_factors, fit_intercept, fit_linear, init_std, clip_gradient, early_stopping, \
validation_fraction, n_iter_no_change, shuffle, warm_start, n_jobs, random_state, verbose, \
dtype, burn_in, n_kept_samples, lr_intercept, lr_linear, lr_factors, batch_size, beta1, \
beta2, eps, rescale_grad, init_intercept, init_linear, init_factors, beta, l1_linear, \
l1_factors
        As in :class:`FMRegressor`, the ``"auto"`` values of ``reg_linear``,
        ``reg_factors`` and ``init_std`` too: with them and ``n_factors=10``, SGD
        (``early_stopping=True``), ALS and MCMC reach a test AUC of 0.97 or more on
        frappe (bench/defaults.py).
    scoring : str, callable or None, default=None
        Validation score (higher is better): None is the negative log-loss,
        otherwise a scikit-learn scorer name such as ``"roc_auc"``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels; ``predict_proba[:, c]`` is the probability of ``classes_[c]``. With
        more than two, ``intercept_``, ``coef_`` and ``factors_`` gain a leading axis of
        one entry per class, and ``model_`` is a ``MulticlassFMModel``.
    model_, intercept_, coef_, factors_, n_iter_, t_, validation_scores_, \
best_validation_score_, n_features_in_, feature_names_in_, hyperparameter_trace_, \
regularization_, relation_widths_, elbo_, intercept_var_, coef_var_, factors_var_
        As in :class:`FMRegressor`.
    loss_curve_ : list of float
        Mean weighted training log-loss per epoch (of ``Phi(score)`` for ALS and MCMC).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 4)); y = np.where(X[:, 0] * X[:, 1] > 0.25, "yes", "no")
    >>> clf = FMClassifier(n_factors=4, random_state=0).fit(X, y)
    >>> clf.classes_
    array(['no', 'yes'], dtype='<U3')
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = with_solver_defaults(BaseFM._parameter_constraints)

    def _multiclass(self) -> bool:
        return self.solver == "sgd" and self.order == 2

    def _new_model(self, n_features: int, dtype: np.dtype[Any]) -> Model:
        if self.classes_.shape[0] == 2:
            return super()._new_model(n_features, dtype)
        return MulticlassFMModel.initial(self.classes_.shape[0], n_features, self.n_factors,
                                         self._resolved("init_std"), dtype, self._rng)

    def _sgd_learner(self) -> type:
        return SoftmaxSolver if self.classes_.shape[0] > 2 else super()._sgd_learner()
