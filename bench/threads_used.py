"""Threads nobody asked for: does every fit and predict use exactly the threads n_jobs allows?

For each learner on a9a, with ``n_jobs`` 1 and 2, a warm fit and a predict are run while the
CPU time of every thread of the process is read before and after (psutil). Reported: the wall
seconds, the process's CPU seconds, CPU over wall, and the threads that were busy (more than 5 %
of the wall time on the CPU). A call keeps to ``n_jobs`` when its busy threads and its CPU over
wall are at most ``n_jobs``. The command line is measured on its child process (``fmlearn train
--n-jobs`` then ``fmlearn predict``) from the child's CPU time, less that of a process that only
imports it (numpy's BLAS spins its threads up at import, before any option is read).
A run repeats each call for at least 2 s (0.5 s with ``--quick``): threads' CPU times tick in
hundredths of a second.

``--without-limits`` runs the same with fmlearn's thread limits switched off, to show what they
prevent (BLAS pools of the machine's size spinning after a call). CPU time is the process's
own, so a busy machine stretches the wall time but cannot raise CPU over wall.

    python bench/threads_used.py [--quick] [--without-limits]
"""
import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import psutil
from sklearn.exceptions import ConvergenceWarning

import fmlearn
from fmlearn import _threads
from common import require, write_results

BUSY = 0.05  # a thread is busy when it ran more than this share of the wall time
STARTUP = "import fmlearn.cli, fmlearn.persistence"  # what the command line imports first
LEARNERS = {
    "sgd": dict(solver="sgd", max_iter=10),
    "ftrl": dict(solver="ftrl", max_iter=10),
    "adam": dict(solver="adam", max_iter=5),
    "als": dict(solver="als", max_iter=20),
    "mcmc": dict(solver="mcmc", max_iter=100),
    "vb": dict(solver="vb", max_iter=20),
}


def thread_times():
    """CPU seconds of each thread of this process, by thread id."""
    return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}


def measure(call, min_wall):
    """Wall and CPU seconds of ``call()``, repeated until ``min_wall`` seconds have passed
    (threads' CPU times tick in hundredths of a second), and how many threads were busy."""
    before, start, calls = thread_times(), time.perf_counter(), 0
    while calls == 0 or time.perf_counter() - start < min_wall:
        call()
        calls += 1
    wall, after = time.perf_counter() - start, thread_times()
    used = [after[t] - before.get(t, 0.0) for t in after]
    cpu = float(sum(used))
    return {"calls": calls, "wall": wall, "cpu": cpu, "cpu_over_wall": cpu / wall,
            "busy_threads": int(sum(u > BUSY * wall for u in used))}


def learner_rows(X, y, n_jobs_values, quick):
    rows, min_wall = {}, 0.5 if quick else 2.0
    for name, params in LEARNERS.items():
        if quick:
            params = {**params, "max_iter": 2}
        for n_jobs in n_jobs_values:
            est = fmlearn.FMClassifier(n_factors=8, n_jobs=n_jobs, random_state=0, tol=None,
                                       **params)
            est.fit(X[:200], y[:200])                    # compiles the kernels first
            fit = measure(lambda: est.fit(X, y), min_wall)
            predict = measure(lambda: est.predict_proba(X), min_wall)
            rows[f"{name}/n_jobs={n_jobs}"] = {"fit": fit, "predict": predict,
                                               "allowed": n_jobs}
            print(f"{name:5s} n_jobs={n_jobs}: fit CPU/wall {fit['cpu_over_wall']:.2f} "
                  f"busy {fit['busy_threads']}; predict CPU/wall "
                  f"{predict['cpu_over_wall']:.2f} busy {predict['busy_threads']}")
    return rows


def child_seconds(command):
    """Wall and CPU seconds of running ``command`` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def command_line_rows(train_file, n_jobs_values, quick):
    """The command line's train and predict, less the start of a process that imports them
    (numpy's BLAS starts its threads at import, before any option is read)."""
    script = os.path.join(os.path.dirname(sys.executable), "fmlearn")
    start_wall, start_cpu = min(child_seconds([sys.executable, "-c", STARTUP]) for _ in range(3))
    rows = {"start": {"wall": start_wall, "cpu": start_cpu}}
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "a9a.fm")
        for n_jobs in n_jobs_values:
            for command in (["train", "-task", "c", "-train", str(train_file), "-method", "mcmc",
                             "-dim", "1,1,8", "-iter", "5" if quick else "100",
                             "-save_model", model, "--n-jobs", str(n_jobs)],
                            ["predict", model, str(train_file), "-o", os.path.join(tmp, "out")]):
                wall, cpu = child_seconds([script, *command])
                ratio = (cpu - start_cpu) / (wall - start_wall)
                rows[f"fmlearn {command[0]}/n_jobs={n_jobs}"] = {
                    "wall": wall, "cpu": cpu, "cpu_over_wall": ratio, "allowed": n_jobs}
                print(f"fmlearn {command[0]} (n_jobs={n_jobs}): CPU/wall {ratio:.2f} after the "
                      f"start ({cpu:.2f} s CPU, {wall:.2f} s wall in all)")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, a tenth of the rows")
    parser.add_argument("--without-limits", action="store_true",
                        help="switch fmlearn's thread limits off (to show what they prevent)")
    args = parser.parse_args()
    from sklearn.datasets import load_svmlight_file
    train_file, = require("a9a/a9a")
    X, y = load_svmlight_file(str(train_file), n_features=123, dtype=np.float32)
    if args.quick:
        X, y = X[:3000], y[:3000]
    if args.without_limits:
        _threads.thread_limits = lambda n_threads: contextlib.nullcontext()
    warnings.simplefilter("ignore", ConvergenceWarning)
    n_jobs_values = [1, 2] if os.cpu_count() >= 2 else [1]
    rows = learner_rows(X, y, n_jobs_values, args.quick)
    if not args.without_limits:
        rows.update(command_line_rows(train_file, n_jobs_values, args.quick))
    kept = all(r.get("fit", r)["cpu_over_wall"] <= r["allowed"] * 1.05
               and r.get("predict", r)["cpu_over_wall"] <= r["allowed"] * 1.05
               and r.get("fit", {}).get("busy_threads", 0) <= r["allowed"]
               and r.get("predict", {}).get("busy_threads", 0) <= r["allowed"]
               for r in rows.values() if "allowed" in r)
    print("every call kept to n_jobs:", kept)
    name = "threads_used" + ("_without_limits" if args.without_limits else "") + (
        "_quick" if args.quick else "")
    write_results(name, {"protocol": __doc__, "busy_share": BUSY, "rows": rows,
                         "kept_to_n_jobs": kept})


if __name__ == "__main__":
    main()
