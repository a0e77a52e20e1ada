"""SageMaker Factorization Machines models (``model.tar.gz``) in and out.

A model trained by SageMaker's built-in FM is a gzipped tar holding one member,
``model_algo-1``: a zip of ``symbol.json`` (the MXNet graph) and ``params`` (an MXNet
NDArray-list file, read by :mod:`fmlearn.sagemaker.ndarray`). Its parameters come in one of
two layouts:

- ``"w0_weight"``: ``w0_weight`` (1,), ``w1_weight`` (N, 1), ``v`` (N, k), as in MXNet's
  sparse FM example;
- ``"Linear_Plus_Bias"``: ``Linear_Plus_Bias_bias`` (1,), ``Linear_Plus_Bias_weight``
  (1, N), ``v`` (k, N)

(``arg:`` before each name, as MXNet checkpoints write them, or not). The number of
features ``N`` is ``feature_dim`` when the hyperparameters give it, else the size of the
linear weights; ``v`` is read in the orientation whose axis of length ``N`` matches (the
layout's own when both do). The prediction is the FM's,
``w0 + x @ w + sum_{i<j} <v_i, v_j> x_i x_j``, through a logistic for a binary classifier.

Reading is strict: the tar must hold exactly ``model_algo-1`` (no other member, no path),
the zip exactly ``symbol.json`` and ``params``, each no larger than
:data:`MAX_MEMBER_BYTES` before it is decompressed; anything else is a
:class:`~fmlearn.persistence.ModelFileError` naming the file and the member.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._classification import FMClassifier
from .._files import write_atomically
from .._model_archive import FileProblem
from .._regression import FMRegressor
from ..model import FMModel
from ..persistence import ModelFileError, _build_header, _read_estimator
from .ndarray import read_ndarrays, write_ndarrays

if TYPE_CHECKING:
    from .._typing import StrPath

__all__ = ["LAYOUTS", "MAX_MEMBER_BYTES", "is_model_tarball", "load_model", "read_header",
           "save_model"]

MEMBER = "model_algo-1"
#: The largest member (``model_algo-1``, ``params``) read, decompressed, in bytes (4 GiB:
#: 16 million features with 64 factors in float32); ``symbol.json`` may take 16 MiB. A
#: member that says it is larger is refused before a byte of it is decompressed; raise
#: this for larger models.
MAX_MEMBER_BYTES = 1 << 32
_MAX_SYMBOL_BYTES = 1 << 24
_MAX_TRAILER_BYTES = 1 << 20  # tar pads to 10 KiB records
#: The parameter names of each layout: bias, linear weights, factors.
LAYOUTS = {"w0_weight": ("w0_weight", "w1_weight", "v"),
           "Linear_Plus_Bias": ("Linear_Plus_Bias_bias", "Linear_Plus_Bias_weight", "v")}
_OUTPUTS = {"LogisticRegressionOutput": "binary_classifier", "sigmoid": "binary_classifier",
            "LinearRegressionOutput": "regressor"}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# What a damaged gzip stream, tar or zip raises besides its module's own error
_BROKEN = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error,
           NotImplementedError)


# --- reading ------------------------------------------------------------------------------------
def load_model(path: StrPath, hyperparameters: Mapping[str, Any] | None = None
               ) -> FMRegressor | FMClassifier:
    """Read a ``model.tar.gz`` of SageMaker's Factorization Machines as a fitted estimator.

    Parameters
    ----------
    path : str or path-like
        The model artifact, as SageMaker writes it to S3 (or :func:`save_model` does).
    hyperparameters : mapping, optional
        The training job's hyperparameters (values as strings or numbers). Read:
        ``predictor_type`` (``"regressor"`` or ``"binary_classifier"``; when absent, the
        symbol's output decides: a logistic output is a binary classifier),
        ``feature_dim`` and ``num_factors`` (checked against the parameters' shapes); the
        others are ignored.

    Returns
    -------
    estimator : FMRegressor or FMClassifier
        Fitted, with ``dtype`` the parameters' (float32), ``n_factors`` ``k``, no clipping
        of regression predictions, and ``classes_`` ``[0, 1]`` for a classifier, whose
        ``predict_proba`` is the logistic of the score as SageMaker's ``score``. It
        predicts, saves (:func:`fmlearn.save`) and serves like any fitted estimator, and
        ``warm_start=True`` continues training from its parameters.

    Raises
    ------
    ModelFileError
        If the file is not such an artifact (see the module notes), the parameters are
        neither layout or disagree with each other or with the hyperparameters, or
        the predictor type is given neither by the hyperparameters nor by the symbol.
    FileNotFoundError
        If there is no file at ``path``.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.sagemaker import load_model
    >>> reg = load_model("tests/fixtures/mxnet/w_regressor.tar.gz")
    >>> type(reg).__name__, reg.n_features_in_, reg.n_factors
    ('FMRegressor', 7, 3)
    >>> x = np.eye(7)[:1] + np.eye(7)[3:4]
    >>> w0, w, v = reg.intercept_, reg.coef_, reg.factors_
    >>> bool(np.isclose(reg.predict(x)[0], w0 + w[0] + w[3] + v[0] @ v[3], rtol=1e-5))
    True
    """
    path_str = str(path)
    with open(path, "rb") as fh:
        members = _zip_members(path_str, _tar_member(path_str, fh))

    def fail(problem: str) -> ModelFileError:
        return ModelFileError(path_str, f"{MEMBER}: {problem}")

    hyper = dict(hyperparameters or {})
    output = _symbol_predictor(members["symbol.json"], fail)
    predictor = hyper.get("predictor_type") or output
    if predictor not in ("regressor", "binary_classifier"):
        raise fail("symbol.json does not tell regressor from binary_classifier; pass "
                   "hyperparameters={'predictor_type': ...}" if predictor is None else
                   f"predictor_type {predictor!r} is not 'regressor' or 'binary_classifier'")
    params = read_ndarrays(members["params"], path_str, f"{MEMBER}: params")
    bias, linear, factors = _parameters(params, _count(hyper, "feature_dim", fail),
                                        _count(hyper, "num_factors", fail), fail)
    return _estimator(path_str, predictor, bias, linear, factors)


def read_header(path: StrPath, hyperparameters: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """What ``fmlearn info`` shows of a ``model.tar.gz``: the header :func:`fmlearn.save`
    would write for :func:`load_model`'s estimator, with ``"source": "sagemaker"`` in place
    of ``format`` and ``format_version``.

    Parameters
    ----------
    path : str or path-like
        The model artifact.
    hyperparameters : mapping, optional
        As for :func:`load_model`.

    Returns
    -------
    header : dict
        See :func:`fmlearn.read_header`.

    Examples
    --------
    >>> from fmlearn.sagemaker import read_header
    >>> header = read_header("tests/fixtures/mxnet/linear_plus_bias_classifier.tar.gz")
    >>> header["source"], header["estimator"], header["arrays"]["model.factors"]["shape"]
    ('sagemaker', 'FMClassifier', [7, 3])
    """
    header, _ = _build_header(load_model(path, hyperparameters), path)
    del header["format"], header["format_version"]
    return {"source": "sagemaker", **header}


def is_model_tarball(path: StrPath) -> bool:
    """Whether ``path`` starts as a gzip file or a tar archive does (an fmlearn model file is
    a zip), so that the command line and the server hand it to :func:`load_model`.

    Examples
    --------
    >>> is_model_tarball("tests/fixtures/mxnet/w_regressor.tar.gz")
    True
    """
    with open(path, "rb") as fh:
        head = fh.read(262)
    return head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar"


def _tar_member(path: str, fh: Any) -> bytes:
    """The bytes of ``model_algo-1``, the tar's only member."""
    try:
        tar = tarfile.open(fileobj=fh, mode="r:*")
    except _BROKEN as exc:
        raise ModelFileError(path, f"not a SageMaker model.tar.gz, or truncated or corrupt "
                             f"({exc})") from exc
    data = None
    with tar:
        try:
            for info in tar:
                if info.name.removeprefix("./") != MEMBER:
                    kind = "an unsafe member name" if _unsafe(info.name) else "a member"
                    raise ModelFileError(path, f"{kind} {info.name!r}; a SageMaker FM model "
                                         f"holds only {MEMBER!r}")
                if data is not None or not info.isfile():
                    raise ModelFileError(path, f"{info.name!r} is repeated or not a file")
                if info.size > MAX_MEMBER_BYTES:
                    raise ModelFileError(path, f"{info.name!r} says it holds {info.size} bytes, "
                                         f"more than the {MAX_MEMBER_BYTES} read")
                member = tar.extractfile(info)
                data = b"" if member is None else member.read(info.size)
                if len(data) != info.size:
                    raise ModelFileError(path, f"{info.name!r} is truncated")
            _check_end(path, tar.fileobj)
        except _BROKEN as exc:
            raise ModelFileError(path, f"the archive is truncated or corrupt ({exc})") from exc
    if data is None:
        raise ModelFileError(path, f"the archive has no {MEMBER!r}")
    return data


def _check_end(path: str, stream: Any) -> None:
    """Read the stream past the tar's end (its padding), so that gzip checks its CRC and
    length: a cut or altered file is refused even where the member itself was whole."""
    left = _MAX_TRAILER_BYTES
    while chunk := stream.read(1 << 16):
        left -= len(chunk)
        if left < 0:
            raise ModelFileError(path, f"more than {_MAX_TRAILER_BYTES} bytes after the tar's "
                                 "end")


def _unsafe(name: str) -> bool:
    return name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/")


def _zip_members(path: str, data: bytes) -> dict[str, bytes]:
    """``symbol.json`` and ``params`` from the zip ``model_algo-1``."""
    limits = {"symbol.json": _MAX_SYMBOL_BYTES, "params": MAX_MEMBER_BYTES}
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (*_BROKEN, ValueError) as exc:
        raise ModelFileError(path, f"{MEMBER} is not a zip archive ({exc})") from exc
    members = {}
    with archive:
        for info in archive.infolist():
            where = f"{MEMBER}: {info.filename!r}"
            if info.filename not in limits or info.filename in members:
                kind = "an unsafe member" if _unsafe(info.filename) else "an unexpected member"
                raise ModelFileError(path, f"{where} is {kind} or repeated; the zip holds "
                                     "symbol.json and params")
            if info.file_size > limits[info.filename]:
                raise ModelFileError(path, f"{where} says it holds {info.file_size} bytes, more "
                                     f"than the {limits[info.filename]} read")
            try:
                with archive.open(info) as member:
                    members[info.filename] = member.read(info.file_size)
            except Exception as exc:  # BadZipFile (CRC), zlib.error, NotImplementedError
                raise ModelFileError(path, f"{where} is corrupt ({exc})") from exc
    missing = sorted(set(limits) - set(members))
    if missing:
        raise ModelFileError(path, f"{MEMBER} has no {missing[0]}")
    return members


def _symbol_predictor(text: bytes, fail: Any) -> str | None:
    """The predictor type the graph's output says, None where it does not tell."""
    try:
        nodes = json.loads(text.decode("utf-8"))["nodes"]
        ops = {node["op"] for node in nodes}
    except Exception as exc:
        raise fail(f"symbol.json is not an MXNet symbol ({type(exc).__name__}: {exc})") from exc
    types = {_OUTPUTS[op] for op in ops if isinstance(op, str) and op in _OUTPUTS}
    return types.pop() if len(types) == 1 else None


def _count(hyper: Mapping[str, Any], name: str, fail: Any) -> int | None:
    value = hyper.get(name)
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1:
        raise fail(f"hyperparameter {name}={value!r} is not a positive integer")
    return number


def _parameters(params: dict | list, n_features: int | None, n_factors: int | None,
                fail: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bias (1,), linear weights (N,) and factors (N, k) from either layout."""
    if not isinstance(params, dict):
        raise fail("params names none of its arrays")
    named = {name.removeprefix("arg:"): array for name, array in params.items()}
    layout = next((key for key, names in LAYOUTS.items() if names[0] in named), "w0_weight")
    names = LAYOUTS[layout]
    if set(named) != set(names):
        raise fail(f"params holds {sorted(params)}; a SageMaker FM model holds "
                   f"{list(LAYOUTS['w0_weight'])} or {list(LAYOUTS['Linear_Plus_Bias'])}")
    bias, linear, v = (named[name] for name in names)
    dtypes = {a.dtype for a in (bias, linear, v)}
    if len(dtypes) != 1 or dtypes.pop().kind != "f":
        raise fail(f"the parameters' dtypes are {[a.dtype.name for a in (bias, linear, v)]}; "
                   "expected one floating dtype")
    columns = layout == "w0_weight"  # w1_weight is a column (N, 1), v (N, k)
    if bias.shape != (1,) or linear.ndim != 2 or linear.shape[columns] != 1 or v.ndim != 2:
        raise fail(f"shapes {names[0]} {bias.shape}, {names[1]} {linear.shape}, v {v.shape}; "
                   f"the {layout} layout has (1,), "
                   + ("(N, 1), (N, k)" if columns else "(1, N), (k, N)"))
    n = linear.size if n_features is None else n_features
    if linear.size != n:
        raise fail(f"{names[1]} has {linear.size} weights; feature_dim is {n}")
    orientations = [rows for rows in (columns, not columns)
                    if v.shape[1 - rows] == n and n_factors in (None, v.shape[rows])]
    if not orientations:
        raise fail(f"v has shape {v.shape}; expected (feature_dim, num_factors) or its transpose "
                   f"with feature_dim={n}, num_factors={n_factors}")
    factors = v if orientations[0] else v.T
    dtype = np.promote_types(bias.dtype, np.float32)
    return (bias.astype(dtype), np.ascontiguousarray(linear.reshape(-1), dtype=dtype),
            np.ascontiguousarray(factors, dtype=dtype))


def _estimator(path: str, predictor: str, bias: np.ndarray, linear: np.ndarray,
               factors: np.ndarray) -> FMRegressor | FMClassifier:
    """A fitted estimator holding the parameters, checked as :func:`fmlearn.load` checks a file."""
    common = {"n_factors": factors.shape[1], "dtype": factors.dtype.name, "random_state": 0}
    estimator: FMRegressor | FMClassifier
    if predictor == "regressor":
        estimator = FMRegressor(clip_predictions=False, **common)
        limit = float(np.finfo(factors.dtype).max)
        estimator.target_range_ = (-limit, limit)
    else:
        estimator = FMClassifier(**common)
        estimator.classes_ = np.array([0, 1])
    estimator.n_features_in_ = linear.shape[0]
    estimator.n_iter_ = estimator.t_ = 0
    estimator._rng = np.random.default_rng(0)
    estimator.model_ = FMModel(float(bias[0]), linear, factors)
    estimator._solver_state = estimator._solver().initial_state(estimator.model_, None)
    try:
        header, arrays = _build_header(estimator, path)
        _read_estimator(path, arrays, json.loads(json.dumps(header)))
    except FileProblem as exc:
        raise ModelFileError(path, f"{MEMBER}: params: {exc}") from exc
    return estimator


# --- writing ------------------------------------------------------------------------------------
def save_model(estimator: FMRegressor | FMClassifier, path: StrPath, *,
               layout: str = "w0_weight") -> str:
    """Write a fitted estimator as a SageMaker Factorization Machines ``model.tar.gz``.

    The tar holds ``model_algo-1``, a zip of ``symbol.json`` (the FM graph with a linear or
    logistic output) and ``params`` (``arg:`` names, float32), which MXNet (``mx.nd.load``,
    ``mx.sym.load``) and :func:`load_model` read. The tar's bytes depend only on the
    parameters; the file is written atomically (a temporary file renamed over ``path``).

    Parameters
    ----------
    estimator : FMRegressor or FMClassifier
        Fitted, of order 2 with one set of parameters: a classifier with two classes and
        the logistic link (``solver`` ``"sgd"``, ``"sgda"`` or ``"adam"``; not the probit
        ``"als"``, ``"mcmc"`` or ``"vb"``). The parameters are stored as float32; regression
        predictions are no longer clipped; ``classes_[1]`` is the class SageMaker calls 1.
    path : str or path-like
        Where to write; an existing file is replaced.
    layout : {"w0_weight", "Linear_Plus_Bias"}, default="w0_weight"
        The parameter names and shapes (see the module notes).

    Returns
    -------
    path : str
        ``path`` as a string.

    Raises
    ------
    ValueError
        If the estimator is not such a model or ``layout`` is unknown.
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from fmlearn import FMClassifier
    >>> from fmlearn.sagemaker import load_model, save_model
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((200, 5)); y = (X[:, 0] > X[:, 1]).astype(int)
    >>> clf = FMClassifier(n_factors=2, max_iter=5, random_state=0).fit(X, y)
    >>> folder = tempfile.mkdtemp()
    >>> loaded = load_model(save_model(clf, os.path.join(folder, "model.tar.gz")))
    >>> bool(np.allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6))
    True
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}; expected one of {sorted(LAYOUTS)}")
    check_is_fitted(estimator, "model_")
    classifier = isinstance(estimator, FMClassifier)
    model = estimator.model_
    if not isinstance(estimator, (FMRegressor, FMClassifier)) or type(model) is not FMModel:
        raise ValueError(f"save_model writes a second-order FM with one set of parameters; got "
                         f"{type(estimator).__name__} holding a {type(model).__name__}")
    if classifier and estimator.solver in ("als", "mcmc", "vb"):
        raise ValueError(f"solver={estimator.solver!r} classifies with the probit link; "
                         "SageMaker's FM uses the logistic one (solver='sgd', 'sgda' or 'adam')")
    bias = np.array([model.intercept], dtype=np.float32)
    linear = model.coef.astype(np.float32)
    factors = model.factors.astype(np.float32)
    n, k = factors.shape
    names = LAYOUTS[layout]
    if layout == "w0_weight":
        params = {names[0]: bias, names[1]: linear.reshape(n, 1), "v": factors}
    else:
        params = {names[0]: bias, names[1]: linear.reshape(1, n), "v": factors.T}
    symbol = _symbol(layout, n, k, classifier)
    members = {"symbol.json": json.dumps(symbol, indent=2).encode(),
               "params": write_ndarrays({f"arg:{key}": value for key, value in params.items()})}
    write_atomically(path, lambda fh: _write_tarball(fh, members))
    return str(path)


def _symbol(layout: str, n: int, k: int, classifier: bool) -> dict:
    """The MXNet graph of the FM (as ``Symbol.tojson`` writes it)."""
    nodes: list[dict] = []

    def node(op: str, name: str, *inputs: int, **attrs: str) -> int:
        nodes.append({"op": op, "name": name, **({"attrs": attrs} if attrs else {}),
                      "inputs": [[i, 0, 0] for i in inputs]})
        return len(nodes) - 1

    x = node("null", "data")
    if layout == "w0_weight":  # MXNet's sparse FM example
        w1 = node("null", "w1_weight", __shape__=f"({n}, 1)")
        w0 = node("null", "w0_weight", __shape__="(1,)")
        linear = node("broadcast_add", "broadcast_add0", node("dot", "dot0", x, w1), w0)
        v = node("null", "v", __shape__=f"({n}, {k})")
        squared = node("_mul_scalar", "_mulscalar0",
                       node("square", "square2", node("dot", "dot2", x, v)), scalar="0.5")
        total = node("sum", "sum1", node("Concat", "concat0", linear, squared, dim="1",
                                         num_args="2"), axis="1", keepdims="True")
        self_terms = node("dot", "dot1", node("square", "square1", x),
                          node("sum", "sum0", node("square", "square0", v), axis="1",
                               keepdims="True"))
        score = node("elemwise_sub", "_minus0", total,
                     node("_mul_scalar", "_mulscalar1", self_terms, scalar="0.5"))
    else:  # a fully connected layer for the linear part, v as (k, N)
        weight = node("null", "Linear_Plus_Bias_weight", num_hidden="1")
        bias = node("null", "Linear_Plus_Bias_bias", num_hidden="1")
        linear = node("FullyConnected", "Linear_Plus_Bias", x, weight, bias, num_hidden="1")
        v = node("null", "v", __shape__=f"({k}, {n})")
        xv = node("sum", "sum3", node("square", "square5", node("dot", "dot3", x, v,
                                                                 transpose_b="True")),
                  axis="1", keepdims="True")
        self_terms = node("dot", "dot4", node("square", "square4", x),
                          node("sum", "sum2", node("square", "square3", v), axis="0",
                               keepdims="True"), transpose_b="True")
        pairs = node("_mul_scalar", "_mulscalar2", node("elemwise_sub", "_minus1", xv,
                                                        self_terms), scalar="0.5")
        score = node("elemwise_add", "_plus0", linear, pairs)
    label = node("null", "out_label")
    node("LogisticRegressionOutput" if classifier else "LinearRegressionOutput", "out", score,
         label)
    return {"nodes": nodes, "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
            "node_row_ptr": list(range(len(nodes) + 1)), "heads": [[len(nodes) - 1, 0, 0]],
            "attrs": {"mxnet_version": ["int", 10901]}}


def _write_tarball(fh: Any, members: dict[str, bytes]) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:  # stored: the tar's bytes never depend on zlib
        for name, data in members.items():
            info = zipfile.ZipInfo(name, _ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    info = tarfile.TarInfo(MEMBER)
    info.size, info.mode = inner.tell(), 0o644
    inner.seek(0)
    # mtime 0 in the gzip header and the tar entry: equal parameters give equal bytes
    with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(info, inner)
