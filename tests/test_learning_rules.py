"""The learning rules step by step: the exact AdaGrad step, weighted losses, the kept best epoch."""
import copy

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn.base import clone

from fmlearn import FFMRegressor, FMClassifier, FMRegressor

from conftest import planted_fm_data


def adagrad_step(intercept, coef, factors, acc, x, y, weight, eta, reg):
    """One AdaGrad step of the squared loss on the row ``x``, written out from the FM's gradient.

    The sums of squared gradients grow before the step (``acc += g**2``, then
    ``theta -= eta * g / sqrt(acc)``); a row's whole gradient, penalty included, is
    multiplied by its weight.
    """
    acc_b, acc_w, acc_v = (a.copy() for a in acc)
    coef, factors = coef.copy(), factors.copy()
    q = x @ factors
    score = intercept + x @ coef + 0.5 * (q @ q - ((x[:, None] * factors) ** 2).sum())
    g = weight * (score - y)
    reg_b, reg_w, reg_v = (weight * r for r in reg)
    g_b = g + reg_b * intercept
    acc_b = acc_b + g_b ** 2
    intercept = intercept - eta * g_b / np.sqrt(acc_b)
    for i in np.flatnonzero(x):
        g_w = g * x[i] + reg_w * coef[i]
        acc_w[i] += g_w ** 2
        coef[i] -= eta * g_w / np.sqrt(acc_w[i])
        g_v = g * x[i] * (q - factors[i] * x[i]) + reg_v * factors[i]
        acc_v[i] += g_v ** 2
        factors[i] -= eta * g_v / np.sqrt(acc_v[i])
    return intercept, coef, factors, (acc_b, acc_w, acc_v)


def test_the_default_schedule_takes_adagrads_exact_step_on_factors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 5))
    y = rng.uniform(-10, 10, 50)
    reg = (0.3, 0.2, 0.1)
    est = FMRegressor(n_factors=3, max_iter=2, dtype="float64", init_std=0.5, random_state=0,
                      n_jobs=1, reg_intercept=reg[0], reg_linear=reg[1], reg_factors=reg[2],
                      eta0=0.2).fit(X, y)
    assert est.learning_rate == "adagrad"  # the default schedule is the one tested
    before = copy.deepcopy(est.model_)
    state = copy.deepcopy(est._solver_state)
    acc = (state.acc_intercept[0], state.acc_coef, state.acc_factors)
    assert (state.acc_factors > 1).all()  # sums that already grew: a dropped term shows
    x = np.array([0.7, 0.0, -1.3, 2.0, 0.0])
    expected = adagrad_step(before.intercept, before.coef, before.factors, acc, x, 4.0, 2.5,
                            0.2, reg)
    est.partial_fit(x[None, :], [4.0], sample_weight=[2.5])
    np.testing.assert_allclose(est.intercept_, expected[0], rtol=1e-12)
    np.testing.assert_allclose(est.coef_, expected[1], rtol=1e-12)
    np.testing.assert_allclose(est.factors_, expected[2], rtol=1e-12)
    after = est._solver_state
    np.testing.assert_allclose(after.acc_factors, expected[3][2], rtol=1e-12)
    np.testing.assert_allclose(after.acc_coef, expected[3][1], rtol=1e-12)


@pytest.mark.parametrize("Estimator", [FMRegressor, FFMRegressor])
def test_the_reported_loss_is_the_weighted_mean_over_the_weight_sum(Estimator):
    """Doubling every weight and halving eta0 gives the same parameters and the same
    reported loss; the loss is the weighted mean, so it does not depend on the row count."""
    X, y = planted_fm_data(400, seed=3)
    w = np.random.default_rng(1).uniform(0.5, 3.0, X.shape[0])
    kw = dict(n_factors=2, max_iter=1, random_state=0, n_jobs=1, dtype="float64",
              learning_rate="constant", shuffle=False, tol=None, reg_linear=0.1,
              reg_factors=0.1, reg_intercept=0.1)
    fitted = Estimator(eta0=0.01, **kw).fit(X, y, sample_weight=w)
    scaled = Estimator(eta0=0.005, **kw).fit(X, y, sample_weight=2 * w)
    np.testing.assert_allclose(scaled.loss_curve_, fitted.loss_curve_, rtol=1e-9)
    unit = Estimator(eta0=0.01, **kw).fit(X, y)
    ones = Estimator(eta0=0.005, **kw).fit(X, y, sample_weight=np.full(X.shape[0], 2.0))
    np.testing.assert_allclose(ones.loss_curve_, unit.loss_curve_, rtol=1e-9)


def test_early_stopping_keeps_the_best_epochs_model_not_the_last():
    X, y = planted_fm_data(5000, seed=4)
    X_val, y_val = planted_fm_data(1500, seed=14)
    reg = FMRegressor(early_stopping=True, n_iter_no_change=3, max_iter=500, eta0=0.5,
                      scoring="r2", random_state=0, n_jobs=1)
    reg.fit(X, y, eval_set=(X_val, y_val))
    assert reg.n_iter_ < 500
    assert reg.validation_scores_[-1] < reg.best_validation_score_  # the last epoch was worse
    assert reg.score(X_val, y_val) == pytest.approx(reg.best_validation_score_, rel=1e-6)


KW = dict(n_factors=2, max_iter=3, random_state=0, n_jobs=1, dtype="float64",
          learning_rate="constant", eta0=0.01, shuffle=False, tol=None, reg_linear=0.1,
          reg_factors=0.1, reg_intercept=0.1)
LEARNERS = [lambda: FMRegressor(clip_predictions=False, **KW),
            lambda: FFMRegressor(clip_predictions=False, **KW),
            lambda: FMRegressor(order=3, clip_predictions=False, **KW),
            lambda: FMClassifier(**KW)]


@pytest.mark.parametrize("make", LEARNERS, ids=["fm", "ffm", "hofm", "softmax"])
def test_weights_of_zero_and_one_equal_dropping_rows(make):
    """With the constant schedule and no shuffling, a row of weight 0 is skipped whole,
    penalty included, and the others step as without weights: the FM, FFM, HOFM and
    multiclass (softmax) learners."""
    X, y = planted_fm_data(300, seed=6)
    est = make()
    if isinstance(est, FMClassifier):
        y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))  # three classes: softmax
    keep = np.arange(X.shape[0]) % 3 != 0
    weighted = clone(est).fit(X, y, sample_weight=np.where(keep, 1.0, 0.0))
    dropped = clone(est).fit(sp.csr_matrix(X)[keep], y[keep])
    predict = getattr(est, "predict_proba", est.predict)
    np.testing.assert_allclose(predict.__func__(weighted, X), predict.__func__(dropped, X),
                               rtol=1e-10)


@pytest.mark.parametrize("make", LEARNERS, ids=["fm", "ffm", "hofm", "softmax"])
def test_a_weight_scales_the_whole_step(make):
    """Weights 2.5 with eta0 / 2.5 step exactly as weights 1 with eta0: the weight
    multiplies the loss's gradient and every penalty."""
    X, y = planted_fm_data(300, seed=7)
    est = make()
    if isinstance(est, FMClassifier):
        y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    unit = clone(est).fit(X, y)
    heavy = clone(est).set_params(eta0=KW["eta0"] / 2.5).fit(
        X, y, sample_weight=np.full(X.shape[0], 2.5))
    predict = getattr(est, "predict_proba", est.predict)
    np.testing.assert_allclose(predict.__func__(heavy, X), predict.__func__(unit, X),
                               rtol=1e-9)


def test_a_stored_zero_trains_like_the_row_without_it():
    """A CSR matrix may store explicit zeros; the penalty must not step their features
    (found by bench/fuzz.py's csr target)."""
    stored = sp.csr_matrix((np.array([1.0, 2.0, 0.5, 0.0]), np.array([0, 3, 1, 0]),
                            np.array([0, 2, 4])), shape=(2, 6))
    before = stored.data.copy()
    y = np.array([-1.0, 1.0])
    kw = dict(n_factors=2, max_iter=2, random_state=0, reg_linear=0.1, reg_factors=0.1)
    a = FMRegressor(**kw).fit(stored, y)
    b = FMRegressor(**kw).fit(stored.toarray(), y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(stored.data, before)  # the caller's matrix is untouched
