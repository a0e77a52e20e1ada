"""``fmlearn warmup``: compile the kernels into numba's cache before they are first needed."""
import os
import sys

import click

from ._common import CONTEXT, debug_option


@click.command(context_settings=CONTEXT,
               short_help="Compile the kernels into the cache (for images and workers).")
@click.option("--all", "everything", is_flag=True,
              help="float64 models, the staging of large fits' rows, the packed epochs of "
                   "their parameters and the file readers too, not only float32 models.")
@click.option("--kind", "kinds", multiple=True, metavar="NAME",
              help="Only this estimator kind, e.g. 'FMRegressor sgd' (repeatable).  "
                   "[default: every kind and solver]")
@debug_option
def warmup(everything: bool, kinds: tuple[str, ...]) -> None:
    """Compile every kernel the estimators use into numba's cache, so that later processes
    fit at once: run it when building a container image or on each cluster worker.

    The cache lies beside the installed sources (__pycache__), else in ~/.cache/numba;
    NUMBA_CACHE_DIR chooses the folder. One line per estimator kind on stderr.

    \b
    fmlearn warmup
    NUMBA_CACHE_DIR=/opt/cache fmlearn warmup --all
    """
    from ..warmup import warmup as run

    def progress(step: str, seconds: float) -> None:
        print(f"fmlearn: warmup: {step}: {seconds:.1f} s", file=sys.stderr, flush=True)

    total = sum(run(all=everything, kinds=kinds or None, progress=progress).values())
    where = os.environ.get("NUMBA_CACHE_DIR") or "beside the installed sources"
    print(f"fmlearn: warmup: done in {total:.1f} s; the cache is {where}.", file=sys.stderr)
