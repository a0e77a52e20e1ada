"""Every learner, loss and thread count ends a diverging fit with the same clear error.

A diverging pass may carry NaN or inf into any division, log or exp of a kernel; the pass
must still return (the kernels divide with numpy's error model: no ZeroDivisionError
from inside a parallel loop, which Python saw as a SystemError) and the epoch loop report
it, leaving the estimator as ``BaseFM._run_epochs`` documents: unfitted after a fresh fit
or a ``partial_fit``, unchanged after a warm start.
"""
import re

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

from conftest import shared_data
from fmlearn import FFMClassifier, FFMRegressor, FMClassifier, FMRanker, FMRegressor
from fmlearn.cli import main

SGD_REMEDY = ("Lower eta0 (now {eta0}), scale the features (for example with StandardScaler or "
              "MaxAbsScaler), raise the regularisation, or set clip_gradient.")
COORDINATE_REMEDY = ("Scale the features (for example with StandardScaler or MaxAbsScaler) or "
                     "raise the regularisation.")
RESET = "partial_fit updates the parameters in place, so the estimator was reset to unfitted. "


def message(remedy=SGD_REMEDY, epoch=1, eta0=1e6, before=""):
    """The exact error as a regex (any epoch when ``epoch`` is None)."""
    text = re.escape(f"{before}Floating-point overflow at epoch EPOCH: the parameters are no "
                     "longer finite. ") + re.escape(remedy.format(eta0=eta0))
    return "^" + text.replace("EPOCH", r"\d+" if epoch is None else str(epoch)) + "$"


rng = np.random.default_rng(0)
X = rng.normal(size=(300, 6))
Y_REAL = X @ rng.normal(size=6) + 1.0
Y_BINARY = (Y_REAL > 1.0).astype(int)
Y_CLASSES = np.digitize(Y_REAL, np.quantile(Y_REAL, [1 / 3, 2 / 3]))
BIG = 1e15  # features (or targets) at this scale overflow in the first epoch at eta0=1e6
FIELDS = {"fields": [0, 0, 1, 1, 2, 2]}

# One case per learner kernel and loss: estimator, X, y, extra parameters.
CASES = {
    "sgd-squared": (FMRegressor, X, Y_REAL * BIG, {}),
    "sgd-logistic": (FMClassifier, X * BIG, Y_BINARY, {}),
    "sgd-softmax": (FMClassifier, X * BIG, Y_CLASSES, {}),
    "hofm-squared": (FMRegressor, X, Y_REAL * BIG, {"order": 3}),
    "hofm-logistic": (FMClassifier, X * BIG, Y_BINARY, {"order": 3}),
    "ffm-squared": (FFMRegressor, X, Y_REAL * BIG, FIELDS),
    "ffm-logistic": (FFMClassifier, X * BIG, Y_BINARY, FIELDS),
    "sgda-squared": (FMRegressor, X, Y_REAL * BIG, {"solver": "sgda"}),
    "sgda-logistic": (FMClassifier, X * BIG, Y_BINARY, {"solver": "sgda"}),
    "bpr": (FMRanker, X * BIG, Y_BINARY, {}),
}


def diverging(name, **params):
    cls, X_, y, extra = CASES[name]
    est = cls(eta0=1e6, max_iter=5, n_factors=3, random_state=0, **extra)
    return est.set_params(**params), X_, y


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adagrad"])
@pytest.mark.parametrize("name", list(CASES))
def test_a_diverging_fit_raises_the_overflow_error_and_leaves_the_estimator_unfitted(
        name, learning_rate, n_jobs):
    est, X_, y = diverging(name, learning_rate=learning_rate, n_jobs=n_jobs)
    with pytest.raises(ValueError, match=message(epoch=None)):
        est.fit(X_, y)
    assert not hasattr(est, "model_") and not hasattr(est, "n_iter_")


@pytest.mark.parametrize("cls, y", [(FMRegressor, Y_REAL * 1e30), (FMClassifier, Y_BINARY)])
def test_a_diverging_als_fit_names_the_coordinate_remedy(cls, y):
    est = cls(solver="als", max_iter=3, n_factors=3, random_state=0, reg_intercept=0.0,
              reg_linear=0.0, reg_factors=0.0)
    with pytest.raises(ValueError, match=message(COORDINATE_REMEDY)):
        est.fit(X * 1e30, y)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize("name", ["sgd-logistic", "sgd-softmax", "ffm-logistic", "bpr"])
def test_a_diverging_warm_start_leaves_the_fitted_model_unchanged(name):
    est, X_, y = diverging(name, eta0=0.01, max_iter=2)
    est.fit(X, y)
    before = (est.model_.intercept, est.model_.coef.copy(), est.model_.factors.copy())
    n_iter = est.n_iter_
    est.set_params(warm_start=True, eta0=1e6)
    with pytest.raises(ValueError, match=message()):
        est.fit(X_, y)
    after = (est.model_.intercept, est.model_.coef, est.model_.factors)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert est.n_iter_ == n_iter


@pytest.mark.parametrize("name", ["sgd-logistic", "sgd-softmax", "ffm-logistic"])
def test_a_diverging_partial_fit_resets_the_classifier(name):
    est, X_, y = diverging(name)
    with pytest.raises(ValueError, match=message(RESET + SGD_REMEDY)):
        est.partial_fit(X_, y, classes=np.unique(y))
    assert not hasattr(est, "model_")


def test_a9a_at_a_constant_rate_of_0_1_names_the_remedy():
    X_a9a, y_a9a = load_svmlight_file(str(shared_data("a9a/a9a")), n_features=123)
    est = FMClassifier(learning_rate="constant", eta0=0.1, max_iter=20, random_state=0)
    with pytest.raises(ValueError, match=message(epoch=None, eta0=0.1)):
        est.fit(X_a9a, y_a9a)
    assert not hasattr(est, "model_")


def test_the_command_line_reports_the_divergence_in_one_line(capsys, tmp_path):
    train, test = shared_data("a9a/a9a"), shared_data("a9a/a9a.t")
    with pytest.raises(SystemExit) as exit:
        main(["train", "-task", "c", "-train", str(train), "-test", str(test), "-method", "sgd",
              "-iter", "20", "-out", str(tmp_path / "out.txt")])
    assert exit.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert re.match(message(epoch=None, eta0=0.1, before="fmlearn: error: "), err[-1])
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("Estimator", [FMRegressor, FMClassifier])
def test_mcmc_on_overflowing_features_ends_with_the_overflow_error(Estimator):
    """Features of 1e30 overflow MCMC's sums: the sampler must end with the overflow error,
    not hang in the truncated-normal draw (probit) or fail inside the Gamma draw."""
    rng = np.random.default_rng(0)
    X = rng.random((200, 4)) * 1e30
    y = rng.random(200) > 0.5 if Estimator is FMClassifier else rng.normal(size=200)
    with pytest.raises(ValueError, match="overflow"):
        Estimator(solver="mcmc", n_factors=2, max_iter=5, random_state=0).fit(X, y)
