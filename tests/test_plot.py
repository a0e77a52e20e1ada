"""Learning curves: the plotted values are the recorded history, and `train --plot` writes one."""
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure
from sklearn.exceptions import NotFittedError

from fmlearn import FMClassifier, FMRegressor
from fmlearn.cli import cli
from fmlearn.io import dump_libsvm
from fmlearn.plot import learning_curve


def data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((300, 5))
    return X, X[:, 0] * X[:, 1] + 0.1 * X[:, 2]


def test_the_curves_are_the_loss_and_the_validation_metric():
    X, y = data()
    reg = FMRegressor(n_factors=2, max_iter=8, tol=None, random_state=0)
    reg.fit(X[:200], y[:200], eval_set=(X[200:], y[200:]))
    ax = learning_curve(reg, ax=Figure().subplots())
    (loss,), (rmse,) = ax.get_lines(), ax.figure.axes[1].get_lines()
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(1, 9))
    np.testing.assert_array_equal(loss.get_ydata(), reg.loss_curve_)
    np.testing.assert_array_equal(rmse.get_ydata(), -np.array(reg.validation_scores_))
    assert ax.figure.axes[1].get_ylabel() == "validation RMSE"


def test_classifier_shows_log_loss_or_its_scorer_and_no_eval_set_one_curve():
    X, y = data(1)
    labels = y > np.median(y)
    clf = FMClassifier(max_iter=5, tol=None, random_state=0)
    clf.fit(X[:200], labels[:200], eval_set=(X[200:], labels[200:]))
    ax = learning_curve(clf, ax=Figure().subplots())
    assert ax.figure.axes[1].get_ylabel() == "validation log-loss"
    clf.set_params(scoring="roc_auc").fit(X[:200], labels[:200], eval_set=(X[200:], labels[200:]))
    ax = learning_curve(clf, ax=Figure().subplots())
    np.testing.assert_array_equal(ax.figure.axes[1].get_lines()[0].get_ydata(),
                                  clf.validation_scores_)
    als = FMRegressor(solver="als", max_iter=3, tol=None, random_state=0).fit(X, y)
    ax = learning_curve(als, ax=Figure().subplots())
    assert len(ax.figure.axes) == 1 and ax.get_xlabel() == "iteration"


def test_unfitted_estimator_is_refused():
    with pytest.raises(NotFittedError):
        learning_curve(FMRegressor(), ax=Figure().subplots())


def test_train_plot_writes_a_png(tmp_path):
    X, y = data(2)
    dump_libsvm(X[:200], y[:200], tmp_path / "train.libfm")
    dump_libsvm(X[200:], y[200:], tmp_path / "test.libfm")
    result = CliRunner().invoke(cli, [
        "train", "-task", "r", "-train", str(tmp_path / "train.libfm"), "-test",
        str(tmp_path / "test.libfm"), "-method", "als", "-iter", "4", "-dim", "1,1,2", "-q",
        "--plot", str(tmp_path / "curve.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
