"""FFM's epoch against LIBFFM's, one thread, on frappe. Writes bench/results/ffm_libffm.json.

LIBFFM (github.com/ycjuan/libffm) is C++ and not on PyPI: build it from its source with its
own Makefile (g++ -O3 -march=native, SSE, OpenMP) and give its folder as ``--libffm`` or in
``LIBFFM_DIR``; without it this benchmark says so and stops.

Protocol: frappe's reconstructed train file (202,027 rows, its 10 fields; ../shared/data/frappe)
written as LIBFFM text by ``fmlearn.io.dump_ffm``. Both learn the same model: the field-aware
pairwise terms only (LIBFFM has no bias nor linear terms: ``fit_intercept=False``,
``fit_linear=False``), LIBFFM's instance-wise normalisation, AdaGrad at eta 0.2, lambda 2e-5,
k = 4 and 8, one thread, shuffled rows. Seconds per epoch = (seconds of a 21-epoch run - seconds
of a 1-epoch run) / 20, so that reading the data, LIBFFM's binary conversion (done once before
the timing) and setup cancel; LIBFFM runs as a process (``ffm-train``), fmlearn's ``fit`` in this
one. The runs alternate (fmlearn, LIBFFM, fmlearn, ...) ``--repeats`` times; the speed-up is
LIBFFM's epoch over fmlearn's per pair (min/median/max). Also each side's training log-loss after
21 epochs (LIBFFM's printed ``tr_logloss``, fmlearn's ``loss_curve_``).

    python bench/ffm_libffm.py [--libffm DIR] [--repeats 3]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_frappe, speedups, spread, write_results  # noqa: E402
from ffm import FRAPPE_FIELD_STARTS  # noqa: E402

from fmlearn import FFMClassifier  # noqa: E402
from fmlearn.io import dump_ffm  # noqa: E402

EPOCHS = 21
FACTORS = (4, 8)


def libffm_run(train_ffm, libffm, k, epochs, folder):
    """Seconds of ``ffm-train`` for ``epochs`` epochs and its last training log-loss."""
    command = [str(Path(libffm) / "ffm-train"), "-k", str(k), "-t", str(epochs), "-r", "0.2",
               "-l", "0.00002", "-s", "1", str(train_ffm), str(Path(folder) / "model")]
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True,
                         cwd=folder).stdout  # its binary cache goes to the working folder
    seconds = time.perf_counter() - start
    last = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()][-1]
    return seconds, float(last[1])


def ours_run(X, y, fields, k, epochs):
    """Seconds of ``FFMClassifier.fit`` for ``epochs`` epochs and its last training loss."""
    clf = FFMClassifier(fields=fields, n_factors=k, normalize=True, eta0=0.2,
                        learning_rate="adagrad", reg_factors=2e-5, reg_linear=0.0,
                        fit_intercept=False, fit_linear=False, max_iter=epochs, tol=None,
                        n_jobs=1, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached, on purpose
        clf.fit(X, y)
    return time.perf_counter() - start, float(clf.loss_curve_[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libffm", default=os.environ.get("LIBFFM_DIR"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.libffm or not (Path(args.libffm) / "ffm-train").exists():
        sys.exit("LIBFFM's ffm-train not found: build it from github.com/ycjuan/libffm (make) "
                 "and pass its folder as --libffm or LIBFFM_DIR.")
    (X, y), _, _ = load_frappe()
    fields = np.repeat(np.arange(10), np.diff(FRAPPE_FIELD_STARTS))
    results = {}
    with tempfile.TemporaryDirectory(prefix="fmlearn-libffm-") as folder:
        train_ffm = Path(folder) / "frappe_train.ffm"
        dump_ffm(X, (y > 0).astype(int), fields, train_ffm)
        libffm_run(train_ffm, args.libffm, 4, 1, folder)  # writes LIBFFM's binary cache
        ours_run(X[:2000], y[:2000], fields, 4, 1)  # compiles
        for k in FACTORS:
            epoch = {"fmlearn": [], "libffm": []}
            loss = {}
            for _ in range(args.repeats):
                for name, run in (("fmlearn", lambda n: ours_run(X, y, fields, k, n)),
                                  ("libffm", lambda n: libffm_run(train_ffm, args.libffm, k, n,
                                                                  folder))):
                    one, _ = run(1)
                    many, loss[name] = run(EPOCHS)
                    epoch[name].append((many - one) / (EPOCHS - 1))
            results[f"k{k}"] = {
                "seconds_per_epoch": {name: spread(v) for name, v in epoch.items()},
                "speedup_over_libffm": speedups(epoch["fmlearn"], epoch["libffm"]),
                "train_logloss_after_21_epochs": loss}
            print(f"k={k}: fmlearn {np.median(epoch['fmlearn']):.4f} s/epoch, LIBFFM "
                  f"{np.median(epoch['libffm']):.4f} s/epoch, speed-up "
                  f"{results[f'k{k}']['speedup_over_libffm']}, train log-loss {loss}",
                  flush=True)
    write_results("ffm_libffm", {"epochs": EPOCHS, "repeats": args.repeats,
                                 "libffm": "github.com/ycjuan/libffm, built with its Makefile",
                                 "results": results})


if __name__ == "__main__":
    main()
