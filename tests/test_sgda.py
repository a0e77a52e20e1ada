"""SGD with adaptive regularisation: the penalty gradient, the parameter step, and what it learns."""
import copy

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


def libfm_sgda(X, y, X_val, y_val, groups, model, task, lr, n_iter):
    """libFM 1.4.4's ``-method sgda`` written out (``fm_learn_sgd_element_adapt_reg.h``:
    ``sgd_theta_step``, ``predict_scaled``, ``sgd_lambda_step``, ``learn``), rows in file order;
    returns its parameters and penalties ``reg_w``, ``reg_v``."""
    w0, w, V = model.intercept, model.coef.copy(), model.factors.copy()
    n_groups, k = groups.max() + 1, V.shape[1]
    reg_w, reg_v = np.zeros(n_groups), np.zeros((n_groups, k))
    grad_w, grad_v = np.zeros_like(w), np.zeros_like(V)
    lo, hi = y.min(), y.max()

    def dloss(p, target):
        if task == "r":
            return 2 * (min(max(p, lo), hi) - target)
        return target * (1 / (1 + np.exp(-target * p)) - 1)

    for it in range(n_iter):
        v_row = 0
        for r in range(X.shape[0]):
            ids, x = X.indices[X.indptr[r]:X.indptr[r + 1]], X.data[X.indptr[r]:X.indptr[r + 1]]
            g = groups[ids]
            sums = x @ V[ids]
            p = w0 + x @ w[ids] + 0.5 * (sums**2 - (x[:, None] ** 2 * V[ids] ** 2).sum(0)).sum()
            mult = dloss(p, y[r])
            w0 -= lr * mult  # reg_0 = 0
            grad_w[ids] = mult * x
            w[ids] -= lr * (grad_w[ids] + 2 * reg_w[g] * w[ids])
            grad_v[ids] = mult * x[:, None] * (sums - V[ids] * x[:, None])
            V[ids] -= lr * (grad_v[ids] + 2 * reg_v[g] * V[ids])
            if it == 0:  # no lambda steps in the first iteration
                continue
            if v_row == X_val.shape[0]:
                v_row = 0
            sl = slice(X_val.indptr[v_row], X_val.indptr[v_row + 1])
            ids, x, target = X_val.indices[sl], X_val.data[sl], y_val[v_row]
            v_row += 1
            g = groups[ids]
            w_dash = w[ids] - lr * (grad_w[ids] + 2 * reg_w[g] * w[ids])
            v_dash = V[ids] - lr * (grad_v[ids] + 2 * reg_v[g] * V[ids])
            d = v_dash * x[:, None]
            p = w0 + x @ w_dash + 0.5 * (d.sum(0) ** 2 - (d**2).sum(0)).sum()
            grad_loss = dloss(p, target)
            lambda_w_grad = -2 * lr * np.bincount(g, x * w[ids], n_groups)
            reg_w = np.maximum(0.0, reg_w - lr * grad_loss * lambda_w_grad)
            sum_f_dash = d.sum(0)
            for f in range(k):
                sum_f = np.bincount(g, V[ids, f] * x, n_groups)
                sum_f_dash_f = np.bincount(g, d[:, f] * V[ids, f] * x, n_groups)
                lambda_v_grad = -2 * lr * (sum_f_dash[f] * sum_f - sum_f_dash_f)
                reg_v[:, f] = np.maximum(0.0, reg_v[:, f] - lr * grad_loss * lambda_v_grad)
    return FMModel(w0, w, V), reg_w, reg_v


@pytest.mark.parametrize("task", ["r", "c"])
def test_libfm_command_line_takes_libfm_sgda_steps(task):
    # fm_learn_sgd_element_adapt_reg.h minimises (y_hat - y)^2 + lam_L |theta|^2 (regression)
    # or the log loss + lam_L |theta|^2: `fmlearn train -method sgda -learn_rate a` gives
    # eta0 = 2a (regression) or a, and the solver's penalty rate makes every step libFM's.
    from fmlearn._validation import as_fm_csr
    from fmlearn.cli.libfm import estimator_spec

    rng = np.random.default_rng(11)
    X = as_fm_csr(sp.csr_matrix(rng.normal(size=(12, 6)) * (rng.random((12, 6)) < 0.6)),
                  np.float64)
    X_val = as_fm_csr(sp.csr_matrix(rng.normal(size=(4, 6)) * (rng.random((4, 6)) < 0.7)),
                      np.float64)
    y, y_val = rng.normal(size=12), rng.normal(size=4)
    if task == "c":
        y, y_val = np.where(y > 0, 1.0, -1.0), np.where(y_val > 0, 1.0, -1.0)
    groups = np.array([0, 0, 1, 1, 1, 0])
    start = FMModel(0.1, np.zeros(6), rng.normal(0, 0.5, size=(6, 3)))
    est = estimator_spec(task, method="sgda", dim="1,1,3", learn_rate="0.05",
                         has_validation=True).estimator()
    assert est.eta0 == (0.1 if task == "r" else 0.05)
    solver = SGDASolver("squared" if task == "r" else "logistic", est.learning_rate, est.eta0,
                        est.power_t, est.reg_intercept, est.reg_linear, est.reg_factors,
                        est.clip_gradient, target_range=(y.min(), y.max()) if task == "r" else None,
                        validation=(X_val, y_val, np.ones(4)))
    model = start.copy()
    state = solver.initial_state(model, groups)
    for _ in range(4):
        solver.epoch(model, X, y, np.ones(12), state)  # rows in file order, as libFM reads them
    expected, reg_w, reg_v = libfm_sgda(X, y, X_val, y_val, groups, start, task, 0.05, 4)
    scale = 1.0 if task == "r" else 2.0  # fmlearn's penalty lam |theta|^2 / 2 is libFM's lam_L
    assert reg_v.max() > 0
    np.testing.assert_allclose(state.lam_w, scale * reg_w, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(state.lam_v, scale * reg_v, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(model.factors, expected.factors, rtol=1e-9)
    np.testing.assert_allclose(model.coef, expected.coef, rtol=1e-9, atol=1e-15)
    assert model.intercept == pytest.approx(expected.intercept, rel=1e-9)


def test_a_warm_start_with_fewer_validation_rows_starts_within_them():
    """The state remembers its place in the validation rows; a warm start with fewer rows
    read past their end (a segfault)."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(1000, 5)), rng.normal(size=1000)
    reg = FMRegressor(solver="sgda", n_factors=2, max_iter=2, tol=None, random_state=0)
    reg.fit(X, y, eval_set=(X[:997], y[:997]))  # the second epoch steps through them
    assert reg._solver_state.val_next[0] > 1
    restarted = copy.deepcopy(reg)
    restarted._solver_state.val_next[0] = 0  # what the warm start must do: row 0 of 1
    reg.set_params(warm_start=True).fit(X, y, eval_set=(X[:1], y[:1]))
    restarted.set_params(warm_start=True).fit(X, y, eval_set=(X[:1], y[:1]))
    np.testing.assert_array_equal(reg.predict(X), restarted.predict(X))
