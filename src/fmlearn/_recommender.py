"""Top-N recommendation learned from a user x item interaction matrix."""
from __future__ import annotations

import numbers
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._threads import effective_n_jobs
from ._validation import check_sparse_arrays, with_fm_indices
from .model import FMModel
from .recommend import Recommender, ndcg_at_k, precision_at_k
from .solvers.sgd import SCHEDULES, SGDState
from .solvers.topn import LOSSES, SAMPLINGS, TopNCDSolver, TopNSolver

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._typing import FloatDType, MatrixLike, RandomStateLike, Schedule
    from ._typing import fit_context as _fit_context
    from .recommend import Ranked
else:
    from sklearn.base import _fit_context

_METRICS = {"precision": precision_at_k, "ndcg": ndcg_at_k}
# AdaGrad's accumulated squares given to the parameters a fold-in leaves alone: their steps
# become negligible, and the old values are put back afterwards.
_FROZEN = 1e30


def _matrix(X: Any, name: str, dtype: Any, n_rows: int | None = None,
            nonnegative: bool = False) -> sp.csr_matrix:
    """``X`` as a CSR of ``dtype`` with sorted, summed indices, finite (and >= 0)."""
    check_sparse_arrays(X, name)
    X = check_array(X, accept_sparse=("csr", "csc", "coo"), dtype=dtype, ensure_all_finite=True,
                    ensure_min_samples=0, ensure_min_features=0, input_name=name)
    X = sp.csr_matrix(X, dtype=dtype, copy=True)  # summed in place below: never the caller's
    X.indices = X.indices.astype(X.indptr.dtype)     # one index type, as scipy's routines need
    X.sum_duplicates()
    X.eliminate_zeros()
    if n_rows is not None and X.shape[0] != n_rows:
        raise ValueError(f"{name} has {X.shape[0]} rows; expected {n_rows}.")
    if nonnegative and X.nnz and X.data.min() < 0:
        row = int(np.searchsorted(X.indptr, int(np.argmax(X.data < 0)), side="right") - 1)
        raise ValueError(f"{name} holds a negative entry in row {row}; interactions are counts "
                         "or weights >= 0.")
    return X


def _with_identity(features: Any, n_rows: int, identity: bool, name: str, dtype: Any
                   ) -> sp.csr_matrix:
    """The feature rows ``[features | identity]`` (either may be absent, not both)."""
    parts = []
    if features is not None:
        parts.append(_matrix(features, name, dtype, n_rows))
    if identity:
        parts.append(sp.eye(n_rows, dtype=dtype, format="csr"))
    if not parts:
        raise ValueError(f"{name} is required when the identity columns are turned off.")
    return with_fm_indices(sp.hstack(parts, format="csr", dtype=dtype))


class FMRecommender(BaseEstimator):
    """Factorization machine for top-N recommendation from a user x item interaction matrix.

    The model is an FM over ``[item feature columns | user feature columns]``: each user
    and each item is a row of features (by default its own identity column next to any
    side features given, as in LightFM), and the score of a (user, item) pair is the FM
    score of the two rows side by side. It learns from the stored entries of the
    interaction matrix (the positives) with negatives drawn from the catalogue inside the
    kernel, never one of that user's positives, and never materialised: memory is
    O(nnz + parameters). Losses: ``"bpr"`` (one negative per positive), ``"warp"``
    (negatives drawn until one scores within 1 of the positive, at most ``max_sampled``,
    its step weighted by ``log(floor((n_items - 1) / draws))``, as LightFM) and
    ``"logistic"`` (the positive against ``n_negatives`` negatives). See
    :mod:`fmlearn.kernels.topn` for the formulas. ``"squared"`` instead fits implicit
    ALS's objective over every user x item pair (target 1 and weight ``1 + alpha * r`` on
    a positive, target 0 and weight 1 on every other pair) by coordinate descent over
    the FM's parameters (iCD, Bayer et al. 2017; :class:`fmlearn.solvers.topn.TopNCDSolver`),
    all negatives in O(k^2) per feature row rather than sampled; no context.

    Context (``fit(..., context=)``): a sparse matrix with one row per stored interaction,
    its columns joining the user's side of that interaction (and of the negatives drawn
    for it: the ranking is of the items *in that context*), so that the time, device or
    place of each interaction is learned; ``recommend(..., context=)`` scores with one
    context row per queried user. A row per interaction rather than per user is what
    context means (a user's own features are ``user_features``); aligned with the
    interactions' stored entries, it costs O(nnz) like the interactions.

    A class of its own rather than :class:`FMRanker` grown: its ``fit`` takes an
    interaction matrix and feature matrices per side, not design rows with ``y`` and
    ``groups``; it recommends by user and item ids, keeps the interactions to filter them
    out, and scores users and items never seen in training from their features. These
    share no signature with scikit-learn's ``fit(X, y)``, which FMRanker keeps. For the
    same reason scikit-learn's ``check_estimator``, which fits samples against a target,
    does not apply beyond its parameter checks (``get_params``, ``set_params``,
    ``clone``); the tests run those.

    Parameters
    ----------
    loss : {"warp", "bpr", "logistic", "squared"}, default="warp"
    sampling : {"uniform", "popularity"}, default="uniform"
        How negatives are drawn: uniformly over the items, or in proportion to their
        number of stored interactions.
    n_factors : int, default=32
    max_iter : int, default=30
        Epochs (passes over the positives) of ``fit``.
    learning_rate : {"adagrad", "constant", "invscaling"}, default="adagrad"
        The step sizes of the sampled losses (``"squared"`` has none).
    eta0 : float, default=0.05
    power_t : float, default=0.25
    reg_linear, reg_factors : float, default=1e-6
        L2 penalties, applied to the parameters each step touches; for ``"squared"``,
        ``reg * theta^2`` once in the objective (as implicit's ``regularization``, about
        0.1 to 10; a large ``reg_linear`` leaves the linear terms out, as in ALS).
    init_std : float, default=0.1
    alpha : float, default=0.0
        Confidence weighting: a positive of stored value ``r`` weighs ``1 + alpha * r``
        (implicit's alpha); 0 treats the matrix as binary.
    n_negatives : int, default=4
        Negatives per positive for ``loss="logistic"``.
    max_sampled : int, default=10
        WARP's cap on the draws per positive.
    user_identity, item_identity : bool, default=True
        Add one identity column per user (item) to its features.
    early_stopping : bool, default=False
        Stop when the score of ``eval_set`` has not improved for ``n_iter_no_change``
        epochs, keeping the best epoch's model.
    scoring : {"precision", "ndcg"}, default="precision"
        The validation score: precision@k or NDCG@k of the top ``k`` items, training
        interactions excluded (:func:`fmlearn.recommend.precision_at_k`).
    k : int, default=10
    n_iter_no_change : int, default=5
    n_jobs : int, default=None
        Threads sharing the positives without locks (``"squared"`` runs on one).
    random_state : int, RandomState or None, default=None
    dtype : {"float32", "float64"}, default="float32"

    Attributes
    ----------
    model_ : FMModel
        Over ``n_item_columns_ + n_context_columns_ + n_user_columns_`` features, items
        first, users last.
    user_features_, item_features_ : sparse matrix
        Each user's (item's) feature row: the given features, then the identity columns.
    interactions_ : sparse matrix of shape (n_users, n_items)
        The training interactions (those of ``partial_fit`` and ``fold_in`` added).
    context_ : sparse matrix of shape (n_interactions, n_context_columns) or None
        The context of each stored interaction (``interactions_.nnz`` rows of
        ``n_context_columns_``), in their order (``fold_in``'s have none).
    n_context_columns_ : int
        The width of the context (0 when fitted without).
    n_users_, n_items_, n_iter_ : int
    n_features_in_ : int
        The number of columns of ``interactions`` (``n_items_``).
    n_item_columns_, n_user_columns_ : int
        The widths of ``item_features_`` and ``user_features_``.
    loss_curve_ : list of float
        Mean loss per positive of each epoch.
    validation_scores_ : list of float
        With ``eval_set``, the score of each epoch.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fmlearn import FMRecommender
    >>> users, items = np.divmod(np.arange(400), 20)
    >>> keep = (users % 2 == items % 2) & (items != users)  # same parity; user u missed item u
    >>> liked = sp.csr_matrix((np.ones(keep.sum()), (users[keep], items[keep])), shape=(20, 20))
    >>> rec = FMRecommender(loss="bpr", n_factors=4, max_iter=20, random_state=0).fit(liked)
    >>> rec.recommend(3, N=1)[0], rec.recommend([4, 5], N=1)[0]
    (array([3]), array([[4],
           [5]]))
    """

    _parameter_constraints: dict = {
        "loss": [StrOptions(set(LOSSES) | {"squared"})],
        "sampling": [StrOptions(set(SAMPLINGS))],
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, None, None, closed="neither")],
        "reg_linear": [Interval(Real, 0, None, closed="left")],
        "reg_factors": [Interval(Real, 0, None, closed="left")],
        "init_std": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_negatives": [Interval(Integral, 1, None, closed="left")],
        "max_sampled": [Interval(Integral, 1, None, closed="left")],
        "user_identity": ["boolean"],
        "item_identity": ["boolean"],
        "early_stopping": ["boolean"],
        "scoring": [StrOptions(set(_METRICS))],
        "k": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    def __init__(self, *, loss: str = "warp", sampling: str = "uniform", n_factors: int = 32,
                 max_iter: int = 30, learning_rate: Schedule = "adagrad", eta0: float = 0.05,
                 power_t: float = 0.25, reg_linear: float = 1e-6, reg_factors: float = 1e-6,
                 init_std: float = 0.1, alpha: float = 0.0, n_negatives: int = 4,
                 max_sampled: int = 10, user_identity: bool = True, item_identity: bool = True,
                 early_stopping: bool = False, scoring: str = "precision", k: int = 10,
                 n_iter_no_change: int = 5, n_jobs: int | None = None,
                 random_state: RandomStateLike = None, dtype: FloatDType = "float32") -> None:
        self.loss = loss
        self.sampling = sampling
        self.n_factors = n_factors
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.reg_linear = reg_linear
        self.reg_factors = reg_factors
        self.init_std = init_std
        self.alpha = alpha
        self.n_negatives = n_negatives
        self.max_sampled = max_sampled
        self.user_identity = user_identity
        self.item_identity = item_identity
        self.early_stopping = early_stopping
        self.scoring = scoring
        self.k = k
        self.n_iter_no_change = n_iter_no_change
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.dtype = dtype

    # --- fitting --------------------------------------------------------------------------------
    def _solver(self) -> TopNSolver | TopNCDSolver:
        if self.loss == "squared":
            return TopNCDSolver(self.reg_linear, self.reg_factors)
        return TopNSolver(self.loss, self.sampling, self.learning_rate, self.eta0, self.power_t,
                          0.0, self.reg_linear, self.reg_factors, self.n_negatives,
                          self.max_sampled, effective_n_jobs(self.n_jobs))

    def _weights(self, liked: sp.csr_matrix) -> NDArray[Any]:
        return (1 + self.alpha * liked.data).astype(self.dtype)

    def _init(self, interactions: MatrixLike, user_features: MatrixLike | None,
              item_features: MatrixLike | None, context: MatrixLike | None = None) -> None:
        if context is not None and (
                sp.issparse(interactions) and (interactions.format != "csr"
                                               or not interactions.has_canonical_format)):
            raise ValueError("context rows follow the stored entries of a CSR interactions "
                             "matrix with sorted, unique indices (or a dense array, row by "
                             "row); convert interactions with .tocsr() and sum_duplicates() "
                             "and order the context rows alike.")
        if context is not None and self.loss == "squared":
            raise ValueError('loss="squared" sums over every user x item pair, which has no '
                             "context; fit without context or with a sampled loss.")
        liked = _matrix(interactions, "interactions", self.dtype, nonnegative=True)
        self.n_users_, self.n_items_ = liked.shape
        self.n_features_in_ = self.n_items_
        if 0 in liked.shape:
            raise ValueError(f"interactions must have users and items; got shape {liked.shape}.")
        items = _with_identity(item_features, self.n_items_, self.item_identity,
                               "item_features", self.dtype)
        users = _with_identity(user_features, self.n_users_, self.user_identity,
                               "user_features", self.dtype)
        self.n_item_columns_, self.n_user_columns_ = items.shape[1], users.shape[1]
        self.item_features_, self.user_features_ = items, users
        self.interactions_ = with_fm_indices(liked)
        self.context_ = None if context is None else with_fm_indices(
            _matrix(context, "context", self.dtype, liked.nnz))
        self.n_context_columns_ = 0 if context is None else self.context_.shape[1]
        self._rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
        self.model_ = FMModel.initial(items.shape[1] + self.n_context_columns_ + users.shape[1],
                                      self.n_factors, self.init_std, np.dtype(self.dtype),
                                      self._rng)
        self._solver_state = SGDState.initial(self.model_)
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []

    def _user_rows(self) -> sp.csr_matrix:
        """``user_features_`` in the model's column numbers."""
        shifted = sp.csr_matrix((self.user_features_.data,
                                 self.user_features_.indices + self._user_offset(),
                                 self.user_features_.indptr),
                                shape=(self.n_users_, self.model_.n_features))
        return with_fm_indices(shifted)

    def _user_offset(self) -> int:
        return self.n_item_columns_ + self.n_context_columns_

    def _context_rows(self, context: Any, n_rows: int) -> sp.csr_matrix:
        """``context`` (``n_rows`` rows) in the model's column numbers."""
        context = _matrix(context, "context", self.dtype, n_rows)
        if context.shape[1] != self.n_context_columns_:
            raise ValueError(f"context has {context.shape[1]} columns; the model was fitted "
                             f"with {self.n_context_columns_}.")
        return sp.csr_matrix((context.data, context.indices + self.n_item_columns_,
                              context.indptr), shape=(n_rows, self.model_.n_features))

    def _entry_rows(self) -> sp.csr_matrix:
        """The user side of each stored interaction: its user's row plus its context."""
        users = np.repeat(np.arange(self.n_users_), np.diff(self.interactions_.indptr))
        rows = self._user_rows()[users] + self._context_rows(self.context_,
                                                             self.interactions_.nnz)
        return with_fm_indices(rows.tocsr())

    def _item_rows(self) -> sp.csr_matrix:
        return with_fm_indices(sp.csr_matrix(
            (self.item_features_.data, self.item_features_.indices, self.item_features_.indptr),
            shape=(self.n_items_, self.model_.n_features)))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, interactions: MatrixLike, user_features: MatrixLike | None = None,
            item_features: MatrixLike | None = None, eval_set: MatrixLike | None = None,
            context: MatrixLike | None = None) -> Self:
        """Fit by ``max_iter`` epochs over the positives of ``interactions``.

        Parameters
        ----------
        interactions : {array-like, sparse matrix} of shape (n_users, n_items)
            Stored non-zero entries are the positives, their values the weights that
            ``alpha`` turns into confidences; values must be >= 0.
        user_features : {array-like, sparse matrix} of shape (n_users, n_user_features)
            Side features of the users, before the identity columns (optional when
            ``user_identity``).
        item_features : {array-like, sparse matrix} of shape (n_items, n_item_features)
        eval_set : {array-like, sparse matrix} of shape (n_users, n_items), default=None
            Held-out interactions scored after every epoch by ``scoring`` at ``k``
            (``validation_scores_``, without context); needed by ``early_stopping``.
        context : {array-like, sparse matrix} of shape (n_interactions, n_context_features)
            The context of each stored entry of ``interactions``, in their order (row by
            row, items ascending: ``interactions`` must then be a CSR with sorted, unique
            indices, or dense).

        Returns
        -------
        self : object
        """
        if self.early_stopping and eval_set is None:
            raise ValueError("early_stopping needs eval_set: a held-out interaction matrix.")
        self._init(interactions, user_features, item_features, context)
        held_out = None if eval_set is None else _matrix(eval_set, "eval_set", self.dtype)
        if held_out is not None and held_out.shape != self.interactions_.shape:
            raise ValueError(f"eval_set has shape {held_out.shape}; the interactions have "
                             f"{self.interactions_.shape}.")
        self._epochs(self.max_iter, held_out)
        return self

    def _epochs(self, n_epochs: int, held_out: sp.csr_matrix | None) -> None:
        solver = self._solver()
        per_entry = self.context_ is not None
        users = self._entry_rows() if per_entry else self._user_rows()
        items = self._item_rows()
        weights = self._weights(self.interactions_)
        best, best_model, stale = -np.inf, None, 0
        for _ in range(n_epochs):
            loss = solver.epoch(self.model_, self.interactions_, weights, users, items) \
                if isinstance(solver, TopNCDSolver) else \
                solver.epoch(self.model_, self.interactions_, weights, users, items,
                             self._solver_state, self._rng, per_entry=per_entry)
            if not (np.isfinite(loss) and np.isfinite(self.model_.factors).all()):
                raise ValueError("the loss or the parameters became non-finite; lower eta0 or "
                                 "raise the penalties.")
            self.loss_curve_.append(loss)
            self.n_iter_ += 1
            if held_out is None:
                continue
            self.__dict__.pop("_catalogue", None)
            score = self._validation_score(held_out)
            self.validation_scores_.append(score)
            if score > best:
                best, best_model, stale = score, self.model_.copy(), 0
            else:
                stale += 1
            if self.early_stopping and stale >= self.n_iter_no_change:
                break
        if self.early_stopping and best_model is not None:
            self.model_ = best_model
            self.best_validation_score_ = best
        self.__dict__.pop("_catalogue", None)

    def _validation_score(self, held_out: sp.csr_matrix) -> float:
        users = np.flatnonzero(np.diff(held_out.indptr))
        ids, _ = self.recommend(users, N=self.k)
        return _METRICS[self.scoring](ids, held_out[users], k=self.k)

    def partial_fit(self, interactions: MatrixLike, user_features: MatrixLike | None = None,
                    item_features: MatrixLike | None = None) -> Self:
        """One epoch over ``interactions``, added to the training interactions.

        The first call initialises as :meth:`fit` does (with its features); later calls
        take a matrix of the fitted shape ``(n_users_, n_items_)`` and ignore the
        features (the catalogue and the users are those of the first call; new users are
        added by :meth:`fold_in`).

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRecommender
        >>> rec = FMRecommender(n_factors=2, random_state=0).partial_fit(np.eye(3))
        >>> rec.partial_fit(np.eye(3)[::-1]).n_iter_, rec.interactions_.nnz
        (2, 5)
        """
        if not hasattr(self, "model_"):
            self._validate_params()
            self._init(interactions, user_features, item_features)
        else:
            if self.context_ is not None:
                raise ValueError("partial_fit cannot add interactions to a model fitted with "
                                 "context (their rows would lose their order); refit with "
                                 "fit.")
            new = _matrix(interactions, "interactions", self.dtype, nonnegative=True)
            if new.shape != self.interactions_.shape:
                raise ValueError(f"interactions has shape {new.shape}; partial_fit continues "
                                 f"on the fitted shape {self.interactions_.shape}.")
            merged = (self.interactions_ + new).tocsr()
            merged.sort_indices()
            self.interactions_ = with_fm_indices(merged)
        self._epochs(1, None)
        return self

    def fold_in(self, interactions: MatrixLike, user_features: MatrixLike | None = None,
                n_epochs: int = 10) -> NDArray[np.int64]:
        """Add new users from their interactions without refitting; returns their ids.

        Each new user gets identity parameters of their own (with ``user_identity``),
        learned by ``n_epochs`` AdaGrad epochs over their interactions (coordinate-descent
        sweeps over their columns for ``loss="squared"``) with every other parameter held
        fixed; with side features only, the new users' rows are scored
        from their features (what fold-in adds is then only their liked items). A model
        fitted with context folds them in without context (an empty context row each).

        Parameters
        ----------
        interactions : {array-like, sparse matrix} of shape (n_new_users, n_items)
        user_features : {array-like, sparse matrix} of shape (n_new_users, n_user_features)
            Required when the model was fitted with user features.
        n_epochs : int, default=10

        Returns
        -------
        ids : ndarray of int64
            The new users' ids, ``n_users_`` before the call onwards.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRecommender
        >>> rec = FMRecommender(n_factors=2, max_iter=5, random_state=0).fit(np.eye(4))
        >>> rec.fold_in(np.array([[0, 1.0, 1.0, 0]])), rec.n_users_
        (array([4]), 5)
        """
        check_is_fitted(self, "model_")
        if not isinstance(n_epochs, numbers.Integral) or n_epochs < 0:
            raise ValueError(f"n_epochs must be a non-negative integer; got {n_epochs!r}.")
        new = _matrix(interactions, "interactions", self.dtype, nonnegative=True)
        if new.shape[1] != self.n_items_:
            raise ValueError(f"interactions has {new.shape[1]} items; the model has "
                             f"{self.n_items_}.")
        n_new, n_raw = new.shape[0], self.n_user_columns_ - (self.n_users_
                                                             if self.user_identity else 0)
        if (user_features is None) != (n_raw == 0):
            raise ValueError("user_features must be given exactly when the model was fitted "
                             f"with user features ({n_raw} columns).")
        raw = sp.csr_matrix((n_new, 0), dtype=self.dtype) if user_features is None else \
            _matrix(user_features, "user_features", self.dtype, n_new)
        if raw.shape[1] != n_raw:
            raise ValueError(f"user_features has {raw.shape[1]} columns; the model has {n_raw}.")
        ids = np.arange(self.n_users_, self.n_users_ + n_new, dtype=np.int64)
        old_features = self.model_.n_features
        if self.user_identity:
            old = self.user_features_
            self.user_features_ = with_fm_indices(sp.bmat(
                [[old[:, :n_raw], old[:, n_raw:], None],
                 [raw, None, sp.eye(n_new, dtype=self.dtype)]], format="csr", dtype=self.dtype))
            extra = FMModel.initial(n_new, self.n_factors, self.init_std, self.model_.dtype,
                                    self._rng)
            self.model_ = FMModel(self.model_.intercept,
                                  np.concatenate([self.model_.coef, extra.coef]),
                                  np.concatenate([self.model_.factors, extra.factors]))
            state = self._solver_state
            self._solver_state = SGDState(
                state.acc_intercept, np.concatenate([state.acc_coef, np.ones_like(extra.coef)]),
                np.concatenate([state.acc_factors, np.ones_like(extra.factors)]), state.step)
            self.n_user_columns_ += n_new
        else:
            self.user_features_ = with_fm_indices(sp.vstack([self.user_features_, raw],
                                                            format="csr", dtype=self.dtype))
        self.interactions_ = with_fm_indices(sp.vstack([self.interactions_, new], format="csr",
                                                       dtype=self.dtype))
        if self.context_ is not None:
            self.context_ = with_fm_indices(sp.vstack(
                [self.context_, sp.csr_matrix((new.nnz, self.n_context_columns_))],
                format="csr", dtype=self.dtype))
        self.interactions_.sort_indices()
        self.n_users_ += n_new
        self.__dict__.pop("_catalogue", None)
        if n_epochs and self.user_identity and new.nnz and self.loss == "squared":
            solver = self._solver()
            weights = self._weights(self.interactions_)
            for _ in range(n_epochs):
                solver.epoch(self.model_, self.interactions_, weights, self._user_rows(),
                             self._item_rows(), user_columns=np.arange(old_features,
                                                                       self.model_.n_features))
        elif n_epochs and self.user_identity and new.nnz:
            state = self._solver_state
            frozen = SGDState(np.full(1, _FROZEN, self.dtype), state.acc_coef.copy(),
                              state.acc_factors.copy(), np.zeros(1, np.int64))
            frozen.acc_coef[:old_features] = _FROZEN
            frozen.acc_factors[:old_features] = _FROZEN
            keep = self.model_.copy()
            solver = self._solver()
            per_entry = self.context_ is not None
            users = self._entry_rows() if per_entry else self._user_rows()
            items = self._item_rows()
            weights = self._weights(self.interactions_)
            for _ in range(n_epochs):
                solver.epoch(self.model_, self.interactions_, weights, users, items, frozen,
                             self._rng, users=ids, adagrad=True, per_entry=per_entry)
            self.model_.intercept = keep.intercept
            state.acc_coef[old_features:] = frozen.acc_coef[old_features:]
            state.acc_factors[old_features:] = frozen.acc_factors[old_features:]
            self.model_.coef[:old_features] = keep.coef[:old_features]
            self.model_.factors[:old_features] = keep.factors[:old_features]
        return ids

    # --- recommending ---------------------------------------------------------------------------
    def _rows(self, ids: Any, features: MatrixLike | None, side: str) -> tuple[sp.csr_matrix,
                                                                               NDArray[np.int64]]:
        """The model-space rows of users or items ``ids``: the stored rows, or, with
        ``features`` (one row per id), those side features with the identity column of
        the ids seen in training (new ids have none: cold start)."""
        is_user = side == "user"
        n_known = self.n_users_ if is_user else self.n_items_
        stored = self.user_features_ if is_user else self.item_features_
        identity = self.user_identity if is_user else self.item_identity
        offset = self._user_offset() if is_user else 0
        name = "userid" if is_user else "items"
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"{name} must be integer ids; got {ids!r}.")
        ids = ids.astype(np.int64)
        if features is None:
            bad = ids[(ids < 0) | (ids >= n_known)]
            if bad.size:
                raise ValueError(f"{side} {bad[0]} was not seen in training ({n_known} "
                                 f"{side}s); give its {side}_features row to score it cold.")
            block = stored[ids]
        else:
            n_raw = stored.shape[1] - (n_known if identity else 0)
            raw = _matrix(features, f"{side}_features", self.dtype, ids.shape[0])
            if raw.shape[1] != n_raw:
                raise ValueError(f"{side}_features has {raw.shape[1]} columns; the model has "
                                 f"{n_raw} {side} feature columns.")
            if ids.size and ids.min() < 0:
                raise ValueError(f"{name} holds the negative id {ids.min()}.")
            known = np.flatnonzero(ids < n_known) if identity else np.zeros(0, np.int64)
            eye = sp.csr_matrix((np.ones(known.shape[0], self.dtype), (known, ids[known])),
                                shape=(ids.shape[0], stored.shape[1] - n_raw))
            block = sp.hstack([raw, eye], format="csr", dtype=self.dtype)
        rows = sp.csr_matrix((block.data, block.indices + offset, block.indptr),
                             shape=(block.shape[0], self.model_.n_features))
        return with_fm_indices(rows), ids

    def _recommender(self, items: Any, item_features: MatrixLike | None
                     ) -> tuple[Recommender, NDArray[np.int64]]:
        """A :class:`Recommender` over the candidate items, and their ids."""
        if items is None and item_features is None:
            if "_catalogue" not in self.__dict__:
                self._catalogue = Recommender(self.model_, self._item_rows())
            return self._catalogue, np.arange(self.n_items_, dtype=np.int64)
        if items is None:
            raise ValueError("item_features needs items: the ids of its rows.")
        rows, ids = self._rows(items, item_features, "item")
        return Recommender(self.model_, rows), ids

    def recommend(self, userid: int | ArrayLike, N: int = 10, *,
                  filter_already_liked_items: bool = True, filter_items: ArrayLike | None = None,
                  items: ArrayLike | None = None, user_features: MatrixLike | None = None,
                  item_features: MatrixLike | None = None, context: MatrixLike | None = None
                  ) -> Ranked:
        """The ``N`` best items for one user or a batch of users, best first (as implicit).

        Scores come from :class:`fmlearn.recommend.Recommender`: the items' terms are
        computed once, then one matrix product and a top-N per batch of users. Filtered
        items are removed *before* the top-N is taken, so a user gets ``N`` items
        whenever ``N`` candidates remain. When fewer remain (``N`` larger than the
        candidates less the filtered ones), one user's result is shorter and a batch's
        rows are padded at the end with id ``-1`` and score ``-inf`` (implicit returns a
        shorter result for one user, and does not pad).

        Parameters
        ----------
        userid : int or array-like of int
            Users to recommend to: ids of the training users, or any id (new users
            included) when ``user_features`` gives their rows.
        N : int, default=10
        filter_already_liked_items : bool, default=True
            Leave out each user's items in ``interactions_`` (their own row; new users
            have none).
        filter_items : array-like of int, default=None
            Item ids never recommended.
        items : array-like of int, default=None
            The candidate item ids (default: every training item); with
            ``item_features``, ids beyond the training items are new items.
        user_features : {array-like, sparse matrix} of shape (n_queried_users, n_user_features)
            Side features of the queried users, one row per id in ``userid``: training
            users keep their identity columns, new users are scored from these alone.
        item_features : {array-like, sparse matrix} of shape (len(items), n_item_features)
            Side features of the candidate ``items``, likewise.
        context : {array-like, sparse matrix} of shape (n_queried_users, n_context_features)
            The context of each query (one row per id in ``userid``), for a model fitted
            with context; without, the context columns are left out (zero).

        Returns
        -------
        ids : ndarray of int64, shape (N,) for one user or (n_users, N)
            Item ids, best first.
        scores : ndarray, same shape
            The model's scores of the pairs.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRecommender
        >>> rec = FMRecommender(n_factors=2, max_iter=5, random_state=0).fit(np.eye(4))
        >>> ids, scores = rec.recommend([0, 1], N=3)
        >>> ids.shape, bool((ids[0] != 0).all())
        ((2, 3), True)
        >>> rec.recommend(0, N=10)[0].shape                # 3 candidates left
        (3,)
        """
        check_is_fitted(self, "model_")
        if not isinstance(N, numbers.Integral) or N < 1:
            raise ValueError(f"N must be a positive integer; got {N!r}.")
        single = np.ndim(userid) == 0
        users, ids = self._rows(np.atleast_1d(userid), user_features, "user")
        if context is not None:
            users = with_fm_indices((users + self._context_rows(context, ids.shape[0])).tocsr())
        recommender, item_ids = self._recommender(items, item_features)
        exclude = None
        if filter_already_liked_items:
            known = np.where(ids < self.n_users_, ids, 0)
            liked = self.interactions_[known]
            liked = sp.diags((ids < self.n_users_).astype(self.dtype)) @ liked
            # liked items as columns of the candidates
            position = np.full(max(self.n_items_, int(item_ids.max(initial=-1)) + 1), -1)
            position[item_ids] = np.arange(item_ids.shape[0])
            liked = liked.tocoo()
            keep = (liked.col < position.shape[0]) & (liked.data != 0)
            cols = position[liked.col[keep]]
            rows = liked.row[keep][cols >= 0]
            exclude = sp.csr_matrix((np.ones(rows.shape[0], bool), (rows, cols[cols >= 0])),
                                    shape=(ids.shape[0], item_ids.shape[0]))
        blocked = None
        if filter_items is not None:
            blocked = np.flatnonzero(np.isin(item_ids, np.asarray(filter_items, dtype=np.int64)))
        top, scores = recommender.recommend(users, N, exclude=exclude, filter_items=blocked)
        top = np.where(top >= 0, item_ids[np.maximum(top, 0)], -1)
        return (top[0], scores[0]) if single and top.ndim == 2 else (top, scores)

    def _similar(self, rows: sp.csr_matrix, query: Any, N: int) -> Ranked:
        single = np.ndim(query) == 0
        ids = np.atleast_1d(np.asarray(query))
        if ids.dtype.kind not in "iu" or ((ids < 0) | (ids >= rows.shape[0])).any():
            raise ValueError(f"ids must lie in [0, {rows.shape[0]}); got {query!r}.")
        top, sims = Recommender(self.model_, rows).similar_items(ids.astype(np.int64), N)
        return (top[0], sims[0]) if single else (top, sims)

    def similar_items(self, itemid: int | ArrayLike, N: int = 10) -> Ranked:
        """Items whose learned factor sums point the same way as ``itemid``'s (cosine),
        most similar first, the item itself left out.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRecommender
        >>> rec = FMRecommender(n_factors=2, max_iter=5, random_state=0).fit(np.eye(4))
        >>> rec.similar_items(0, N=2)[0].shape
        (2,)
        """
        check_is_fitted(self, "model_")
        return self._similar(self._item_rows(), itemid, N)

    def similar_users(self, userid: int | ArrayLike, N: int = 10) -> Ranked:
        """Users whose learned factor sums point the same way as ``userid``'s (cosine),
        most similar first, the user left out.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMRecommender
        >>> rec = FMRecommender(n_factors=2, max_iter=5, random_state=0).fit(np.eye(4))
        >>> rec.similar_users([0, 1], N=3)[0].shape
        (2, 3)
        """
        check_is_fitted(self, "model_")
        return self._similar(self._user_rows(), userid, N)
