"""The container's entry point (``python -m fmlearn.sagemaker.container train|serve``, what the
Dockerfile's ENTRYPOINT runs) against a temporary folder laid out as SageMaker's ``/opt/ml``.

Training runs in File mode and in Pipe mode (FIFOs written by another process, the next
epoch's created only once the last is read, as SageMaker does), with RecordIO-protobuf and
libSVM channels; the metric lines are read with the documented MetricDefinitions regexes
and compared with metrics computed from the saved model. Serving is driven over HTTP with
the SageMaker SDK's serializers, and the time from start to the first good ``/ping`` is
printed (``-s`` shows it).
"""
import io
import json
import os
import re
import socket
import subprocess
import sys
import time

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fmlearn import load
from fmlearn.io import dump_libsvm, recordio_bytes
from fmlearn.sagemaker.container import METRIC_DEFINITIONS, ROOT_ENV

N_USERS, N_ITEMS = 30, 40
FEATURE_DIM = N_USERS + N_ITEMS
RECORDIO = "application/x-recordio-protobuf"
REGEX = {d["Name"]: re.compile(d["Regex"]) for d in METRIC_DEFINITIONS}


def planted(n, seed):
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, N_USERS, n), rng.integers(0, N_ITEMS, n)
    onehot = sp.eye(FEATURE_DIM, format="csr", dtype=np.float32)
    X = (onehot[users] + onehot[N_USERS + items]).tocsr()
    return X, 3 + np.sin(users) * np.cos(items) + 0.1 * rng.normal(size=n)


X_TRAIN, Y_TRAIN = planted(3000, 0)
X_TEST, Y_TEST = planted(500, 1)


def hyperparameters(**extra):
    return {"feature_dim": str(FEATURE_DIM), "num_factors": "4", "predictor_type": "regressor",
            "epochs": "3", "mini_batch_size": "100", "linear_lr": "0.05", "factors_lr": "0.05",
            "_tuning_objective_metric": "test:rmse", **extra}


def layout(root, hyper, channels):
    """``root`` as /opt/ml: ``channels`` maps a name to (mode, ContentType or None)."""
    for folder in ("input/config", "input/data", "model", "output"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "input/config/hyperparameters.json").write_text(json.dumps(hyper))
    config = {name: {"TrainingInputMode": mode, "S3DistributionType": "FullyReplicated",
                     "RecordWrapperType": "None", **({"ContentType": ct} if ct else {})}
              for name, (mode, ct) in channels.items()}
    (root / "input/config/inputdataconfig.json").write_text(json.dumps(config))
    (root / "input/config/resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    return root


def entry_point(root, *args):
    env = {**os.environ, ROOT_ENV: str(root)}
    return [sys.executable, "-m", "fmlearn.sagemaker.container", *args], env


def run(root, *args, env=()):
    command, environ = entry_point(root, *args)
    return subprocess.run(command, env={**environ, **dict(env)}, capture_output=True, text=True,
                          timeout=600)


def metric(stdout, name):
    """The value of the metric ``name`` (a MetricDefinitions name) in the training log."""
    found = REGEX[name].findall(stdout)
    assert len(found) == 1, (name, stdout)
    return float(found[0])


def file_mode_root(root, binary=False):
    """A File mode job: the train channel in two RecordIO files, the test channel libSVM."""
    layout(root, hyperparameters(**({"predictor_type": "binary_classifier"} if binary else {})),
           {"train": ("File", RECORDIO), "test": ("File", "text/libsvm")})
    y_train, y_test = (Y_TRAIN > 3, Y_TEST > 3) if binary else (Y_TRAIN, Y_TEST)
    (root / "input/data/train/part").mkdir(parents=True)
    (root / "input/data/train/part/a.rec").write_bytes(recordio_bytes(X_TRAIN[:1234],
                                                                       y_train[:1234]))
    (root / "input/data/train/part/b.rec").write_bytes(recordio_bytes(X_TRAIN[1234:],
                                                                      y_train[1234:]))
    (root / "input/data/test").mkdir()
    dump_libsvm(X_TEST, y_test.astype(float), root / "input/data/test/test.libsvm")
    return root


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    root = file_mode_root(tmp_path_factory.mktemp("file"))
    return root, run(root, "train", env={"FMLEARN_N_JOBS": "1"})  # one thread: reproducible


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    root = file_mode_root(tmp_path_factory.mktemp("binary"), binary=True)
    return root, run(root, "train")


def test_file_mode_trains_and_prints_sagemaker_metric_lines(regressor):
    root, done = regressor
    assert done.returncode == 0, done.stderr
    assert not (root / "output/failure").exists()
    model = load(root / "model/model.fm")
    err = model.predict(X_TEST).astype(np.float64) - Y_TEST
    rmse = np.sqrt(np.mean(err * err))
    assert metric(done.stdout, "test:rmse") == pytest.approx(rmse, rel=1e-12)
    assert f"#test_score (algo-1) : ('rmse', {metric(done.stdout, 'test:rmse')!r})" in done.stdout
    assert rmse < 0.5 * np.std(Y_TEST)  # it learned something
    train = re.findall(r"#quality_metric: host=algo-1, epoch=(\d+), train rmse <loss>=(\S+)",
                       done.stdout)
    assert [int(e) for e, _ in train] == [0, 1, 2]
    assert all(np.isfinite(float(v)) for _, v in train)
    assert "completed 100.0 % of epochs" in done.stdout


@pytest.mark.parametrize("job", ["regressor", "classifier"])
def test_the_model_is_also_written_in_sagemaker_fms_layout(job, request):
    from fmlearn.sagemaker import load_model

    root, done = request.getfixturevalue(job)
    assert done.returncode == 0, done.stderr
    ours, theirs = load(root / "model/model.fm"), load_model(root / "model/sagemaker_fm.tar.gz")
    if job == "classifier":
        np.testing.assert_allclose(theirs.predict_proba(X_TEST), ours.predict_proba(X_TEST),
                                   rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(theirs.predict(X_TEST), ours.predict(X_TEST), rtol=1e-5)


def test_the_images_kernels_are_copied_into_a_writable_cache(tmp_path, monkeypatch):
    import numba

    from fmlearn.sagemaker.container import seed_kernel_cache

    image, used = tmp_path / "image", tmp_path / "tmp"
    (image / "kernels_0").mkdir(parents=True)
    (image / "kernels_0/predict.nbi").write_bytes(b"index")
    (image / "kernels_0/predict.nbc").write_bytes(b"code")
    used.mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(image))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(used))  # as import fmlearn falls back
    assert seed_kernel_cache() == 2
    assert (used / "kernels_0/predict.nbc").read_bytes() == b"code"
    assert seed_kernel_cache() == 0  # already there (another worker's copy)


def test_classifier_metric_lines_equal_the_saved_models_metrics(classifier):
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    root, done = classifier
    assert done.returncode == 0, done.stderr
    model = load(root / "model/model.fm")
    truth = Y_TEST > 3
    proba = model.predict_proba(X_TEST)[:, 1]
    assert metric(done.stdout, "test:binary_classification_accuracy") == pytest.approx(
        accuracy_score(truth, proba >= 0.5), rel=1e-12)
    assert metric(done.stdout, "test:binary_classification_cross_entropy") == pytest.approx(
        log_loss(truth, proba), rel=1e-9)
    assert metric(done.stdout, "test:binary_f_beta") == pytest.approx(
        f1_score(truth, proba >= 0.5), rel=1e-12)
    assert "test rmse" not in done.stdout


# A writer of Pipe mode FIFOs, in its own process: channel_<epoch> for each epoch, the next
# created only after the last was read to its end, the bytes written in small pieces.
WRITER = """
import os, sys, time
folder, name, epochs, source = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = open(source, "rb").read()
for epoch in range(epochs):
    fifo = os.path.join(folder, f"{name}_{epoch}")
    os.mkfifo(fifo)
    with open(fifo, "wb") as pipe:
        for start in range(0, len(data), 7919):
            pipe.write(data[start:start + 7919])
"""


def test_pipe_mode_streams_fifos_and_trains_the_same_model_as_file_mode(regressor, tmp_path):
    root = layout(tmp_path, hyperparameters(), {"train": ("Pipe", RECORDIO),
                                                 "test": ("Pipe", "text/libsvm")})
    (tmp_path / "train.rec").write_bytes(recordio_bytes(X_TRAIN, Y_TRAIN))
    dump_libsvm(X_TEST, Y_TEST, tmp_path / "test.libsvm")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(root / "input/data"), name,
                                 str(epochs), str(tmp_path / source)])
               for name, epochs, source in (("train", 3, "train.rec"), ("test", 1, "test.libsvm"))]
    try:
        done = run(root, "train", env={"FMLEARN_N_JOBS": "1"})
        assert [writer.wait(60) for writer in writers] == [0, 0]
    finally:
        for writer in writers:
            writer.kill()
    assert done.returncode == 0, done.stderr
    file_root, file_done = regressor
    pipe, file = load(root / "model/model.fm"), load(file_root / "model/model.fm")
    np.testing.assert_array_equal(pipe.model_.factors, file.model_.factors)
    np.testing.assert_array_equal(pipe.predict(X_TEST), file.predict(X_TEST))
    assert metric(done.stdout, "test:rmse") == metric(file_done.stdout, "test:rmse")


@pytest.mark.parametrize("case,expected", [
    ("bad hyperparameter", "hyperparameters.json: num_factors='four': expected a positive int."),
    ("malformed data", "rows.libsvm"),
    ("wider than feature_dim", "rows.libsvm, line 1: feature index 70 is out of range for "
                               "n_features=70 (the hyperparameter feature_dim)"),
    ("unknown content type", "channel 'train': ContentType 'text/csv' is not read"),
    ("two hosts", "set instance_count=1"),
])
def test_failure_writes_the_reason_and_exits_non_zero(tmp_path, case, expected):
    hyper = hyperparameters(num_factors="four" if case == "bad hyperparameter" else "4")
    content = "text/csv" if case == "unknown content type" else "text/libsvm"
    root = layout(tmp_path, hyper, {"train": ("File", content)})
    (root / "input/data/train").mkdir()
    rows = {"malformed data": "1 0:1 3:x\n", "wider than feature_dim": f"1 {FEATURE_DIM}:1\n"}
    (root / "input/data/train/rows.libsvm").write_text(rows.get(case, "1 0:1 3:1\n"))
    if case == "two hosts":
        (root / "input/config/resourceconfig.json").write_text(json.dumps(
            {"current_host": "algo-1", "hosts": ["algo-1", "algo-2"]}))
    done = run(root, "train")
    assert done.returncode == 1
    reason = (root / "output/failure").read_text()
    assert expected in reason
    assert f"fmlearn: error: {reason}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "model/model.fm").exists()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serving(root, *args, env=()):
    """``serve`` in a subprocess; returns (process, url, seconds from start to a good /ping)."""
    import httpx

    port = free_port()
    command, environ = entry_point(root, "serve", "--host", "127.0.0.1", "--port", str(port),
                                   *args)
    start = time.perf_counter()
    process = subprocess.Popen(command, env={**environ, **dict(env)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - start < 300:
        try:
            if httpx.get(url + "/ping", timeout=1).status_code == 200:
                return process, url, time.perf_counter() - start
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read())
        time.sleep(0.01)
    process.kill()
    raise RuntimeError("serve did not answer /ping")


def stop(process):
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_serve_answers_the_sagemaker_sdk_and_starts_quickly(classifier):
    httpx = pytest.importorskip("httpx")
    from sagemaker.amazon.common import RecordDeserializer, RecordSerializer
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import JSONSerializer

    root, done = classifier
    assert done.returncode == 0, done.stderr
    model = load(root / "model/model.fm")
    rows = X_TEST[:5].toarray()
    proba = model.predict_proba(rows)[:, 1]
    process, url, _ = start_serving(root, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    try:
        serializer, deserializer = RecordSerializer(), RecordDeserializer()
        response = httpx.post(url + "/invocations", content=serializer.serialize(rows),
                              headers={"Content-Type": serializer.CONTENT_TYPE,
                                       "Accept": deserializer.ACCEPT[0]})
        assert response.status_code == 200, response.text
        records = deserializer.deserialize(io.BytesIO(response.content), RECORDIO)
        scores = [r.label["score"].float32_tensor.values[0] for r in records]
        labels = [r.label["predicted_label"].float32_tensor.values[0] for r in records]
        np.testing.assert_array_equal(scores, proba.astype(np.float32))
        np.testing.assert_array_equal(labels, proba >= 0.5)

        serializer, deserializer = JSONSerializer(), JSONDeserializer()
        body = serializer.serialize({"instances": [{"features": r.tolist()} for r in rows]})
        response = httpx.post(url + "/invocations", content=body,
                              headers={"Content-Type": serializer.CONTENT_TYPE,
                                       "Accept": deserializer.ACCEPT[0]})
        predictions = deserializer.deserialize(io.BytesIO(response.content),
                                               "application/json")["predictions"]
        np.testing.assert_array_equal([p["score"] for p in predictions], proba)
        assert httpx.get(url + "/execution-parameters").json()["BatchStrategy"] == "MULTI_RECORD"
    finally:
        stop(process)
    process, url, seconds = start_serving(root, "--workers", "1")  # the kernels are cached
    stop(process)
    print(f"\nserve: start to first good /ping {seconds:.2f} s (1 worker, kernels cached)")


def test_serve_without_a_model_fails(tmp_path):
    done = run(tmp_path, "serve")
    assert done.returncode == 1
    assert ("no model to serve: none of model.fm, sagemaker_fm.tar.gz, model_algo-1 is in"
            in done.stderr)


def test_serve_answers_with_a_model_of_sagemakers_builtin_fm(tmp_path):
    """A model.tar.gz of the built-in algorithm (written by MXNet), unpacked into model/ as
    SageMaker does before it starts the serving container."""
    import tarfile

    import httpx

    from fmlearn.sagemaker import load_model

    fixture = Path(__file__).parent / "fixtures/mxnet/w_regressor.tar.gz"
    (tmp_path / "model").mkdir()
    with tarfile.open(fixture) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    estimator = load_model(fixture)
    rows = np.eye(estimator.n_features_in_)[:3] + np.eye(estimator.n_features_in_)[3:6]
    process, url, _ = start_serving(tmp_path, "--workers", "1")
    try:
        response = httpx.post(url + "/invocations", json={
            "instances": [{"features": row.tolist()} for row in rows]})
        assert response.status_code == 200, response.text
        scores = [p["score"] for p in response.json()["predictions"]]
        np.testing.assert_array_equal(scores, estimator.predict(rows))
    finally:
        stop(process)


def test_batches_recut_chunks_into_equal_row_counts():
    from fmlearn.sagemaker.container import _batches

    X = sp.random(16, 5, density=0.5, format="csr", random_state=0)
    y = np.arange(16.0)
    cuts = [0, 3, 8, 9, 16]
    chunks = [(X[a:b], y[a:b]) for a, b in zip(cuts, cuts[1:])]
    batches = list(_batches(iter(chunks), 6))
    assert [b[0].shape[0] for b in batches] == [6, 6, 4]
    np.testing.assert_array_equal(sp.vstack([b[0] for b in batches]).toarray(), X.toarray())
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_the_dockerfile_runs_this_entry_point_as_a_user_with_the_kernels_compiled():
    """No container runtime here: what the image's build and start rely on, read from the
    Dockerfile and .dockerignore."""
    import fnmatch

    repo = Path(__file__).resolve().parents[1]
    lines = [line.split("#")[0].strip() for line in (repo / "Dockerfile").read_text().splitlines()]
    steps = [line for line in lines if line]
    assert steps[0] == "FROM python:3.11-slim"
    assert 'ENTRYPOINT ["python", "-m", "fmlearn.sagemaker.container"]' in steps
    assert "EXPOSE 8080" in steps
    user = steps.index("USER fmlearn")
    warm = next(i for i, s in enumerate(steps) if "fmlearn warmup --all" in s)
    assert user < warm and "python -m fmlearn.sagemaker.container warmup" in steps[warm]
    assert any("NUMBA_CACHE_DIR=/opt/fmlearn/numba-cache" in s for s in steps)
    copied = [name for s in steps if s.startswith("COPY") for name in s.split()[1:-1]]
    assert copied and all((repo / name).exists() for name in copied)
    rules = [r.strip() for r in (repo / ".dockerignore").read_text().splitlines()
             if r.strip() and not r.startswith("#")]

    def sent(path):  # the last matching rule decides, as Docker reads .dockerignore
        kept = True
        for rule in rules:
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                kept = rule.startswith("!")
        return kept

    assert all(sent(name) for name in copied)
    assert sent("src/fmlearn/sagemaker/container.py") and not sent("tests/test_serve.py")
    assert not sent(".venv/bin/python")


def test_a_gzip_file_channel_is_read_in_chunks(tmp_path):
    import gzip

    from fmlearn.sagemaker.container import _channel_chunks

    (tmp_path / "train").mkdir()
    with gzip.open(tmp_path / "train/part.rec.gz", "wb") as handle:
        handle.write(recordio_bytes(X_TRAIN[:50], Y_TRAIN[:50]))
    chunks = list(_channel_chunks(tmp_path, "train", ("File", None, True), 0, FEATURE_DIM))
    np.testing.assert_array_equal(sp.vstack([X for X, _ in chunks]).toarray(),
                                  X_TRAIN[:50].toarray())
    np.testing.assert_allclose(np.concatenate([y for _, y in chunks]), Y_TRAIN[:50], rtol=1e-6)
