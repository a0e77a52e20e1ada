"""Run the benchmark suite: every script here, then one JSON file for the run and a markdown
summary table (``make bench``, ``fmlearn bench``; ``--quick`` for ``make bench-quick``).

Each script writes its own ``results/<name>.json``; this runner adds ``results/run.json``
(``run_quick.json``): the machine, each script's exit status and seconds, every figure the
scripts wrote during this run, and the summary rows, which ``results/summary.md``
(``summary_quick.md``) shows as one table, fmlearn's figures beside each peer's.

    python bench/run.py [--quick] [--only frappe_sgd.py ...]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS, machine, write_json

SCRIPTS = ["frappe_sgd.py", "bayes_movielens.py", "bayes_frappe.py", "peers.py", "read_speed.py",
           "stream_file.py", "serve_load.py", "ffm.py", "hofm.py", "ranking_movielens.py",
           "cli_libfm.py", "dask_cluster.py", "dask_exchange.py", "bandwidth_floor.py",
           "scaling.py", "defaults.py", "cli_startup.py", "cold_start.py", "ctr.py",
           "movielens_relations.py", "movielens_ordinal.py", "movielens_vb.py", "topn.py",
           "threads_used.py", "neural.py"]


def figure(value, digits=4):
    return "" if value is None else f"{value:.{digits}g}"


def speedup_text(ours, entry):
    """fmlearn's speed-up over a peer: min / median / max of alternating runs, or the ratio to
    a quoted time."""
    if "speedup" in entry:
        s = entry["speedup"]
        return f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f}"
    if ours and entry.get("seconds"):
        return f"{entry['seconds'] / ours:.2f} (quoted time)"
    return ""


def markdown(run):
    """The run's summary as a markdown page."""
    lines = [f"# Benchmark summary ({'quick' if run['quick'] else 'full'} run, {run['date']})",
             "", f"Machine: {run['machine']['cpu_count']} cores, {run['machine']['platform']}; "
             + ", ".join(f"{k} {v}" for k, v in run["machine"]["versions"].items()) + ".", "",
             "Speed-up: the peer's seconds over fmlearn's, min / median / max over runs "
             "alternating the two in this run (above 1: fmlearn is faster).", "",
             "| dataset | task | learner | metric | fmlearn | s per | peer | peer's metric | "
             "peer's s | speed-up | source |", "|" + "---|" * 11]
    for row in run["summary"]:
        head = (f"| {row['dataset']} | {row['task']} | {row['learner']} | {row['metric']} | "
                f"{figure(row['value'])} | {figure(row['seconds'], 3)} {row['per']} |")
        for entry in row["peers"] or [{"name": "", "value": None, "seconds": None, "source": ""}]:
            lines.append(f"{head} {entry['name']} | {figure(entry['value'])} | "
                         f"{figure(entry['seconds'], 3)} | {speedup_text(row['seconds'], entry)} | "
                         f"{entry['source']} |")
    missing = [name for name, status in run["scripts"].items() if not status["wrote"]]
    failed = [name for name, status in run["scripts"].items() if status["exit"] != 0]
    if missing or failed:
        lines += ["", f"Wrote nothing (skipped: data absent, or failed): {', '.join(missing)}."
                  if missing else "", f"Failed: {', '.join(failed)}." if failed else ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short version of each script")
    parser.add_argument("--only", nargs="+", choices=SCRIPTS, metavar="SCRIPT",
                        help="run these scripts only")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent
    started = time.time()
    scripts = {}
    for name in args.only or SCRIPTS:
        before = time.time()
        code = subprocess.run([sys.executable, str(here / name),
                               *(["--quick"] if args.quick else [])]).returncode
        scripts[name] = {"exit": code, "seconds": time.time() - before}
    written = sorted(p for p in RESULTS.glob("*.json")
                     if p.stat().st_mtime >= started and not p.stem.startswith("run"))
    benchmarks = {p.stem: json.loads(p.read_text()) for p in written}
    for name, status in scripts.items():
        stem = Path(name).stem
        status["wrote"] = [b for b in benchmarks if b == stem or b.startswith(stem + "_")]
    suffix = "_quick" if args.quick else ""
    run = {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
           "quick": args.quick, "seconds": time.time() - started, "machine": machine(),
           "scripts": scripts,
           "benchmarks": {name: {k: v for k, v in b.items() if k not in ("machine", "summary")}
                          for name, b in benchmarks.items()},
           "summary": [row for b in benchmarks.values() for row in b.get("summary", [])]}
    write_json(RESULTS / f"run{suffix}.json", run)
    (RESULTS / f"summary{suffix}.md").write_text(markdown(run))
    print(f"wrote {RESULTS / f'summary{suffix}.md'} ({run['seconds']:.0f} s)")
    failed = [name for name, status in scripts.items() if status["exit"] != 0]
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
