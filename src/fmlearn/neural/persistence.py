"""Model files of the neural estimators, in fmlearn's format (:mod:`fmlearn.persistence`).

The same zip of ``header.json`` and ``.npy`` members, without pickle and without
``torch.load``: the header names the estimator, its parameters (the architecture) and
fitted attributes, ``model_kind`` ``"torch-state"`` and ``network`` (the keys of the
network's ``state_dict``); each tensor is the array member ``network.<key>``. Loading
builds the network from the parameters and takes a tensor only when its key, dtype and
shape are exactly those of that network and its values are finite. The optimizers' state
(Adam's moments, AdaGrad's sums, their step counts) is saved as ``optimizer.<o>.<p>.<key>``
beside the random generator's state, so that a warm start of a loaded estimator continues
exactly as the saved one would. :func:`fmlearn.persistence.save` and
:func:`fmlearn.persistence.load` hand these estimators to this module.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .. import persistence as fm_files
from .._files import write_atomically
from .._model_file_checks import FileProblem
from ._models import (AFMClassifier, AFMRegressor, CFMClassifier, CFMRanker, CFMRegressor,
                      DeepFMClassifier, DeepFMRegressor, IFMClassifier, IFMRegressor,
                      NeuralFFMClassifier, NeuralFFMRegressor, NeuralFMClassifier,
                      NeuralFMRegressor, NFMClassifier, NFMRegressor)

__all__ = ["MODEL_KIND", "load_archive", "save"]

MODEL_KIND = "torch-state"
_ESTIMATORS = {cls.__name__: cls for cls in (NeuralFMRegressor, NeuralFMClassifier, NFMRegressor,
                                             NFMClassifier, DeepFMRegressor, DeepFMClassifier,
                                             AFMRegressor, AFMClassifier, NeuralFFMRegressor,
                                             NeuralFFMClassifier, IFMRegressor, IFMClassifier,
                                             CFMRegressor, CFMClassifier, CFMRanker)}
# Fitted attributes of JSON values, and of arrays.
_SCALARS = ("n_iter_", "n_fields_", "loss_curve_", "validation_scores_", "best_validation_score_",
            "y_mean_", "y_scale_", "sparse_gradients_")
_ARRAYS = ("fields_",)
_OPTIMIZER_STATE = {"step", "exp_avg", "exp_avg_sq", "sum"}  # Adam, SparseAdam, AdaGrad


def save(estimator, path, *, compress: bool = False) -> str:
    """Write a fitted neural estimator to a model file that :func:`fmlearn.persistence.load`
    reads (see the module notes).

    Parameters
    ----------
    estimator : a fitted estimator of :mod:`fmlearn.neural`
    path : str or path-like
    compress : bool, default=False
        Deflate the arrays.

    Returns
    -------
    path : str

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fmlearn.neural import NFMRegressor
    >>> from fmlearn.persistence import load
    >>> X = np.eye(3); y = [1.0, 2, 3]
    >>> reg = NFMRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> loaded = load(save(reg, os.path.join(tmp.name, "nfm.fm")))
    >>> bool(np.array_equal(loaded.predict(X), reg.predict(X)))
    True
    >>> tmp.cleanup()
    """
    name = type(estimator).__name__
    if _ESTIMATORS.get(name) is not type(estimator):
        raise TypeError(f"fmlearn.neural.persistence writes {sorted(_ESTIMATORS)}; got {name}.")
    check_is_fitted(estimator, "network_")
    encoder = fm_files._Encoder()
    params, param_arrays = fm_files._json_params(estimator, path, encoder)
    state = estimator.network_.state_dict()
    for key, tensor in state.items():
        encoder.arrays[f"network.{key}"] = tensor.detach().cpu().numpy().copy()
    optimizers = None if estimator._optimizers is None else []
    for o, opt in enumerate(estimator._optimizers or ()):
        moments = opt.state_dict()["state"]
        optimizers.append({str(p): sorted(entry) for p, entry in moments.items()})
        for p, entry in moments.items():
            for key in sorted(entry):
                value = entry[key]  # a tensor, or SparseAdam's int step
                value = value.detach().cpu().numpy() if torch.is_tensor(value) else value
                encoder.arrays[f"optimizer.{o}.{p}.{key}"] = np.array(value)
    fitted = vars(estimator)
    for attr in _ARRAYS:
        if attr in fitted:
            encoder.arrays[attr.strip("_")] = fitted[attr]
    classes, names = fitted.get("classes_"), fitted.get("feature_names_in_")
    header: dict[str, Any] = {
        "format": fm_files.FORMAT, "format_version": fm_files.FORMAT_VERSION,
        "fmlearn_version": fm_files._fmlearn_version(), "estimator": name,
        "model_kind": MODEL_KIND, "dtype": estimator.dtype, "params": params,
        "param_arrays": param_arrays, "n_features_in_": int(estimator.n_features_in_),
        "feature_names_in_": None if names is None else [str(n) for n in names],
        "classes_": None if classes is None else fm_files._json_classes(classes, path),
        "classes_dtype": None if classes is None else classes.dtype.str,
        "network": list(state),
        "attributes": {attr: fitted[attr] for attr in _SCALARS if attr in fitted},
        "arrays_of_attributes": [attr for attr in _ARRAYS if attr in fitted],
        "rng": estimator._rng.bit_generator.state,
        "optimizers": optimizers,
    }
    header["arrays"], arrays = fm_files._array_table(encoder.arrays)
    text = json.dumps(header, indent=1).encode("utf-8")
    write_atomically(path, lambda fh: fm_files._write_zip(fh, text, arrays, compress))
    return os.fspath(path)


def load_archive(path, archive, header: dict[str, Any]):
    """The estimator of an opened model file of kind ``"torch-state"``; for
    :func:`fmlearn.persistence.load`, which opens the file and checks its header.

    Raises
    ------
    fmlearn.persistence.ModelFileError
        Naming the member or header entry that does not fit the network the parameters
        describe.

    Examples
    --------
    >>> MODEL_KIND
    'torch-state'
    """
    try:
        return _read(archive, header)
    except FileProblem as exc:
        raise fm_files.ModelFileError(path, str(exc)) from exc
    except Exception as exc:
        raise fm_files.ModelFileError(path, f"malformed header ({type(exc).__name__}: "
                                      f"{exc})") from exc


def _array(archive, name: str) -> np.ndarray:
    """The member ``name``, or the one it is byte for byte (``same_as`` in the table)."""
    entry = archive.table.get(name)
    if entry is None:
        raise FileProblem(f"missing array {name!r}: the file is incomplete or was altered")
    return archive[entry["same_as"]] if "same_as" in entry else archive[name]


def _read(archive, header: dict[str, Any]):
    cls = _ESTIMATORS.get(header["estimator"])
    if cls is None:
        raise FileProblem(f"unknown estimator {header['estimator']!r}")
    archive.table = header["arrays"]
    params = dict(header["params"])
    for name, node in header.get("param_arrays", {}).items():
        params[name] = fm_files._int_vector(_array(archive, node["array"]), name)
    for name in ("hidden_layer_sizes", "dropout"):
        if isinstance(params.get(name), (list, np.ndarray)):  # JSON list or int64 array
            params[name] = tuple(np.asarray(params[name]).tolist())
    estimator = cls(**params)
    estimator.n_features_in_ = int(header["n_features_in_"])
    if header["feature_names_in_"] is not None:
        estimator.feature_names_in_ = np.asarray(header["feature_names_in_"], dtype=object)
    if header["classes_"] is not None:
        estimator.classes_ = np.array(header["classes_"], dtype=np.dtype(header["classes_dtype"]))
    for attr, value in header["attributes"].items():
        if attr not in _SCALARS:
            raise FileProblem(f"unknown fitted attribute {attr!r}")
        setattr(estimator, attr, value)
    for attr in header["arrays_of_attributes"]:
        if attr not in _ARRAYS:
            raise FileProblem(f"unknown fitted attribute {attr!r}")
        setattr(estimator, attr, _array(archive, attr.strip("_")))
    if cls._uses_fields:
        fields = estimator.fields_
        if fields.shape != (estimator.n_features_in_,) or fields.min(initial=0) < 0 or \
                fields.max(initial=0) >= estimator.n_fields_:
            raise FileProblem(f"array 'fields' must hold {estimator.n_features_in_} field ids "
                              f"in [0, {estimator.n_fields_})")
    with torch.random.fork_rng(devices=[]):
        network = estimator._network(estimator.n_features_in_, estimator.n_fields_)
    network = network.to(estimator._dtype())
    expected = network.state_dict()
    if header["network"] != list(expected):
        raise FileProblem(f"the network's tensors {header['network']} are not those of the "
                          f"architecture the parameters describe: {list(expected)}")
    state = {}
    for key, tensor in expected.items():
        array = _array(archive, f"network.{key}")
        want = tensor.numpy()
        if array.dtype != want.dtype or array.shape != want.shape:
            raise FileProblem(f"array 'network.{key}' is {array.dtype.str} {list(array.shape)}; "
                              f"the network needs {want.dtype.str} {list(want.shape)}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise FileProblem(f"array 'network.{key}' holds values that are not finite")
        state[key] = torch.from_numpy(array)
    network.load_state_dict(state)
    estimator.network_ = network.to(estimator._device())
    estimator._rng = np.random.default_rng()
    estimator._rng.bit_generator.state = header["rng"]
    estimator._optimizers = None
    if header["optimizers"] is not None:
        estimator._optimizers = _read_optimizers(archive, header["optimizers"], estimator)
    return estimator


def _read_optimizers(archive, saved: list, estimator) -> list[torch.optim.Optimizer]:
    """The estimator's optimizers with the state the file holds, each tensor checked against
    its parameter."""
    optimizers = estimator._make_optimizers()
    if len(saved) != len(optimizers):
        raise FileProblem(f"the file holds the state of {len(saved)} optimizers; "
                          f"optimizer={estimator.optimizer!r} makes {len(optimizers)}")
    for o, (opt, entries) in enumerate(zip(optimizers, saved)):
        params = [p for group in opt.param_groups for p in group["params"]]
        state = {}
        for index, keys in entries.items():
            p = int(index)
            if not 0 <= p < len(params) or not set(keys) <= _OPTIMIZER_STATE:
                raise FileProblem(f"optimizer {o} has no parameter {index} with state {keys}")
            state[p] = {key: _optimizer_tensor(archive, f"optimizer.{o}.{p}.{key}", params[p], key)
                        for key in keys}
        whole = opt.state_dict()
        whole["state"] = state
        opt.load_state_dict(whole)
    return optimizers


def _optimizer_tensor(archive, name: str, param: torch.Tensor, key: str) -> torch.Tensor | int:
    array = _array(archive, name)
    shape = () if key == "step" else tuple(param.shape)
    dtypes = ("<f4", "<i8") if key == "step" else (param.detach().cpu().numpy().dtype.str,)
    if array.shape != shape or array.dtype.str not in dtypes:
        raise FileProblem(f"array {name!r} is {array.dtype.str} {list(array.shape)}; the "
                          f"optimizer needs {' or '.join(dtypes)} {list(shape)}")
    if not np.isfinite(array).all() or (key != "exp_avg" and (array < 0).any()):
        raise FileProblem(f"array {name!r} holds values that are not finite or negative")
    return int(array) if array.dtype.kind == "i" else torch.from_numpy(array)
