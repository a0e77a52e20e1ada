"""SageMaker's Factorization Machines hyperparameters for ``fmlearn train --hyperparameters``.

SageMaker passes hyperparameters as ``/opt/ml/input/config/hyperparameters.json``, a JSON
object whose values are all strings (``{"num_factors": "64", ...}``); numbers are accepted
too. Names and defaults are those of the AWS documentation page
``fact-machines-hyperparameters``. How each maps:

=======================  ====================================================================
SageMaker                fmlearn
=======================  ====================================================================
predictor_type           ``regressor`` → ``FMRegressor``, ``binary_classifier`` →
                         ``FMClassifier``; labels ``> 0`` are 1, the others 0. Required.
feature_dim              the model width; a row with a larger index is an error. Required.
num_factors              ``n_factors``. Required.
epochs                   ``max_iter`` (default 1; ``tol=None``: all epochs run).
bias_wd, linear_wd,      ``reg_intercept``, ``reg_linear``, ``reg_factors`` (defaults 0.01,
factors_wd               0.001, 0.00001): an L2 penalty on the parameters each row touches.
bias_lr, linear_lr,      fmlearn's SGD has one learning rate (``eta0``, AdaGrad schedule):
factors_lr               given values that are equal become ``eta0``; when they differ
                         ``factors_lr`` is used (else ``linear_lr``, else ``bias_lr``) and a
                         warning names the others. None given: fmlearn's ``eta0=0.1``
                         (SageMaker's per-term defaults are not applied).
factors_init_method,     ``normal`` → ``init_std=factors_init_sigma`` (default 0.001);
factors_init_sigma,      ``uniform`` → ``init_std=factors_init_scale/sqrt(3)`` (same variance),
factors_init_scale,      with a warning; ``constant`` is not supported (equal factors get
factors_init_value       equal updates): a warning, and the normal default.
bias_init_*,             not supported: fmlearn starts w0 and w at 0. A warning unless the
linear_init_*            method is ``constant`` with value 0.
clip_gradient            ``clip_gradient`` (each gradient coordinate clipped to [-c, c]).
mini_batch_size          ignored with a warning: fmlearn's SGD updates after every row.
eps, rescale_grad        ignored with a warning: AdaGrad here uses ``eta0 / sqrt(1 + sum g**2)``
                         and no gradient scaling.
=======================  ====================================================================

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
    "clip_gradient": ("positive float", None), "eps": ("float", None),
    "rescale_grad": ("float", None),
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


def estimator_spec(hyper):
    """The estimator SageMaker's hyperparameters ask for, with warnings for what is not honoured.

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
    ...     "predictor_type": "binary_classifier", "epochs": "3", "mini_batch_size": "500"})
    >>> spec.estimator()
    FMClassifier(init_std=0.001, max_iter=3, n_factors=4, reg_factors=1e-05,
                 reg_intercept=0.01, reg_linear=0.001, tol=None)
    >>> spec.n_features
    100
    >>> print(*warnings)
    mini_batch_size=500 is ignored: fmlearn's SGD updates the model after every row
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

    params = {"n_factors": given["num_factors"], "solver": "sgd", "max_iter": get("epochs"),
              "tol": None, "reg_intercept": get("bias_wd"), "reg_linear": get("linear_wd"),
              "reg_factors": get("factors_wd"), "init_std": get("factors_init_sigma")}
    rates = {n: given[n] for n in ("factors_lr", "linear_lr", "bias_lr") if n in given}
    if rates:
        chosen = next(iter(rates))
        params["eta0"] = rates[chosen]
        others = {n: v for n, v in rates.items() if v != rates[chosen]}
        if others:
            warnings.append(f"fmlearn's SGD has one learning rate for all terms: using "
                            f"{chosen}={rates[chosen]:g}; "
                            + ", ".join(f"{n}={v:g}" for n, v in others.items())
                            + " ignored")
    if params.get("eta0", 1.0) <= 0:
        raise click.BadParameter("the learning rate must be > 0.",
                                 param_hint="'--hyperparameters'")
    method = get("factors_init_method")
    if method == "uniform":
        scale = given.get("factors_init_scale")
        if scale is None:
            raise click.BadParameter("factors_init_method=uniform needs factors_init_scale.",
                                     param_hint="'--hyperparameters'")
        params["init_std"] = scale / math.sqrt(3.0)
        warnings.append(f"factors_init_method=uniform is not available: the factors start "
                        f"from a normal distribution of the same variance (sigma "
                        f"{params['init_std']:.4g})")
    elif method == "constant":
        warnings.append("factors_init_method=constant is not supported (equal factors get "
                        "equal updates): the factors start from N(0, 0.001**2)")
        params["init_std"] = HYPERPARAMETERS["factors_init_sigma"][1]
    for term in ("bias", "linear"):
        names = [n for n in given if n.startswith(f"{term}_init_")]
        zero = (given.get(f"{term}_init_method") == "constant"
                and given.get(f"{term}_init_value", 0.0) == 0.0)
        if names and not zero:
            warnings.append(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} ignored: "
                            f"fmlearn starts the {term} term{'s' * (term == 'linear')} at 0")
    if "clip_gradient" in given:
        params["clip_gradient"] = given["clip_gradient"]
    if "mini_batch_size" in given:
        warnings.append(f"mini_batch_size={given['mini_batch_size']} is ignored: fmlearn's SGD "
                        "updates the model after every row")
    for name in ("eps", "rescale_grad"):
        if name in given:
            warnings.append(f"{name}={given[name]:g} is ignored: fmlearn's AdaGrad steps "
                            "eta0 / sqrt(1 + sum g**2) with the unscaled gradient")
    classifier = given["predictor_type"] == "binary_classifier"
    spec = TrainSpec(task="classification" if classifier else "regression", params=params,
                     negative_label=0.0, n_features=given["feature_dim"])
    return spec, warnings
