"""Higher-order FM: the ANOVA scores against the sum over all tuples, order 2 against the FM, the
SGD step against finite differences, learning planted third-order interactions."""
import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fmlearn import FMClassifier, FMModel, FMRegressor, load, save
from fmlearn.model import HOFMModel
from fmlearn.solvers.hofm import HOFMSolver
from fmlearn.solvers.sgd import SGDState


def brute_force_hofm(X, intercept, coef, factors):
    """Every order's interactions summed over all tuples of distinct columns."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    out = intercept + X @ coef
    for o, P in enumerate(factors):
        for tup in itertools.combinations(range(X.shape[1]), o + 2):
            out += np.prod(X[:, tup], axis=1) * np.prod(P[list(tup)], axis=0).sum()
    return out


@pytest.mark.parametrize("order", [3, 4])
def test_scores_equal_the_sum_over_all_tuples(order):
    rng = np.random.default_rng(0)
    model = HOFMModel(0.2, rng.normal(size=7), rng.normal(size=(order - 1, 7, 3)))
    X = sp.random(25, 7, density=0.6, random_state=1, format="csr")
    X.data = X.data * 2 - 1
    expected = brute_force_hofm(X, model.intercept, model.coef, model.factors)
    np.testing.assert_allclose(model.predict(X, n_jobs=2), expected, rtol=1e-10, atol=1e-12)


def test_order_two_is_the_fm():
    rng = np.random.default_rng(1)
    P = rng.normal(size=(9, 4))
    X = sp.random(30, 9, density=0.4, random_state=2, format="csr")
    hofm = HOFMModel(0.5, rng.normal(size=9), P[None])
    np.testing.assert_allclose(hofm.predict(X), FMModel(0.5, hofm.coef, P).predict(X),
                               rtol=1e-12)


REG = (0.01, 0.02, 0.03)


@pytest.mark.parametrize("loss, y", [("squared", 0.4), ("logistic", 1.0)])
def test_one_step_is_the_finite_difference_gradient(loss, y):
    rng = np.random.default_rng(3)
    model = HOFMModel(0.1, rng.normal(size=6), rng.normal(0, 0.7, size=(2, 6, 2)))
    x = sp.csr_matrix(np.array([[0.5, 0.0, -1.2, 0.8, 2.0, 0.0]]))
    touched = x.indices
    start = model.copy()

    def objective(theta):
        intercept, coef, factors = theta[0], theta[1:7], theta[7:].reshape(2, 6, 2)
        score = brute_force_hofm(x, intercept, coef, factors)[0]
        data = 0.5 * (score - y) ** 2 if loss == "squared" else np.logaddexp(0, -y * score)
        penalty = REG[0] * intercept**2 + REG[1] * (coef[touched] ** 2).sum() \
            + REG[2] * (factors[:, touched] ** 2).sum()
        return data + 0.5 * penalty

    HOFMSolver(loss, "constant", 1.0, 0.25, *REG, None).epoch(
        model, x, np.array([y]), np.ones(1), SGDState.initial(model))
    theta = np.concatenate([[start.intercept], start.coef, start.factors.ravel()])
    step = theta - np.concatenate([[model.intercept], model.coef, model.factors.ravel()])
    eps = 1e-6
    numeric = np.array([(objective(theta + eps * e) - objective(theta - eps * e)) / (2 * eps)
                        for e in np.eye(theta.size)])
    np.testing.assert_allclose(step, numeric, rtol=1e-6, atol=1e-8)


def planted_third_order(n_rows, seed=0):
    """Three one-hot fields whose targets come from one third-order interaction per triple."""
    rng = np.random.default_rng(seed)
    sizes = [12, 10, 8]
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    cols = np.column_stack([o + rng.integers(0, s, n_rows) for o, s in zip(offsets, sizes)])
    X = sp.csr_matrix((np.ones(cols.size), (np.repeat(np.arange(n_rows), 3), cols.ravel())),
                      shape=(n_rows, sum(sizes)))
    P = rng.normal(0, 1.0, (sum(sizes), 2))
    y = np.einsum("nf,nf,nf->n", P[cols[:, 0]], P[cols[:, 1]], P[cols[:, 2]])
    return X, y


def test_order_three_learns_what_pairs_cannot():
    X, y = planted_third_order(20000)
    train, test = slice(0, 16000), slice(16000, None)
    common = dict(n_factors=8, max_iter=40, tol=None, random_state=0, init_std=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        hofm = FMRegressor(order=3, n_jobs=2, **common).fit(X[train], y[train])
        fm = FMRegressor(**common).fit(X[train], y[train])

    def rmse(model):
        return np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))

    assert hofm.factors_.shape == (2, 30, 8)
    assert rmse(hofm) < 0.3 * y.std()
    assert rmse(hofm) < 0.5 * rmse(fm)


def test_higher_orders_need_the_sgd_solver():
    with pytest.raises(ValueError, match="order=3 is learned by solver='sgd' only"):
        FMRegressor(order=3, solver="als").fit(np.eye(3), [1.0, 2.0, 3.0])


def test_model_file_round_trip(tmp_path):
    X, y = planted_third_order(500, seed=1)
    clf = FMClassifier(order=3, n_factors=2, max_iter=3, tol=None, random_state=0)
    clf.fit(X, y > 0)
    loaded = load(save(clf, tmp_path / "hofm.fm"))
    assert isinstance(loaded.model_, HOFMModel) and loaded.order == 3
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def anova_gradient_fd(x, factors):
    """``d/dP sum_f A^t(P[t - 2][:, f], x)`` of every order in float64 by central differences
    (exact up to rounding: the kernel is linear in each parameter)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(factors.shape)
    for index in np.ndindex(*factors.shape):
        up, down = factors.astype(np.float64), factors.astype(np.float64)
        up[index] += 0.5
        down[index] -= 0.5
        out[index] = (brute_force_hofm(x[None], 0.0, np.zeros(x.size), up)
                      - brute_force_hofm(x[None], 0.0, np.zeros(x.size), down))[0]
    return out


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("order", [3, 4, 5])
def test_gradient_is_stable_where_one_feature_dominates(order, dtype, rtol):
    # p_j x_j = 20 on feature 0: the alternating series x_j sum_u (-p_j x_j)^u A^{t-1-u} cancels
    # terms of size 20^(t-1) down to the true A^{t-1} of the other features (order 5: -0.031
    # instead of -0.0036 in float32).
    rng = np.random.default_rng(order)
    x = np.array([2.0, 0.7, -1.1, 0.9, 1.3, -0.6])
    factors = rng.normal(0, 0.5, size=(order - 1, x.size, 2))
    factors[:, 0] = 10.0
    model = HOFMModel(0.0, np.zeros(x.size, dtype), factors.astype(dtype))
    start = model.factors.astype(np.float64)
    y = brute_force_hofm(x[None], 0.0, np.zeros(x.size), start)[0] - 10.0
    HOFMSolver("squared", "constant", 1.0, 0.25, 0.0, 0.0, 0.0, None).epoch(
        model, sp.csr_matrix(x[None].astype(dtype)), np.array([y], dtype), np.ones(1, dtype),
        SGDState.initial(model))
    g = -model.coef[1] / x[1]  # the loss derivative (about 10), from the linear weight's step
    step = (start - model.factors) / g
    expected = anova_gradient_fd(x, start)
    scale = anova_gradient_fd(np.abs(x), np.abs(start))  # the terms' magnitude: no cancellation
    assert np.all(np.abs(step - expected) <= rtol * scale), (step, expected)
