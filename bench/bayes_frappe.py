"""frappe with the MCMC and ALS solvers: accuracy and seconds per iteration, side by side with myFM.

Train on frappe.train.reconstructed.libfm, report on frappe.test.libfm, n_factors=64:

- MCMC regression on the -1/+1 labels, 100 samples (all kept): test RMSE on predictions clipped
  to [-1, 1]; fmlearn ``FMRegressor(solver="mcmc")`` and myFM ``MyFMRegressor``.
- MCMC classification (probit), 100 samples: test AUC and logloss; fmlearn
  ``FMClassifier(solver="mcmc")`` and myFM ``MyFMClassifier``.
- ALS regression, 40 sweeps: the regularisation chosen among a few candidates on
  frappe.validation.libfm, the chosen fit reported on test (myFM has no ALS learner).

Timing: after a warm-up fit of each learner (numba compilation excluded), the libraries are fitted
alternately (fmlearn, myFM, fmlearn, myFM, ...); the first repetition is the full-length fit whose
accuracy is reported, the later ones are shorter fits, timed only. Seconds per iteration are
``fit`` wall-clock divided by the iterations; fmlearn runs with ``n_jobs=THREADS`` (2, the
cores of the CI-class machine: its passes over large column blocks are split over threads, its
draws stay on one), myFM's sampler is single-threaded by design. The "quoted" figures are the peers' published runs on these files (libFM is
not on PyPI, so it does not run here).

    python bench/bayes_frappe.py [--quick]
"""
import argparse
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a progress bar in every fit

import myfm  # noqa: E402
import numpy as np  # noqa: E402
from common import (choose_burn_in, dropping_first, load_frappe, peer, speedups,  # noqa: E402
                    spread, summary_row, write_results)
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402

from fmlearn import FMClassifier, FMRegressor  # noqa: E402

RANK = 64
SEED = 0
LIBRARIES = ("fmlearn", "myFM")
QUOTED = {
    "mcmc_regression": {"myFM": {"rmse": 0.3925, "seconds": 130},
                        "libFM": {"rmse": 0.3958, "seconds": 145}},
    "mcmc_classification": {"myFM": {"auc": 0.9771, "logloss": 0.1749, "seconds": 121}},
    "als_regression": {"libFM": {"rmse": 0.3808, "seconds": 65, "iterations": 40,
                                 "seconds_per_iteration": 1.6}},
}
THREADS = 2
ALS_GRID = [dict(reg_linear=10.0, reg_factors=fac) for fac in (1.0, 2.0, 5.0)]


# --- learners ------------------------------------------------------------------------------------
def fmlearn_mcmc(task, n_iter):
    Estimator = FMRegressor if task == "regression" else FMClassifier
    # burn_in=0: every sample is kept, as myFM's n_kept_samples=n_iter (and libFM) here
    return Estimator(solver="mcmc", n_factors=RANK, max_iter=n_iter, init_std=0.1,
                     burn_in=0, random_state=SEED, n_jobs=THREADS)


def fit_mcmc(library, task, X, y, n_iter):
    """Fit one MCMC learner; return it and the seconds ``fit`` took."""
    start = time.perf_counter()
    if library == "fmlearn":
        est = fmlearn_mcmc(task, n_iter).fit(X, y)
    else:
        Estimator = myfm.MyFMRegressor if task == "regression" else myfm.MyFMClassifier
        est = Estimator(rank=RANK, init_stdev=0.1, random_seed=SEED)
        est.fit(X, y, n_iter=n_iter, n_kept_samples=n_iter)
    return est, time.perf_counter() - start


def fit_als(X, y, n_iter, params):
    start = time.perf_counter()
    est = FMRegressor(solver="als", n_factors=RANK, max_iter=n_iter, init_std=0.1, tol=None,
                      random_state=SEED, n_jobs=THREADS, **params).fit(X, y)
    return est, time.perf_counter() - start


# --- metrics -------------------------------------------------------------------------------------
def regression_metrics(est, X, y):
    return {"test_rmse": float(np.sqrt(np.mean((np.clip(est.predict(X), -1, 1) - y) ** 2)))}


def classification_metrics(est, X, y):
    p = est.predict_proba(X)
    p = p[:, 1] if p.ndim == 2 else p  # myFM returns P(y=1) as a vector
    return {"test_auc": float(roc_auc_score(y, p)), "test_logloss": float(log_loss(y, p))}


# --- benchmarks ----------------------------------------------------------------------------------
def warm_up(X, y):
    """Compile fmlearn's kernels (and load myFM's) on a slice before anything is timed."""
    X, y = X[:2000], y[:2000]
    for task, target in (("regression", y), ("classification", (y > 0).astype(int))):
        for library in LIBRARIES:
            fit_mcmc(library, task, X, target, 2)
    fit_als(X, y, 2, ALS_GRID[0])


def mcmc(task, train, valid, test, iterations):
    """Fit both libraries alternately, one repetition per entry of ``iterations``; the first
    repetition's fits are scored on ``test``. Both keep every sample; fmlearn's figures are
    also given with the burn-in chosen on ``valid`` (``choose_burn_in``)."""
    (X, y), (X_valid, y_valid), (X_test, y_test) = train, valid, test
    if task == "classification":
        y, y_valid, y_test = ((v > 0).astype(int) for v in (y, y_valid, y_test))
    metrics = regression_metrics if task == "regression" else classification_metrics
    error = "test_rmse" if task == "regression" else "test_logloss"
    result = {lib: {"iterations": iterations, "fit_seconds": []} for lib in LIBRARIES}
    for rep, n_iter in enumerate(iterations):
        for lib in LIBRARIES:
            est, seconds = fit_mcmc(lib, task, X, y, n_iter)
            result[lib]["fit_seconds"].append(seconds)
            scores = metrics(est, X_test, y_test) if rep == 0 else {}
            if rep == 0 and lib == "fmlearn":
                burn_in, on_valid = choose_burn_in(
                    est, lambda e: metrics(e, X_valid, y_valid)[error])
                scores["burn_in_chosen_on_validation"] = {
                    "burn_in": burn_in, "validation_error": on_valid,
                    **metrics(dropping_first(est, burn_in), X_test, y_test)}
            result[lib].update(scores)
            print(f"{task} {lib} {n_iter} iterations: {seconds:.1f} s", scores)
    per_iter = {lib: [s / n for s, n in zip(result[lib]["fit_seconds"], iterations)]
                for lib in LIBRARIES}
    for lib in LIBRARIES:
        result[lib]["seconds_per_iteration"] = spread(per_iter[lib])
    result["speedup_over_myFM"] = speedups(per_iter["fmlearn"], per_iter["myFM"])
    return result


def als(train, valid, test, n_iter, grid):
    """Fit every candidate on train, keep the best by validation RMSE, report it on test."""
    trials = []
    for params in grid:
        est, seconds = fit_als(*train, n_iter, params)
        trials.append({"params": params, "fit_seconds": seconds,
                       "seconds_per_iteration": seconds / n_iter,
                       "validation_rmse": regression_metrics(est, *valid)["test_rmse"],
                       **regression_metrics(est, *test)})
        print("ALS", params, {k: round(v, 4) for k, v in trials[-1].items() if k != "params"})
    best = min(trials, key=lambda t: t["validation_rmse"])
    return {"n_iter": n_iter, "chosen": best["params"], "test_rmse": best["test_rmse"],
            "fit_seconds": best["fit_seconds"],
            "seconds_per_iteration": spread([t["seconds_per_iteration"] for t in trials]),
            "trials": trials}


def summary(results, n_samples):
    """The rows of the run's summary table: fmlearn's chosen-burn-in figures beside myFM's of
    this run and the peers' quoted ones."""
    rows = []
    for task, metrics in (("regression", [("test RMSE", "test_rmse", "rmse")]),
                          ("classification", [("test AUC", "test_auc", "auc"),
                                              ("test log-loss", "test_logloss", "logloss")])):
        res = results.get(f"mcmc_{task}")
        if res is None:
            continue
        ours, theirs = res["fmlearn"], res["myFM"]
        quoted = QUOTED[f"mcmc_{task}"]
        for metric, key, quoted_key in metrics:
            peers = [peer(f"myFM {myfm.__version__}", theirs[key],
                          theirs["seconds_per_iteration"]["median"],
                          speedup=res["speedup_over_myFM"])]
            if n_samples == 100:  # the quoted runs' length
                peers += [peer(name, q[quoted_key], q["seconds"] / 100, source="quoted")
                          for name, q in quoted.items()]
            rows.append(summary_row("frappe", task, f"MCMC k={RANK}, {n_samples} samples",
                                    metric, ours["burn_in_chosen_on_validation"][key],
                                    ours["seconds_per_iteration"]["median"], "iteration", peers))
    als_res, libfm = results["als_regression"], QUOTED["als_regression"]["libFM"]
    rows.append(summary_row("frappe", "regression", f"ALS k={RANK}, {als_res['n_iter']} sweeps",
                            "test RMSE", als_res["test_rmse"],
                            als_res["seconds_per_iteration"]["median"], "iteration",
                            [peer("libFM", libfm["rmse"], libfm["seconds_per_iteration"],
                                  source="quoted")] if als_res["n_iter"] == libfm["iterations"]
                            else []))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one 5-iteration repetition, one ALS candidate with 5 sweeps")
    parser.add_argument("--als-only", action="store_true",
                        help="only the ALS part, written to bayes_frappe_als.json")
    args = parser.parse_args()
    # Full: the 100-sample fits, then a second, shorter timed repetition (about 15 minutes).
    iterations, als_iter, grid = (([5], 5, ALS_GRID[1:2]) if args.quick
                                  else ([100, 25], 40, ALS_GRID))
    train, valid, test = load_frappe(np.float64)
    warm_up(*train)
    results = {} if args.als_only else {f"mcmc_{task}": mcmc(task, train, valid, test, iterations)
                                        for task in ("regression", "classification")}
    results["als_regression"] = als(train, valid, test, als_iter, grid)
    write_results("bayes_frappe" + ("_quick" if args.quick else "")
                  + ("_als" if args.als_only else ""),
                  {"data": "frappe (train reconstructed, NFM validation/test)", "n_factors": RANK,
                   "quoted": QUOTED, "results": results},
                  summary(results, iterations[0]))


if __name__ == "__main__":
    main()
