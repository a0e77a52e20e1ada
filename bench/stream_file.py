"""Streaming training on a file larger than memory: peak RSS and throughput against
in-memory training on a slice of the same data (same machine, same run).

Writes bench/results/stream_file.json. --quick uses 250 MB / 25 MB instead of 5 GB / 500 MB and
also runs both with n_jobs=2; the full run uses n_jobs=1, leaving the second core to the reader.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results
from synthetic import write_planted_file

N_FEATURES = 1_000_000
PARAMS = dict(n_factors=8, random_state=0)

STREAM = r"""
import io, json, resource, sys, time
from fmlearn import FMRegressor
from fmlearn.io import load_libsvm, partial_fit_file
path, n_features, n_jobs, params = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
with open(path, "rb") as handle:  # compile the kernels on the first rows
    head = handle.read(1 << 16)
X, y = load_libsvm(io.BytesIO(head[:head.rfind(b"\n") + 1]), n_features=n_features)
FMRegressor(n_jobs=n_jobs, **params).partial_fit(X, y)
reg = FMRegressor(n_jobs=n_jobs, **params)
start = time.perf_counter()
rows = []
partial_fit_file(reg, path, n_features=n_features, callback=lambda e, n: rows.append(n))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": rows[-1],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

IN_MEMORY = r"""
import json, resource, sys, time
from fmlearn import FMRegressor
from fmlearn.io import load_libsvm
path, n_features, n_jobs, params = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
X, y = load_libsvm(path, n_features=n_features)
FMRegressor(n_jobs=n_jobs, **params).partial_fit(X[:1000], y[:1000])  # compile
reg = FMRegressor(n_jobs=n_jobs, **params)
start = time.perf_counter()
reg.partial_fit(X, y)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": X.shape[0],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(script, path, n_jobs):
    out = subprocess.run([sys.executable, "-c", script, str(path), str(N_FEATURES), str(n_jobs),
                          json.dumps(PARAMS)], capture_output=True, text=True,
                         cwd=Path(__file__).parent)
    if out.returncode != 0:
        sys.exit(f"benchmark run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    big, small = (250e6, 25e6) if args.quick else (5e9, 500e6)
    with tempfile.TemporaryDirectory(prefix="fmlearn-stream-") as tmp:
        big_path, small_path = Path(tmp) / "big.libfm", Path(tmp) / "slice.libfm"
        start = time.perf_counter()
        write_planted_file(big_path, big)
        write_planted_file(small_path, small)
        print(f"wrote {big_path.stat().st_size / 1e9:.2f} GB and {small_path.stat().st_size / 1e9:.2f}"
              f" GB in {time.perf_counter() - start:.0f} s", flush=True)
        results = {}
        for n_jobs in (1, 2) if args.quick else (1,):
            memory = run(IN_MEMORY, small_path, n_jobs)
            stream = run(STREAM, big_path, n_jobs)
            ratio = (stream["rows"] / stream["seconds"]) / (memory["rows"] / memory["seconds"])
            results[f"n_jobs={n_jobs}"] = {
                "in_memory": {**memory, "rows_per_s": memory["rows"] / memory["seconds"]},
                "streaming": {**stream, "rows_per_s": stream["rows"] / stream["seconds"]},
                "throughput_ratio": ratio}
            print(f"n_jobs={n_jobs}: streaming {stream['rows'] / stream['seconds']:,.0f} rows/s, "
                  f"peak RSS {stream['peak_rss_mb']:.0f} MB; in memory "
                  f"{memory['rows'] / memory['seconds']:,.0f} rows/s, peak RSS "
                  f"{memory['peak_rss_mb']:.0f} MB; ratio {ratio:.2f}", flush=True)
        write_results("stream_file" + ("_quick" if args.quick else ""), {
            "file_bytes": big_path.stat().st_size, "slice_bytes": small_path.stat().st_size,
            "n_features": N_FEATURES, "params": PARAMS, "epochs": 1, "results": results,
            "targets": {"peak_rss_mb": 1024, "throughput_ratio": 0.8}})


if __name__ == "__main__":
    main()
