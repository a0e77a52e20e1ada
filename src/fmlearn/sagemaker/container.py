"""The container's entry point: SageMaker's ``train`` and ``serve`` (bring your own container).

SageMaker starts a training job as ``docker run IMAGE train`` and an endpoint as
``docker run IMAGE serve``; the image's entry point is ``python -m
fmlearn.sagemaker.container``, which calls :func:`main`. Everything is read from and written
to SageMaker's tree, ``/opt/ml`` or the folder in the environment variable
``FMLEARN_SAGEMAKER_ROOT``:

``train``
    ``input/config/hyperparameters.json`` (SageMaker FM's hyperparameters, as
    :mod:`fmlearn.cli.sagemaker` maps them; names starting with ``_`` are ignored),
    ``inputdataconfig.json`` (each channel's ``ContentType``: RecordIO-protobuf,
    ``application/x-recordio-protobuf``, or libSVM, ``text/libsvm``; and its
    ``TrainingInputMode``) and ``resourceconfig.json`` (the host name in the metric
    lines). The ``train`` channel is read once per epoch and the optional ``test`` channel
    once after training, in chunks: in File mode the files of ``input/data/<channel>/``,
    in Pipe mode the FIFO ``input/data/<channel>_<epoch>`` SageMaker streams each pass
    into. The model is written to ``model/model.fm``, and in SageMaker FM's own layout
    (what :func:`fmlearn.sagemaker.load_model` and MXNet read) to
    ``model/sagemaker_fm.tar.gz``; the metric lines SageMaker's FM
    prints (:data:`METRIC_DEFINITIONS` reads them) go to stdout. On any failure the
    reason is written to ``output/failure`` and the exit status is 1. Training uses
    every core (``n_jobs=-1``); ``FMLEARN_N_JOBS=1`` in the job's environment trains on
    one thread, which gives the same model run after run (``random_state`` is 0).
``serve``
    ``model/model.fm`` (else ``model/sagemaker_fm.tar.gz``, else ``model/model_algo-1``: a
    model of SageMaker's built-in FM, as SageMaker unpacks its ``model.tar.gz``) on port 8080 (``/ping``, ``/invocations``,
    ``/execution-parameters``; see :func:`fmlearn.serve.create_app`) with
    ``SAGEMAKER_MODEL_SERVER_WORKERS`` worker processes (default: one per CPU) or
    ``--workers``.

A read-only image: when ``NUMBA_CACHE_DIR`` (the kernels compiled when the image was
built) is not writable, fmlearn caches kernels in a temporary folder; the entry point
copies the image's kernels there first, so nothing is compiled again.
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback

from .channels import (BATCH_ROWS, TrainingError, _batches, _channel_chunks, _channel_settings,
                       _read_json)

ROOT_ENV = "FMLEARN_SAGEMAKER_ROOT"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
N_JOBS_ENV = "FMLEARN_N_JOBS"
MODEL_FILE = "model.fm"
#: The same model in SageMaker FM's own layout (:func:`fmlearn.sagemaker.save_model`).
SAGEMAKER_MODEL_FILE = "sagemaker_fm.tar.gz"
#: What SageMaker unpacks from a ``model.tar.gz`` of its built-in FM.
BUILTIN_MODEL_FILE = "model_algo-1"
#: ``MetricDefinitions`` of a training job for the test channel's metrics (automatic model
#: tuning's objectives), matching the lines ``train`` prints.
METRIC_DEFINITIONS = [
    {"Name": "test:rmse", "Regex": r"#quality_metric: host=\S+, test rmse <loss>=(\S+)"},
    {"Name": "test:binary_classification_accuracy",
     "Regex": r"#quality_metric: host=\S+, test binary_classification_accuracy <score>=(\S+)"},
    {"Name": "test:binary_classification_cross_entropy",
     "Regex": r"#quality_metric: host=\S+, test binary_classification_cross_entropy "
              r"<loss>=(\S+)"},
    {"Name": "test:binary_f_beta",
     "Regex": r"#quality_metric: host=\S+, test binary_f_beta <score>=(\S+)"},
]


def sagemaker_root():
    """The root of SageMaker's tree: ``FMLEARN_SAGEMAKER_ROOT``, else ``/opt/ml``.

    Examples
    --------
    >>> os.environ[ROOT_ENV] = "/tmp/ml"
    >>> sagemaker_root()
    '/tmp/ml'
    >>> del os.environ[ROOT_ENV]
    """
    return os.environ.get(ROOT_ENV) or "/opt/ml"


def seed_kernel_cache():
    """Copy the image's compiled kernels into the cache numba uses, when they differ.

    ``import fmlearn`` points numba at a private temporary folder when
    ``NUMBA_CACHE_DIR`` cannot be written (a read-only root file system); the files of
    ``NUMBA_CACHE_DIR`` are copied there (each atomically, those already there with the
    same size kept), so the kernels compiled when the image was built are used. Returns
    the number of files copied.

    Examples
    --------
    >>> seed_kernel_cache()  # NUMBA_CACHE_DIR is numba's cache here: nothing to copy
    0
    """
    import numba

    image, used = os.environ.get("NUMBA_CACHE_DIR"), numba.config.CACHE_DIR
    if not (image and used and os.path.isdir(image)) or os.path.samefile(image, used):
        return 0
    copied = 0
    for folder, _, names in os.walk(image):
        target = os.path.join(used, os.path.relpath(folder, image))
        os.makedirs(target, mode=0o700, exist_ok=True)
        for name in names:
            source, dest = os.path.join(folder, name), os.path.join(target, name)
            if os.path.exists(dest) and os.path.getsize(dest) == os.path.getsize(source):
                continue
            handle, staging = tempfile.mkstemp(dir=target)
            os.close(handle)
            shutil.copyfile(source, staging)
            os.replace(staging, dest)  # a reader in another worker sees a whole file
            copied += 1
    return copied


class _TestScore:
    """SageMaker FM's test metrics, summed chunk by chunk."""

    def __init__(self, classifier):
        self.classifier = classifier
        self.rows = 0
        self.sums = dict.fromkeys(("squared", "correct", "entropy", "tp", "fp", "fn"), 0.0)

    def add(self, estimator, X, y):
        import numpy as np

        self.rows += X.shape[0]
        if not self.classifier:
            err = estimator.predict(X).astype(np.float64) - y
            self.sums["squared"] += float(err @ err)
            return
        proba = np.clip(estimator.predict_proba(X)[:, 1].astype(np.float64), 1e-15, 1 - 1e-15)
        truth, guess = y > 0, proba >= 0.5
        self.sums["correct"] += float(np.sum(truth == guess))
        self.sums["entropy"] -= float(np.sum(np.where(truth, np.log(proba), np.log1p(-proba))))
        self.sums["tp"] += float(np.sum(truth & guess))
        self.sums["fp"] += float(np.sum(~truth & guess))
        self.sums["fn"] += float(np.sum(truth & ~guess))

    def metrics(self):
        """``[(name, kind, value)]``: kind is ``loss`` (lower is better) or ``score``."""
        s, n = self.sums, self.rows
        if not self.classifier:
            return [("rmse", "loss", math.sqrt(s["squared"] / n))]
        positive = 2 * s["tp"] + s["fp"] + s["fn"]
        return [("binary_classification_accuracy", "score", s["correct"] / n),
                ("binary_classification_cross_entropy", "loss", s["entropy"] / n),
                ("binary_f_beta", "score", 2 * s["tp"] / positive if positive else 0.0)]


def _estimator(hyper):
    """The estimator and its feature count from SageMaker's hyperparameters."""
    import click

    from ..cli._common import warn
    from ..cli.sagemaker import estimator_spec

    try:
        spec, messages = estimator_spec(hyper)
    except click.BadParameter as exc:
        raise TrainingError(f"hyperparameters.json: {exc.message}") from exc
    for message in messages:
        warn(message)
    n_jobs = os.environ.get(N_JOBS_ENV, "-1")
    try:
        spec.params.update(random_state=0, n_jobs=int(n_jobs))
    except ValueError:
        raise TrainingError(f"{N_JOBS_ENV}={n_jobs!r} is not an integer") from None
    return spec.estimator(), spec.n_features


def train(root=None):
    """Train as SageMaker's ``train`` does: read the tree under ``root``, write the model.

    Parameters
    ----------
    root : str, optional
        SageMaker's ``/opt/ml`` (default: :func:`sagemaker_root`).

    Raises
    ------
    TrainingError, DataFormatError, ValueError
        What :func:`main` writes to ``output/failure``.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> import numpy as np
    >>> from fmlearn.io import dump_libsvm
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "input/config").mkdir(parents=True)
    >>> (root / "input/data/train").mkdir(parents=True)
    >>> dump_libsvm(np.eye(4), [1, 2, 3, 4], root / "input/data/train/rows.libsvm")
    >>> _ = (root / "input/config/hyperparameters.json").write_text(json.dumps(
    ...     {"feature_dim": "4", "num_factors": "2", "predictor_type": "regressor"}))
    >>> train(root)  # doctest: +ELLIPSIS
    #quality_metric: host=algo-1, epoch=0, train rmse <loss>=...
    >>> sorted(p.name for p in (root / "model").iterdir())
    ['model.fm', 'sagemaker_fm.tar.gz']
    """
    from ..cli._common import warn
    from ..cli.sagemaker import read_hyperparameters
    from ..persistence import save
    from .artifact import save_model

    root = os.fspath(root or sagemaker_root())
    config_dir, data_dir = os.path.join(root, "input/config"), os.path.join(root, "input/data")
    hyper_path = os.path.join(config_dir, "hyperparameters.json")
    hyper = read_hyperparameters(hyper_path) if os.path.exists(hyper_path) else {}
    present = [c for c in ("train", "test") if os.path.isdir(os.path.join(data_dir, c))]
    channels = _read_json(os.path.join(config_dir, "inputdataconfig.json"),
                          {name: {} for name in present})
    resources = _read_json(os.path.join(config_dir, "resourceconfig.json"), {})
    host = resources.get("current_host", "algo-1")
    hosts = resources.get("hosts", [host])
    if len(hosts) > 1:
        raise TrainingError(f"fmlearn trains on one instance; this job has {len(hosts)} "
                            f"({', '.join(map(str, hosts))}): set instance_count=1")
    if "train" not in channels:
        raise TrainingError("the train channel is missing")
    settings = {name: _channel_settings(name, channels[name]) for name in ("train", "test")
                if name in channels}
    estimator, n_features = _estimator(hyper)
    classifier = hasattr(estimator, "predict_proba")
    mini_batch = int(estimator.get_params().get("batch_size") or 1)
    batch_rows = max(BATCH_ROWS // mini_batch, 1) * mini_batch
    epochs = estimator.max_iter
    for epoch in range(epochs):
        start, rows, loss = time.perf_counter(), 0, 0.0
        chunks = _channel_chunks(data_dir, "train", settings["train"], epoch, n_features)
        for X, y in _batches(chunks, batch_rows):
            if classifier:
                estimator.partial_fit(X, (y > 0).astype(float), classes=[0.0, 1.0])
            else:
                estimator.partial_fit(X, y)
            rows += X.shape[0]
            loss += estimator.loss_curve_[-1] * X.shape[0]
        if rows == 0:
            raise TrainingError("the train channel holds no rows")
        seconds = time.perf_counter() - start
        name, value = (("binary_classification_cross_entropy", loss / rows) if classifier
                       else ("rmse", math.sqrt(2 * loss / rows)))  # the loss is err**2 / 2
        print(f"#quality_metric: host={host}, epoch={epoch}, train {name} <loss>={value}")
        print(f"#progress_metric: host={host}, completed {100 * (epoch + 1) / epochs:.1f} % "
              "of epochs")
        print(f"#throughput_metric: host={host}, train throughput="
              f"{rows / max(seconds, 1e-9):.1f} records/second", flush=True)
    model_dir = os.path.join(root, "model")
    os.makedirs(model_dir, exist_ok=True)
    save(estimator, os.path.join(model_dir, MODEL_FILE))
    try:
        save_model(estimator, os.path.join(model_dir, SAGEMAKER_MODEL_FILE))
    except ValueError as exc:  # a model SageMaker FM's layout cannot hold
        warn(f"{SAGEMAKER_MODEL_FILE} is not written: {exc}")
    if "test" in settings:
        score = _TestScore(classifier)
        for X, y in _channel_chunks(data_dir, "test", settings["test"], 0, n_features):
            score.add(estimator, X, y)
        if score.rows == 0:
            raise TrainingError("the test channel holds no rows")
        for name, kind, value in score.metrics():
            print(f"#test_score ({host}) : {(name, value)!r}")
        for name, kind, value in score.metrics():
            print(f"#quality_metric: host={host}, test {name} <{kind}>={value}", flush=True)


def _model_path(root):
    names = (MODEL_FILE, SAGEMAKER_MODEL_FILE, BUILTIN_MODEL_FILE)
    for name in names:
        path = os.path.join(root, "model", name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"no model to serve: none of {', '.join(names)} is in "
                            f"{os.path.join(root, 'model')}")


def _builtin_model(path):
    """The estimator of ``model_algo-1``, packed again as the tar SageMaker unpacked."""
    import io
    import tarfile

    from .artifact import load_model

    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as tar:
        tar.add(path, arcname=BUILTIN_MODEL_FILE)
    with tempfile.NamedTemporaryFile(suffix=".tar") as handle:
        handle.write(packed.getvalue())
        handle.flush()
        return load_model(handle.name)


def warmup():
    """Run ``train`` and ``serve``'s start on a tiny job of each predictor type, so that
    every kernel they reach is in numba's cache (the image runs this when it is built).

    Examples
    --------
    >>> warmup()
    """
    import contextlib
    import io

    import numpy as np
    import scipy.sparse as sp

    from ..io import dump_libsvm, dump_recordio
    from ..serve import create_app

    X, y = np.eye(4), np.array([1.0, 0.0, 1.0, 0.0])
    sparse = sp.csr_matrix(X, dtype=np.float32)  # as the SageMaker SDK writes float32 rows
    with tempfile.TemporaryDirectory(prefix="fmlearn-warmup-") as folder:
        for predictor in ("regressor", "binary_classifier"):
            root = os.path.join(folder, predictor)
            for channel in ("config", "data/train", "data/test"):
                os.makedirs(os.path.join(root, "input", channel))
            with open(os.path.join(root, "input/config/hyperparameters.json"), "w") as handle:
                json.dump({"feature_dim": "4", "num_factors": "2",
                           "predictor_type": predictor}, handle)
            dump_recordio(sparse, y, os.path.join(root, "input/data/train/sparse.rec"))
            dump_recordio(X, y, os.path.join(root, "input/data/train/dense.rec"))
            dump_libsvm(X, y, os.path.join(root, "input/data/test/rows.libsvm"))
            with contextlib.redirect_stdout(io.StringIO()):
                train(root)
            create_app(_model_path(root))


def serving_app():
    """The ASGI application ``serve`` runs in each worker: the model under
    :func:`sagemaker_root` (``uvicorn --factory`` calls this).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from fmlearn import FMRegressor, save
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "model").mkdir()
    >>> _ = save(FMRegressor(max_iter=2, random_state=0).fit(np.eye(3), [1, 2, 3]),
    ...          root / "model/model.fm")
    >>> os.environ[ROOT_ENV] = str(root)
    >>> sorted(route.path for route in serving_app().routes)
    ['/execution-parameters', '/ping', '/recommend']
    >>> del os.environ[ROOT_ENV]
    """
    from ..serve import create_app

    seed_kernel_cache()
    path = _model_path(sagemaker_root())
    return create_app(_builtin_model(path) if path.endswith(BUILTIN_MODEL_FILE) else path)


def serve(root=None, *, workers=None, host="0.0.0.0", port=8080):
    """Serve the model under ``root`` as SageMaker's ``serve`` does, until stopped.

    Parameters
    ----------
    root : str, optional
        SageMaker's ``/opt/ml`` (default: :func:`sagemaker_root`).
    workers : int, optional
        Worker processes; default ``SAGEMAKER_MODEL_SERVER_WORKERS``, else one per CPU.
        Each loads the model and answers on the same port.
    host, port
        Where to listen: SageMaker's ``0.0.0.0:8080``.

    Examples
    --------
    >>> import inspect
    >>> list(inspect.signature(serve).parameters)   # serve() blocks; main() calls it
    ['root', 'workers', 'host', 'port']
    """
    import uvicorn

    root = os.fspath(root or sagemaker_root())
    _model_path(root)
    if workers is None:
        workers = int(os.environ.get(WORKERS_ENV) or os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    os.environ[ROOT_ENV] = root  # what serving_app reads, in this process and the workers
    options = dict(host=host, port=port, log_level="info", access_log=False)
    if workers == 1:
        uvicorn.run(serving_app(), **options)
    else:
        uvicorn.run("fmlearn.sagemaker.container:serving_app", factory=True, workers=workers,
                    **options)


def _failure_reason(exc):
    from ..io.errors import DataFormatError
    from ..persistence import ModelFileError

    if isinstance(exc, (TrainingError, DataFormatError, ModelFileError, ValueError, OSError)):
        reason = str(exc)
        return reason + " (the hyperparameter feature_dim)" * ("n_features=" in reason)
    import click
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    return f"internal error: {type(exc).__name__}: {exc}"


def main(argv=None):
    """``train`` or ``serve``, as SageMaker runs the image; returns the exit status.

    A failed ``train`` writes its reason to ``output/failure`` under the root and, like a
    failed ``serve``, prints ``fmlearn: error: <reason>`` on stderr and returns 1.

    Examples
    --------
    >>> import contextlib, io, tempfile
    >>> root = tempfile.mkdtemp()
    >>> os.environ[ROOT_ENV] = root
    >>> with contextlib.redirect_stderr(io.StringIO()):
    ...     main(["train"])
    1
    >>> print(open(os.path.join(root, "output/failure")).read())
    the train channel is missing
    >>> del os.environ[ROOT_ENV]
    """
    parser = argparse.ArgumentParser(prog="fmlearn-sagemaker", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("train", help="train on the channels under the root")
    commands.add_parser("warmup", help="compile what train and serve run (when the image "
                                       "is built)")
    serving = commands.add_parser("serve", help="serve the model under the root")
    serving.add_argument("--workers", type=int, help=f"worker processes (default: ${WORKERS_ENV}, "
                         "else one per CPU)")
    serving.add_argument("--host", default="0.0.0.0")
    serving.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        seed_kernel_cache()
        if args.command == "train":
            train()
        elif args.command == "warmup":
            warmup()
        else:
            serve(workers=args.workers, host=args.host, port=args.port)
    except Exception as exc:
        reason = _failure_reason(exc)
        if reason.startswith("internal error"):
            traceback.print_exc()
        if args.command == "train":
            output = os.path.join(sagemaker_root(), "output")
            os.makedirs(output, exist_ok=True)
            with open(os.path.join(output, "failure"), "w", encoding="utf-8") as handle:
                handle.write(reason)
        print(f"fmlearn: error: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
