"""SageMaker's Factorization Machines hyperparameters for ``fmlearn train --hyperparameters``.

SageMaker passes hyperparameters as ``/opt/ml/input/config/hyperparameters.json``, a JSON
object whose values are all strings (``{"num_factors": "64", ...}``); numbers are accepted
too. Names and defaults are those of the AWS documentation page
``fact-machines-hyperparameters``. How each maps:

=======================  ====================================================================
SageMaker                fmlearn (``solver="adam"``: MXNet's sparse FM, which SageMaker's runs)
=======================  ====================================================================
predictor_type           ``regressor`` → ``FMRegressor`` (``clip_predictions=False``: MXNet's
                         raw score), ``binary_classifier`` → ``FMClassifier``; labels
                         ``> 0`` are 1, the others 0. Required.
feature_dim              the model width; a row with a larger index is an error. Required.
num_factors              ``n_factors``. Required.
epochs                   ``max_iter`` (default 1; ``tol=None``: all epochs run).
mini_batch_size          ``batch_size`` (default 1000).
bias_lr, linear_lr,      ``lr_intercept``, ``lr_linear``, ``lr_factors`` (defaults 0.1, 0.001,
factors_lr               0.0001): Adam's rate per term (MXNet's ``lr_mult`` at rate 1).
bias_wd, linear_wd,      ``reg_intercept``, ``reg_linear``, ``reg_factors`` (defaults 0.01,
factors_wd               0.001, 0.00001): MXNet's weight decay, ``wd * theta`` added to the
                         rescaled gradient of the parameters a batch touches.
``*_init_method``,       ``init_intercept``, ``init_linear``, ``init_factors`` =
``*_init_sigma``,        ``("normal", *_init_sigma)`` (default; sigma 0.01, 0.01, 0.001),
``*_init_scale``,        ``("uniform", *_init_scale)`` (U(-scale, scale); the scale is
``*_init_value``         required) or ``("constant", *_init_value)`` (the value is required);
                         for ``bias``, ``linear`` and ``factors``.
clip_gradient            ``clip_gradient``: each coordinate of the rescaled, decayed gradient
                         clipped to [-c, c] (default: none).
eps                      ``eps`` (default 1e-8), Adam's term in the step's denominator.
rescale_grad             ``rescale_grad`` (default: 1 / the rows in the batch, MXNet's
                         1 / ``mini_batch_size``).
=======================  ====================================================================

Adam's ``beta1`` and ``beta2`` are MXNet's 0.9 and 0.999, which SageMaker does not expose.

Names starting with ``_`` or ``sagemaker_`` (set by SageMaker itself, e.g.
``_tuning_objective_metric``) are ignored silently; other unknown names with a warning.

Run with no ``--train``, ``fmlearn train`` takes SageMaker's paths (:func:`default_paths`):
the ``train`` (and, when present, ``test``) channel folders, the hyperparameters file, and
writes ``model.fm`` into the model folder.
"""
import json
import math
import os

import click

from ._common import TrainSpec, file_error

#: SageMaker's FM hyperparameters: name → (kind, default). None: no default.
HYPERPARAMETERS = {
    "feature_dim": ("positive int", None), "num_factors": ("positive int", None),
    "predictor_type": ("choice", None), "epochs": ("positive int", 1),
    "mini_batch_size": ("positive int", 1000),
    "bias_lr": ("non-negative float", 0.1), "linear_lr": ("non-negative float", 0.001),
    "factors_lr": ("non-negative float", 0.0001),
    "bias_wd": ("non-negative float", 0.01), "linear_wd": ("non-negative float", 0.001),
    "factors_wd": ("non-negative float", 0.00001),
    "bias_init_method": ("choice", "normal"), "bias_init_scale": ("non-negative float", None),
    "bias_init_sigma": ("non-negative float", 0.01), "bias_init_value": ("float", None),
    "linear_init_method": ("choice", "normal"),
    "linear_init_scale": ("non-negative float", None),
    "linear_init_sigma": ("non-negative float", 0.01), "linear_init_value": ("float", None),
    "factors_init_method": ("choice", "normal"),
    "factors_init_scale": ("non-negative float", None),
    "factors_init_sigma": ("non-negative float", 0.001), "factors_init_value": ("float", None),
    "clip_gradient": ("positive float", None), "eps": ("positive float", 1e-8),
    "rescale_grad": ("positive float", "auto"),
}
_CHOICES = {"predictor_type": ("binary_classifier", "regressor"),
            "bias_init_method": ("normal", "uniform", "constant"),
            "linear_init_method": ("normal", "uniform", "constant"),
            "factors_init_method": ("normal", "uniform", "constant")}

_SAGEMAKER = {"train": ("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"),
              "test": ("SM_CHANNEL_TEST", "/opt/ml/input/data/test"),
              "model_dir": ("SM_MODEL_DIR", "/opt/ml/model"),
              "config_dir": ("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")}


def default_paths():
    """SageMaker's training paths, each overridable by the environment variable beside it.

    Returns
    -------
    dict
        ``train``, ``test`` (None when that folder is absent), ``hyperparameters`` (None
        when absent) and ``model_out`` (``<model dir>/model.fm``).

    Examples
    --------
    >>> import os
    >>> os.environ["SM_MODEL_DIR"] = "/tmp/model"
    >>> default_paths()["model_out"]
    '/tmp/model/model.fm'
    >>> del os.environ["SM_MODEL_DIR"]
    """
    where = {key: os.environ.get(var, default) for key, (var, default) in _SAGEMAKER.items()}
    hyper = os.path.join(where["config_dir"], "hyperparameters.json")
    return {"train": where["train"],
            "test": where["test"] if os.path.exists(where["test"]) else None,
            "hyperparameters": hyper if os.path.exists(hyper) else None,
            "model_out": os.path.join(where["model_dir"], "model.fm")}


def read_hyperparameters(path):
    """The JSON object of a hyperparameters file.

    Raises ``CommandError`` (exit 2) when the file cannot be read and ``DataFormatError``
    when it is not a JSON object.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "hp.json"
    >>> _ = path.write_text('{"num_factors": "8"}')
    >>> read_hyperparameters(path)
    {'num_factors': '8'}
    """
    from ..io.errors import DataFormatError

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise file_error(path, exc) from exc
    try:
        hyper = json.loads(text)
    except ValueError as exc:
        raise DataFormatError(os.fspath(path), f"not valid JSON ({exc})") from exc
    if not isinstance(hyper, dict):
        raise DataFormatError(os.fspath(path), "not a JSON object of hyperparameter names "
                              "and values")
    return hyper


def _value(name, raw):
    kind = HYPERPARAMETERS[name][0]
    text = str(raw).strip()
    if kind == "choice":
        if text not in _CHOICES[name]:
            raise click.BadParameter(f"{name}={raw!r}: expected one of "
                                     f"{', '.join(_CHOICES[name])}.",
                                     param_hint="'--hyperparameters'")
        return text
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    ok = math.isfinite(number)
    if kind == "positive int":
        ok = ok and number == int(number) and number >= 1
        number = int(number) if ok else number
    elif kind == "positive float":
        ok = ok and number > 0
    elif kind == "non-negative float":
        ok = ok and number >= 0
    if not ok:
        raise click.BadParameter(f"{name}={raw!r}: expected a {kind}.",
                                 param_hint="'--hyperparameters'")
    return number


def _init(term, get):
    """``init_<term>`` from SageMaker's ``<term>_init_*``: (method, sigma/scale/value)."""
    method = get(f"{term}_init_method")
    name = f"{term}_init_" + {"normal": "sigma", "uniform": "scale", "constant": "value"}[method]
    if get(name) is None:
        raise click.BadParameter(f"{term}_init_method={method} needs {name}.",
                                 param_hint="'--hyperparameters'")
    return (method, float(get(name)))


def estimator_spec(hyper):
    """The estimator SageMaker's hyperparameters ask for: ``solver="adam"`` with each
    hyperparameter mapped as the module's table says; warnings only for unknown names.

    Parameters
    ----------
    hyper : dict
        Names to values (strings, as SageMaker writes them, or numbers).

    Returns
    -------
    spec : TrainSpec
    warnings : list of str

    Raises
    ------
    click.BadParameter
        For a missing required name or a value of the wrong kind.

    Examples
    --------
    >>> spec, warnings = estimator_spec({"feature_dim": "100", "num_factors": "4",
    ...     "predictor_type": "binary_classifier", "epochs": "3", "mini_batch_size": "500",
    ...     "linear_init_method": "constant", "linear_init_value": "0"})
    >>> spec.estimator()
    FMClassifier(batch_size=500, init_factors=('normal', 0.001),
                 init_intercept=('normal', 0.01), init_linear=('constant', 0.0),
                 max_iter=3, n_factors=4, reg_factors=1e-05, reg_intercept=0.01,
                 reg_linear=0.001, solver='adam', tol=None)
    >>> spec.n_features, warnings
    (100, [])
    """
    warnings = []
    given = {}
    for name, raw in hyper.items():
        if name.startswith(("_", "sagemaker_")):
            continue
        if name not in HYPERPARAMETERS:
            warnings.append(f"unknown hyperparameter {name!r} is ignored")
            continue
        given[name] = _value(name, raw)
    missing = [n for n in ("feature_dim", "num_factors", "predictor_type") if n not in given]
    if missing:
        raise click.BadParameter(f"the required hyperparameter{'s' * (len(missing) > 1)} "
                                 f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                                 "missing.", param_hint="'--hyperparameters'")

    def get(name):
        return given.get(name, HYPERPARAMETERS[name][1])

    classifier = given["predictor_type"] == "binary_classifier"
    params = {"n_factors": given["num_factors"], "solver": "adam", "max_iter": get("epochs"),
              "tol": None, "batch_size": get("mini_batch_size"), "eps": get("eps"),
              "rescale_grad": get("rescale_grad"), "clip_gradient": get("clip_gradient")}
    for term, name in (("bias", "intercept"), ("linear", "linear"), ("factors", "factors")):
        params[f"lr_{name}"] = get(f"{term}_lr")
        params[f"reg_{name}"] = get(f"{term}_wd")
        params[f"init_{name}"] = _init(term, get)
    if not classifier:
        params["clip_predictions"] = False
    spec = TrainSpec(task="classification" if classifier else "regression", params=params,
                     negative_label=0.0, n_features=given["feature_dim"])
    return spec, warnings
