"""Variational Bayes (solver="vb"): the score variances by brute force, the ELBO never
decreasing and stationary at the optimum, exact posterior means of a linear model, planted
models learned, predictive intervals, probabilities and model files."""
import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import ndtr

from fmlearn import FMClassifier, FMRegressor, ModelFileError, load, save
from fmlearn._validation import with_fm_indices
from fmlearn.kernels.variational import variance_sums
from fmlearn.model import FMModel
from fmlearn.solvers.vb import VBSolver


def planted(seed, n=600, n_users=20, n_items=15, k=2, noise=0.3, values=False):
    """One-hot users and items (values in [0.5, 1.5] with ``values``), targets from planted
    factors plus Gaussian noise; the matrix, targets, groups and the noiseless targets."""
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    X = sp.hstack([sp.eye(n_users, format="csr")[users], sp.eye(n_items, format="csr")[items]])
    X = X.tocsr()
    if values:
        X.data = rng.uniform(0.5, 1.5, X.nnz)
    V = rng.normal(0.0, 0.8, (n_users + n_items, k))
    x = X.toarray()
    clean = 1.0 + 0.5 * ((x @ V) ** 2 - (x ** 2) @ (V ** 2)).sum(axis=1)
    groups = np.repeat([0, 1], [n_users, n_items])
    return X, clean + rng.normal(0.0, noise, n), groups, clean


def moment(m, s, power):
    """E[a^power] of a ~ N(m, s)."""
    return (1.0, m, m * m + s, m ** 3 + 3 * m * s, m ** 4 + 6 * m * m * s + 3 * s * s)[power]


def test_score_variance_is_the_exact_variance_of_the_pairwise_terms():
    rng = np.random.default_rng(0)
    n_features, k = 5, 2
    X = with_fm_indices(sp.csr_matrix(rng.normal(size=(3, n_features)) * (rng.random((3, 5)) > .3)))
    V, V_var = rng.normal(size=(n_features, k)), rng.random((n_features, k))
    w_var, w0_var = rng.random(n_features), 0.3
    q = (X @ V).T.copy()
    S, T, var = np.empty((k, 3)), np.empty((k, 3)), np.empty(3)
    variance_sums(X.indptr, X.indices, X.data, w0_var, w_var, V, V_var, q, S, T, var)
    for r, x in enumerate(X.toarray()):
        expected = w0_var + np.sum(x * x * w_var)
        for f in range(k):
            m, s = V[:, f] * x, V_var[:, f] * x * x  # a_j = v_jf x_j ~ N(m_j, s_j)
            pairs = list(itertools.combinations(range(n_features), 2))
            mean = sum(m[j] * m[l] for j, l in pairs)
            square = 0.0
            for (j, l), (a, b) in itertools.product(pairs, pairs):
                counts = np.bincount([j, l, a, b], minlength=n_features)
                square += np.prod([moment(m[t], s[t], c) for t, c in enumerate(counts)])
            expected += square - mean * mean
        assert var[r] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_the_elbo_never_decreases(seed, kind):
    X, y, groups, _ = planted(seed, values=seed == 1)
    weight = np.random.default_rng(seed).uniform(0.2, 2.0, y.shape[0]) if seed == 2 else None
    est = (FMRegressor if kind == "regression" else FMClassifier)(
        solver="vb", n_factors=3, max_iter=40, tol=None, dtype="float64", random_state=seed)
    est.fit(X, y if kind == "regression" else y > 1.0, sample_weight=weight,
            feature_groups=groups)
    elbo = est.elbo_
    assert elbo.shape == (40,) and np.isfinite(elbo).all()
    assert np.all(np.diff(elbo) >= -1e-10 * np.abs(elbo[1:]))
    assert elbo[-1] > elbo[0]


def test_float32_means_keep_the_elbo_rising_up_to_rounding():
    X, y, groups, _ = planted(3)
    reg = FMRegressor(solver="vb", n_factors=3, max_iter=30, tol=None, random_state=0)
    elbo = reg.fit(X, y, feature_groups=groups).elbo_
    assert np.all(np.diff(elbo) >= -1e-5 * np.abs(elbo[1:]))


@pytest.mark.parametrize("loss", ["squared", "probit"])
def test_the_converged_posterior_is_a_stationary_point_of_the_elbo(loss):
    """Every coordinate update maximises the ELBO: moving any mean or variance away from
    the converged values lowers it (the ELBO computed afresh from the parameters)."""
    X, y, groups, _ = planted(4, n=300, n_users=8, n_items=6, values=True)
    X = with_fm_indices(X)
    target = y if loss == "squared" else np.where(y > 1.0, 1.0, -1.0)
    model = FMModel.initial(X.shape[1], 2, 0.1, np.float64, np.random.default_rng(0))
    solver = VBSolver(loss, 0.0, 0.0, 0.0)
    state = solver.initial_state(model, groups)
    weight = np.ones(X.shape[0])
    for _ in range(3000):
        solver.epoch(model, X, target, weight, state)
        if len(state.elbo) > 1 and state.elbo[-1] - state.elbo[-2] < 1e-13 * abs(state.elbo[-1]):
            break
    counts = np.bincount(groups).astype(float)

    def bound():
        return solver.elbo(model, state, solver.statistics(model, state, X), target, weight,
                           counts)

    best = bound()
    moves = [(model.factors, (3, 1), 1e-3), (model.factors, (10, 0), 1e-3),
             (model.coef, 5, 1e-3), (state.factors_var, (2, 0), 1e-2 * state.factors_var[2, 0]),
             (state.coef_var, 12, 1e-2 * state.coef_var[12])]
    for array, index, step in moves:
        kept = array[index]
        for moved in (kept + step, kept - step):
            array[index] = moved
            assert bound() < best + 1e-9 * abs(best)
        array[index] = kept
    assert bound() == best


def test_linear_vb_means_are_the_exact_posterior_means():
    """With no factors the model is Gaussian: the mean-field means at convergence are the
    exact posterior means given the learned hyperparameters (the variances are not)."""
    X, y, groups, _ = planted(5, n=200)
    reg = FMRegressor(solver="vb", n_factors=0, max_iter=2000, tol=None, dtype="float64",
                      random_state=0).fit(X, y, feature_groups=groups)
    hyper = reg._solver_state.hyper
    alpha, lam, mu = hyper.alpha[0], hyper.lam_w[groups], hyper.mu_w[groups]
    design = np.hstack([np.ones((X.shape[0], 1)), X.toarray()])
    precision = alpha * design.T @ design + np.diag(np.r_[0.0, lam])
    mean = np.linalg.solve(precision, alpha * design.T @ y + np.r_[0.0, lam * mu])
    np.testing.assert_allclose(np.r_[reg.intercept_, reg.coef_], mean, atol=1e-9)
    np.testing.assert_allclose(reg.coef_var_, 1.0 / np.diag(precision)[1:], rtol=1e-9)


def test_planted_model_is_learned_with_calibrated_predictive_intervals():
    X, y, groups, clean = planted(6, n=3000, noise=0.3)
    train, test = slice(0, 2500), slice(2500, None)
    reg = FMRegressor(solver="vb", n_factors=2, max_iter=100, tol=None, random_state=0)
    reg.fit(X[train], y[train], feature_groups=groups)
    mean, std = reg.predict(X[test], return_std=True)
    assert np.sqrt(np.mean((mean - clean[test]) ** 2)) < 0.15
    assert 1.0 / reg._solver_state.hyper.alpha[0] == pytest.approx(0.09, rel=0.2)
    inside = np.mean(np.abs(y[test] - mean) < 1.96 * std)
    assert 0.9 < inside < 0.99
    np.testing.assert_array_equal(reg.predict(X[test]), mean)
    assert (reg.factors_var_ > 0).all() and reg.factors_var_.shape == reg.factors_.shape


def test_classification_probabilities_are_sane():
    X, y, groups, clean = planted(7, n=3000)
    labels = np.where(clean > 1.0, "yes", "no")
    clf = FMClassifier(solver="vb", n_factors=2, max_iter=50, tol=None, random_state=0)
    clf.fit(X[:2500], labels[:2500], feature_groups=groups)
    proba = clf.predict_proba(X[2500:])
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], ndtr(clf.decision_function(X[2500:])))
    assert np.mean(clf.predict(X[2500:]) == labels[2500:]) > 0.85


def test_model_file_round_trip_and_warm_start(tmp_path):
    X, y, groups, _ = planted(8)
    for est, target in ((FMRegressor, y), (FMClassifier, y > 1.0)):
        fitted = est(solver="vb", n_factors=2, max_iter=5, tol=None, random_state=0)
        fitted.fit(X, target, feature_groups=groups)
        save(fitted, tmp_path / "vb.fm")
        loaded = load(tmp_path / "vb.fm")
        np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
        np.testing.assert_array_equal(loaded.factors_var_, fitted.factors_var_)
        np.testing.assert_array_equal(loaded.elbo_, fitted.elbo_)
        for model in (fitted, loaded):
            model.set_params(warm_start=True).fit(X, target, feature_groups=groups)
        np.testing.assert_array_equal(loaded.factors_, fitted.factors_)
        assert loaded.elbo_.shape == (10,)


def test_a_negative_variance_is_refused_naming_the_array(tmp_path):
    X, y, groups, _ = planted(9)
    reg = FMRegressor(solver="vb", n_factors=2, max_iter=2, tol=None, random_state=0).fit(X, y)
    reg._solver_state.factors_var[3, 1] = -1e-3
    with pytest.raises(ModelFileError, match=r"'solver_state.factors_var' holds -0.001 at index \(3, 1\); it must be finite and >= 0"):
        save(reg, tmp_path / "bad.fm")


def test_vb_attributes_and_return_std_need_solver_vb():
    X, y, _, _ = planted(10, n=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        als = FMRegressor(solver="als", n_factors=2, max_iter=2).fit(X, y)
    with pytest.raises(AttributeError, match="elbo_ exists for solver='vb' only"):
        als.elbo_
    with pytest.raises(ValueError, match="return_std needs solver='vb'"):
        als.predict(X, return_std=True)


def test_relations_fit_and_predict_as_the_expanded_rows():
    X, y, groups, _ = planted(11, n=200)
    users, items = X[:, :20].tocsr(), np.asarray(X[:, 20:].argmax(axis=1)).ravel()
    relations = [(items, np.eye(15))]
    params = dict(solver="vb", n_factors=2, max_iter=5, tol=None, random_state=0)
    related = FMRegressor(**params).fit(users, y, relations=relations)
    expanded = FMRegressor(**params).fit(X, y)
    mean, std = related.predict(users, relations=relations, return_std=True)
    expected_mean, expected_std = expanded.predict(X, return_std=True)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-6)
    np.testing.assert_allclose(std, expected_std, rtol=1e-6)


def test_sagemaker_artifact_refuses_the_probit_vb_classifier(tmp_path):
    from fmlearn.sagemaker.artifact import save_model
    X, y, _, _ = planted(12, n=100)
    clf = FMClassifier(solver="vb", n_factors=2, max_iter=2, tol=None).fit(X, y > 1.0)
    with pytest.raises(ValueError, match="solver='vb' classifies with the probit link"):
        save_model(clf, tmp_path / "model.tar.gz")


def test_early_stopping_is_refused_the_variances_being_of_the_last_iteration():
    X, y, _, _ = planted(13, n=100)
    with pytest.raises(ValueError, match="early_stopping is not available with solver='vb': "
                                         "the posterior variances are of the last iteration"):
        FMRegressor(solver="vb", early_stopping=True).fit(X, y)


def test_tol_stops_when_the_elbo_per_row_stops_rising():
    X, y, groups, _ = planted(14)
    reg = FMRegressor(solver="vb", n_factors=2, max_iter=500, tol=1e-4, n_iter_no_change=3,
                      dtype="float64", random_state=0).fit(X, y, feature_groups=groups)
    gains = np.diff(reg.elbo_) / X.shape[0]
    assert reg.n_iter_ < 500 and (gains[-3:] < 1e-4).all() and gains[-4] >= 1e-4
