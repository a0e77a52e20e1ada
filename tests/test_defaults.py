"""Defaults that work for every solver: a user who only switches ``solver`` gets a good model.

The figures of bench/defaults.py on the real data in ../shared/data, every parameter at its
default except ``solver``, ``n_factors=10`` and the seed (SGD with ``early_stopping=True``).
SGD's fits take a second or two, so they hold for three seeds; ALS and MCMC for one.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import shared_data
from sklearn.datasets import load_svmlight_files
from sklearn.metrics import roc_auc_score

from fmlearn import FMClassifier, FMRegressor
from fmlearn._base import SOLVER_DEFAULTS

SOLVERS = ["sgd", "als", "mcmc"]
SEEDS = {"sgd": [0, 1, 2], "als": [0], "mcmc": [0]}
N_USERS, N_ITEMS = 943, 1682


def movielens(name):
    """A u1.base / u1.test file as (user and item one-hot CSR, ratings)."""
    table = np.loadtxt(shared_data(f"ml-100k/{name}"), dtype=np.int64)
    n = table.shape[0]
    cols = np.column_stack([table[:, 0] - 1, N_USERS + table[:, 1] - 1]).ravel()
    X = sp.csr_matrix((np.ones(2 * n), (np.repeat(np.arange(n), 2), cols)),
                      shape=(n, N_USERS + N_ITEMS))
    return X, table[:, 2].astype(np.float64)


@pytest.fixture(scope="module")
def ml_u1():
    return movielens("u1.base"), movielens("u1.test")


@pytest.fixture(scope="module")
def frappe():
    paths = [shared_data(f"frappe/frappe.{part}.libfm")
             for part in ("train.reconstructed", "validation", "test")]
    data = load_svmlight_files([str(p) for p in paths], n_features=5382, zero_based=True,
                               dtype=np.float32)
    return [(data[i], data[i + 1]) for i in range(0, 6, 2)]


@pytest.mark.parametrize("solver", SOLVERS)
def test_movielens_u1_rmse_at_the_defaults(ml_u1, solver):
    (X, y), (X_test, y_test) = ml_u1
    for seed in SEEDS[solver]:
        reg = FMRegressor(solver=solver, n_factors=10, early_stopping=solver == "sgd",
                          random_state=seed).fit(X, y)
        rmse = np.sqrt(np.mean((reg.predict(X_test) - y_test) ** 2))
        assert rmse <= 0.93, f"{solver}, seed {seed}: test RMSE {rmse:.4f}"


@pytest.mark.slow  # about 21 s on 2 cores: `make test-slow`
@pytest.mark.parametrize("solver", SOLVERS)
def test_frappe_auc_at_the_defaults(frappe, solver):
    (X, y), validation, (X_test, y_test) = frappe
    for seed in SEEDS[solver]:
        clf = FMClassifier(solver=solver, n_factors=10, early_stopping=solver == "sgd",
                           random_state=seed)
        clf.fit(X, y, eval_set=validation if solver == "sgd" else None)
        auc = roc_auc_score(y_test, clf.predict_proba(X_test)[:, 1])
        assert auc >= 0.97, f"{solver}, seed {seed}: test AUC {auc:.4f}"


@pytest.mark.parametrize("Estimator", [FMRegressor, FMClassifier])
@pytest.mark.parametrize("solver", ["sgd", "sgda", "als", "mcmc"])
def test_auto_is_resolved_at_fit_from_the_solver_of_that_fit(planted, Estimator, solver):
    X, y = planted(300)
    y = y if Estimator is FMRegressor else y > np.median(y)
    est = Estimator(max_iter=3, random_state=0).set_params(solver=solver)  # after __init__
    assert {est.get_params()[k] for k in SOLVER_DEFAULTS[solver]} == {"auto"}
    explicit = Estimator(max_iter=3, random_state=0, solver=solver, **SOLVER_DEFAULTS[solver])
    est.fit(X, y)
    explicit.fit(X, y)
    assert {est.get_params()[k] for k in SOLVER_DEFAULTS[solver]} == {"auto"}
    np.testing.assert_array_equal(est.factors_, explicit.factors_)
    np.testing.assert_array_equal(est.coef_, explicit.coef_)
