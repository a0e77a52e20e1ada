"""MovieLens 100K with the MCMC and ALS solvers: test RMSE and seconds, side by side with myFM.

Protocol (the GroupLens 5-fold splits u1..u5, ratings 1-5, rank 10):

(a) MCMC, 200 samples, user + item one-hot: test RMSE on each of u1..u5 for fmlearn and for
    myFM (``MyFMRegressor``, all 200 samples kept, fmlearn with burn_in=0) on the same CSR
    matrices, fits alternating fmlearn u1, myFM u1, fmlearn u2, ...
(b) MCMC on u3 with side information and one prior group per feature block, built exactly as in
    myFM's own tutorial ("Adding Side information", ``doc/source/movielens.rst`` of
    tohtsky/myFM, published test RMSE 0.8855): user/item one-hot fitted on the training ratings,
    user age // 5 * 5, gender, occupation and the first character of the zip code, movie release
    year (missing year as its own category) one-hot, and the 19 genre flags as they are; groups
    user id, item id, age, gender, occupation, zip, year, genres. No implicit ("rated items")
    features: that example does not use them. Also the ids-only model with two groups
    (published 0.8925).
(c) ALS, 100 sweeps, user + item one-hot on u1: a small regularisation grid chosen on a
    validation split carved from u1.base (10 %, fixed seed), the chosen setting refitted on all
    of u1.base and reported on u1.test.

(d)-(f) live in scripts of their own that import this one's data helpers and write their own
    JSON, each with myFM in the same run, fits alternating, on u1..u5:
    ``movielens_relations.py`` (SVD++-style implicit features through relational blocks, beside
    myFM's ``RelationBlock`` and the same features expanded into rows), ``movielens_ordinal.py``
    (``FMOrdinalRegressor``'s expected rating beside ``MyFMOrderedProbit``) and
    ``movielens_vb.py`` (``solver="vb"`` beside ``VariationalFMRegressor`` and our MCMC).

RMSE is on predictions clipped to the training rating range (fmlearn clips in ``predict``; myFM
does not, so its unclipped RMSE, the one its documentation quotes, is reported too). Seconds are
wall-clock of ``fit`` after a warm-up fit of each library (numba compilation excluded).

    python bench/bayes_movielens.py [--quick]
"""
import argparse
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM draws a progress bar in every fit

import myfm  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from common import (choose_burn_in, dropping_first, peer, require, speedups,  # noqa: E402
                    summary_row, write_results)
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import OneHotEncoder  # noqa: E402

from fmlearn import FMRegressor  # noqa: E402

RANK = 10
SEED = 42  # myFM's tutorial seed
IDS = ["user_id", "item_id"]
QUOTED = {
    "myFM docs (u3, rank 10, 200 iterations, 200 kept samples, seed 42)": {
        "ids_rmse": 0.8944, "ids_grouped_rmse": 0.8925, "side_information_rmse": 0.8855,
        "source": "tohtsky/myFM doc/source/movielens.rst"},
    "targets": {"mcmc_side_information_u3_rmse": 0.8855, "als_u1_rmse": 0.926},
}
ALS_GRID = [dict(reg_linear=lin, reg_factors=fac) for lin in (1.0, 3.0, 10.0)
            for fac in (10.0, 12.0, 14.0, 16.0, 20.0)]


# --- data ----------------------------------------------------------------------------------------
def read_split(k):
    base, test = require(f"ml-100k/u{k}.base", f"ml-100k/u{k}.test")
    names = IDS + ["rating", "timestamp"]
    return [pd.read_csv(p, sep="\t", names=names) for p in (base, test)]


def groups_of(*sizes):
    """One group id per column, for blocks of the given sizes (myFM's ``group_shapes``)."""
    return np.repeat(np.arange(len(sizes)), sizes)


def id_features(train, test):
    """User and item one-hot fitted on the training ratings (unseen ids in test: all zero)."""
    ohe = OneHotEncoder(handle_unknown="ignore").fit(train[IDS])
    sizes = [len(c) for c in ohe.categories_]
    return ohe.transform(train[IDS]).tocsr(), ohe.transform(test[IDS]).tocsr(), sizes


def side_tables():
    """myFM's tutorial side information: the user table and its encoder, the release-year
    column and its encoder, the 19 genre flags (all indexed by id)."""
    user_path, item_path, genre_path = require("ml-100k/u.user", "ml-100k/u.item",
                                               "ml-100k/u.genre")
    users = pd.read_csv(user_path, sep="|", names=["user_id", "age", "gender", "occupation",
                                                   "zipcode"]).set_index("user_id")
    users["age"] = users.age // 5 * 5
    users["zipcode"] = users.zipcode.str[0]
    genres = list(pd.read_csv(genre_path, sep="|", header=None)[0])
    items = pd.read_csv(item_path, sep="|", encoding="latin-1", header=None,
                        names=["item_id", "title", "release_date", "video_date", "url"] + genres)
    items = items.set_index("item_id")
    year = pd.to_datetime(items.release_date, format="%d-%b-%Y").dt.year
    items["release_year"] = year.map(lambda y: "NaN" if pd.isna(y) else str(int(y)))
    user_ohe = OneHotEncoder(handle_unknown="ignore").fit(users)
    year_ohe = OneHotEncoder(handle_unknown="ignore").fit(items[["release_year"]])
    return users, user_ohe, items[["release_year"]], year_ohe, items[genres]


def side_features(train, test, tables):
    """[user id, item id | age, gender, occupation, zip | release year | genres] and the groups."""
    users, user_ohe, years, year_ohe, genres = tables
    X_train, X_test, id_sizes = id_features(train, test)

    def extend(X, ratings):
        return sp.hstack([X, user_ohe.transform(users.loc[ratings.user_id]),
                          year_ohe.transform(years.loc[ratings.item_id]),
                          sp.csr_matrix(genres.loc[ratings.item_id].to_numpy(dtype=np.float64))],
                         format="csr")

    sizes = (id_sizes + [len(c) for c in user_ohe.categories_]
             + [len(year_ohe.categories_[0]), genres.shape[1]])
    return extend(X_train, train), extend(X_test, test), groups_of(*sizes)


# --- fitting -------------------------------------------------------------------------------------
def rmse(pred, y):
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def fit_mcmc(library, X, y, X_test, y_test, n_iter, groups=None, burn_in=0):
    """One MCMC fit of ``library`` ("fmlearn" or "myFM"); test RMSE and seconds. Both keep
    every sample; for fmlearn ``test_rmse`` drops the first ``burn_in`` of them, and
    ``test_rmse_all_samples`` keeps them all."""
    start = time.perf_counter()
    if library == "fmlearn":
        est = FMRegressor(solver="mcmc", n_factors=RANK, max_iter=n_iter, init_std=0.1,
                          burn_in=0, random_state=SEED, n_jobs=1)
        est.fit(X, y, feature_groups=groups)
    else:
        est = myfm.MyFMRegressor(rank=RANK, init_stdev=0.1, random_seed=SEED)
        est.fit(X, y, n_iter=n_iter, n_kept_samples=n_iter,
                grouping=None if groups is None else [int(g) for g in groups])
    seconds = time.perf_counter() - start
    out = {"seconds": seconds, "seconds_per_iteration": seconds / n_iter}
    if library == "fmlearn":
        out["test_rmse_all_samples"] = rmse(np.clip(est.predict(X_test), 1, 5), y_test)
        est = dropping_first(est, burn_in)
    pred = est.predict(X_test)
    out["test_rmse"] = rmse(np.clip(pred, y.min(), y.max()), y_test)
    if library == "myFM":
        out["test_rmse_unclipped"] = rmse(pred, y_test)
    return out


def warm_up(X, y, groups):
    """Compile fmlearn's kernels and load myFM's before anything is timed."""
    for library in ("fmlearn", "myFM"):
        fit_mcmc(library, X[:2000], y[:2000], X[:10], y[:10], 2, groups)
    FMRegressor(solver="als", n_factors=RANK, max_iter=2, tol=None, random_state=SEED).fit(
        X[:2000], y[:2000]).predict(X[:10])


def split_means(per_split):
    """Mean test RMSE and mean fit seconds of each library over the splits, and fmlearn's
    speed-up over myFM per split (the two were fitted one after the other)."""
    means = {lib: {f"mean_{key}": float(np.mean([r[lib][key] for r in per_split.values()]))
                   for key in ("test_rmse", "seconds")} for lib in ("fmlearn", "myFM")}
    means["speedup_over_myFM"] = speedups(*([r[lib]["seconds"] for r in per_split.values()]
                                            for lib in ("fmlearn", "myFM")))
    return means


def choose_mcmc_burn_in(n_iter):
    """fmlearn's burn-in, chosen once on a 10 % validation split of u1.base (ids only)."""
    base, _ = read_split(1)
    inner, valid = train_test_split(base, test_size=0.1, random_state=SEED)
    X, X_valid, _ = id_features(inner, valid)
    est = FMRegressor(solver="mcmc", n_factors=RANK, max_iter=n_iter, init_std=0.1, burn_in=0,
                      random_state=SEED, n_jobs=1).fit(X, inner.rating.to_numpy(float))
    y_valid = valid.rating.to_numpy(float)
    burn_in, scores = choose_burn_in(
        est, lambda e: rmse(np.clip(e.predict(X_valid), 1, 5), y_valid))
    print("burn-in chosen on u1 validation", burn_in, {b: round(v, 4) for b, v in scores.items()})
    return burn_in, scores


def mcmc_splits(splits, n_iter, burn_in):
    """(a): ids-only MCMC on each split, the two libraries alternating."""
    per_split = {}
    for k in splits:
        train, test = read_split(k)
        X, X_test, _ = id_features(train, test)
        y, y_test = train.rating.to_numpy(float), test.rating.to_numpy(float)
        per_split[f"u{k}"] = {lib: fit_mcmc(lib, X, y, X_test, y_test, n_iter, burn_in=burn_in)
                              for lib in ("fmlearn", "myFM")}
        print(f"u{k}", {lib: round(r["test_rmse"], 4) for lib, r in per_split[f"u{k}"].items()},
              {lib: round(r["seconds"], 1) for lib, r in per_split[f"u{k}"].items()})
    mean = split_means(per_split)
    mean["fmlearn"]["mean_test_rmse_all_samples"] = float(np.mean(
        [r["fmlearn"]["test_rmse_all_samples"] for r in per_split.values()]))
    return {"n_iter": n_iter, "fmlearn_burn_in": burn_in, "splits": per_split, "mean": mean}


def mcmc_side_information(n_iter, with_grouped_ids, burn_in):
    """(b): u3 with myFM's tutorial side information and per-block groups (and ids grouped)."""
    train, test = read_split(3)
    y, y_test = train.rating.to_numpy(float), test.rating.to_numpy(float)
    X, X_test, groups = side_features(train, test, side_tables())
    result = {"n_iter": n_iter, "n_features": X.shape[1], "n_groups": int(groups.max() + 1),
              "nnz_per_row": X.nnz / X.shape[0]}
    result["side_information"] = {lib: fit_mcmc(lib, X, y, X_test, y_test, n_iter, groups,
                                                burn_in) for lib in ("fmlearn", "myFM")}
    print("u3 side information", {lib: round(r["test_rmse"], 4)
                                  for lib, r in result["side_information"].items()})
    if with_grouped_ids:
        X, X_test, sizes = id_features(train, test)
        result["ids_grouped"] = {lib: fit_mcmc(lib, X, y, X_test, y_test, n_iter,
                                               groups_of(*sizes), burn_in)
                                 for lib in ("fmlearn", "myFM")}
        print("u3 ids grouped", {lib: round(r["test_rmse"], 4)
                                 for lib, r in result["ids_grouped"].items()})
    return result


def fit_als(train, test, n_iter, params):
    X, X_test, _ = id_features(train, test)
    y, y_test = train.rating.to_numpy(float), test.rating.to_numpy(float)
    start = time.perf_counter()
    est = FMRegressor(solver="als", n_factors=RANK, max_iter=n_iter, init_std=0.1, tol=None,
                      random_state=SEED, **params).fit(X, y)
    seconds = time.perf_counter() - start
    return {"rmse": rmse(est.predict(X_test), y_test), "seconds": seconds,
            "seconds_per_iteration": seconds / n_iter}


def als_u1(n_iter, grid):
    """(c): choose the regularisation on a validation split of u1.base, report on u1.test."""
    base, test = read_split(1)
    inner, valid = train_test_split(base, test_size=0.1, random_state=SEED)
    trials = [{"params": p, **{f"validation_{k}": v for k, v in
                               fit_als(inner, valid, n_iter, p).items()}} for p in grid]
    best = min(trials, key=lambda t: t["validation_rmse"])
    final = fit_als(base, test, n_iter, best["params"])
    print("ALS u1", best["params"], round(final["rmse"], 4),
          f"{final['seconds_per_iteration']:.4f} s/iteration")
    return {"n_iter": n_iter, "init_std": 0.1, "chosen": best["params"],
            "test_rmse": final["rmse"], "fit_seconds": final["seconds"],
            "seconds_per_iteration": final["seconds_per_iteration"], "trials": trials}


def summary(results):
    """The rows of the run's summary table."""
    myfm_name = f"myFM {myfm.__version__}"
    ids = results["mcmc_ids"]
    per_iter = {lib: ids["mean"][lib]["mean_seconds"] / ids["n_iter"]
                for lib in ("fmlearn", "myFM")}
    rows = [summary_row(
        "MovieLens 100K", "regression",
        f"MCMC k={RANK}, {ids['n_iter']} samples, mean of {len(ids['splits'])} splits",
        "test RMSE", ids["mean"]["fmlearn"]["mean_test_rmse"], per_iter["fmlearn"], "iteration",
        [peer(myfm_name, ids["mean"]["myFM"]["mean_test_rmse"], per_iter["myFM"],
              speedup=ids["mean"]["speedup_over_myFM"])])]
    side = results["mcmc_u3_side_information"]
    fits = side["side_information"]
    rows.append(summary_row(
        "MovieLens 100K u3, side information", "regression",
        f"MCMC k={RANK}, {side['n_iter']} samples", "test RMSE", fits["fmlearn"]["test_rmse"],
        fits["fmlearn"]["seconds_per_iteration"], "iteration",
        [peer(myfm_name, fits["myFM"]["test_rmse"], fits["myFM"]["seconds_per_iteration"],
              speedup=speedups([fits["fmlearn"]["seconds"]], [fits["myFM"]["seconds"]])),
         peer("myFM, published", QUOTED["targets"]["mcmc_side_information_u3_rmse"], None,
              source="myFM's documentation")]))
    als = results["als_u1"]
    rows.append(summary_row(
        "MovieLens 100K u1", "regression", f"ALS k={RANK}, {als['n_iter']} sweeps", "test RMSE",
        als["test_rmse"], als["seconds_per_iteration"], "iteration",
        [peer("libFM ALS, tuned", QUOTED["targets"]["als_u1_rmse"], None, source="quoted")]
        if als["n_iter"] == 100 else []))  # the quoted run's length
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="u1 only, 40 MCMC samples, 20 ALS sweeps, two ALS candidates")
    args = parser.parse_args()
    splits, mcmc_iter, als_iter = ((1,), 40, 20) if args.quick else ((1, 2, 3, 4, 5), 200, 100)
    train, test = read_split(1)
    X, _, sizes = id_features(train, test)
    warm_up(X, train.rating.to_numpy(float), groups_of(*sizes))
    burn_in, on_valid = choose_mcmc_burn_in(mcmc_iter)
    results = {"mcmc_burn_in_on_u1_validation": {"chosen": burn_in, "validation_rmse": on_valid},
               "mcmc_ids": mcmc_splits(splits, mcmc_iter, burn_in)}
    results["mcmc_u3_side_information"] = mcmc_side_information(mcmc_iter, not args.quick,
                                                                burn_in)
    results["als_u1"] = als_u1(als_iter, ALS_GRID[::3] if args.quick else ALS_GRID)
    write_results("bayes_movielens" + ("_quick" if args.quick else ""),
                  {"data": "MovieLens 100K, GroupLens splits u1..u5", "n_factors": RANK,
                   "seed": SEED, "quoted": QUOTED, "results": results},
                  summary(results))


if __name__ == "__main__":
    main()
