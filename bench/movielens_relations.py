"""MovieLens 100K, MCMC with SVD++-style implicit features through relational blocks, beside myFM.

Protocol (GroupLens splits, rank 10, 200 Gibbs iterations, every sample kept by both libraries,
seed 42): each rating row holds its user's one-hot in X and two blocks (Rendle, VLDB 2013;
myFM's ``doc/source/relation-blocks.rst``): the user block, all items the user rated in the
training split with values 1/sqrt(n), and the item block, the item's one-hot and all users who
rated it in the training split with values 1/sqrt(n). Ids not in the training split index an
all-zero block row. Both libraries get the same matrices; fits alternate (fmlearn, myFM,
fmlearn, myFM, ...) and the seconds are wall-clock of ``fit`` after a warm-up of each (numba
compilation excluded), reported as min/median/max over the repeats with the paired speed-ups.
The same features expanded into rows (``hstack([X, U[user], I[item]])``) are timed with
fmlearn for a few iterations (the median time between the ends of iterations, so that
building the expanded matrix is not counted), for seconds per iteration only. RMSE on predictions clipped to
[1, 5]; fmlearn's prediction averages the samples after a burn-in chosen once on a 10 %
validation split of u1.base (among 0, 10 and 20 % of the samples, as bench/bayes_movielens.py
does), its average of all samples (myFM's) reported beside.

    python bench/movielens_relations.py [--splits 3] [--repeats 3] [--quick] [--seeds 1 2 3]
"""
import argparse
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a progress bar in every fit

import myfm  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from bayes_movielens import RANK, SEED, read_split, rmse  # noqa: E402
from common import (alternate, choose_burn_in, dropping_first, peer, speedups,  # noqa: E402
                    spread, summary_row, write_results)
from sklearn.model_selection import train_test_split  # noqa: E402

from fmlearn import FMRegressor, RelationBlock  # noqa: E402

EXPANDED_ITERATIONS = 6
QUOTED = {"myFM docs (u1, with date features, 300 iterations)": {
    "rmse": 0.889, "iterations_per_second": 20, "speedup_over_expanded": 40,
    "source": "tohtsky/myFM doc/source/relation-blocks.rst"}}


def codes(values, categories):
    """Codes of ``values`` among ``categories``; unseen values get ``len(categories)``."""
    values = np.asarray(values)
    found = np.minimum(np.searchsorted(categories, values), len(categories) - 1)
    return np.where(categories[found] == values, found, len(categories)).astype(np.int64)


def implicit(owner, other, n_owner, n_other):
    """One row per owner (and an all-zero row for unseen ones): 1/sqrt(n) at each of the n
    ``other`` codes it has in the training ratings."""
    pairs = np.unique(np.column_stack([owner, other]), axis=0)
    counts = np.bincount(pairs[:, 0], minlength=n_owner + 1)
    values = 1.0 / np.sqrt(counts[pairs[:, 0]])
    return sp.csr_matrix((values, (pairs[:, 0], pairs[:, 1])), shape=(n_owner + 1, n_other))


def relational_features(train, test):
    """X (user one-hot) of the training and test rows, their two blocks each, and targets."""
    users, items = np.unique(train.user_id), np.unique(train.item_id)
    nu, ni = len(users), len(items)
    u_train, i_train = codes(train.user_id, users), codes(train.item_id, items)
    user_block = implicit(u_train, i_train, nu, ni)
    item_block = sp.hstack([sp.eye(ni + 1, ni, format="csr"),
                            implicit(i_train, u_train, ni, nu)], format="csr")

    def part(frame):
        u, i = codes(frame.user_id, users), codes(frame.item_id, items)
        X = sp.csr_matrix((np.ones(len(u)), (np.arange(len(u)), u)), shape=(len(u), nu + 1))
        return X, [(u, user_block), (i, item_block)], frame.rating.to_numpy(float)

    return part(train), part(test)


def fit(library, data, n_iter, seed=SEED):
    X, blocks, y = data
    if library == "fmlearn":
        est = FMRegressor(solver="mcmc", n_factors=RANK, max_iter=n_iter, init_std=0.1,
                          burn_in=0, random_state=seed, n_jobs=1)
        return est.fit(X, y, relations=[RelationBlock(i, B) for i, B in blocks])
    est = myfm.MyFMRegressor(rank=RANK, init_stdev=0.1, random_seed=seed)
    return est.fit(X, y, X_rel=[myfm.RelationBlock(i, B) for i, B in blocks], n_iter=n_iter,
                   n_kept_samples=n_iter)


def choose_relational_burn_in(n_iter):
    """fmlearn's burn-in, chosen on a 10 % validation split of u1.base."""
    base, _ = read_split(1)
    inner, valid = train_test_split(base, test_size=0.1, random_state=SEED)
    train_data, valid_data = relational_features(inner, valid)
    est = fit("fmlearn", train_data, n_iter)
    burn_in, scores = choose_burn_in(est, lambda e: test_rmse("fmlearn", e, valid_data))
    print("burn-in chosen on u1 validation", burn_in, {b: round(v, 4) for b, v in scores.items()})
    return burn_in, scores


def test_rmse(library, est, data):
    X, blocks, y = data
    if library == "fmlearn":
        pred = est.predict(X, relations=[RelationBlock(i, B) for i, B in blocks])
    else:
        pred = est.predict(X, X_rel=[myfm.RelationBlock(i, B) for i, B in blocks])
    return rmse(np.clip(pred, 1, 5), y)


def one_split(k, n_iter, repeats, burn_in):
    train, test = read_split(k)
    train_data, test_data = relational_features(train, test)
    libraries = ("fmlearn", "myFM")
    fits = {lib: (lambda lib=lib: fit(lib, train_data, n_iter)) for lib in libraries}
    first, seconds = alternate(fits, repeats)
    out = {lib: {"test_rmse": test_rmse(lib, first[lib], test_data),
                 "seconds": spread(seconds[lib]),
                 "seconds_per_iteration": float(np.median(seconds[lib])) / n_iter}
           for lib in libraries}
    out["fmlearn"]["test_rmse_all_samples"] = out["fmlearn"]["test_rmse"]
    out["fmlearn"]["test_rmse"] = test_rmse("fmlearn", dropping_first(first["fmlearn"], burn_in),
                                            test_data)
    out["speedup_over_myFM"] = speedups(seconds["fmlearn"], seconds["myFM"])
    # Per iteration of the expanded fit: the median time between the ends of its iterations
    # (the estimators' per-epoch hook), so that building the expanded matrix is not counted.
    ends = []
    expanded = FMRegressor(solver="mcmc", n_factors=RANK, max_iter=EXPANDED_ITERATIONS,
                           init_std=0.1, burn_in=0, random_state=SEED, n_jobs=1)
    expanded._end_epoch = lambda *args: ends.append(time.perf_counter())
    X, blocks, y = train_data
    expanded.fit(sp.hstack([X] + [B[i] for i, B in blocks], format="csr"), y)
    per_iter = float(np.median(np.diff(ends)))
    out["fmlearn_expanded"] = {"seconds_per_iteration": per_iter,
                               "iterations": EXPANDED_ITERATIONS,
                               "nnz_per_row": (train_data[0].nnz + sum(
                                   B[i].nnz for i, B in train_data[1])) / train_data[0].shape[0]}
    out["speedup_over_expanded"] = per_iter / out["fmlearn"]["seconds_per_iteration"]
    print(f"u{k}", {lib: round(out[lib]["test_rmse"], 4) for lib in libraries},
          {lib: round(out[lib]["seconds_per_iteration"], 4) for lib in libraries},
          "expanded", round(per_iter, 3))
    return out


def seed_spread(k, n_iter, seeds, burn_in):
    """Test RMSE of both libraries on split ``k`` for each of ``seeds``: the chains' spread."""
    train_data, test_data = relational_features(*read_split(k))
    out = {}
    for lib in ("fmlearn", "myFM"):
        values = []
        for seed in seeds:
            est = fit(lib, train_data, n_iter, seed)
            values.append(test_rmse(lib, dropping_first(est, burn_in) if lib == "fmlearn"
                                    else est, test_data))
        out[lib] = {"test_rmse": values, "mean": float(np.mean(values)),
                    "std": float(np.std(values, ddof=1)), **spread(values)}
    print(f"u{k} over seeds {seeds}:", {lib: (round(r["mean"], 4), round(r["std"], 4))
                                        for lib, r in out.items()})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 iterations, one repeat")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="instead: the test RMSE of each library for each of these seeds "
                             "on --splits (the chains' spread; no timing), written to "
                             "results/movielens_relations_seeds.json")
    args = parser.parse_args()
    n_iter, repeats = (20, 1) if args.quick else (200, args.repeats)
    if args.seeds:
        burn_in, _ = choose_relational_burn_in(n_iter)
        write_results("movielens_relations_seeds", {
            "n_iter": n_iter, "seeds": args.seeds, "fmlearn_burn_in": burn_in,
            "splits": {f"u{k}": seed_spread(k, n_iter, args.seeds, burn_in)
                       for k in args.splits}})
        return
    warm = relational_features(*read_split(1))[0]
    small = (warm[0][:2000], [(i[:2000], B) for i, B in warm[1]], warm[2][:2000])
    for library in ("fmlearn", "myFM"):
        fit(library, small, 2)
    burn_in, on_valid = choose_relational_burn_in(n_iter)
    per_split = {f"u{k}": one_split(k, n_iter, repeats, burn_in) for k in args.splits}
    mean = {lib: float(np.mean([r[lib]["test_rmse"] for r in per_split.values()]))
            for lib in ("fmlearn", "myFM")}
    per_iter = {lib: float(np.mean([r[lib]["seconds_per_iteration"]
                                     for r in per_split.values()])) for lib in ("fmlearn", "myFM")}
    expanded = float(np.mean([r["fmlearn_expanded"]["seconds_per_iteration"]
                              for r in per_split.values()]))
    myfm_name = f"myFM {myfm.__version__} with RelationBlock"
    rows = [summary_row(
        f"MovieLens 100K {', '.join(per_split)}, SVD++-style implicit features", "regression",
        f"MCMC k={RANK}, {n_iter} samples, relational blocks", "test RMSE", mean["fmlearn"],
        per_iter["fmlearn"], "iteration",
        [peer(myfm_name, mean["myFM"], per_iter["myFM"],
              speedup=spread([r["speedup_over_myFM"]["median"] for r in per_split.values()])),
         peer("fmlearn, the same features expanded into rows", None, expanded,
              speedup=spread([r["speedup_over_expanded"] for r in per_split.values()]))])]
    write_results("movielens_relations" + ("_quick" if args.quick else ""),
                  {"data": "MovieLens 100K, GroupLens splits", "n_factors": RANK, "seed": SEED,
                   "n_iter": n_iter, "repeats": repeats, "quoted": QUOTED,
                   "fmlearn_burn_in": {"chosen": burn_in, "validation_rmse": on_valid},
                   "results": {"splits": per_split, "mean_test_rmse": mean,
                               "fmlearn_mean_test_rmse_all_samples": float(np.mean(
                                   [r["fmlearn"]["test_rmse_all_samples"]
                                    for r in per_split.values()])),
                               "test_rmse_spread": {lib: spread(
                                   [r[lib]["test_rmse"] for r in per_split.values()])
                                   for lib in ("fmlearn", "myFM")},
                               "mean_seconds_per_iteration": per_iter,
                               "expanded_seconds_per_iteration": expanded}}, rows)


if __name__ == "__main__":
    main()
