"""FMOrdinalRegressor: the ordered-probit FM by Gibbs sampling, and its kernels."""
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.special import ndtr
from scipy.stats import truncnorm

from fmlearn import FMClassifier, FMOrdinalRegressor, ModelFileError, load, save
from fmlearn.kernels.coordinate import seed_generator
from fmlearn.kernels.ordinal import draw_cutpoints, log_posterior, ordinal_targets
from fmlearn.ordinal_model import class_probabilities


def test_latent_targets_fall_in_their_class_intervals():
    rng = np.random.default_rng(0)
    cut = np.array([-1.0, 0.0, 0.05, 3.0])
    labels = rng.integers(0, 5, 2000)
    scores = np.concatenate([rng.normal(0, 1, 1000), rng.normal(0, 40, 1000)])
    z = np.empty(2000)
    seed_generator(0)
    ordinal_targets(scores, labels, cut, z, rng.standard_normal(2000))
    lo, hi = np.r_[-np.inf, cut][labels], np.r_[cut, np.inf][labels]
    assert np.all((z > lo) & (z <= hi))


@pytest.mark.parametrize("score, k", [(0.0, 2), (5.0, 1), (-6.0, 3), (2.0, 0), (-1.0, 4)])
def test_latent_targets_follow_the_truncated_normal(score, k):
    cut = np.array([-1.0, 0.0, 0.5, 3.0])
    n = 20000
    z = np.empty(n)
    seed_generator(1)
    ordinal_targets(np.full(n, score), np.full(n, k), cut, z,
                    np.random.default_rng(1).standard_normal(n))
    lo, hi = np.r_[-np.inf, cut][k] - score, np.r_[cut, np.inf][k] - score
    exact = truncnorm(lo, hi, loc=score)
    assert abs(z.mean() - exact.mean()) < 5 * exact.std() / np.sqrt(n)
    assert abs(z.std() / exact.std() - 1) < 0.05


def _planted(n, cut, rng):
    scores = rng.normal(size=n)
    labels = np.searchsorted(cut, scores + rng.normal(size=n)).astype(np.int64)
    return scores, labels


def test_cutpoint_step_samples_their_posterior():
    """With the scores fixed, the chain of the one free cut-point (the first is held at 0)
    has the mean and spread of its posterior computed by quadrature."""
    rng = np.random.default_rng(0)
    scores, labels = _planted(40, np.array([0.0, 1.0]), rng)
    cut = np.array([0.0, 0.5])
    seed_generator(1)
    draws = np.empty(8000)
    for i in range(draws.shape[0]):
        draw_cutpoints(cut, scores, labels, np.ones(40), False, True)
        draws[i] = cut[1]
    grid = np.linspace(-8.0, 4.0, 6001)
    log_post = np.array([log_posterior(np.array([0.0, a]), scores, labels, np.ones(40), False,
                                       True, np.empty(2), np.empty((2, 2))) for a in grid])
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    mean = weights @ np.exp(grid)
    sd = np.sqrt(weights @ (np.exp(grid) - mean) ** 2)
    assert abs(draws[500:].mean() - mean) < 0.1 * sd
    assert abs(draws[500:].std() / sd - 1) < 0.1
    # the quadrature's log-posterior is the likelihood of the class probabilities
    probs = class_probabilities(scores, np.array([0.0, 1.0]))[labels, np.arange(40)]
    assert log_posterior(np.array([0.0, 0.0]), scores, labels, np.ones(40), False, True,
                         np.empty(2), np.empty((2, 2))) == pytest.approx(np.log(probs).sum())


@pytest.mark.parametrize("fixed_first", [True, False])
def test_cutpoint_steps_keep_the_order_and_recover_planted_cutpoints(fixed_first):
    rng = np.random.default_rng(2)
    truth = np.array([0.0, 0.4, 1.5, 1.6, 3.0])
    scores, labels = _planted(20000, truth, rng)
    cut = np.arange(5.0)
    seed_generator(3)
    draws = []
    for _ in range(300):
        draw_cutpoints(cut, scores, labels, np.ones(20000), False, fixed_first)
        assert np.all(np.diff(cut) > 0)
        draws.append(cut.copy())
    assert cut[0] == 0.0 or not fixed_first
    np.testing.assert_allclose(np.mean(draws[50:], axis=0), truth, atol=0.05)


def test_weights_count_rows_in_the_cutpoint_likelihood():
    rng = np.random.default_rng(4)
    scores, labels = _planted(30, np.array([0.0, 1.0]), rng)
    alpha, g, h = np.array([0.0, 0.3]), np.empty(2), np.empty((2, 2))
    doubled = log_posterior(alpha, np.r_[scores, scores], np.r_[labels, labels],
                            np.ones(60), False, True, g, h)
    weighted = log_posterior(alpha, scores, labels, np.full(30, 2.0), True, True, g, h)
    assert weighted == pytest.approx(doubled)


def test_planted_ordinal_model_is_learned():
    rng = np.random.default_rng(5)
    n = 3000
    X = rng.normal(size=(n, 4))
    scores = -0.5 + X @ np.array([1.0, -0.5, 0.0, 0.3]) + 0.6 * X[:, 0] * X[:, 1]
    truth = np.array([-1.0, 0.0, 1.2])
    y = np.searchsorted(truth, scores + rng.normal(size=n)) + 1
    reg = FMOrdinalRegressor(n_factors=2, max_iter=200, random_state=0).fit(X, y)
    proba = reg.predict_proba(X)
    expected = class_probabilities(scores, truth).T
    assert np.abs(proba - expected).mean() < 0.03
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(reg.predict(X), reg.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(reg.predict_expected(X), proba @ np.arange(1, 5))
    # the cut-points less the first, with the intercept setting the location
    np.testing.assert_allclose(reg.cutpoints_ - reg.cutpoints_[0], truth - truth[0], atol=0.15)


def test_warm_start_continues_the_chain():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(100, 3))
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    whole = FMOrdinalRegressor(n_factors=2, max_iter=20, burn_in=5, random_state=0).fit(X, y)
    parts = FMOrdinalRegressor(n_factors=2, max_iter=10, burn_in=5, random_state=0,
                               warm_start=True).fit(X, y).fit(X, y)
    np.testing.assert_array_equal(parts.model_.cutpoints, whole.model_.cutpoints)
    np.testing.assert_array_equal(parts.predict_proba(X), whole.predict_proba(X))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="needs samples of at least two classes; y has only "
                                         "one class: 3"):
        FMOrdinalRegressor().fit(np.eye(2), [3, 3])
    reg = FMOrdinalRegressor(max_iter=3, random_state=0).fit(np.eye(2), ["a", "b"])
    with pytest.raises(ValueError, match="predict_expected needs numeric labels"):
        reg.predict_expected(np.eye(2))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        FMOrdinalRegressor().partial_fit(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match=r"y holds labels \[7\] that are not among"):
        FMOrdinalRegressor().partial_fit(np.eye(2), [0, 7], classes=[0, 1])


def _fitted(**params):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 3))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=120), [-0.5, 0.2, 0.8]) * 2
    return FMOrdinalRegressor(n_factors=2, max_iter=12, burn_in=4, random_state=0,
                              **params).fit(X, y), X, y


def test_model_files_round_trip_and_continue_the_chain(tmp_path):
    reg, X, y = _fitted(warm_start=True)
    loaded = load(save(reg, tmp_path / "ordinal.fm"))
    np.testing.assert_array_equal(loaded.predict_proba(X), reg.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, reg.classes_)
    np.testing.assert_array_equal(loaded.fit(X, y).predict_proba(X), reg.fit(X, y).predict_proba(X))
    np.testing.assert_array_equal(loaded.model_.cutpoints, reg.model_.cutpoints)


def _rewrite(path, member, change):
    """A copy of the model file at ``path`` with the array ``member`` changed."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    array = np.load(io.BytesIO(members[member]))
    buffer = io.BytesIO()
    np.save(buffer, change(array.copy()))
    members[member] = buffer.getvalue()
    out = path.with_name("changed.fm")
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out


def _swap_first(a):
    a[..., [0, 1]] = a[..., [1, 0]]
    return a


@pytest.mark.parametrize("member", ["model.cutpoints.npy", "solver_state.current.cutpoints.npy"])
def test_model_files_with_disordered_cutpoints_are_refused(tmp_path, member):
    reg, _, _ = _fitted()
    path = save(reg, tmp_path / "ordinal.fm")
    with pytest.raises(ModelFileError, match="is not increasing"):
        load(_rewrite(Path(path), member, _swap_first))


def test_two_classes_are_the_binary_probit_chain():
    """With two classes the cut-point is fixed at 0 and the sampler is FMClassifier's MCMC:
    the same draws, the same probabilities."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(150, 4))
    y = (X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=150) > 0).astype(int)
    params = dict(n_factors=3, max_iter=15, random_state=0, dtype="float64")
    ordinal = FMOrdinalRegressor(**params).fit(X, y)
    probit = FMClassifier(solver="mcmc", **params).fit(X, y)
    np.testing.assert_array_equal(ordinal.model_.samples.factors_samples,
                                  probit.model_.factors_samples)
    np.testing.assert_allclose(ordinal.predict_proba(X), probit.predict_proba(X), atol=1e-12)
