"""Multiclass FMClassifier: the softmax step against finite differences, probabilities, real
data, refusals and model files."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from fmlearn import FFMClassifier, FMClassifier, load, save
from fmlearn.model import MulticlassFMModel
from fmlearn.solvers.sgd import SGDState
from fmlearn.solvers.softmax import SoftmaxSolver

REG = (0.01, 0.02, 0.03)


@pytest.mark.parametrize("label", [0, 2])
def test_one_softmax_step_is_the_finite_difference_gradient(label):
    rng = np.random.default_rng(0)
    C, n, k = 3, 5, 2
    model = MulticlassFMModel(rng.normal(size=C), rng.normal(size=(C, n)),
                              rng.normal(0, 0.5, size=(C, n, k)))
    x = sp.csr_matrix(np.array([[0.7, 0.0, -1.1, 0.4, 0.0]]))
    touched = x.indices
    shapes = [(C,), (C, n), (C, n, k)]
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(theta):
        parts = np.split(theta, np.cumsum(sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, shapes)]

    def objective(theta):
        b, w, V = unpack(theta)
        scores = np.array([brute_force_fm(x, b[c], w[c], V[c])[0] for c in range(C)])
        penalty = REG[0] * (b**2).sum() + REG[1] * (w[:, touched] ** 2).sum() \
            + REG[2] * (V[:, touched] ** 2).sum()
        return logsumexp(scores) - scores[label] + 0.5 * penalty

    theta = np.concatenate([model.intercept, model.coef.ravel(), model.factors.ravel()])
    SoftmaxSolver("softmax", "constant", 1.0, 0.25, *REG, None).epoch(
        model, x, np.array([float(label)]), np.ones(1), SGDState.initial(model))
    step = theta - np.concatenate([model.intercept, model.coef.ravel(), model.factors.ravel()])
    eps = 1e-6
    numeric = np.array([(objective(theta + eps * e) - objective(theta - eps * e)) / (2 * eps)
                        for e in np.eye(theta.size)])
    np.testing.assert_allclose(step, numeric, rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, random_state=0)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_digits_are_classified_with_probabilities_that_sum_to_one(digits, n_jobs):
    X_train, X_test, y_train, y_test = digits
    labels = np.array(list("abcdefghij"))
    clf = FMClassifier(n_factors=4, max_iter=30, random_state=0, n_jobs=n_jobs)
    clf.fit(X_train, labels[y_train])
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert np.array_equal(clf.predict(X_test), labels[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X_test)), proba, rtol=1e-5)
    assert clf.decision_function(X_test).shape == (len(X_test), 10)
    assert clf.score(X_test, labels[y_test]) > 0.95
    assert clf.coef_.shape == (10, 64) and clf.factors_.shape == (10, 64, 4)


def test_partial_fit_with_all_the_classes_named_first(digits):
    X_train, X_test, y_train, y_test = digits
    clf = FMClassifier(n_factors=2, random_state=0)
    clf.partial_fit(X_train[y_train < 5], y_train[y_train < 5], classes=np.arange(10))
    for _ in range(10):
        clf.partial_fit(X_train, y_train)
    assert clf.classes_.tolist() == list(range(10)) and clf.score(X_test, y_test) > 0.9


@pytest.mark.parametrize("make, message", [
    (lambda: FMClassifier(solver="mcmc"), "Only binary .* FMClassifier with these parameters is binary"),
    (lambda: FMClassifier(order=3), "learned by FMClassifier with solver='sgd' and order=2"),
    (lambda: FFMClassifier(), "Only binary .* FFMClassifier with these parameters is binary"),
])
def test_learners_that_are_binary_say_so(make, message):
    with pytest.raises(ValueError, match=message):
        make().fit(np.eye(3), [0, 1, 2])


def test_model_file_round_trip(digits, tmp_path):
    X_train, X_test, y_train, _ = digits
    clf = FMClassifier(n_factors=2, max_iter=3, tol=None, random_state=0).fit(X_train, y_train)
    loaded = load(save(clf, tmp_path / "digits.fm"))
    assert isinstance(loaded.model_, MulticlassFMModel)
    assert np.array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
