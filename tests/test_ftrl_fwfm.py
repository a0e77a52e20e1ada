"""``solver="ftrl"`` for the field-weighted FM: against a brute-force Python FTRL of every
coordinate (the field weights included), finite differences, threads and model files."""
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fmlearn import FwFMClassifier, FwFMRegressor
from fmlearn._validation import as_fm_csr
from fmlearn.fwfm_model import FwFMModel
from fmlearn.persistence import ModelFileError, load, save
from fmlearn.solvers.ftrl_fwfm import FwFMFTRLSolver
from test_ftrl import assert_fed_gradients, closed_form_step
from test_ftrl_ffm import FIELDS, field_rows, planted


def brute_force_ftrl_fwfm(X, y, sw, V, R, p, logistic, clip):
    """Algorithm 1 of McMahan et al. over the rows in order, on dicts of coordinates, every
    gradient at the row's starting parameters; a field pair's weight ``R[f, g]`` (``f <= g``)
    is one coordinate, stepped only by a non-zero gradient."""
    theta = {("b",): 0.0, **{("w", j): 0.0 for j in range(V.shape[0])},
             **{("v", *index): V[index] for index in np.ndindex(V.shape)},
             **{("r", f, g): R[f, g] for f in range(R.shape[0]) for g in range(f, R.shape[0])}}
    z = dict.fromkeys(theta, 0.0)
    n = dict.fromkeys(theta, 0.0)
    l1 = {"b": 0.0, "w": p["l1_linear"], "v": p["l1_factors"], "r": 0.0}
    l2 = {"b": p["reg_intercept"], "w": p["reg_linear"], "v": p["reg_factors"],
          "r": p["reg_field_weights"]}
    k = V.shape[1]

    def r(f, g):
        return theta["r", min(f, g), max(f, g)]

    for row in range(X.shape[0]):
        items = list(zip(X.getrow(row).indices, X.getrow(row).data))
        pairs = [(a, b) for a in range(len(items)) for b in range(a + 1, len(items))]

        def dot(a, b):
            return sum(theta["v", items[a][0], m] * theta["v", items[b][0], m] for m in range(k))

        score = theta["b",] + sum(theta["w", j] * x for j, x in items) + sum(
            r(FIELDS[items[a][0]], FIELDS[items[b][0]]) * dot(a, b) * items[a][1] * items[b][1]
            for a, b in pairs)
        d = -y[row] / (1 + math.exp(y[row] * score)) if logistic else score - y[row]
        g = d * sw[row]
        grads = {("b",): g, **{("w", j): g * x for j, x in items}}
        for a, (i, x) in enumerate(items):
            for m in range(k):
                grads["v", i, m] = g * sum(
                    r(FIELDS[i], FIELDS[items[b][0]]) * theta["v", items[b][0], m] * x
                    * items[b][1] for b in range(len(items)) if b != a)
        for a, b in pairs:
            f, h = sorted((FIELDS[items[a][0]], FIELDS[items[b][0]]))
            grads["r", f, h] = grads.get(("r", f, h), 0.0) + g * dot(a, b) * items[a][1] * items[b][1]
        for key, grad in grads.items():
            if key[0] != "r" or grad != 0:
                closed_form_step(theta, z, n, key, min(max(grad, -clip), clip), p, l1, l2)
    R = np.array([[r(f, g) for g in range(R.shape[0])] for f in range(R.shape[0])])
    return (theta["b",], np.array([theta["w", j] for j in range(V.shape[0])]),
            np.array([theta["v", *index] for index in np.ndindex(V.shape)]).reshape(V.shape), R)


@pytest.mark.parametrize("logistic, clip, per_field", [(False, None, 1), (True, None, 2),
                                                       (False, 0.8, 2)])
def test_one_thread_is_the_closed_form_of_every_coordinate(logistic, clip, per_field):
    X = as_fm_csr(field_rows(20, 0, per_field), np.float64)
    rng = np.random.default_rng(1)
    y = np.sign(rng.normal(size=20)) if logistic else rng.normal(size=20)
    sw = rng.uniform(0.5, 2.0, 20)
    p = dict(eta0=0.3, beta=0.7, l1_linear=3.0, l1_factors=0.01, reg_intercept=0.1,
             reg_linear=0.2, reg_factors=0.3, reg_field_weights=0.05)
    model = FwFMModel.initial(FIELDS, 2, 0.3, np.float64, np.random.default_rng(2))
    weights = rng.uniform(0.5, 1.5, (4, 4))
    model.field_weights[:] = (weights + weights.T) / 2
    expected = brute_force_ftrl_fwfm(X, y, sw, model.factors.copy(), model.field_weights.copy(),
                                     p, logistic, math.inf if clip is None else clip)
    solver = FwFMFTRLSolver("logistic" if logistic else "squared", p["eta0"], p["beta"], 0.0,
                            p["reg_intercept"], p["l1_linear"], p["reg_linear"],
                            p["l1_factors"], p["reg_factors"], clip, block_size=7,
                            reg_field_weights=p["reg_field_weights"])
    solver.epoch(model, X, y, sw, solver.initial_state(model, None))
    got = (model.intercept, model.coef, model.factors, model.field_weights)
    for name, have, want in zip(("intercept", "coef", "factors", "field_weights"), got,
                                expected):
        np.testing.assert_allclose(have, want, rtol=1e-11, atol=1e-14, err_msg=name)
    assert np.any(model.coef == 0) and np.any(model.coef != 0)  # l1_linear: exact zeros


def test_first_step_feeds_the_loss_gradient_to_every_coordinate():
    """One row from zero state: every coordinate's ``z`` and ``n`` carry the central finite
    difference of the logistic loss, the field weights' too."""
    X = as_fm_csr(field_rows(1, 3, 2), np.float64)
    y, alpha = np.array([1.0]), 0.5
    model = FwFMModel.initial(FIELDS, 3, 0.5, np.float64, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    model.intercept = 0.2
    model.coef[:] = rng.normal(0, 0.3, 12)
    weights = rng.uniform(0.5, 1.5, (4, 4))
    model.field_weights[:] = (weights + weights.T) / 2
    start = model.copy()
    solver = FwFMFTRLSolver("logistic", alpha, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None)
    state = solver.initial_state(model, None)
    solver.epoch(model, X, y, np.ones(1), state)
    assert_fed_gradients(X, y, start, state, alpha)

    def loss(m):
        return float(np.log1p(np.exp(-y[0] * m.predict_csr(X, 1, check=False)[0])))

    for f, h in [(f, h) for f in range(4) for h in range(f, 4)]:
        up, down = start.copy(), start.copy()
        for m, step in ((up, 1e-6), (down, -1e-6)):
            m.field_weights[f, h] += step
            if f != h:
                m.field_weights[h, f] += step
        numeric = (loss(up) - loss(down)) / 2e-6
        fed = state.z_field_weights[f, h] + np.sqrt(state.n_field_weights[f, h]) / alpha * (
            start.field_weights[f, h])
        np.testing.assert_allclose(fed, numeric, atol=1e-8)
        np.testing.assert_allclose(state.n_field_weights[f, h], numeric ** 2, atol=1e-12)
    np.testing.assert_array_equal(model.field_weights, model.field_weights.T)


def test_planted_clicks_are_learned_with_one_and_two_threads_and_l1_zeroes_coef():
    X, y, _ = planted(4000, 0)
    X_test, y_test, best = planted(2000, 10)
    params = dict(fields=FIELDS, solver="ftrl", n_factors=4, max_iter=8, tol=None, eta0=0.5,
                  random_state=0, l1_linear=20.0)
    aucs = []
    for n_jobs in (1, 2):
        clf = FwFMClassifier(**params, n_jobs=n_jobs).fit(X, y)
        aucs.append(roc_auc_score(y_test, clf.decision_function(X_test)))
        assert np.any(clf.coef_ == 0)
        np.testing.assert_array_equal(clf.field_weights_, clf.field_weights_.T)
    assert aucs[0] > roc_auc_score(y_test, best) - 0.02
    assert aucs[1] > aucs[0] - 0.01


def test_model_file_keeps_z_n_and_warm_start_continues(tmp_path):
    X, y, _ = planted(300, 6)
    est = FwFMRegressor(fields=FIELDS, solver="ftrl", n_factors=3, max_iter=2, tol=None,
                        random_state=0, warm_start=True).fit(X, y)
    assert [est._resolved(name) for name in ("reg_linear", "reg_factors")] == [1e-3, 0.1]
    save(est, tmp_path / "m.fm")
    loaded = load(tmp_path / "m.fm")
    for name in ("z_field_weights", "n_field_weights", "z_factors", "n_coef"):
        np.testing.assert_array_equal(getattr(loaded._solver_state, name),
                                      getattr(est._solver_state, name))
    np.testing.assert_array_equal(est.fit(X, y).predict(X), loaded.fit(X, y).predict(X))


def test_negative_sums_of_field_weight_gradients_are_refused_naming_the_array(tmp_path):
    X, y, _ = planted(100, 7)
    est = FwFMClassifier(fields=FIELDS, solver="ftrl", n_factors=2, max_iter=1,
                         random_state=0).fit(X, y)
    est._solver_state.n_field_weights[0, 1] = -1.0
    with pytest.raises(ModelFileError, match=r"array 'solver_state.n_field_weights' holds -1.0 "
                                             r"at index \(0, 1\); it must be finite and >= 0"):
        save(est, tmp_path / "bad.fm")


def test_partial_fit_streams_as_fit_over_the_same_rows_in_order():
    X, y, _ = planted(300, 4)
    params = dict(fields=FIELDS, solver="ftrl", n_factors=3, random_state=0, shuffle=False,
                  n_jobs=1)
    fitted = FwFMClassifier(**params, max_iter=1, tol=None).fit(X, y)
    streamed = FwFMClassifier(**params)
    for start in range(0, 300, 70):
        streamed.partial_fit(X[start:start + 70], y[start:start + 70], classes=[0, 1])
    np.testing.assert_array_equal(streamed.field_weights_, fitted.field_weights_)
    np.testing.assert_array_equal(streamed._solver_state.z_field_weights,
                                  fitted._solver_state.z_field_weights)
    np.testing.assert_array_equal(streamed.factors_, fitted.factors_)
