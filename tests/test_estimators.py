"""Behaviour of FMRegressor and FMClassifier: learning, history, reproducibility, the ecosystem."""
import pickle
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import planted_fm_data
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from fmlearn import FMClassifier, FMRegressor


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_planted_fm_is_recovered(dtype):
    noise = 0.1
    X, y = planted_fm_data(24000, noise=noise, seed=1)
    X_test, y_test = X[20000:], y[20000:]
    reg = FMRegressor(n_factors=4, max_iter=200, eta0=0.05, init_std=0.1, reg_linear=0,
                      reg_factors=0, early_stopping=True, n_iter_no_change=10, random_state=0,
                      dtype=dtype).fit(X[:20000], y[:20000])
    assert rmse(reg.predict(X_test), y_test) <= 1.1 * noise
    # The constant and linear models are far from the noise level: the factors do the work.
    assert rmse(np.full_like(y_test, y.mean()), y_test) > 5 * noise


def test_classifier_learns_an_interaction_a_linear_model_cannot():
    rng = np.random.default_rng(0)
    X = rng.choice([-1.0, 1.0], size=(4000, 6))
    y = np.where(X[:, 0] * X[:, 1] > 0, "same", "different")
    linear = LogisticRegression().fit(X[:3000], y[:3000]).score(X[3000:], y[3000:])
    clf = FMClassifier(n_factors=4, max_iter=50, random_state=0).fit(X[:3000], y[:3000])
    assert linear < 0.6
    assert clf.score(X[3000:], y[3000:]) > 0.97
    proba = clf.predict_proba(X[3000:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X[3000:]),
                                  clf.classes_[(clf.decision_function(X[3000:]) > 0).astype(int)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[3000:])), proba)


@pytest.mark.parametrize("labels", [[0, 1], [-1, 1], [False, True], ["no", "yes"], [1.0, 2.0]])
def test_classifier_accepts_any_two_labels(labels):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = np.where(X[:, 0] > 0, labels[1], labels[0])
    clf = FMClassifier(random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.array(labels))
    assert clf.score(X, y) > 0.9


def test_n_jobs_1_with_random_state_is_exactly_reproducible():
    X, y = planted_fm_data(3000, seed=2)
    a = FMRegressor(n_jobs=1, random_state=7, max_iter=5).fit(X, y)
    b = FMRegressor(n_jobs=1, random_state=7, max_iter=5).fit(X, y)
    np.testing.assert_array_equal(a.factors_, b.factors_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = FMRegressor(n_jobs=1, random_state=8, max_iter=5).fit(X, y)
    assert not np.array_equal(a.factors_, c.factors_)


def test_two_threads_learn_as_well_as_one():
    X, y = planted_fm_data(22000, seed=3)
    # Trained to the noise floor (test RMSE 0.103 of 0.1): after 30 epochs two threads still
    # lag one (0.114 against 0.104), as Hogwild's merged steps do before they settle.
    kw = dict(n_factors=4, max_iter=60, eta0=0.05, init_std=0.1, random_state=0, tol=None)
    one = FMRegressor(n_jobs=1, **kw).fit(X[:20000], y[:20000])
    two = FMRegressor(n_jobs=2, **kw).fit(X[:20000], y[:20000])
    assert rmse(two.predict(X[20000:]), y[20000:]) <= 1.1 * rmse(one.predict(X[20000:]), y[20000:])


def test_early_stopping_keeps_the_best_epoch_and_records_history():
    X, y = planted_fm_data(5000, seed=4)
    reg = FMRegressor(early_stopping=True, n_iter_no_change=3, max_iter=500, eta0=0.5,
                      random_state=0).fit(X, y)
    assert reg.n_iter_ < 500
    assert len(reg.loss_curve_) == len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert np.argmax(reg.validation_scores_) == reg.n_iter_ - 1 - 3


def test_eval_set_and_scorer_name():
    rng = np.random.default_rng(0)
    X = rng.choice([-1.0, 1.0], size=(3000, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    clf = FMClassifier(early_stopping=True, scoring="roc_auc", max_iter=30, random_state=0)
    clf.fit(X[:2000], y[:2000], eval_set=(X[2000:], y[2000:]))
    assert clf.best_validation_score_ > 0.99  # x0 * x1 is an exact pairwise interaction
    assert clf.score(X[2000:], y[2000:]) > 0.98
    assert len(clf.validation_scores_) == clf.n_iter_


def test_eval_set_without_early_stopping_only_records_scores():
    X, y = planted_fm_data(2000, seed=5)
    reg = FMRegressor(max_iter=7, tol=None, random_state=0).fit(X, y, eval_set=(X, y))
    assert reg.n_iter_ == 7 and len(reg.validation_scores_) == 7
    assert reg.validation_scores_[-1] > reg.validation_scores_[0]


def test_convergence_warning_when_max_iter_is_reached():
    X, y = planted_fm_data(500, seed=5)
    with pytest.warns(ConvergenceWarning, match="Maximum number of iterations \\(2\\)"):
        FMRegressor(max_iter=2, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        FMRegressor(max_iter=2, tol=None, random_state=0).fit(X, y)


def test_warm_start_continues_from_the_previous_model():
    X, y = planted_fm_data(3000, seed=6)
    reg = FMRegressor(max_iter=3, tol=None, warm_start=True, random_state=0).fit(X, y)
    first_loss = reg.loss_curve_[-1]
    reg.fit(X, y)
    assert reg.t_ == 6 * 3000
    assert reg.loss_curve_[0] < first_loss
    cold = FMRegressor(max_iter=3, tol=None, random_state=0).fit(X, y)
    assert cold.loss_curve_[0] > reg.loss_curve_[0]


def test_partial_fit_runs_one_epoch_per_call_and_improves():
    X, y = planted_fm_data(3000, seed=7)
    reg = FMRegressor(random_state=0)
    losses = [reg.partial_fit(X, y).loss_curve_[0] for _ in range(5)]
    assert reg.n_iter_ == 1 and reg.t_ == 5 * 3000
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="X has 3 features"):
        reg.partial_fit(np.ones((2, 3)), [1.0, 2.0])


def test_zero_weight_rows_change_nothing():
    X, y = planted_fm_data(1000, seed=8)
    extra, y_extra = planted_fm_data(300, seed=9)
    kw = dict(max_iter=4, tol=None, shuffle=False, random_state=0, reg_linear=1e-3, reg_factors=1e-3)
    base = FMRegressor(**kw).fit(X, y)
    padded = FMRegressor(**kw).fit(sp.vstack([X, extra]), np.concatenate([y, y_extra]),
                                   sample_weight=np.r_[np.ones(1000), np.zeros(300)])
    np.testing.assert_array_equal(base.factors_, padded.factors_)
    np.testing.assert_array_equal(base.coef_, padded.coef_)


def test_callers_arrays_are_unchanged():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(50, 4))
    # COO with duplicates, int64 indices, unsorted: everything our CSR conversion would touch.
    coo = sp.coo_matrix((rng.normal(size=60), (rng.integers(0, 50, 60), rng.integers(0, 4, 60))),
                        shape=(50, 4))
    csr = sp.csr_matrix(coo)
    csr.indices = csr.indices.astype(np.int64)
    csr.indptr = csr.indptr.astype(np.int64)
    y = rng.normal(size=50)
    w = rng.random(50)
    for X in (dense, coo, csr):
        before = [a.copy() for a in ((X,) if isinstance(X, np.ndarray) else
                                     (X.toarray(), getattr(X, "data")))]
        copies = (y.copy(), w.copy())
        FMRegressor(max_iter=3, random_state=0).fit(X, y, sample_weight=w).predict(X)
        after = (X,) if isinstance(X, np.ndarray) else (X.toarray(), X.data)
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(copies[0], y)
        np.testing.assert_array_equal(copies[1], w)
    assert csr.indices.dtype == np.int64 and coo.nnz == 60


@pytest.mark.parametrize("Estimator", [FMRegressor, FMClassifier])
def test_pickle_round_trip_gives_identical_predictions(Estimator):
    X, y = planted_fm_data(1000, seed=10)
    y = y if Estimator is FMRegressor else y > np.median(y)
    est = Estimator(max_iter=5, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est.predict(X), again.predict(X))
    before = again.predict(X)
    again.set_params(warm_start=True).fit(X, y)  # the learner state pickles too
    assert again.n_iter_ == 5 and not np.array_equal(again.predict(X), before)  # it trained on
    if Estimator is FMRegressor:
        assert rmse(again.predict(X), y) < rmse(before, y)


def test_pipeline_on_a_dataframe_and_grid_search():
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"user": rng.integers(0, 30, n).astype(str),
                          "item": rng.integers(0, 40, n).astype(str),
                          "price": rng.random(n)})
    user_taste = rng.normal(size=(30, 2))
    item_style = rng.normal(size=(40, 2))
    y = (user_taste[frame.user.astype(int)] * item_style[frame.item.astype(int)]).sum(axis=1) \
        + frame.price.to_numpy()
    pipe = make_pipeline(
        ColumnTransformer([("ids", OneHotEncoder(handle_unknown="ignore"), ["user", "item"])],
                          remainder="passthrough"),
        FMRegressor(max_iter=40, random_state=0))
    search = GridSearchCV(pipe, {"fmregressor__n_factors": [0, 4]}, cv=3).fit(frame, y)
    assert search.best_params_ == {"fmregressor__n_factors": 4}
    assert search.best_score_ > 0.8
    unseen = pd.DataFrame({"user": ["new"], "item": ["3"], "price": [0.5]})
    assert np.isfinite(search.predict(unseen)).all()


def test_verbose_shows_a_progress_bar(capsys):
    X, y = planted_fm_data(500, seed=11)
    FMRegressor(max_iter=3, tol=None, verbose=1, random_state=0).fit(X, y, eval_set=(X, y))
    err = capsys.readouterr().err
    assert "FMRegressor" in err and "3/3" in err and "val_rmse" in err


def test_regressor_clips_predictions_to_the_training_range_unless_asked_not_to():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = np.clip(3 * X[:, 0], -1, 1)
    clipped = FMRegressor(max_iter=20, random_state=0).fit(X, y)
    assert clipped.target_range_ == (-1.0, 1.0)
    far = np.array([[10.0, 0, 0], [-10.0, 0, 0]])
    np.testing.assert_array_equal(clipped.predict(far), [1.0, -1.0])
    free = FMRegressor(max_iter=20, random_state=0, clip_predictions=False).fit(X, y)
    assert np.abs(free.predict(far)).min() > 1.0


@pytest.mark.parametrize("solver", ["sgd", "sgda", "als", "mcmc"])
def test_bias_and_linear_switches_keep_those_terms_at_zero(solver):
    rng = np.random.default_rng(8)
    users, items = rng.integers(0, 30, 3000), 30 + rng.integers(0, 30, 3000)
    X = sp.csr_matrix((np.ones(6000), (np.repeat(np.arange(3000), 2),
                                       np.column_stack([users, items]).ravel())), shape=(3000, 60))
    V = rng.normal(0, 0.7, (60, 2))
    y = np.einsum("nf,nf->n", V[users], V[items])  # interactions only, as libFM's -dim '0,0,k'
    params = dict(solver=solver, n_factors=2, max_iter=40, init_std=0.1, random_state=0,
                  reg_linear=0.0, reg_factors=0.0, tol=None)
    params.update({"sgda": dict(reg_factors=1e-4, eta0=0.02, learning_rate="constant"),
                   "sgd": dict(eta0=0.2)}.get(solver, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = FMRegressor(fit_intercept=False, fit_linear=False, **params).fit(X, y)
        only_linear_off = FMRegressor(fit_linear=False, **params).fit(X, y + 3.0)
    assert reg.intercept_ == 0 and np.all(reg.coef_ == 0)
    assert rmse(reg.predict(X), y) < 0.3 * y.std()
    assert np.all(only_linear_off.coef_ == 0)
    assert only_linear_off.intercept_ == pytest.approx(3, abs=0.3)


@pytest.mark.parametrize("make, target, metric", [
    (lambda: FMRegressor(), "real", "val_rmse"),
    (lambda: FMClassifier(), "binary", "val_log_loss"),
    (lambda: FMRegressor(scoring="neg_mean_absolute_error"), "real", "val_mean_absolute_error"),
    (lambda: FMClassifier(scoring="roc_auc"), "binary", "val_roc_auc"),
])
def test_verbose_lines_print_losses_as_losses(make, target, metric, capsys):
    X, y = planted_fm_data(600, seed=6)
    y = y > np.median(y) if target == "binary" else y
    model = make().set_params(max_iter=2, tol=None, verbose=2, random_state=0)
    model.fit(X[:400], y[:400], eval_set=(X[400:], y[400:]))
    lines = capsys.readouterr().err.splitlines()
    epochs = [line for line in lines if " epoch " in line]
    assert len(epochs) == 2
    for line, score in zip(epochs, model.validation_scores_):
        shown = float(re.search(metric + r" (-?[\d.]+)", line).group(1))
        sign = 1 if metric == "val_roc_auc" else -1
        assert shown == pytest.approx(sign * score, abs=1e-5) and shown > 0
