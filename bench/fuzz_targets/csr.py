"""Fuzz target for hand-built sparse matrices fed to the estimators: bytes in, an outcome out.

An input is an ``.npz`` of the three CSR arrays and the shape (``data``, ``indices``,
``indptr``, ``shape``), as a user builds them with
``scipy.sparse.csr_matrix((data, indices, indptr), shape=shape)``. :func:`run_csr`
builds the matrix, predicts it with fitted estimators of every learner and fits one on
it, and classifies what happens:

- ``refused``: a ``ValueError`` (scipy's or ours), for an input that is not a valid matrix;
- ``correct``: predictions equal the model's formula on the matrix the arrays describe,
  decoded here entry by entry in Python (:func:`dense_of`), and a fit on the matrix
  equals a fit on that dense array;
- ``wrong``: a prediction or fit differs, or a broken matrix was accepted;
- ``exception``: any other exception.

:func:`seed_inputs` gives valid matrices; :func:`mutate` breaks or bends one at random.
Import with ``bench/`` on ``sys.path``: ``from fuzz_targets.csr import run_csr``.
"""
import io
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fmlearn import FFMRegressor, FMClassifier, FMRegressor

GOOD = ("refused", "correct")
N_FEATURES = 6
_FITTED = {}


@dataclass
class Outcome:
    """What an input led to: ``kind`` (refused, correct, wrong, exception) and the details."""

    kind: str
    detail: str = ""


def pack(data, indices, indptr, shape):
    """The input bytes for the CSR arrays ``data``, ``indices``, ``indptr`` and ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> len(pack(np.ones(1), np.zeros(1, np.int32), np.array([0, 1]), (1, 6))) > 0
    True
    """
    buffer = io.BytesIO()
    np.savez(buffer, data=np.asarray(data), indices=np.asarray(indices),
             indptr=np.asarray(indptr), shape=np.asarray(shape))
    return buffer.getvalue()


def unpack(blob):
    """The arrays of :func:`pack`'s bytes, or None when they are not such an ``.npz``."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return tuple(npz[name] for name in ("data", "indices", "indptr", "shape"))
    except Exception:
        return None


def dense_of(data, indices, indptr, shape):
    """The dense matrix the CSR arrays describe (duplicates summed), or None when they do
    not describe one: scipy's rules, checked here one entry at a time."""
    if len(shape) != 2 or shape[0] < 0 or shape[1] < 0 or shape[0] * shape[1] > 10**6:
        return None
    n_rows, n_cols = int(shape[0]), int(shape[1])
    if (data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1 or indptr.shape[0] != n_rows + 1
            or indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu"
            or data.dtype.kind not in "biuf" or data.shape[0] != indices.shape[0]):
        return None
    bounds = [int(b) for b in indptr]
    if bounds[0] != 0 or bounds[-1] != indices.shape[0] or any(
            b > a for a, b in zip(bounds[1:], bounds[:-1])):
        return None
    dense = np.zeros((n_rows, n_cols))
    for r in range(n_rows):
        start, end = bounds[r], bounds[r + 1]
        for p in range(start, end):
            j = int(indices[p])
            if not 0 <= j < n_cols:
                return None
            dense[r, j] += float(data[p])
    return dense


def seed_inputs():
    """Valid matrices of the estimators' width: empty rows, duplicates, unsorted columns.

    Examples
    --------
    >>> sorted(seed_inputs())[:2]
    ['duplicates', 'empty_rows']
    """
    return {
        "plain": pack([1.0, 2.0, 0.5, -1.0], [0, 3, 1, 5], [0, 2, 4], (2, N_FEATURES)),
        "empty_rows": pack([1.0], [2], [0, 0, 1, 1], (3, N_FEATURES)),
        "duplicates": pack([1.0, 1.0, 3.0], [4, 4, 0], [0, 2, 3], (2, N_FEATURES)),
        "unsorted": pack([1.0, 2.0, 3.0], [5, 0, 2], [0, 3], (1, N_FEATURES)),
        "int64": pack(np.ones(3), np.array([1, 2, 3], np.int64), np.array([0, 1, 3], np.int64),
                      (2, N_FEATURES)),
    }


_BAD_INDICES = [-1, N_FEATURES, N_FEATURES + 1, 10**8, 2**31 - 1, 2**31, 2**33 + 1, -2**31]


def mutate(blob, rng):
    """One random change to an input: an index or a row pointer set to a bad or edge value,
    an array cut or grown, a dtype changed, a value made huge or non-finite, the shape
    changed."""
    data, indices, indptr, shape = unpack(blob)
    op = int(rng.integers(8))
    if op == 0 and indices.size:
        indices = indices.astype(np.int64)
        indices[rng.integers(indices.size)] = rng.choice(_BAD_INDICES + [0, N_FEATURES - 1])
    elif op == 1:
        indptr = indptr.astype(np.int64)
        indptr[rng.integers(indptr.size)] = rng.choice([-1, 0, 1, indices.size, indices.size + 1,
                                                        2**31, 2**40])
    elif op == 2:
        which = int(rng.integers(3))
        arrays = [data, indices, indptr]
        arrays[which] = (arrays[which][:-1] if rng.random() < 0.5
                         else np.concatenate([arrays[which], arrays[which][-1:]]))
        data, indices, indptr = arrays
    elif op == 3:
        dtype = rng.choice(["int8", "uint16", "int32", "uint64", "float32", "float64", "bool"])
        if rng.random() < 0.5:
            indices = indices.astype(dtype)
        else:
            indptr = indptr.astype(dtype)
    elif op == 4 and data.size:
        data = data.astype(np.float64)
        data[rng.integers(data.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e38, 3e38, 1e300,
                                                    -1e20, 0.0, 1e-45])
    elif op == 5:
        shape = np.array(shape)
        shape[rng.integers(2)] += int(rng.choice([-2, -1, 1, 2]))
    elif op == 6:
        data = data.astype(rng.choice(["float32", "int64", "bool", "complex128"]))
    else:
        order = rng.permutation(indices.size)
        indices = indices[order]
    return pack(data, indices, indptr, shape)


def _fitted():
    if not _FITTED:
        rng = np.random.default_rng(0)
        X = sp.random(200, N_FEATURES, density=0.5, random_state=1, format="csr")
        y = rng.normal(size=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, est in [("sgd", FMRegressor(n_factors=2, max_iter=2, random_state=0)),
                              ("als", FMRegressor(solver="als", n_factors=2, max_iter=2,
                                                  random_state=0)),
                              ("mcmc", FMRegressor(solver="mcmc", n_factors=2, max_iter=4,
                                                   random_state=0)),
                              ("ffm", FFMRegressor(n_factors=2, max_iter=2, random_state=0,
                                                   fields=[0, 0, 1, 1, 2, 2])),
                              ("classifier", FMClassifier(n_factors=2, max_iter=2,
                                                          random_state=0))]:
                _FITTED[name] = est.fit(X, y > 0 if name == "classifier" else y)
    return _FITTED


def _predict(name, est, X):
    return est.decision_function(X) if name == "classifier" else est.predict(X)


def run_csr(blob):
    """Predict and fit on the matrix of the input ``blob`` and classify the outcome.

    A matrix scipy builds is *valid* when its arrays, as scipy holds them, describe a
    finite matrix of the estimators' width (:func:`dense_of`); a valid one must be
    predicted as its dense rows are, except that values so large the scores overflow may
    be refused; anything else must be refused with a ``ValueError``.

    Examples
    --------
    >>> run_csr(seed_inputs()["duplicates"]).kind
    'correct'
    """
    arrays = unpack(blob)
    if arrays is None:
        return Outcome("refused", "not an input of this target")
    data, indices, indptr, shape = arrays
    try:
        X = sp.csr_matrix((data, indices, indptr), shape=tuple(int(s) for s in shape))
    except (ValueError, TypeError, OverflowError) as exc:
        return Outcome("refused", f"scipy: {exc}")
    dense = dense_of(X.data, X.indices, X.indptr, X.shape)
    matrix = dense is not None and min(dense.shape) > 0 and np.isfinite(dense).all()
    moderate = matrix and np.abs(dense).max(initial=0) < 1e15
    valid = matrix and dense.shape[1] == N_FEATURES  # for the fitted estimators
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est in _fitted().items():
            try:
                got = _predict(name, est, X)
            except ValueError as exc:
                if valid and moderate:
                    return Outcome("wrong", f"{name}: refused a valid matrix: {exc}")
                continue
            except Exception as exc:
                return Outcome("exception", f"{name}.predict: {exc!r}")
            if not valid:
                return Outcome("wrong", f"{name}: predicted a matrix that is not valid")
            want = _predict(name, est, dense)
            if not np.allclose(got, want, rtol=1e-5, atol=1e-6):
                return Outcome("wrong", f"{name}: predicted {got}, the dense rows give {want}")
        y = np.linspace(-1.0, 1.0, X.shape[0])
        try:
            fitted = FMRegressor(n_factors=2, max_iter=2, random_state=0).fit(X, y)
        except ValueError as exc:
            if moderate and X.shape[0] > 1:
                return Outcome("wrong", f"fit refused a valid matrix: {exc}")
            return Outcome("refused", str(exc))
        except Exception as exc:
            return Outcome("exception", f"fit: {exc!r}")
        if not matrix:
            return Outcome("wrong", "fit accepted a matrix that is not valid")
        again = FMRegressor(n_factors=2, max_iter=2, random_state=0).fit(dense, y)
        if not np.allclose(fitted.predict(dense), again.predict(dense), rtol=1e-5, atol=1e-6):
            return Outcome("wrong", "a fit on the matrix differs from a fit on its dense rows")
    return Outcome("correct")
