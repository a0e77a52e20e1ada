"""The ``fmlearn`` command: ``train``, ``predict``, ``evaluate``, ``info``, ``convert``,
``serve``, ``demo``, ``bench``, ``warmup``, ``ffm-train``, ``ffm-predict``.

The commands parse, read files and call the library; they hold no model logic. One module
per job:

=============  ================================================================================
``train``      ``fmlearn train``; libFM's command line (``libfm``) and SageMaker's
               hyperparameters (``sagemaker``) map onto the estimators
``predict``    ``fmlearn predict``, ``evaluate``, ``info``
``libffm``     ``fmlearn ffm-train``, ``ffm-predict``: LIBFFM's command lines; the field
               models of ``train --model ffm|fwfm``
``convert``    ``fmlearn convert``: CSV/TSV/Parquet tables to libFM, libSVM, FFM, RecordIO files
``serve``      ``fmlearn serve``
``demo``       ``fmlearn demo`` and ``bench``
``warmup``     ``fmlearn warmup``: compile the kernels into numba's cache
``_common``    exit statuses, errors, messages, the shared options
``_data``      reading data files (with or without labels) and models, writing values, metrics
``_tables``    for ``convert``: reading tables, the vocabulary, the rows under it
=============  ================================================================================

A command starts without loading SciPy, scikit-learn, pandas, the estimators or the readers
of :mod:`fmlearn.io`: each is imported inside the function that first needs it, so that
``fmlearn CMD --help`` and a mistyped flag answer at once (``bench/cli_startup.py``).

Exit statuses
-------------
0
    Success.
1
    Training or prediction failed (e.g. the parameters diverged), or an optional
    dependency is missing. The message says what to do.
2
    A usage error (click's message with the usage line: an unknown flag, a bad value,
    a flag fmlearn does not honour), or a file that cannot be read or written:
    ``fmlearn: error: cannot read 'x.svm': No such file or directory``.
65
    A malformed data, groups, hyperparameters or model file (``EX_DATAERR`` of
    sysexits.h): ``fmlearn: error: x.svm, line 7, column 3: the value in '3:abc' is not
    a number``.

Errors print one line, ``fmlearn: error: ...``, without a traceback; ``--debug``
(anywhere on the line, or ``FMLEARN_DEBUG=1``) shows the traceback instead.

Examples
--------
>>> from click.testing import CliRunner
>>> result = CliRunner().invoke(cli, ["--help"])
>>> result.exit_code
0
>>> print(result.output.rstrip())  # doctest: +ELLIPSIS
Usage: fmlearn [OPTIONS] COMMAND [ARGS]...
...
Commands:
  bench        Run the benchmark suite of a source checkout (its...
  convert      Convert a CSV/TSV/Parquet table to libFM, libSVM, FFM or
               RecordIO.
  demo         Run the MovieLens demo (fmlearn.demo).
  evaluate     Print the metrics of MODEL on the labelled rows of DATA.
  ffm-predict  Write an FFM's probabilities, as LIBFFM's ffm-predict.
  ffm-train    Train an FFM with LIBFFM's ffm-train options.
  info         Print the header of a model file as JSON.
  predict      Write the predictions of MODEL for DATA.
  serve        Serve MODEL over HTTP (SageMaker's inference contract).
  train        Train a model; libFM's flags work unchanged.
  warmup       Compile the kernels into the cache (for images and workers).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, TextIO

import click

from .. import __version__
from ._common import (CONTEXT, DEBUG, EXIT_DATA, EXIT_FAILURE, EXIT_USAGE, CommandError,
                      debug_option, file_error, warn)
from . import convert, demo, libffm, predict, serve, train, warmup

__all__ = ["cli", "main"]


def _error_for(exc: Exception) -> CommandError:
    """The ``CommandError`` a library exception is shown as."""
    from sklearn.utils._param_validation import InvalidParameterError

    from ..io.errors import DataFormatError
    from ..persistence import ModelFileError

    if isinstance(exc, (DataFormatError, ModelFileError)):
        return CommandError(str(exc), EXIT_DATA)
    if isinstance(exc, InvalidParameterError):
        return CommandError(f"invalid value: {exc}", EXIT_USAGE)
    if isinstance(exc, OSError) and exc.filename is not None:
        return file_error(exc.filename, exc, "access")
    if isinstance(exc, ValueError):
        return CommandError(str(exc), EXIT_FAILURE)
    return CommandError(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)",
                        EXIT_FAILURE)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    warn(str(message))


class _Group(click.Group):
    """Runs the subcommand; library errors become one-line messages unless ``--debug``."""

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except Exception as exc:
                if ctx.meta.get(DEBUG):
                    raise
                raise _error_for(exc) from exc


@click.group("fmlearn", cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="fmlearn")
@debug_option
def cli() -> None:
    """Factorization machines for sparse data: train, predict, evaluate, serve.

    \b
    fmlearn convert ratings.csv ml.libfm --categorical user,item --target rating
    fmlearn train -task r -train ml.train.libfm -test ml.test.libfm -dim '1,1,8' \\
                  -iter 100 -method mcmc -out pred.txt --model-out model.fm
    fmlearn predict model.fm new.libfm -o pred.txt
    fmlearn evaluate model.fm ml.test.libfm --json
    fmlearn serve model.fm --port 8080

    train's defaults are libFM's (-method mcmc, -init_stdev 0.1, ...), not the Python
    API's; see fmlearn train --help and --python-defaults.

    Exit status: 0 success, 1 failure, 2 usage error or unreadable file, 65 malformed
    data or model file.
    """


for _command in (train.train, predict.predict, predict.evaluate, predict.info, convert.convert,
                 serve.serve, demo.demo, demo.bench, warmup.warmup, libffm.ffm_train,
                 libffm.ffm_predict):
    cli.add_command(_command)


def main(args: Sequence[str] | None = None) -> None:
    """Run the ``fmlearn`` command (the console script) and exit with its status.

    Parameters
    ----------
    args : list of str, optional
        The arguments; by default ``sys.argv[1:]``.

    Examples
    --------
    >>> try:
    ...     main(["--version"])
    ... except SystemExit as exit:
    ...     print("exit status", exit.code)
    fmlearn, version 0.1.0
    exit status 0
    """
    cli.main(args=args, prog_name="fmlearn")
