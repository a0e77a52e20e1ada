"""The estimators' defaults for each solver: what a user who only switches ``solver`` gets.

Every parameter at its default except ``solver``, ``n_factors=10`` and ``random_state``; SGD
with ``early_stopping=True`` (frappe: frappe.validation.libfm as ``eval_set``; elsewhere the
10 % ``validation_fraction`` split). ALS and MCMC need no validation rows.

- MovieLens 100K u1: user and item one-hot (943 + 1682 columns), ratings 1-5, ``FMRegressor``
  trained on u1.base, test RMSE on u1.test (target: 0.93 or less).
- frappe: ``FMClassifier`` (-1/+1 labels, probit link for ALS and MCMC) trained on
  frappe.train.reconstructed.libfm, test AUC on frappe.test.libfm, 5382 features (target:
  0.97 or more).
- a9a (not used to choose the values, a check that they carry over): ``FMClassifier`` on
  a9a, test AUC on a9a.t, 123 features.

``auto`` is this version's defaults (``reg_linear``, ``reg_factors`` and ``init_std`` resolved
per solver in ``fit``); ``before`` the previous ones for every solver
(``reg_linear=reg_factors=1e-5``, ``init_std=0.01``); both over seeds 0 .. SEEDS - 1.
Seconds are ``fit`` wall-clock on one thread after a warm-up fit (numba compilation excluded).

    python bench/defaults.py [--quick]
"""
import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp
from common import load_frappe, require, spread, summary_row, write_results
from sklearn.datasets import load_svmlight_files
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

from fmlearn import FMClassifier, FMRegressor

N_FACTORS = 10
SOLVERS = ("sgd", "als", "mcmc")
SEEDS = 3
BEFORE = dict(reg_linear=1e-5, reg_factors=1e-5, init_std=0.01)  # the defaults until now
TARGETS = {"movielens_u1_rmse": 0.93, "frappe_auc": 0.97}  # at most, at least
N_USERS, N_ITEMS = 943, 1682
#: dataset -> (summary name, task, metric)
DATASETS = {"movielens": ("MovieLens 100K u1", "regression", "test RMSE"),
            "frappe": ("frappe", "classification", "test AUC"),
            "a9a": ("a9a", "classification", "test AUC")}


def movielens(name):
    """A u*.base / u*.test file as (user and item one-hot CSR, ratings)."""
    (path,) = require(f"ml-100k/{name}")
    table = np.loadtxt(path, dtype=np.int64)
    n = table.shape[0]
    cols = np.column_stack([table[:, 0] - 1, N_USERS + table[:, 1] - 1]).ravel()
    X = sp.csr_matrix((np.ones(2 * n), (np.repeat(np.arange(n), 2), cols)),
                      shape=(n, N_USERS + N_ITEMS))
    return X, table[:, 2].astype(np.float64)


def load_a9a():
    """a9a's train and test files as two (X CSR, y) pairs."""
    paths = require("a9a/a9a", "a9a/a9a.t")
    X, y, X_test, y_test = load_svmlight_files([str(p) for p in paths], n_features=123)
    return [(X, y), (X_test, y_test)]


def fit_and_score(dataset, solver, data, seed, **params):
    """Fit at the defaults (but ``params``); return the test metric, the seconds and the
    iterations run. ``data``: train, [validation,] test."""
    regression = DATASETS[dataset][1] == "regression"
    Estimator = FMRegressor if regression else FMClassifier
    est = Estimator(solver=solver, n_factors=N_FACTORS, random_state=seed,
                    early_stopping=solver == "sgd", **params)
    (X, y), *rest = data
    eval_set = rest[0] if len(rest) == 2 and solver == "sgd" else None
    start = time.perf_counter()
    est.fit(X, y, eval_set=eval_set)
    seconds = time.perf_counter() - start
    X_test, y_test = rest[-1]
    if regression:
        value = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))
    else:
        value = float(roc_auc_score(y_test, est.predict_proba(X_test)[:, 1]))
    return value, seconds, est.n_iter_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seed 0 only, no 'before' fits")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)  # the warm-up fits, ALS's 100 sweeps
    seeds = range(1 if args.quick else SEEDS)
    data = {"movielens": [movielens("u1.base"), movielens("u1.test")],
            "frappe": load_frappe(), "a9a": load_a9a()}
    small = data["movielens"][0][0][:2000], data["movielens"][0][1][:2000]
    for solver in SOLVERS:  # compile outside the timings
        FMRegressor(solver=solver, max_iter=2).fit(*small)
        FMClassifier(solver=solver, max_iter=2).fit(small[0], small[1] > 3)
    results, rows = {}, []
    for dataset, (name, task, metric) in DATASETS.items():
        for solver in SOLVERS:
            settings = {"auto": {}} if args.quick else {"auto": {}, "before": BEFORE}
            for setting, params in settings.items():
                runs = [fit_and_score(dataset, solver, data[dataset], seed, **params)
                        for seed in seeds]
                values = [r[0] for r in runs]
                results[f"{dataset}/{solver}/{setting}"] = {
                    "params": params, "seeds": list(seeds), "values": values,
                    "value": spread(values), "seconds": spread([r[1] for r in runs]),
                    "n_iter": [r[2] for r in runs]}
                print(f"{dataset:9s} {solver:4s} {setting:6s} {metric} "
                      + " ".join(f"{v:.4f}" for v in values)
                      + f"  ({np.median([r[1] for r in runs]):.2f} s)", flush=True)
            auto = results[f"{dataset}/{solver}/auto"]
            rows.append(summary_row(name, task, f"{solver.upper()} k={N_FACTORS}, defaults",
                                    metric, auto["value"]["median"], auto["seconds"]["median"],
                                    "fit"))
    write_results("defaults_quick" if args.quick else "defaults",
                  {"quick": args.quick, "n_factors": N_FACTORS, "targets": TARGETS,
                   "results": results}, rows)


if __name__ == "__main__":
    main()
