"""Validation curves of SGD with one and with two threads, epoch by epoch, on frappe and a9a.

With several threads each one steps private copies of the intercept and the hot features (in
at least 1/64 of the rows) and merges its steps into the shared parameters after every window
of rows, weighted by how they trend (``fmlearn.kernels.sgd.merge_weight``: summed while they
keep their direction, averaged once each window reaches the minimum). This script checks that
the two-thread curves follow the one-thread curves at every epoch, not only at the end: for
each learner it fits the classifier for ``EPOCHS`` epochs (no early stopping) with
``n_jobs=1`` and ``n_jobs=2`` from the same seed, and with ``n_jobs=1`` from another seed,
whose distance from the first is the noise of the row order alone. Writes
bench/results/thread_curves.json (or ``--out``): per-epoch validation log-loss of each run,
the largest gap between the thread counts and the largest gap between the seeds.

Measured on a busy 2-core machine (largest gap, two threads against one / other seed): frappe
FM 0.0020 / 0.0032, FFM 0.0020 / 0.0020, FM at a constant rate 0.0243 / 0.0240; a9a FM
0.0028 / 0.0023, at a constant rate 0.0114 / 0.0074 (two threads below one thread's
noisier curve), FFM 0.0015 / 0.0036. Since FFM's hot features are stepped in the threads'
copies too (the quiet machine): frappe FFM 0.0193 / 0.0020 and a9a FFM 0.0050 / 0.0036, two
threads below one thread at every epoch but the first (frappe: 0.1739 against 0.1723; best
epoch 0.1485 against 0.1519), their hot features' merged steps slowing the overfitting
after the best epoch; FM unchanged (frappe 0.0027 / 0.0032, a9a 0.0028 / 0.0023). Averaging the copies at the end of the epoch (before)
stayed within the seed spread here too (at most 0.0034 / 0.0023); summing their steps jumped
to 0.382 log-loss at epoch 8 of a9a at the constant rate (0.335 one thread). Where averaging
and plain summing fail is shown by tests/test_threads.py's planted problems.

frappe: train on frappe.train.reconstructed.libfm, score frappe.validation.libfm, FM at k=16
(bench/frappe_sgd.py's classification setting) and FFM at k=8 over its 10 fields
(bench/ffm.py's). a9a: train on a9a, score a9a.t, FM at k=8 and FFM at k=4 over the 14
attributes (each a run of one-hot columns, found as maximal runs of columns that never
share a row). AdaGrad at the estimators' rates, and the FMs again at a constant rate of
0.01, where the intercept and the hot features keep moving for longer. Every
hyperparameter is given, so that changed defaults do not change the curves.

    python bench/thread_curves.py [--quick] [--out PATH]
"""
import argparse
import time
from pathlib import Path

import numpy as np
from common import DATA, RESULTS, load_frappe, machine, require, write_json
from ffm import FRAPPE_FIELD_STARTS
from sklearn.datasets import load_svmlight_files

from fmlearn import FFMClassifier, FMClassifier

EPOCHS = 15


def exclusive_runs(X):
    """Fields of one-hot columns: a new field starts at the first column sharing a row with
    a column of the current one (the columns of an attribute never share a row)."""
    X = X.tocsc()
    fields = np.zeros(X.shape[1], dtype=np.int64)
    rows = set()
    for j in range(X.shape[1]):
        column = set(X.indices[X.indptr[j]:X.indptr[j + 1]].tolist())
        if rows & column:
            fields[j:] += 1
            rows = set()
        rows |= column
    return fields


def load_a9a():
    train, test = require("a9a/a9a", "a9a/a9a.t")
    X, y, X_test, y_test = load_svmlight_files([str(train), str(test)], n_features=123,
                                                dtype=np.float32)
    return (X, y), (X_test, y_test)


def learners(quick):
    """(dataset, learner, estimator factory, train, validation) of every curve pair."""
    (X, y), (X_val, y_val), _ = load_frappe()
    if quick:
        X, y = X[:40000], y[:40000]
    frappe_fields = np.repeat(np.arange(10), np.diff(FRAPPE_FIELD_STARTS))
    a9a, a9a_val = load_a9a()
    a9a_fields = exclusive_runs(a9a[0])
    fm = dict(eta0=0.2, reg_linear=1e-4, reg_factors=3e-3, init_std=0.1)
    fm_a9a = dict(eta0=0.1, reg_linear=1e-5, reg_factors=1e-5, init_std=0.01)
    ffm = dict(eta0=0.2, reg_linear=2e-5, reg_factors=2e-5, init_std=0.1)
    constant = dict(learning_rate="constant", eta0=0.01)
    return [
        ("frappe", "FM k=16", lambda **p: FMClassifier(n_factors=16, **fm, **p),
         (X, y), (X_val, y_val)),
        ("frappe", "FFM k=8",
         lambda **p: FFMClassifier(fields=frappe_fields, n_factors=8, **ffm, **p),
         (X, y), (X_val, y_val)),
        ("frappe", "FM k=16, constant rate 0.01",
         lambda **p: FMClassifier(n_factors=16, **{**fm, **constant}, **p), (X, y),
         (X_val, y_val)),
        ("a9a", "FM k=8", lambda **p: FMClassifier(n_factors=8, **fm_a9a, **p), a9a, a9a_val),
        ("a9a", "FM k=8, constant rate 0.01",
         lambda **p: FMClassifier(n_factors=8, **{**fm_a9a, **constant}, **p), a9a, a9a_val),
        ("a9a", "FFM k=4",
         lambda **p: FFMClassifier(fields=a9a_fields, n_factors=4, **ffm, **p), a9a, a9a_val),
    ]


def curve(make, train, validation, n_jobs, seed, epochs):
    """Per-epoch validation log-loss (the classifiers' default validation score, negated)."""
    est = make(max_iter=epochs, tol=None, n_jobs=n_jobs, random_state=seed)
    start = time.perf_counter()
    est.fit(*train, eval_set=validation)
    return [-s for s in est.validation_scores_], time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs, 40,000 frappe rows")
    parser.add_argument("--out", type=Path, default=RESULTS / "thread_curves.json")
    args = parser.parse_args()
    epochs = 5 if args.quick else EPOCHS
    runs = []
    for dataset, learner, make, train, validation in learners(args.quick):
        one, seconds_one = curve(make, train, validation, 1, 0, epochs)
        two, seconds_two = curve(make, train, validation, 2, 0, epochs)
        reseeded, _ = curve(make, train, validation, 1, 1, epochs)
        run = {"dataset": dataset, "learner": learner,
               "validation_logloss": {"n_jobs=1": one, "n_jobs=2": two,
                                      "n_jobs=1, other seed": reseeded},
               "max_gap_threads": float(np.max(np.abs(np.subtract(two, one)))),
               "max_gap_seeds": float(np.max(np.abs(np.subtract(reseeded, one)))),
               "fit_seconds": {"n_jobs=1": seconds_one, "n_jobs=2": seconds_two}}
        runs.append(run)
        print(f"{dataset} {learner}: largest gap 2 threads vs 1 {run['max_gap_threads']:.4f}, "
              f"other seed vs 1 {run['max_gap_seeds']:.4f}")
        for e, (a, b, c) in enumerate(zip(one, two, reseeded, strict=True), 1):
            print(f"  epoch {e:2d}: 1 thread {a:.4f}  2 threads {b:.4f}  other seed {c:.4f}")
    write_json(args.out, {"machine": machine(), "epochs": epochs, "data": str(DATA),
                          "runs": runs})


if __name__ == "__main__":
    main()
