"""Read speed of the file formats on one generated file (same rows in every format), in MB/s,
beside scikit-learn's load_svmlight_file (libSVM) and the sagemaker SDK's RecordIO reader.

Writes bench/results/read_speed.json. --quick uses 50 MB instead of 1 GB.
"""
import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common import write_results
from synthetic import planted_rows

N_FEATURES = 1_000_000
N_FIELDS = 10


def make_rows(n_bytes):
    """Planted rows: half the fields one-hot, half with a 4-digit real value (as Criteo's
    normalised counts); about 130 bytes of libSVM text per row."""
    n_rows = int(n_bytes / 130)
    X, y = planted_rows(n_rows, n_fields=N_FIELDS, n_features=N_FEATURES)
    rng = np.random.default_rng(1)
    real = (X.indices // (N_FEATURES // N_FIELDS)) % 2 == 1
    X.data[real] = np.round(rng.random(real.sum()), 4).astype(np.float32) + np.float32(0.0001)
    return X, y


def timed(read, path, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        read(path)
        times.append(time.perf_counter() - start)
    mb = os.path.getsize(path) / 1e6
    return {"mb": mb, "seconds": times, "mb_per_s": mb / statistics.median(times)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.amazon.common import read_records
    from sklearn.datasets import load_svmlight_file

    from fmlearn.io import dump_ffm, dump_libsvm, load_ffm, load_libsvm
    from fmlearn.io import dump_recordio, load_recordio

    X, y = make_rows(50e6 if args.quick else 1e9)
    fields = np.arange(N_FEATURES) // (N_FEATURES // N_FIELDS)
    repeats = 3
    with tempfile.TemporaryDirectory(prefix="fmlearn-read-") as tmp:
        paths = {name: Path(tmp) / f"rows.{name}" for name in ("libsvm", "ffm", "recordio")}
        dump_libsvm(X, y, paths["libsvm"])
        dump_ffm(X, y, fields, paths["ffm"])
        dump_recordio(X, y, paths["recordio"])
        del X
        load_libsvm(paths["libsvm"], n_features=N_FEATURES)  # compile the kernels
        load_ffm(paths["ffm"], n_features=N_FEATURES)
        load_recordio(paths["recordio"])
        readers = {
            "sklearn load_svmlight_file (libSVM)": lambda p: load_svmlight_file(
                str(p), n_features=N_FEATURES, zero_based=True, dtype=np.float32),
            "fmlearn load_libsvm": lambda p: load_libsvm(p, n_features=N_FEATURES),
            "fmlearn load_ffm": lambda p: load_ffm(p, n_features=N_FEATURES),
            "fmlearn load_recordio": load_recordio,
            "sagemaker read_records (RecordIO, protobuf objects only)":
                lambda p: read_records(open(p, "rb")),
        }
        files = {"sklearn load_svmlight_file (libSVM)": "libsvm", "fmlearn load_libsvm": "libsvm",
                 "fmlearn load_ffm": "ffm", "fmlearn load_recordio": "recordio",
                 "sagemaker read_records (RecordIO, protobuf objects only)": "recordio"}
        results = {}
        for name, read in readers.items():
            results[name] = timed(read, paths[files[name]], 1 if "sagemaker" in name else repeats)
            print(f"{name:58s} {results[name]['mb_per_s']:8.1f} MB/s", flush=True)
    sklearn_rate = results["sklearn load_svmlight_file (libSVM)"]["mb_per_s"]
    write_results("read_speed" + ("_quick" if args.quick else ""), {
        "rows": len(y), "n_features": N_FEATURES, "results": results,
        "ratios_to_sklearn_libsvm": {name: r["mb_per_s"] / sklearn_rate
                                     for name, r in results.items()},
        "target": "fmlearn FFM and RecordIO readers at least as fast (MB/s) as "
                  "load_svmlight_file on libSVM"})


if __name__ == "__main__":
    main()
