"""recommend() equals predict on every stacked (user + item) row, sorted; metrics by hand."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import ndcg_score, roc_auc_score

from fmlearn import FFMClassifier, FMClassifier, FMModel, FMRanker, FMRegressor, FwFMRegressor
from fmlearn.model import FMSamples
from fmlearn.recommend import (Recommender, auc, mean_average_precision_at_k, ndcg_at_k,
                               precision_at_k, recall_at_k, recommend, similar_items)

N_USERS, N_ITEMS = 9, 14
# Columns: one-hot user, one-hot item, one real user attribute, one real item attribute.
N_FEATURES = N_USERS + N_ITEMS + 2


def user_rows(users, rng):
    n = len(users)
    return sp.csr_matrix((np.column_stack([np.ones(n), rng.normal(size=n)]).ravel(),
                          (np.repeat(np.arange(n), 2),
                           np.column_stack([users, np.full(n, N_FEATURES - 2)]).ravel())),
                         shape=(n, N_FEATURES))


def item_rows(items, rng):
    n = len(items)
    return sp.csr_matrix((np.column_stack([np.ones(n), rng.normal(size=n)]).ravel(),
                          (np.repeat(np.arange(n), 2),
                           np.column_stack([N_USERS + np.asarray(items),
                                            np.full(n, N_FEATURES - 1)]).ravel())),
                         shape=(n, N_FEATURES))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    users_tab = user_rows(np.arange(N_USERS), rng)
    items_tab = item_rows(np.arange(N_ITEMS), rng)
    u = rng.integers(0, N_USERS, 400)
    i = rng.integers(0, N_ITEMS, 400)
    X = (users_tab[u] + items_tab[i]).tocsr()
    y = np.sin(u) * np.cos(i) + 0.3 * rng.normal(size=400)
    return X, y, users_tab, items_tab


ESTIMATORS = {
    "sgd-regressor": lambda: FMRegressor(n_factors=3, max_iter=15, init_std=0.1, dtype="float64",
                                         random_state=0, clip_predictions=False),
    "sgd-classifier": lambda: FMClassifier(n_factors=3, max_iter=15, init_std=0.1,
                                           dtype="float64", random_state=0),
    "mcmc-regressor": lambda: FMRegressor(n_factors=3, solver="mcmc", max_iter=12, init_std=0.1,
                                          dtype="float64", random_state=0, clip_predictions=False),
    "mcmc-classifier": lambda: FMClassifier(n_factors=3, solver="mcmc", max_iter=12, init_std=0.1,
                                            dtype="float64", random_state=0),
    "sgd-regressor-float32": lambda: FMRegressor(n_factors=3, max_iter=15, init_std=0.1,
                                                 random_state=0, clip_predictions=False),
    # Without the decomposition: every user + item row is scored.
    "ffm-classifier": lambda: FFMClassifier(
        fields=[0] * N_USERS + [1] * N_ITEMS + [2, 3], n_factors=3, max_iter=10, dtype="float64",
        random_state=0),
    "fwfm-regressor": lambda: FwFMRegressor(
        fields=[0] * N_USERS + [1] * N_ITEMS + [2, 3], n_factors=3, max_iter=10, dtype="float64",
        random_state=0, clip_predictions=False),
    "order3-regressor": lambda: FMRegressor(order=3, n_factors=3, max_iter=10, init_std=0.1,
                                            dtype="float64", random_state=0,
                                            clip_predictions=False),
    "bpr-ranker": lambda: FMRanker(n_factors=3, max_iter=10, init_std=0.1, dtype="float64",
                                   random_state=0),
}


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def fitted(request, data):
    X, y, _, _ = data
    est = ESTIMATORS[request.param]()
    est.fit(X, y > 0 if hasattr(est, "predict_proba") else y)
    return est


def brute_scores(est, users, items):
    """Score every (user, item) pair by stacking the rows and calling predict / decision_function."""
    score = getattr(est, "decision_function", est.predict)
    rows = sp.vstack([(users[[u]][np.zeros(items.shape[0], int)] + items) for u in
                      range(users.shape[0])]).tocsr()
    return score(rows).reshape(users.shape[0], items.shape[0])


def test_recommend_equals_predict_on_stacked_rows(fitted, data):
    _, _, users, items = data
    expected = brute_scores(fitted, users, items)
    float32 = fitted.model_.dtype == np.float32
    tol = dict(rtol=1e-4, atol=1e-4) if float32 else dict(rtol=1e-9, atol=1e-9)
    ids, scores = recommend(fitted, users, items, n=5)
    assert ids.shape == scores.shape == (N_USERS, 5)
    assert scores.dtype == fitted.model_.dtype
    for u in range(N_USERS):
        order = np.argsort(-expected[u], kind="stable")[:5]
        np.testing.assert_allclose(scores[u], expected[u][order], **tol)
        np.testing.assert_allclose(scores[u], expected[u][ids[u]], **tol)
        if not float32:
            np.testing.assert_array_equal(ids[u], order)
    np.testing.assert_allclose(Recommender(fitted, items).score(users), expected, **tol)


def test_batches_give_the_same_result(fitted, data):
    _, _, users, items = data
    whole = recommend(fitted, users, items, n=4)
    for batch_size in (1, 2, 5):
        np.testing.assert_array_equal(recommend(fitted, users, items, n=4,
                                                batch_size=batch_size)[0], whole[0])


def test_clipped_regressor_returns_predict_scores_and_ranks_by_raw_score(data):
    X, y, users, items = data
    reg = FMRegressor(n_factors=3, max_iter=15, init_std=0.1, dtype="float64",
                      random_state=0).fit(X, y)
    raw = Recommender(reg.model_, items).score(users)
    reg.target_range_ = tuple(np.quantile(raw, [0.2, 0.8]))  # clip a fifth of the scores each side
    expected = brute_scores(reg, users, items)
    assert (expected == reg.target_range_[1]).sum() > N_USERS  # ties in predict's scores
    ids, scores = recommend(reg, users, items, n=N_ITEMS)
    for u in range(N_USERS):
        np.testing.assert_allclose(scores[u], expected[u][ids[u]], rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(ids[u], np.argsort(-raw[u], kind="stable"))


def test_one_user_gives_1d_and_a_batch_gives_2d(fitted, data):
    _, _, users, items = data
    batch_ids, batch_scores = recommend(fitted, users, items, n=3)
    dense_row = users[2].toarray()[0]
    for one in (dense_row, users[2], users[[2]].tocoo(), list(dense_row)):
        ids, scores = recommend(fitted, one, items, n=3)
        assert ids.shape == scores.shape == (3,)
        np.testing.assert_array_equal(ids, batch_ids[2])
        np.testing.assert_allclose(scores, batch_scores[2], rtol=1e-5)
    ids, _ = recommend(fitted, dense_row[None, :], items, n=3)  # a 2-D dense batch of one
    assert ids.shape == (1, 3)


def test_models_and_samples_are_accepted(fitted, data):
    _, _, users, items = data
    ids, _ = recommend(fitted.model_, users, items, n=3)
    if not isinstance(fitted, FMClassifier):  # the estimators differ from their model by clipping only
        np.testing.assert_array_equal(ids, recommend(fitted, users, items, n=3)[0])


def test_overlapping_user_and_item_columns_are_exact():
    rng = np.random.default_rng(3)
    n_features = 12
    for model in (FMModel(0.4, rng.normal(size=n_features), rng.normal(size=(n_features, 3))),
                  FMSamples(rng.normal(size=3), rng.normal(size=(3, n_features)),
                            rng.normal(size=(3, n_features, 2)), link="probit")):
        users = sp.random(5, n_features, density=0.4, format="csr", random_state=1,
                          data_rvs=lambda n: rng.normal(size=n))
        items = sp.random(7, n_features, density=0.4, format="csr", random_state=2,
                          data_rvs=lambda n: rng.normal(size=n))
        assert (abs(users).sum(0).A1 * abs(items).sum(0).A1 > 0).any()  # shared columns
        expected = np.array([[model.predict(users[u] + items[i])[0] for i in range(7)]
                             for u in range(5)])
        got = Recommender(model, items).score(users)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)
        ids, scores = recommend(model, users, items, n=7)
        np.testing.assert_array_equal(ids, np.argsort(-expected, axis=1, kind="stable"))


def test_exclusion_single_and_batch(fitted, data):
    _, _, users, items = data
    full_ids, _ = recommend(fitted, users, items, n=N_ITEMS)
    seen = [[int(full_ids[u, 0]), int(full_ids[u, 3])] for u in range(N_USERS)]
    expected = [[i for i in full_ids[u] if i not in seen[u]][:5] for u in range(N_USERS)]
    ids, _ = recommend(fitted, users[4], items, n=5, exclude=seen[4])
    np.testing.assert_array_equal(ids, expected[4])
    ids, _ = recommend(fitted, users, items, n=5, exclude=seen)
    np.testing.assert_array_equal(ids, expected)
    matrix = sp.lil_matrix((N_USERS, N_ITEMS))
    for u, s in enumerate(seen):
        matrix[u, s] = 1
    ids, _ = recommend(fitted, users, items, n=5, exclude=matrix.tocsr())
    np.testing.assert_array_equal(ids, expected)
    ids, _ = recommend(fitted, users, items, n=5, filter_items=[int(full_ids[0, 0])])
    assert not (ids == full_ids[0, 0]).any()


def test_fewer_available_items_than_n(fitted, data):
    _, _, users, items = data
    ids, scores = recommend(fitted, users[0], items, n=50, exclude=[0, 1, 1])
    assert ids.shape == (N_ITEMS - 2,) and np.isfinite(scores).all()
    assert not np.isin([0, 1], ids).any()
    ids, scores = recommend(fitted, users[:2], items, n=50, exclude=[[0, 1], []])
    assert ids.shape == (2, N_ITEMS)
    assert (ids[0, -2:] == -1).all() and np.isneginf(scores[0, -2:]).all()
    assert (ids[1] >= 0).all() and np.isfinite(scores[1]).all()
    assert sorted(ids[0, :-2]) == list(range(2, N_ITEMS))


def test_excluded_and_filtered_items_counted_once(fitted, data):
    """A sparse exclude with repeated entries, overlapping filter_items: each item leaves once."""
    _, _, users, items = data
    repeated = sp.coo_matrix((np.ones(4), ([0, 0, 0, 1], [2, 2, 3, 3])), shape=(2, N_ITEMS))
    ids, scores = recommend(fitted, users[:2], items, n=N_ITEMS, exclude=repeated,
                            filter_items=[3, 4, 4])
    assert ((ids >= 0).sum(axis=1) == [N_ITEMS - 3, N_ITEMS - 2]).all()
    assert (np.isfinite(scores) == (ids >= 0)).all()
    assert not np.isin([2, 3, 4], ids[0]).any() and not np.isin([3, 4], ids[1]).any()
    assert sorted(ids[1, :N_ITEMS - 2]) == [i for i in range(N_ITEMS) if i not in (3, 4)]


def test_input_errors(fitted, data):
    _, _, users, items = data
    with pytest.raises(ValueError, match="user_features has 3 features, but the model expects 25"):
        recommend(fitted, np.ones(3), items)
    with pytest.raises(ValueError, match="item_features has 4 features"):
        recommend(fitted, users, items[:, :4])
    with pytest.raises(ValueError, match="exclude holds item index 14, outside the catalogue"):
        recommend(fitted, users[0], items, exclude=[14])
    with pytest.raises(ValueError, match="n must be a positive integer"):
        recommend(fitted, users[0], items, n=0)
    with pytest.raises(ValueError, match="exclude lists 1 users"):
        recommend(fitted, users, items, exclude=[[1]])
    with pytest.raises(ValueError, match="NaN"):
        recommend(fitted, np.full(N_FEATURES, np.nan), items)
    with pytest.raises(TypeError, match="not fitted"):
        recommend(FMRegressor(), users, items)


def test_similar_items_is_cosine_of_factor_sums(fitted, data):
    _, _, _, items = data
    if not isinstance(fitted.model_, (FMModel, FMSamples)):
        with pytest.raises(TypeError, match="has no such vectors per item"):
            similar_items(fitted, items, 3)
        return
    models = ([fitted.model_.sample(s) for s in range(fitted.model_.n_samples)]
              if isinstance(fitted.model_, FMSamples) else [fitted.model_])
    cos = 0
    for m in models:
        q = items.toarray() @ m.factors
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        cos = cos + q @ q.T / len(models)
    ids, sims = similar_items(fitted, items, 3, n=4)
    others = np.argsort(-np.where(np.arange(N_ITEMS) == 3, -np.inf, cos[3]), kind="stable")[:4]
    tol = 1e-5 if fitted.model_.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(sims, cos[3][others], rtol=tol)
    np.testing.assert_allclose(sims, cos[3][ids], rtol=tol)
    ids, sims = similar_items(fitted, items, [3, 5], n=2, include_self=True)
    assert ids.shape == (2, 2) and list(ids[:, 0]) == [3, 5]
    np.testing.assert_allclose(sims[:, 0], 1.0, rtol=1e-5)


# --- metrics ----------------------------------------------------------------------------------------
RECOMMENDED = np.array([[4, 2, 7, 1, -1], [0, 1, 2, 3, 4], [9, 8, 7, 6, 5]])
RELEVANT = [{2, 1, 11}, {3}, set()]  # the third user has none and is left out


def test_precision_recall_map_by_hand():
    # user 0: hits at ranks 2 and 4 (1-based) within k=4; user 1: a hit at rank 4.
    assert precision_at_k(RECOMMENDED, RELEVANT, k=4) == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert precision_at_k(RECOMMENDED, RELEVANT, k=2) == pytest.approx((1 / 2 + 0) / 2)
    assert recall_at_k(RECOMMENDED, RELEVANT, k=4) == pytest.approx((2 / 3 + 1) / 2)
    ap0 = (1 / 2 + 2 / 4) / 3  # min(k, |relevant|) = 3
    ap1 = (1 / 4) / 1
    assert mean_average_precision_at_k(RECOMMENDED, RELEVANT, k=4) == pytest.approx((ap0 + ap1) / 2)
    # Lists of lists and a relevance matrix give the same.
    matrix = sp.csr_matrix(([1, 1, 1, 1], ([0, 0, 0, 1], [2, 1, 11, 3])), shape=(3, 12))
    lists = [list(r[r >= 0]) for r in RECOMMENDED]
    assert recall_at_k(lists, matrix, k=4) == recall_at_k(RECOMMENDED, RELEVANT, k=4)


def test_ndcg_equals_sklearn_on_rank_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_items, k = 15, int(rng.integers(1, 8))
        scores = rng.normal(size=(4, n_items))
        truth = (rng.random((4, n_items)) < 0.3).astype(float)
        truth[:, 0] = 1  # every user has a relevant item
        recommended = np.argsort(-scores, axis=1)[:, :6]
        relevant = [set(np.flatnonzero(t)) for t in truth]
        # Scores that rank the 6 recommended items first and the rest below them, untied.
        ranked = np.argsort(-scores, axis=1)
        rank_scores = np.empty_like(scores)
        np.put_along_axis(rank_scores, ranked, -np.arange(n_items, dtype=float)[None, :], axis=1)
        if k <= 6:
            assert ndcg_at_k(recommended, relevant, k=k) == pytest.approx(
                ndcg_score(truth, rank_scores, k=k))


def test_auc_equals_sklearn():
    rng = np.random.default_rng(1)
    n_items = 12
    for _ in range(20):
        n_listed = int(rng.integers(0, n_items + 1))
        recommended = [list(rng.permutation(n_items)[:n_listed]) for _ in range(3)]
        truth = rng.random((3, n_items)) < 0.4
        truth[:, 0], truth[:, 1] = True, False
        expected = []
        for lst, t in zip(recommended, truth):
            s = np.zeros(n_items)
            s[lst] = np.arange(len(lst), 0, -1)  # listed items above the tied unlisted ones
            expected.append(roc_auc_score(t, s))
        relevant = [set(np.flatnonzero(t)) for t in truth]
        assert auc(recommended, relevant, n_items) == pytest.approx(np.mean(expected))


def test_metric_errors():
    with pytest.raises(ValueError, match="no user has a relevant item"):
        precision_at_k([[1, 2]], [set()])
    with pytest.raises(ValueError, match="recommended has 1 users but relevant has 2"):
        recall_at_k([[1, 2]], [{1}, {2}])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ndcg_at_k([[1]], [{1}], k=0)
    with pytest.raises(ValueError, match="outside the catalogue of 3 items"):
        auc([[1, 5]], [{1}], 3)


def test_samples_without_the_item_cache_give_the_same(data, monkeypatch):
    X, y, users, items = data
    reg = FMRegressor(n_factors=3, solver="mcmc", max_iter=8, dtype="float64",
                      random_state=0).fit(X, y)
    cached = recommend(reg, users, items, n=5)
    monkeypatch.setattr("fmlearn.recommend._CACHE_BYTES", 0)
    assert Recommender(reg, items)._cache is None
    recomputed = recommend(reg, users, items, n=5)
    np.testing.assert_array_equal(recomputed[0], cached[0])
    np.testing.assert_array_equal(recomputed[1], cached[1])
