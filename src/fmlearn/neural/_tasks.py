"""What each task adds to a neural model: its loss, its targets and its predictions.

The regressor, classifier and ranker mixins go before :class:`~fmlearn.neural._base.BaseNeuralFM`
in an estimator's bases (``class NFMRegressor(NeuralRegressorMixin, _NFM)``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import roc_auc_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _num_samples
from torch import nn

from .._ranking import _validate_groups
from .._validation import validate_fm_data
from ..solvers.bpr import lower_ranked
from ._data import Batches


class NeuralRegressorMixin(RegressorMixin):
    """Squared loss on the standardized target ``(y - y_mean_) / y_scale_``."""

    _numeric_target = True

    def _init_target(self, y, w):
        self.y_mean_ = float(np.average(y, weights=w)) if w.sum() > 0 else float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0

    def _target(self, y):
        return (y - self.y_mean_) / self.y_scale_

    def _loss(self, out, t):
        return (out - t) ** 2

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import NeuralFMRegressor
        >>> reg = NeuralFMRegressor(max_iter=2, random_state=0).fit(np.eye(3), [1.0, 2, 3])
        >>> reg.predict(np.eye(3)).shape
        (3,)
        """
        return self._decision(X) * self.y_scale_ + self.y_mean_


class NeuralClassifierMixin(ClassifierMixin):
    """Binary classification: logistic loss on the score of ``classes_[1]``."""

    _numeric_target = False

    def _partial_classes(self, classes) -> None:
        if classes is not None:
            self.classes_ = _binary_classes(np.unique(classes))

    def _init_target(self, y, w):
        if not hasattr(self, "classes_"):
            self.classes_ = _binary_classes(np.unique(y))

    def _target(self, y):
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"y holds the label {y[unknown][0]!r}, not one of the classes "
                             f"{self.classes_.tolist()} seen first")
        return (y == self.classes_[1]).astype(np.float64)

    def _loss(self, out, t):
        return nn.functional.binary_cross_entropy_with_logits(out, t, reduction="none")

    def decision_function(self, X):
        """The score of ``classes_[1]`` (log-odds).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import NeuralFMClassifier
        >>> clf = NeuralFMClassifier(max_iter=2, random_state=0).fit(np.eye(2), [0, 1])
        >>> clf.decision_function(np.eye(2)).shape
        (2,)
        """
        return self._decision(X)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import NeuralFMClassifier
        >>> clf = NeuralFMClassifier(max_iter=2, random_state=0).fit(np.eye(2), ["a", "b"])
        >>> clf.predict_proba(np.eye(2)).shape
        (2, 2)
        """
        p = self._link_cdf()(self._decision(X).astype(np.float64))
        return np.column_stack([1.0 - p, p])

    @staticmethod
    def _link_cdf():
        """The logistic function: the probability of ``classes_[1]`` from its score."""
        return lambda score: 1.0 / (1.0 + np.exp(-score))

    def predict(self, X):
        """The more probable class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import NeuralFMClassifier
        >>> clf = NeuralFMClassifier(max_iter=2, random_state=0).fit(np.eye(2), ["a", "b"])
        >>> clf.predict(np.eye(2)).shape
        (2,)
        """
        positive = self._decision(X) > 0
        return self.classes_[positive.astype(int)]

    def _validate(self, X, y, reset):
        X, y = validate_fm_data(self, X, y, reset=reset)
        check_classification_targets(y)
        if type_of_target(y, input_name="y") == "multiclass":
            raise ValueError(f"Only binary classification is supported by "
                             f"{type(self).__name__}; y has {len(np.unique(y))} classes.")
        return X, y

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


class NeuralRankerMixin:
    """BPR (Rendle et al., UAI 2009) as :class:`fmlearn.FMRanker` trains it: every epoch
    pairs each row with a random row of its group of lower relevance ``y``, and the loss is
    ``-log sigmoid(score(preferred) - score(other))``, weighted by the preferred row's weight.
    """

    _numeric_target = True

    def fit(self, X, y, groups=None, sample_weight=None, eval_set=None, init_model=None):
        """Train for up to ``max_iter`` epochs of BPR over pairs drawn within ``groups``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Relevance; higher is preferred. Binary (1 seen, 0 not) for implicit feedback.
        groups : array-like of shape (n_samples,), default=None
            The group of each row (e.g. the user id); pairs never cross groups. None puts
            all rows in one group.
        sample_weight : array-like of shape (n_samples,), default=None
            A pair counts with its preferred row's weight.
        eval_set : tuple (X_val, y_val), default=None
            Scored after each epoch by ``score`` (or ``scoring``); early stopping needs it.
        init_model : fitted FM estimator or :class:`fmlearn.model.FMModel`, default=None
            Its bias, linear weights and factors start the network's (see the base ``fit``).

        Returns
        -------
        self : estimator

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import CFMRanker
        >>> X = np.eye(4); y = [1, 0, 1, 0]
        >>> CFMRanker(n_factors=2, max_iter=2, random_state=0).fit(X, y, groups=[0, 0, 1, 1]).n_iter_
        2
        """
        if self.early_stopping and eval_set is None:
            raise ValueError(f"{type(self).__name__}'s early stopping needs eval_set: a random "
                             "split of the rows would cut groups in two.")
        self._groups = _validate_groups(groups, _num_samples(X))
        try:
            return super().fit(X, y, sample_weight=sample_weight, eval_set=eval_set,
                               init_model=init_model)
        finally:
            del self._groups

    def partial_fit(self, X, y, groups=None, sample_weight=None):
        """One epoch of BPR over ``X``, starting from the network trained so far.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), default=None
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : estimator

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import CFMRanker
        >>> CFMRanker(n_factors=2, random_state=0).partial_fit(np.eye(2), [1, 0]).n_iter_
        1
        """
        self._groups = _validate_groups(groups, _num_samples(X))
        try:
            return super().partial_fit(X, y, sample_weight=sample_weight)
        finally:
            del self._groups

    def _init_target(self, y, w):
        pass

    def _target(self, y):
        return y.astype(np.float64)

    def _pairs(self, t) -> np.ndarray:
        """This epoch's ``(preferred, other)`` rows, shape (n_pairs, 2), in a random order."""
        groups = getattr(self, "_groups", None)
        groups = np.zeros(len(t), dtype=np.int64) if groups is None else groups
        order, start, count = lower_ranked(t, groups)
        paired = np.flatnonzero(count)
        below = start[paired] + (self._rng.random(paired.size) * count[paired]).astype(np.int64)
        return np.column_stack([order[paired], order[below]])[self._rng.permutation(paired.size)]

    def _epoch_data(self, X, t, w, slots) -> tuple[Batches, int]:
        """The pairs as consecutive rows; batches of ``batch_size`` pairs."""
        return Batches(X, self._pairs(t).ravel(), t, w, slots=slots), 2 * self.batch_size

    def _batch_weight(self, w) -> float:
        return float(w[0::2].sum())

    def _batch_loss(self, out, t, w) -> torch.Tensor:
        scores, w = out.view(-1, 2), w[0::2]
        loss = nn.functional.softplus(scores[:, 1] - scores[:, 0])
        return (loss * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)

    def predict(self, X):
        """Scores of the rows of ``X``: higher ranks first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import CFMRanker
        >>> CFMRanker(n_factors=2, max_iter=2, random_state=0).fit(np.eye(3), [2, 1, 0]).predict(
        ...     np.eye(3)).shape
        (3,)
        """
        return self._decision(X)

    def score(self, X, y, sample_weight=None):
        """The ROC AUC of the scores against ``y > 0``, pooled over all rows (NaN when all
        rows or none are positive).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn.neural import CFMRanker
        >>> ranker = CFMRanker(n_factors=2, max_iter=2, random_state=0).fit(np.eye(2), [1, 0])
        >>> 0 <= ranker.score(np.eye(2), [1, 0]) <= 1
        True
        """
        positive = np.asarray(y) > 0
        if positive.all() or not positive.any():
            return float("nan")
        return float(roc_auc_score(positive, self.predict(X), sample_weight=sample_weight))


def _binary_classes(classes: np.ndarray) -> np.ndarray:
    if len(classes) != 2:
        raise ValueError(f"a binary classifier needs samples of 2 classes; got {len(classes)} "
                         f"class{'es' if len(classes) != 1 else ''}: {classes.tolist()}")
    return classes
