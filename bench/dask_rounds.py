"""How closely distributed SGD follows one process, by rule and rounds, on planted sets.
Writes bench/results/dask_rounds.json.

For each power-law planted set (``synthetic.power_law_rows``: 4 one-hot fields of 2,000
features with Zipf 1.3 frequencies, a planted k=4 FM; 12,000 to 96,000 training rows, 3,000
test rows) in 4 partitions on a LocalCluster of 2 worker processes x 1 thread: the test RMSE
after each of 3 epochs of ``DaskFMRegressor`` against ``FMRegressor``'s from the same seed (the
tests' settings: k=4, AdaGrad eta0 0.05, penalties 1e-4, init_std 0.05), for the default rounds
and rule and for variants of ``fmlearn.dask._sgd``'s constants (set on the driver and on every
worker): fewer rounds per epoch, the factors' shares scaled otherwise, one round per epoch.
Reported: the largest relative gap after any epoch, the gap per epoch, the rounds in the first
epoch and the cluster's seconds (a shared 2-core machine: loose).

    python bench/dask_rounds.py [--quick]
"""
import argparse
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402
from synthetic import power_law_rows  # noqa: E402

import fmlearn.dask._sgd as dask_sgd  # noqa: E402
from fmlearn import FMRegressor  # noqa: E402
from fmlearn.dask import DaskFMRegressor  # noqa: E402

PARAMS = dict(n_factors=4, max_iter=3, eta0=0.05, reg_linear=1e-4, reg_factors=1e-4,
              init_std=0.05, random_state=0, tol=None)
VARIANTS = {  # name: (local_steps, constants of fmlearn.dask._sgd)
    "default": ("auto", {}),
    "16 rounds an epoch": ("auto", {"ROUNDS_PER_EPOCH": 16}),
    "factor shares x 0.1": ("auto", {"FACTOR_SHARE_SCALE": 0.1}),
    "factor shares x 1 (the AdaGrad estimate)": ("auto", {"FACTOR_SHARE_SCALE": 1.0}),
    "one round per epoch": (None, {}),
}
SIZES = (12_000, 24_000, 48_000, 96_000)


def set_constants(values):
    """Set ``fmlearn.dask._sgd``'s module constants (in whichever process runs it)."""
    import fmlearn.dask._sgd as module
    for name, value in values.items():
        setattr(module, name, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smallest set only")
    args = parser.parse_args()
    defaults = {name: getattr(dask_sgd, name)
                for _, constants in VARIANTS.values() for name in constants}
    results = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for n in SIZES[:1] if args.quick else SIZES:
            X, y = power_law_rows(n + 3000)
            train, test = (X[:n], y[:n]), (X[n:], y[n:])
            single = FMRegressor(**PARAMS).fit(*train, eval_set=test)
            chunks = (da.from_array(train[0], chunks=(n // 4, -1), asarray=False),
                      da.from_array(train[1], chunks=n // 4))
            results[str(n)] = {"single_test_rmse_per_epoch": [-s for s in
                                                              single.validation_scores_]}
            for name, (local_steps, constants) in VARIANTS.items():
                values = {**defaults, **constants}
                client.run(set_constants, values)
                set_constants(values)
                start = time.perf_counter()
                dist = DaskFMRegressor(local_steps=local_steps, **PARAMS).fit(
                    *chunks, eval_set=test, client=client)
                seconds = time.perf_counter() - start
                gaps = np.array(dist.validation_scores_) / np.array(single.validation_scores_)
                rounds = len(dask_sgd.round_sizes([n // 4] * 4, 0, local_steps))
                results[str(n)][name] = {"largest_gap": float(gaps.max() - 1),
                                         "gap_per_epoch": (gaps - 1).tolist(),
                                         "rounds_first_epoch": rounds, "seconds": seconds}
                print(f"{n} rows, {name}: largest gap {100 * (gaps.max() - 1):.2f} % "
                      f"{np.round(100 * (gaps - 1), 2).tolist()}, {rounds} rounds in epoch 1, "
                      f"{seconds:.1f} s", flush=True)
            set_constants(defaults)
            client.run(set_constants, defaults)
    write_results("dask_rounds" + ("_quick" if args.quick else ""),
                  {"params": PARAMS, "variants": {k: [v[0], v[1]] for k, v in VARIANTS.items()},
                   "results": results})


if __name__ == "__main__":
    main()
