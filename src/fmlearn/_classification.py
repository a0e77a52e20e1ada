"""Factorization machine classification (logistic loss)."""
import numpy as np
from scipy.special import expit, log_ndtr, ndtr
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.metaestimators import available_if

from ._base import BaseFM, partial_fit_available


class FMClassificationMixin(ClassifierMixin):
    """The labels, the links and the probabilities of the binary FM-family classifiers."""

    _loss = "logistic"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _encode_y(self, y, classes=None):
        check_classification_targets(y)
        if classes is None:
            classes = np.unique(y)
            if classes.shape[0] < 2:
                raise ValueError(f"{type(self).__name__} needs samples of two classes; y has only "
                                 f"one class: "
                                 f"{classes[0].item()!r}.")
            if classes.shape[0] > 2:
                raise ValueError(f"Only binary classification is supported. The type of the target "
                                 f"is {type_of_target(y)}: y has {classes.shape[0]} classes.")
            self.classes_ = classes
        else:
            classes = np.asarray(classes)
            unseen = np.setdiff1d(np.unique(y), classes)
            if unseen.size or classes.shape[0] != 2:
                raise ValueError(f"y holds labels {unseen.tolist()} that are not among the two classes "
                                 f"{classes.tolist()}." if unseen.size else
                                 f"classes must name exactly two labels; got {classes.tolist()}.")
            self.classes_ = classes
        return np.where(y == classes[1], 1, -1).astype(self.dtype)

    def _decode_y(self, y):
        return self.classes_[(y > 0).astype(int)]

    def _validation_loss(self, scores, y, sample_weight):
        return float(np.average(self._log_proba_of(y * scores.astype(np.float64)),
                                weights=sample_weight))

    def _link_cdf(self):
        """The function from scores to probabilities of ``classes_[1]``: the logistic for the
        SGD learners, the normal CDF for the probit learners (ALS and MCMC)."""
        return ndtr if self.solver in ("als", "mcmc") else expit

    def _log_proba_of(self, scores):
        """Log-probability of the second class for each score, by the solver's link."""
        if self.solver in ("als", "mcmc"):
            return log_ndtr(scores)
        return -np.logaddexp(0.0, -scores)

    @available_if(partial_fit_available)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Run one epoch over ``X``, starting from the current model (or a new one).

        The parameters are updated in place, as in :meth:`FMRegressor.partial_fit`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like of shape (2,), default=None
            Both labels; required on the first call, since one batch may hold one class.

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

    def decision_function(self, X):
        """The FM score, the log-odds of ``classes_[1]``, for each row of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMClassifier
        >>> clf = FMClassifier(random_state=0).fit(np.eye(2), [0, 1])
        >>> clf.decision_function(np.eye(2)).shape
        (2,)
        """
        return self._decision(X)

    def predict_proba(self, X):
        """Probabilities of ``classes_[0]`` and ``classes_[1]``, shape (n_samples, 2).

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMClassifier
        >>> clf = FMClassifier(random_state=0).fit(np.eye(2), [0, 1])
        >>> clf.predict_proba(np.eye(2)).sum(axis=1)
        array([1., 1.])
        """
        s = self._decision(X).astype(np.float64)
        cdf = self._link_cdf()
        return np.column_stack([cdf(-s), cdf(s)])  # 1 - cdf(s) would round to 0 for large s

    def predict_log_proba(self, X):
        """Logarithms of ``predict_proba``, computed without underflow."""
        s = self._decision(X).astype(np.float64)
        return np.column_stack([self._log_proba_of(-s), self._log_proba_of(s)])

    def predict(self, X):
        """The more probable label for each row of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMClassifier
        >>> FMClassifier(random_state=0).fit(np.eye(2), ["a", "b"]).predict(np.eye(2)).shape
        (2,)
        """
        positive = self._decision(X) > 0
        return self.classes_[positive.astype(int)]


class FMClassifier(FMClassificationMixin, BaseFM):
    """Binary factorization machine classifier.

    With ``solver="sgd"`` the FM score is the log-odds of the second class in
    ``classes_`` and training minimises the logistic loss. ``solver="als"`` and
    ``"mcmc"`` use the probit link, as libFM does: the probability of the second
    class is ``Phi(score)``; MCMC averages that probability over its samples and
    reports ``Phi^-1`` of the average as the score. Any two labels are accepted
    (numbers, strings, booleans).

    Parameters
    ----------
    n_factors, order, solver, max_iter, tol, learning_rate, eta0, power_t, reg_intercept, \
reg_linear, reg_factors, fit_intercept, fit_linear, init_std, clip_gradient, early_stopping, \
validation_fraction, n_iter_no_change, shuffle, warm_start, n_jobs, random_state, verbose, \
dtype, burn_in, n_kept_samples
        As in :class:`FMRegressor`.
    scoring : str, callable or None, default=None
        Validation score (higher is better): None is the negative log-loss,
        otherwise a scikit-learn scorer name such as ``"roc_auc"``.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``predict_proba[:, 1]`` is the probability of ``classes_[1]``.
    model_, intercept_, coef_, factors_, n_iter_, t_, validation_scores_, \
best_validation_score_, n_features_in_, feature_names_in_, hyperparameter_trace_, \
regularization_
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
