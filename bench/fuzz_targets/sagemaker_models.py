"""Fuzz target for SageMaker FM ``model.tar.gz`` files: bytes in, an :class:`Outcome` out.

``run_model(data)`` writes one candidate tarball and reads it with
``fmlearn.sagemaker.load_model``; when it loads, every prediction is compared with the FM
formula computed by brute force in NumPy on the loaded arrays. The seeds are the MXNet 1.9.1
fixtures of ``tests/fixtures/mxnet`` (both parameter layouts) and an fmlearn-written file;
:func:`mutate` changes the ``params`` NDArray file inside the zip inside the tar (repacked,
so the change reaches the reader), a field of it, the tar or the gzip stream.

Import it with ``bench/`` on ``sys.path``:
``from fuzz_targets.sagemaker_models import run_model``.
"""
import gzip
import io
import os
import struct
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmlearn import FMClassifier, ModelFileError
from fmlearn.sagemaker import load_model, save_model

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mxnet"
CLEAN_ERROR, CORRECT, WRONG_VALUE, OTHER_EXCEPTION = ("clean_error", "correct", "wrong_value",
                                                      "other_exception")
_VALUES = (0, 1, 2, 3, 0x112, 0xF993FAC9, 2**31 - 1, 2**32 - 1, 2**62, -1)


@dataclass
class Outcome:
    """What an input led to: ``kind`` (one of the four outcomes) and the details."""

    kind: str
    detail: str = ""


def seed_files():
    """The MXNet fixtures and one of them written again by fmlearn in the other layout."""
    seeds = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*.tar.gz"))}
    with tempfile.TemporaryDirectory() as folder:
        path = save_model(load_model(FIXTURES / "w_regressor.tar.gz"),
                          os.path.join(folder, "m.tar.gz"), layout="Linear_Plus_Bias")
        seeds["fmlearn_written.tar.gz"] = Path(path).read_bytes()
    return seeds


def _unpack(data):
    tar = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        inner = archive.extractfile("model_algo-1").read()
    with zipfile.ZipFile(io.BytesIO(inner)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _pack(members):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        for name, value in members.items():
            archive.writestr(name, value)
    out = io.BytesIO()
    info = tarfile.TarInfo("model_algo-1")
    info.size = inner.tell()
    inner.seek(0)
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        archive.addfile(info, inner)
    return out.getvalue()


def _change(data, rng):
    """A byte flipped, bytes deleted or repeated, the end cut, or an aligned field rewritten."""
    data = bytearray(data)
    at = int(rng.integers(0, len(data) + 1))
    op = int(rng.integers(5))
    if op == 0 and data:
        data[min(at, len(data) - 1)] ^= 1 << int(rng.integers(8))
    elif op == 1:
        del data[at:at + int(rng.integers(1, 9))]
    elif op == 2:
        data[at:at] = data[at:at + int(rng.integers(1, 16))]
    elif op == 3:
        del data[at:]
    elif len(data) >= 8:
        at = min(at, len(data) - 8) // 4 * 4
        value = _VALUES[rng.integers(len(_VALUES))]
        if rng.random() < 0.5:
            struct.pack_into("<q", data, at, value if value < 2**63 else -1)
        else:
            struct.pack_into("<I", data, at, value % 2**32)
    return bytes(data)


def mutate(data, rng):
    """Mostly the ``params`` file inside, sometimes ``symbol.json``, the tar or the gzip."""
    level = rng.random()
    if level < 0.1:
        return _change(data, rng)
    if level < 0.2:
        return gzip.compress(_change(gzip.decompress(data), rng))
    members = _unpack(data)
    name = "symbol.json" if level < 0.25 and "symbol.json" in members else "params"
    if name in members:
        members[name] = _change(members[name], rng)
    return _pack(members)


def _reference(estimator, X):
    w0, w, V = (float(estimator.intercept_), estimator.coef_.astype(np.float64),
                estimator.factors_.astype(np.float64))
    XV = X @ V
    score = w0 + X @ w + 0.5 * ((XV ** 2).sum(1) - (X ** 2) @ (V ** 2).sum(1))
    return 1 / (1 + np.exp(-score)) if isinstance(estimator, FMClassifier) else score


def run_model(data):
    """Load ``data`` as a model.tar.gz; compare the loaded model's predictions with the formula."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.tar.gz")
        Path(path).write_bytes(data)
        try:
            estimator = load_model(path)
        except ModelFileError as exc:
            return Outcome(CLEAN_ERROR, str(exc))
        except Exception as exc:  # noqa: BLE001 - the outcome to report
            return Outcome(OTHER_EXCEPTION, f"{type(exc).__name__}: {exc}")
    n = estimator.n_features_in_
    X = np.vstack([np.eye(n), np.full((1, n), 0.5), np.zeros((1, n))])
    try:
        got = (estimator.predict_proba(X)[:, 1] if isinstance(estimator, FMClassifier)
               else estimator.predict(X))
    except ValueError as exc:  # a prediction that overflows float32 is refused by design
        return Outcome(CLEAN_ERROR, str(exc))
    except Exception as exc:  # noqa: BLE001
        return Outcome(OTHER_EXCEPTION, f"predict: {type(exc).__name__}: {exc}")
    expected = _reference(estimator, X)
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-5 * (1 + np.abs(expected).max())):
        return Outcome(WRONG_VALUE, f"predictions {got} != {expected}")
    return Outcome(CORRECT)
