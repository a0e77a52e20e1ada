"""frappe with the SGD learner: accuracy at k=64 and k=256, seconds per epoch, compile time.

Protocol (issue: foundation): train on frappe.train.reconstructed.libfm, choose the
hyperparameters and the epoch count on frappe.validation.libfm (early stopping keeps the best
epoch), report on frappe.test.libfm. Regression RMSE is on the -1/+1 labels with predictions
clipped to [-1, 1]. The peer figures are the ones measured side by side on these files on a
2-core machine like CI's (libFM and xLearn do not install from PyPI here, see bench/README.md).

    python bench/frappe_sgd.py [--quick]
"""
import argparse
import subprocess
import sys
import time

import numpy as np
from common import epoch_seconds, load_frappe, peer, summary_row, write_results
from sklearn.metrics import log_loss, roc_auc_score

from fmlearn import FMClassifier, FMRegressor

PEERS = {
    "regression_k64": {"libFM SGD": {"rmse": 0.3592, "epochs": 294, "seconds": 378},
                       "xLearn SGD": {"rmse": 0.3571, "epochs": 300, "seconds": 69}},
    "regression_k256": {"libFM (NFM paper)": {"rmse": 0.3385}},
    "classification_k64": {"xLearn FM AdaGrad": {"auc": 0.9822, "logloss": 0.1406, "seconds": 2.0}},
    "seconds_per_epoch_k64": {"libFM SGD": 1.28, "xLearn (2 threads)": 0.23},
}
# Candidates tried on the validation file; the best by validation score is reported on test.
REGRESSION_GRID = [dict(eta0=0.2, reg_linear=1e-3, reg_factors=5e-3),
                   dict(eta0=0.2, reg_linear=1e-3, reg_factors=2e-3),
                   dict(eta0=0.2, reg_linear=1e-3, reg_factors=1e-2)]
CLASSIFICATION_GRID = [dict(eta0=0.2, reg_linear=1e-4, reg_factors=3e-3),
                       dict(eta0=0.1, reg_linear=1e-4, reg_factors=1e-3)]
COMMON = dict(init_std=0.1, max_iter=300, early_stopping=True, n_iter_no_change=10, tol=0.0,
              random_state=0)


def select(Estimator, grid, k, train, valid, test, metrics):
    """Fit every candidate with early stopping on ``valid``; report the best one on ``test``."""
    trials = []
    for params in grid:
        start = time.perf_counter()
        est = Estimator(n_factors=k, **COMMON, **params).fit(*train, eval_set=valid)
        trials.append({"params": params, "epochs": est.n_iter_,
                       "validation_score": est.best_validation_score_,
                       "seconds": time.perf_counter() - start, "estimator": est})
    best = max(trials, key=lambda t: t["validation_score"])
    result = {"chosen": best["params"], "epochs_run": best["epochs"],
              "best_epoch": best["epochs"] - COMMON["n_iter_no_change"],
              "fit_seconds": best["seconds"], **metrics(best["estimator"], *test)}
    result["trials"] = [{k: v for k, v in t.items() if k != "estimator"} for t in trials]
    return result


def regression_metrics(est, X, y):
    return {"test_rmse": float(np.sqrt(np.mean((np.clip(est.predict(X), -1, 1) - y) ** 2)))}


def classification_metrics(est, X, y):
    p = est.predict_proba(X)[:, 1]
    return {"test_auc": float(roc_auc_score(y, p)), "test_logloss": float(log_loss(y, p))}


COMPILE_PROBE = """
import time, numpy as np
t0 = time.perf_counter()
from fmlearn import FMRegressor
t1 = time.perf_counter()
X = np.eye(4, dtype=np.float32); y = np.arange(4.0)
FMRegressor(max_iter=1, random_state=0).fit(X, y).predict(X)
t2 = time.perf_counter()
FMRegressor(max_iter=1, random_state=0).fit(X, y).predict(X)
t3 = time.perf_counter()
print(t1 - t0, (t2 - t1) - (t3 - t2))
"""


def first_fit_overhead():
    """Import time and the extra time of the first fit in a fresh process (numba cache warm)."""
    subprocess.run([sys.executable, "-c", COMPILE_PROBE], check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", COMPILE_PROBE], check=True, capture_output=True,
                         text=True).stdout.split()
    return {"import_seconds": float(out[0]), "first_fit_extra_seconds": float(out[1])}


def summary(results):
    """The rows of the run's summary table (the peers' figures are quoted: see bench/README)."""
    per_epoch = results["seconds_per_epoch_k64_float32"]["adagrad_1_threads"]["median"]
    reg, clf = PEERS["regression_k64"], PEERS["classification_k64"]
    rows = [summary_row("frappe", "regression", "SGD AdaGrad k=64, 1 thread", "test RMSE",
                        results["regression_k64"]["test_rmse"], per_epoch, "epoch",
                        [peer(name, p["rmse"], p["seconds"] / p["epochs"], source="quoted")
                         for name, p in reg.items()])]
    for metric, key, quoted in (("test AUC", "test_auc", "auc"),
                                ("test log-loss", "test_logloss", "logloss")):
        rows.append(summary_row("frappe", "classification", "SGD AdaGrad k=64, 1 thread", metric,
                                results["classification_k64"][key], per_epoch, "epoch",
                                [peer(name, p[quoted], None, source="quoted")
                                 for name, p in clf.items()]))
    if "regression_k256" in results:
        rows.append(summary_row("frappe", "regression", "SGD AdaGrad k=256", "test RMSE",
                                results["regression_k256"]["test_rmse"], None, "epoch",
                                [peer(name, p["rmse"], None, source="quoted")
                                 for name, p in PEERS["regression_k256"].items()]))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="k=64 only, one candidate each")
    args = parser.parse_args()
    (Xtr, ytr), valid, test = load_frappe(np.float32)
    train = (Xtr, ytr)
    reg_grid = REGRESSION_GRID[:1] if args.quick else REGRESSION_GRID
    clf_grid = CLASSIFICATION_GRID[:1] if args.quick else CLASSIFICATION_GRID
    results = {"regression_k64": select(FMRegressor, reg_grid, 64, train, valid, test,
                                        regression_metrics)}
    print("regression k=64", results["regression_k64"]["test_rmse"])
    results["classification_k64"] = select(FMClassifier, clf_grid, 64, train, valid, test,
                                           classification_metrics)
    print("classification k=64", results["classification_k64"]["test_auc"],
          results["classification_k64"]["test_logloss"])
    if not args.quick:
        results["regression_k256"] = select(FMRegressor, REGRESSION_GRID, 256, train, valid, test,
                                            regression_metrics)
        print("regression k=256", results["regression_k256"]["test_rmse"])
    speed = {}
    for schedule in ("adagrad", "constant"):
        for n_threads in (1, 2):
            speed[f"{schedule}_{n_threads}_threads"] = epoch_seconds(Xtr, ytr, 64, n_threads,
                                                                     schedule, 5)
    libfm, xlearn = PEERS["seconds_per_epoch_k64"].values()
    best = min(v["median"] for v in speed.values())
    speed["speedup_vs_libfm"] = {name: libfm / v["median"] for name, v in speed.items()}
    speed["speedup_vs_xlearn"] = {name: xlearn / v["median"] for name, v in speed.items()
                                  if name != "speedup_vs_libfm"}
    results["seconds_per_epoch_k64_float32"] = speed
    print("seconds per epoch", {k: round(v["median"], 4) for k, v in speed.items() if "median" in v},
          "best", best)
    results["first_fit"] = first_fit_overhead()
    print("first fit", results["first_fit"])
    write_results("frappe_sgd" + ("_quick" if args.quick else ""),
                  {"data": "frappe (train reconstructed, NFM validation/test)", "peers": PEERS,
                   "results": results},
                  summary(results))


if __name__ == "__main__":
    main()
