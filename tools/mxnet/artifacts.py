"""SageMaker FM ``model.tar.gz`` fixtures written and read by real MXNet (1.9.1).

Run with the MXNet interpreter, never the project's (MXNet is no dependency of fmlearn):

    /work/mxvenv/bin/python tools/mxnet/artifacts.py make
        Builds two small FM symbols with MXNet, one per parameter layout SageMaker's FM uses
        (``w0_weight`` (1,), ``w1_weight`` (N, 1), ``v`` (N, k): a regressor, as in MXNet's
        sparse FM example; ``Linear_Plus_Bias_bias`` (1,), ``Linear_Plus_Bias_weight``
        (1, N), ``v`` (k, N): a binary classifier), draws their parameters, saves them with
        ``mx.nd.save`` and ``symbol.json`` into ``model_algo-1`` inside ``model.tar.gz`` and
        records MXNet's predictions for a few rows in ``mxnet_predictions.json``.

    /work/mxvenv/bin/python tools/mxnet/artifacts.py check FILE...
        Loads tarballs written by ``fmlearn.sagemaker.save_model`` with ``mx.nd.load`` and
        ``mx.sym.load``, binds the symbol to the parameters, predicts the recorded rows and
        writes what MXNet saw (names, shapes, dtypes, predictions, the SHA-256 of the file and of
        the tar inside the gzip) to
        ``fmlearn_written.json``. The files are the fixtures of ``make`` loaded and saved
        again by fmlearn, in both layouts, and ``fmlearn_trained.tar.gz`` (a classifier
        trained by fmlearn, made once by ``train_fixture``) saved again:

            .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); \\
                from test_sagemaker_artifact import train_fixture as t, FIXTURES as f; \\
                t(f / 'fmlearn_trained.tar.gz')"
            .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); \\
                from test_sagemaker_artifact import write_round_trips as w; w('/tmp/fmw')"
            /work/mxvenv/bin/python tools/mxnet/artifacts.py check /tmp/fmw/*.tar.gz

Everything is written to ``tests/fixtures/mxnet/``.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
import zipfile

import mxnet as mx
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                   "mxnet")
N_FEATURES, N_FACTORS = 7, 3


def w_layout_symbol():
    """MXNet's sparse FM example, dense: ``w0_weight + x @ w1_weight + pairwise(x @ v)``."""
    x = mx.sym.Variable("data")
    w0 = mx.sym.Variable("w0_weight", shape=(1,))
    w1 = mx.sym.Variable("w1_weight", shape=(N_FEATURES, 1))
    v = mx.sym.Variable("v", shape=(N_FEATURES, N_FACTORS))
    linear = mx.sym.broadcast_add(mx.sym.dot(x, w1), w0)
    v_s = mx.sym.sum(mx.sym.square(v), axis=1, keepdims=True)
    bd_sum = mx.sym.dot(mx.sym.square(x), v_s)
    w2_squared = 0.5 * mx.sym.square(mx.sym.dot(x, v))
    model = mx.sym.sum(mx.sym.concat(linear, w2_squared, dim=1), axis=1, keepdims=True)
    model = model - 0.5 * bd_sum
    return mx.sym.LinearRegressionOutput(data=model, label=mx.sym.Variable("out_label"),
                                         name="out")


def linear_plus_bias_symbol():
    """``FullyConnected(name='Linear_Plus_Bias') + pairwise(x @ v.T)``, logistic output."""
    x = mx.sym.Variable("data")
    v = mx.sym.Variable("v", shape=(N_FACTORS, N_FEATURES))
    linear = mx.sym.FullyConnected(data=x, num_hidden=1, name="Linear_Plus_Bias")
    xv = mx.sym.dot(x, v, transpose_b=True)
    v_s = mx.sym.sum(mx.sym.square(v), axis=0, keepdims=True)
    bd_sum = mx.sym.dot(mx.sym.square(x), v_s, transpose_b=True)
    pairs = 0.5 * (mx.sym.sum(mx.sym.square(xv), axis=1, keepdims=True) - bd_sum)
    return mx.sym.LogisticRegressionOutput(data=linear + pairs,
                                           label=mx.sym.Variable("out_label"), name="out")


def rows():
    """Dense rows: one-hot pairs, real values, an empty row."""
    rng = np.random.default_rng(7)
    x = np.zeros((6, N_FEATURES), dtype=np.float32)
    x[0, [0, 3]] = 1
    x[1, [1, 6]] = 1
    x[2] = rng.normal(size=N_FEATURES)
    x[3, [2, 4, 5]] = [0.5, -2.0, 3.0]
    x[5, 6] = 1.5
    return x


def predict(symbol, params, x):
    """MXNet's forward pass of ``symbol`` with ``params`` (names without ``arg:``)."""
    args = {name: mx.nd.array(value, dtype=value.dtype) for name, value in params.items()}
    args["data"] = mx.nd.array(x)
    args["out_label"] = mx.nd.zeros((x.shape[0], 1))
    executor = symbol.bind(mx.cpu(), args=args, grad_req="null")
    return executor.forward(is_train=False)[0].asnumpy().ravel()


def tarball(path, symbol_json, params_bytes):
    """``model.tar.gz`` holding ``model_algo-1``, a zip of ``symbol.json`` and ``params``."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr(zipfile.ZipInfo("symbol.json", (1980, 1, 1, 0, 0, 0)), symbol_json)
        archive.writestr(zipfile.ZipInfo("params", (1980, 1, 1, 0, 0, 0)), params_bytes)
    info = tarfile.TarInfo("model_algo-1")
    info.size = len(inner.getvalue())
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(inner.getvalue()))


def make():
    rng = np.random.default_rng(20)
    x = rows()
    record = {"mxnet_version": mx.__version__, "rows": x.tolist(), "fixtures": {}}
    layouts = {
        "w_regressor": (w_layout_symbol(), {
            "w0_weight": (1,), "w1_weight": (N_FEATURES, 1), "v": (N_FEATURES, N_FACTORS)}),
        "linear_plus_bias_classifier": (linear_plus_bias_symbol(), {
            "Linear_Plus_Bias_bias": (1,), "Linear_Plus_Bias_weight": (1, N_FEATURES),
            "v": (N_FACTORS, N_FEATURES)}),
    }
    for name, (symbol, shapes) in layouts.items():
        params = {key: rng.normal(0, 0.5, size=shape).astype(np.float32)
                  for key, shape in shapes.items()}
        with tempfile.TemporaryDirectory() as folder:
            params_path = os.path.join(folder, "params")
            mx.nd.save(params_path, {f"arg:{key}": mx.nd.array(value)
                                     for key, value in params.items()})
            with open(params_path, "rb") as fh:
                params_bytes = fh.read()
        path = os.path.join(OUT, f"{name}.tar.gz")
        tarball(path, symbol.tojson(), params_bytes)
        record["fixtures"][name] = {
            "file": os.path.basename(path), "feature_dim": N_FEATURES, "num_factors": N_FACTORS,
            "predictions": predict(symbol, params, x).astype(float).tolist()}
        print(name, record["fixtures"][name]["predictions"])
    with open(os.path.join(OUT, "mxnet_predictions.json"), "w") as fh:
        json.dump(record, fh, indent=1)


def check(paths):
    with open(os.path.join(OUT, "mxnet_predictions.json")) as fh:
        x = np.asarray(json.load(fh)["rows"], dtype=np.float32)
    checked = {"mxnet_version": mx.__version__, "files": {}}
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        with tempfile.TemporaryDirectory() as folder:
            with tarfile.open(path) as tar:
                tar.extractall(folder)
            with zipfile.ZipFile(os.path.join(folder, "model_algo-1")) as archive:
                archive.extractall(folder)
            symbol = mx.sym.load(os.path.join(folder, "symbol.json"))
            loaded = mx.nd.load(os.path.join(folder, "params"))
        params = {key.split(":", 1)[1]: value.asnumpy() for key, value in loaded.items()}
        checked["files"][os.path.basename(path)] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "tar_sha256": hashlib.sha256(gzip.decompress(data)).hexdigest(),
            "names": sorted(loaded),
            "shapes": {key: list(value.shape) for key, value in params.items()},
            "dtypes": {key: str(value.dtype) for key, value in params.items()},
            "output": symbol.list_outputs(),
            "predictions": predict(symbol, params, x).astype(float).tolist()}
        print(path, checked["files"][os.path.basename(path)])
    with open(os.path.join(OUT, "fmlearn_written.json"), "w") as fh:
        json.dump(checked, fh, indent=1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["make"]:
        make()
    elif sys.argv[1:2] == ["check"] and sys.argv[2:]:
        check(sys.argv[2:])
    else:
        sys.exit(__doc__)
