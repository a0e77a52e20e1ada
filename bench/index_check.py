"""The cost of checking a CSR matrix's arrays (indices in range, row pointers sound) against
one SGD epoch over the same rows: frappe's training file.

``fit`` checks the caller's arrays once (``fmlearn._validation.check_sparse_arrays``) before
anything else reads them; the figure here is that check's time as a share of one epoch, at the
estimators' defaults (k=8, AdaGrad, float32) with one and with two threads, and at k=64. Each
epoch and check alternate (A B A B ...), and the share is taken per pair. The check of a matrix
already in the kernels' layout (``check_fm_csr``, what ``predict_csr`` runs) is timed too.

Usage::

    python bench/index_check.py [--quick]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import epoch_timer, load_frappe, spread, write_results  # noqa: E402

from fmlearn._validation import as_fm_csr, check_fm_csr, check_sparse_arrays  # noqa: E402


def timed(function):
    """A callable running ``function`` and returning its seconds."""
    def run():
        start = time.perf_counter()
        function()
        return time.perf_counter() - start
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 pairs per setting instead of 20")
    repeats = 5 if parser.parse_args().quick else 20
    (X, y), _, _ = load_frappe()
    layout = as_fm_csr(X, np.float32)
    checks = {"check_sparse_arrays": timed(lambda: check_sparse_arrays(X)),
              "check_fm_csr": timed(lambda: check_fm_csr(layout, X.shape[1], np.float32))}
    for check in checks.values():
        check()  # compiled (or loaded from numba's cache) before timing
    results = {"rows": X.shape[0], "nnz": int(X.nnz), "indices_dtype": str(X.indices.dtype),
               "indptr_dtype": str(X.indptr.dtype), "repeats": repeats, "settings": {}}
    for k, n_threads in ((8, 1), (8, 2), (64, 1)):
        epoch = epoch_timer(X, y, k, n_threads, "adagrad")
        seconds = {"epoch": [], **{name: [] for name in checks}}
        for _ in range(repeats):  # A B C A B C ...
            seconds["epoch"].append(epoch())
            for name, check in checks.items():
                seconds[name].append(check())
        setting = {name: spread(values) for name, values in seconds.items()}
        for name in checks:
            setting[f"{name}_share_of_epoch"] = spread(
                [c / e for c, e in zip(seconds[name], seconds["epoch"], strict=True)])
        results["settings"][f"k{k}_{n_threads}_threads"] = setting
        print(f"k={k}, {n_threads} thread(s): epoch {setting['epoch']['median'] * 1e3:.1f} ms; "
              + "; ".join(f"{name} {setting[name]['median'] * 1e3:.2f} ms "
                          f"({setting[f'{name}_share_of_epoch']['median']:.2%} of the epoch, "
                          f"at most {setting[f'{name}_share_of_epoch']['max']:.2%})"
                          for name in checks))
    write_results("index_check" + ("_quick" if repeats == 5 else ""), results)


if __name__ == "__main__":
    main()
