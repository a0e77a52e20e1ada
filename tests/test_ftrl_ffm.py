"""``solver="ftrl"`` for the field-aware FM: against a brute-force Python FTRL, finite
differences, threads, streaming, normalisation and model files."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError

from fmlearn import FFMClassifier, FFMRegressor
from fmlearn._validation import as_fm_csr
from fmlearn.model import FFMModel, normalize_rows
from fmlearn.persistence import ModelFileError, load, save
from fmlearn.solvers.ftrl_ffm import FFMFTRLSolver
from test_ftrl import assert_fed_gradients, closed_form_step

FIELDS = np.repeat(np.arange(4, dtype=np.int32), 3)  # 12 features, 3 per field


def field_rows(n_rows, seed, per_field=1):
    """CSR rows with ``per_field`` distinct features of each of the 4 fields, values in
    [0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    cols = np.concatenate([np.sort(np.concatenate(
        [3 * f + rng.choice(3, per_field, replace=False) for f in range(4)]))
        for _ in range(n_rows)])
    nnz = 4 * per_field
    return sp.csr_matrix((rng.uniform(0.5, 1.5, n_rows * nnz), cols,
                          np.arange(0, n_rows * nnz + 1, nnz)), shape=(n_rows, 12))


def brute_force_ftrl_ffm(X, y, sw, V, p, logistic, clip):
    """Algorithm 1 of McMahan et al. over the rows in order, on dicts of coordinates; a pair
    ``a < b`` steps ``V[i_a, f(i_b)]`` and ``V[i_b, f(i_a)]`` from their values before it."""
    theta = {("b",): 0.0, **{("w", j): 0.0 for j in range(V.shape[0])},
             **{("v", *index): V[index] for index in np.ndindex(V.shape)}}
    z = dict.fromkeys(theta, 0.0)
    n = dict.fromkeys(theta, 0.0)
    l1 = {"b": 0.0, "w": p["l1_linear"], "v": p["l1_factors"]}
    l2 = {"b": p["reg_intercept"], "w": p["reg_linear"], "v": p["reg_factors"]}

    def step(key, g):
        closed_form_step(theta, z, n, key, min(max(g, -clip), clip), p, l1, l2)

    k = V.shape[2]
    for r in range(X.shape[0]):
        row = X.getrow(r)
        items = list(zip(row.indices, row.data))
        score = theta["b",] + sum(theta["w", j] * x for j, x in items) + sum(
            theta["v", i, FIELDS[j], f] * theta["v", j, FIELDS[i], f] * xi * xj
            for a, (i, xi) in enumerate(items) for j, xj in items[a + 1:] for f in range(k))
        d = -y[r] / (1 + math.exp(y[r] * score)) if logistic else score - y[r]
        g = d * sw[r]
        step(("b",), g)
        for a, (i, xi) in enumerate(items):
            step(("w", i), g * xi)
            for j, xj in items[a + 1:]:
                for f in range(k):
                    vi, vj = theta["v", i, FIELDS[j], f], theta["v", j, FIELDS[i], f]
                    step(("v", i, FIELDS[j], f), g * xi * xj * vj)
                    step(("v", j, FIELDS[i], f), g * xi * xj * vi)
    return (theta["b",], np.array([theta["w", j] for j in range(V.shape[0])]),
            np.array([theta["v", *index] for index in np.ndindex(V.shape)]).reshape(V.shape))


@pytest.mark.parametrize("logistic, clip, per_field", [(False, None, 1), (True, None, 2),
                                                       (False, 0.8, 2)])
def test_one_thread_is_the_closed_form_of_every_coordinate(logistic, clip, per_field):
    X = as_fm_csr(field_rows(25, 0, per_field), np.float64)
    rng = np.random.default_rng(1)
    y = np.sign(rng.normal(size=25)) if logistic else rng.normal(size=25)
    sw = rng.uniform(0.5, 2.0, 25)
    p = dict(eta0=0.3, beta=0.7, l1_linear=3.0, l1_factors=0.01, reg_intercept=0.1,
             reg_linear=0.2, reg_factors=0.3)
    model = FFMModel.initial(FIELDS, 2, 0.3, np.float64, np.random.default_rng(2))
    expected = brute_force_ftrl_ffm(X, y, sw, model.factors.copy(), p, logistic,
                                    math.inf if clip is None else clip)
    solver = FFMFTRLSolver("logistic" if logistic else "squared", *(p[name] for name in (
        "eta0", "beta")), 0.0, *(p[name] for name in (
            "reg_intercept", "l1_linear", "reg_linear", "l1_factors", "reg_factors")),
        clip, block_size=7)
    solver.epoch(model, X, y, sw, solver.initial_state(model, None))
    for got, want in zip((model.intercept, model.coef, model.factors), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert np.any(model.coef == 0) and np.any(model.coef != 0)  # l1_linear: exact zeros


def test_first_step_feeds_the_loss_gradient():
    """With one feature per field, every coordinate takes the gradient of the row's loss."""
    X = as_fm_csr(field_rows(1, 3), np.float64)
    y, alpha = np.array([1.0]), 0.5
    model = FFMModel.initial(FIELDS, 3, 0.5, np.float64, np.random.default_rng(0))
    model.intercept = 0.2
    model.coef[:] = np.random.default_rng(1).normal(0, 0.3, 12)
    start = model.copy()
    solver = FFMFTRLSolver("logistic", alpha, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None)
    state = solver.initial_state(model, None)
    solver.epoch(model, X, y, np.ones(1), state)

    assert_fed_gradients(X, y, start, state, alpha)
    # a feature's vector for its own field is in no pair: untouched, as in the SGD learner
    row = X.indices
    assert np.all(state.n_factors[row, FIELDS[row]] == 0)
    np.testing.assert_array_equal(model.factors[row, FIELDS[row]],
                                  start.factors[row, FIELDS[row]])


def planted(n_rows, seed):
    """Clicks driven by two features and a cross-field interaction; the rest noise."""
    X = field_rows(n_rows, seed)
    dense = X.toarray() > 0
    score = 2.0 * dense[:, 0] - 2.0 * dense[:, 1] + 3.0 * dense[:, 3] * dense[:, 6] - 0.5
    y = (np.random.default_rng(seed + 1).random(n_rows) < 1 / (1 + np.exp(-score))).astype(int)
    return X, y, score


def test_planted_clicks_are_learned_with_one_and_two_threads_and_l1_zeroes_coef():
    X, y, _ = planted(4000, 0)
    X_test, y_test, best = planted(2000, 10)
    params = dict(fields=FIELDS, solver="ftrl", n_factors=4, max_iter=8, tol=None,
                  random_state=0, l1_linear=20.0)
    aucs = []
    for n_jobs in (1, 2):
        clf = FFMClassifier(**params, n_jobs=n_jobs).fit(X, y)
        aucs.append(roc_auc_score(y_test, clf.decision_function(X_test)))
        assert np.any(clf.coef_ == 0)
    assert aucs[0] > roc_auc_score(y_test, best) - 0.02
    assert aucs[1] > aucs[0] - 0.01


def test_partial_fit_streams_as_fit_over_the_same_rows_in_order():
    X, y, _ = planted(300, 4)
    params = dict(fields=FIELDS, solver="ftrl", n_factors=3, random_state=0, shuffle=False,
                  n_jobs=1)
    fitted = FFMClassifier(**params, max_iter=1, tol=None).fit(X, y)
    streamed = FFMClassifier(**params)
    for start in range(0, 300, 70):
        streamed.partial_fit(X[start:start + 70], y[start:start + 70], classes=[0, 1])
    np.testing.assert_array_equal(streamed.factors_, fitted.factors_)
    np.testing.assert_array_equal(streamed._solver_state.z_coef, fitted._solver_state.z_coef)
    assert streamed.intercept_ == fitted.intercept_


def test_normalize_trains_on_unit_rows():
    X, y, _ = planted(200, 5)
    params = dict(fields=FIELDS, solver="ftrl", n_factors=3, random_state=0, max_iter=2,
                  tol=None, n_jobs=1)
    normalized = FFMClassifier(**params, normalize=True).fit(X, y)
    by_hand = FFMClassifier(**params).fit(normalize_rows(as_fm_csr(X, np.float32)), y)
    np.testing.assert_allclose(normalized.factors_, by_hand.factors_, rtol=1e-6)


def test_model_file_keeps_z_n_and_warm_start_and_partial_fit_continue(tmp_path):
    X, y, _ = planted(300, 6)
    est = FFMRegressor(fields=FIELDS, solver="ftrl", n_factors=3, max_iter=2, tol=None,
                       random_state=0, l1_linear=0.5, warm_start=True).fit(X, y)
    save(est, tmp_path / "m.fm")
    loaded = load(tmp_path / "m.fm")
    assert loaded.get_params()["solver"] == "ftrl"
    for name in ("z_intercept", "n_coef", "z_factors", "n_factors"):
        np.testing.assert_array_equal(getattr(loaded._solver_state, name),
                                      getattr(est._solver_state, name))
    np.testing.assert_array_equal(est.fit(X, y).predict(X), loaded.fit(X, y).predict(X))
    np.testing.assert_array_equal(est.partial_fit(X, y).predict(X),
                                  loaded.partial_fit(X, y).predict(X))


def test_a_state_that_does_not_match_the_model_is_refused(tmp_path):
    X, y, _ = planted(100, 8)
    est = FFMClassifier(fields=FIELDS, solver="ftrl", n_factors=2, max_iter=1, tol=None).fit(X, y)
    state = est._solver_state
    state.n_factors = state.n_factors[:, :1].copy()
    with pytest.raises(ModelFileError, match=r"'solver_state.n_factors' has shape \[12, 1, 2\]; "
                                             r"expected \[n_features=12, n_fields=4, n_factors=2\]"):
        save(est, tmp_path / "m.fm")
    state.n_factors = np.zeros((12, 4, 2), np.float32)
    state.n_factors[3, 1, 0] = -2
    with pytest.raises(ModelFileError, match=r"n_factors' holds -2.0 at index \(3, 1, 0\); it "
                                             "must be finite and >= 0"):
        save(est, tmp_path / "m.fm")


def test_auto_defaults_follow_the_solver_and_other_solvers_are_refused():
    X, y, _ = planted(100, 7)
    sgd = FFMRegressor(fields=FIELDS, max_iter=1)
    ftrl = FFMRegressor(fields=FIELDS, max_iter=1, solver="ftrl")
    assert [sgd._resolved(name) for name in ("reg_linear", "reg_factors")] == [2e-5, 2e-5]
    assert [ftrl._resolved(name) for name in ("reg_linear", "reg_factors")] == [1e-3, 0.1]
    with pytest.raises(InvalidParameterError, match="'solver' parameter of FFMRegressor must "
                                                    "be a str among"):
        FFMRegressor(fields=FIELDS, solver="als").fit(X, y)
