"""LIBFFM's command lines: ``fmlearn ffm-train`` and ``fmlearn ffm-predict``, and the field
models of ``fmlearn train --model ffm|fwfm``.

``ffm-train [options] training_set_file [model_file]`` and ``ffm-predict test_file
model_file output_file`` take LIBFFM's arguments (``ffm-train.cpp``, ``ffm-predict.cpp`` of
ycjuan/libffm) and fit an :class:`~fmlearn.FFMClassifier` on LIBFFM's reading of the file:
a column per (field, feature id) token (:func:`fmlearn.io.load_ffm`). The model file is
fmlearn's (:func:`fmlearn.save`), by default ``<basename of training_set_file>.model`` in
the working directory, as LIBFFM names it.

=================  ============================================================================
LIBFFM option      :class:`~fmlearn.FFMClassifier`
=================  ============================================================================
-l (2e-5)          ``reg_factors`` (LIBFFM's ``lambda``: the L2 penalty of each latent vector
                   a pair uses, at each step)
-k (4)             ``n_factors``
-t (15)            ``max_iter``; all iterations run (``tol=None``) unless ``--auto-stop``
-r (0.2)           ``eta0``, with ``learning_rate="adagrad"`` (LIBFFM's AdaGrad)
-s (1)             ``n_jobs``
-p FILE            ``eval_set``: its log-loss is printed after each iteration
--auto-stop        ``early_stopping=True, n_iter_no_change=1``: stop at the first iteration
                   whose validation log-loss is not lower and keep the best model (needs -p)
--no-norm          ``normalize=False``; LIBFFM scales each row to unit length by default
                   (``normalize=True``)
--quiet            no line per iteration
(none)             ``fit_intercept=False, fit_linear=False``: LIBFFM's model has neither;
                   labels ``> 0`` are the class 1, the others -1, as LIBFFM reads them
--seed N           ``random_state`` (fmlearn's; LIBFFM seeds from a fixed state)
=================  ============================================================================

``ffm-predict`` also reads the model files of LIBFFM's own ``ffm-train``
(:func:`fmlearn.io.load_libffm_model`), and then gives LIBFFM's scores.

LIBFFM draws the initial latent vectors from U(0, 1/sqrt(k)); fmlearn from
N(0, ``init_std``\\ :sup:`2`) (``init_std=0.1``), so the two give close, not equal, models. Where an
id occurs under several fields LIBFFM shares its latent vectors; fmlearn's columns do not.
"""
import os

import click
import numpy as np

from ._common import CONTEXT, CommandError, debug_option

#: ``fmlearn train``'s ``-method`` values that the field models take.
FIELD_METHODS = ("sgd",)


def estimator_params(lam=2e-5, k=4, n_iter=15, eta=0.2, n_threads=1, norm=True,
                     auto_stop=False, seed=None):
    """The :class:`~fmlearn.FFMClassifier` parameters of LIBFFM's ``ffm-train`` options.

    Examples
    --------
    >>> estimator_params(k=8, auto_stop=True)  # doctest: +NORMALIZE_WHITESPACE
    {'n_factors': 8, 'max_iter': 15, 'tol': None, 'eta0': 0.2, 'learning_rate': 'adagrad',
     'reg_factors': 2e-05, 'normalize': True, 'fit_intercept': False, 'fit_linear': False,
     'n_jobs': 1, 'random_state': None, 'early_stopping': True, 'n_iter_no_change': 1}
    """
    params = {"n_factors": k, "max_iter": n_iter, "tol": None, "eta0": eta,
              "learning_rate": "adagrad", "reg_factors": lam, "normalize": norm,
              "fit_intercept": False, "fit_linear": False, "n_jobs": n_threads,
              "random_state": seed}
    if auto_stop:
        params.update(early_stopping=True, n_iter_no_change=1)
    return params


def field_model_spec(spec, model, method_given):
    """``spec`` (of libFM's flags) for ``fmlearn train --model ffm|fwfm``: the same
    parameters, without ``solver`` (the field models learn by SGD only).

    Examples
    --------
    >>> from fmlearn.cli.libfm import estimator_spec
    >>> est = field_model_spec(estimator_spec("c", method="sgd"), "ffm", False).estimator()
    >>> type(est).__name__, est.solver, est.eta0, est.learning_rate, est.max_iter
    ('FFMClassifier', 'sgd', 0.1, 'constant', 100)
    """
    solver = spec.params.pop("solver", "sgd")
    if solver not in FIELD_METHODS:
        hint = "" if method_given else " (libFM's default -method mcmc)"
        raise click.UsageError(f"-method {solver}{hint} is not available with --model {model}: "
                               "the field models learn by -method sgd.")
    spec.model = model
    return spec


def _labels(y):
    """LIBFFM's reading of a label: ``> 0`` is 1, anything else -1."""
    return np.where(y > 0, 1.0, -1.0)


@click.command("ffm-train", context_settings=CONTEXT,
               short_help="Train an FFM with LIBFFM's ffm-train options.")
@click.argument("training_set_file")
@click.argument("model_file", required=False)
@click.option("-l", "lam", type=click.FloatRange(min=0), default=2e-5, show_default=True,
              metavar="LAMBDA", help="L2 regularisation: reg_factors.")
@click.option("-k", "k", type=click.IntRange(min=1), default=4, show_default=True,
              metavar="FACTOR", help="Latent factors: n_factors.")
@click.option("-t", "n_iter", type=click.IntRange(min=1), default=15, show_default=True,
              metavar="ITERATION", help="Iterations: max_iter (all run: tol=None).")
@click.option("-r", "eta", type=click.FloatRange(min=0, min_open=True), default=0.2,
              show_default=True, metavar="ETA",
              help="Learning rate: eta0 with learning_rate='adagrad'.")
@click.option("-s", "n_threads", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="NR_THREADS", help="Threads: n_jobs.")
@click.option("-p", "validation", metavar="PATH",
              help="Validation set: eval_set, its log-loss printed each iteration.")
@click.option("--auto-stop", is_flag=True,
              help="Stop when the validation log-loss stops falling and keep the best "
                   "model: early_stopping=True, n_iter_no_change=1 (needs -p).")
@click.option("--no-norm", is_flag=True,
              help="normalize=False; by default each row is scaled to unit length "
                   "(normalize=True), as LIBFFM does.")
@click.option("--quiet", is_flag=True, help="No line per iteration.")
@click.option("--seed", type=int, help="random_state (fmlearn's option).")
@debug_option
def ffm_train(training_set_file, model_file, lam, k, n_iter, eta, n_threads, validation,
              auto_stop, no_norm, quiet, seed):
    """Train an FFM as LIBFFM's ffm-train does: no bias or linear terms
    (FFMClassifier with fit_intercept=False, fit_linear=False), AdaGrad, rows scaled to
    unit length, a column per (field, feature id) token.

    Writes fmlearn's model file, by default <basename of TRAINING_SET_FILE>.model (as
    LIBFFM), which fmlearn ffm-predict, predict and serve read. Labels > 0 are clicks.

    \b
    fmlearn ffm-train -k 8 -t 20 -p va.ffm --auto-stop tr.ffm model
    fmlearn ffm-predict te.ffm model output
    \f

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from click.testing import CliRunner
    >>> folder = Path(tempfile.mkdtemp())
    >>> rows = [f"{(u + a) % 2} 0:{u}:1 1:{5 + a}:1" for u in range(5) for a in range(4)]
    >>> _ = (folder / "tr.ffm").write_text("\\n".join(rows))
    >>> result = CliRunner().invoke(ffm_train, [str(folder / "tr.ffm"), str(folder / "m"),
    ...                                         "-t", "2", "--quiet", "--seed", "0"])
    >>> result.exit_code, (folder / "m").exists()
    (0, True)
    """
    from ._data import check_readable, read_data
    from .train import Progress, _fit, _save

    if auto_stop and validation is None:
        raise click.UsageError("--auto-stop needs a validation set: give -p PATH.")
    check_readable(*(p for p in (training_set_file, validation) if p))
    if model_file is None:
        model_file = os.path.basename(training_set_file) + ".model"
    train = read_data(training_set_file, "ffm", tokens=True)
    eval_set = None
    if validation is not None:
        valid = read_data(validation, "ffm", vocabulary=train.fields)
        eval_set = (valid.X, _labels(valid.y))
    from .. import FFMClassifier

    estimator = FFMClassifier(fields=train.fields, **estimator_params(
        lam, k, n_iter, eta, n_threads, not no_norm, auto_stop, seed))
    progress = None if quiet else Progress(n_iter, "validation" if validation else None,
                                            "logloss")
    _fit(estimator, train.X, _labels(train.y), progress, eval_set=eval_set)
    _save(estimator, model_file, quiet)


@click.command("ffm-predict", context_settings=CONTEXT,
               short_help="Write an FFM's probabilities, as LIBFFM's ffm-predict.")
@click.argument("test_file")
@click.argument("model_file")
@click.argument("output_file")
@click.option("--align", type=click.Choice(["4", "1"]), default="4", show_default=True,
              help="LIBFFM binary models: the kALIGN of the LIBFFM build that wrote them, 4 "
                   "with SSE (its default), 1 without.")
@debug_option
def ffm_predict(test_file, model_file, output_file, align):
    """Write the probability of a click for each row of TEST_FILE, one per line, and print
    the log-loss (labels > 0 are clicks), as LIBFFM's ffm-predict.

    MODEL_FILE is an fmlearn model file (fmlearn ffm-train or train writes one: tokens
    whose (field, feature id) it never saw are left out) or a model file of LIBFFM's own
    ffm-train (fmlearn.io.load_libffm_model: the scores are LIBFFM's).
    \f

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from click.testing import CliRunner
    >>> folder = Path(tempfile.mkdtemp())
    >>> rows = [f"{(u + a) % 2} 0:{u}:1 1:{5 + a}:1" for u in range(5) for a in range(4)]
    >>> _ = (folder / "tr.ffm").write_text("\\n".join(rows))
    >>> _ = CliRunner().invoke(ffm_train, [str(folder / "tr.ffm"), str(folder / "m"), "-t",
    ...                                    "2", "--quiet", "--seed", "0"])
    >>> result = CliRunner().invoke(ffm_predict, [str(folder / "tr.ffm"), str(folder / "m"),
    ...                                           str(folder / "out")])
    >>> result.stdout.split(" = ")[0], len((folder / "out").read_text().split())
    ('logloss', 20)
    """
    from ._data import (check_readable, load_model, metrics, predictions, read_data,
                        read_for_model, write_values)

    check_readable(test_file, model_file)
    if _is_libffm_model(model_file):
        from scipy.special import expit
        from sklearn.metrics import log_loss

        from ..io import load_libffm_model

        rows = read_data(test_file, "ffm", tokens=True)
        model = load_libffm_model(model_file, rows.fields, align=int(align))
        proba = expit(model.predict(rows.X))
        write_values(output_file, proba)
        click.echo(f"logloss = {log_loss(rows.y > 0, proba, labels=[False, True]):.5f}")
        return
    estimator = load_model(model_file)
    if not hasattr(estimator, "classes_"):
        raise CommandError(f"ffm-predict writes probabilities; {model_file} holds "
                           f"{type(estimator).__name__} (use fmlearn predict)", exit_code=2)
    rows = read_for_model(estimator, test_file, "ffm")
    write_values(output_file, predictions(estimator, rows.X, proba=True))
    logloss = metrics(estimator, rows.X, rows.y)["logloss"]
    click.echo(f"logloss = {logloss:.5f}")


def _is_libffm_model(path):
    """Whether ``path`` looks like LIBFFM's model file: its text header, or a binary header
    whose n, m, k give the file's size (for kALIGN 1 or 4)."""
    with open(path, "rb") as fh:
        head = fh.read(13)
    if head.startswith(b"n "):
        return True
    if len(head) < 13 or head[12] > 1:
        return False
    n, m, k = (int(v) for v in np.frombuffer(head, dtype="<i4", count=3))
    sizes = {13 + 8 * n * m * (-(-k // align) * align) for align in (1, 4)}
    return min(n, m, k) > 0 and os.path.getsize(path) in sizes


__test__ = {f"{command.name}_command": command.callback for command in (ffm_train, ffm_predict)}
