"""``predict`` throughput (rows per second) against the memory-bandwidth floor, 1 and 2
threads.

Bandwidth: the STREAM-style triad of ``bandwidth_floor.py`` with 1 and 2 threads, in the
same run. The bytes a prediction must move: the rows (``indptr``, ``indices``, ``data``) and
the scores written (float32), plus the parameter rows ``[w_j, v_j]`` read (float32,
``4 (k + 1)`` bytes), counted two ways as for the SGD epoch: ``unique``, once per feature
present (the floor), and ``per_touch``, once per non-zero. Timed in turn (1 thread, 2
threads, 1 thread, ...): the estimator's ``predict`` (the input's check, the kernel, the
scores' check) and the scoring kernel alone (``FMModel.predict_csr`` without the check), each
``--repeats`` times (min/median/max).

Data: frappe's train, validation and test files stacked (../shared/data/frappe; 288,609 rows,
10 one-hot fields), and the synthetic set of ``bandwidth_floor.py`` (10 one-hot fields over
1,000,000 features with power-law frequencies) at 10^7 rows (10^6 with ``--quick``). The model
is an ``FMRegressor`` fitted for one epoch on the first 100,000 rows, at k = 16 and k = 64.

    python bench/predict_throughput.py [--quick] [--repeats 7]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bandwidth_floor import bandwidth  # noqa: E402
from common import alternate, load_frappe, spread, write_results  # noqa: E402
from synthetic import planted_rows  # noqa: E402

from fmlearn import FMRegressor  # noqa: E402
from fmlearn._validation import as_fm_csr  # noqa: E402

THREADS = (1, 2)
FACTORS = (16, 64)


def predict_bytes(X, k):
    """Bytes one prediction over ``X`` moves: rows and scores plus the parameter rows read,
    ``unique`` and ``per_touch``."""
    rows = X.indptr.nbytes + X.indices.nbytes + X.data.nbytes + 4 * X.shape[0]
    unique = int(np.count_nonzero(np.bincount(X.indices, minlength=X.shape[1])))
    return {"rows": rows, "unique_features": unique,
            "unique": rows + unique * 4 * (k + 1), "per_touch": rows + X.nnz * 4 * (k + 1)}


def case(X, y, k, rates, repeats):
    """Throughput of ``predict`` and of the kernel alone at ``k`` factors, 1 and 2 threads,
    against the floors at the measured bandwidths ``rates`` (threads -> bytes per second)."""
    est = FMRegressor(n_factors=k, max_iter=1, random_state=0, n_jobs=1).fit(X[:100_000],
                                                                            y[:100_000])
    model, rows = est.model_, as_fm_csr(X, np.float32)
    calls = {}
    for t in THREADS:
        calls[f"predict_{t}"] = lambda t=t: est.set_params(n_jobs=t).predict(X)
        calls[f"kernel_{t}"] = lambda t=t: model.predict_csr(rows, t, check=False)
    for call in calls.values():  # compiled and warm
        call()
    seconds = alternate(calls, repeats)[1]
    moved = predict_bytes(rows, k)
    out = {"n_factors": k, "bytes": moved}
    for name, times in seconds.items():
        t = int(name.rsplit("_", 1)[1])
        best = min(times)
        out[name] = {"seconds": spread(times), "rows_per_second": X.shape[0] / best,
                     "over_unique_floor": best / (moved["unique"] / rates[t]),
                     "over_per_touch_floor": best / (moved["per_touch"] / rates[t])}
        print(f"  k={k} {name}: {X.shape[0] / best / 1e6:.1f} M rows/s, "
              f"{out[name]['over_unique_floor']:.2f}x the unique floor, "
              f"{out[name]['over_per_touch_floor']:.2f}x the per-touch floor", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rates = {t: bandwidth(t) for t in THREADS}
    print("triad bandwidth:", {t: f"{r / 1e9:.1f} GB/s" for t, r in rates.items()}, flush=True)
    results = {"triad_bytes_per_second": {str(t): r for t, r in rates.items()}}
    parts = load_frappe()
    frappe = (sp.vstack([p[0] for p in parts], format="csr"), np.concatenate([p[1] for p in parts]))
    n_rows = 1_000_000 if args.quick else 10_000_000
    synthetic = planted_rows(n_rows, n_features=1_000_000, seed=0)
    for name, (X, y) in (("frappe", frappe), ("synthetic", synthetic)):
        print(f"{name}: {X.shape[0]} rows, {X.nnz} non-zeros", flush=True)
        results[name] = {"n_rows": X.shape[0], "nnz": X.nnz,
                         "cases": [case(X, y, k, rates, args.repeats) for k in FACTORS]}
    write_results("predict_throughput" + ("_quick" if args.quick else ""),
                  {"repeats": args.repeats, "results": results})


if __name__ == "__main__":
    main()
