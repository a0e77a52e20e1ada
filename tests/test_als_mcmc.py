"""ALS and MCMC learners: exact coordinate updates, monotone sweeps, posteriors, chains."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm, planted_fm_data
from scipy import stats
from scipy.special import log_ndtr, logsumexp, ndtri_exp
from sklearn.metrics import roc_auc_score

from fmlearn import FMClassifier, FMRegressor
from fmlearn.kernels.coordinate import (coordinate_sweep, draw_group_prior, exclusive_blocks,
                                        probit_targets, scores_and_sums, seed_generator)
from fmlearn._validation import as_fm_csr
from fmlearn.model import FMModel, FMSamples
import fmlearn.solvers.mcmc as mcmc_solver
from fmlearn.solvers.mcmc import MCMCSolver
from fmlearn.solvers.als import ALSSolver, Hyperparameters


def objective(X, y, s, model, reg):
    """ALS's objective written out: weighted squared error plus the three L2 penalties."""
    r0, r1, r2 = reg
    err = brute_force_fm(X, model.intercept, model.coef, model.factors) - y
    return (np.sum(s * err**2) + r0 * model.intercept**2 + r1 * np.sum(model.coef**2)
            + r2 * np.sum(model.factors**2))


def parabola_minimiser(J, theta):
    """Vertex of the quadratic ``J`` (evaluated at three points around ``theta``)."""
    a, b, c = J(theta - 1.0), J(theta), J(theta + 1.0)
    return theta - (c - a) / (2.0 * (a - 2.0 * b + c))


def small_problem(seed=0, n_rows=30, n_features=5, n_factors=3):
    rng = np.random.default_rng(seed)
    X = sp.random(n_rows, n_features, density=0.6, random_state=seed, format="csr",
                  data_rvs=lambda n: rng.normal(size=n))
    model = FMModel(0.3, rng.normal(size=n_features), rng.normal(0, 0.5, (n_features, n_factors)))
    return X, rng.normal(size=n_rows), rng.uniform(0.5, 2.0, n_rows), model


def residual_and_sums(X, y, model):
    n_rows, k = X.shape[0], model.factors.shape[1]
    scores, q = np.empty(n_rows), np.empty((k, n_rows))
    scores_and_sums(X.indptr, X.indices, X.data, model.intercept, model.coef, model.factors,
                    scores, q)
    return scores - y, q


def coordinate_descent_written_out(X, y, s, model, reg, blocks):
    """ALS in the sweep's order, each coordinate set to the brute-force minimiser of the
    objective: w0, then layer by layer (w, then each factor column), block by block."""
    model = model.copy()

    def minimise(get, put, lam):
        def J(t):
            put(t)
            return objective(X, y, s, model, (0.0, 0.0, 0.0)) + lam * t * t
        put(parabola_minimiser(J, get()))

    minimise(lambda: model.intercept, lambda t: setattr(model, "intercept", t), reg[0])
    for first, last in zip(blocks[:-1], blocks[1:]):
        for i in range(first, last):
            minimise(lambda: model.coef[i], lambda t: model.coef.__setitem__(i, t), reg[1])
    for f in range(model.factors.shape[1]):
        for first, last in zip(blocks[:-1], blocks[1:]):
            for i in range(first, last):
                minimise(lambda: model.factors[i, f],
                         lambda t: model.factors.__setitem__((i, f), t), reg[2])
    return model


def test_single_coordinate_updates_are_closed_form_minimisers():
    """One feature with a weight and one factor: ALS sets w_i, then v_i1, each to the
    minimiser of the weighted, regularised loss with everything else fixed."""
    X, y, s, model = small_problem(n_factors=1)
    X = X[:, [2]] + 0.0
    model = FMModel(model.intercept, model.coef[[2]], model.factors[[2]])
    reg = (0.0, 0.7, 0.4)
    expected = coordinate_descent_written_out(X, y, s, model, reg, [0, 1])
    solver = ALSSolver("squared", *reg)
    solver.epoch(model, X, y, s, solver.initial_state(model, None))
    assert model.coef[0] == pytest.approx(expected.coef[0], rel=1e-9)
    assert model.factors[0, 0] == pytest.approx(expected.factors[0, 0], rel=1e-9)


def test_als_sweep_equals_coordinate_descent_written_out():
    """A block sweep (one-hot users and items updated together) equals updating every
    parameter one after the other to its brute-force minimiser."""
    X, y = planted_fm_data(40, n_users=4, n_items=5, n_factors=2, seed=1)
    X = X.astype(np.float64)
    blocks = exclusive_blocks(X.tocsc().indptr, X.tocsc().indices, 40).tolist()
    assert blocks == [0, 4, 9, 10]
    reg = (0.5, 0.3, 0.2)
    s = np.random.default_rng(1).uniform(0.5, 2.0, 40)
    model = FMModel(0.1, np.zeros(10), np.random.default_rng(0).normal(0, 0.1, (10, 2)))
    expected = coordinate_descent_written_out(X, y, s, model, reg, blocks)
    solver = ALSSolver("squared", *reg, n_threads=1)
    solver.epoch(model, X, y, s, solver.initial_state(model, None))
    assert model.intercept == pytest.approx(expected.intercept, abs=1e-9)
    np.testing.assert_allclose(model.coef, expected.coef, atol=1e-9)
    np.testing.assert_allclose(model.factors, expected.factors, atol=1e-9)


def test_residual_and_factor_sums_follow_the_parameters():
    X, y, s, model = small_problem()
    layout = ALSSolver("squared", 0, 0, 0).layout(X)
    e, q = residual_and_sums(X, y, model)
    w0 = np.array([model.intercept])
    hyper = Hyperparameters.initial(1, 3, 0.5, 0.5)
    coordinate_sweep(layout, s, True, e, q, w0, model.coef, model.factors,
                     np.zeros(5, np.int64), hyper.arrays(), 0.0, False, False, False, 1)
    model.intercept = w0[0]
    e_new, q_new = residual_and_sums(X, y, model)
    np.testing.assert_allclose(e, e_new, atol=1e-10)
    np.testing.assert_allclose(q, q_new, atol=1e-10)


def test_als_sweeps_never_increase_the_objective():
    X, y = planted_fm_data(300, n_users=20, n_items=25, noise=0.3, seed=2)
    s = np.random.default_rng(0).uniform(0.2, 3.0, X.shape[0])
    reg = (0.1, 0.5, 1.0)
    est = FMRegressor(solver="als", n_factors=3, max_iter=1, tol=None, warm_start=True,
                      reg_intercept=reg[0], reg_linear=reg[1], reg_factors=reg[2], init_std=0.3,
                      dtype="float64", clip_predictions=False, random_state=0)
    values = []
    for _ in range(12):
        est.fit(X, y, sample_weight=s)
        values.append(objective(X, y, s, est.model_, reg))
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.5 * values[0]


def test_exclusive_blocks_split_where_a_row_holds_two_columns():
    X = sp.csc_matrix(np.array([[1, 0, 1, 0], [0, 1, 1, 1], [1, 0, 0, 0]], dtype=float))
    assert exclusive_blocks(X.indptr, X.indices, 3).tolist() == [0, 2, 3, 4]


def test_gibbs_sampler_matches_the_analytic_bayesian_linear_regression_posterior():
    """With n_factors=0 and fixed precisions the posterior of (w0, w) is Gaussian with
    covariance (alpha Z'SZ + Lambda)^-1 and mean alpha cov Z'S y (Z = [1, X], S the weights)."""
    rng = np.random.default_rng(3)
    n_rows, n_features = 40, 3
    X = sp.csr_matrix(rng.normal(size=(n_rows, n_features)))
    y = 1.0 + X @ np.array([0.5, -1.0, 2.0]) + rng.normal(0, 0.5, n_rows)
    s = rng.uniform(0.5, 2.0, n_rows)
    alpha, lam, reg0 = 4.0, 2.0, 0.5
    Z = np.column_stack([np.ones(n_rows), X.toarray()])
    precision = alpha * Z.T @ (s[:, None] * Z) + np.diag([reg0] + [lam] * n_features)
    cov = np.linalg.inv(precision)
    mean = alpha * cov @ Z.T @ (s * y)

    model = FMModel(0.0, np.zeros(n_features), np.zeros((n_features, 0)))
    hyper = Hyperparameters(np.array([alpha]), np.zeros(1), np.full(1, lam), np.zeros((1, 0)),
                            np.zeros((1, 0)))
    layout = ALSSolver("squared", 0, 0, 0).layout(X)
    seed_generator(7)
    draws = []
    for it in range(6000):
        e, q = residual_and_sums(X, y, model)
        w0 = np.array([model.intercept])
        coordinate_sweep(layout, s, True, e, q, w0, model.coef, model.factors,
                         np.zeros(n_features, np.int64), hyper.arrays(), reg0, True, False, False,
                         1)
        model.intercept = w0[0]
        if it >= 100:
            draws.append(np.concatenate([w0, model.coef]))
    draws = np.array(draws)
    sd = np.sqrt(np.diag(cov))
    # Gibbs draws are autocorrelated: allow for an effective sample size of a tenth.
    mc_error = sd / np.sqrt(draws.shape[0] / 10)
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - mean), 4 * mc_error)
    np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.1)


def test_mcmc_recovers_a_planted_model():
    X, y = planted_fm_data(6000, noise=0.1, seed=4)
    X_test, y_test = planted_fm_data(2000, noise=0.0, seed=4)  # the same planted model, no noise
    est = FMRegressor(solver="mcmc", n_factors=4, max_iter=150, burn_in=50, init_std=0.1,
                      random_state=0).fit(X[:4000], y[:4000])
    rmse = np.sqrt(np.mean((est.predict(X[4000:]) - y[4000:]) ** 2))
    assert rmse < 0.15  # noise sd 0.1; the target's sd is about 1.5
    alpha = est.hyperparameter_trace_["alpha"][50:]
    assert 1 / np.sqrt(alpha.mean()) == pytest.approx(0.1, rel=0.3)


def test_mcmc_classifier_learns_a_planted_model_with_the_probit_link():
    X, f = planted_fm_data(3000, noise=0.0, seed=5)
    y = np.where(f + np.random.default_rng(5).normal(0, 0.3, f.shape[0]) > np.median(f), "b", "a")
    for solver in ("als", "mcmc"):
        clf = FMClassifier(solver=solver, n_factors=4, max_iter=60, tol=None, init_std=0.1,
                           reg_linear=1.0, reg_factors=1.0, random_state=0).fit(X[:2000], y[:2000])
        proba = clf.predict_proba(X[2000:])
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        decision = clf.decision_function(X[2000:])
        np.testing.assert_array_equal(proba[:, 1] > 0.5, decision > 0)
        np.testing.assert_array_equal(clf.predict(X[2000:]), clf.classes_[(decision > 0) * 1])
        np.testing.assert_allclose(proba[:, 1], stats.norm.cdf(decision), rtol=1e-5, atol=1e-7)
        assert roc_auc_score(y[2000:] == "b", proba[:, 1]) > 0.9, solver


@pytest.mark.parametrize("cls", [FMRegressor, FMClassifier])
def test_mcmc_warm_start_after_save_and_load_continues_the_same_chain(cls):
    X, y = planted_fm_data(500, seed=6)
    if cls is FMClassifier:
        y = y > np.median(y)
    params = dict(solver="mcmc", n_factors=3, burn_in=5, random_state=0)
    long_run = cls(max_iter=30, **params).fit(X, y)
    half = cls(max_iter=15, warm_start=True, **params).fit(X, y)
    half = pickle.loads(pickle.dumps(half))
    half.fit(X, y)
    assert half.model_.n_samples == long_run.model_.n_samples == 25
    np.testing.assert_array_equal(half.model_.factors_samples, long_run.model_.factors_samples)
    np.testing.assert_array_equal(half._decision(X), long_run._decision(X))
    trace = half.hyperparameter_trace_
    assert trace["lam_v"].shape == (30, 1, 3)
    np.testing.assert_array_equal(trace["lam_v"], long_run.hyperparameter_trace_["lam_v"])


def test_mcmc_keeps_the_latest_samples_within_the_bound():
    X, y = planted_fm_data(300, seed=7)
    params = dict(solver="mcmc", n_factors=2, max_iter=20, burn_in=4, random_state=0)
    everything = FMRegressor(**params).fit(X, y).model_
    latest = FMRegressor(n_kept_samples=6, **params).fit(X, y).model_
    assert everything.n_samples == 16
    np.testing.assert_array_equal(latest.intercepts, everything.intercepts[-6:])
    assert latest.factors_samples.nbytes == 6 * X.shape[1] * 2 * 4


def test_mcmc_validation_scores_are_those_of_the_running_average():
    X, y = planted_fm_data(800, seed=8)
    est = FMRegressor(solver="mcmc", n_factors=3, max_iter=25, n_kept_samples=10,
                      random_state=0).fit(X[:600], y[:600], eval_set=(X[600:], y[600:]))
    assert len(est.validation_scores_) == len(est.loss_curve_) == 25
    final = -np.sqrt(np.mean((est.predict(X[600:]) - y[600:]) ** 2))
    assert est.validation_scores_[-1] == pytest.approx(final, rel=1e-5)
    train = np.mean((est.predict(X[:600]) - y[:600]) ** 2) / 2
    assert est.loss_curve_[-1] == pytest.approx(train, rel=1e-4)


def constant_samples(scores, **kwargs):
    """Samples of a one-feature FM whose score on the row [1] is each of ``scores``."""
    scores = np.asarray(scores, dtype=np.float64)
    return FMSamples(scores, np.zeros((scores.size, 1)), np.zeros((scores.size, 1, 1)), **kwargs)


def probit_average(scores):
    """Phi^-1 of the mean of Phi(scores), from the smaller tail, in logs."""
    upper = logsumexp(log_ndtr(-scores)) - np.log(scores.size)
    lower = logsumexp(log_ndtr(scores)) - np.log(scores.size)
    return -ndtri_exp(upper) if upper < lower else ndtri_exp(lower)


@pytest.mark.parametrize("scores", [[10.0], [-10.0], [25.0, 25.0], [-40.0, -40.0, -40.0],
                                    [40.0], [12.0, 20.0, 40.0], [-15.0, -38.0]])
def test_confident_probit_averages_keep_their_score(scores):
    # The mean of Phi(s) alone rounds to 1 beyond s = 8.2 (1 - p < 1e-16); its complement,
    # the mean of Phi(-s), keeps the digits on that side.
    X = np.ones((1, 1))
    got = constant_samples(scores, link="probit").predict(X)[0]
    np.testing.assert_allclose(got, probit_average(np.array(scores)), rtol=1e-12)
    if len(set(scores)) == 1:
        assert got == pytest.approx(scores[0], rel=1e-12)


def test_running_probit_average_drops_a_dominant_sample_exactly():
    # Dropping the sample at 5 from [5, 40] leaves Phi(-40) = 3.7e-350 of a tail near
    # Phi(-5) = 2.9e-7: subtracting loses every digit, so that row is added up again.
    X = as_fm_csr(np.ones((1, 1)), np.float64)
    solver = MCMCSolver("probit", 0.0, 0.0, 0.0, n_kept_samples=2)
    state = solver.initial_state(FMModel(0.0, np.zeros(1), np.zeros((1, 1))), None)
    for it, score in enumerate([5.0, 40.0, 40.0, 39.0, -30.0], start=1):
        sample = FMModel(score, np.zeros(1), np.zeros((1, 1)))
        state.samples.append(sample)
        dropped = state.samples.pop(0) if len(state.samples) > 2 else None
        solver._change = (it, sample, dropped)
        expected = probit_average(np.array([m.intercept for m in state.samples]))
        assert solver.decision(sample, state, X)[0] == pytest.approx(expected, rel=1e-12)


def test_mcmc_regression_clips_each_sample_before_averaging():
    # libFM's MCMC clips every sample's prediction to [min_target, max_target], then averages.
    assert constant_samples([2.0, -0.5], bounds=(0.0, 1.0)).predict(np.ones((1, 1))) == 0.5
    X, y = planted_fm_data(300, seed=4)
    y = (y > np.median(y)).astype(float)
    est = FMRegressor(solver="mcmc", n_factors=3, max_iter=20, dtype="float64",
                      random_state=0).fit(X, y)
    assert est.model_.bounds == est.target_range_ == (0.0, 1.0)
    samples = np.array([est.model_.sample(s).predict(X) for s in range(est.model_.n_samples)])
    per_sample = np.clip(samples, 0.0, 1.0).mean(axis=0)
    assert np.abs(per_sample - np.clip(samples.mean(axis=0), 0.0, 1.0)).max() > 0.01
    np.testing.assert_allclose(est.predict(X), per_sample, rtol=1e-12)
    unclipped = FMRegressor(solver="mcmc", n_factors=3, max_iter=20, dtype="float64",
                            random_state=0, clip_predictions=False).fit(X, y)
    assert unclipped.model_.bounds is None


@pytest.mark.parametrize("solver", ["als", "mcmc"])
def test_zero_and_integer_weights_equal_removing_and_repeating_rows(solver):
    X, y = planted_fm_data(200, seed=9)
    w = np.random.default_rng(9).integers(0, 3, X.shape[0])
    params = dict(solver=solver, n_factors=3, max_iter=10, tol=None, reg_factors=1.0,
                  dtype="float64", random_state=0)
    weighted = FMRegressor(**params).fit(X, y, sample_weight=w)
    repeated = FMRegressor(**params).fit(X[np.repeat(np.arange(200), w)], np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-7)


def test_feature_groups_give_each_group_its_own_prior():
    X, y = planted_fm_data(400, n_users=10, n_items=12, seed=10)
    groups = np.r_[np.zeros(10, int), np.ones(12, int), [7]]
    est = FMRegressor(solver="mcmc", n_factors=2, max_iter=10, random_state=0)
    est.fit(X, y, feature_groups=groups)
    trace = est.hyperparameter_trace_
    assert trace["mu_w"].shape == (10, 3) and trace["lam_v"].shape == (10, 3, 2)
    assert trace["alpha"].shape == (10,)


def test_probit_targets_follow_the_truncated_normal():
    means = np.array([-40.0, -3.0, -0.5, 0.0, 0.7, 4.0, 40.0])
    labels = np.array([1.0, 1.0, -1.0, 1.0, -1.0, -1.0, -1.0])
    a, b = np.where(labels > 0, -means, -np.inf), np.where(labels > 0, np.inf, -means)
    expected = stats.truncnorm.mean(a, b, loc=means)
    z = np.empty(7)
    probit_targets(means, labels, z, None)
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)
    seed_generator(0)
    normals = np.random.default_rng(0).standard_normal((20000, 7))
    draws = np.empty((20000, 7))
    for t in range(20000):
        probit_targets(means, labels, draws[t], normals[t])
    assert np.all(draws * labels > 0)
    # row 2 (label -1, mean -0.5) takes its first try, the draw given, where it is above -0.5
    took = normals[:, 2] > -0.5
    assert 0.6 < took.mean() < 0.8
    np.testing.assert_array_equal(draws[took, 2], -(0.5 + normals[took, 2]))
    np.testing.assert_allclose(draws.mean(axis=0), expected, atol=0.03)
    np.testing.assert_allclose(draws.std(axis=0), stats.truncnorm.std(a, b), atol=0.03)


def test_group_prior_draws_follow_the_normal_gamma_posterior():
    # 20000 groups holding the same values and prior mean: one call, 20000 independent draws
    # of lam ~ Gamma((n + 2) / 2, rate=(1 + sum (theta - mu)^2 + mu^2) / 2), then
    # mu | lam ~ N(sum theta / (n + 1), 1 / ((n + 1) lam)).
    theta, mu_now, n_groups = np.array([1.5, 2.5, 3.0, 2.0, 3.5]), 2.0, 20000
    n = theta.size
    mu, lam = np.full(n_groups, mu_now), np.ones(n_groups)
    seed_generator(0)
    draw_group_prior(np.tile(theta, n_groups), np.repeat(np.arange(n_groups), n), mu, lam)
    shape = (n + 2) / 2
    rate = (1 + ((theta - mu_now) ** 2).sum() + mu_now**2) / 2
    lam_mean, lam_var = shape / rate, shape / rate**2
    mu_mean, mu_var = theta.sum() / (n + 1), rate / ((n + 1) * (shape - 1))  # lam integrated out
    for draws, mean, var in ((lam, lam_mean, lam_var), (mu, mu_mean, mu_var)):
        assert abs(draws.mean() - mean) < 4 * np.sqrt(var / n_groups)
        assert abs(draws.var() / var - 1) < 0.06


@pytest.mark.parametrize("kwargs, fit_kwargs, message", [
    (dict(solver="mcmc", early_stopping=True), {}, "early_stopping is not available with"),
    (dict(solver="sgd"), dict(feature_groups=[0, 0, 1]), "does not use it"),
    (dict(solver="mcmc"), dict(feature_groups=[0, 1]), "X has 3 features, feature_groups has"),
    (dict(solver="mcmc"), dict(feature_groups=[0.5, 1, 1]), "must hold integer group ids"),
])
def test_bad_bayesian_settings_are_named(kwargs, fit_kwargs, message):
    with pytest.raises(ValueError, match=message):
        FMRegressor(**kwargs).fit(np.eye(3), [1.0, 2.0, 3.0], **fit_kwargs)


def test_hyperparameter_trace_is_for_mcmc_only():
    est = FMRegressor(solver="als", max_iter=2).fit(np.eye(3), [1.0, 2.0, 3.0])
    with pytest.raises(AttributeError, match="solver='mcmc' only"):
        est.hyperparameter_trace_


@pytest.mark.parametrize("cls", [FMRegressor, FMClassifier])
def test_a_chain_on_carried_sums_follows_one_that_sums_afresh(cls, monkeypatch):
    """Sweeps start from the scores and factor sums the last one left, summed afresh every
    REFRESH-th draw only: the chain is that of sums computed afresh before every sweep, up
    to round-off."""
    X, y = planted_fm_data(400, seed=9)
    if cls is FMClassifier:
        y = y > np.median(y)
    params = dict(solver="mcmc", n_factors=3, max_iter=40, dtype="float64", random_state=0)
    carried = cls(**params).fit(X, y)
    monkeypatch.setattr(mcmc_solver, "REFRESH", 1)
    fresh = cls(**params).fit(X, y)
    np.testing.assert_allclose(carried.model_.factors_samples, fresh.model_.factors_samples,
                               rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(carried.loss_curve_, fresh.loss_curve_, rtol=1e-10)


def test_sums_carried_from_other_rows_are_not_used():
    """A warm start on other rows of the same shape sums them afresh: the chain is the one
    of a state that carried no sums."""
    X, y = planted_fm_data(600, seed=10)
    params = dict(solver="mcmc", n_factors=3, max_iter=5, dtype="float64", random_state=0,
                  warm_start=True)
    carrying = FMRegressor(**params).fit(X[:300], y[:300])
    assert carrying._solver_state.sums is not None
    plain = pickle.loads(pickle.dumps(carrying))
    plain._solver_state.sums = None
    carrying.fit(X[300:], y[300:])
    plain.fit(X[300:], y[300:])
    np.testing.assert_array_equal(carrying.model_.factors_samples, plain.model_.factors_samples)
    # without warm_start the state keeps no per-row arrays
    assert FMRegressor(**{**params, "warm_start": False}).fit(X, y)._solver_state.sums is None
