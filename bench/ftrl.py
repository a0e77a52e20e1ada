"""frappe k=64: FTRL-Proximal FM (``solver="ftrl"``) against AdaGrad FM, test AUC and seconds
per epoch.

Protocol as bench/frappe_sgd.py: train on frappe.train.reconstructed.libfm, choose the
candidate and the epoch count on frappe.validation.libfm (early stopping on the validation
log-loss keeps the best epoch), report on frappe.test.libfm. Seconds per epoch: one-epoch
warm-started refits on the training file, one thread, after one warm-up epoch.

    python bench/ftrl.py
"""
import time

import numpy as np
from common import load_frappe, spread, summary_row, write_results
from frappe_sgd import CLASSIFICATION_GRID, COMMON, classification_metrics, select

from fmlearn import FMClassifier

# FTRL's alpha is eta0; its L2 (reg_*) is added once per coordinate, not at every row.
FTRL_GRID = [dict(solver="ftrl", eta0=0.5, reg_linear=1e-3, reg_factors=l2)
             for l2 in (0.3, 1.0, 3.0)]
REPEATS = 5


def epoch_seconds(X, y, params):
    """``spread`` of ``REPEATS`` one-epoch warm-started refits, after a warm-up one."""
    est = FMClassifier(n_factors=64, max_iter=1, tol=None, warm_start=True, random_state=0,
                       init_std=0.1, n_jobs=1, **params).fit(X, y)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        est.fit(X, y)
        times.append(time.perf_counter() - start)
    return spread(times)


def main():
    (Xtr, ytr), valid, test = load_frappe(np.float32)
    results = {}
    for name, grid in (("adagrad", CLASSIFICATION_GRID), ("ftrl", FTRL_GRID)):
        results[name] = select(FMClassifier, grid, 64, (Xtr, ytr), valid, test,
                               classification_metrics)
        results[name]["seconds_per_epoch"] = epoch_seconds(Xtr, ytr, results[name]["chosen"])
        print(name, results[name]["test_auc"], results[name]["test_logloss"],
              results[name]["seconds_per_epoch"]["median"])
    results["auc_difference"] = results["ftrl"]["test_auc"] - results["adagrad"]["test_auc"]
    rows = [summary_row("frappe", "classification", f"{label} k=64, 1 thread", metric,
                        results[name][key], results[name]["seconds_per_epoch"]["median"],
                        "epoch")
            for name, label in (("ftrl", "FTRL-Proximal"), ("adagrad", "SGD AdaGrad"))
            for metric, key in (("test AUC", "test_auc"), ("test log-loss", "test_logloss"))]
    write_results("ftrl", {"data": "frappe (train reconstructed, NFM validation/test)",
                           "results": results}, rows)


if __name__ == "__main__":
    main()
