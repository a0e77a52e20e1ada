"""Compile the kernels before they are first needed, into numba's cache (``fmlearn warmup``).

numba compiles a kernel the first time it is called with new argument types and keeps the
result in its cache (see the README: beside the installed sources, or in
``NUMBA_CACHE_DIR``). A container image or a cluster's workers that run :func:`warmup` once
start every later process with the kernels ready.
"""
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp

#: Every estimator kind and solver: name -> (estimator class, parameters, target kind).
KINDS: dict[str, tuple[str, dict, str]] = {
    "FMRegressor sgd": ("FMRegressor", {"solver": "sgd"}, "real"),
    "FMRegressor sgda": ("FMRegressor", {"solver": "sgda"}, "real"),
    "FMRegressor als": ("FMRegressor", {"solver": "als"}, "real"),
    "FMRegressor mcmc": ("FMRegressor", {"solver": "mcmc", "max_iter": 3}, "real"),
    "FMRegressor vb": ("FMRegressor", {"solver": "vb"}, "real"),
    "FMRegressor order=3": ("FMRegressor", {"order": 3}, "real"),
    "FMRegressor adam": ("FMRegressor", {"solver": "adam"}, "real"),
    "FMRegressor ftrl": ("FMRegressor", {"solver": "ftrl"}, "real"),
    "FMClassifier sgd": ("FMClassifier", {"solver": "sgd"}, "binary"),
    "FMClassifier sgda": ("FMClassifier", {"solver": "sgda"}, "binary"),
    "FMClassifier als": ("FMClassifier", {"solver": "als"}, "binary"),
    "FMClassifier mcmc": ("FMClassifier", {"solver": "mcmc", "max_iter": 3}, "binary"),
    "FMClassifier vb": ("FMClassifier", {"solver": "vb"}, "binary"),
    "FMClassifier order=3": ("FMClassifier", {"order": 3}, "binary"),
    "FMClassifier adam": ("FMClassifier", {"solver": "adam"}, "binary"),
    "FMClassifier ftrl": ("FMClassifier", {"solver": "ftrl"}, "binary"),
    "FMClassifier 3 classes": ("FMClassifier", {}, "classes"),
    "FMOrdinalRegressor": ("FMOrdinalRegressor", {"max_iter": 3}, "classes"),
    "FFMRegressor": ("FFMRegressor", {"fields": "fields"}, "real"),
    "FFMClassifier": ("FFMClassifier", {"fields": "fields"}, "binary"),
    "FFMClassifier ftrl": ("FFMClassifier", {"fields": "fields", "solver": "ftrl"}, "binary"),
    "FwFMClassifier": ("FwFMClassifier", {"fields": "fields"}, "binary"),
    "FwFMClassifier ftrl": ("FwFMClassifier", {"fields": "fields", "solver": "ftrl"}, "binary"),
    "FMRanker": ("FMRanker", {}, "pairs"),
}


def _problem(dtype):
    """A tiny planted problem: one-hot users and items, and its targets of every kind."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 8, 64), rng.integers(0, 8, 64)
    X = sp.hstack([sp.eye(8, format="csr", dtype=dtype)[users],
                   sp.eye(8, format="csr", dtype=dtype)[items]]).tocsr()
    score = np.sin(users) * np.cos(items)
    targets = {"real": score + 3, "binary": score > 0, "pairs": score,
               "classes": np.digitize(score, [-0.3, 0.3])}
    return X, users, targets


def fit_kind(name: str, dtype: str = "float32", n_jobs: int | None = None) -> None:
    """Fit and use once the estimator kind ``name`` (a key of :data:`KINDS`) on a tiny
    problem in ``dtype``, compiling what it needs.

    Examples
    --------
    >>> fit_kind("FMRegressor sgd")
    """
    import fmlearn

    cls, params, target = KINDS[name]
    X, users, targets = _problem(dtype)
    params = {"fields": np.repeat([0, 1], 8)} if params.get("fields") else dict(params)
    model = getattr(fmlearn, cls)(n_factors=2, max_iter=params.pop("max_iter", 2), dtype=dtype,
                                  n_jobs=n_jobs, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs do not converge, on purpose
        if target == "pairs":
            model.fit(X, targets[target], groups=users)
        else:
            model.fit(X, targets[target])
    model.predict(X)
    if hasattr(model, "predict_proba"):
        model.predict_proba(X)
    _score_ahead(model, X)
    if params.get("solver") == "adam":
        _share_adam_batches(model, target, dtype)


def _score_ahead(model, X):
    """Score ``X`` once with the kernel that prefetches parameter rows, which ``predict``
    takes for models beyond the caches (``kernels.predict.PREFETCH_FROM_BYTES``)."""
    from ._validation import as_fm_csr
    from .kernels.predict import predict_chunk_ahead
    from .model import FMModel, run_predict

    fitted = getattr(model, "model_", None)
    if type(fitted) is FMModel:
        run_predict(predict_chunk_ahead, as_fm_csr(X, fitted.dtype), X.shape[0], 1,
                    fitted.dtype.type(fitted.intercept), fitted.coef, fitted.factors)


def _share_adam_batches(model, target, dtype):
    """Fit ``model``'s Adam once on batches large enough to be shared by two threads
    (``kernels.adam.MIN_WORK_PER_THREAD`` non-zeros times ``k + 1`` each), compiling the
    kernels that only such batches run; nothing where numba has one thread."""
    from .kernels.adam import MIN_WORK_PER_THREAD

    n_factors = 15
    n_rows = -(-4 * MIN_WORK_PER_THREAD // (2 * (n_factors + 1)))  # two non-zeros per row
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 8, n_rows), rng.integers(0, 8, n_rows)
    X = sp.hstack([sp.eye(8, format="csr", dtype=dtype)[users],
                   sp.eye(8, format="csr", dtype=dtype)[items]]).tocsr()
    y = np.sin(users) * np.cos(items) > 0 if target == "binary" else np.sin(users) + 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch does not converge, on purpose
        model.set_params(n_jobs=2, n_factors=n_factors, batch_size=n_rows, max_iter=1).fit(X, y)


def _fit_sgd_with(dtype, **constants):
    """Fit the SGD regressor and classifier once, with and without sample weights, with
    the module constants of :mod:`fmlearn.solvers.sgd` in ``constants`` set for the fits."""
    import fmlearn

    from .solvers import sgd

    X, _, targets = _problem(dtype)
    kept = {name: getattr(sgd, name) for name in constants}
    for name, value in constants.items():
        setattr(sgd, name, value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge, on purpose
            for cls, target in (("FMRegressor", "real"), ("FMClassifier", "binary")):
                for weights in (None, np.ones(X.shape[0])):
                    getattr(fmlearn, cls)(n_factors=2, max_iter=1, dtype=dtype,
                                          random_state=0).fit(X, targets[target],
                                                              sample_weight=weights)
    finally:
        for name, value in kept.items():
            setattr(sgd, name, value)


def stage_rows(dtype: str = "float32") -> None:
    """Fit the SGD estimators once with their rows staged, as a fit whose copy of the rows
    would take more than ``COPY_ROWS_BYTES`` does, with and without sample weights,
    compiling the staging kernels.

    Examples
    --------
    >>> stage_rows()
    """
    _fit_sgd_with(dtype, COPY_ROWS_BYTES=0)  # stage whatever the size


def pack_parameters(dtype: str = "float32") -> None:
    """Fit the SGD estimators once with their parameters packed, as an AdaGrad fit whose
    factors miss the caches does (``fmlearn.solvers.sgd.PACK_FROM_VISITS_PER_FEATURE``),
    compiling the packed epoch.

    Examples
    --------
    >>> pack_parameters()
    """
    _fit_sgd_with(dtype, OUT_OF_CACHE_BYTES=0, PACK_FROM_VISITS_PER_FEATURE=0)


def read_files(dtype: str = "float32") -> None:
    """Write and read back a tiny file in every format, compiling the readers.

    Examples
    --------
    >>> read_files()
    """
    from . import io

    X, _, targets = _problem(dtype)
    fields = np.repeat([0, 1], 8)
    y = targets["real"]
    with tempfile.TemporaryDirectory(prefix="fmlearn-warmup-") as folder:
        path = os.path.join(folder, "data")
        io.dump_libsvm(X, y, path + ".libfm")
        io.load_libsvm(path + ".libfm", dtype=dtype)
        io.dump_ffm(X, y, fields, path + ".ffm")
        io.load_ffm(path + ".ffm", dtype=dtype)
        io.dump_recordio(X, y, path + ".rec")
        io.load_recordio(path + ".rec", dtype=dtype)


def warmup(all: bool = False, kinds: Iterable[str] | None = None,
           progress: Callable[[str, float], None] | None = None) -> dict[str, float]:
    """Compile the kernels of ``kinds`` (default: every one of :data:`KINDS`) in float32, the
    default dtype; with ``all``, in float64 too, and the staging of large fits' rows, the
    packed epochs of their parameters and the file readers as well. Returns the seconds each
    step took; ``progress(step, seconds)`` is called after each.

    Examples
    --------
    >>> seconds = warmup(kinds=["FMRegressor sgd"])
    >>> list(seconds)
    ['FMRegressor sgd float32']
    """
    names = list(KINDS if kinds is None else kinds)
    unknown = [name for name in names if name not in KINDS]
    if unknown:
        raise ValueError(f"unknown estimator kinds {unknown}; known: {sorted(KINDS)}.")
    steps: list[tuple[str, Callable[[], None]]] = []
    for dtype in ("float32", "float64") if all else ("float32",):
        steps += [(f"{name} {dtype}", lambda name=name, dtype=dtype: fit_kind(name, dtype))
                  for name in names]
        if all:
            steps.append((f"staged rows {dtype}", lambda dtype=dtype: stage_rows(dtype)))
            steps.append((f"packed parameters {dtype}",
                          lambda dtype=dtype: pack_parameters(dtype)))
            steps.append((f"file readers {dtype}", lambda dtype=dtype: read_files(dtype)))
    seconds = {}
    for step, run in steps:
        begin = time.perf_counter()
        run()
        seconds[step] = time.perf_counter() - begin
        if progress is not None:
            progress(step, seconds[step])
    return seconds
