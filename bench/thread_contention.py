"""Why a second SGD thread pays less at small n_factors: what the machine allows, against what
the epoch gets, on rows whose features are shared by both threads or not.

- ``random_lines``: each thread adds 1 to a float32 in random 64-byte lines of a 1 GiB array
  (its own xorshift stream, no thread touching the same line twice on purpose): the rate of
  independent random read-modify-writes, lines per second, one thread and two. A latency-bound
  epoch can speed up by as much as this ratio.
- ``epochs``: SGD epochs (AdaGrad, float32, squared loss, features renumbered as a fit does) on
  one and two threads alternating, on rows of 10 one-hot fields over 1,000,000 features drawn
  with power-law frequencies (``synthetic.planted_rows``: frequent features shared by the
  threads) and drawn uniformly (no feature frequent), at ``n_factors`` 8 and 64.

Writes results/thread_contention.json (``--quick``: 300,000 rows, one pair).

    python bench/thread_contention.py [--quick]
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp
from common import epoch_timer, speedups, spread, write_results
from numba import njit, prange
from synthetic import planted_rows

from fmlearn._threads import numba_threads

LINES_ARRAY = 2**28  # float32 entries: 1 GiB
UPDATES = 10_000_000  # per thread and run


@njit(parallel=True, cache=True)
def random_line_updates(table, n_updates, n_streams, seed):
    """Add 1 to the first float of ``n_updates`` random 64-byte lines of ``table`` in each of
    ``n_streams`` streams (one per thread); the line count must be a power of two."""
    mask = np.uint64(table.shape[0] // 16 - 1)
    for t in prange(n_streams):
        x = np.uint64(seed + 1) * np.uint64(2654435761) + np.uint64(t + 1) * np.uint64(97531)
        for _ in range(n_updates):
            x ^= x << np.uint64(13)
            x ^= x >> np.uint64(7)
            x ^= x << np.uint64(17)
            table[(x & mask) * np.uint64(16)] += 1.0


def line_rates(pairs):
    """Random line updates per second with one and two threads, alternating, ``pairs`` each."""
    table = np.zeros(LINES_ARRAY, dtype=np.float32)
    seconds = {1: [], 2: []}
    for threads in seconds:
        with numba_threads(threads):
            random_line_updates(table, 1000, threads, 0)  # compile, fault the pages in
    for p in range(pairs):
        for threads in seconds:
            with numba_threads(threads):
                start = time.perf_counter()
                random_line_updates(table, UPDATES, threads, p)
                seconds[threads].append((time.perf_counter() - start) / threads)
    return {"lines_per_second": {str(t): spread([UPDATES / s for s in v])
                                 for t, v in seconds.items()},
            "two_over_one": speedups(seconds[2], seconds[1])}


def uniform_rows(n_rows, n_fields=10, n_features=1_000_000, seed=0):
    """Rows of ``n_fields`` one-hot fields whose features are drawn uniformly; random targets."""
    rng = np.random.default_rng(seed)
    width = n_features // n_fields
    columns = rng.integers(0, width, (n_rows, n_fields)) + np.arange(n_fields) * width
    X = sp.csr_matrix((np.ones(columns.size, np.float32), columns.ravel().astype(np.int32),
                       np.arange(0, columns.size + 1, n_fields)), shape=(n_rows, n_features))
    return X, rng.normal(size=n_rows).astype(np.float32)


def epoch_pairs(X, y, k, pairs):
    """SGD epochs on one and on two threads alternating (one model each)."""
    epochs = {threads: epoch_timer(X, y, k, threads, "adagrad") for threads in (1, 2)}
    seconds = {threads: [] for threads in epochs}
    for _ in range(pairs):
        for threads, epoch in epochs.items():
            seconds[threads].append(epoch())
    return {"seconds_per_epoch": {str(t): spread(s) for t, s in seconds.items()},
            "two_over_one": speedups(seconds[2], seconds[1])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_rows, pairs = (300_000, 1) if args.quick else (3_000_000, 3)
    results = {"random_lines": line_rates(pairs + 2), "rows": n_rows, "epochs": {}}
    print("random lines, two threads over one:", results["random_lines"]["two_over_one"],
          flush=True)
    for name, rows in (("power_law", planted_rows), ("uniform", uniform_rows)):
        X, y = rows(n_rows)
        for k in (8, 64):
            point = epoch_pairs(X, y.astype(np.float32), k, pairs)
            results["epochs"][f"{name}_k{k}"] = point
            print(f"{name}, k={k}: two threads over one {point['two_over_one']}", flush=True)
    write_results("thread_contention" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
