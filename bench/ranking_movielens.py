"""Top-10 recommendations on MovieLens 100K u1: BPR (FMRanker) against the rating model and the
most-popular baseline. Writes bench/results/ranking_movielens.json.

Protocol: train on u1.base; for every user with test ratings, recommend 10 items among those
she has not rated in u1.base; the relevant items are her u1.test items rated 4 or 5.
- BPR: FMRanker on every (user, item) pair, relevance 1 for the items rated in u1.base and 0
  for the others, grouped by user (one sampled unrated item per rated one, every epoch).
- Rating model: FMRegressor (MCMC, k=10, 100 samples) on the u1.base ratings; items ranked by
  predicted rating.
- Most popular: items ranked by their number of ratings in u1.base.

    python bench/ranking_movielens.py [--quick]
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp
from common import require, write_results

from fmlearn import FMRanker, FMRegressor
from fmlearn.recommend import (mean_average_precision_at_k, ndcg_at_k, precision_at_k,
                               recall_at_k, recommend)

N_USERS, N_ITEMS, K = 943, 1682, 10


def one_hot_rows(users, items):
    n = users.shape[0]
    return sp.csr_matrix((np.ones(2 * n, np.float32), (np.repeat(np.arange(n), 2),
                          np.column_stack([users, N_USERS + items]).ravel())),
                         shape=(n, N_USERS + N_ITEMS))


def metrics(top, relevant):
    return {"precision@10": precision_at_k(top, relevant, K), "recall@10": recall_at_k(top, relevant, K),
            "ndcg@10": ndcg_at_k(top, relevant, K),
            "map@10": mean_average_precision_at_k(top, relevant, K)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    base, test = require("ml-100k/u1.base", "ml-100k/u1.test")
    train, test = np.loadtxt(base, dtype=np.int64), np.loadtxt(test, dtype=np.int64)
    tu, ti, tr = train[:, 0] - 1, train[:, 1] - 1, train[:, 2]
    seen = [set() for _ in range(N_USERS)]
    for u, i in zip(tu, ti):
        seen[u].add(i)
    liked = [set() for _ in range(N_USERS)]
    for u, i, r in test[:, :3]:
        if r >= 4:
            liked[u - 1].add(i - 1)
    users = np.array([u for u in range(N_USERS) if liked[u]])
    relevant = [liked[u] for u in users]
    exclude = [sorted(seen[u]) for u in users]
    user_rows = sp.eye(N_USERS + N_ITEMS, format="csr", dtype=np.float32)[users]
    catalogue = sp.eye(N_USERS + N_ITEMS, format="csr", dtype=np.float32)[N_USERS:]
    results = {}

    counts = np.bincount(ti, minlength=N_ITEMS).astype(float)
    popular = []
    for u in users:
        ranked = np.argsort(-counts, kind="stable")
        popular.append([i for i in ranked[:K + len(seen[u])] if i not in seen[u]][:K])
    results["most_popular"] = metrics(popular, relevant)

    start = time.perf_counter()
    rating = FMRegressor(solver="mcmc", n_factors=10, max_iter=20 if args.quick else 100,
                         init_std=0.1, random_state=1).fit(one_hot_rows(tu, ti), tr.astype(float))
    top, _ = recommend(rating, user_rows, catalogue, n=K, exclude=exclude)
    results["rating_model_mcmc"] = {**metrics(top, relevant),
                                    "fit_seconds": time.perf_counter() - start}

    all_users = np.repeat(np.arange(N_USERS), N_ITEMS)
    all_items = np.tile(np.arange(N_ITEMS), N_USERS)
    rated = np.zeros(N_USERS * N_ITEMS, dtype=np.int8)
    rated[tu * N_ITEMS + ti] = 1
    start = time.perf_counter()
    ranker = FMRanker(n_factors=32, max_iter=10 if args.quick else 60, tol=None, eta0=0.05,
                      reg_factors=1e-4, reg_linear=1e-4, random_state=0, n_jobs=2)
    ranker.fit(one_hot_rows(all_users, all_items), rated, groups=all_users)
    top, _ = recommend(ranker, user_rows, catalogue, n=K, exclude=exclude)
    results["bpr_fmranker"] = {**metrics(top, relevant), "fit_seconds": time.perf_counter() - start,
                               "epochs": ranker.n_iter_}
    for name, values in results.items():
        print(f"{name:>20}: precision@10 {values['precision@10']:.4f}, "
              f"NDCG@10 {values['ndcg@10']:.4f}")
    write_results("ranking_movielens" + ("_quick" if args.quick else ""),
                  {"users_evaluated": int(users.shape[0]), "results": results})


if __name__ == "__main__":
    main()
