"""Run every benchmark script in bench/ (``make bench``; ``--quick`` for ``make bench-quick``)."""
import subprocess
import sys
from pathlib import Path

SCRIPTS = ["frappe_sgd.py", "bayes_movielens.py", "bayes_frappe.py", "read_speed.py", "stream_file.py",
           "serve_load.py", "ffm.py", "hofm.py", "ranking_movielens.py", "dask_cluster.py",
           "bandwidth_floor.py"]


def main():
    extra = ["--quick"] if "--quick" in sys.argv[1:] else []
    here = Path(__file__).resolve().parent
    failed = [name for name in SCRIPTS
              if subprocess.run([sys.executable, str(here / name), *extra]).returncode != 0]
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
