"""``solver="ftrl"``: per-coordinate FTRL-Proximal (McMahan et al. 2013) for the FM, against a
brute-force Python FTRL, finite differences, model files and planted problems."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from fmlearn import FMClassifier, FMRegressor
from fmlearn._validation import as_fm_csr
from fmlearn.model import FMModel
from fmlearn.persistence import ModelFileError, load, save
from fmlearn.solvers.ftrl import FTRLSolver


def sparse_rows(n_rows, n_features, per_row, seed):
    """CSR rows of ``per_row`` distinct features each, with values in [0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    cols = np.concatenate([rng.choice(n_features, per_row, replace=False)
                           for _ in range(n_rows)])
    return sp.csr_matrix((rng.uniform(0.5, 1.5, n_rows * per_row), cols,
                          np.arange(0, n_rows * per_row + 1, per_row)),
                         shape=(n_rows, n_features))


def brute_force_ftrl(X, y, sw, w0, w, V, p, logistic, clip):
    """Algorithm 1 of McMahan et al. over the rows in order, on dicts of coordinates."""
    theta = {("b",): w0, **{("w", j): w[j] for j in range(len(w))},
             **{("v", j, f): V[j, f] for j in range(V.shape[0]) for f in range(V.shape[1])}}
    z = dict.fromkeys(theta, 0.0)
    n = dict.fromkeys(theta, 0.0)
    l1 = {"b": 0.0, "w": p["l1_linear"], "v": p["l1_factors"]}
    l2 = {"b": p["reg_intercept"], "w": p["reg_linear"], "v": p["reg_factors"]}
    for r in range(X.shape[0]):
        row = X.getrow(r)
        cols, vals = row.indices, row.data
        q = [sum(theta["v", j, f] * x for j, x in zip(cols, vals)) for f in range(V.shape[1])]
        score = theta["b",] + sum(theta["w", j] * x for j, x in zip(cols, vals)) + 0.5 * sum(
            q[f] ** 2 - sum((theta["v", j, f] * x) ** 2 for j, x in zip(cols, vals))
            for f in range(V.shape[1]))
        d = -y[r] / (1 + math.exp(y[r] * score)) if logistic else score - y[r]
        grads = {("b",): d}
        for j, x in zip(cols, vals):
            grads["w", j] = d * x
            for f in range(V.shape[1]):
                grads["v", j, f] = d * x * (q[f] - theta["v", j, f] * x)
        for key, g in grads.items():
            closed_form_step(theta, z, n, key, min(max(g * sw[r], -clip), clip), p, l1, l2)
    return (theta["b",], np.array([theta["w", j] for j in range(len(w))]),
            np.array([[theta["v", j, f] for f in range(V.shape[1])] for j in range(V.shape[0])]))


def closed_form_step(theta, z, n, key, g, p, l1, l2):
    """Algorithm 1's step of coordinate ``key`` of the dicts ``theta``, ``z``, ``n`` with
    gradient ``g``; ``l1`` and ``l2`` hold the strengths of each kind of key (``key[0]``)."""
    sigma = (math.sqrt(n[key] + g * g) - math.sqrt(n[key])) / p["eta0"]
    z[key] += g - sigma * theta[key]
    n[key] += g * g
    kind = key[0]
    theta[key] = (0.0 if abs(z[key]) <= l1[kind] else
                  -(z[key] - math.copysign(l1[kind], z[key]))
                  / ((p["beta"] + math.sqrt(n[key])) / p["eta0"] + l2[kind]))


@pytest.mark.parametrize("logistic, clip", [(False, None), (True, None), (False, 0.8)])
def test_one_thread_is_the_closed_form_of_every_coordinate(logistic, clip):
    X = as_fm_csr(sparse_rows(30, 12, 4, seed=0), np.float64)
    rng = np.random.default_rng(1)
    y = np.sign(rng.normal(size=30)) if logistic else rng.normal(size=30)
    sw = rng.uniform(0.5, 2.0, 30)
    p = dict(eta0=0.3, beta=0.7, l1_linear=3.0, l1_factors=0.01, reg_intercept=0.1,
             reg_linear=0.2, reg_factors=0.3)
    model = FMModel.initial(12, 3, 0.3, np.float64, np.random.default_rng(2))
    expected = brute_force_ftrl(X, y, sw, 0.0, model.coef.copy(), model.factors.copy(), p,
                                logistic, math.inf if clip is None else clip)
    solver = FTRLSolver("logistic" if logistic else "squared", p["eta0"], p["beta"], 0.0,
                        p["reg_intercept"], p["l1_linear"], p["reg_linear"], p["l1_factors"],
                        p["reg_factors"], clip, block_size=7)
    solver.epoch(model, X, y, sw, solver.initial_state(model, None))
    np.testing.assert_allclose(model.intercept, expected[0], rtol=1e-12)
    np.testing.assert_allclose(model.coef, expected[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.factors, expected[2], rtol=1e-12, atol=1e-15)
    assert np.any(model.coef == 0) and np.any(model.coef != 0)  # l1_linear: exact zeros


def test_first_step_feeds_the_loss_gradient():
    """From zero state one row's step leaves ``n = g**2`` and ``z = g - sqrt(n) / alpha *
    theta0``: ``g`` matches central finite differences of the logistic loss."""
    X = as_fm_csr(np.array([[0.7, 0.0, 1.3, -0.4]]), np.float64)
    y, alpha = np.array([1.0]), 0.5
    model = FMModel.initial(4, 3, 0.5, np.float64, np.random.default_rng(0))
    model.intercept, model.coef[:] = 0.2, [0.1, 0.0, -0.3, 0.2]
    start = model.copy()
    solver = FTRLSolver("logistic", alpha, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None)
    state = solver.initial_state(model, None)
    solver.epoch(model, X, y, np.ones(1), state)

    assert_fed_gradients(X, y, start, state, alpha)
    assert state.z_coef[1] == state.n_coef[1] == 0  # a feature the row lacks is untouched


def assert_fed_gradients(X, y, start, state, alpha):
    """After one step from zero state on the row ``X`` with label ``y`` (+1 or -1), every
    coordinate of the weights and factors has ``n = g**2`` and ``z = g - sqrt(n) / alpha *
    theta0``, where ``g`` is the central finite difference of the logistic loss at ``start``
    (0 where the step did not touch it)."""
    def loss(m):
        return float(np.log1p(np.exp(-y[0] * m.predict_csr(X, 1, check=False)[0])))

    for theta0, z, n, name in ((start.coef, state.z_coef, state.n_coef, "coef"),
                               (start.factors, state.z_factors, state.n_factors, "factors")):
        fed = z + np.sqrt(n) / alpha * theta0
        np.testing.assert_allclose(n, fed ** 2, rtol=1e-12)
        numeric = np.zeros_like(theta0)
        for index in np.ndindex(theta0.shape):
            up, down = start.copy(), start.copy()
            getattr(up, name)[index] += 1e-6
            getattr(down, name)[index] -= 1e-6
            numeric[index] = (loss(up) - loss(down)) / 2e-6
        np.testing.assert_allclose(fed, numeric, atol=1e-8)


def planted(n_rows, seed):
    """Clicks driven by two of 40 one-hot-ish features and their interaction; the rest noise."""
    X = sparse_rows(n_rows, 40, 5, seed)
    dense = X.toarray()
    score = 2.0 * dense[:, 0] - 2.0 * dense[:, 1] + 3.0 * dense[:, 2] * dense[:, 3] - 0.5
    y = (np.random.default_rng(seed + 1).random(n_rows) < 1 / (1 + np.exp(-score))).astype(int)
    return X, y


def test_planted_clicks_are_learned_and_l1_zeroes_the_noise():
    X, y = planted(6000, 0)
    X_test, y_test = planted(3000, 10)
    clf = FMClassifier(solver="ftrl", n_factors=4, max_iter=10, tol=None, random_state=0,
                       eta0=0.2, l1_linear=50.0).fit(X, y)
    auc = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
    best = roc_auc_score(y_test, 2.0 * X_test[:, 0].toarray().ravel()
                         - 2.0 * X_test[:, 1].toarray().ravel()
                         + 3.0 * X_test[:, 2].multiply(X_test[:, 3]).toarray().ravel())
    assert auc > best - 0.02
    assert clf.coef_[0] > 0 > clf.coef_[1]
    assert np.sum(clf.coef_[4:] == 0) >= 15  # exact zeros among the 36 noise features


def test_planted_regression_rmse():
    rng = np.random.default_rng(3)
    X = rng.random((3000, 6))
    y = X[:, 0] * X[:, 1] + 0.5 * X[:, 2]
    reg = FMRegressor(solver="ftrl", n_factors=4, max_iter=30, tol=None, random_state=0,
                      eta0=0.1).fit(X[:2000], y[:2000])
    rmse = np.sqrt(np.mean((reg.predict(X[2000:]) - y[2000:]) ** 2))
    assert rmse < 0.1 * y.std()


def test_model_file_keeps_z_n_and_warm_start_and_partial_fit_continue(tmp_path):
    X, y = planted(500, 4)
    est = FMClassifier(solver="ftrl", n_factors=3, max_iter=2, tol=None, random_state=0,
                       l1_linear=0.5, warm_start=True).fit(X, y)
    save(est, tmp_path / "m.fm")
    loaded = load(tmp_path / "m.fm")
    assert loaded.get_params()["l1_linear"] == 0.5
    np.testing.assert_array_equal(loaded._solver_state.z_factors, est._solver_state.z_factors)
    np.testing.assert_array_equal(loaded._solver_state.n_coef, est._solver_state.n_coef)
    np.testing.assert_array_equal(est.fit(X, y).predict_proba(X),
                                  loaded.fit(X, y).predict_proba(X))
    np.testing.assert_array_equal(est.partial_fit(X, y).decision_function(X),
                                  loaded.partial_fit(X, y).decision_function(X))


def test_partial_fit_streams_chunk_by_chunk():
    X, y = planted(400, 5)
    est = FMClassifier(solver="ftrl", n_factors=3, random_state=0)
    est.partial_fit(X[:200], y[:200], classes=[0, 1])
    n_after_one = est._solver_state.n_coef.copy()
    est.partial_fit(X[200:], y[200:])
    assert np.all(est._solver_state.n_coef >= n_after_one)
    assert np.any(est._solver_state.n_coef > n_after_one)


def test_negative_sums_of_squared_gradients_are_refused(tmp_path):
    X = np.random.default_rng(0).random((60, 4))
    est = FMRegressor(solver="ftrl", max_iter=1).fit(X, X.sum(axis=1))
    est._solver_state.n_coef[2] = -1.0
    with pytest.raises(ModelFileError, match="n_coef' holds -1.0 at index 2; it must be "
                                             "finite and >= 0"):
        save(est, tmp_path / "m.fm")


def test_two_threads_learn_the_planted_clicks():
    X, y = planted(6000, 0)
    X_test, y_test = planted(3000, 10)
    params = dict(solver="ftrl", n_factors=4, max_iter=10, tol=None, random_state=0, eta0=0.2)
    one = FMClassifier(**params, n_jobs=1).fit(X, y)
    two = FMClassifier(**params, n_jobs=2).fit(X, y)
    auc_one, auc_two = (roc_auc_score(y_test, est.decision_function(X_test)) for est in (one, two))
    assert auc_two > auc_one - 0.01
