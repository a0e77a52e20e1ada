"""How the cost of an SGD epoch grows: seconds per epoch against rows (in memory, and streamed
from a libFM file up to 1e8 rows), against n_factors and against threads; peak memory against
rows. The cost should grow linearly in nnz and in k: the fitted slopes say how close it is.

Data: ``synthetic.py`` (10 one-hot fields over 1,000,000 features, power-law frequencies, a
planted FM), float32, AdaGrad, squared loss. Every point runs in a fresh process, so that its
memory is its own: the resident high-water mark above the process after a warm-up fit (so the
data, the model and the working arrays, without the interpreter and the compiled kernels):

- in memory: ``epoch_seconds`` (solver epochs after a warm-up epoch), and the peak of one
  ``FMRegressor.fit`` epoch with the data resident;
- in memory without a copy (``rows_staged``): the same, with the fit staging its rows (a few
  blocks at a time copied, renumbered and shuffled), as it does when a copy of them would
  take more than ``COPY_ROWS_BYTES``; the copy curve's fits are made to copy whatever their
  size; the staged epochs alternate with epochs over a copy (``staged_over_copy``: their
  ratio per pair);
- streamed: one epoch of ``partial_fit_file`` over a generated file, reading included.

Slopes: of log(seconds) on log(x) (1 is linear) and of seconds on x (the cost per row, per
factor). Writes results/scaling.json and results/scaling.png (``_quick`` for ``--quick``).

``--memory`` reruns only the in-memory points (both kinds) and puts them into the last
results, keeping the other curves. ``--threads PAIRS`` times one and two threads alternating
in one process (``PAIRS`` pairs; the curve above runs each in a process of its own, which
the machine's moods between processes blur) at k = 8, 16 and 64 on the threads curve's rows
(``results/scaling_threads.json``), each epoch beside its per-touch bandwidth floor measured
before its pair.

    python bench/scaling.py [--quick] [--memory | --threads PAIRS]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import RESULTS, write_results
from synthetic import write_planted_file

N_FEATURES = 1_000_000
CHUNK = 1_000_000  # rows generated at a time
FULL = {"rows": [10**5, 10**6, 10**7, 3 * 10**7], "staged": [10**6, 10**7, 3 * 10**7],
        "streamed": [10**6, 10**7, 10**8], "factors": [4, 8, 16, 32, 64, 128, 256],
        "factor_rows": 10**6, "thread_rows": 10**7}
QUICK = {"rows": [10**5, 3 * 10**5, 10**6], "staged": [3 * 10**5, 10**6],
         "streamed": [10**5, 5 * 10**5], "factors": [4, 16, 64], "factor_rows": 10**5,
         "thread_rows": 3 * 10**5}
STAGED_PAIRS = 5  # alternating epochs staged and over a copy, per point
K = 16
THREAD_FACTORS = (8, 16, 64)


# --- one point, in its own process ---------------------------------------------------------------
def _rss_mb(field):
    """``VmRSS`` or ``VmHWM`` of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak():
    """Start the resident high-water mark again from the current size (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def _warm_up(k, threads):
    """Load and compile the kernels; the resident size after it (MB), the point's baseline."""
    from fmlearn import FMRegressor

    FMRegressor(n_factors=k, max_iter=1, tol=None, n_jobs=threads).fit(
        np.eye(4, dtype=np.float32), np.arange(4.0))
    return _rss_mb("VmRSS")


def planted(n_rows):
    """The synthetic set's first ``n_rows`` rows (float32 targets), generated in chunks."""
    import scipy.sparse as sp
    from synthetic import planted_rows

    chunks = [planted_rows(min(CHUNK, n_rows - first), n_features=N_FEATURES, seed=first)
              for first in range(0, n_rows, CHUNK)]
    return (sp.vstack([c[0] for c in chunks], format="csr"),
            np.concatenate([c[1] for c in chunks]).astype(np.float32))


def in_memory_point(n_rows, k, threads, staged=False):
    from common import epoch_seconds, epoch_timer, speedups, spread

    from fmlearn import FMRegressor
    from fmlearn.solvers import sgd

    # Copy or stage whatever the size and however much memory is free.
    sgd.COPY_ROWS_BYTES = 0 if staged else 2**62
    sgd.COPY_ROWS_SHARE = 0.0 if staged else 1.0
    baseline = _warm_up(k, threads)
    X, y = planted(n_rows)
    _reset_peak()
    data_mb = _rss_mb("VmRSS")
    FMRegressor(n_factors=k, max_iter=1, tol=None, n_jobs=threads, random_state=0).fit(X, y)
    peak_mb = _rss_mb("VmHWM")
    point = {"rows": n_rows, "nnz": int(X.nnz), "n_factors": k, "threads": threads,
             "baseline_rss_mb": baseline, "rss_with_data_mb": data_mb, "peak_rss_mb": peak_mb,
             "data_mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes) / 1e6}
    if not staged:
        return {**point, "seconds_per_epoch": epoch_seconds(
            X, y, k, threads, "adagrad", 3 if n_rows <= 10**6 else 1)}
    epochs = {"staged": epoch_timer(X, y, k, threads, "adagrad", staged=True),
              "copy": epoch_timer(X, y, k, threads, "adagrad")}
    seconds = {name: [] for name in epochs}
    for _ in range(STAGED_PAIRS):
        for name, epoch in epochs.items():
            seconds[name].append(epoch())
    return {**point, "staged": True, "seconds_per_epoch": spread(seconds["staged"]),
            "copy_seconds_per_epoch": spread(seconds["copy"]),
            "staged_over_copy": speedups(seconds["copy"], seconds["staged"])}


def streamed_point(path, n_rows, k, threads):
    import time

    from fmlearn import FMRegressor
    from fmlearn.io import partial_fit_file

    baseline = _warm_up(k, threads)
    _reset_peak()
    start = time.perf_counter()
    partial_fit_file(FMRegressor(n_factors=k, n_jobs=threads, random_state=0), path,
                     n_features=N_FEATURES)
    return {"rows": n_rows, "n_factors": k, "threads": threads,
            "seconds_per_epoch": time.perf_counter() - start, "baseline_rss_mb": baseline,
            "peak_rss_mb": _rss_mb("VmHWM"),
            "file_bytes": Path(path).stat().st_size}


def thread_point(n_rows, k, pairs):
    """Epochs on one and on two threads alternating in one process (one model each), over
    the rows as a fit copies them, renumbered when the model outgrows the caches. Before
    each pair the machine's triad bandwidth on one and two threads (``bandwidth_floor.py``):
    each epoch over its per-touch floor at that bandwidth, and ``two_over_one_ceiling``, the
    one-thread epoch over the two-thread floor (the most a second thread could gain on an
    epoch bound by memory, at this one-thread speed)."""
    from bandwidth_floor import bandwidth, epoch_bytes
    from common import epoch_timer, speedups, spread

    X, y = planted(n_rows)
    per_touch = epoch_bytes(X, k)["per_touch"]
    epochs = {threads: epoch_timer(X, y, k, threads, "adagrad") for threads in (1, 2)}
    seconds = {threads: [] for threads in epochs}
    floors = {threads: [] for threads in epochs}
    for _ in range(pairs):
        triads = {threads: bandwidth(threads, repeats=3) for threads in epochs}
        for threads, epoch in epochs.items():
            seconds[threads].append(epoch())
            floors[threads].append(per_touch / triads[threads])
    return {"rows": n_rows, "n_factors": k, "pairs": pairs,
            "seconds_per_epoch": {str(t): spread(s) for t, s in seconds.items()},
            "two_over_one": speedups(seconds[2], seconds[1]),
            "per_touch_floor_seconds": {str(t): spread(f) for t, f in floors.items()},
            "multiple_of_per_touch_floor": {
                str(t): spread([s / f for s, f in zip(seconds[t], floors[t])])
                for t in epochs},
            "bandwidth_two_over_one": spread([a / b for a, b in zip(floors[1], floors[2])]),
            "two_over_one_ceiling": spread([s / f for s, f in zip(seconds[1], floors[2])])}


def point(**spec):
    """Run one point in a fresh process; its result dict."""
    out = subprocess.run([sys.executable, __file__, "--point", json.dumps(spec)],
                         capture_output=True, text=True, cwd=Path(__file__).parent)
    if out.returncode != 0:
        sys.exit(f"scaling point {spec} failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if "two_over_one" in result:
        print(spec, "two threads over one:", result["two_over_one"], flush=True)
        return result
    growth = (f", {over_data(result):.2f}x the data above the process" if "data_mb" in result
              else "")
    print(spec, f"{median(result):.3f} s/epoch, peak {result['peak_rss_mb']:.0f} MB{growth}",
          flush=True)
    return result


# --- fits and plots ------------------------------------------------------------------------------
def median(result):
    """A point's seconds per epoch: the median of the in-memory epochs, the one streamed epoch."""
    s = result["seconds_per_epoch"]
    return s["median"] if isinstance(s, dict) else s


def growth_mb(result):
    """Peak resident memory above the warmed-up process: data, model and working arrays."""
    return result["peak_rss_mb"] - result["baseline_rss_mb"]


def over_data(result):
    """:func:`growth_mb` over the data's size, both in bytes (RSS counts MiB, data_mb MB)."""
    return growth_mb(result) * 2**20 / (result["data_mb"] * 1e6)


def in_memory_curves(sizes):
    """The in-memory points, over a copy of the rows and staged, fitted."""
    rows = [point(n_rows=n, k=K, threads=1) for n in sizes["rows"]]
    staged = [point(n_rows=n, k=K, threads=1, staged=True) for n in sizes["staged"]]
    return {"rows": {"n_factors": K, "points": rows,
                     "fit": slopes([p["nnz"] for p in rows], [median(p) for p in rows])},
            "rows_staged": {"n_factors": K, "points": staged,
                            "fit": slopes([p["nnz"] for p in staged],
                                          [median(p) for p in staged])}}


def memory_fits(results):
    """Memory against rows for each curve that has it."""
    return {key: slopes([p["rows"] for p in results[key]["points"]],
                        [growth_mb(p) for p in results[key]["points"]])
            for key in ("rows", "rows_staged", "streamed") if key in results}


def slopes(x, seconds):
    """Slope of log(seconds) on log(x), and the least-squares line seconds = a + b x with its
    R^2."""
    x, seconds = np.asarray(x, float), np.asarray(seconds, float)
    b, a = np.polyfit(x, seconds, 1)
    fitted = a + b * x
    r2 = 1 - np.sum((seconds - fitted) ** 2) / np.sum((seconds - seconds.mean()) ** 2)
    return {"log_log_slope": float(np.polyfit(np.log(x), np.log(seconds), 1)[0]),
            "seconds_per_unit": float(b), "intercept_seconds": float(a), "r2": float(r2)}


def plot(results, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    ax = axes[0, 0]
    for key, label in (("rows", "in memory"), ("streamed", "streamed from a libFM file")):
        pts = results[key]["points"]
        ax.loglog([p["rows"] for p in pts], [median(p) for p in pts], "o-",
                  label=f"{label} (slope {results[key]['fit']['log_log_slope']:.2f})")
    ax.set(xlabel="rows", ylabel="seconds per epoch", title=f"Rows (k={K}, 1 thread)")
    ax.legend()
    ax = axes[0, 1]
    pts, fit = results["factors"]["points"], results["factors"]["fit"]
    ks = np.array([p["n_factors"] for p in pts])
    ax.plot(ks, [median(p) for p in pts], "o", label="measured")
    ax.plot(ks, fit["intercept_seconds"] + fit["seconds_per_unit"] * ks, "-",
            label=f"{fit['seconds_per_unit'] * 1e3:.2f} ms per factor (R² {fit['r2']:.3f})")
    ax.set(xlabel="n_factors", ylabel="seconds per epoch",
           title=f"Factors ({results['factors']['rows']:.0e} rows, 1 thread)")
    ax.legend()
    ax = axes[1, 0]
    pts = results["threads"]["points"]
    ax.bar([str(p["threads"]) for p in pts], [median(p) for p in pts])
    ax.set(xlabel="threads", ylabel="seconds per epoch",
           title=f"Threads ({results['threads']['rows']:.0e} rows, k={K}): "
                 f"{results['threads']['speedup']:.2f}x with 2")
    ax = axes[1, 1]
    for key, label in (("rows", "in memory: fit's peak"),
                       ("rows_staged", "in memory, staged: fit's peak"),
                       ("streamed", "streamed: peak")):
        if key not in results:
            continue
        pts = results[key]["points"]
        ax.loglog([p["rows"] for p in pts], [growth_mb(p) for p in pts], "o-", label=label)
    pts = results["rows"]["points"]
    ax.loglog([p["rows"] for p in pts], [p["data_mb"] for p in pts], "--", label="data (CSR + y)")
    ax.set(xlabel="rows", ylabel="MB above the process after warm-up",
           title="Memory (resident, with the model)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under a minute)")
    parser.add_argument("--memory", action="store_true",
                        help="rerun only the in-memory points, keep the other curves")
    parser.add_argument("--threads", type=int, metavar="PAIRS",
                        help="only one and two threads alternating, PAIRS pairs per n_factors "
                             "(results/scaling_threads.json)")
    parser.add_argument("--point", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        spec = json.loads(args.point)
        path = spec.pop("path", None)
        result = (streamed_point(path, **spec) if path
                  else thread_point(**spec) if "pairs" in spec else in_memory_point(**spec))
        print(json.dumps(result))
        return
    sizes = QUICK if args.quick else FULL
    if args.threads:
        points = [point(n_rows=sizes["thread_rows"], k=k, pairs=args.threads)
                  for k in THREAD_FACTORS]
        write_results("scaling_threads" + ("_quick" if args.quick else ""),
                      {"n_features": N_FEATURES, "dtype": "float32", "learning_rate": "adagrad",
                       "points": points})
        return
    name = "scaling" + ("_quick" if args.quick else "")
    if args.memory:
        last = json.loads((RESULTS / f"{name}.json").read_text())
        results = {key: value for key, value in last.items()
                   if key not in ("benchmark", "date", "machine", "summary", "rows_through")}
        results["other_curves_from"] = results.get("other_curves_from", last["date"])
        results.update(in_memory_curves(sizes))
        results["memory"] = memory_fits(results)
        plot(results, RESULTS / f"{name}.png")
        write_results(name, results)
        return
    results = {"n_features": N_FEATURES, "n_fields": 10, "dtype": "float32",
               "learning_rate": "adagrad", **in_memory_curves(sizes)}
    with tempfile.TemporaryDirectory() as tmp:
        streamed = []
        for n in sizes["streamed"]:
            path = Path(tmp) / f"planted_{n}.libfm"
            write_planted_file(path, n_rows=n, rows_per_chunk=min(n, CHUNK),
                               n_features=N_FEATURES)
            streamed.append(point(path=str(path), n_rows=n, k=K, threads=1))
            path.unlink()
    results["streamed"] = {"n_factors": K, "points": streamed,
                           "fit": slopes([p["rows"] for p in streamed],
                                         [median(p) for p in streamed])}
    factors = [point(n_rows=sizes["factor_rows"], k=k, threads=1) for k in sizes["factors"]]
    results["factors"] = {"rows": sizes["factor_rows"], "points": factors,
                          "fit": slopes(sizes["factors"], [median(p) for p in factors])}
    threads = [point(n_rows=sizes["thread_rows"], k=K, threads=t) for t in (1, 2)]
    results["threads"] = {"rows": sizes["thread_rows"], "n_factors": K, "points": threads,
                          "speedup": median(threads[0]) / median(threads[1])}
    results["memory"] = memory_fits(results)
    plot(results, RESULTS / f"{name}.png")
    results["plot"] = f"{name}.png"
    write_results(name, results)


if __name__ == "__main__":
    main()
