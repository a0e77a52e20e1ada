"""MovieLens 100K as ordered classes: fmlearn's FMOrdinalRegressor against myFM's
MyFMOrderedProbit, beside fmlearn's MCMC regression, in the same run.

Protocol (issue 25, part 2): the GroupLens splits (default u1..u5), user + item one-hot
(``bayes_movielens.id_features``) with one prior group each (as myFM's ordinal tutorial),
rank 10, 200 iterations of which both average the last 180 (fmlearn's default burn-in of a
tenth: ``burn_in=20``; myFM ``n_kept_samples=180``), seed 42, init std 0.1, one thread,
fmlearn in float64 as myFM computes (``--dtype float32``: fmlearn's default). The ratings 1..5
are the classes; the test RMSE is of the expected rating ``sum_k p_k k`` from each library's
averaged class probabilities (the figure myFM's docs quote: u3 0.8906), the accuracy of the
most probable class beside it, and the regression's clipped prediction for comparison. On each
split the fits alternate fmlearn ordinal, myFM ordinal, fmlearn regression, ``--repeats``
times; seconds are wall-clock of ``fit`` after a warm-up of each (compilation excluded),
reported as seconds per iteration, min/median/max over all fits.

    python bench/movielens_ordinal.py [--splits 3] [--repeats 2] [--dtype float32]
"""
import argparse
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a progress bar in every fit

import myfm  # noqa: E402
import numpy as np  # noqa: E402
from bayes_movielens import RANK, SEED, groups_of, id_features, read_split, rmse  # noqa: E402
from common import alternate, peer, speedups, spread, summary_row, write_results  # noqa: E402

from fmlearn import FMOrdinalRegressor, FMRegressor  # noqa: E402

N_ITER = 200
BURN_IN = N_ITER // 10
LEVELS = np.arange(1, 6, dtype=np.float64)
QUOTED = {"myFM docs (u3, rank 10, 200 iterations, ordered probit, expected rating)": 0.8906,
          "source": "tohtsky/myFM doc/source/movielens.rst (ordinal regression)"}


def fits(X, y, X_test, y_test, sizes, n_iter, dtype="float64"):
    """The three fits of one split (``sizes``: the user and item blocks), each returning its
    test figures."""
    groups, burn_in = groups_of(*sizes), n_iter // 10

    def ordinal():
        est = FMOrdinalRegressor(n_factors=RANK, max_iter=n_iter, init_std=0.1, burn_in=burn_in,
                                 random_state=SEED, n_jobs=1, dtype=dtype).fit(
                                     X, y, feature_groups=groups)
        proba = est.predict_proba(X_test)
        return {"test_rmse": rmse(proba @ LEVELS, y_test),
                "test_accuracy": float(np.mean(est.classes_[proba.argmax(axis=1)] == y_test))}

    def myfm_ordinal():
        est = myfm.MyFMOrderedProbit(rank=RANK, init_stdev=0.1, random_seed=SEED)
        est.fit(X, y - 1, n_iter=n_iter, n_kept_samples=n_iter - burn_in,
                group_shapes=list(sizes))
        proba = est.predict_proba(X_test)
        return {"test_rmse": rmse(proba @ LEVELS, y_test),
                "test_accuracy": float(np.mean(proba.argmax(axis=1) + 1 == y_test))}

    def regression():
        est = FMRegressor(solver="mcmc", n_factors=RANK, max_iter=n_iter, init_std=0.1,
                          burn_in=burn_in, random_state=SEED, n_jobs=1, dtype=dtype).fit(
                              X, y, feature_groups=groups)
        return {"test_rmse": rmse(est.predict(X_test), y_test)}

    return {"fmlearn_ordinal": ordinal, "myfm_ordinal": myfm_ordinal,
            "fmlearn_regression": regression}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", default="12345", help="which of u1..u5, e.g. 3 or 135")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    parser.add_argument("--quick", action="store_true", help="u3 only")
    args = parser.parse_args()
    if args.quick:
        args.splits, args.repeats = "3", 1
    per_split, seconds = {}, {name: [] for name in ("fmlearn_ordinal", "myfm_ordinal",
                                                    "fmlearn_regression")}
    for k in map(int, args.splits):
        train, test = read_split(k)
        X, X_test, sizes = id_features(train, test)
        y, y_test = train.rating.to_numpy(), test.rating.to_numpy()
        if not per_split:  # warm-up: compile fmlearn's kernels, load myFM's
            for fit in fits(X[:2000], y[:2000], X_test[:10], y_test[:10], sizes, 2,
                            args.dtype).values():
                fit()
        first, timed = alternate(fits(X, y, X_test, y_test, sizes, N_ITER, args.dtype),
                                 args.repeats)
        per_split[f"u{k}"] = {name: {**first[name], "seconds_per_iteration":
                                     spread([s / N_ITER for s in timed[name]])}
                              for name in first}
        for name, values in timed.items():
            seconds[name] += [s / N_ITER for s in values]
        print(f"u{k}", {name: round(r["test_rmse"], 4) for name, r in first.items()},
              {name: round(float(np.median(v)) / N_ITER, 4) for name, v in timed.items()})
    means = {name: {"test_rmse": spread([s[name]["test_rmse"] for s in per_split.values()]),
                    "mean_test_rmse": float(np.mean([s[name]["test_rmse"]
                                                     for s in per_split.values()])),
                    "seconds_per_iteration": spread(seconds[name])}
             for name in seconds}
    ours, theirs = means["fmlearn_ordinal"], means["myfm_ordinal"]
    speedup = speedups(seconds["fmlearn_ordinal"], seconds["myfm_ordinal"])
    splits = "+".join(per_split)
    rows = [summary_row(f"MovieLens 100K {splits}", "ordinal regression (expected rating)",
                        "FMOrdinalRegressor", "RMSE", ours["mean_test_rmse"],
                        ours["seconds_per_iteration"]["median"], "iteration",
                        [peer("myFM MyFMOrderedProbit", theirs["mean_test_rmse"],
                              theirs["seconds_per_iteration"]["median"], speedup=speedup),
                         peer("fmlearn FMRegressor mcmc",
                              means["fmlearn_regression"]["mean_test_rmse"],
                              means["fmlearn_regression"]["seconds_per_iteration"]["median"])])]
    suffix = "" if args.dtype == "float64" else f"_{args.dtype}"
    suffix += "_quick" if args.quick else ""
    write_results(f"movielens_ordinal{suffix}", {
        "protocol": {"splits": list(per_split), "rank": RANK, "n_iter": N_ITER,
                     "kept_samples": N_ITER - BURN_IN, "seed": SEED, "repeats": args.repeats,
                     "fmlearn_dtype": args.dtype,
                     "features": "user + item one-hot, one prior group each"},
        "quoted": QUOTED, "per_split": per_split, "over_splits": means,
        "speedup_vs_myfm": speedup}, rows)


if __name__ == "__main__":
    main()
