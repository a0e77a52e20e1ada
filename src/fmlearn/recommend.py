"""Top-N recommendation with a fitted FM, and ranking metrics for top-N lists.

The decomposition
-----------------
For a second-order FM with intercept ``w0``, linear weights ``w`` and factors ``V``
(one row ``v_j`` per feature), write for any row ``x``

* ``q(x) = V^T x`` (the k factor sums of Rendle 2010, Lemma 3.1), and
* ``s(x) = w . x + 1/2 (|q(x)|^2 - sum_j |v_j|^2 x_j^2)``, the FM score of ``x`` alone
  *without* the intercept, so that ``predict(x) = w0 + s(x)``.

The row of a (user, item) pair is the sum ``x = u + i`` of the user's row and the item's
row. Expanding the FM score of that sum gives, exactly,

    ``score(u + i) = w0 + s(u) + s(i) + <q(u), q(i)> - sum_j |v_j|^2 u_j i_j``.

The last term is zero when the user's and the item's columns are disjoint (the usual
layout: one-hot user, one-hot item, user-side and item-side attributes); when they share
columns it is computed from those shared columns only, so the result is exact either way.
Scoring every item for a batch of users is then one matrix product ``Q_users @ Q_items^T``
plus per-row terms, computed in the model dtype, users in batches so that memory stays
bounded. For MCMC models (:class:`~fmlearn.model.FMSamples`) the decomposition is applied
to every kept sample and the scores are averaged through the model's link, exactly as
``predict`` averages them.

Field-aware, field-weighted and higher-order models (:class:`~fmlearn.model.FFMModel`,
:class:`~fmlearn.fwfm_model.FwFMModel`, :class:`~fmlearn.model.HOFMModel`) have no such
decomposition: their recommendations score every ``user + item`` row, one user at a time,
under the same contract.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import check_array

from ._threads import effective_n_jobs, thread_limits, within_n_jobs
from ._validation import check_sparse_arrays, with_fm_indices
from .fwfm_model import FwFMModel
from .model import FFMModel, FMModel, FMSamples, HOFMModel, add_linked, apply_link, inverse_link

if TYPE_CHECKING:
    from typing import TypeAlias

    from ._typing import CSRMatrix, MatrixLike, Scorer

    # Item indices and their scores (or similarities): 1-D for one query, 2-D for a batch.
    Ranked: TypeAlias = tuple[NDArray[np.int64], NDArray[Any]]
    # Top-N lists: a 2-D array (n_users, n), -1 for padding, or one sequence per user.
    Lists: TypeAlias = ArrayLike | Sequence[ArrayLike]
    # Each user's relevant items: a sparse matrix (n_users, n_items) or one collection per user.
    Relevant: TypeAlias = MatrixLike | Sequence[Iterable[int]]

__all__ = ["Recommender", "auc", "mean_average_precision_at_k", "ndcg_at_k", "precision_at_k",
           "recall_at_k", "recommend", "similar_items"]

# Elements of one (users x items) block of scores; bounds the memory of a batch (~32 MB in float64).
_BLOCK_ELEMENTS = 2**22
# Cache the item terms of every MCMC sample when they take at most this many bytes.
_CACHE_BYTES = 2**28
# Models that give one score per row; the first two rank through the decomposition.
_RANKABLE = (FMModel, FMSamples, FFMModel, HOFMModel, FwFMModel)


def _resolve(estimator_or_model: Scorer) -> tuple[Any, Callable[[Any], Any] | None]:
    """The model, the function turning raw scores into ``predict``'s, and the feature count."""
    if isinstance(estimator_or_model, _RANKABLE):
        return estimator_or_model, None
    model = getattr(estimator_or_model, "model_", None)
    if not isinstance(model, _RANKABLE):
        raise TypeError("expected a fitted estimator with one score per row (FMRegressor, binary "
                        "FMClassifier, FMRanker, FFMRegressor, FFMClassifier, FwFMRegressor, "
                        "FwFMClassifier) or its model; got "
                        f"{type(estimator_or_model).__name__}" +
                        (" that is not fitted (call fit first)" if hasattr(estimator_or_model, "fit")
                         else ""))
    # FMRegressor clips its predictions to the training range; FMClassifier's decision score is raw.
    return model, getattr(estimator_or_model, "_finish_scores", None)


def _check_rows(X: Any, model: Any, name: str) -> tuple[CSRMatrix, bool]:
    """``X`` as a CSR of the model dtype with ``model.n_features`` finite columns (1-D: one row)."""
    was_vector = not sp.issparse(X) and np.ndim(X) == 1
    check_sparse_arrays(X, name)
    X = check_array(X, accept_sparse=("csr", "csc", "coo"), dtype=model.dtype,
                    ensure_all_finite=True, ensure_2d=False, ensure_min_samples=0, input_name=name)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.shape[1] != model.n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects "
                         f"{model.n_features}.")
    X = sp.csr_matrix(X, dtype=model.dtype)
    X.sum_duplicates()
    return X, was_vector


def _norms(model: FMModel) -> NDArray[Any]:
    """``|v_j|^2`` of every feature (model dtype)."""
    return np.einsum("jf,jf->j", model.factors, model.factors)


def _part_terms(model: FMModel, X: CSRMatrix, norms: NDArray[Any], side: str) -> NDArray[Any]:
    """``q(x)`` and ``s(x)`` of every row of the CSR ``X`` for one :class:`FMModel`, as one
    array of shape (n_rows, k + 2) in the model dtype, laid out so that the product of a
    user side and an item side is ``<q(u), q(i)> + s(u) + s(i) + w0``: items
    ``[q, s, 1]``, users ``[q, 1, s + w0]``."""
    k = model.factors.shape[1]
    terms = np.empty((X.shape[0], k + 2), dtype=model.dtype)
    q = terms[:, :k]
    q[:] = X @ model.factors
    s = X @ model.coef + model.dtype.type(0.5) * ((q * q).sum(axis=1) - X.multiply(X) @ norms)
    if side == "user":
        terms[:, k], terms[:, k + 1] = 1, s + model.intercept
    else:
        terms[:, k], terms[:, k + 1] = s, 1
    return terms


def _samples(model: Any) -> tuple[list[FMModel], str | None]:
    """The second-order FMs to decompose and the link that averages them (none for models
    without the decomposition)."""
    if isinstance(model, FMSamples):
        return [model.sample(s) for s in range(model.n_samples)], model.link
    if isinstance(model, FMModel):
        return [model], None
    return [], None


class Recommender:
    """Top-N items for users under a fitted FM, with the catalogue's terms computed once.

    The score of user row ``u`` and item row ``i`` is the model's score of the row
    ``u + i``, computed through the decomposition in the module notes: one matrix
    product per batch of users instead of one FM pass per (user, item) pair. Use this
    class when many calls share one catalogue (the HTTP server does);
    :func:`recommend` and :func:`similar_items` build one for a single call.

    Parameters
    ----------
    estimator_or_model : FMRegressor, FMClassifier, FMModel or FMSamples
        A fitted estimator or a model. Scores are those of ``predict`` for a regressor
        (clipped to the training range when ``clip_predictions`` is set; the ranking
        then uses the unclipped score, so that items clipped to one value keep their
        order), those of ``decision_function`` for a classifier (monotone in the
        probability of ``classes_[1]``), and the raw FM score for a model.
    item_features : {array-like, sparse matrix} of shape (n_items, n_features)
        The candidate catalogue, one row per item, over all ``n_features`` columns
        of the model (normally zero outside the item columns).

    Attributes
    ----------
    n_items : int
        The number of candidate items.
    n_jobs : int or None
        The estimator's ``n_jobs``: the matrix products run on that many BLAS threads
        (all cores for a model given alone, ``-1``).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMModel
    >>> model = FMModel(0.0, np.zeros(4), np.array([[1.0], [-1.0], [2.0], [-2.0]]))
    >>> items = np.array([[0, 0, 1.0, 0], [0, 0, 0, 1.0]])   # users: columns 0-1, items: 2-3
    >>> rec = Recommender(model, items)
    >>> rec.recommend(np.array([1.0, 0, 0, 0]), n=2)
    (array([0, 1]), array([ 2., -2.]))
    >>> rec.recommend(np.eye(4)[:2], n=1)
    (array([[0],
           [1]]), array([[2.],
           [2.]]))
    """

    n_items: int

    def __init__(self, estimator_or_model: Scorer, item_features: MatrixLike) -> None:
        self._model, self._finish = _resolve(estimator_or_model)
        self.n_jobs = getattr(estimator_or_model, "n_jobs", -1)
        self._items, _ = _check_rows(item_features, self._model, "item_features")
        self.n_items = self._items.shape[0]
        self._item_columns = np.unique(self._items.indices)
        self._models, self._link = _samples(self._model)
        k = self._model.factors.shape[-1]
        size = len(self._models) * self.n_items * (k + 2) * self._model.dtype.itemsize
        self._cache: list[NDArray[Any]] | None = None
        with thread_limits(effective_n_jobs(self.n_jobs)):
            self._norms = [_norms(m) for m in self._models]
            if size <= _CACHE_BYTES and self._models:
                self._cache = [self._item_terms(s) for s in range(len(self._models))]

    def _item_terms(self, s: int) -> NDArray[Any]:
        """Sample ``s``'s item side ``[q, s, 1]`` (see :func:`_part_terms`)."""
        if self._cache is not None:
            return self._cache[s]
        return _part_terms(self._models[s], self._items, self._norms[s], "item")

    # --- scoring --------------------------------------------------------------------------------
    def _rank_keys(self, users: CSRMatrix) -> NDArray[Any]:
        """Keys to rank the items by for each user row (higher is better), shape (n_users, n_items).

        For one :class:`FMModel` the raw score in the model dtype; for samples their averaged
        score in float64 (``predict``'s score before its cast to the model dtype).
        """
        if not self._models:  # no decomposition: score every user + item row
            ones = sp.csr_matrix(np.ones((self.n_items, 1), dtype=self._model.dtype))
            keys = np.empty((users.shape[0], self.n_items), dtype=self._model.dtype)
            for u in range(users.shape[0]):
                rows = with_fm_indices(sp.csr_matrix(self._items + ones @ users[u]))
                keys[u] = self._model.predict_csr(rows, check=False)
            return keys
        shared = np.intersect1d(np.unique(users.indices), self._item_columns, assume_unique=True)
        total = None
        for s, model in enumerate(self._models):
            norms = self._norms[s]
            block = _part_terms(model, users, norms, "user") @ self._item_terms(s).T
            if shared.size:  # - sum_j |v_j|^2 u_j i_j over the columns both sides use
                both = (users[:, shared] @ sp.diags(norms[shared])) @ self._items[:, shared].T
                block -= both.toarray().astype(model.dtype, copy=False)
            if self._link is None:
                return block
            total = add_linked(total, apply_link(block, self._link, self._model.bounds),
                               self._link)
        return inverse_link(total, len(self._models), self._link)

    def _scores_from_keys(self, keys: NDArray[Any]) -> NDArray[Any]:
        """The scores ``predict`` (or ``decision_function``) returns, from ranking keys."""
        if self._link is not None:
            keys = keys.astype(self._model.dtype)
        if self._finish is not None:
            keys = self._finish(keys)
        return keys

    @within_n_jobs
    def score(self, user_features: MatrixLike) -> NDArray[np.floating[Any]]:
        """Scores of every catalogue item for each user, shape (n_users, n_items).

        Equal (up to rounding) to the estimator's ``predict`` (regressor) or
        ``decision_function`` (classifier) of the rows ``user + item``.

        Parameters
        ----------
        user_features : {array-like, sparse matrix} of shape (n_users, n_features)

        Returns
        -------
        scores : ndarray of shape (n_users, n_items), model dtype

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMModel
        >>> model = FMModel(1.0, np.ones(3), np.ones((3, 1)))
        >>> Recommender(model, np.array([[0, 1.0, 0], [0, 0, 1.0]])).score(np.array([[1.0, 0, 0]]))
        array([[4., 4.]])
        """
        users, _ = _check_rows(user_features, self._model, "user_features")
        return self._scores_from_keys(self._rank_keys(users))

    # --- top-N ----------------------------------------------------------------------------------
    def _blocked(self, exclude: Any, n_users: int, was_single: bool) -> CSRMatrix | None:
        """The excluded items as a CSR (n_users x n_items) of ones, or None."""
        if exclude is None:
            return None
        if sp.issparse(exclude):
            blocked = sp.csr_matrix(exclude)
            if blocked.shape != (n_users, self.n_items):
                raise ValueError(f"exclude has shape {blocked.shape}; expected (n_users, n_items) = "
                                 f"({n_users}, {self.n_items}).")
            blocked = blocked.copy()
            blocked.eliminate_zeros()
            blocked.data = np.ones_like(blocked.data, dtype=bool)
            blocked.sum_duplicates()  # recommend counts each user's excluded items
            return blocked
        rows = [exclude] if was_single else list(exclude)
        if len(rows) != n_users:
            raise ValueError(f"exclude lists {len(rows)} users' items; there are {n_users} users.")
        lists = [_as_item_ids(r, self.n_items, "exclude") for r in rows]
        indptr = np.concatenate([[0], np.cumsum([a.shape[0] for a in lists])])
        indices = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        blocked = sp.csr_matrix((np.ones(indices.shape[0], dtype=bool), indices, indptr),
                                shape=(n_users, self.n_items))
        blocked.sum_duplicates()
        return blocked

    @within_n_jobs
    def recommend(self, user_features: MatrixLike, n: int = 10, *,
                  exclude: MatrixLike | Sequence[ArrayLike] | None = None,
                  filter_items: ArrayLike | None = None, batch_size: int | None = None) -> Ranked:
        """The ``n`` best items of the catalogue for each user, best first.

        Parameters
        ----------
        user_features : {array-like, sparse matrix}
            One user as a 1-D dense row or a sparse matrix with one row, or a 2-D dense
            or sparse matrix with one row per user; ``n_features`` columns (normally
            zero outside the user columns).
        n : int, default=10
            The number of items to return per user. When fewer items are available
            (``n`` larger than the catalogue, or items excluded), one user gets a shorter
            result, and a batch gets ``min(n, n_items)`` columns padded at the end of each
            user's row with item ``-1`` and score ``-inf``.
        exclude : sequence of int, list of sequences or sparse matrix, default=None
            Items never recommended, e.g. those already seen: for one user a sequence of
            item indices (rows of ``item_features``); for a batch a list of such
            sequences, one per user, or a sparse matrix of shape (n_users, n_items)
            whose stored non-zero entries mark the excluded items.
        filter_items : sequence of int, default=None
            Items never recommended to any user.
        batch_size : int, default=None
            Users scored per matrix product; by default as many as keep one block of
            scores under about 4 million entries.

        Returns
        -------
        items : ndarray of int64, shape (n,) for one user or (n_users, n) for a batch
            Row indices into ``item_features``.
        scores : ndarray of the model dtype, same shape
            The scores ``predict`` (regressor), ``decision_function`` (classifier) or
            the model (``FMModel``, ``FMSamples``) gives the rows ``user + item``.

        Raises
        ------
        ValueError
            If a matrix has the wrong number of features or non-finite values, or an
            excluded item is out of range.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMModel
        >>> model = FMModel(0.0, np.array([0, 0, 3.0, 2.0, 1.0]), np.zeros((5, 1)))
        >>> rec = Recommender(model, np.eye(5)[2:])          # three items: features 2, 3, 4
        >>> rec.recommend(np.eye(5)[0], n=2, exclude=[0])
        (array([1, 2]), array([2., 1.]))
        >>> items, scores = rec.recommend(np.eye(5)[:2], n=3, exclude=[[0], [0, 1]])
        >>> items
        array([[ 1,  2, -1],
               [ 2, -1, -1]])
        """
        if not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}.")
        users, single = _check_rows(user_features, self._model, "user_features")
        single = single or (sp.issparse(user_features) and users.shape[0] == 1)
        n_users = users.shape[0]
        blocked = self._blocked(exclude, n_users, single)
        filtered = None if filter_items is None else np.unique(
            _as_item_ids(filter_items, self.n_items, "filter_items"))
        width = min(int(n), self.n_items)
        if batch_size is None:
            batch_size = max(1, _BLOCK_ELEMENTS // max(1, self.n_items))
        elif not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
        ids = np.full((n_users, width), -1, dtype=np.int64)
        scores = np.full((n_users, width), -np.inf, dtype=self._model.dtype)
        for start in range(0, n_users, batch_size):
            stop = min(n_users, start + batch_size)
            keys = self._rank_keys(users[start:stop])
            available = np.full(stop - start, self.n_items)
            if filtered is not None:
                keys[:, filtered] = -np.inf
                available -= filtered.shape[0]
            if blocked is not None:  # each user's excluded items, less those filtered already
                part = blocked[start:stop]
                rows = np.repeat(np.arange(stop - start), np.diff(part.indptr))
                keys[rows, part.indices] = -np.inf
                new = rows if filtered is None else rows[~np.isin(part.indices, filtered)]
                available -= np.bincount(new, minlength=stop - start)
            top = _top_columns(keys, width)
            top_keys = np.take_along_axis(keys, top, axis=1)
            valid = np.arange(width)[None, :] < available[:, None]
            finished = self._scores_from_keys(top_keys)
            ids[start:stop] = np.where(valid, top, -1)
            scores[start:stop] = np.where(valid, finished, -np.inf)
        if single:
            keep = ids[0] >= 0
            return ids[0][keep], scores[0][keep]
        return ids, scores

    # --- item-item ------------------------------------------------------------------------------
    @within_n_jobs
    def similar_items(self, item: int | ArrayLike, n: int = 10, *,
                      include_self: bool = False) -> Ranked:
        """Items whose factor sums ``q(i) = V^T x_i`` point the same way as ``item``'s.

        Similarity is the cosine of ``q(i)`` and ``q(j)`` (0 when either is zero); for
        MCMC models the cosine of each sample's factor sums, averaged over the samples
        (the samples' factors are not aligned, their cosines are).

        Parameters
        ----------
        item : int or sequence of int
            Row index (or indices) into ``item_features``.
        n : int, default=10
            The number of items to return (fewer when the catalogue is smaller).
        include_self : bool, default=False
            Whether ``item`` itself may appear (it normally comes first with similarity
            1, as in the implicit library).

        Returns
        -------
        items, similarities : ndarray, shape (n,) for one item or (n_queries, n)
            Indices into ``item_features`` and cosine similarities, most similar first.

        Examples
        --------
        >>> import numpy as np
        >>> from fmlearn import FMModel
        >>> model = FMModel(0.0, np.zeros(3), np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0]]))
        >>> items, sims = Recommender(model, np.eye(3)).similar_items(0, n=2)
        >>> items
        array([1, 2])
        """
        if not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}.")
        if not self._models:
            raise TypeError(f"similar_items compares second-order factor sums; a "
                            f"{type(self._model).__name__} has no such vectors per item.")
        single = isinstance(item, numbers.Integral)
        queries = _as_item_ids([item] if single else item, self.n_items, "item")
        total = np.zeros((queries.shape[0], self.n_items))
        for s in range(len(self._models)):
            q = self._item_terms(s)[:, :-2].astype(np.float64)
            norm = np.linalg.norm(q, axis=1)
            unit = np.divide(q, norm[:, None], out=np.zeros_like(q), where=norm[:, None] > 0)
            total += unit[queries] @ unit.T
        sims = total / len(self._models)
        if not include_self:
            sims[np.arange(queries.shape[0]), queries] = -np.inf
        width = min(int(n), self.n_items - (0 if include_self else 1))
        top = _top_columns(sims, width)
        values = np.take_along_axis(sims, top, axis=1)
        return (top[0], values[0]) if single else (top, values)


def _top_columns(keys: NDArray[Any], width: int) -> NDArray[np.int64]:
    """Column indices of the ``width`` largest keys of each row, largest first (ties: lower index)."""
    n_cols = keys.shape[1]
    if width <= 0:
        return np.zeros((keys.shape[0], 0), dtype=np.int64)
    if width < n_cols:
        part = np.argpartition(keys, n_cols - width, axis=1)[:, n_cols - width:]
    else:
        part = np.broadcast_to(np.arange(n_cols), keys.shape)
    part_keys = np.take_along_axis(keys, part, axis=1)
    order = np.lexsort((part, -part_keys), axis=1)
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def _as_item_ids(values: Any, n_items: int, name: str) -> NDArray[np.int64]:
    ids = np.asarray(values)
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a sequence of integer item indices; got {values!r}.")
    ids = ids.astype(np.int64)
    bad = ids[(ids < 0) | (ids >= n_items)]
    if bad.size:
        raise ValueError(f"{name} holds item index {bad[0]}, outside the catalogue of {n_items} "
                         "items.")
    return ids


def recommend(estimator_or_model: Scorer, user_features: MatrixLike, item_features: MatrixLike,
              n: int = 10, *, exclude: MatrixLike | Sequence[ArrayLike] | None = None,
              filter_items: ArrayLike | None = None, batch_size: int | None = None) -> Ranked:
    """The ``n`` best catalogue items for one user or a batch of users.

    Equivalent to scoring the row ``user + item`` for every item with the estimator's
    ``predict`` (regressor) or ``decision_function`` (classifier; monotone in the
    probability, so the ranking is the same) and sorting, computed instead as one
    matrix product per batch of users through the decomposition in the module notes.
    Columns used by both the user and the item rows are handled exactly. One user (a
    1-D dense row or a 1-row sparse matrix) gives 1-D results, a 2-D matrix of users
    2-D results, as in the implicit library.

    Parameters
    ----------
    estimator_or_model : FMRegressor, FMClassifier, FMModel or FMSamples
        A fitted estimator or a model (MCMC samples are averaged as ``predict`` does).
    user_features : {array-like, sparse matrix}
        One row per user over all ``n_features`` columns.
    item_features : {array-like, sparse matrix} of shape (n_items, n_features)
        The candidate catalogue, one row per item.
    n, exclude, filter_items, batch_size
        As in :meth:`Recommender.recommend`.

    Returns
    -------
    items : ndarray of int64, shape (n,) or (n_users, n)
        Indices into ``item_features``, best first; ``-1`` pads a batch row with fewer
        than ``n`` available items (one user's result is shorter instead).
    scores : ndarray, same shape
        The items' scores (``-inf`` for padding).

    See Also
    --------
    Recommender : computes the catalogue's terms once for many calls.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from fmlearn import FMRegressor
    >>> rng = np.random.default_rng(0)
    >>> users, items = rng.integers(0, 5, 300), rng.integers(0, 8, 300)
    >>> X = sp.csr_matrix((np.ones(600), (np.repeat(np.arange(300), 2),
    ...                    np.column_stack([users, 5 + items]).ravel())), shape=(300, 13))
    >>> reg = FMRegressor(n_factors=2, max_iter=5, random_state=0).fit(X, users * items % 3)
    >>> catalogue = sp.eye(13, format="csr")[5:]        # the 8 items' one-hot rows
    >>> top, scores = recommend(reg, sp.eye(13, format="csr")[[0]], catalogue, n=3, exclude=[1])
    >>> top.shape, bool(np.all(np.diff(scores) <= 0)), 1 in top
    ((3,), True, False)
    """
    return Recommender(estimator_or_model, item_features).recommend(
        user_features, n, exclude=exclude, filter_items=filter_items, batch_size=batch_size)


def similar_items(estimator_or_model: Scorer, item_features: MatrixLike, item: int | ArrayLike,
                  n: int = 10, *, include_self: bool = False) -> Ranked:
    """The items most similar to ``item``: cosine similarity of the factor sums ``V^T x``.

    Parameters
    ----------
    estimator_or_model : FMRegressor, FMClassifier, FMModel or FMSamples
    item_features : {array-like, sparse matrix} of shape (n_items, n_features)
    item : int or sequence of int
    n : int, default=10
    include_self : bool, default=False

    Returns
    -------
    items, similarities : ndarray
        As in :meth:`Recommender.similar_items`: 1-D for one ``item``, 2-D for several.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMModel
    >>> model = FMModel(0.0, np.zeros(3), np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    >>> similar_items(model, np.eye(3), 0, n=2)
    (array([1, 2]), array([1., 0.]))
    """
    return Recommender(estimator_or_model, item_features).similar_items(
        item, n, include_self=include_self)


# --- ranking metrics ------------------------------------------------------------------------------
def _lists(recommended: Any) -> list[NDArray[np.int64]]:
    """Each user's recommended items as a 1-D int64 array, ``-1`` padding dropped."""
    if isinstance(recommended, np.ndarray):
        if recommended.ndim != 2:
            raise ValueError("recommended must be a 2-D array (n_users, n) or a list of lists; got "
                             f"an array of shape {recommended.shape}.")
        rows = list(recommended)
    else:
        rows = list(recommended)
    out = []
    for row in rows:
        row = np.asarray(row)
        if row.size and row.dtype.kind not in "iu":
            raise ValueError(f"recommended lists must hold integer item indices; got {row!r}.")
        row = row.astype(np.int64).ravel()
        out.append(row[row >= 0])
    return out


def _relevant_sets(relevant: Any, n_users: int) -> list[NDArray[np.int64]]:
    if sp.issparse(relevant):
        relevant = sp.csr_matrix(relevant)
        relevant.eliminate_zeros()
        rows = [relevant.indices[relevant.indptr[u]:relevant.indptr[u + 1]]
                for u in range(relevant.shape[0])]
    else:
        rows = [np.unique(np.asarray(list(r) if isinstance(r, (set, frozenset)) else r,
                                     dtype=np.int64)) for r in relevant]
    if len(rows) != n_users:
        raise ValueError(f"recommended has {n_users} users but relevant has {len(rows)}.")
    return rows


def _per_user(recommended: Lists, relevant: Relevant, k: int,
              metric: Callable[[NDArray[np.bool_], int], float]) -> float:
    """Mean of ``metric(hits, n_relevant)`` over the users with at least one relevant item.

    ``hits`` is a boolean array: whether each of the user's first ``k`` recommendations
    is relevant.
    """
    if not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    lists = _lists(recommended)
    sets = _relevant_sets(relevant, len(lists))
    values = []
    for items, rel in zip(lists, sets):
        if rel.size == 0:
            continue
        values.append(metric(np.isin(items[:k], rel), rel.size))
    if not values:
        raise ValueError("no user has a relevant item; the metric is undefined.")
    return float(np.mean(values))


def precision_at_k(recommended: Lists, relevant: Relevant, k: int = 10) -> float:
    """Mean over users of the share of the first ``k`` recommendations that are relevant.

    ``|top_k & relevant| / k``; a list shorter than ``k`` still divides by ``k``. Users
    without relevant items are left out (as in every metric here). The implicit library's
    ``precision_at_k`` divides by ``min(k, |relevant|)`` instead, which reads higher for
    users with fewer than ``k`` relevant items.

    Parameters
    ----------
    recommended : ndarray of shape (n_users, n) or list of sequences
        Each user's recommended item indices, best first (``-1`` entries, the padding
        :func:`recommend` returns, are ignored).
    relevant : list of sets or sequences, or sparse matrix of shape (n_users, n_items)
        Each user's relevant items (a matrix marks them by its stored non-zeros).
    k : int, default=10

    Returns
    -------
    float

    Examples
    --------
    >>> precision_at_k([[3, 1, 2], [0, 5, 4]], [{1, 2}, {9}], k=2)
    0.25
    """
    return _per_user(recommended, relevant, k, lambda hits, n_rel: hits.sum() / k)


def recall_at_k(recommended: Lists, relevant: Relevant, k: int = 10) -> float:
    """Mean over users of the share of their relevant items found in the first ``k``.

    ``|top_k & relevant| / |relevant|``.

    Parameters
    ----------
    recommended, relevant, k
        As in :func:`precision_at_k`.

    Returns
    -------
    float

    Examples
    --------
    >>> recall_at_k([[3, 1, 2], [0, 5, 4]], [{1, 2}, {0, 7, 8, 9}], k=2)
    0.375
    """
    return _per_user(recommended, relevant, k, lambda hits, n_rel: hits.sum() / n_rel)


def _discounts(k: int) -> NDArray[np.float64]:
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg_at_k(recommended: Lists, relevant: Relevant, k: int = 10) -> float:
    """Mean over users of the normalised discounted cumulative gain of the first ``k``.

    Binary gains: ``DCG = sum_{r < k, item r relevant} 1 / log2(r + 2)`` over ranks
    ``r = 0, 1, ...``, divided by the DCG of an ideal list (all relevant items first,
    ``min(k, |relevant|)`` of them). Equals ``sklearn.metrics.ndcg_score`` with ``k``
    on full score vectors that rank the recommended items first. For graded relevance
    over full score vectors use ``sklearn.metrics.ndcg_score`` itself.

    Parameters
    ----------
    recommended, relevant, k
        As in :func:`precision_at_k`.

    Returns
    -------
    float

    Examples
    --------
    >>> round(ndcg_at_k([[3, 1]], [{1}], k=2), 4)   # 1/log2(3)
    0.6309
    """
    def ndcg(hits: NDArray[np.bool_], n_rel: int) -> float:
        d = _discounts(k)
        return float(d[:hits.size][hits].sum() / d[:min(k, n_rel)].sum())
    return _per_user(recommended, relevant, k, ndcg)


def mean_average_precision_at_k(recommended: Lists, relevant: Relevant, k: int = 10) -> float:
    """MAP@k: mean over users of the average precision of the first ``k`` recommendations.

    ``AP@k = sum_{r <= k, item r relevant} precision@r / min(k, |relevant|)``.

    Parameters
    ----------
    recommended, relevant, k
        As in :func:`precision_at_k`.

    Returns
    -------
    float

    Examples
    --------
    >>> mean_average_precision_at_k([[1, 3, 2]], [{1, 2}], k=3)   # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    def average_precision(hits: NDArray[np.bool_], n_rel: int) -> float:
        precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
        return float(precision[hits].sum() / min(k, n_rel))
    return _per_user(recommended, relevant, k, average_precision)


def auc(recommended: Lists, relevant: Relevant, n_items: int | ArrayLike) -> float:
    """Mean over users of the ROC AUC of their ranking of the catalogue.

    Each user's catalogue of ``n_items`` items is ranked by the list: listed items in
    list order, then every unlisted item, tied. The AUC is the probability that a
    random relevant item ranks above a random irrelevant one, ties counting one half
    (the Mann-Whitney statistic, as ``sklearn.metrics.roc_auc_score`` computes it). With
    full rankings (``n >= n_items`` in :func:`recommend`) this is the AUC of the scores.
    Users with no relevant or no irrelevant item are left out.

    Parameters
    ----------
    recommended, relevant
        As in :func:`precision_at_k`; items must lie in ``[0, n_items)``.
    n_items : int or sequence of int
        The number of candidate items, for all users or per user (e.g. the catalogue
        less the items excluded for that user, which then appear in neither argument).

    Returns
    -------
    float

    Examples
    --------
    >>> auc([[2, 0, 1, 3]], [{0, 3}], n_items=4)   # pairs (0 > 1), (0 < 2), (3 < 1), (3 < 2)
    0.25
    """
    lists = _lists(recommended)
    sets = _relevant_sets(relevant, len(lists))
    sizes = np.broadcast_to(np.asarray(n_items, dtype=np.int64), (len(lists),))
    values = []
    for items, rel, size in zip(lists, sets, sizes):
        if np.unique(items).size != items.size:
            raise ValueError(f"a recommended list repeats an item: {items.tolist()}.")
        outside = np.concatenate([items[(items >= size)], rel[(rel < 0) | (rel >= size)]])
        if outside.size:
            raise ValueError(f"item {outside[0]} lies outside the catalogue of {size} items.")
        n_pos = rel.size
        n_neg = size - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        hits = np.isin(items, rel)
        listed_neg = (~hits).sum()
        unlisted_neg = n_neg - listed_neg
        unlisted_pos = n_pos - hits.sum()
        negatives_after = listed_neg - np.cumsum(~hits)  # listed negatives ranked below each item
        wins = (negatives_after[hits] + unlisted_neg).sum() + 0.5 * unlisted_pos * unlisted_neg
        values.append(wins / (n_pos * n_neg))
    if not values:
        raise ValueError("no user has both relevant and irrelevant items; the AUC is undefined.")
    return float(np.mean(values))
