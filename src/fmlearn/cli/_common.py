"""What the commands share: exit statuses, errors and messages, common options, ``TrainSpec``.

Nothing here imports more than click: ``fmlearn CMD --help`` loads this module, the
command modules and no scientific library (see :mod:`fmlearn.cli`).
"""
import os
from dataclasses import dataclass, field

import click

#: Exit statuses of the ``fmlearn`` command.
EXIT_OK = 0
EXIT_FAILURE = 1  # training or prediction failed (diverged, a missing optional dependency, ...)
EXIT_USAGE = 2  # a bad flag or value, or a file that cannot be read or written
EXIT_DATA = 65  # a malformed data, groups, hyperparameters or model file (sysexits' EX_DATAERR)

FORMATS = ("auto", "libsvm", "ffm", "recordio")

#: The settings of every command: ``-h`` as ``--help``, help text up to 100 columns wide.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEBUG = "fmlearn.debug"  # the key of ``ctx.meta`` that ``--debug`` sets


def _set_debug(ctx, param, value):
    if value:
        ctx.meta[DEBUG] = True


#: ``--debug`` (anywhere on the line, or ``FMLEARN_DEBUG=1``): the traceback of an error.
debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    envvar="FMLEARN_DEBUG", help="Show the Python traceback of an error instead of one line.")
#: ``--format``: the data format of the files a command reads.
format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
    help="Data format: libSVM/libFM text, FFM text or SageMaker RecordIO-protobuf; 'auto' "
         "looks at RecordIO's magic word, else at the first feature token.")


class CommandError(click.ClickException):
    """An error a shell user can act on: ``fmlearn: error: <message>`` and an exit status.

    Parameters
    ----------
    message : str
        What went wrong and, where it helps, what to do.
    exit_code : int, default=1
        The exit status (see the ``EXIT_*`` constants of this module).

    Examples
    --------
    >>> import io
    >>> err = CommandError("cannot read 'x.svm': No such file or directory", exit_code=2)
    >>> stream = io.StringIO(); err.show(stream); print(stream.getvalue(), end="")
    fmlearn: error: cannot read 'x.svm': No such file or directory
    >>> err.exit_code
    2
    """

    def __init__(self, message, exit_code=EXIT_FAILURE):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None):
        """Write ``fmlearn: error: <message>`` to ``file`` (default: stderr)."""
        click.echo(f"fmlearn: error: {self.format_message()}", file=file, err=file is None)


def file_error(path, exc, verb="read"):
    """The ``CommandError`` (exit 2) for an ``OSError`` on ``path``.

    Examples
    --------
    >>> print(file_error("x.svm", FileNotFoundError(2, "No such file or directory")))
    cannot read 'x.svm': No such file or directory
    """
    reason = exc.strerror or str(exc)
    return CommandError(f"cannot {verb} '{os.fspath(path)}': {reason}", EXIT_USAGE)


def note(message):
    """Print ``fmlearn: note: <message>`` on stderr.

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     note("-cache_size is ignored")
    >>> err.getvalue()
    'fmlearn: note: -cache_size is ignored\\n'
    """
    click.echo(f"fmlearn: note: {message}", err=True)


def warn(message):
    """Print ``fmlearn: warning: <message>`` on stderr.

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     warn("eps is ignored")
    >>> err.getvalue()
    'fmlearn: warning: eps is ignored\\n'
    """
    click.echo(f"fmlearn: warning: {message}", err=True)


@dataclass
class TrainSpec:
    """What a command line or a hyperparameter file asks ``train`` to fit.

    Attributes
    ----------
    task : {"regression", "classification", "ordinal"}
    params : dict
        Keyword arguments of the estimator: :class:`~fmlearn.FMRegressor` or
        :class:`~fmlearn.FMClassifier` (or their FFM or FwFM counterparts, by ``model``).
    negative_label : float
        The label rows with a target ``<= 0`` get for classification (libFM: -1,
        SageMaker: 0); the others get 1.
    n_features : int or None
        A width the data must fit in (SageMaker's ``feature_dim``).
    notes : list of str
        What was mapped loosely or ignored, printed before training.
    model : {"fm", "ffm", "fwfm"}, default="fm"
        The model family.
    """

    task: str
    params: dict
    negative_label: float = -1.0
    n_features: int | None = None
    notes: list = field(default_factory=list)
    model: str = "fm"

    def estimator(self):
        """The unfitted estimator.

        Examples
        --------
        >>> TrainSpec("regression", {"n_factors": 4}).estimator()
        FMRegressor(n_factors=4)
        >>> TrainSpec("classification", {"n_factors": 4}, model="ffm").estimator()
        FFMClassifier(n_factors=4)
        """
        import fmlearn

        if self.task == "ordinal":
            return fmlearn.FMOrdinalRegressor(**self.params)
        prefix = {"fm": "FM", "ffm": "FFM", "fwfm": "FwFM"}[self.model]
        suffix = "Regressor" if self.task == "regression" else "Classifier"
        return getattr(fmlearn, prefix + suffix)(**self.params)
