"""FMRecommender: sampled negatives, gradients by finite differences, recommend against predict
on stacked rows, implicit's pitfalls, cold start, fold-in, and a planted preference learned."""
import numpy as np
import pytest
import scipy.sparse as sp

from fmlearn import FMModel, FMRecommender
from fmlearn.kernels.topn import POPULARITY, UNIFORM, sample_negative
from fmlearn.recommend import ndcg_at_k, precision_at_k


def planted(seed=0, n_users=120, n_items=80, k=3, per_user=20):
    """Users who like the ``per_user`` items of highest ``u . v`` (plus noise); a 70/30 split."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, k)) @ rng.normal(size=(n_items, k)).T
    scores += rng.normal(scale=0.3, size=scores.shape)
    liked = np.zeros(scores.shape, bool)
    liked[np.arange(n_users)[:, None], np.argsort(-scores, axis=1)[:, :per_user]] = True
    train = liked & (rng.random(scores.shape) < 0.7)
    return sp.csr_matrix(train.astype(float)), sp.csr_matrix((liked & ~train).astype(float))


def stacked(rec, users, items):
    """The model rows of every (user, item) pair: item features, then user features."""
    return sp.hstack([rec.item_features_[np.tile(items, len(users))],
                      rec.user_features_[np.repeat(users, len(items))]], format="csr")


@pytest.mark.parametrize("sampling", [UNIFORM, POPULARITY])
def test_sampled_negatives_are_never_positives(sampling):
    train, _ = planted()
    rng = np.random.default_rng(1)
    train = sp.lil_matrix(train)
    train[5] = 1.0  # a user with every item gets no negative
    train = sp.csr_matrix(train)
    train.sort_indices()
    state = rng.integers(0, 2**63, size=(1, 8)).astype(np.uint64)
    pop = train.indices.astype(np.int64)
    for u in range(train.shape[0]):
        drawn = np.array([sample_negative(state, 0, sampling, train.shape[1], pop, train.indptr,
                                          train.indices, u) for _ in range(50)])
        liked = train.indices[train.indptr[u]:train.indptr[u + 1]]
        if u == 5:
            assert (drawn == -1).all()
        else:
            assert (drawn >= 0).all() and not np.isin(drawn, liked).any()


def test_popularity_sampling_follows_counts():
    liked = sp.csr_matrix(np.array([[1, 0, 0, 0]] + [[0, 1, 1, 0]] * 3 + [[0, 0, 1, 0]] * 6))
    state = np.zeros((1, 8), np.uint64)
    pop = liked.indices.astype(np.int64)
    drawn = [sample_negative(state, 0, POPULARITY, 4, pop, liked.indptr, liked.indices, 0)
             for _ in range(6000)]
    counts = np.bincount(drawn, minlength=4)
    assert counts[0] == counts[3] == 0          # its own item, and an item nobody has
    assert abs(counts[2] / counts[1] - 3.0) < 0.3  # 9 interactions against 3


def _loss(model, rec, loss):
    """The loss of user 0's positive (item 0) against negative item 1, from predict."""
    s_p, s_n = model.predict(stacked(rec, [0], [0, 1]))
    if loss == "bpr":
        return np.logaddexp(0, -(s_p - s_n))
    if loss == "warp":  # 3 items, the first draw violates the margin: rank weight log(2)
        return np.log(2.0) * (1 - s_p + s_n)
    return np.logaddexp(0, -s_p) + np.logaddexp(0, s_n)


@pytest.mark.parametrize("loss, schedule", [("bpr", "constant"), ("warp", "constant"),
                                            ("logistic", "constant"), ("bpr", "adagrad"),
                                            ("warp", "adagrad")])
def test_gradients_match_finite_differences(loss, schedule):
    # One user liking item 0; items 1 and 2 share one feature row, so the negative drawn
    # does not matter. A tiny constant step: the change of each parameter is -eta * gradient.
    rng = np.random.default_rng(0)
    items = np.array([[1.0, 0.5, 0.0], [0.2, 0.0, 1.5], [0.2, 0.0, 1.5]])
    users = rng.normal(size=(1, 2))
    liked = sp.csr_matrix(np.array([[1.0, 0.0, 0.0]]))
    eta = 1e-7
    rec = FMRecommender(loss=loss, n_factors=2, max_iter=1, learning_rate=schedule, eta0=eta,
                        reg_linear=0.0, reg_factors=0.0, init_std=0.5, n_negatives=1,
                        user_identity=False, item_identity=False, dtype="float64",
                        random_state=0).fit(liked, users, items)
    rec.model_.intercept = 0.3
    before = rec.model_.copy()
    rec.partial_fit(liked)
    after = rec.model_
    # AdaGrad (a pair steps each parameter once): step = eta * g / sqrt(sums + g**2).
    sums = {"coef": rec._solver_state.acc_coef, "factors": rec._solver_state.acc_factors}
    params = [("coef", np.ndindex(before.coef.shape)), ("factors", np.ndindex(before.factors.shape))]
    h = 1e-6
    for name, where in params:
        for idx in where:
            plus, minus = before.copy(), before.copy()
            getattr(plus, name)[idx] += h
            getattr(minus, name)[idx] -= h
            numeric = (_loss(plus, rec, loss) - _loss(minus, rec, loss)) / (2 * h)
            step = (getattr(before, name)[idx] - getattr(after, name)[idx]) / eta
            if schedule == "adagrad":
                step *= np.sqrt(sums[name][idx])
            assert step == pytest.approx(numeric, rel=1e-4, abs=1e-7), (name, idx)
    if loss == "logistic":
        plus, minus = before.copy(), before.copy()
        plus.intercept += h
        minus.intercept -= h
        numeric = (_loss(plus, rec, loss) - _loss(minus, rec, loss)) / (2 * h)
        assert (before.intercept - after.intercept) / eta == pytest.approx(numeric, rel=1e-4)
    else:
        assert after.intercept == before.intercept  # cancels in a pair


@pytest.fixture(scope="module")
def with_features():
    rng = np.random.default_rng(3)
    train, _ = planted(seed=3, n_users=30, n_items=25)
    user_features = sp.random(30, 4, density=0.5, random_state=1, format="csr")
    item_features = rng.normal(size=(25, 3))
    rec = FMRecommender(loss="warp", n_factors=4, max_iter=5, dtype="float64", random_state=0)
    return rec.fit(train, user_features, item_features), user_features, item_features


def test_recommend_equals_sorting_predict_on_stacked_rows(with_features):
    rec, user_features, item_features = with_features
    users = np.array([4, 0, 17, 4])
    ids, scores = rec.recommend(users, N=7)
    every = rec.model_.predict(stacked(rec, users, np.arange(25))).reshape(len(users), 25)
    for row, u in enumerate(users):
        liked = rec.interactions_[u].indices
        keys = np.where(np.isin(np.arange(25), liked), -np.inf, every[row])
        expected = np.argsort(-keys, kind="stable")[:7]
        np.testing.assert_array_equal(ids[row], expected)
        np.testing.assert_allclose(scores[row], every[row, expected], rtol=1e-10)
    single, single_scores = rec.recommend(17, N=7)
    np.testing.assert_array_equal(single, ids[2])


def test_recommend_from_feature_rows_matches_predict(with_features):
    """Cold rows: a known user with new features keeps their identity column, a new user
    and new items are scored from their features alone."""
    rec, user_features, item_features = with_features
    rng = np.random.default_rng(5)
    new_users, new_items = rng.random((2, 4)), rng.normal(size=(3, 3))
    ids, scores = rec.recommend([2, 30], N=3, user_features=new_users, items=[0, 25, 26],
                                item_features=new_items, filter_already_liked_items=False)
    user_rows = sp.hstack([new_users, sp.csr_matrix(([1.0], ([0], [2])), shape=(2, 30))])
    item_rows = sp.hstack([new_items, sp.csr_matrix(([1.0], ([0], [0])), shape=(3, 25))])
    rows = sp.hstack([item_rows.tocsr()[np.tile(np.arange(3), 2)],
                      user_rows.tocsr()[np.repeat(np.arange(2), 3)]], format="csr")
    every = rec.model_.predict(rows).reshape(2, 3)
    order = np.argsort(-every, axis=1)
    np.testing.assert_array_equal(ids, np.array([0, 25, 26])[order])
    np.testing.assert_allclose(scores, np.take_along_axis(every, order, axis=1), rtol=1e-10)


def test_implicit_pitfalls():
    liked = sp.csr_matrix(np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]],
                                   dtype=float))
    rec = FMRecommender(n_factors=2, max_iter=3, random_state=0).fit(liked)
    # Filtering happens before the top N: exactly N while N candidates remain.
    assert rec.recommend(0, N=3)[0].shape == (3,)
    assert set(rec.recommend(0, N=3)[0]) == {3, 4, 5}
    # Liked items come from each queried user's own row, in any order, repeated or not.
    ids, _ = rec.recommend([2, 0, 1, 0], N=3)
    assert 0 not in ids[0] and not np.isin(ids[[1, 3]], [0, 1, 2]).any() and 4 not in ids[2]
    # N beyond the candidates: one user gets fewer, a batch is padded with -1 / -inf.
    assert rec.recommend(0, N=10)[0].shape == (3,)
    ids, scores = rec.recommend([0, 1], N=10)
    assert ids.shape == (2, 6)
    assert (ids[0, 3:] == -1).all() and np.isneginf(scores[0, 3:]).all()
    assert (ids[1, :5] >= 0).all() and ids[1, 5] == -1
    # filter_items and a candidate subset, ids reported in the catalogue's numbering.
    ids, _ = rec.recommend(1, N=5, items=[5, 4, 3, 0], filter_items=[3])
    assert sorted(ids) == [0, 5]
    assert rec.recommend(0, N=6, filter_already_liked_items=False)[0].shape == (6,)


def test_errors_name_the_problem():
    rec = FMRecommender(n_factors=2, max_iter=1, random_state=0)
    with pytest.raises(ValueError, match="negative entry in row 1"):
        rec.fit(np.array([[1.0, 0], [0, -2.0]]))
    rec.fit(np.eye(3))
    with pytest.raises(ValueError, match="user 3 was not seen in training"):
        rec.recommend(3)
    with pytest.raises(ValueError, match="partial_fit continues on the fitted shape"):
        rec.partial_fit(np.eye(4))
    with pytest.raises(ValueError, match="user_features is required"):
        FMRecommender(user_identity=False).fit(np.eye(3))
    with pytest.raises(ValueError, match="early_stopping needs eval_set"):
        FMRecommender(early_stopping=True).fit(np.eye(3))


def _groups(n_users, n_items, rng):
    """Two groups of users, two categories of items; group g likes half of category g's items."""
    user_group, item_group = np.arange(n_users) % 2, np.arange(n_items) % 2
    match = user_group[:, None] == item_group[None, :]
    liked = match & (rng.random((n_users, n_items)) < 0.5)
    return sp.csr_matrix(liked.astype(float)), np.eye(2)[user_group], np.eye(2)[item_group]


def test_cold_users_and_items_from_features():
    rng = np.random.default_rng(0)
    liked, user_features, item_features = _groups(60, 40, rng)
    rec = FMRecommender(loss="bpr", n_factors=4, max_iter=30, random_state=0)
    rec.fit(liked, user_features, item_features)
    # New users (ids 60, 61) with only their group known.
    ids, _ = rec.recommend([60, 61], N=10, user_features=np.eye(2))
    assert (ids[0] % 2 == 0).all() and (ids[1] % 2 == 1).all()
    # New items (ids 40-43) of categories 0, 1, 0, 1 for the users of group 0.
    ids, _ = rec.recommend(np.arange(0, 60, 2), N=2, items=[40, 41, 42, 43],
                           item_features=np.eye(2)[[0, 1, 0, 1]])
    assert np.isin(ids, [40, 42]).all()


def test_fold_in_learns_the_new_users_own_parameters_only():
    rng = np.random.default_rng(1)
    liked, _, _ = _groups(60, 40, rng)
    rec = FMRecommender(loss="bpr", n_factors=4, max_iter=30, random_state=0).fit(liked)
    before = rec.model_.copy()
    new = sp.csr_matrix(np.array([[1.0 if i % 2 == 0 and i < 20 else 0 for i in range(40)],
                                  [1.0 if i % 2 == 1 and i < 20 else 0 for i in range(40)]]))
    ids = rec.fold_in(new, n_epochs=30)
    np.testing.assert_array_equal(ids, [60, 61])
    n_old = before.n_features
    np.testing.assert_array_equal(rec.model_.factors[:n_old], before.factors)
    np.testing.assert_array_equal(rec.model_.coef[:n_old], before.coef)
    top, _ = rec.recommend(ids, N=5)
    assert (top[0] % 2 == 0).all() and (top[1] % 2 == 1).all()
    assert (top >= 20).all()  # their liked items are filtered out
    assert rec.similar_users(60, N=5)[0].shape == (5,)


@pytest.mark.parametrize("loss, n_jobs", [("bpr", 1), ("warp", 2), ("logistic", 1),
                                          ("squared", 1)])
def test_planted_preferences_are_learned(loss, n_jobs):
    train, test = planted()
    rec = FMRecommender(loss=loss, n_factors=6, max_iter=30, n_jobs=n_jobs, random_state=0)
    ids, _ = rec.fit(train).recommend(np.arange(train.shape[0]), N=10)
    popular = np.argsort(-np.asarray(train.sum(axis=0)).ravel(), kind="stable")
    seen = train.toarray() > 0
    most_popular = np.array([[i for i in popular if not seen[u, i]][:10]
                             for u in range(train.shape[0])])
    ours, baseline = precision_at_k(ids, test, 10), precision_at_k(most_popular, test, 10)
    assert ours > 2 * baseline, (ours, baseline)
    assert rec.loss_curve_[-1] < rec.loss_curve_[0]


def test_early_stopping_keeps_the_best_epoch():
    train, test = planted(seed=2)
    rec = FMRecommender(loss="bpr", n_factors=4, max_iter=40, early_stopping=True,
                        n_iter_no_change=3, scoring="ndcg", random_state=0)
    rec.fit(train, eval_set=test)
    assert len(rec.validation_scores_) == rec.n_iter_
    assert rec.best_validation_score_ == max(rec.validation_scores_)
    ids, _ = rec.recommend(np.arange(train.shape[0]), N=10)
    held = np.flatnonzero(np.diff(test.indptr))
    assert ndcg_at_k(ids[held], test[held], 10) == pytest.approx(rec.best_validation_score_)


def test_confidence_weights_positives():
    weighted = sp.csr_matrix(np.array([[5.0, 1.0, 0, 0]] * 8))
    rec = FMRecommender(loss="bpr", alpha=10.0, n_factors=2, max_iter=1, random_state=0)
    np.testing.assert_allclose(rec._weights(sp.csr_matrix(weighted)), [51, 11] * 8)


def test_similar_items_is_cosine_of_factor_sums(with_features):
    rec, _, _ = with_features
    ids, sims = rec.similar_items(3, N=4)
    q = rec._item_rows() @ rec.model_.factors
    cos = (q @ q[3]) / np.linalg.norm(q, axis=1) / np.linalg.norm(q[3])
    cos[3] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-cos)[:4])
    np.testing.assert_allclose(sims, np.sort(cos)[::-1][:4], rtol=1e-6)
    assert isinstance(rec.model_, FMModel)


# scikit-learn's check_estimator feeds fit(X, y) with X the samples and y a target; an
# interaction matrix is neither (its rows are users, its columns the items, and there is no
# y), so only the checks of the parameter contract apply. They run here, with the fit
# contract's points that still make sense: clone, parameters untouched by fit, refit.
@pytest.mark.parametrize("check", ["check_parameters_default_constructible",
                                   "check_no_attributes_set_in_init",
                                   "check_get_params_invariance", "check_set_params"])
def test_parameter_contract_of_scikit_learn(check):
    from sklearn.utils import estimator_checks
    getattr(estimator_checks, check)("FMRecommender", FMRecommender())


def test_fit_leaves_parameters_and_refits_from_scratch():
    from sklearn.base import clone
    rec = FMRecommender(n_factors=2, max_iter=3, random_state=0)
    params = rec.get_params()
    first = rec.fit(np.eye(5)).model_.factors.copy()
    assert rec.get_params() == params
    np.testing.assert_array_equal(rec.fit(np.eye(5)).model_.factors, first)
    np.testing.assert_array_equal(clone(rec).fit(np.eye(5)).model_.factors, first)
    with pytest.raises(ValueError, match="'loss' parameter"):
        FMRecommender(loss="hinge").fit(np.eye(3))


def _saved(rec, tmp_path):
    from fmlearn.persistence import save
    return save(rec, tmp_path / "rec.fm")


def test_save_load_round_trip_is_exact_and_continues(with_features, tmp_path):
    from fmlearn.persistence import load
    rec, _, _ = with_features
    loaded = load(_saved(rec, tmp_path))
    assert type(loaded) is FMRecommender and loaded.get_params() == rec.get_params()
    assert sorted(vars(loaded)) == sorted(k for k in vars(rec) if k != "_catalogue")
    for got, want in zip(loaded.recommend(np.arange(30), N=5), rec.recommend(np.arange(30), N=5)):
        np.testing.assert_array_equal(got, want)
    for name in ("user_features_", "item_features_", "interactions_"):
        for part in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(getattr(getattr(loaded, name), part),
                                          getattr(getattr(rec, name), part))
    # A loaded estimator continues as the original: same state, same random stream.
    import copy
    original = copy.deepcopy(rec)
    original.partial_fit(original.interactions_)
    loaded.partial_fit(loaded.interactions_)
    np.testing.assert_array_equal(loaded.model_.factors, original.model_.factors)


@pytest.mark.parametrize("member, change, message", [
    ("interactions.indices.npy", lambda a: a + 40, "interactions.indices' holds"),
    ("item_features.indptr.npy", lambda a: a[::-1].copy(), "row pointers start at 0"),
    ("user_features.indptr.npy", lambda a: np.maximum(a, 1), "row pointers start at 0"),
    ("interactions.data.npy", lambda a: -a, "finite and >= 0"),
])
def test_load_refuses_feature_rows_and_interactions_out_of_range(with_features, tmp_path, member,
                                                                 change, message):
    import io
    import zipfile
    from fmlearn.persistence import ModelFileError, load
    path = _saved(with_features[0], tmp_path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    array = np.load(io.BytesIO(members[member]))
    out = io.BytesIO()
    np.save(out, change(array))
    members[member] = out.getvalue()
    bad = tmp_path / "bad.fm"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=message):
        load(bad)


def _liked_in_context(seed=0):
    """40 users each liking half of 20 items: items 0-9 in context 0, items 10-19 in context 1."""
    liked = sp.csr_matrix((np.random.default_rng(seed).random((40, 20)) < 0.5).astype(float))
    context = sp.csr_matrix((np.ones(liked.nnz), (np.arange(liked.nnz), liked.indices >= 10)),
                            shape=(liked.nnz, 2))
    return liked, context


def test_planted_context_effect_is_learned():
    liked, context = _liked_in_context()
    rec = FMRecommender(loss="bpr", n_factors=4, max_iter=30, random_state=0)
    rec.fit(liked, context=context)
    for c in (0, 1):
        top, _ = rec.recommend(np.arange(40), N=5, filter_already_liked_items=False,
                               context=np.eye(2)[[c] * 40])
        assert np.mean((top >= 10) == c) > 0.9
    # New users fold in without context; their entries get empty context rows.
    assert rec.fold_in(liked[:2])[0] == 40
    assert rec.context_.shape == (liked.nnz + liked[:2].nnz, 2)


def test_recommend_with_context_equals_predict_on_stacked_rows(tmp_path):
    from fmlearn.persistence import load
    liked, context = _liked_in_context(1)
    rec = FMRecommender(n_factors=3, max_iter=2, dtype="float64", random_state=0)
    rec.fit(liked, context=context)
    query = np.array([[0.5, 1.0], [0.0, 2.0]])
    ids, scores = rec.recommend([3, 7], N=20, filter_already_liked_items=False, context=query)
    rows = sp.hstack([rec.item_features_[np.tile(np.arange(20), 2)],
                      np.repeat(query, 20, axis=0), rec.user_features_[np.repeat([3, 7], 20)]],
                     format="csr")
    every = rec.model_.predict(rows).reshape(2, 20)
    np.testing.assert_array_equal(ids, np.argsort(-every, axis=1))
    np.testing.assert_allclose(scores, np.take_along_axis(every, ids, 1), rtol=1e-10)
    loaded = load(_saved(rec, tmp_path))
    np.testing.assert_array_equal(loaded.context_.indices, rec.context_.indices)
    np.testing.assert_array_equal(loaded.recommend([3, 7], N=20, context=query)[0],
                                  rec.recommend([3, 7], N=20, context=query)[0])


def test_context_errors_name_the_problem():
    liked, context = _liked_in_context()
    with pytest.raises(ValueError, match="context rows follow the stored entries of a CSR"):
        FMRecommender().fit(liked.tocoo(), context=context)
    with pytest.raises(ValueError, match=f"context has 3 rows; expected {liked.nnz}"):
        FMRecommender().fit(liked, context=context[:3])
    rec = FMRecommender(n_factors=2, max_iter=1, random_state=0).fit(liked, context=context)
    with pytest.raises(ValueError, match="context has 3 columns; the model was fitted with 2"):
        rec.recommend(0, context=np.ones((1, 3)))
    with pytest.raises(ValueError, match="partial_fit cannot add interactions to a model fitted"):
        rec.partial_fit(liked)
    plain = FMRecommender(n_factors=2, max_iter=1, random_state=0).fit(liked)
    with pytest.raises(ValueError, match="context has 2 columns; the model was fitted with 0"):
        plain.recommend(0, context=np.ones((1, 2)))


def test_file_saved_before_context_columns_loads_without_context(tmp_path):
    import json
    import zipfile

    from fmlearn.persistence import load
    liked, _ = _liked_in_context()
    rec = FMRecommender(n_factors=2, max_iter=1, random_state=0).fit(liked)
    new, old = _saved(rec, tmp_path), tmp_path / "old.fm"
    with zipfile.ZipFile(new) as zin, zipfile.ZipFile(old, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "header.json":
                header = json.loads(data)
                for name in ("context_", "n_context_columns_"):
                    del header["attributes"][name]
                data = json.dumps(header).encode()
            zout.writestr(info.filename, data)
    loaded = load(old)
    assert loaded.n_context_columns_ == 0 and loaded.context_ is None
    for got, want in zip(loaded.recommend([0, 5], N=4), rec.recommend([0, 5], N=4)):
        np.testing.assert_array_equal(got, want)
