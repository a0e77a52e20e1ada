"""FMRecommender at catalogue scale on a synthetic interaction matrix (generated here, never
stored in the repository): peak memory against the input's size, seconds per epoch, and
recommend() for 10,000 users against a brute-force matrix product on the same factors.
Writes bench/results/topn_scale.json (--name another).

Protocol: n_users x n_items with about n_interactions stored entries (duplicates summed):
each user's count drawn multinomially (uniform over users), each item drawn with probability
proportional to 1 / (rank + 10) ** 0.9 (power-law popularity). The matrix is generated in a
child process and handed over in a temporary .npz, so that the fitting process's peak
resident memory (resource.getrusage ru_maxrss) holds the input and the fits only (every
fit is done before any recommend). Each loss is fitted for --epochs epochs (seconds per
epoch: the fit's over the epochs, set-up included) with 2 threads, k=32. recommend() of the
first loss's model takes the top 10 of 10,000 random users with their training items
filtered, against numpy: (Q_users @ Q_items^T + item terms) in batches of 1,000 users,
training items set to -inf, argpartition and a sort of the 10 best; the two are timed in
--repeats alternating pairs.

    python bench/topn_scale.py [--interactions 1e7] [--users 1e6] [--items 1e5] [--epochs 1]
        [--losses warp,bpr] [--repeats 3] [--name topn_scale]
"""
import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from common import alternate, spread, write_results

from fmlearn import FMRecommender

K, THREADS, QUERIED = 10, 2, 10_000


def generate(n_users, n_items, n_interactions, seed=0):
    """The synthetic CSR (float32 ones, int32 indices, duplicates summed)."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_interactions, np.full(n_users, 1 / n_users))
    cdf = np.cumsum(1 / (np.arange(n_items) + 10.0) ** 0.9)
    cdf /= cdf[-1]
    items = np.empty(n_interactions, np.int32)
    for start in range(0, n_interactions, 10**7):
        stop = min(n_interactions, start + 10**7)
        items[start:stop] = np.minimum(np.searchsorted(cdf, rng.random(stop - start)),
                                       n_items - 1)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    liked = sp.csr_matrix((np.ones(n_interactions, np.float32), items, indptr),
                          shape=(n_users, n_items))
    liked.sum_duplicates()
    return liked


def peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def brute_force(model, item_rows, users, liked):
    """Top-K by numpy: each side's factor sums and linear terms, one product per batch."""
    factors, coef = model.model_.factors, model.model_.coef
    user_rows = model._user_rows()[users]
    q_items, q_users = item_rows @ factors, user_rows @ factors
    squares = item_rows.multiply(item_rows) @ (factors ** 2).sum(1)
    item_terms = item_rows @ coef + 0.5 * ((q_items ** 2).sum(1) - squares)
    top = np.empty((users.shape[0], K), np.int64)
    for start in range(0, users.shape[0], 1000):
        block = q_users[start:start + 1000] @ q_items.T + item_terms
        seen = liked[users[start:start + 1000]].tocoo()
        block[seen.row, seen.col] = -np.inf
        best = np.argpartition(-block, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(block, best, 1), axis=1, kind="stable")
        top[start:start + 1000] = np.take_along_axis(best, order, 1)
    return top


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=float, default=1e6)
    parser.add_argument("--items", type=float, default=1e5)
    parser.add_argument("--interactions", type=float, default=1e7)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--losses", default="warp,bpr")
    parser.add_argument("--repeats", type=int, default=3, help="alternating recommend pairs")
    parser.add_argument("--name", default="topn_scale", help="bench/results/<name>.json")
    parser.add_argument("--generate-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = int(args.users), int(args.items)
    if args.generate_to:
        liked = generate(*shape, int(args.interactions))
        np.savez(args.generate_to, data=liked.data, indices=liked.indices, indptr=liked.indptr)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "liked.npz"
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--users", str(args.users), "--items",
                        str(args.items), "--interactions", str(args.interactions),
                        "--generate-to", str(path)], check=True)
        generate_seconds = time.perf_counter() - start
        with np.load(path) as arrays:
            liked = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                  shape=shape)
    input_bytes = liked.data.nbytes + liked.indices.nbytes + liked.indptr.nbytes
    results = {"n_users": shape[0], "n_items": shape[1], "nnz": int(liked.nnz),
               "input_bytes": int(input_bytes), "generate_seconds": generate_seconds,
               "peak_bytes_after_load": peak_bytes(), "losses": {}}
    print(results, flush=True)
    models = {}
    for loss in args.losses.split(","):  # every fit before any recommend: its peak is the fit's
        model = FMRecommender(loss=loss, n_factors=32, max_iter=args.epochs, n_jobs=THREADS,
                              random_state=0)
        start = time.perf_counter()
        model.fit(liked)
        fit_seconds = time.perf_counter() - start
        models[loss] = model
        results["losses"][loss] = {
            "fit_seconds": fit_seconds, "seconds_per_epoch": fit_seconds / args.epochs,
            "peak_bytes_after_fit": peak_bytes(),
            "parameter_bytes": int(model.model_.factors.nbytes + model.model_.coef.nbytes)}
        print(loss, results["losses"][loss], flush=True)
    users = np.random.default_rng(1).choice(shape[0], QUERIED, replace=False)
    for loss, model in list(models.items())[:1]:  # the same shapes for every loss
        tops, seconds = alternate({
            "recommend": lambda m=model: m.recommend(users, N=K)[0],
            "brute_force": lambda m=model: brute_force(m, m._item_rows(), users, liked)},
            args.repeats)
        ours, theirs = tops["recommend"], tops["brute_force"]
        results["losses"][loss].update({
            "recommend_seconds": spread(seconds["recommend"]),
            "brute_force_seconds": spread(seconds["brute_force"]),
            "recommend_over_brute_force": [a / b for a, b in zip(seconds["recommend"],
                                                                  seconds["brute_force"])],
            "same_top10_fraction": float(np.mean([len(set(a) & set(b)) / K
                                                  for a, b in zip(ours, theirs)]))})
        print(loss, results["losses"][loss], flush=True)
    write_results(args.name, {"protocol": " ".join(__doc__.split("\n\n")[1].split()),
                                 "threads": THREADS, "epochs": args.epochs, "results": results})


if __name__ == "__main__":
    main()
