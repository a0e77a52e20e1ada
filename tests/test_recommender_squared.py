"""FMRecommender(loss="squared"): coordinate descent on implicit ALS's objective over every
user x item pair (iCD), checked against the objective computed by brute force."""
import numpy as np
import pytest
import scipy.sparse as sp

from fmlearn import FMRecommender
from fmlearn.solvers.topn import TopNCDSolver
from test_recommender import _groups, stacked

REG_LINEAR, REG_FACTORS = 0.3, 0.2


def _problem(seed=0, n_users=7, n_items=9):
    """Weighted interactions with side features on both sides (identity columns added)."""
    rng = np.random.default_rng(seed)
    liked = sp.random(n_users, n_items, density=0.3, random_state=seed, format="csr",
                      data_rvs=lambda n: rng.integers(1, 5, n).astype(float))
    user_features, item_features = (rng.random((n, m)) * (rng.random((n, m)) < 0.5)
                                    for n, m in ((n_users, 3), (n_items, 4)))
    return liked, user_features, item_features


def _objective(rec, model=None):
    """sum over every pair of weight * (score - target)^2, plus the penalties, by predict."""
    model = rec.model_ if model is None else model
    n_users, n_items = rec.interactions_.shape
    scores = model.predict(stacked(rec, np.arange(n_users), np.arange(n_items)))
    liked = rec.interactions_.toarray()
    weight = np.where(liked > 0, 1 + rec.alpha * liked, 1.0)
    penalty = rec.reg_linear * np.sum(model.coef**2) + rec.reg_factors * np.sum(model.factors**2)
    return np.sum(weight * (scores.reshape(liked.shape) - (liked > 0)) ** 2) + penalty


def test_each_sweep_lowers_the_brute_force_objective_it_reports():
    liked, user_features, item_features = _problem()
    rec = FMRecommender(loss="squared", n_factors=3, max_iter=1, alpha=0.5, init_std=0.3,
                        reg_linear=REG_LINEAR, reg_factors=REG_FACTORS, dtype="float64",
                        random_state=0).fit(liked, user_features, item_features)
    rec.model_.intercept = 0.2  # held fixed, and counted in every score
    objectives = [_objective(rec)]
    for _ in range(4):
        rec.partial_fit(sp.csr_matrix(liked.shape))
        objectives.append(_objective(rec))
        assert rec.loss_curve_[-1] * liked.nnz == pytest.approx(objectives[-1], rel=1e-10)
    assert np.all(np.diff(objectives) < 0), objectives


@pytest.mark.parametrize("column", [0, 9 + 4 + 3 + 2])  # an item feature; a user identity
def test_a_step_is_the_exact_minimiser_along_its_coordinate(column):
    # One column of one side steps its weight, then its factors in turn: the last factor
    # stepped sits where the objective's derivative along it is zero.
    liked, user_features, item_features = _problem(1)
    rec = FMRecommender(loss="squared", n_factors=2, max_iter=1, alpha=1.0, init_std=0.3,
                        reg_linear=REG_LINEAR, reg_factors=REG_FACTORS, dtype="float64",
                        random_state=0).fit(liked, user_features, item_features)
    user_side = column >= rec.n_item_columns_
    users, items = rec._user_rows(), rec._item_rows()
    if not user_side:  # step the item side alone: swap the roles of the two sides
        liked, users, items = sp.csr_matrix(rec.interactions_.T), items, users
    else:
        liked = rec.interactions_
    model = rec.model_

    def derivative(idx, h=1e-6):
        plus, minus = model.copy(), model.copy()
        plus.factors[idx] += h
        minus.factors[idx] -= h
        return (_objective(rec, plus) - _objective(rec, minus)) / (2 * h)

    last = (column, model.factors.shape[1] - 1)
    assert abs(derivative(last)) > 1e-3
    before = _objective(rec)
    TopNCDSolver(REG_LINEAR, REG_FACTORS).epoch(model, liked, 1 + rec.alpha * liked.data,
                                                users, items, user_columns=[column])
    assert _objective(rec) < before
    assert derivative(last) == pytest.approx(0, abs=1e-6)


def test_fold_in_solves_for_the_new_users_columns_only():
    liked, _, _ = _groups(60, 40, np.random.default_rng(1))
    rec = FMRecommender(loss="squared", n_factors=4, max_iter=10, reg_factors=1.0,
                        random_state=0).fit(liked)
    before = rec.model_.copy()
    new = sp.csr_matrix(np.array([[1.0 if i % 2 == 0 and i < 20 else 0 for i in range(40)],
                                  [1.0 if i % 2 == 1 and i < 20 else 0 for i in range(40)]]))
    ids = rec.fold_in(new, n_epochs=5)
    n_old = before.n_features
    np.testing.assert_array_equal(rec.model_.factors[:n_old], before.factors)
    np.testing.assert_array_equal(rec.model_.coef[:n_old], before.coef)
    top, _ = rec.recommend(ids, N=5)
    assert (top[0] % 2 == 0).all() and (top[1] % 2 == 1).all()


def test_squared_loss_refuses_context():
    liked = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match='loss="squared" sums over every user x item pair'):
        FMRecommender(loss="squared").fit(liked, context=np.ones((3, 1)))


def test_sweeps_keep_the_blas_pool_to_one_thread(monkeypatch):
    # The sweep's products are small, and a BLAS pool of the machine's size spins its
    # threads on a busy machine (a fit several times slower): the sweep runs on one.
    from threadpoolctl import threadpool_info
    import fmlearn.solvers.topn as topn
    seen, gram = [], topn._gram

    def recording(*args):
        seen.append(max((pool["num_threads"] for pool in threadpool_info()), default=1))
        return gram(*args)
    monkeypatch.setattr(topn, "_gram", recording)
    liked, _, item_features = _problem()
    FMRecommender(loss="squared", n_factors=2, max_iter=1, n_jobs=-1,
                  random_state=0).fit(liked, item_features=item_features)
    assert seen and max(seen) == 1, seen
