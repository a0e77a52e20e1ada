"""``solver="adam"``: SageMaker's FM learner, checked against MXNet 1.9.1's sparse FM
(fixtures written by tools/mxnet/fm_reference.py), and its parameters and model files."""
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from fmlearn import FMClassifier, FMRegressor
from fmlearn._validation import as_fm_csr
from fmlearn.model import FMModel
from fmlearn.persistence import ModelFileError, load, save
from fmlearn.kernels import adam as adam_kernels
from fmlearn.solvers.adam import AdamSolver

FIXTURES = Path(__file__).parent / "fixtures" / "mxnet"
TASKS = ("regressor", "binary_classifier")


def reference(task):
    """The fixture's training and test rows (as MXNet's script builds them) and targets,
    the initial model, the solver and the fixture."""
    f = np.load(FIXTURES / f"adam_{task}.npz", allow_pickle=False)
    hp = {str(name): float(value) for name, value in f["hyperparameters"]}
    n_users, n_items, n = int(f["n_users"]), int(f["n_items"]), f["users"].shape[0]
    n_features = n_users + n_items + 1
    indices = np.stack([f["users"] - 1, n_users + f["items"] - 1,
                        np.full(n, n_features - 1)], axis=1).astype(np.int32).ravel()
    data = np.stack([np.ones(n), np.ones(n), (f["codes"] / 100).astype(np.float32)],
                    axis=1).astype(np.float32).ravel()
    X = sp.csr_matrix((data, indices, np.arange(0, 3 * n + 1, 3)), shape=(n, n_features))
    stars = f["stars"].astype(np.float32)
    y = stars if task == "regressor" else np.where(stars >= 4, 1, -1).astype(np.float32)
    model = FMModel(float(f["w0"][0]), f["w"].copy(), f["v"].copy())
    solver = AdamSolver("squared" if task == "regressor" else "logistic", hp["bias_lr"],
                        hp["linear_lr"], hp["factors_lr"], hp["bias_wd"], hp["linear_wd"],
                        hp["factors_wd"], hp["clip_gradient"] if hp["clip_gradient"] > 0
                        else None, batch_size=int(hp["batch_size"]), beta1=hp["beta1"],
                        beta2=hp["beta2"], eps=hp["eps"])
    n_train = int(f["n_train"])
    return (as_fm_csr(X[:n_train], np.float32), y[:n_train], as_fm_csr(X[n_train:], np.float32),
            y[n_train:], model, solver, f)


def mxnet_output(task, model, X):
    """What MXNet's model predicts: the score, or its logistic for a classifier."""
    scores = model.predict_csr(X, None).astype(np.float64)
    return scores if task == "regressor" else 1 / (1 + np.exp(-scores))


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_predictions_equal_mxnet_after_one_and_ten_epochs(task, n_threads, monkeypatch):
    """Same rows, hyperparameters and initial parameters: MXNet's predictions to float32
    round-off after 1 epoch, and the test RMSE / AUC within 0.5 % after 10. The regressor
    clips its gradients, the classifier does not; batches leave most features untouched
    (lazy updates), and the real-valued feature is in every row."""
    X, y, X_test, y_test, model, solver, f = reference(task)
    solver.n_threads = n_threads
    monkeypatch.setattr(adam_kernels, "MIN_WORK_PER_THREAD", 1)  # threads share any batch
    state = solver.initial_state(model, None)
    ones = np.ones(X.shape[0], np.float32)
    for epoch in range(1, 11):
        solver.epoch(model, X, y, ones, state)
        if epoch == 1:
            np.testing.assert_allclose(mxnet_output(task, model, X_test), f["predict_1"],
                                       rtol=2e-6, atol=2e-6)
    assert state.step[0] == 10 * X.shape[0] // solver.batch_size
    predicted = mxnet_output(task, model, X_test)
    metric = (np.sqrt(np.mean((predicted - y_test) ** 2)) if task == "regressor"
              else roc_auc_score(y_test > 0, predicted))
    assert metric == pytest.approx(float(f["metric_10"]), rel=0.005)
    np.testing.assert_allclose(predicted, f["predict_10"], rtol=1e-4, atol=1e-4)


def test_estimator_trains_with_the_solver():
    """The estimator with MXNet's hyperparameters, no shuffling and the same initial
    values (constants here) equals the solver driven by hand."""
    X, y, _, _, _, solver, _ = reference("regressor")
    n_train = X.shape[0]
    est = FMRegressor(solver="adam", n_factors=4, max_iter=2, tol=None, shuffle=False,
                      lr_intercept=solver.lr_intercept, lr_linear=solver.lr_linear,
                      lr_factors=solver.lr_factors, reg_intercept=solver.reg_intercept,
                      reg_linear=solver.reg_linear, reg_factors=solver.reg_factors,
                      clip_gradient=solver.clip_gradient, batch_size=solver.batch_size,
                      init_intercept=("constant", 0.5), init_linear=("constant", 0.01),
                      init_factors=("constant", 0.02), clip_predictions=False).fit(X, y)
    model = FMModel(0.5, np.full(X.shape[1], 0.01, np.float32),
                    np.full((X.shape[1], 4), 0.02, np.float32))
    state = solver.initial_state(model, None)
    losses = [solver.epoch(model, X, y, np.ones(n_train, np.float32), state) / n_train
              for _ in range(2)]
    np.testing.assert_array_equal(est.coef_, model.coef)
    np.testing.assert_array_equal(est.factors_, model.factors)
    assert est.intercept_ == model.intercept and est.loss_curve_ == pytest.approx(losses)


def test_init_methods():
    X = np.random.default_rng(0).random((50, 6))
    y = X.sum(axis=1)
    est = FMRegressor(solver="adam", max_iter=1, random_state=0, lr_intercept=0,
                      lr_linear=0, lr_factors=0, init_intercept=("constant", -2.0),
                      init_linear=("uniform", 0.5), init_factors=("normal", 3.0)).fit(X, y)
    assert est.intercept_ == -2.0
    assert (np.abs(est.coef_) <= 0.5).all() and np.abs(est.coef_).max() > 0.1
    assert 1.5 < est.factors_.std() < 4.5
    off = FMRegressor(solver="adam", max_iter=1, fit_linear=False, fit_intercept=False,
                      init_intercept=("constant", 1.0), init_linear=("constant", 1.0)).fit(X, y)
    assert off.intercept_ == 0 and not off.coef_.any()


@pytest.mark.parametrize("spec, message", [
    (("cauchy", 1.0), "init_linear=('cauchy', 1.0): expected (method, number) with method "
                      "one of normal, uniform, constant"),
    (("normal", -1.0), "init_linear=('normal', -1.0): expected"),
    (("constant",), "init_linear=('constant',): expected"),
])
def test_bad_init_is_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FMRegressor(solver="adam", init_linear=spec).fit(np.eye(3), [1.0, 2.0, 3.0])


def test_what_adam_does_not_learn_is_refused():
    with pytest.raises(ValueError, match="order=3 is learned by solver='sgd' only"):
        FMRegressor(solver="adam", order=3).fit(np.eye(3), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="learned by FMClassifier with solver='sgd' and order=2"):
        FMClassifier(solver="adam").fit(np.eye(3), [0, 1, 2])


def test_zero_weight_batches_are_skipped_and_rows_ignored():
    """A row of weight 0 touches nothing; a batch of such rows steps nothing."""
    X = np.random.default_rng(0).random((40, 5))
    y = X.sum(axis=1)
    w = np.r_[np.ones(20), np.zeros(20)]
    params = dict(solver="adam", batch_size=10, max_iter=2, tol=None, shuffle=False,
                  lr_linear=0.01, lr_factors=0.01, random_state=0, clip_predictions=False)
    weighted = FMRegressor(**params).fit(X, y, sample_weight=w)
    alone = FMRegressor(**params).fit(X[:20], y[:20])
    np.testing.assert_allclose(weighted.predict(X), alone.predict(X), rtol=1e-6)
    assert weighted._solver_state.step[0] == alone._solver_state.step[0] == 4


def test_model_file_keeps_the_moments_and_warm_start_continues(tmp_path):
    X = np.random.default_rng(0).random((200, 8))
    y = X @ np.arange(8.0)
    est = FMRegressor(solver="adam", batch_size=50, max_iter=3, tol=None, random_state=0,
                      init_linear=("normal", 0.01), warm_start=True).fit(X, y)
    save(est, tmp_path / "m.fm")
    loaded = load(tmp_path / "m.fm")
    assert loaded.get_params()["init_linear"] == ["normal", 0.01]
    np.testing.assert_array_equal(loaded._solver_state.var_factors,
                                  est._solver_state.var_factors)
    np.testing.assert_array_equal(est.fit(X, y).predict(X), loaded.fit(X, y).predict(X))
    assert loaded._solver_state.step[0] == 24


def test_negative_second_moments_are_refused(tmp_path):
    X = np.random.default_rng(0).random((60, 4))
    est = FMRegressor(solver="adam", batch_size=20, max_iter=1).fit(X, X.sum(axis=1))
    est._solver_state.var_coef[2] = -1.0
    with pytest.raises(ModelFileError, match="var_coef' holds -1.0 at index 2; it must be "
                                             "finite and >= 0"):
        save(est, tmp_path / "m.fm")  # save checks what load will


def test_divergence_names_adams_rates():
    X = np.random.default_rng(0).random((40, 4)) * 1e19
    with pytest.raises(ValueError, match=r"Floating-point overflow at epoch 1: .* Lower "
                                         r"lr_intercept, lr_linear or lr_factors \(now 0.1, "
                                         r"0.001, 0.0001\)"):
        FMRegressor(solver="adam", batch_size=8).fit(X, X.sum(axis=1))


def test_partial_fit_carries_the_moments_and_seeds_reproduce():
    X = np.random.default_rng(1).random((100, 5))
    y = X.sum(axis=1)
    est = FMRegressor(solver="adam", batch_size=30, random_state=0)
    est.partial_fit(X, y).partial_fit(X, y)
    assert est._solver_state.step[0] == 8 and est.n_iter_ == 1  # 4 batches per call
    again = FMRegressor(solver="adam", batch_size=30, random_state=0)
    np.testing.assert_array_equal(again.partial_fit(X, y).partial_fit(X, y).predict(X),
                                  est.predict(X))
