"""How long an `fmlearn` command takes to start: `--help`, and a command up to the point where it
would read data (a missing file ends it there), for this checkout and for an earlier commit
(`--before REV`, default HEAD), run alternately. Writes bench/results/cli_startup.json.

Each run is a new interpreter started as the console script starts one (`from fmlearn.cli import
main; main()`), with PYTHONPATH pointing at the tree measured; `python -c "import fmlearn"` is
the floor every command pays (the package and numba)."""
import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from common import ROOT, spread, write_results

COMMANDS = {
    "fmlearn --help": ["--help"],
    "fmlearn predict --help": ["predict", "--help"],
    "fmlearn train --help": ["train", "--help"],
    "fmlearn convert --help": ["convert", "--help"],
    "fmlearn predict missing.fm missing.libfm": ["predict", "missing.fm", "missing.libfm"],
    "fmlearn train -task r -train missing.libfm": ["train", "-task", "r", "-train",
                                                   "missing.libfm"],
}
LAUNCH = "import sys; from fmlearn.cli import main; sys.argv[0] = 'fmlearn'; main()"


def tree_of(rev, into):
    """``src/`` of commit ``rev``, unpacked under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return Path(into) / "src"


def seconds(argv, src, cwd):
    """Wall-clock seconds of one run of ``python argv`` with ``src`` on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default="HEAD", help="the commit to compare with")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="fmlearn-startup-") as tmp:
        trees = {"after": ROOT / "src", "before": tree_of(args.before, tmp)}
        runs = {("floor", "python -c 'import fmlearn'"): ["-c", "import fmlearn"]}
        for name, command in COMMANDS.items():
            for version in trees:
                runs[(version, name)] = ["-c", LAUNCH, *command]
        times = {key: [] for key in runs}
        for _ in range(repeats):  # alternating: every command once per round
            for (version, name), argv in runs.items():
                src = trees["after" if version == "floor" else version]
                times[(version, name)].append(seconds(argv, src, tmp))
    load = os.getloadavg()
    results = {}
    for (version, name), values in times.items():
        results.setdefault(name, {})[version] = spread(values)
    for name, by_version in results.items():
        print(f"{name:45}" + "  ".join(f"{v} {s['median']:.2f} s (min {s['min']:.2f})"
                                       for v, s in by_version.items()))
    print(f"load average {load[0]:.1f} on {os.cpu_count()} cores")
    write_results("cli_startup" + ("_quick" if args.quick else ""), {
        "before": args.before, "repeats": repeats, "load_average": load,
        "launch": f"python -c \"{LAUNCH}\" ARGS", "seconds": results})


if __name__ == "__main__":
    main()
