"""``fmlearn predict``, ``evaluate`` and ``info``: a model file and the rows it scores."""
import json
import os

import click

from ._common import CONTEXT, debug_option, file_error, format_option
from ._data import (check_readable, format_metric, load_model, metrics, predictions,
                    read_for_model, write_values)


@click.command(context_settings=CONTEXT, short_help="Write the predictions of MODEL for DATA.")
@click.argument("model")
@click.argument("data")
@click.option("-o", "--output", default="-", metavar="FILE", show_default=True,
              help="Where to write the predictions ('-': stdout).")
@click.option("--proba", is_flag=True,
              help="Classifiers: the probability of the second class instead of the label.")
@click.option("--labels/--no-labels", default=None,
              help="Whether each row starts with a label (ignored).  [default: as the first "
                   "data line of each file shows: a first token with ':' is a feature]")
@format_option
@debug_option
def predict(model, data, output, proba, labels, fmt):
    """Write the predictions of MODEL for the rows of DATA, one per line.

    The rows may start with a label (any value: it is not used) or not: '3 0:1 7:1' and
    '0:1 7:1' are the same row.
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
    >>> _ = (folder / "rows.libfm").write_text("0:1\\n2:1\\n")
    >>> result = CliRunner().invoke(predict, [model, str(folder / "rows.libfm")])
    >>> result.exit_code, len(result.stdout.split())
    (0, 2)
    """
    check_readable(model, data)
    estimator = load_model(model)
    if proba and not hasattr(estimator, "classes_"):
        raise click.UsageError(f"--proba needs a classifier model; {model} holds "
                               f"{type(estimator).__name__}.")
    rows = read_for_model(estimator, data, fmt, labels=labels)
    write_values(output, predictions(estimator, rows.X, proba))


@click.command(context_settings=CONTEXT)
@click.argument("model")
@click.argument("data")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@format_option
@debug_option
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
    >>> result = CliRunner().invoke(evaluate, [model, str(folder / "rows.libfm"), "--json"])
    >>> sorted(json.loads(result.stdout))
    ['accuracy', 'auc', 'data', 'logloss', 'model', 'n_rows']
    """
    check_readable(model, data)
    estimator = load_model(model)
    rows = read_for_model(estimator, data, fmt)
    scores = metrics(estimator, rows.X, rows.y)
    if as_json:
        click.echo(json.dumps({"model": os.fspath(model), "data": os.fspath(data),
                               "n_rows": rows.X.shape[0], **scores}))
        return
    for name, value in scores.items():
        click.echo(f"{name} = {format_metric(value)}")


@click.command(context_settings=CONTEXT)
@click.argument("model")
@debug_option
def info(model):
    """Print the header of a model file as JSON.

    The estimator, its parameters, the number of features, the classes and the arrays'
    shapes; no array is read (a SageMaker model.tar.gz is read whole).
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
    >>> header = json.loads(CliRunner().invoke(info, [model]).stdout)
    >>> header["estimator"], header["n_features_in_"]
    ('FMRegressor', 3)
    """
    from .. import read_header
    from ..sagemaker.artifact import is_model_tarball, read_header as read_tarball

    try:
        header = (read_tarball if is_model_tarball(model) else read_header)(model)
    except OSError as exc:
        raise file_error(model, exc) from exc
    click.echo(json.dumps(header, indent=2))


__test__ = {f"{command.name}_command": command.callback for command in (predict, evaluate, info)}
