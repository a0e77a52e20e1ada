"""Save fitted estimators to one versioned file and load them back without pickle.

File layout
-----------
A model file is a zip archive in NumPy's ``.npz`` layout, so
``np.load(path, allow_pickle=False)`` opens it. Its members:

``header.json``
    The first member: the header, UTF-8 JSON (see :func:`read_header`). A zip member of its
    own rather than a ``uint8`` array, so that any zip tool shows it
    (``unzip -p model.fm header.json``), programs without a ``.npy`` parser read it, and
    :func:`read_header` parses no array; ``np.load`` returns it as bytes.
``<name>.npy``
    One member per array, in the ``.npy`` format, named by its place in the header:
    ``model.coef``, ``model.factors``, ``solver_state.acc_factors``, ...

The header holds ``format`` (``"fmlearn-model"``), ``format_version``, ``fmlearn_version``,
``estimator`` (the class name), ``model_kind``, ``dtype``, ``params`` (``get_params()``, less
the vectors of integers, such as an FFM's ``fields``, which ``param_arrays`` names as array
members ``params.<name>``), ``n_features_in_``, ``feature_names_in_``, ``classes_`` with
``classes_dtype``, ``n_iter_``,
``model`` and ``attributes`` (the other fitted attributes, the solver state and the random
generator included) and ``arrays`` (the dtype and shape of each array member; an array that
is byte for byte another one, as MCMC's kept samples are ``model_``'s, is written once and
listed as ``{"same_as": name}``).

Objects are written as a tree of JSON nodes: a JSON scalar or list is itself; an array is
``{"array": name}``; a tuple ``{"tuple": [...]}``; a dict ``{"dict": {...}}``; and an object of
a registered kind ``{"kind": kind, "fields": {...}}``. The registry ``_KINDS`` maps each
kind to its class and to how it is split into fields and rebuilt from them; a dataclass
whose fields are arrays, scalars, registered objects or lists of them needs no more than
``_register("name", TheClass)``, so a new model (field-aware factors of shape
``(n_features, n_fields, k)``, one factor array per order, ...) is one line here, and
its shapes in :mod:`fmlearn._model_file_checks`, which refuses kinds it does not know. Only
registered kinds and the estimator classes in ``_ESTIMATORS`` are ever built from a file,
and only the fitted attributes named in ``_ATTRIBUTES`` are ever set.

Reading checks before it trusts (:mod:`fmlearn._model_archive`, then
:mod:`fmlearn._model_file_checks`): a member is read
only once the zip directory and its ``.npy`` header show it is as large as it says, and
no larger than its stored bytes can hold (``header.json`` at most 64 MiB); then every
array is checked against the header and against the others (shapes, exactly the dtypes
the kernels are compiled for, finite values, ids in range, MCMC sample counts,
``n_factors``, ``order``, ``classes_``), so that a file either loads into an estimator
that predicts and warm-starts from its arrays as they are, or raises
:class:`ModelFileError` naming the member. ``save`` runs the same checks first, so every
file it writes loads back.

Files are written atomically: into a temporary file next to ``path`` named after the
writing process (``.{name}.{pid}-{host}.{token}.tmp``), flushed to disk, then renamed
over ``path``. A reader sees the old file or the new one, never a part; the temporary
file of a writer that was killed is removed by the next save to ``path``. The bytes
depend only on the estimator (fixed zip timestamps), so equal models give equal files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Callable

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from ._classification import FMClassifier
from ._ffm import FFMClassifier, FFMRegressor
from ._files import write_atomically
from ._fwfm import FwFMClassifier, FwFMRegressor
from ._ordinal import FMOrdinalRegressor
from ._model_archive import Archive, FileProblem, Raw, agree_with_table
from ._model_file_checks import check_estimator
from ._ranking import FMRanker
from ._recommender import FMRecommender
from ._regression import FMRegressor
from .fwfm_model import FwFMModel
from .model import FFMModel, FMModel, FMSamples, HOFMModel, MulticlassFMModel
from .ordinal_model import OrdinalFMModel, OrdinalFMSamples
from .solvers.als import Hyperparameters
from .solvers.mcmc import MCMCState
from .solvers.vb import VBState
from .solvers.adam import AdamState
from .solvers.ftrl import FTRLState
from .solvers.ftrl_fwfm import FwFMFTRLState
from .solvers.fwfm import FwFMState
from .solvers.sgd import SGDState
from .solvers.sgda import SGDAState
from ._validation import with_fm_indices

if TYPE_CHECKING:
    from ._base import BaseFM
    from ._typing import StrPath

__all__ = ["ModelFileError", "load", "read_header", "save"]

FORMAT = "fmlearn-model"
FORMAT_VERSION = 1
HEADER_MEMBER = "header.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class ModelFileError(ValueError):
    """A file cannot be read as, or an estimator cannot be written to, an fmlearn model file.

    Raised for files that are not model files (a text file, a pickle, a plain ``.npz``),
    truncated or corrupt files, files of a newer format version, missing or unreadable
    arrays, and estimators with a parameter that cannot be stored without pickle. The
    message names the file and what is wrong.

    Parameters
    ----------
    path : str or path-like
        The model file.
    problem : str
        What is wrong and, where it helps, what to do.

    Examples
    --------
    >>> err = ModelFileError("model.fm", "the file is empty")
    >>> str(err)
    'model.fm: the file is empty'
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, path: StrPath, problem: str) -> None:
        self.path = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# --- what a file may hold -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Kind:
    """How objects of one class are written: as a dict of fields, and rebuilt from it."""

    name: str
    cls: type
    encode: Callable[[object], dict]
    decode: Callable[[dict], object]


_KINDS: dict[str, _Kind] = {}
_KIND_OF_CLASS: dict[type, _Kind] = {}


def _register(name: str, cls: type, encode: Callable[[Any], dict] | None = None,
              decode: Callable[[dict], object] | None = None) -> None:
    """Add a kind; by default a dataclass is written as its ``__init__`` fields."""
    if encode is None:
        def encode(obj: Any) -> dict:
            return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}
    if decode is None:
        def decode(fields: dict) -> object:
            return cls(**fields)
    _KINDS[name] = _KIND_OF_CLASS[cls] = _Kind(name, cls, encode, decode)


def _encode_mcmc_state(state: MCMCState) -> dict:
    # The kept samples as three stacked arrays: byte for byte model_'s, so written once.
    samples = None
    if state.samples:
        samples = {"intercepts": np.array([m.intercept for m in state.samples], dtype=np.float64),
                   "coefs": np.stack([m.coef for m in state.samples]),
                   "factors": np.stack([m.factors for m in state.samples])}
        if isinstance(state.samples[0], OrdinalFMModel):  # and each sample's cut-points
            samples["cutpoints"] = np.stack([m.cutpoints for m in state.samples])
    sums = None if state.sums is None else dict(zip(("scores", "q"), state.sums))
    return {"hyper": state.hyper, "groups": state.groups, "current": state.current,
            "n_iter": state.n_iter, "samples": samples,
            "trace": {name: np.array(values) for name, values in state.trace.items()},
            "sums": sums}


def _decode_mcmc_state(fields: dict) -> MCMCState:
    kept = fields["samples"]
    samples = [] if kept is None else [
        FMModel(float(w0), w, v) for w0, w, v in zip(kept["intercepts"], kept["coefs"],
                                                        kept["factors"])]
    if kept is not None and "cutpoints" in kept:
        samples = [OrdinalFMModel(m.intercept, m.coef, m.factors, c)
                   for m, c in zip(samples, kept["cutpoints"])]
    trace = {name: list(values) for name, values in fields["trace"].items()}
    sums = fields.get("sums")  # absent from files written before the sums were carried
    return MCMCState(fields["hyper"], fields["groups"], fields["current"], int(fields["n_iter"]),
                     samples, trace, None if sums is None else (sums["scores"], sums["q"]))


_BIT_GENERATORS = {cls.__name__: cls for cls in (np.random.PCG64, np.random.PCG64DXSM,
                                                 np.random.MT19937, np.random.Philox,
                                                 np.random.SFC64)}


def _decode_generator(fields: dict) -> np.random.Generator:
    state = fields["bit_generator"]
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {name!r}")
    bit_generator = _BIT_GENERATORS[name]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


_register("fm", FMModel)
_register("ffm", FFMModel)
_register("fwfm", FwFMModel)
_register("hofm", HOFMModel)
_register("fm_multiclass", MulticlassFMModel)
_register("fm_samples", FMSamples)
_register("fm_ordinal", OrdinalFMModel)
_register("fm_ordinal_samples", OrdinalFMSamples)
_register("sgd_state", SGDState)
_register("fwfm_state", FwFMState)
_register("adam_state", AdamState)
_register("ftrl_state", FTRLState)
_register("fwfm_ftrl_state", FwFMFTRLState)
_register("sgda_state", SGDAState)
_register("hyperparameters", Hyperparameters)
_register("mcmc_state", MCMCState, _encode_mcmc_state, _decode_mcmc_state)
_register("vb_state", VBState)
_register("csr", sp.csr_matrix,  # FMRecommender's feature rows and interactions
          lambda m: {"data": m.data, "indices": m.indices, "indptr": m.indptr,
                     "shape": list(m.shape)},
          lambda f: with_fm_indices(sp.csr_matrix((f["data"], f["indices"], f["indptr"]),
                                                  shape=tuple(f["shape"]))))
_register("generator", np.random.Generator,
          lambda gen: {"bit_generator": gen.bit_generator.state}, _decode_generator)

_ESTIMATORS = {cls.__name__: cls for cls in (FMRegressor, FMClassifier, FMRanker, FFMRegressor,
                                             FFMClassifier, FwFMRegressor, FwFMClassifier,
                                             FMOrdinalRegressor, FMRecommender)}
# Estimators of optional parts, imported when a file names them.
_OPTIONAL_ESTIMATORS = {"DaskFMRegressor": "fmlearn.dask", "DaskFMClassifier": "fmlearn.dask"}
# Model kinds whose files a module of an optional part writes and reads (its save and
# load_archive); its estimators name that module in _model_file_module.
_OPTIONAL_KINDS = {"torch-state": "fmlearn.neural.persistence"}


def _estimator_class(name: str) -> type[BaseFM] | None:
    """The estimator class a file may name, or None."""
    if name in _OPTIONAL_ESTIMATORS:
        return getattr(importlib.import_module(_OPTIONAL_ESTIMATORS[name]), name)
    return _ESTIMATORS.get(name)


# Fitted attributes besides model_ and those the header names at the top level. A test checks
# that a loaded estimator has every attribute the original had: add new ones here.
_ATTRIBUTES = ("t_", "target_range_", "loss_curve_", "validation_scores_",
               "best_validation_score_", "_solver_state", "_rng", "_burn_in", "n_retries_",
               "_training_data",
               "_field_names", "relation_widths_", "user_features_", "item_features_",
               "interactions_", "n_users_", "n_items_", "n_item_columns_", "n_user_columns_",
               "context_", "n_context_columns_")
# What a fitted attribute that older files lack means, per estimator (files saved before it).
_MISSING_MEANS = {"FMRecommender": {"context_": None, "n_context_columns_": 0}}


# --- objects to nodes and arrays -----------------------------------------------------------------
class _Encoder:
    """Turns objects into JSON nodes, collecting their arrays by name."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def node(self, value: Any, name: str) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError(f"{name}: arrays of Python objects cannot be saved without pickle")
            if name in self.arrays or not _NAME.match(name):
                raise ValueError(f"cannot use {name!r} as an array name")
            self.arrays[name] = value
            return {"array": name}
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.node(v, f"{name}.{i}") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"tuple": [self.node(v, f"{name}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            return {"dict": {self._key(k, name): self.node(v, f"{name}.{k}")
                             for k, v in value.items()}}
        kind = _KIND_OF_CLASS.get(type(value))
        if kind is None:
            raise TypeError(f"{name}: no way to save a {type(value).__name__} is registered in "
                            "fmlearn.persistence")
        return {"kind": kind.name, "fields": {self._key(k, name): self.node(v, f"{name}.{k}")
                                              for k, v in kind.encode(value).items()}}

    @staticmethod
    def _key(key: object, name: str) -> str:
        if not isinstance(key, str) or not _NAME.match(key):
            raise TypeError(f"{name}: key {key!r} cannot be saved")
        return key


def _same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.size == 0 or np.array_equal(a.reshape(-1).view(np.uint8),
                                          b.reshape(-1).view(np.uint8))


def _array_table(arrays: dict[str, np.ndarray]
                 ) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """The header's ``arrays`` entry and the arrays to write, each distinct array once."""
    table: dict[str, dict]
    unique: dict[str, np.ndarray]
    by_layout: dict[tuple, list[str]]
    table, unique, by_layout = {}, {}, {}
    for name, array in arrays.items():
        layout = (array.dtype.str, array.shape, bool(np.isfortran(array)))
        same = next((other for other in by_layout.get(layout, ())
                     if _same_bytes(array, unique[other])), None)
        if same is not None:
            table[name] = {"same_as": same}
            continue
        by_layout.setdefault(layout, []).append(name)
        unique[name] = array
        table[name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
    return table, unique


class _Decoder:
    """Reads the objects a header's nodes describe, in two steps: ``raw`` reads the arrays
    (recording each one's name) and keeps registered objects as their fields, which the
    checks of :mod:`fmlearn._model_file_checks` read; ``build`` makes the objects.

    ``arrays`` maps array names to arrays: an :class:`~fmlearn._model_archive.Archive`
    when loading, the arrays about to be written when saving.
    """

    def __init__(self, path: StrPath, arrays: Archive | Mapping[str, np.ndarray],
                 table: dict) -> None:
        self.path, self.arrays, self.table = path, arrays, table
        self.names: dict[int, str] = {}
        self._read: dict[str, np.ndarray] = {}
        self._built: set[int] = set()

    def value(self, node: Any) -> Any:
        return self.build(self.raw(node))

    def raw(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.raw(v) for v in node]
        if not isinstance(node, dict):
            return node
        if node.keys() == {"array"}:
            return self.array(node["array"])
        if node.keys() == {"tuple"}:
            return tuple(self.raw(v) for v in node["tuple"])
        if node.keys() == {"dict"}:
            return {k: self.raw(v) for k, v in node["dict"].items()}
        if node.keys() == {"kind", "fields"}:
            if node["kind"] not in _KINDS:
                raise ModelFileError(self.path, f"unknown model kind {node['kind']!r}; the file "
                                     "was written by a newer fmlearn, upgrade fmlearn to load it")
            return Raw(node["kind"], {k: self.raw(v) for k, v in node["fields"].items()})
        raise ValueError(f"unrecognised node with keys {sorted(node)}")

    def build(self, value: Any) -> Any:
        """The objects of a ``raw`` value; an array used twice is copied for its second use."""
        if isinstance(value, np.ndarray):
            if id(value) in self._built:
                return value.copy()
            self._built.add(id(value))
            return value
        if isinstance(value, Raw):
            return _KINDS[value.kind].decode({k: self.build(v) for k, v in value.fields.items()})
        if isinstance(value, (list, tuple)):
            return type(value)(self.build(v) for v in value)
        if isinstance(value, dict):
            return {k: self.build(v) for k, v in value.items()}
        return value

    def array(self, name: str) -> np.ndarray:
        """The array ``name``, read once however many nodes name it."""
        if name in self._read:
            return self._read[name]
        spec = self.table.get(name)
        if not isinstance(spec, dict):
            raise ValueError(f"array {name!r} is not listed in the header")
        if "same_as" in spec:
            other = spec["same_as"]
            if "same_as" in self.table.get(other, {"same_as": None}):
                raise ValueError(f"array {name!r} refers to {other!r}, which is not written")
            array = self.array(other)
        else:
            array = self._member(name)
            agree_with_table(name, array.dtype, array.shape, spec)
        self._read[name] = array
        self.names.setdefault(id(array), name)
        return array

    def _member(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except FileProblem:
            raise
        except KeyError:
            raise ModelFileError(self.path, f"missing array {name!r}: the file is incomplete or "
                                 "was altered") from None
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ModelFileError(self.path, f"array {name!r} is truncated or corrupt: "
                                 f"{exc}") from exc
        except Exception as exc:  # zlib.error and other failures of a damaged member
            raise ModelFileError(self.path, f"array {name!r} is corrupt: {exc}") from exc


# --- the estimator and its header ---------------------------------------------------------------
def _fmlearn_version() -> str:
    from . import __version__  # at call time: fmlearn/__init__ may import this module
    return __version__


def _json_params(estimator: BaseFM, path: StrPath, encoder: _Encoder
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters as JSON values, and those that are vectors of integers (an FFM's
    ``fields``, maybe millions long) as array nodes of ``encoder``."""
    params, arrays = {}, {}
    for name, value in estimator.get_params(deep=False).items():
        if isinstance(value, np.generic):
            value = value.item()
        if name == "random_state" and isinstance(value, np.random.RandomState):
            warnings.warn("random_state is a RandomState instance, which is saved as None; the "
                          "generator state a warm start continues from is saved in full.",
                          UserWarning, stacklevel=3)
            value = None
        elif name == "fields" and callable(value):
            raise ModelFileError(path, f"cannot save fields={value!r}: a callable cannot be "
                                 "stored without pickle. Fix the fields it resolved to first: "
                                 "set_params(fields=estimator.fields_).")
        elif name == "fields" and isinstance(value, dict) and _is_label_map(value):
            value = dict(value)  # FFM's {column: field}; loaded back as a dict
        elif callable(value):
            raise ModelFileError(path, f"cannot save {name}={value!r}: a callable cannot be "
                                 "stored without pickle. Set it to a scorer name (for example "
                                 f"set_params({name}='r2')) or None before saving.")
        elif isinstance(value, (list, tuple, np.ndarray)) and _is_int_vector(value):
            arrays[name] = encoder.node(np.asarray(value, dtype=np.int64), f"params.{name}")
            continue  # e.g. FFM's fields; loaded back as an int64 array
        elif isinstance(value, tuple) and all(isinstance(v, (bool, int, float, str))
                                              for v in value):
            value = list(value)  # e.g. init_linear=("normal", 0.01); loaded back as a list
        elif not (value is None or isinstance(value, (bool, int, float, str))):
            raise ModelFileError(path, f"cannot save {name}={value!r}: only None, bools, "
                                 "numbers, strings, vectors of integers and tuples of those can be stored")
        params[name] = value
    return params, arrays


def _is_label_map(value: dict) -> bool:
    return all(isinstance(k, str) and isinstance(v, (int, str)) and not isinstance(v, bool)
               for k, v in value.items())


def _is_int_vector(value: Any) -> bool:
    array = np.asarray(value)  # or (field, feature id) pairs: an FFM's vocabulary
    return (array.ndim == 1 or array.ndim == 2 and array.shape[1] == 2) \
        and array.dtype.kind in "iu"


def _int_vector(value: Any, name: str) -> np.ndarray:
    """A parameter read from the array ``params.<name>``: integers, one or two per feature."""
    if not (isinstance(value, np.ndarray) and _is_int_vector(value)):
        raise FileProblem(f"parameter {name!r} (array 'params.{name}') must be a vector of "
                          "integers or an (n, 2) array of them")
    return value


def _json_classes(classes: np.ndarray, path: StrPath) -> list:
    values = classes.tolist()
    if not all(isinstance(v, (bool, int, float, str)) for v in values):
        raise ModelFileError(path, f"cannot save classes_ {values!r}: labels must be numbers, "
                             "strings or booleans")
    return values


def _build_header(estimator: BaseFM, path: StrPath
                  ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header of ``estimator``'s file and the arrays it lists."""
    name = type(estimator).__name__
    if _estimator_class(name) is not type(estimator):
        raise TypeError(f"save writes the estimators "
                        f"{sorted(_ESTIMATORS) + sorted(_OPTIONAL_ESTIMATORS)}; got {name}.")
    check_is_fitted(estimator, "model_")
    encoder = _Encoder()
    fitted = vars(estimator)
    classes = fitted.get("classes_")
    names = fitted.get("feature_names_in_")
    model = encoder.node(estimator.model_, "model")
    params, param_arrays = _json_params(estimator, path, encoder)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fmlearn_version": _fmlearn_version(),
        "estimator": name,
        "model_kind": model["kind"],
        "dtype": np.dtype(estimator.model_.dtype).name,
        "params": params,
        "param_arrays": param_arrays,
        "n_features_in_": int(estimator.n_features_in_),
        "feature_names_in_": None if names is None else [str(n) for n in names],
        "classes_": None if classes is None else _json_classes(classes, path),
        "classes_dtype": None if classes is None else classes.dtype.str,
        "n_iter_": int(estimator.n_iter_),
        "model": model,
        "attributes": {attr: encoder.node(fitted[attr], attr.strip("_"))
                       for attr in _ATTRIBUTES if attr in fitted},
    }
    header["arrays"], arrays = _array_table(encoder.arrays)
    return header, arrays


def _write_zip(fh: IO[bytes], header_bytes: bytes, arrays: dict[str, np.ndarray],
               compress: bool) -> None:
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED

    def member(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
        info.compress_type = compression
        info.external_attr = 0o644 << 16
        return info

    with zipfile.ZipFile(fh, "w", allowZip64=True) as archive:
        archive.writestr(member(HEADER_MEMBER), header_bytes)
        for name, array in arrays.items():
            with archive.open(member(f"{name}.npy"), "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)


def save(estimator: BaseFM, path: StrPath, *, compress: bool = False) -> str:
    """Write a fitted estimator to one model file that :func:`load` reads without pickle.

    Saved: the parameters (``get_params()``), the learned model (for MCMC every kept
    sample), the fitted attributes (``classes_``, ``n_features_in_``,
    ``feature_names_in_``, ``n_iter_``, ``t_``, ``target_range_``, ``loss_curve_``,
    ``validation_scores_``, ``best_validation_score_``), and what a warm start continues
    from: the solver state (SGD's AdaGrad accumulators and step count; ALS's priors;
    MCMC's current draw, hyperparameters, feature groups, kept samples and
    ``hyperparameter_trace_``, and with ``warm_start=True`` the training rows' scores and
    factor sums, n_rows * (n_factors + 1) numbers) and the state of the random generator. A loaded
    estimator therefore predicts exactly as the saved one, and ``fit`` with
    ``warm_start=True`` continues as the saved one would.

    The file is written to a temporary file in the same directory, synced to disk and
    renamed to ``path``: an interrupted or failed save leaves any earlier file at
    ``path`` as it was and no partial file behind. No extension is added or required
    (``.fm`` is a good one).

    Parameters
    ----------
    estimator : FMRegressor or FMClassifier
        A fitted estimator.
    path : str or path-like
        Where to write; an existing file is replaced.
    compress : bool, default=False
        Deflate the arrays; smaller files for sparse-ish or repetitive parameters,
        slower to write and read.

    Returns
    -------
    path : str
        ``path`` as a string.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    ModelFileError
        If a parameter cannot be stored without pickle: a callable ``scoring`` (use a
        scorer name). A ``random_state`` that is a ``RandomState`` instance is stored
        as None, with a warning; the generator state a warm start needs is saved in full.
        Also if :func:`load` would refuse the file: parameters that disagree with the
        fitted arrays (``n_factors`` changed by ``set_params`` after ``fit``), or
        parameters that are not finite.
    TypeError
        If ``estimator`` is not an fmlearn estimator.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> from fmlearn.persistence import load, save
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((100, 4)); y = X[:, 0] * X[:, 1]
    >>> reg = FMRegressor(n_factors=2, max_iter=5, random_state=0).fit(X, y)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = save(reg, os.path.join(tmp.name, "model.fm"))
    >>> bool(np.array_equal(load(path).predict(X), reg.predict(X)))
    True
    >>> tmp.cleanup()
    """
    module = getattr(type(estimator), "_model_file_module", "")
    if module in _OPTIONAL_KINDS.values():  # fmlearn.neural's estimators
        return importlib.import_module(module).save(estimator, path, compress=compress)
    header, arrays = _build_header(estimator, path)
    text = json.dumps(header, indent=1).encode("utf-8")
    try:  # what load will check, so that every file save writes loads back
        _read_estimator(path, arrays, json.loads(text))
    except FileProblem as exc:
        raise ModelFileError(path, f"cannot save an estimator that would not load back: "
                             f"{exc}") from exc
    write_atomically(path, lambda fh: _write_zip(fh, text, arrays, compress))
    return os.fspath(path)


# --- reading ------------------------------------------------------------------------------------
def _sniff(start: bytes) -> str:
    """Why a file that is not a zip archive is no model file."""
    if not start:
        return "the file is empty (a save that never completed?)"
    if start.startswith(np.lib.format.MAGIC_PREFIX):
        return "not an fmlearn model file: it holds a single NumPy array (.npy)"
    if start[:1] == b"\x80":
        return ("not an fmlearn model file: it looks like a pickle, which fmlearn never loads "
                "(unpickling can run arbitrary code); save the model with fmlearn.persistence.save")
    return "not an fmlearn model file: it is not a zip archive"


@contextlib.contextmanager
def _open(path: StrPath) -> Iterator[tuple[Archive, dict[str, Any]]]:
    """Open a model file: yield its :class:`~fmlearn._model_archive.Archive` (arrays not
    yet read) and the checked header."""
    with open(path, "rb") as fh:
        start = fh.read(8)
        fh.seek(0)
        if start[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise ModelFileError(path, _sniff(start))
        try:
            npz = np.load(fh, allow_pickle=False)
        except Exception as exc:  # BadZipFile for a cut-off central directory, and the like
            raise ModelFileError(path, f"the file is truncated or corrupt ({exc})") from exc
        with npz:
            archive = Archive(npz.zip, os.fstat(fh.fileno()).st_size)
            yield archive, _read_header_member(path, archive)


def _read_header_member(path: StrPath, archive: Archive) -> dict[str, Any]:
    if HEADER_MEMBER not in archive.archive.namelist():
        raise ModelFileError(path, f"not an fmlearn model file: the archive has no "
                             f"{HEADER_MEMBER} (a plain .npz?)")
    try:
        header = json.loads(archive.header_bytes(HEADER_MEMBER).decode("utf-8"))
    except FileProblem as exc:
        raise ModelFileError(path, str(exc)) from exc
    except Exception as exc:
        raise ModelFileError(path, f"the header is truncated or corrupt ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(path, f"not an fmlearn model file: {HEADER_MEMBER} does not declare "
                             f"format {FORMAT!r}")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(path, f"invalid format_version {version!r}; this fmlearn reads "
                             f"format version {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise ModelFileError(path, f"written by fmlearn {header.get('fmlearn_version', '?')} with "
                             f"format version {version}; this fmlearn ({_fmlearn_version()}) "
                             f"reads up to {FORMAT_VERSION}; upgrade fmlearn")
    return header


def read_header(path: StrPath) -> dict[str, Any]:
    """The header of a model file, without reading its arrays.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    header : dict
        The JSON header: ``format``, ``format_version``, ``fmlearn_version``,
        ``estimator``, ``model_kind``, ``dtype``, ``params``, ``n_features_in_``,
        ``feature_names_in_``, ``classes_``, ``classes_dtype``, ``n_iter_``, ``model``
        and ``attributes`` (nodes naming the arrays; small values such as
        ``loss_curve_`` inline) and ``arrays`` (each array's ``dtype`` and ``shape``, or
        ``same_as`` another array).

    Raises
    ------
    ModelFileError
        If the file is not a model file, is truncated or corrupt, or has a newer
        format version than this fmlearn reads.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fmlearn import FMClassifier
    >>> from fmlearn.persistence import read_header, save
    >>> X = np.eye(4); y = ["a", "b", "a", "b"]
    >>> clf = FMClassifier(n_factors=2, max_iter=3, random_state=0).fit(X, y)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> header = read_header(save(clf, os.path.join(tmp.name, "model.fm")))
    >>> header["estimator"], header["classes_"], header["arrays"]["model.factors"]["shape"]
    ('FMClassifier', ['a', 'b'], [4, 2])
    >>> tmp.cleanup()
    """
    with _open(path) as (_, header):
        return header


def load(path: StrPath) -> BaseFM:
    """Read a fitted estimator from a file written by :func:`save`, without pickle.

    The arrays are read with ``np.load(..., allow_pickle=False)`` and only the
    estimator classes and model kinds fmlearn registers are built, so a file can hold
    data only, never code; and only after every array is checked against the header
    and the others (see the module notes), so a crafted file cannot make prediction
    or a warm start read outside an array. The loaded estimator predicts exactly (bit
    for bit) as the saved one, and ``set_params(warm_start=True).fit(...)`` continues
    training as the saved estimator would (same solver state, same random stream).

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    estimator : FMRegressor or FMClassifier
        The fitted estimator.

    Raises
    ------
    ModelFileError
        If the file is not a model file (a text file, a pickle, a plain ``.npz``), is
        truncated or corrupt, was written with another format version, misses an array,
        has a member larger than its bytes can hold, or holds arrays that disagree with
        its header or with each other (the message names the member).
    FileNotFoundError
        If there is no file at ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fmlearn import FMClassifier
    >>> from fmlearn.persistence import load, save
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((100, 3)); y = X[:, 0] > 0.5
    >>> clf = FMClassifier(n_factors=2, solver="mcmc", max_iter=10, random_state=0).fit(X, y)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> loaded = load(save(clf, os.path.join(tmp.name, "model.fm")))
    >>> loaded.model_.n_samples, loaded.classes_
    (9, array([False,  True]))
    >>> bool(np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)))
    True
    >>> tmp.cleanup()
    """
    with _open(path) as (archive, header):
        kind = header.get("model_kind")
        if isinstance(kind, str) and kind in _OPTIONAL_KINDS:
            return importlib.import_module(_OPTIONAL_KINDS[kind]).load_archive(
                path, archive, header)
        try:
            archive.table = header["arrays"]
            decoder, estimator, model, attributes = _read_estimator(path, archive, header)
            estimator.model_ = decoder.build(model)
            for attr, value in attributes.items():
                setattr(estimator, attr, decoder.build(value))
        except ModelFileError:
            raise
        except FileProblem as exc:
            raise ModelFileError(path, str(exc)) from exc
        except Exception as exc:
            raise ModelFileError(path, f"malformed header ({type(exc).__name__}: {exc})") from exc
    return estimator


def _read_estimator(path: StrPath, arrays: Archive | Mapping[str, np.ndarray],
                    header: dict[str, Any]) -> tuple[_Decoder, BaseFM, Any, dict[str, Any]]:
    """Read and check what a header describes: ``(decoder, estimator, model, attributes)``,
    the estimator with its parameters and header attributes, the model and the other fitted
    attributes as :meth:`_Decoder.raw` values that passed
    :func:`~fmlearn._model_file_checks.check_estimator`."""
    cls = _estimator_class(header["estimator"])
    if cls is None:
        raise ModelFileError(path, f"unknown estimator {header['estimator']!r}; this fmlearn "
                             f"loads {sorted(_ESTIMATORS)}, upgrade fmlearn")
    unknown = sorted(set(header["attributes"]) - set(_ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown fitted attribute {unknown[0]!r}")
    decoder = _Decoder(path, arrays, header["arrays"])
    vectors = header.get("param_arrays", {})  # older files keep them as lists in params
    twice = sorted(set(vectors) & set(header["params"]))
    if twice:
        raise FileProblem(f"parameter {twice[0]!r} is both in params and in param_arrays")
    params: dict[str, Any] = {**header["params"], **{
        name: _int_vector(decoder.raw(node), name) for name, node in vectors.items()}}
    estimator = cls(**params)
    model = decoder.raw(header["model"])
    attributes = {**_MISSING_MEANS.get(cls.__name__, {}),
                  **{attr: decoder.raw(node) for attr, node in header["attributes"].items()}}
    check_estimator(estimator, header, model, attributes, decoder.names.get)
    estimator.n_features_in_ = header["n_features_in_"]
    if header.get("feature_names_in_") is not None:
        estimator.feature_names_in_ = np.asarray(header["feature_names_in_"], dtype=object)
    if header.get("classes_") is not None:
        estimator.classes_ = np.array(header["classes_"], dtype=np.dtype(header["classes_dtype"]))
    estimator.n_iter_ = header["n_iter_"]
    return decoder, estimator, model, attributes
