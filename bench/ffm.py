"""Field-aware FM on frappe (accuracy at k=8 and k=64, seconds with one and two threads) and a
smoke run on LIBFFM's Criteo toy sample. Writes bench/results/ffm.json.

``--threads N``: only the epoch with one and with two threads, alternating, N pairs per k
(4, 8 and 64), into bench/results/ffm_threads.json: each epoch (a 21-epoch fit less a 1-epoch
fit, over 20) and the speed-up of two threads per pair, min/median/max.

Protocol: train FFMClassifier on frappe.train.reconstructed.libfm with the 10 fields of
../shared/data/PROVENANCE.md, stop early on frappe.validation.libfm when its log-loss stops
improving (``n_iter_no_change=1``, LIBFFM's ``--auto-stop``; the best epoch is kept), report
AUC and log-loss on frappe.test.libfm. LIBFFM is not installed here (it is C++ built from
source); its figures are the ones quoted in the project's issue, measured on these files on a
2-core machine like CI's.

    python bench/ffm.py [--quick] [--threads N]
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import load_frappe, require, speedups, spread, write_results
from sklearn.metrics import log_loss, roc_auc_score

from fmlearn import FFMClassifier
from fmlearn.io import dump_ffm, load_ffm

FRAPPE_FIELD_STARTS = [0, 957, 5039, 5046, 5053, 5055, 5058, 5060, 5069, 5149, 5382]
LIBFFM = {"k64": {"auc": 0.9826, "logloss": 0.1357, "fit_seconds": 2.9},
          "k8": {"fit_seconds": 1.2},
          "published_floor_BARS": {"auc": 0.9786, "logloss": 0.1860}}


def frappe_runs(quick):
    (X, y), (X_val, y_val), (X_test, y_test) = load_frappe()
    fields = np.repeat(np.arange(10), np.diff(FRAPPE_FIELD_STARTS))
    runs = {}
    for k in ([8] if quick else [8, 64]):
        for n_jobs in (1, 2):
            clf = FFMClassifier(fields=fields, n_factors=k, max_iter=30, early_stopping=True,
                                n_iter_no_change=1, tol=0.0, random_state=0, n_jobs=n_jobs)
            clf.fit(X[:2000], y[:2000], eval_set=(X_val[:500], y_val[:500]))  # compile first
            start = time.perf_counter()
            clf.fit(X, y, eval_set=(X_val, y_val))
            seconds = time.perf_counter() - start
            proba = clf.predict_proba(X_test)[:, 1]
            run = {"k": k, "n_jobs": n_jobs, "epochs": clf.n_iter_, "fit_seconds": seconds,
                   "seconds_per_epoch": seconds / clf.n_iter_,
                   "test_auc": roc_auc_score(y_test, proba), "test_logloss": log_loss(y_test, proba),
                   "best_validation_logloss": -clf.best_validation_score_}
            runs[f"k{k}_threads{n_jobs}"] = run
            print(f"frappe FFM k={k} n_jobs={n_jobs}: {clf.n_iter_} epochs in {seconds:.2f} s "
                  f"({seconds / clf.n_iter_:.3f} s/epoch), test AUC {run['test_auc']:.4f}, "
                  f"logloss {run['test_logloss']:.4f}")
    return runs


def criteo_smoke():
    train, test = require("criteo_libffm_sample/small_train.txt",
                          "criteo_libffm_sample/small_test.txt")
    # Feature ids are hashed over all fields here; each feature keeps the first field it has.
    X, y, fields = load_ffm(train, field_conflicts="first", n_features=9991)
    X_test, y_test, _ = load_ffm(test, field_conflicts="first", n_features=9991)
    with tempfile.TemporaryDirectory(prefix="fmlearn-ffm-") as tmp:
        path = Path(tmp) / "train.ffm"
        dump_ffm(X, y, np.maximum(fields, 0), path)
        X_back, y_back, _ = load_ffm(path, n_features=9991)
    round_trip = bool((X_back != X).nnz == 0 and np.array_equal(y_back, y))
    clf = FFMClassifier(fields=fields, n_factors=4, normalize=True, max_iter=15, tol=None,
                        random_state=0).fit(X, y)
    proba = clf.predict_proba(X_test)[:, 1]
    result = {"train_rows": X.shape[0], "test_rows": X_test.shape[0], "round_trip": round_trip,
              "k": 4, "epochs": 15, "normalize": True,
              "train_logloss_last_epoch": clf.loss_curve_[-1],
              "test_logloss": log_loss(y_test, proba), "test_auc": roc_auc_score(y_test, proba),
              "constant_logloss": log_loss(y_test, np.full(len(y_test), y.mean()))}
    print(f"Criteo toy sample: round trip {round_trip}, test logloss {result['test_logloss']:.4f} "
          f"(constant prediction {result['constant_logloss']:.4f})")
    return result


def thread_epochs(repeats, epochs=21):
    """Seconds per epoch of FFMClassifier on frappe's train file with one and two threads,
    alternating (one thread, two threads, ...), ``repeats`` pairs per k."""
    (X, y), _, _ = load_frappe()
    fields = np.repeat(np.arange(10), np.diff(FRAPPE_FIELD_STARTS))

    def fit(k, n_jobs, n_epochs):
        clf = FFMClassifier(fields=fields, n_factors=k, max_iter=n_epochs, tol=None,
                            random_state=0, n_jobs=n_jobs)
        start = time.perf_counter()
        clf.fit(X, y)
        return time.perf_counter() - start

    fit(4, 1, 1), fit(4, 2, 1)  # compile
    out = {}
    for k in (4, 8, 64):
        seconds = {1: [], 2: []}
        for _ in range(repeats):
            for n_jobs in (1, 2):
                seconds[n_jobs].append((fit(k, n_jobs, epochs) - fit(k, n_jobs, 1))
                                       / (epochs - 1))
        out[f"k{k}"] = {"one_thread": spread(seconds[1]), "two_threads": spread(seconds[2]),
                        "speedup": speedups(seconds[2], seconds[1])}
        print(f"frappe FFM k={k}: one thread {out[f'k{k}']['one_thread']['median']:.4f} s, two "
              f"{out[f'k{k}']['two_threads']['median']:.4f} s per epoch, speed-up "
              f"{out[f'k{k}']['speedup']}", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="only one against two threads, N alternating pairs per k")
    args = parser.parse_args()
    if args.threads:
        write_results("ffm_threads", {"protocol": "FFMClassifier on frappe's train file, "
                                                  "defaults, (21-epoch fit - 1-epoch fit) / 20, "
                                                  "one and two threads alternating",
                                      "results": thread_epochs(args.threads)})
        return
    write_results("ffm" + ("_quick" if args.quick else ""), {
        "frappe": frappe_runs(args.quick), "libffm_quoted": LIBFFM, "criteo_sample": criteo_smoke()})


if __name__ == "__main__":
    main()
