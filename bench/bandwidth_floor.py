"""The physical floor of an SGD epoch: this machine's memory bandwidth and the bytes an epoch
must move, against the measured epoch time (n_factors=64, float32, AdaGrad).

Bandwidth is measured with a STREAM-style triad ``a = b + s c`` over 512 MiB arrays of float32
(counted as 3 arrays moved, STREAM's convention), compiled by numba, with 1 and 2 threads; the
best of 5 runs at the start, and the best of 3 again before each round of epochs, whose epochs
are also reported over the per-touch floor at their own round's triad (the shared machine's
bandwidth drifts over the minutes of a run). The bytes of an epoch are those of the rows (``indptr``, ``indices``, ``data``,
target and weight) plus, for the parameters, a read and a write of ``[w_j, v_j]`` and of their
AdaGrad accumulators, 16 (k + 1) bytes, counted two ways:

- ``unique``: once per feature present in the data: the least any implementation must move
  from memory, so the floor;
- ``per_touch``: once per non-zero, as if no parameter row stayed in cache between two rows
  holding it.

Beside the floor, the epoch's own arithmetic: one thread running the same kernel over as many
non-zeros in rows of ten features drawn from 1,000, whose parameters stay in the second-level
cache, divided by the threads (``in_l2``: the epoch without misses beyond L2 and with perfect
scaling over threads). An epoch close to it and far above the bandwidth floor is bound by
arithmetic, not by memory.

The epoch is timed in five variants, one model each, run in turn (A B C D E A B C D E ...):
with the features renumbered by falling frequency (``fmlearn.solvers.feature_order``), with
the rows of the parameters a few non-zeros ahead prefetched (``fmlearn.kernels.prefetch``),
with both, with both and the parameters packed (each feature's factors, weight and AdaGrad
sums in one row, ``fmlearn.kernels.sgd.pack_rows``: what a fit over a copy of its rows does
when factors and sums exceed ``OUT_OF_CACHE_BYTES`` and the rows visit
``PACK_FROM_VISITS_PER_FEATURE`` non-zeros per feature) and with none (what it does below).
The epoch reported is the variant a fit picks.

Data: frappe's reconstructed train file (../shared/data/frappe) and a synthetic file of 2e7 rows
(10 one-hot fields over 1,000,000 features with power-law frequencies, planted FM; 1e6 rows with
``--quick``), each in memory.

``--rule`` runs only the sweep of model sizes that places ``OUT_OF_CACHE_BYTES``
(``results/bandwidth_floor_rule.json``).

    python bench/bandwidth_floor.py [--quick | --rule]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (epoch_seconds, epoch_timer, load_frappe, speedups, spread,  # noqa: E402
                    write_results)

from synthetic import planted_rows  # noqa: E402

from fmlearn._threads import numba_threads  # noqa: E402
from fmlearn.solvers import sgd  # noqa: E402

K = 64
STREAM_ELEMENTS = 2**27  # 512 MiB of float32 per array


@njit(parallel=True, cache=True)
def triad(a, b, c, s):
    for i in prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


def bandwidth(n_threads, repeats=5):
    """Bytes per second of the triad with ``n_threads`` threads (best of ``repeats``)."""
    a, b, c = (np.full(STREAM_ELEMENTS, v, dtype=np.float32) for v in (0.0, 1.0, 2.0))
    best = np.inf
    with numba_threads(n_threads):
        triad(a, b, c, np.float32(3.0))
        for _ in range(repeats):
            start = time.perf_counter()
            triad(a, b, c, np.float32(3.0))
            best = min(best, time.perf_counter() - start)
    return 3 * a.nbytes / best


def epoch_bytes(X, k):
    """Bytes an SGD epoch over ``X`` moves: rows plus parameters, ``unique`` and ``per_touch``."""
    rows = X.indptr.nbytes + X.indices.nbytes + X.data.nbytes + 2 * 4 * X.shape[0]
    per_parameter_row = 16 * (k + 1)
    unique = int(np.count_nonzero(np.bincount(X.indices, minlength=X.shape[1])))
    return {"rows": rows, "unique_features": unique,
            "unique": rows + unique * per_parameter_row,
            "per_touch": rows + X.nnz * per_parameter_row}


def in_cache_rows(nnz, n_fields=10, per_field=100, seed=0):
    """``(X, y)``: ``nnz // n_fields`` rows, each one feature drawn uniformly from each of
    ``n_fields`` fields of ``per_field`` features (values uniform in [0.5, 1.5]), random
    targets: an epoch's arithmetic with its parameters (0.5 MB at k=64) in the
    second-level cache and few features shared by consecutive rows."""
    rng = np.random.default_rng(seed)
    n_rows = nnz // n_fields
    columns = rng.integers(0, per_field, (n_rows, n_fields)) + np.arange(n_fields) * per_field
    X = sp.csr_matrix((rng.uniform(0.5, 1.5, columns.size).astype(np.float32),
                       columns.ravel().astype(np.int32),
                       np.arange(0, columns.size + 1, n_fields)),
                      shape=(n_rows, n_fields * per_field))
    return X, rng.normal(size=n_rows).astype(np.float32)


LAYOUTS = {  # variant: (features renumbered by frequency, rows ahead prefetched, packed)
    "renumbered_prefetch_packed": (True, True, True), "renumbered_prefetch": (True, True, False),
    "renumbered": (True, False, False), "prefetch": (False, True, False),
    "neither": (False, False, False)}
QUICK_LAYOUTS = ("renumbered_prefetch_packed", "neither")  # --quick: every change or none


def layout_epochs(X, y, n_threads, repeats, variants):
    """Epochs with and without each change for out-of-cache parameters (the ``variants``
    of ``LAYOUTS``), one model per variant, run in turn (A B C D E A B C D E ...): ``spread``
    of each, each one's speed-up over ``neither`` (``speedups``), and the median of the
    variant a fit picks for
    ``X`` (every change above ``OUT_OF_CACHE_BYTES`` of factors and sums, none below). Before
    each round the triad's bandwidth is measured again (best of 3), so that each round's
    epochs have a floor of their own moment on this shared machine: ``round_triads`` in
    bytes per second, and ``picked_seconds``, the picked variant's epoch of each round."""
    default = sgd.OUT_OF_CACHE_BYTES
    default_pack = sgd.PACK_FROM_VISITS_PER_FEATURE
    epochs = {variant: epoch_timer(X, y, K, n_threads, "adagrad", renumber=renumber)
              for variant, (renumber, _, _) in LAYOUTS.items() if variant in variants}
    seconds = {variant: [] for variant in variants}
    triads = []
    try:
        for _ in range(repeats):
            triads.append(bandwidth(n_threads, 3))
            for variant in variants:
                _, prefetch, pack = LAYOUTS[variant]
                sgd.OUT_OF_CACHE_BYTES = 0 if prefetch else np.inf
                sgd.PACK_FROM_VISITS_PER_FEATURE = default_pack if pack else np.inf
                seconds[variant].append(epochs[variant]())
    finally:
        sgd.OUT_OF_CACHE_BYTES = default
        sgd.PACK_FROM_VISITS_PER_FEATURE = default_pack
    picked = "renumbered_prefetch_packed" if sgd.packs(X, 4 * K * X.shape[1]) else "neither"
    return {"picked": picked, "epoch_seconds": spread(seconds[picked])["median"],
            "round_triads": triads, "picked_seconds": seconds[picked],
            **{variant: spread(times) for variant, times in seconds.items()},
            "speedup_over_neither": {variant: speedups(seconds[variant], seconds["neither"])
                                     for variant in variants if variant != "neither"}}


RULE_SIZES = ((1_000_000, 4), (250_000, 8), (100_000, 16), (50_000, 16), (20_000, 32))


def rule_sweep(repeats=3):
    """Where ``OUT_OF_CACHE_BYTES`` should switch: epochs over 1e6 synthetic rows with both
    changes and with neither, in turn, for models of 5 to 30 MB of factors and sums
    (``RULE_SIZES``: features, n_factors), one thread."""
    points = []
    default = sgd.OUT_OF_CACHE_BYTES
    try:
        for n_features, k in RULE_SIZES:
            X, y = planted_rows(1_000_000, n_features=n_features, seed=0)
            y = y.astype(np.float32)
            epochs = {"renumbered_prefetch": epoch_timer(X, y, k, 1, "adagrad", renumber=True),
                      "neither": epoch_timer(X, y, k, 1, "adagrad", renumber=False)}
            seconds = {variant: [] for variant in epochs}
            for _ in range(repeats):
                for variant, epoch in epochs.items():
                    sgd.OUT_OF_CACHE_BYTES = 0 if variant != "neither" else np.inf
                    seconds[variant].append(epoch())
            point = {"n_features": n_features, "n_factors": k,
                     "factor_and_sum_bytes": 2 * 4 * n_features * k,
                     **{variant: spread(times) for variant, times in seconds.items()},
                     "speedup": speedups(seconds["renumbered_prefetch"], seconds["neither"])}
            points.append(point)
            print(f"{point['factor_and_sum_bytes'] / 2**20:.1f} MiB of factors and sums: both "
                  f"changes {point['speedup']['median']:.2f}x", flush=True)
    finally:
        sgd.OUT_OF_CACHE_BYTES = default
    return {"out_of_cache_bytes": default, "points": points}


def case(name, X, y, bandwidths, repeats, variants):
    result = {"n_rows": X.shape[0], "nnz": int(X.nnz), "n_features": X.shape[1],
              "bytes": epoch_bytes(X, K), "threads": {}}
    result["in_l2_one_thread_seconds"] = in_l2 = epoch_seconds(
        *in_cache_rows(X.nnz), K, 1, "adagrad", repeats)["median"]
    for n_threads, bw in bandwidths.items():
        layouts = layout_epochs(X, y, n_threads, repeats, variants)
        seconds = layouts.pop("epoch_seconds")
        references = {kind: result["bytes"][kind] / bw for kind in ("unique", "per_touch")}
        references["in_l2"] = in_l2 / n_threads
        # Each round's epoch over the per-touch floor at that round's triad.
        by_round = spread([epoch * triad / result["bytes"]["per_touch"] for epoch, triad
                           in zip(layouts["picked_seconds"], layouts["round_triads"])])
        result["threads"][str(n_threads)] = {
            "epoch_seconds": seconds,
            "floor_seconds": {kind: references[kind] for kind in ("unique", "per_touch")},
            "multiple_of_floor": {kind: seconds / references[kind]
                                  for kind in ("unique", "per_touch")},
            "multiple_of_per_touch_floor_by_round": by_round,
            "in_l2_seconds": references["in_l2"],
            "multiple_of_in_l2": seconds / references["in_l2"], **layouts}
        print(f"{name}, {n_threads} thread(s): epoch {seconds:.3f} s; " + "; ".join(
            f"{kind} {f:.4f} s (x{seconds / f:.2f})" for kind, f in references.items())
            + "; speed-ups over neither change: " + ", ".join(
                f"{variant} {up['median']:.2f}x"
                for variant, up in layouts["speedup_over_neither"].items())
            + f" (picked: {layouts['picked']}); per round, over the per-touch floor at "
            f"its triad: {by_round['min']:.2f} / {by_round['median']:.2f} / "
            f"{by_round['max']:.2f}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rule", action="store_true",
                        help="only the sweep of model sizes around OUT_OF_CACHE_BYTES")
    args = parser.parse_args()
    if args.rule:
        write_results("bandwidth_floor_rule", rule_sweep())
        return
    variants = QUICK_LAYOUTS if args.quick else tuple(LAYOUTS)
    bandwidths = {n: bandwidth(n) for n in (1, 2)}
    print("triad bandwidth:", {n: f"{bw / 1e9:.1f} GB/s" for n, bw in bandwidths.items()})
    (X, y), _, _ = load_frappe()
    results = {"bandwidth_bytes_per_s": {str(n): bw for n, bw in bandwidths.items()},
               "n_factors": K, "dtype": "float32", "learning_rate": "adagrad",
               "frappe_train": case("frappe", X, y, bandwidths, 5, variants)}
    n_rows = 1_000_000 if args.quick else 20_000_000
    chunk = min(n_rows, 2_000_000)
    chunks = [planted_rows(chunk, n_features=1_000_000, seed=seed)
              for seed in range(n_rows // chunk)]
    X, y = sp.vstack([c[0] for c in chunks], format="csr"), np.concatenate([c[1] for c in chunks])
    del chunks
    results["synthetic"] = case(f"synthetic {n_rows:.0e} rows", X, y.astype(np.float32),
                                bandwidths, 3, variants)
    write_results("bandwidth_floor" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
