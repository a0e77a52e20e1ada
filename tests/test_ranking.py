"""FMRanker: the BPR step against finite differences, the pairs it draws, learning a planted
preference model, model files."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm
from sklearn.metrics import roc_auc_score

from fmlearn import FMRanker, load, save
from fmlearn.model import FMModel
from fmlearn.recommend import recommend
from fmlearn.solvers.bpr import BPRSolver, lower_ranked
from fmlearn.solvers.sgd import SGDState

REG = (0.02, 0.03)


def test_one_pair_step_is_the_finite_difference_gradient():
    rng = np.random.default_rng(0)
    n, k = 6, 3
    model = FMModel(0.0, rng.normal(size=n), rng.normal(0, 0.5, size=(n, k)))
    # Feature 0 (the user) is in both rows; 2 and 3 in the preferred one, 4 in the other.
    X = sp.csr_matrix(np.array([[1.0, 0.0, 0.5, -0.7, 0.0, 0.0],
                                [1.0, 0.0, 0.0, 0.0, 1.3, 0.0]]))
    touched = [0, 2, 3, 4]
    start = model.copy()

    def objective(theta):
        coef, factors = theta[:n], theta[n:].reshape(n, k)
        d = np.subtract(*brute_force_fm(X, 0.0, coef, factors))
        penalty = REG[0] * (coef[touched] ** 2).sum() + REG[1] * (factors[touched] ** 2).sum()
        return np.logaddexp(0.0, -d) + 0.5 * penalty

    solver = BPRSolver("bpr", "constant", 1.0, 0.25, 0.0, *REG, None)
    solver.epoch(model, X, np.array([1.0, 0.0]), np.ones(2), SGDState.initial(model),
                 np.random.default_rng(0))
    theta = np.concatenate([start.coef, start.factors.ravel()])
    step = theta - np.concatenate([model.coef, model.factors.ravel()])
    eps = 1e-6
    numeric = np.array([(objective(theta + eps * e) - objective(theta - eps * e)) / (2 * eps)
                        for e in np.eye(theta.size)])
    np.testing.assert_allclose(step, numeric, rtol=1e-6, atol=1e-8)
    assert step[1] == 0 and step[5] == 0 and model.intercept == 0


def test_pairs_stay_in_their_group_and_go_down_in_relevance():
    rng = np.random.default_rng(1)
    y, groups = rng.integers(0, 4, 500), rng.integers(0, 7, 500)
    order, start, count = lower_ranked(y, groups)
    for p, r in enumerate(order):
        below = set(order[start[p]:start[p] + count[p]].tolist())
        assert below == set(np.flatnonzero((groups == groups[r]) & (y < y[r])).tolist())
    pairs = BPRSolver("bpr", "adagrad", 0.1, 0.25, 0, 0, 0, None, groups=groups).pairs(
        y.astype(float), rng)
    assert len(pairs) == np.count_nonzero(count)
    assert np.all(groups[pairs[:, 0]] == groups[pairs[:, 1]])
    assert np.all(y[pairs[:, 0]] > y[pairs[:, 1]])


def planted_preferences(n_users=200, n_items=100, seed=0):
    """Every (user, item) row; a user likes the items whose planted affinity is in her top 10 %."""
    rng = np.random.default_rng(seed)
    users, items = np.repeat(np.arange(n_users), n_items), np.tile(np.arange(n_items), n_users)
    X = sp.hstack([sp.eye(n_users, format="csr")[users],
                   sp.eye(n_items, format="csr")[items]]).tocsr()
    affinity = rng.normal(size=(n_users, 3)) @ rng.normal(size=(3, n_items))
    liked = affinity >= np.quantile(affinity, 0.9, axis=1, keepdims=True)
    return X, liked.ravel().astype(int), users


def test_bpr_learns_a_planted_preference_model():
    X, liked, users = planted_preferences()
    # Half of each user's liked items are held out: they stay unlabelled (0) in training.
    rng = np.random.default_rng(2)
    held_out = (liked == 1) & (rng.random(liked.shape[0]) < 0.5)
    train_y = np.where(held_out, 0, liked)
    ranker = FMRanker(n_factors=8, max_iter=30, tol=None, eta0=0.1, random_state=0, n_jobs=2)
    before = FMRanker(n_factors=8, max_iter=1, tol=None, eta0=1e-9, random_state=0)
    unseen = train_y == 0
    auc = {}
    for name, model in (("before", before), ("after", ranker)):
        model.fit(X, train_y, groups=users)
        auc[name] = roc_auc_score(held_out[unseen], model.predict(X)[unseen])
    assert auc["before"] < 0.6 and auc["after"] > 0.85
    assert ranker.loss_curve_[-1] < 0.5 * ranker.loss_curve_[0]


def test_groups_are_checked_and_early_stopping_needs_eval_set():
    with pytest.raises(ValueError, match="X has 3 rows, groups has shape \\(2,\\)"):
        FMRanker().fit(np.eye(3), [1, 0, 0], groups=[0, 1])
    with pytest.raises(ValueError, match="early stopping needs eval_set"):
        FMRanker(early_stopping=True).fit(np.eye(3), [1, 0, 0])


def test_model_file_round_trip(tmp_path):
    X, liked, users = planted_preferences(30, 20, seed=3)
    ranker = FMRanker(n_factors=2, max_iter=3, tol=None, random_state=0)
    ranker.fit(X, liked, groups=users, eval_set=(X, liked))
    loaded = load(save(ranker, tmp_path / "ranker.fm"))
    assert np.array_equal(loaded.predict(X), ranker.predict(X))
    assert loaded.validation_scores_ == ranker.validation_scores_


def test_recommend_ranks_as_predict_does():
    X, liked, users = planted_preferences(40, 30, seed=4)
    ranker = FMRanker(n_factors=4, max_iter=5, tol=None, random_state=0).fit(X, liked, groups=users)
    user_rows = sp.eye(70, format="csr")[:40]
    catalogue = sp.eye(70, format="csr")[40:]
    top, _ = recommend(ranker, user_rows, catalogue, n=5)
    scores = ranker.predict(X).reshape(40, 30)
    np.testing.assert_array_equal(top, np.argsort(-scores, axis=1, kind="stable")[:, :5])
