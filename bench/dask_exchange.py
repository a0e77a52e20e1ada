"""A round's exchange on Dask, sending out and combining, star against tree, and the SGD epoch
projected from it to 128 workers. Writes bench/results/dask_exchange.json.

Measured on LocalClusters of 2, 3 and 4 worker processes of one thread (all a 2-core machine
allows), one partition per worker, every task that crosses the network sleeping 10 ms first
(a simulated hop; Dask has no latency option of its own), the median of the rounds, the four
shapes alternating:

- combining: each partition makes the steps of 100,000 touched rows (k = 16); the driver
  gathers them all and adds them (a star) or the workers add them pairwise
  (``fmlearn.dask._solver.tree_sum``) and the driver gathers the root; the driver applies the
  sum;
- sending: each partition gets 50,000 parameter rows with their AdaGrad sums, the same rows
  for all, and takes its own: from the driver, a task per partition (a star), or as one copy
  doubled from worker to worker (``fmlearn.dask._solver.tree_share``, what a round of
  ``DaskFMRegressor`` uses when it pays, ``fmlearn.dask._sgd.by_tree``), each copy a hop.

The projection: the SGD epoch for the synthetic set of ``bench/dask_cluster.py`` at 100 times
its rows per feature, 1 to 128 workers, one partition each, the compute per row measured there
(``bench/results/dask_cluster.json``), the touched rows counted from its features'
frequencies, the rounds' costs fitted to the measured ones (star ``a + b W``, tree
``a + b levels``) and scaled by the rows they carry, plus their bytes over a 10 Gbit/s link;
for one round per epoch and for the default rounds (``local_steps="auto"``).
``--projection`` recomputes it from the kept measurements (no cluster).

    python bench/dask_exchange.py [--quick] [--projection]
"""
import argparse
import contextlib
import functools
import sys
import time
from pathlib import Path

import numpy as np
from dask.sizeof import sizeof
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import kept_results, write_results  # noqa: E402
from synthetic import planted_rows  # noqa: E402

from fmlearn.dask import _solver  # noqa: E402
from fmlearn.dask._sgd import (Steps, add_steps, apply_steps, by_tree, compact,  # noqa: E402
                               round_sizes, union)
from fmlearn.model import FMModel  # noqa: E402
from fmlearn.solvers.sgd import SGDState  # noqa: E402

NETWORK_BYTES_PER_S = 1.25e9  # the projection's assumed link: 10 Gbit/s Ethernet
EXCHANGE_WORKERS = (2, 3, 4)  # worker processes this 2-core machine allows
EXCHANGE_LATENCY = 0.01  # seconds each task crossing the network sleeps: a simulated hop
EXCHANGE_SCALE = 100  # the synthetic set at 100 times its rows per feature
PROJECTED_EXCHANGE_WORKERS = (1, 2, 4, 8, 16, 32, 64, 128)
K = 16


def random_steps(rng, n_features, k, touched):
    """:class:`Steps` of ``touched`` random features of ``n_features`` (what one partition
    sends; float32 parameters, as a fit sends them)."""
    f = np.sort(rng.choice(n_features, touched, replace=False))
    rows = [rng.random(touched, np.float32), rng.random((touched, k), np.float32)]
    return Steps(f, np.ones(touched, np.int64), np.full((touched, k + 1), 0.5), *rows, *rows,
                 touched, 0.5, 0.0, np.zeros(1, np.float32), 0.0)


def combine_costs(n_features, k, touched, repeats=5):
    """Seconds of one pairwise combination (``add_steps``) of two partitions' steps of
    ``touched`` rows each, and of the driver applying one such sum (``apply_steps``); the
    least of ``repeats``."""
    rng = np.random.default_rng(0)
    model = FMModel.initial(n_features, k, 0.1, np.float32, rng)
    state = SGDState.initial(model)
    a, b = random_steps(rng, n_features, k, touched), random_steps(rng, n_features, k, touched)
    add, apply = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        both = add_steps(a, b)
        add.append(time.perf_counter() - start)
        start = time.perf_counter()
        apply_steps(model, state, both, 0.05)
        apply.append(time.perf_counter() - start)
    return min(add), min(apply)


def with_latency(func, latency):
    """``func`` run after ``latency`` seconds: a task that pays a network hop's latency."""
    def slow(*args):
        time.sleep(latency)
        return func(*args)
    slow.__name__ = func.__name__
    return slow


@contextlib.contextmanager
def hop_latency(latency):
    """``_solver.tree_share``'s copies each paying ``latency`` (its task functions wrapped
    while the tasks are submitted: this script's functions travel by value)."""
    saved = _solver._pass, _solver._same
    _solver._pass, _solver._same = (with_latency(f, latency) for f in saved)
    try:
        yield
    finally:
        _solver._pass, _solver._same = saved


def exchange_round(client, workers, n_features, k, touched, latency, tree):
    """Seconds and driver-gathered bytes of one round's exchange on ``workers`` partitions:
    each makes its steps (a task paying ``latency``), then either the driver gathers them
    all, adds them and applies the sum (a star) or the workers add them pairwise
    (``tree_sum``, each combination a task paying ``latency``) and the driver gathers and
    applies the root."""
    model = FMModel.initial(n_features, k, 0.1, np.float32, np.random.default_rng(0))
    state = SGDState.initial(model)
    leaf = with_latency(random_steps, latency)
    start = time.perf_counter()
    leaves = [client.submit(leaf, np.random.default_rng(p), n_features, k, touched,
                            pure=False) for p in range(workers)]
    if tree:
        steps = client.gather(_solver.tree_sum(client, leaves, with_latency(add_steps, latency),
                                               "bench-combine"))
        gathered = sizeof(steps)
    else:
        parts = client.gather(leaves)
        gathered = sum(sizeof(p) for p in parts)
        steps = functools.reduce(add_steps, parts)
    apply_steps(model, state, steps, 0.05)
    return time.perf_counter() - start, gathered


def own_rows(rows):
    """A partition's parameter rows as sent to it alone: their count."""
    return rows[0].coef.shape[0]


def rows_of(shared, features):
    """A partition's parameter rows taken from the round's shared rows (as
    ``_sgd.train_from_rows`` takes them): their count."""
    ids, model, state = shared
    return compact(model, state, np.searchsorted(ids, features))[0].coef.shape[0]


def send_round(client, homes, n_features, k, touched, latency, tree):
    """Seconds of one round's send of the same ``touched`` parameter rows and their AdaGrad
    sums to a partition on each worker of ``homes``, each taking its rows: from the driver, a
    task per partition paying ``latency`` (a star), or one copy doubled from worker to worker
    (``tree_share``, each copy paying ``latency``)."""
    model = FMModel.initial(n_features, k, 0.1, np.float32, np.random.default_rng(0))
    state = SGDState.initial(model)
    features = np.sort(np.random.default_rng(1).choice(n_features, touched, replace=False))
    start = time.perf_counter()
    if tree:
        ids = union([features] * len(homes), n_features)
        with hop_latency(latency):
            copies = _solver.tree_share(client, homes, "bench-send", ids,
                                        *compact(model, state, ids))
        futures = [client.submit(rows_of, copies[h], features, workers=[h], pure=False)
                   for h in homes]
    else:
        futures = [client.submit(with_latency(own_rows, latency),
                                 compact(model, state, features), workers=[h], pure=False)
                   for h in homes]
    assert client.gather(futures) == [touched] * len(homes)
    return time.perf_counter() - start


def exchange_cases(n_features, k, touched, sent, latency, repeats):
    """Round seconds of combining and sending, star and tree, on LocalClusters of 2, 3 and 4
    worker processes (one thread each), alternating, the median of ``repeats`` each."""
    out = {}
    for workers in EXCHANGE_WORKERS:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.wait_for_workers(workers)
            homes = sorted(client.scheduler_info()["workers"])
            times = {"star": [], "tree": [], "star_send": [], "tree_send": []}
            case = out.setdefault(str(workers), {})
            for r in range(repeats + 1):
                for shape in ("star", "tree"):
                    seconds, gathered = exchange_round(client, workers, n_features, k, touched,
                                                       latency, shape == "tree")
                    send = send_round(client, homes, n_features, k, sent, latency,
                                      shape == "tree")
                    if r:  # the first round of each shape warms up
                        times[shape].append(seconds)
                        times[f"{shape}_send"].append(send)
                        case[f"{shape}_driver_gathered_bytes"] = gathered
            for shape, values in times.items():
                case[f"{shape}_round_seconds"] = float(np.median(values))
        print(f"exchange, {workers} workers: combining: star {case['star_round_seconds']:.3f} "
              f"s, tree {case['tree_round_seconds']:.3f} s; sending: star "
              f"{case['star_send_round_seconds']:.3f} s, tree "
              f"{case['tree_send_round_seconds']:.3f} s per round")
    return out


def touched_at(counts, n_rows, rows):
    """Expected features a partition of ``rows`` rows touches, from the rows holding each
    feature (``counts``) in a set of ``n_rows`` drawn alike: ``sum 1 - exp(-rows c / n)``."""
    return float(np.sum(-np.expm1(-rows * counts / n_rows)))


def levels(workers):
    """``ceil(log2 W)``: the levels of a tree over ``workers``."""
    return int(workers - 1).bit_length()


def exchange_projection(counts, n_rows, k, row_seconds, measured, touched_measured,
                        sent_measured):
    """Projected seconds per SGD epoch (one partition per worker) on the synthetic set at
    ``EXCHANGE_SCALE`` times its rows per feature, for ``PROJECTED_EXCHANGE_WORKERS``.

    Compute: ``row_seconds`` per row over n / W rows. The rounds' costs are fitted to the
    ``measured`` ones: combining by a star (the driver gathers, adds and applies) as
    ``a + b W``, by the tree as ``a + b ceil(log2 W)``, each scaled by the rows a partition
    touches against ``touched_measured``; sending by a star as ``a + b W`` scaled by the rows
    a partition touches, by the tree as ``a + b (1 + ceil(log2 W))`` (the upload and the
    levels) scaled by the union of the partitions' rows, both against ``sent_measured``;
    plus the bytes of the send's slowest path over one link (the star: W partitions' rows
    over the driver's; the tree: the union once per hop).

    One round per epoch: before (send and combine by star) and after (send by star, combine
    by tree; as built then). The default rounds (``local_steps="auto"``, an epoch after the
    first: at least 32 rounds of at most 100,000 rows per partition), combining by the tree
    and sending by star or tree as ``_sgd.by_tree`` chooses, and either alone."""
    n = EXCHANGE_SCALE * n_rows
    link_row = 4 * (k + 1) * 2  # a parameter row and its AdaGrad sums, float32
    w = np.array([int(x) for x in measured], dtype=np.float64)
    hops = 1 + np.array([levels(int(x)) for x in measured])

    def fit(x, key):
        return np.polyfit(x, [measured[str(int(v))][key] for v in w], 1)

    star, tree = fit(w, "star_round_seconds"), fit(hops - 1, "tree_round_seconds")
    star_send, tree_send = fit(w, "star_send_round_seconds"), fit(hops,
                                                                  "tree_send_round_seconds")
    out = {"fit": {"star_seconds_per_worker": star[0], "star_seconds_fixed": star[1],
                   "tree_seconds_per_level": tree[0], "tree_seconds_fixed": tree[1],
                   "star_send_seconds_per_worker": star_send[0],
                   "star_send_seconds_fixed": star_send[1],
                   "tree_send_seconds_per_hop": tree_send[0],
                   "tree_send_seconds_fixed": tree_send[1]}}
    n_features = counts.shape[0]

    def send(workers, rows):
        """Seconds of one round's send by star and by tree, partitions of ``rows`` rows."""
        touched = min(n_features, touched_at(counts, n_rows, rows))
        united = min(n_features, touched_at(counts, n_rows, workers * rows))
        by_star = (star_send[1] + star_send[0] * workers) * touched / sent_measured \
            + workers * touched * link_row / NETWORK_BYTES_PER_S
        hops = 1 + levels(workers)
        by_tree_ = (tree_send[1] + tree_send[0] * hops) * united / sent_measured \
            + hops * united * link_row / NETWORK_BYTES_PER_S
        chosen = by_tree([np.empty(round(touched))] * workers, np.empty(round(united)),
                         range(workers), n_features)
        return touched, united, by_star, by_tree_, by_tree_ if chosen else by_star

    def combine(workers, touched, shape):
        a = star if shape == "star" else tree
        return (a[1] + a[0] * (workers if shape == "star" else levels(workers))) \
            * touched / touched_measured

    for workers in PROJECTED_EXCHANGE_WORKERS:
        compute = row_seconds * n / workers
        touched, _, star_sent, _, _ = send(workers, n / workers)
        before = star_sent + combine(workers, touched, "star")
        after = star_sent + combine(workers, touched, "tree")
        sizes = round_sizes([n // workers] * workers, 10 * n, "auto")
        r_touched, r_union, r_star, r_tree, r_chosen = send(workers, sizes[0])
        r_combine = combine(workers, r_touched, "tree")
        out[str(workers)] = {
            "touched_features_per_partition": touched, "compute_seconds": compute,
            "exchange_seconds_before": before, "exchange_seconds_after": after,
            "epoch_seconds_before": compute + before, "epoch_seconds_after": compute + after,
            "auto_rounds": len(sizes), "auto_round_rows": sizes[0],
            "auto_touched_features_per_round": r_touched,
            "auto_union_features_per_round": r_union,
            "auto_star_send_seconds_per_round": r_star,
            "auto_tree_send_seconds_per_round": r_tree,
            "auto_combine_seconds_per_round": r_combine,
            "epoch_seconds_auto_star_send": compute + len(sizes) * (r_star + r_combine),
            "epoch_seconds_auto_tree_send": compute + len(sizes) * (r_tree + r_combine),
            "epoch_seconds_auto": compute + len(sizes) * (r_chosen + r_combine)}
    return out


def report(projected):
    for w in PROJECTED_EXCHANGE_WORKERS:
        p = projected[str(w)]
        print(f"projection x{EXCHANGE_SCALE}, {w} workers: one round {p['epoch_seconds_after']:.2f}"
              f" s; default rounds ({p['auto_rounds']} of {p['auto_round_rows']} rows) "
              f"{p['epoch_seconds_auto']:.2f} s (sending by star "
              f"{p['epoch_seconds_auto_star_send']:.2f} s, by tree "
              f"{p['epoch_seconds_auto_tree_send']:.2f} s)")


def synthetic_counts():
    """The rows holding each feature of the 2-million-row synthetic set, and its rows."""
    X, _ = planted_rows(2_000_000, n_features=100_000, seed=1)
    return np.bincount(X.indices, minlength=X.shape[1]), X.shape[0]


def compute_seconds_per_row():
    """The compute per row of the synthetic set's default run (bench/dask_cluster.py)."""
    kept = kept_results("dask_cluster")["projection_synthetic_sgd"]
    return kept["assumptions"]["measured_compute_seconds_per_row"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--projection", action="store_true",
                        help="the projection alone, from the kept measurements")
    args = parser.parse_args()
    counts, n_rows = synthetic_counts()
    row_seconds = compute_seconds_per_row()
    if args.projection:
        kept = kept_results("dask_exchange")
        projected = exchange_projection(counts, n_rows, K, row_seconds, kept["measured"],
                                        kept["touched_rows_per_partition"],
                                        kept["sent_rows_per_partition"])
    else:
        touched, sent = (20_000, 10_000) if args.quick else (100_000, 50_000)
        add, apply = combine_costs(counts.shape[0], K, touched)
        measured = exchange_cases(counts.shape[0], K, touched, sent, EXCHANGE_LATENCY,
                                  2 if args.quick else 5)
        projected = exchange_projection(counts, n_rows, K, row_seconds, measured, touched,
                                        sent)
        kept = {"protocol": f"LocalCluster of 2, 3, 4 worker processes x 1 thread on a shared "
                            f"2-core machine; combining: each partition's steps of {touched} "
                            f"rows of 100,000 (k={K}); sending: {sent} parameter rows and "
                            f"their AdaGrad sums to each partition; every task crossing the "
                            f"network sleeps {EXCHANGE_LATENCY} s first, a simulated hop; "
                            f"median of the rounds, the shapes alternating",
                "simulated_latency_seconds": EXCHANGE_LATENCY,
                "touched_rows_per_partition": touched, "sent_rows_per_partition": sent,
                "add_steps_seconds": add, "apply_steps_seconds": apply, "measured": measured}
    report(projected)
    kept["projection"] = {"rows": EXCHANGE_SCALE * n_rows,
                          "assumptions": {"driver_link_bytes_per_s": NETWORK_BYTES_PER_S,
                                          "compute_seconds_per_row": row_seconds},
                          **projected}
    write_results("dask_exchange" + ("_quick" if args.quick else ""), {"results": kept})


if __name__ == "__main__":
    main()
