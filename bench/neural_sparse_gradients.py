"""Sparse or dense embedding gradients in fmlearn.neural: CPU seconds per epoch of
NeuralFMClassifier (k=64, batch 2,048, Adam) with ``sparse_gradients`` True and False, on
random rows of 10 features among 5,000 to 320,000, the two fits alternating after a warm-up
(min/median/max of ``--repeats``), one torch thread. The rule behind ``sparse_gradients="auto"``
(sparse when the tables hold more than twice as many rows as a batch holds entries) comes from
where the two curves cross. Writes bench/results/neural_sparse_gradients.json.

    python bench/neural_sparse_gradients.py [--repeats 3] [--quick]
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch
from common import speedups, spread, write_results

from fmlearn.neural import NeuralFMClassifier

ROWS, PER_ROW, BATCH = 40_000, 10, 2048


def rows(n_features, rng):
    """``ROWS`` rows of ``PER_ROW`` distinct random features each, and random labels."""
    cols = np.sort(np.stack([rng.choice(n_features, PER_ROW, replace=False)
                             for _ in range(ROWS)]), 1)
    X = sp.csr_matrix((np.ones(cols.size, np.float32), cols.ravel(),
                       np.arange(0, cols.size + 1, PER_ROW)), shape=(ROWS, n_features))
    return X, rng.integers(2, size=ROWS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="two table sizes, one repeat")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    sizes = (5_000, 80_000) if args.quick else (5_000, 10_000, 20_000, 40_000, 80_000, 320_000)
    results = {}
    for n_features in sizes:
        X, y = rows(n_features, rng)
        fits = {s: NeuralFMClassifier(n_factors=64, batch_size=BATCH, max_iter=1, warm_start=True,
                                      random_state=0, device="cpu", sparse_gradients=s)
                for s in (True, False)}
        seconds = {True: [], False: []}
        for r in range(args.repeats + 1):
            for s, est in fits.items():
                start = time.process_time()
                est.fit(X, y)
                if r:  # the first epoch of each is the warm-up
                    seconds[s].append(time.process_time() - start)
        results[n_features] = {
            "table_rows_per_batch_entry": n_features / (BATCH * PER_ROW),
            "sparse": spread(seconds[True]), "dense": spread(seconds[False]),
            "sparse_speedup": speedups(seconds[True], seconds[False]),
            "auto_takes_sparse": bool(NeuralFMClassifier(batch_size=BATCH, max_iter=1)
                                      .fit(X[:BATCH * 4], y[:BATCH * 4]).sparse_gradients_)}
        print(n_features, {k: (round(v["median"], 3) if isinstance(v, dict) else v)
                           for k, v in results[n_features].items()}, flush=True)
    write_results("neural_sparse_gradients" + ("_quick" if args.quick else ""), {
        "protocol": __doc__.split("\n\n")[0].replace("\n", " "), "rows": ROWS,
        "entries_per_row": PER_ROW, "batch_size": BATCH, "results": results})


if __name__ == "__main__":
    main()
