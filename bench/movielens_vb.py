"""MovieLens 100K with variational Bayes: test RMSE and seconds beside myFM's
``VariationalFMRegressor`` and beside fmlearn's MCMC (issue 25, part 3).

Protocol: the GroupLens splits (u3 by default, ``--splits 1 2 3 4 5`` for all), ratings 1-5,
user + item one-hot fitted on the training ratings (bayes_movielens.id_features), rank 10,
200 iterations, one prior group, factors started from N(0, 0.1^2), seed 42. fmlearn
``FMRegressor(solver="vb", tol=None)`` and myFM ``VariationalFMRegressor`` (its defaults:
reg_0=1 on w0) are fitted in turn, ``--repeats`` times each (A B A B ...), single-threaded;
seconds are wall-clock of ``fit`` after a warm-up fit of each (numba compilation excluded),
reported as min/median/max, with fmlearn's speed-up over myFM per adjacent pair. fmlearn's
MCMC (200 samples, all kept, as bayes_movielens (a)) is fitted once per split beside them.
RMSE is of predictions clipped to [1, 5] (myFM's unclipped RMSE is reported too). The ELBO's
relative change over the last 10 iterations tells whether 200 iterations converged.

    python bench/movielens_vb.py [--splits 3] [--repeats 3]
"""
import argparse
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a progress bar in every fit

import myfm  # noqa: E402
import numpy as np  # noqa: E402
from bayes_movielens import RANK, SEED, fit_mcmc, id_features, read_split, rmse  # noqa: E402
from common import alternate, peer, speedups, spread, summary_row, write_results  # noqa: E402

from fmlearn import FMRegressor  # noqa: E402

N_ITER = 200


def fit_vb(library, X, y, n_iter):
    """A fitted VB regressor of ``library`` ("fmlearn" or "myFM")."""
    if library == "fmlearn":
        return FMRegressor(solver="vb", n_factors=RANK, max_iter=n_iter, tol=None, init_std=0.1,
                           random_state=SEED, n_jobs=1).fit(X, y)
    return myfm.VariationalFMRegressor(rank=RANK, init_stdev=0.1, random_seed=SEED).fit(
        X, y, n_iter=n_iter)


def split_result(k, n_iter, repeats):
    train, test = read_split(k)
    X, X_test, _ = id_features(train, test)
    y, y_test = train.rating.to_numpy(float), test.rating.to_numpy(float)
    fits, seconds = alternate({lib: (lambda lib=lib: fit_vb(lib, X, y, n_iter))
                               for lib in ("fmlearn", "myFM")}, repeats)
    out = {}
    for lib, est in fits.items():
        pred = est.predict(X_test)
        out[lib] = {"test_rmse": rmse(np.clip(pred, 1, 5), y_test), "seconds": spread(seconds[lib])}
    out["myFM"]["test_rmse_unclipped"] = rmse(fits["myFM"].predict(X_test), y_test)
    elbo = fits["fmlearn"].elbo_
    out["fmlearn"]["elbo_last"] = float(elbo[-1])
    out["fmlearn"]["elbo_relative_change_last_10"] = float((elbo[-1] - elbo[-11]) / abs(elbo[-1]))
    out["fmlearn"]["elbo_decreases"] = int(np.sum(np.diff(elbo) < 0))
    _, std = fits["fmlearn"].predict(X_test, return_std=True)
    out["fmlearn"]["test_share_within_2_std"] = float(
        np.mean(np.abs(np.clip(fits["fmlearn"].predict(X_test), 1, 5) - y_test) < 2 * std))
    out["speedup_over_myFM"] = speedups(seconds["fmlearn"], seconds["myFM"])
    out["fmlearn_mcmc"] = fit_mcmc("fmlearn", X, y, X_test, y_test, n_iter)
    print(f"u{k}", {lib: round(out[lib]["test_rmse"], 4) for lib in ("fmlearn", "myFM")},
          {lib: round(out[lib]["seconds"]["median"], 2) for lib in ("fmlearn", "myFM")},
          "mcmc", round(out["fmlearn_mcmc"]["test_rmse"], 4),
          round(out["fmlearn_mcmc"]["seconds"], 2))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", type=int, nargs="+", default=[3])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="u3 only, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.splits, args.repeats = [3], 1
    train, test = read_split(1)
    X, _, _ = id_features(train, test)
    y = train.rating.to_numpy(float)
    for lib in ("fmlearn", "myFM"):  # compile and load before anything is timed
        fit_vb(lib, X[:2000], y[:2000], 2).predict(X[:10])
        fit_mcmc(lib, X[:2000], y[:2000], X[:10], y[:10], 2)
    FMRegressor(solver="vb", n_factors=RANK, max_iter=2, random_state=0).fit(
        X[:2000], y[:2000]).predict(X[:10], return_std=True)
    started = time.perf_counter()
    per_split = {f"u{k}": split_result(k, N_ITER, args.repeats) for k in args.splits}
    mean = {key: float(np.mean([r[lib]["test_rmse"] for r in per_split.values()]))
            for key, lib in (("fmlearn_vb_rmse", "fmlearn"), ("myFM_vb_rmse", "myFM"),
                             ("fmlearn_mcmc_rmse", "fmlearn_mcmc"))}
    mean["fmlearn_vb_rmse_spread"] = spread([r["fmlearn"]["test_rmse"]
                                             for r in per_split.values()])
    seconds = {lib: float(np.mean([r[lib]["seconds"]["median"] for r in per_split.values()]))
               for lib in ("fmlearn", "myFM")}
    mcmc_seconds = float(np.mean([r["fmlearn_mcmc"]["seconds"] for r in per_split.values()]))
    speedup = speedups(*([r[lib]["seconds"]["median"] for r in per_split.values()]
                         for lib in ("fmlearn", "myFM")))
    name = "MovieLens 100K " + ",".join(per_split)
    rows = [summary_row(name, "regression", "VB (k=10, 200 iterations)", "RMSE",
                        mean["fmlearn_vb_rmse"], seconds["fmlearn"] / N_ITER, "iteration",
                        [peer("myFM VariationalFMRegressor", mean["myFM_vb_rmse"],
                              seconds["myFM"] / N_ITER, speedup=speedup),
                         peer("fmlearn MCMC (200 samples)", mean["fmlearn_mcmc_rmse"],
                              mcmc_seconds / N_ITER)])]
    write_results("movielens_vb" + ("_quick" if args.quick else ""), {"n_iter": N_ITER, "rank": RANK, "repeats": args.repeats,
                                   "splits": per_split, "mean": mean,
                                   "wall_seconds": time.perf_counter() - started}, rows)


if __name__ == "__main__":
    main()
