"""One process against a Dask LocalCluster (2 workers x 1 thread), same data, same epochs.

For each case: wall time, test RMSE, the bytes Dask moved (its workers' own
``transfer_outgoing_bytes_total``, which counts the results the driver gathers, plus the
broadcasts of the model, sized by ``dask.sizeof``), and the compute seconds of each partition's
tasks from Dask's task stream. From those measurements, a projection of the SGD epoch time for
8, 32 and 128 workers (see docs/dask.md for the model and its assumptions).

MCMC (``--mcmc`` runs these alone, keeping the other cases in the results file): MovieLens
u1 by regression and by probit classification (ratings of 4 and 5 against the rest), in one
process and on a cluster of its own from the same seed: seconds and rounds (gathers) per
sweep, the test scores, and the largest difference of the two test predictions.

Cases: MovieLens 100K u1 (../shared/data/ml-100k) by SGD and by ALS, and a synthetic
recommender set (power-law one-hot fields, planted FM) of 2 million rows by SGD; the test RMSE
is also recorded after every epoch, to compare how fast the two converge. ``--sgd`` runs the
two SGD cases alone and replaces them in the results file, keeping the others.

The exchange alone (star against tree) and its projection to 128 workers:
``bench/dask_exchange.py``.

    python bench/dask_cluster.py [--quick] [--sgd | --mcmc]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from dask.sizeof import sizeof
from dask.utils import key_split
from distributed import Client, LocalCluster, get_task_stream

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import kept_results, movielens, write_results  # noqa: E402
from dask_exchange import NETWORK_BYTES_PER_S, combine_costs  # noqa: E402
from synthetic import planted_rows  # noqa: E402

from fmlearn import FMClassifier, FMRegressor  # noqa: E402
from fmlearn.dask import DaskFMClassifier, DaskFMRegressor  # noqa: E402
from fmlearn.dask._mcmc import DaskMCMC  # noqa: E402
from fmlearn.dask._sgd import by_tree, make_slices, round_sizes, union  # noqa: E402
from fmlearn.io import dump_libsvm  # noqa: E402

WORKERS = 2
PROJECTED_WORKERS = (2, 8, 32, 128)


def write_shards(folder, X, y, n):
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(X.shape[0]), n)):
        paths.append(str(Path(folder) / f"part{i}.libfm"))
        dump_libsvm(X[rows], y[rows], paths[-1])
    return paths


def rmse(est, X, y):
    return float(np.sqrt(np.mean((est.predict(X) - y) ** 2)))


def outgoing_bytes(client):
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def sgd_rows_sent(X, paths, local_steps, k, epochs):
    """Bytes of the parameter rows and AdaGrad sums (float32) the driver sends per SGD epoch,
    averaged over ``epochs``: per round, those each partition's slice touches, or their union
    where the round sends it down the tree (``_sgd.by_tree``, the partitions spread over the
    ``WORKERS`` workers in turn)."""
    parts = [X[rows] for rows in np.array_split(np.arange(X.shape[0]), len(paths))]
    homes = [p % WORKERS for p in range(len(parts))]
    sent = {}  # rows sent per schedule of rounds (the later epochs share one)
    total = 0
    for epoch in range(epochs):
        sizes = tuple(round_sizes([p.shape[0] for p in parts], epoch * X.shape[0], local_steps))
        if sizes not in sent:
            slices = [make_slices(type("Part", (), {"X": p, "y": np.zeros(p.shape[0]),
                                                    "sample_weight": np.zeros(p.shape[0])}),
                                  list(sizes)) for p in parts]
            sent[sizes] = 0
            for r in range(max(map(len, slices))):
                touched = [s[r].features for s in slices if r < len(s)]
                ids = union(touched, X.shape[1])
                sent[sizes] += ids.shape[0] if by_tree(touched, ids, homes, X.shape[1]) \
                    else sum(t.shape[0] for t in touched)
        total += sent[sizes]
    return total * (k + 1) * 4 * 2 / epochs


def run_case(client, name, params, train, test, paths, cluster_params=None):
    """Fit in this process and on the cluster with the same parameters (and
    ``cluster_params`` on the cluster); measure both."""
    X, y = train
    cluster_params = {**params, **(cluster_params or {})}
    FMRegressor(**{**params, "max_iter": 1}).fit(X, y)  # compile outside the timing
    DaskFMRegressor(**{**cluster_params, "max_iter": 1}).fit(paths, client=client)
    start = time.perf_counter()
    single = FMRegressor(**params).fit(X, y, eval_set=test)
    single_seconds = time.perf_counter() - start
    before = outgoing_bytes(client)
    with get_task_stream(client) as stream:
        start = time.perf_counter()
        dist = DaskFMRegressor(**cluster_params).fit(paths, eval_set=test, client=client)
        cluster_seconds = time.perf_counter() - start
    gathered = outgoing_bytes(client) - before
    compute = {}
    for task in stream.data:
        prefix = key_split(task["key"])
        seconds = sum(s["stop"] - s["start"] for s in task["startstops"]
                      if s["action"] == "compute")
        compute[prefix] = compute.get(prefix, 0.0) + seconds
    epochs = params["max_iter"]
    # SGD: the rows each slice touches, with their sums; ALS: the parameters, once per epoch.
    broadcast = (sgd_rows_sent(X, paths, cluster_params.get("local_steps", "auto"),
                               params["n_factors"], epochs)
                 if params.get("solver", "sgd") == "sgd" else WORKERS * sizeof(single.model_))
    rounds = None
    if params.get("solver", "sgd") == "sgd":
        lengths = [a.shape[0] for a in np.array_split(np.arange(X.shape[0]), len(paths))]
        rounds = [len(round_sizes(lengths, e * X.shape[0], cluster_params.get("local_steps",
                                                                             "auto")))
                  for e in range(epochs)]
    result = {
        "n_rows": X.shape[0], "n_features": X.shape[1], "params": params,
        "cluster_params": cluster_params, "sgd_rounds_per_epoch": rounds,
        "single_process": {"seconds": single_seconds, "test_rmse": rmse(single, *test),
                           "test_rmse_per_epoch": [-s for s in single.validation_scores_]},
        "cluster": {"workers": WORKERS, "threads_per_worker": 1, "partitions": len(paths),
                    "seconds": cluster_seconds, "test_rmse": rmse(dist, *test),
                    "test_rmse_per_epoch": [-s for s in dist.validation_scores_],
                    "bytes_gathered_per_epoch": gathered / epochs,
                    "bytes_broadcast_per_epoch": broadcast,
                    "task_compute_seconds_per_epoch": {k: v / epochs for k, v in compute.items()}},
        "seconds_ratio_cluster_over_single": cluster_seconds / single_seconds,
    }
    print(f"{name}: single {single_seconds:.2f} s RMSE {result['single_process']['test_rmse']:.4f}"
          f" | cluster {cluster_seconds:.2f} s RMSE {result['cluster']['test_rmse']:.4f}, "
          f"{gathered / epochs / 1e6:.2f} MB gathered per epoch")
    return result


def combine_rate(n_features, k, touched):
    """Driver-side combination throughput of a star (every partition's rows added at the
    driver, then applied): touched parameter rows per second, 4 partitions."""
    add, apply = combine_costs(n_features, k, touched)
    return 4 * touched / (3 * add + apply)


def projection(X, k, row_seconds, rate):
    """Projected SGD epoch seconds (one combination per epoch) for W workers, one partition
    each: compute of n/W rows, the parameter rows each partition touches sent to it and back
    over the driver's link, and the driver's combination."""
    n = X.shape[0]
    per_touched = 2 * 8 + 4 * (k + 1) * 2  # id and count, parameters and AdaGrad sums
    out = {}
    order = np.random.default_rng(0).permutation(n)
    for w in PROJECTED_WORKERS:
        part = X[order[: n // w]]
        touched = int(np.unique(part.indices).shape[0])
        compute = row_seconds * n / w
        transfer = 2 * w * touched * per_touched / NETWORK_BYTES_PER_S
        combining = w * touched / rate
        out[str(w)] = {"compute_seconds": compute, "transfer_seconds": transfer,
                       "combine_seconds": combining,
                       "epoch_seconds": compute + transfer + combining,
                       "touched_features_per_partition": touched}
    return out


def mcmc_case(client, name, params, train, test, paths, classify=False):
    """MCMC in this process and on the cluster from the same seed: seconds and rounds per
    sweep (the gathers of each sweep, counted by wrapping the client's), the test RMSE (or
    accuracy) of both, and the largest difference of their test predictions (probabilities)."""
    single_cls, cluster_cls = ((FMClassifier, DaskFMClassifier) if classify
                               else (FMRegressor, DaskFMRegressor))
    single_cls(**{**params, "max_iter": 1}).fit(*train)  # compile outside the timing
    cluster_cls(**{**params, "max_iter": 1}).fit(paths, client=client)
    start = time.perf_counter()
    single = single_cls(**params).fit(*train)
    single_seconds = time.perf_counter() - start
    rounds, gather, run_epoch = [], client.gather, DaskMCMC.run_epoch

    def counted_gather(*args, **kwargs):
        if rounds:
            rounds[-1] += 1
        return gather(*args, **kwargs)

    def counted_epoch(*args):
        rounds.append(0)
        return run_epoch(*args)

    client.gather, DaskMCMC.run_epoch = counted_gather, counted_epoch
    try:
        start = time.perf_counter()
        dist = cluster_cls(**params).fit(paths, client=client)
        cluster_seconds = time.perf_counter() - start
    finally:
        client.gather, DaskMCMC.run_epoch = gather, run_epoch
    sweeps = params["max_iter"]
    if classify:
        scores = [float(np.mean(est.predict(test[0]) == test[1])) for est in (single, dist)]
        outputs = [est.predict_proba(test[0])[:, 1] for est in (single, dist)]
    else:
        scores = [rmse(est, *test) for est in (single, dist)]
        outputs = [est.predict(test[0]) for est in (single, dist)]
    result = {"n_rows": train[0].shape[0], "params": params,
              "test_score": "accuracy" if classify else "rmse",
              "single_process": {"seconds_per_sweep": single_seconds / sweeps,
                                 "test_score": scores[0]},
              "cluster": {"workers": WORKERS, "threads_per_worker": 1, "partitions": len(paths),
                          "seconds_per_sweep": cluster_seconds / sweeps, "test_score": scores[1],
                          "rounds_first_sweep": rounds[0], "rounds_per_sweep": rounds[1:]},
              "max_test_prediction_difference": float(np.max(np.abs(outputs[0] - outputs[1])))}
    print(f"{name}: single {single_seconds / sweeps:.3f} s/sweep, cluster "
          f"{cluster_seconds / sweeps:.3f} s/sweep in {rounds[-1]} rounds ({rounds[0]} in the "
          f"first), test {result['test_score']} {scores[0]:.4f} / {scores[1]:.4f}, predictions "
          f"{result['max_test_prediction_difference']:.1e} apart")
    return result


def mcmc_cases(quick):
    """The MCMC cases, on a cluster of their own (float64: the chains agree to round-off)."""
    (X, y), (X_test, y_test) = movielens("u1.base"), movielens("u1.test")
    params = dict(n_factors=8, solver="mcmc", max_iter=10 if quick else 30, random_state=0,
                  dtype="float64", n_jobs=1)
    order = np.random.default_rng(0).permutation(X.shape[0])
    X, y = X[order], y[order]
    results = {}
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, Client(cluster) as client:
        for name, target, test, classify in (
                ("movielens_u1_mcmc", y, y_test, False),
                ("movielens_u1_liked_mcmc_probit", (y >= 4).astype(int),
                 (y_test >= 4).astype(int), True)):
            (Path(tmp) / name).mkdir()
            paths = write_shards(Path(tmp) / name, X, target, WORKERS)
            results[name] = mcmc_case(client, name, params, (X, target), (X_test, test),
                                      paths, classify)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mcmc", action="store_true", help="the MCMC cases alone")
    parser.add_argument("--sgd", action="store_true", help="the SGD cases alone")
    args = parser.parse_args()
    if args.mcmc:  # the other cases as they were
        name = "dask_cluster" + ("_quick" if args.quick else "")
        write_results(name, {"results": {**kept_results(name), **mcmc_cases(args.quick)}})
        return
    train, test = movielens("u1.base"), movielens("u1.test")
    n_synthetic = 400_000 if args.quick else 2_000_000
    Xs, ys = planted_rows(n_synthetic + 100_000, n_features=100_000, seed=1)
    synthetic_train, synthetic_test = (Xs[:n_synthetic], ys[:n_synthetic]), \
        (Xs[n_synthetic:], ys[n_synthetic:])
    sgd = dict(n_factors=8, max_iter=20, eta0=0.05, reg_linear=0.01, reg_factors=0.01,
               init_std=0.1, random_state=0, tol=None, n_jobs=1)
    als = dict(n_factors=10, solver="als", max_iter=10 if args.quick else 20, reg_linear=10.0,
               reg_factors=15.0, init_std=0.1, random_state=0, tol=None, n_jobs=1)
    big = dict(n_factors=16, max_iter=3 if args.quick else 10, eta0=0.05, reg_linear=1e-4,
               reg_factors=1e-4, init_std=0.05, random_state=0, tol=None, n_jobs=1)
    results = {} if args.sgd else mcmc_cases(args.quick)
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, Client(cluster) as client:
        order = np.random.default_rng(0).permutation(train[0].shape[0])
        ml_paths = write_shards(Path(tmp), train[0][order], train[1][order], WORKERS)
        (Path(tmp) / "synthetic").mkdir()
        big_paths = write_shards(Path(tmp) / "synthetic", *synthetic_train, 2 * WORKERS)
        results["movielens_u1_sgd"] = run_case(client, "MovieLens u1, SGD", sgd, train, test,
                                               ml_paths)
        if not args.sgd:
            results["movielens_u1_als"] = run_case(client, "MovieLens u1, ALS", als, train,
                                                   test, ml_paths)
        # The default rounds (local_steps="auto"), and one round per epoch.
        results["synthetic_sgd"] = run_case(client, "synthetic, SGD", big, synthetic_train,
                                            synthetic_test, big_paths)
        results["synthetic_sgd_one_round"] = run_case(
            client, "synthetic, SGD, one round per epoch", big, synthetic_train,
            synthetic_test, big_paths, {"local_steps": None})
    case = results["synthetic_sgd"]
    row_seconds = (case["cluster"]["task_compute_seconds_per_epoch"]["fmlearn-sgd-round"]
                   / case["n_rows"])
    rate = combine_rate(synthetic_train[0].shape[1], big["n_factors"], 50_000)
    results["projection_synthetic_sgd"] = {
        "assumptions": {"driver_link_bytes_per_s": NETWORK_BYTES_PER_S,
                        "measured_compute_seconds_per_row": row_seconds,
                        "measured_combine_rows_per_s": rate},
        "workers": projection(synthetic_train[0], big["n_factors"], row_seconds, rate)}
    for w, p in results["projection_synthetic_sgd"]["workers"].items():
        print(f"projection, {w} workers: epoch {p['epoch_seconds']:.3f} s = compute "
              f"{p['compute_seconds']:.3f} + transfer {p['transfer_seconds']:.3f} + combine "
              f"{p['combine_seconds']:.3f}")
    name = "dask_cluster" + ("_quick" if args.quick else "")
    if args.sgd:  # the other cases as they were
        results = {**kept_results(name), **results}
    write_results(name, {"results": results})


if __name__ == "__main__":
    main()
