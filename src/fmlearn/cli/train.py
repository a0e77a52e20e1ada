"""``fmlearn train``: libFM's command line (:mod:`.libfm`) or SageMaker's hyperparameters
(:mod:`.sagemaker`), the data files, the fit with one progress line per iteration, and what
it writes."""
import os
import sys
import time

import click
import numpy as np

from . import libffm, libfm, sagemaker
from ._common import CONTEXT, debug_option, file_error, format_option, note, warn
from ._data import (check_readable, data_files, format_metric, metrics, predictions, read_data,
                    sniff, widen, write_values)

_MODEL_FLAGS = ("task", "dim", "method", "n_iter", "learn_rate", "regular", "init_stdev",
                "model")


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


def _option(*names, **kwargs):
    return click.option(*names, cls=_LibFMOption, **kwargs)


@click.command(cls=_LibFMCommand, context_settings=CONTEXT,
               short_help="Train a model; libFM's flags work unchanged.")
@_option("--task", type=click.Choice(["r", "c", "o"]),
         help="r: regression, c: binary classification (targets <= 0 are the negative "
              "class), o: ordinal regression (ordered probit by -method mcmc; -out writes the "
              "expected value). Required unless --hyperparameters gives predictor_type.")
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
              " [default: 0; Python API: 0,auto,auto, per method]")
@_option("--init_stdev", "--init-stdev", "init_stdev", type=click.FloatRange(min=0),
         help="Standard deviation of the initial factors.  [default: 0.1; Python API: auto, "
              "per method]")
@_option("--iter", "n_iter", type=click.IntRange(min=1),
         help="Iterations: SGD epochs, ALS sweeps or MCMC samples.  [default: 100]")
@_option("--learn_rate", "--learn-rate", "learn_rate", metavar="LR",
         help="SGD learning rate.  [default: 0.1]")
@_option("--method", type=click.Choice(["sgd", "sgda", "als", "mcmc", "vb"],
                                       case_sensitive=False),
         help="Learning method; sgda: SGD with the regularisation learned on -validation; "
              "vb: variational Bayes. "
              " [default: mcmc; Python API: sgd]")
@_option("--model", type=click.Choice(["fm", "ffm", "fwfm"]),
         help="The model: a factorization machine, a field-aware FM (FFMRegressor / "
              "FFMClassifier) or a field-weighted FM (FwFM*), the last two from FFM files with "
              "a column per (field, feature id) token and -method sgd; libFM's flags map as "
              "for fm.  [default: ffm for FFM files, else fm]")
@_option("--meta", "meta_path", metavar="FILE",
         help="Feature groups of MCMC's priors and sgda's penalties: one group id per "
              "feature and line (fmlearn convert --meta writes one).")
@_option("--seed", type=int, help="Random seed; the same seed gives the same model.")
@_option("--verbosity", type=click.IntRange(min=0), default=0,
         help="1: also print the data sizes and the estimator.")
@_option("--rlog", "rlog_path", metavar="FILE",
         help="Write a tab-separated per-iteration log (libFM's -rlog).")
@_option("--save_model", "--save-model", "--model-out", "model_out", metavar="FILE",
         help="Write the trained model (fmlearn's model file; any method).")
@_option("--load_model", "--load-model", "load_model", metavar="FILE", hidden=True)
@_option("--relation", metavar="R1,R2",
         help="libFM's block structure files of each relation (R.x or R.xt, R.train, R.test, "
              "R.groups); their features follow the main table's.")
@_option("--cache_size", "--cache-size", "cache_size", hidden=True)
@_option("--hyperparameters", "hyperparameters_path", metavar="FILE",
         help="SageMaker's hyperparameters.json (see fmlearn.cli.sagemaker); replaces "
              "-task, -dim, -method, -iter, -learn_rate, -regular, -init_stdev.")
@format_option
@_option("--schedule", type=click.Choice(["constant", "adagrad", "invscaling"]),
         help="SGD learning-rate schedule.  [default: constant (libFM), adagrad "
              "(--hyperparameters, Python API)]")
@_option("--burn-in", "burn_in", type=_BurnIn(),
         help="MCMC samples left out of the prediction average.  [default: 0; Python API: "
              "auto]")
@_option("--python-defaults", "python_defaults", is_flag=True,
         help="Take the Python API's defaults for the flags not given: -method sgd, "
              "-init_stdev auto, -regular 0,auto,auto, --schedule adagrad, --burn-in auto, "
              "and stop when the training loss improves by less than 1e-4 (tol).")
@_option("--n-jobs", "n_jobs", type=int, help="Threads (-1: all cores).  [default: 1]")
@_option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
         show_default=True, help="Floating type of the model.")
@_option("-q", "--quiet", is_flag=True,
         help="No progress: no line per iteration, no bar.")
@_option("--plot", "plot_path", metavar="FILE",
         help="Save the learning curve (training loss, and the -validation or -test metric, "
              "per iteration) as an image, e.g. curve.png; needs matplotlib.")
@debug_option
def train(task, train_path, test_path, validation_path, out_path, dim, regular, init_stdev,
          n_iter, learn_rate, method, model, meta_path, seed, verbosity, rlog_path, model_out,
          load_model, relation, cache_size, hyperparameters_path, fmt, schedule, burn_in,
          python_defaults, n_jobs, dtype, quiet, plot_path):
    """Train a factorization machine; libFM's command line works unchanged.

    libFM's one-dash flags (-task, -train, -dim, ...) and their --name spelling are
    both accepted. Each iteration prints one line on stderr (iteration from 1, the
    training loss, the RMSE or log-loss of -validation, else -test; on a terminal also a
    progress bar); the final test metrics go to stdout (test:rmse, or test:accuracy,
    test:logloss, test:auc).

    \b
    fmlearn train -task r -train ml.train.libfm -test ml.test.libfm -dim '1,1,8' \\
                  -iter 100 -method mcmc -init_stdev 0.1 -meta groups.txt -out pred.txt
    fmlearn train --hyperparameters hp.json --train data.recordio --model-out model.fm

    The defaults are libFM's, not the Python API's: -method mcmc (API: sgd), -init_stdev
    0.1 (auto: per method), -regular 0 (0,auto,auto), --schedule constant (adagrad),
    --burn-in 0 (auto), and all -iter iterations run (the API stops early at tol=1e-4).
    --python-defaults takes the API's.

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
    >>> result = CliRunner().invoke(train, ["-task", "r", "-train", str(data),
    ...     "-test", str(data), "-method", "als", "-regular", "0,0.1,0.1",
    ...     "-iter", "5", "-dim", "1,1,2", "-seed", "0", "-q"])
    >>> result.exit_code, result.stdout.splitlines()[0].split(" = ")[0]
    (0, 'test:rmse')
    """
    ctx = click.get_current_context()
    if load_model is not None:
        raise libfm.unsupported("-load_model", "fmlearn cannot read libFM model files; train "
                                "anew (fmlearn's own model files are read by predict).")
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
    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    if hyperparameters_path is not None:
        clash = [{"n_iter": "-iter", "model": "--model"}.get(name, f"-{name}")
                 for name in _MODEL_FLAGS if name in given]
        clash += ["--python-defaults"] if python_defaults else []
        if clash:
            raise click.UsageError(f"{', '.join(clash)} cannot be combined with "
                                   "--hyperparameters, which sets the model.", ctx)
        spec, messages = sagemaker.estimator_spec(
            sagemaker.read_hyperparameters(hyperparameters_path))
        for message in messages:
            warn(message)
        spec.params.update(random_state=seed, learning_rate=schedule or "adagrad")
    else:
        if task is None:
            raise click.UsageError("Missing option '-task' (r: regression, c: binary "
                                   "classification, o: ordinal), or give --hyperparameters.",
                                   ctx)
        if model is None:
            check_readable(train_path)
            head = fmt if fmt != "auto" else sniff(data_files(train_path)[0]).format
            model = "ffm" if head == "ffm" else "fm"
        spec = libfm.estimator_spec(
            task, method=(method or ("sgd" if python_defaults or model != "fm"
                                     else "mcmc")).lower(),
            dim=dim or "1,1,8", regular=regular, learn_rate=learn_rate or "0.1",
            init_stdev=0.1 if init_stdev is None else init_stdev, n_iter=n_iter or 100,
            seed=seed, burn_in=0 if burn_in is None else burn_in,
            schedule=schedule or "constant", has_validation=validation_path is not None)
        if python_defaults:
            spec = libfm.python_defaults(spec, given)
        if model != "fm":
            spec = libffm.field_model_spec(spec, model, "method" in given)
    if out_path is not None and test_path is None:
        raise click.UsageError("-out writes the predictions for -test; give -test.", ctx)
    check_readable(*(p for p in (train_path, test_path, validation_path, meta_path) if p))
    spec.params.update(n_jobs=n_jobs, dtype=dtype, verbose=0)
    for message in spec.notes:
        note(message)

    data = _read_training_data(spec, fmt, dtype, train=train_path, test=test_path,
                               validation=validation_path)
    if spec.model != "fm":
        if data["train"].fields is None:
            raise click.UsageError(f"--model {spec.model} needs the fields of FFM rows "
                                   f"(field:index:value); {train_path} holds "
                                   f"{data['train'].format} rows.", ctx)
        spec.params["fields"] = data["train"].fields
    groups = libfm.read_groups(meta_path) if meta_path is not None else None
    width = max([d.X.shape[1] for d in data.values()] + [0 if groups is None else groups.size])
    if spec.n_features is not None:
        width = spec.n_features
    why = f"feature_dim={width}" if spec.n_features is not None else None
    data = {name: widen(d, width, why) for name, d in data.items()}
    estimator = spec.estimator()
    feature_groups = _feature_groups(estimator.solver, groups, meta_path, data["train"], width)
    relations = {}
    if relation is not None:
        if "validation" in data or spec.model != "fm" or spec.task == "ordinal":
            raise click.UsageError("-relation needs --model fm, -task r or c and no -validation "
                                   "(libFM has no block mapping for validation rows).", ctx)
        main = np.zeros(width, np.int64) if feature_groups is None else feature_groups[:width]
        relations, all_groups = libfm.read_relations(
            relation, {name: d.X.shape[0] for name, d in data.items()}, main)
        feature_groups = all_groups if estimator.solver == "mcmc" else feature_groups

    def target(d):
        if spec.task in ("regression", "ordinal"):
            return d.y
        return np.where(d.y > 0, 1.0, spec.negative_label)

    eval_name = next((n for n in ("validation", "test") if n in data), None)
    eval_set = None if eval_name is None else (data[eval_name].X, target(data[eval_name]),
                                               *([relations[eval_name]] if relations else []))
    if verbosity >= 1:
        for name, d in data.items():
            click.echo(f"fmlearn: {name}: {d.path} ({d.format}): {d.X.shape[0]} rows, "
                       f"{d.X.shape[1]} features, {d.X.nnz} non-zeros", err=True)
        click.echo(f"fmlearn: {' '.join(repr(estimator).split())}", err=True)  # one line
    progress = None if quiet else Progress(
        estimator.max_iter, eval_name, "rmse" if spec.task == "regression" else "logloss")
    _fit(estimator, data["train"].X, target(data["train"]), progress, eval_set=eval_set,
         feature_groups=feature_groups, relations=relations.get("train"))

    if rlog_path is not None:
        libfm.write_rlog(rlog_path, estimator, eval_name)
    if plot_path is not None:
        _plot(estimator, plot_path)
    if model_out is not None:
        _save(estimator, model_out, quiet)
    if "test" in data:
        test = data["test"]
        if out_path is not None:
            write_values(out_path, predictions(estimator, test.X, proba=True,
                                               relations=relations.get("test")))
        for name, value in metrics(estimator, test.X, target(test),
                                   relations=relations.get("test")).items():
            click.echo(f"test:{name} = {format_metric(value)}")


class Progress:
    """One line per iteration on stderr as it ends, and on a terminal a bar below them.

    An estimator calls it after each epoch's history is recorded (its ``_end_epoch`` hook,
    set on the instance for one fit by :func:`_fit`). Iterations count from 1; the
    evaluation score is printed as the metric itself (the estimators record its negative,
    higher being better): ``validation_rmse 0.912345``.

    Parameters
    ----------
    n_iter : int
        The most iterations the fit runs.
    eval_name : str or None
        "validation" or "test": the data scored each iteration.
    measure : str
        "rmse" or "logloss".
    stream : file, optional
        Where to write; default stderr. A bar is drawn when it is a terminal.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> progress = Progress(20, "test", "rmse", stream=out)
    >>> progress(None, None, None, [0.5, 0.25], [-1.5, -1.25])
    >>> print(out.getvalue().rsplit("  ", 1)[0])  # and the seconds since the start
    fmlearn: iter  2/20  train_loss 0.250000  test_rmse 1.250000
    """

    def __init__(self, n_iter, eval_name, measure, stream=None):
        self.n_iter = n_iter
        self.score_name = None if eval_name is None else f"{eval_name}_{measure}"
        self.stream = sys.stderr if stream is None else stream
        self.start = time.perf_counter()
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=n_iter, desc="fmlearn", unit="iter", leave=False,
                            file=self.stream)

    def __call__(self, solver, model, state, loss_curve, val_scores):
        line = (f"fmlearn: iter {len(loss_curve):>{len(str(self.n_iter))}}/{self.n_iter}  "
                f"train_loss {loss_curve[-1]:.6f}")
        if self.score_name is not None and val_scores:
            line += f"  {self.score_name} {-val_scores[-1]:.6f}"
        line += f"  {time.perf_counter() - self.start:.1f} s"
        if self.bar is None:
            click.echo(line, file=self.stream)
        else:
            self.bar.update()
            self.bar.write(line, file=self.stream)

    def close(self):
        """Take the bar off the terminal."""
        if self.bar is not None:
            self.bar.close()


def _fit(estimator, X, y, progress, **fit):
    """``estimator.fit(X, y, **fit)``, calling ``progress`` (a :class:`Progress` or None)
    after each epoch."""
    if progress is None:
        estimator.fit(X, y, **fit)
        return
    estimator._end_epoch = progress  # the per-epoch hook of BaseFM's epoch loop
    try:
        estimator.fit(X, y, **fit)
    finally:
        del estimator._end_epoch
        progress.close()


def _read_training_data(spec, fmt, dtype, **paths):
    """The data sets by name; for the field models, FFM files as (field, id) columns, the
    others through the vocabulary of ``train`` (the first)."""
    from ..io.errors import DataFormatError

    data = {}
    tokens = spec.model != "fm"
    for name, path in paths.items():
        if path is None:
            continue
        vocabulary = data["train"].fields if tokens and name != "train" else None
        try:
            data[name] = read_data(path, fmt, n_features=spec.n_features, dtype=np.dtype(dtype),
                                   tokens=tokens, vocabulary=vocabulary)
        except DataFormatError as exc:
            if "out of range for n_features" not in exc.problem:
                raise
            raise DataFormatError(exc.path, f"{exc.problem} (the hyperparameter feature_dim)",
                                  line=exc.line) from exc
    return data


def _feature_groups(solver, groups, meta_path, train, width):
    from ..io.errors import DataFormatError

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


__test__ = {"train_command": train.callback}
