"""Fuzz target for fmlearn's model files: bytes in, an :class:`Outcome` out.

``run_model_file(data)`` writes one candidate file, reads it with ``read_header`` and
``load``, and, when it loads, compares the estimator's predictions with the formula
computed by brute force in NumPy on the loaded arrays (:func:`reference`). Every
outcome but ``"refused"`` (a ``ModelFileError``) and ``"correct"`` is a bug.
``run_isolated`` does the same in a child process, so that a crash or a hang is an
outcome too. The inputs come from :func:`seed_files` (a small fitted model of every kind
``fmlearn.persistence`` writes) and the mutators below; :func:`mutate` applies one at
random, for a fuzzing loop::

    rng = np.random.default_rng(0)
    seeds = seed_files()
    for _ in range(1000):
        outcome = run_model_file(mutate(seeds[rng.choice(sorted(seeds))], rng))
        assert outcome.kind in GOOD, outcome

Import it with ``bench/`` on ``sys.path`` (as the bench scripts are run):
``from fuzz_targets.model_files import run_model_file``.
"""
import io
import itertools
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from fmlearn import (FFMClassifier, FFMRegressor, FMClassifier, FMRanker, FMRegressor,
                     FwFMClassifier, FwFMRegressor, ModelFileError, load, read_header, save)
from fmlearn.fwfm_model import FwFMModel
from fmlearn.model import FFMModel, FMModel, FMSamples, HOFMModel, MulticlassFMModel

GOOD = ("refused", "correct")
OUTCOMES = GOOD + ("wrong", "exception", "unpickled", "crash", "hang")


@dataclass
class Outcome:
    """What a candidate file led to: ``kind`` (one of ``OUTCOMES``) and the details.

    ``refused``: ``load`` raised ``ModelFileError``. ``correct``: it loaded, and every
    prediction equals the reference (rows whose terms overflow the model dtype may give
    any value or a ``ValueError`` saying so). ``wrong``: a prediction differs.
    ``exception``: any other exception from ``read_header``, ``load`` or a prediction.
    ``unpickled``: reading ran a pickle. ``crash`` and ``hang``: the child process of
    ``run_isolated`` died of a signal or ran past its time.
    """

    kind: str
    detail: str = ""


# --- pickles must never run ----------------------------------------------------------------------
UNPICKLED = []


def _unpickled():
    UNPICKLED.append(True)
    return 0


class Canary:
    """An object whose unpickling records itself in ``UNPICKLED``."""

    def __reduce__(self):
        return _unpickled, ()


# --- the reference -------------------------------------------------------------------------------
def probe_rows(n_features):
    """Rows to predict: each of the first features alone, neighbouring pairs, four features
    with mixed values, an empty row and the last feature (float32-exact values)."""
    n = n_features
    rows = []
    for i in range(min(n, 8)):
        rows.append({i: 1.0})
    for i in range(min(n - 1, 8)):
        rows.append({i: 1.0, i + 1: 1.0})
    rows.append(dict(zip(range(min(n, 4)), (0.5, -1.0, 0.25, 1.0))))
    rows.append({})
    rows.append({n - 1: 2.0})
    X = np.zeros((len(rows), n))
    for r, row in enumerate(rows):
        for i, value in row.items():
            X[r, i] = value
    return X


def _fm_row(w0, w, V, idx, x):
    """One row's FM score by the pairwise formula, and the size of what the kernel adds up."""
    score = w0 + float(np.dot(w[idx], x))
    for a, b in itertools.combinations(range(idx.shape[0]), 2):
        score += float(np.dot(V[idx[a]], V[idx[b]])) * x[a] * x[b]
    q = np.abs(V[idx]).T @ np.abs(x)  # the kernel's sums q_f, bounded
    return score, abs(w0) + float(np.abs(w[idx]) @ np.abs(x)) + float(np.sum(q * q))


def _anova_row(w0, w, P, idx, x):
    """The higher-order FM: the ANOVA kernel of every order, over all subsets of the row."""
    score = w0 + float(np.dot(w[idx], x))
    size = abs(w0) + float(np.abs(w[idx]) @ np.abs(x))
    for t in range(2, P.shape[0] + 2):
        p = P[t - 2][idx] * x[:, None]  # (nnz, k)
        for subset in itertools.combinations(range(idx.shape[0]), t):
            score += float(np.sum(np.prod(p[list(subset)], axis=0)))
        size += float(np.sum(np.abs(p).sum(axis=0) ** t))
    return score, size


def _ffm_row(w0, w, V, fields, idx, x):
    score = w0 + float(np.dot(w[idx], x))
    size = abs(w0) + float(np.abs(w[idx]) @ np.abs(x))
    for a, b in itertools.combinations(range(idx.shape[0]), 2):
        i, j = idx[a], idx[b]
        terms = V[i, fields[j]] * V[j, fields[i]] * x[a] * x[b]
        score += float(np.sum(terms))
        size += float(np.sum(np.abs(terms)))
    return score, size


def _fwfm_row(w0, w, V, fields, R, idx, x):
    """The FwFM: each pair's product weighed by its fields' weight (same-field pairs too)."""
    score = w0 + float(np.dot(w[idx], x))
    size = abs(w0) + float(np.abs(w[idx]) @ np.abs(x))
    for a, b in itertools.combinations(range(idx.shape[0]), 2):
        i, j = idx[a], idx[b]
        score += float(R[fields[i], fields[j]] * np.dot(V[i], V[j])) * x[a] * x[b]
    sums = np.zeros((R.shape[0], V.shape[1]))  # the kernel adds up field sums and their products
    np.add.at(sums, fields[idx], np.abs(V[idx]) * np.abs(x)[:, None])
    return score, size + float(np.sum(np.abs(R) * (sums @ sums.T)))


def _scores(model, X):
    """``(scores, sizes)`` of a model of one parameter set, rows of ``X`` (float64)."""
    out, sizes = [], []
    f64 = np.float64
    for row in X:
        idx = np.flatnonzero(row)
        x = row[idx]
        if isinstance(model, (FFMModel, FwFMModel)) and model.normalize and x.size:
            x = x / np.sqrt(np.sum(x * x))
        if isinstance(model, FwFMModel):
            s = _fwfm_row(float(model.intercept), model.coef.astype(f64),
                          model.factors.astype(f64), model.fields,
                          model.field_weights.astype(f64), idx, x)
        elif isinstance(model, FFMModel):
            s = _ffm_row(float(model.intercept), model.coef.astype(f64),
                         model.factors.astype(f64), model.fields, idx, x)
        elif isinstance(model, HOFMModel):
            s = _anova_row(float(model.intercept), model.coef.astype(f64),
                           model.factors.astype(f64), idx, x)
        elif isinstance(model, MulticlassFMModel):
            s = [_fm_row(float(model.intercept[c]), model.coef[c].astype(f64),
                         model.factors[c].astype(f64), idx, x)
                 for c in range(model.intercept.shape[0])]
            s = ([v for v, _ in s], max(size for _, size in s))
        elif isinstance(model, FMModel):
            s = _fm_row(float(model.intercept), model.coef.astype(f64),
                        model.factors.astype(f64), idx, x)
        else:
            raise TypeError(f"no reference for {type(model).__name__}")
        out.append(s[0])
        sizes.append(s[1])
    return np.array(out), np.array(sizes)


def reference(estimator, X):
    """What ``estimator`` must output for the rows of ``X``, from its loaded arrays.

    Returns ``(expected, sizes, probit)``: the regressor's clipped prediction, the
    classifier's decision function or the ranker's score by the formula in float64 (for
    MCMC samples with the probit link, the averaged probability); a bound on the size of
    the terms the kernels add up per row, which decides the rounding allowed and whether
    the row overflows the model dtype; and whether ``expected`` is a probability.
    """
    model = estimator.model_
    X = X.astype(model.dtype).astype(np.float64)  # the input as the kernels see it
    probit = isinstance(model, FMSamples) and model.link == "probit"
    if isinstance(model, FMSamples):
        runs = [_scores(model.sample(s), X) for s in range(model.n_samples)]
        # libFM's MCMC: each regression sample clipped to the targets' range, then averaged
        linked = [ndtr(s) if probit else s if model.bounds is None else np.clip(s, *model.bounds)
                  for s, _ in runs]
        expected = np.mean(linked, axis=0)
        sizes = np.max([size for _, size in runs], axis=0)
    else:
        expected, sizes = _scores(model, X)
    if getattr(estimator, "clip_predictions", False):
        expected = np.clip(expected, *estimator.target_range_)
    return expected, sizes, probit


def _output(estimator, X):
    if hasattr(estimator, "decision_function"):
        return estimator.decision_function(X)
    return estimator.predict(X)


def compare(estimator, X):
    """The outcome of predicting the rows of ``X`` one by one against :func:`reference`
    (the kernels run first, so that a file that crashes them crashes here)."""
    results = []
    for r in range(X.shape[0]):
        try:
            results.append(np.asarray(_output(estimator, X[r:r + 1]), dtype=np.float64)[0])
        except Exception as exc:
            results.append(exc)
    try:
        expected, sizes, probit = reference(estimator, X)
    except Exception as exc:  # arrays the formula cannot read: the load let them through
        return Outcome("wrong", f"the reference cannot read the loaded arrays: {exc!r}")
    info = np.finfo(estimator.model_.dtype)
    for r, got in enumerate(results):
        overflows = not sizes[r] * 4 < info.max
        if isinstance(got, Exception):
            if overflows and isinstance(got, ValueError) and "overflow" in str(got):
                continue
            return Outcome("exception", f"row {r}: {got!r}")
        if overflows:
            continue
        if probit:
            got = ndtr(got)
        allowed = 64 * float(info.eps) * (sizes[r] + 1)
        if not (np.all(np.isfinite(got)) and np.all(np.abs(got - expected[r]) <= allowed)):
            return Outcome("wrong", f"row {r}: predicted {got}, the formula gives {expected[r]}")
    return Outcome("correct")


# --- running one input ---------------------------------------------------------------------------
def run_model_file(data):
    """Load the model file ``data`` (bytes) and classify what happens as an :class:`Outcome`.

    ``read_header`` and ``load`` must each either succeed or raise ``ModelFileError``;
    a loaded estimator must predict :func:`probe_rows` as :func:`reference` says, and
    no pickle may run. A crash kills the caller: use :func:`run_isolated` to survive one.

    Examples
    --------
    >>> run_model_file(b"PK\\x03\\x04 not really a zip").kind
    'refused'
    """
    del UNPICKLED[:]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.fm")
        with open(path, "wb") as fh:
            fh.write(data)
        outcome = None
        try:
            read_header(path)
        except ModelFileError:
            pass
        except Exception as exc:
            outcome = Outcome("exception", f"read_header: {exc!r}")
        if outcome is None:
            try:
                estimator = load(path)
            except ModelFileError as exc:
                outcome = Outcome("refused", str(exc))
            except Exception as exc:
                outcome = Outcome("exception", f"load: {exc!r}")
        if outcome is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome = compare(estimator, probe_rows(estimator.n_features_in_))
    if UNPICKLED:
        return Outcome("unpickled", f"a pickle ran; then: {outcome.kind} {outcome.detail}")
    return outcome


def run_isolated(data, timeout=300):
    """:func:`run_model_file` in a child process: a signal is ``crash``, a timeout ``hang``.

    Examples
    --------
    >>> run_isolated(b"").kind
    'refused'
    """
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "candidate.fm")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            child = subprocess.run([sys.executable, os.path.abspath(__file__), path],
                                   capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Outcome("hang", f"no answer in {timeout} s")
    if child.returncode < 0:
        return Outcome("crash", f"signal {-child.returncode}: {child.stderr[-2000:]}")
    try:
        return Outcome(**json.loads(child.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError, TypeError):
        return Outcome("exception", f"exit {child.returncode}: {child.stderr[-2000:]}")


# --- inputs --------------------------------------------------------------------------------------
def seed_data(n_rows=60, n_features=6, seed=0):
    """Rows of one-hot features in two groups of three and a real-valued target: ``(X, y)``."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n_rows, n_features))
    X[np.arange(n_rows), rng.integers(0, 3, n_rows)] = 1.0
    X[np.arange(n_rows), 3 + rng.integers(0, 3, n_rows)] = 1.0
    y = X @ rng.normal(size=n_features) + rng.normal(0, 0.1, n_rows)
    return X, y


SEEDS = {
    "fm_sgd": lambda: FMRegressor(n_factors=2, max_iter=3),
    "fm_sgd_float64": lambda: FMRegressor(n_factors=2, max_iter=3, dtype="float64"),
    "fm_sgda": lambda: FMRegressor(n_factors=2, max_iter=3, solver="sgda"),
    "fm_als_classifier": lambda: FMClassifier(n_factors=2, max_iter=3, solver="als"),
    "fm_adam": lambda: FMRegressor(n_factors=2, max_iter=3, solver="adam", batch_size=16),
    "fm_ftrl_classifier": lambda: FMClassifier(n_factors=2, max_iter=3, solver="ftrl"),
    "mcmc_regressor": lambda: FMRegressor(n_factors=2, max_iter=6, solver="mcmc"),
    # warm_start: the state carries the training rows' scores and factor sums
    "mcmc_classifier": lambda: FMClassifier(n_factors=2, max_iter=6, solver="mcmc",
                                            warm_start=True),
    "hofm": lambda: FMRegressor(n_factors=2, max_iter=3, order=3),
    "multiclass": lambda: FMClassifier(n_factors=2, max_iter=3),
    "ffm": lambda: FFMRegressor(fields=[0, 0, 0, 1, 1, 1], n_factors=2, max_iter=3,
                                normalize=True),
    "ffm_classifier": lambda: FFMClassifier(fields=[0, 0, 1, 1, 2, 2], n_factors=2, max_iter=3),
    "ranker": lambda: FMRanker(n_factors=2, max_iter=3),
    "ffm_ftrl_vocabulary_classifier": lambda: FFMClassifier(
        fields=[[0, 3], [0, 4], [1, 3], [1, 5], [2, 6], [2, 3]], n_factors=2, max_iter=3,
        solver="ftrl"),
    "fwfm": lambda: FwFMRegressor(fields=[0, 0, 1, 1, 2, 2], n_factors=2, max_iter=3,
                                  normalize=True),
    "fwfm_ftrl_classifier": lambda: FwFMClassifier(fields=[0, 1, 1, 2, 2, 2], n_factors=2,
                                                   max_iter=3, solver="ftrl"),
}


def seed_target(name, y):
    """The target the seed ``name`` learns from ``seed_data``'s ``y``."""
    if name == "multiclass":
        return np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    if name == "ranker" or "classifier" in name:
        return (y > np.median(y)).astype(int)
    return y


def seed_estimators():
    """A small fitted estimator of every kind ``fmlearn.persistence`` writes, by name
    (``SEEDS``): FM by SGD, SGDA, ALS, Adam, FTRL and MCMC (regression and probit), higher-order,
    multiclass, field-aware (normalised; FTRL over a token vocabulary), field-weighted (SGD and
    FTRL) and ranking models, fitted on ``seed_data()``."""
    X, y = seed_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: make().set_params(random_state=0).fit(X, seed_target(name, y))
                for name, make in SEEDS.items()}


def seed_files():
    """``seed_estimators()`` as model file bytes, by name."""
    files = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, estimator in seed_estimators().items():
            path = save(estimator, os.path.join(folder, f"{name}.fm"))
            with open(path, "rb") as fh:
                files[name] = fh.read()
    return files


def members(data):
    """The members of a model file, ``{filename: bytes}`` in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rebuild(parts):
    """A zip archive (stored members) of ``{filename: bytes}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in parts.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def header_of(data):
    """The parsed ``header.json`` of a model file."""
    return json.loads(members(data)["header.json"])


def array_names(data):
    """The names of the arrays a model file writes (not those listed ``same_as``)."""
    return sorted(name for name, spec in header_of(data)["arrays"].items() if "dtype" in spec)


def read_array(data, name):
    """The array ``name`` of a model file."""
    return np.load(io.BytesIO(members(data)[f"{name}.npy"]), allow_pickle=False)


def truncate(data, at):
    """The first ``at`` bytes."""
    return data[:at]


def flip(data, at, mask=0xFF):
    """``data`` with the byte at ``at`` (modulo the length) XOR-ed with ``mask``."""
    out = bytearray(data)
    if out:
        out[at % len(out)] ^= mask or 1
    return bytes(out)


def with_header(data, change):
    """The file with ``header.json`` replaced by ``change(header)`` (a dict)."""
    parts = members(data)
    parts["header.json"] = json.dumps(change(json.loads(parts["header.json"]))).encode()
    return rebuild(parts)


def with_array(data, name, array):
    """The file with array ``name`` replaced by ``array`` and the header's table saying so,
    so that only the checks of the arrays against each other can refuse it. An object
    array is written as a pickle of :class:`Canary` objects."""
    parts = members(data)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.hasobject)
    parts[f"{name}.npy"] = buffer.getvalue()
    header = json.loads(parts["header.json"])
    header["arrays"][name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
    parts["header.json"] = json.dumps(header).encode()
    return rebuild(parts)


def with_npy_shape(data, name, shape):
    """The file with the ``.npy`` header of ``name`` (and the header's table) declaring
    ``shape`` while the member keeps its bytes: a claim the member cannot back."""
    parts = members(data)
    payload = io.BytesIO(parts[f"{name}.npy"])
    read = (np.lib.format.read_array_header_1_0 if np.lib.format.read_magic(payload) == (1, 0)
            else np.lib.format.read_array_header_2_0)
    _, fortran, dtype = read(payload)
    body = payload.read()
    out = io.BytesIO()
    np.lib.format.write_array_header_2_0(out, {"descr": np.lib.format.dtype_to_descr(dtype),
                                               "fortran_order": fortran,
                                               "shape": tuple(shape)})
    parts[f"{name}.npy"] = out.getvalue() + body
    table = json.loads(parts["header.json"])
    table["arrays"][name] = {"dtype": dtype.str, "shape": list(shape)}
    parts["header.json"] = json.dumps(table).encode()
    return rebuild(parts)


CRAFTS = ("float16", "float32", "float64", "int32", "int64", "bool", "big_endian", "object",
          "shorter", "longer", "drop_axis", "add_axis", "transpose", "empty", "nan", "inf",
          "huge", "negative", "large_id", "zero")


def craft(array, how):
    """``array`` changed by ``how`` (one of ``CRAFTS``): another dtype, another shape, or
    values a model should not hold (NaN, inf, 1e30, -1, 10**8, 0).

    Examples
    --------
    >>> craft(np.arange(3, dtype=np.int32), "large_id")
    array([100000000,         1,         2], dtype=int32)
    """
    a = np.array(array, copy=True)
    first = (0,) * a.ndim
    if how in ("float16", "float32", "float64", "int32", "int64", "bool"):
        return a.astype(how)
    if how == "big_endian":
        return a.astype(a.dtype.newbyteorder(">"))
    if how == "object":
        return np.array([Canary() for _ in range(max(a.size, 1))], dtype=object)
    if how == "shorter":
        return a[:-1] if a.ndim else a.reshape(1)
    if how == "longer":
        return np.concatenate([a, a[:1]]) if a.ndim else a.reshape(1, 1)
    if how == "drop_axis":
        return a.reshape(-1)[:1] if a.ndim <= 1 else a.reshape(a.shape[0], -1)[:, 0]
    if how == "add_axis":
        return a[None]
    if how == "transpose":
        return np.ascontiguousarray(a.T) if a.ndim > 1 else a[::-1].copy()
    if how == "empty":
        return a[:0] if a.ndim else a.reshape(0)
    if a.size == 0:
        return a
    if how in ("nan", "inf", "huge"):
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
        a[first] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[how]
    elif how in ("negative", "large_id", "zero"):
        a[first] = {"negative": -1, "large_id": 10**8, "zero": 0}[how]
    else:
        raise ValueError(f"unknown craft {how!r}")
    return a


HEADER_VALUES = (0, -1, 1, 2, 10**8, 10**30, 1e308, float("nan"), None, "x", "float64", [],
                 {}, True, 0.5, [1, 2], {"array": "model.coef"})


def header_paths(header, skip=("arrays",)):
    """The paths (lists of keys and indices) to every value of a parsed header."""
    paths = []

    def walk(node, path):
        paths.append(path)
        items = (node.items() if isinstance(node, dict)
                 else enumerate(node) if isinstance(node, list) else ())
        for key, child in items:
            if not (len(path) == 0 and key in skip):
                walk(child, path + [key])

    walk(header, [])
    return paths[1:]


def set_path(header, path, value):
    """``header`` with the value at ``path`` replaced (the header is changed in place)."""
    node = header
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return header


def mutate(data, rng):
    """One random mutation of the model file ``data``, drawn from ``rng``
    (``numpy.random.Generator``): a cut, a flipped byte, a crafted array, an array
    header claiming another shape, or a header value replaced."""
    op = rng.integers(5)
    if op == 0:
        return truncate(data, int(rng.integers(len(data))))
    if op == 1:
        return flip(data, int(rng.integers(len(data))), int(rng.integers(1, 256)))
    names = array_names(data)
    name = names[rng.integers(len(names))]
    if op == 2:
        how = CRAFTS[rng.integers(len(CRAFTS))]
        return with_array(data, name, craft(read_array(data, name), how))
    if op == 3:
        shape = list(read_array(data, name).shape) or [1]
        shape[rng.integers(len(shape))] = int(rng.choice([0, 2**31, 10**12]))
        return with_npy_shape(data, name, shape)
    paths = header_paths(header_of(data))
    path = paths[rng.integers(len(paths))]
    value = HEADER_VALUES[rng.integers(len(HEADER_VALUES))]
    return with_header(data, lambda header: set_path(header, path, value))


if __name__ == "__main__":  # run_isolated's child: one file in, its outcome as JSON out
    with open(sys.argv[1], "rb") as candidate:
        result = run_model_file(candidate.read())
    print(json.dumps({"kind": result.kind, "detail": result.detail}))
