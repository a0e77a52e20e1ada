"""Factorization machine ranking by BPR: learn to score preferred rows above others."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_auc_score
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import _num_samples

from ._base import BaseFM
from ._threads import effective_n_jobs
from .solvers.bpr import BPRSolver

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._typing import FloatDType, MatrixLike, RandomStateLike, Schedule, Scoring
    from ._typing import fit_context as _fit_context
else:
    from sklearn.base import _fit_context


class FMRanker(BaseFM):
    """Factorization machine ranker trained by BPR (Rendle et al., UAI 2009).

    Learns FM scores such that, within each group (a user, a query), rows of higher
    relevance ``y`` score above rows of lower relevance: every epoch each row is paired
    with a random row of its group with lower relevance, and SGD steps on
    ``-log sigmoid(score(preferred) - score(other))``. For implicit feedback, give the
    observed (user, item) rows relevance 1 and rows of items the user has not seen
    relevance 0: each epoch then samples one negative item per positive. The scores
    serve :func:`fmlearn.recommend.recommend` like any FM's. The bias cancels in every
    pair and stays 0.

    Parameters
    ----------
    n_factors, max_iter, tol, learning_rate, eta0, power_t, reg_linear, reg_factors, \
fit_linear, init_std, clip_gradient, n_iter_no_change, warm_start, n_jobs, random_state, \
verbose, dtype
        As in :class:`FMRegressor`. ``n_jobs`` threads take shares of the pairs without
        locks.
    early_stopping : bool, default=False
        Stop when the validation score of ``eval_set`` (required) stops improving and
        keep the best epoch's model.
    scoring : str, callable or None, default=None
        Validation score (higher is better): None is the AUC of the scores against
        ``y > 0``, pooled over groups; otherwise a scikit-learn scorer.

    Attributes
    ----------
    model_ : FMModel
    coef_, factors_, n_iter_, t_, loss_curve_, validation_scores_, best_validation_score_, \
n_features_in_, feature_names_in_
        As in :class:`FMRegressor`; ``loss_curve_`` is the mean BPR loss of the epoch's pairs.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn import FMRanker
    >>> users, items = np.repeat(np.arange(20), 10), np.tile(np.arange(10), 20)
    >>> X = sp.hstack([sp.eye(20, format="csr")[users], sp.eye(10, format="csr")[items]]).tocsr()
    >>> liked = (users % 2 == items % 2).astype(int)  # even users like even items
    >>> ranker = FMRanker(n_factors=2, max_iter=30, random_state=0).fit(X, liked, groups=users)
    >>> scores = ranker.predict(X)
    >>> bool(scores[liked == 1].mean() > scores[liked == 0].mean())
    True
    """

    solver = "bpr"  # the learner is fixed; these are not parameters either:
    order = 2
    shuffle = False  # pairs are drawn afresh every epoch
    _loss = "bpr"
    _parameter_constraints: dict = {
        name: rule for name, rule in BaseFM._parameter_constraints.items()
        if name not in ("order", "solver", "burn_in", "n_kept_samples", "reg_intercept",
                        "fit_intercept", "shuffle", "validation_fraction")}

    def __init__(self, *, n_factors: int = 8, max_iter: int = 100, tol: float | None = 1e-4,
                 learning_rate: Schedule = "adagrad", eta0: float = 0.1, power_t: float = 0.25,
                 reg_linear: float = 1e-5, reg_factors: float = 1e-5, fit_linear: bool = True,
                 init_std: float = 0.01, clip_gradient: float | None = None,
                 early_stopping: bool = False, n_iter_no_change: int = 5, scoring: Scoring = None,
                 warm_start: bool = False, n_jobs: int | None = None,
                 random_state: RandomStateLike = None, verbose: int = 0,
                 dtype: FloatDType = "float32") -> None:
        self.n_factors = n_factors
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.reg_linear = reg_linear
        self.reg_factors = reg_factors
        self.fit_linear = fit_linear
        self.init_std = init_std
        self.clip_gradient = clip_gradient
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.scoring = scoring
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.dtype = dtype

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: MatrixLike, y: ArrayLike,  # type: ignore[override]  # groups comes third
            groups: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
            eval_set: tuple[MatrixLike, ArrayLike] | None = None) -> Self:
        """Fit by ``max_iter`` epochs of BPR over pairs drawn within ``groups``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Relevance; higher is preferred. Binary (1 seen, 0 not) for implicit feedback.
        groups : array-like of shape (n_samples,), default=None
            The group of each row (e.g. the user id); pairs never cross groups. None
            puts all rows in one group.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the preferred rows: a pair counts as its preferred row's weight.
        eval_set : tuple (X_val, y_val), default=None
            Held-out rows scored after every epoch (``validation_scores_``).

        Returns
        -------
        self : object
        """
        if self.early_stopping and eval_set is None:
            raise ValueError("FMRanker's early stopping needs eval_set: a random split of the "
                             "rows would cut groups in two.")
        self._groups = _validate_groups(groups, _num_samples(X))
        try:
            return self._fit(X, y, sample_weight=sample_weight, eval_set=eval_set)
        finally:
            del self._groups

    # the epoch loop, without validating parameters twice
    _fit: Callable[..., Any] = BaseFM.fit.__wrapped__  # type: ignore[attr-defined]

    def _encode_y(self, y: ArrayLike, classes: ArrayLike | None = None) -> NDArray[Any]:
        type_of_target(y, input_name="y", raise_unknown=True)
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must hold numeric relevance; got dtype {y.dtype}.")
        return y.astype(self.dtype)

    def _decode_y(self, y: NDArray[Any]) -> NDArray[Any]:
        return y

    _validation_metric = ("auc", 1)

    def _validation_loss(self, scores: NDArray[Any], y: NDArray[Any],
                         sample_weight: NDArray[Any]) -> float:
        positive = y > 0
        if positive.all() or not positive.any():
            return float("nan")
        return float(roc_auc_score(positive, scores, sample_weight=sample_weight))

    def _solver(self, validation: tuple[Any, NDArray[Any], NDArray[Any]] | None = None
                ) -> BPRSolver:
        groups = getattr(self, "_groups", None)
        return BPRSolver(self._loss, self.learning_rate, self.eta0, self.power_t, 0.0,
                         self._resolved("reg_linear"), self._resolved("reg_factors"),
                         self.clip_gradient,
                         n_threads=effective_n_jobs(self.n_jobs), fit_intercept=False,
                         fit_linear=self.fit_linear, groups=groups)

    def predict(self, X: MatrixLike) -> NDArray[np.floating[Any]]:
        """Scores of the rows of ``X``: higher ranks first.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRanker
        >>> FMRanker(random_state=0).fit(np.eye(3), [2, 1, 0]).predict(np.eye(3)).argsort()
        array([2, 1, 0])
        """
        return self._decision(X)


def _validate_groups(groups: ArrayLike | None, n_rows: int) -> NDArray[np.int64] | None:
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_rows:
        raise ValueError(f"groups must give one group per row: X has {n_rows} rows, groups has "
                         f"shape {groups.shape}.")
    return np.unique(groups, return_inverse=True)[1].reshape(-1).astype(np.int64)
