"""SGD with adaptive regularisation: the penalty gradient, the parameter step, and what it learns."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit
from conftest import planted_fm_data

from fmlearn import FMClassifier, FMRegressor
from fmlearn.kernels.losses import loss_and_derivative
from fmlearn.kernels.sgda import lookahead_score, penalty_gradient
from fmlearn.model import FMModel
from fmlearn.solvers.sgd import SGDSolver, SGDState
from fmlearn.solvers.sgda import SGDASolver


@pytest.mark.parametrize("schedule", ["constant", "adagrad"])
@pytest.mark.parametrize("loss, y", [("squared", 0.8), ("logistic", -1.0)])
def test_penalty_gradient_is_the_finite_difference_of_the_lookahead_loss(schedule, loss, y):
    rng = np.random.default_rng(5)
    n, k = 7, 3
    groups = np.array([0, 3, 1, 1, 3, 2, 2])  # group 3's features are not in the row
    coef, factors = rng.normal(size=n), rng.normal(size=(n, k))
    grad_coef, grad_factors = rng.normal(size=n), rng.normal(size=(n, k))
    acc_coef, acc_factors = 1 + rng.random(n), 1 + rng.random((n, k))
    lam_w, lam_v = rng.random(4), rng.random((4, k))
    row = sp.csr_matrix(np.array([[0.5, 0.0, -1.2, 0.7, 0.0, 2.0, 0.3]]))
    cfg = SGDSolver(loss, schedule, 0.1, 0.25, 0.0, 0.0, 0.0, None).config(np.float64)
    eta = cfg.eta0
    q = np.empty(k)

    def lookahead_loss(lam_w, lam_v):
        score = lookahead_score(0, row.nnz, row.indices, row.data, 0.3, coef, factors, grad_coef,
                                grad_factors, acc_coef, acc_factors, groups, lam_w, lam_v, eta,
                                q, cfg)
        return loss_and_derivative(cfg.loss, score, y)

    dloss = lookahead_loss(lam_w, lam_v)[1]
    out_w, out_v = np.empty(4), np.empty((4, k))
    penalty_gradient(0, row.nnz, row.indices, row.data, coef, factors, grad_factors, acc_coef,
                     acc_factors, groups, lam_v, eta, dloss, q, out_w, out_v, cfg)

    eps = 1e-6
    for g in range(4):
        up, down = lam_w.copy(), lam_w.copy()
        up[g] += eps
        down[g] -= eps
        numeric = (lookahead_loss(up, lam_v)[0] - lookahead_loss(down, lam_v)[0]) / (2 * eps)
        assert out_w[g] == pytest.approx(numeric, rel=1e-5, abs=1e-9)
        for f in range(k):
            up, down = lam_v.copy(), lam_v.copy()
            up[g, f] += eps
            down[g, f] -= eps
            numeric = (lookahead_loss(lam_w, up)[0] - lookahead_loss(lam_w, down)[0]) / (2 * eps)
            assert out_v[g, f] == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    assert out_w[3] == 0 and np.all(out_v[3] == 0)
    assert np.all(out_w[:3] != 0)


@pytest.mark.parametrize("schedule", ["constant", "adagrad", "invscaling"])
def test_parameter_steps_are_sgd_steps_with_the_current_penalties(schedule):
    rng = np.random.default_rng(6)
    X = sp.csr_matrix(rng.normal(size=(20, 5)) * (rng.random((20, 5)) < 0.6))
    y = rng.normal(size=20)
    start = FMModel(0.1, rng.normal(size=5), rng.normal(0, 0.3, size=(5, 2)))
    sgd_model, sgda_model = start.copy(), start.copy()
    SGDSolver("squared", schedule, 0.05, 0.25, 0.01, 0.02, 0.03, None).epoch(
        sgd_model, X, y, np.ones(20), SGDState.initial(sgd_model))
    solver = SGDASolver("squared", schedule, 0.05, 0.25, 0.01, 0.02, 0.03, None,
                        validation=(X, y, np.ones(20)))
    state = solver.initial_state(sgda_model, None)
    solver.epoch(sgda_model, X, y, np.ones(20), state)  # the first epoch keeps the penalties
    assert state.lam_w.tolist() == [0.02] and np.all(state.lam_v == 0.03)
    np.testing.assert_allclose(sgda_model.coef, sgd_model.coef, rtol=1e-12)
    np.testing.assert_allclose(sgda_model.factors, sgd_model.factors, rtol=1e-12)
    assert sgda_model.intercept == pytest.approx(sgd_model.intercept, rel=1e-12)


def test_learned_penalties_beat_no_penalty_on_held_out_rows():
    X, y = planted_fm_data(4000, n_users=150, n_items=150, n_factors=2, noise=0.5, seed=1)
    train, val, test = slice(0, 2400), slice(2400, 3000), slice(3000, None)
    common = dict(n_factors=16, max_iter=60, tol=None, learning_rate="constant", eta0=0.02,
                  init_std=0.1, reg_linear=0.0, reg_factors=0.0, random_state=0)
    sgd = FMRegressor(solver="sgd", **common).fit(X[train], y[train])
    sgda = FMRegressor(solver="sgda", **common).fit(X[train], y[train],
                                                     eval_set=(X[val], y[val]))

    def rmse(model):
        return np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))

    assert rmse(sgda) < 0.95 * rmse(sgd)
    learned = sgda.regularization_
    assert learned["reg_linear"].shape == (1,) and learned["reg_factors"].shape == (1, 16)
    assert learned["reg_factors"].mean() > 0.01


def test_feature_groups_get_penalties_of_their_own():
    X, y = planted_fm_data(1500, n_users=50, n_items=50, n_factors=2, noise=0.3, seed=2)
    groups = np.r_[np.zeros(50, int), np.ones(50, int), 2]
    reg = FMRegressor(solver="sgda", n_factors=4, max_iter=5, tol=None, random_state=0)
    reg.fit(X, y, feature_groups=groups)
    assert reg.regularization_["reg_linear"].shape == (3,)
    assert reg.regularization_["reg_factors"].shape == (3, 4)
    assert len(set(reg.regularization_["reg_linear"].round(12))) == 3


def test_sgda_refuses_partial_fit_and_says_why():
    reg = FMRegressor(solver="sgda")
    assert not hasattr(reg, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as excinfo:
        reg.partial_fit(np.eye(2), [1.0, 2.0])
    # The traceback shows why, as the cause.
    assert "learns its penalties on validation rows" in str(excinfo.value.__cause__)


def test_sgda_classifier_uses_the_logistic_link_it_was_trained_with():
    X, y = planted_fm_data(600, seed=4)
    labels = (y > np.median(y)).astype(int)
    clf = FMClassifier(solver="sgda", n_factors=2, max_iter=3, tol=None, random_state=0)
    clf.fit(X, labels)
    scores = clf.decision_function(X).astype(np.float64)
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], expit(scores))
    np.testing.assert_allclose(clf.predict_log_proba(X)[:, 1], np.log(expit(scores)), rtol=1e-6)
