"""The ``fmlearn`` command: libFM's command line, SageMaker's hyperparameters, predict /
evaluate / info, progress, defaults, start-up, and the exit statuses of errors. The commands
run in this process, as the console script runs them (a new interpreter per command would cost
seconds of imports each); a few tests run the real executable, ``.venv/bin/fmlearn``
(``fmlearn convert`` has its own file, test_cli_convert.py)."""
import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import traceback
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from conftest import shared_data
from fmlearn import FMClassifier, FMRegressor, load
from fmlearn.cli import libfm, main
from fmlearn.io import load_libsvm

ROOT = Path(__file__).resolve().parents[1]
ML_100K = ROOT.parent / "shared/data/ml-100k"
SCRIPT = Path(sys.executable).with_name("fmlearn")  # the console script pip installed
needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason=f"no console script at {SCRIPT}")


def run_script(*args, cwd, env=None):
    """Run the real ``fmlearn`` executable in a new process."""
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=600)


def fmlearn(*args, env=None, cwd=None):
    """Run ``fmlearn ARGS`` as the console script does (``fmlearn.cli.main``), in this process,
    with ``env`` added to the environment and ``cwd`` as working directory; return what a
    subprocess would: exit status, stdout and stderr (an uncaught exception prints its
    traceback and exits 1, as the interpreter does)."""
    out, err = io.StringIO(), io.StringIO()
    status = 0
    with mock.patch.dict(os.environ, env or {}), contextlib.chdir(cwd or os.getcwd()), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except Exception:  # noqa: BLE001 - what the interpreter does with it
            traceback.print_exc()
            status = 1
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def write_libfm(path, ratings, n_users, binary=False):
    """One line per rating: ``label user:1 item:1`` with 0-based one-hot indices (libFM)."""
    labels = (ratings[:, 2] >= 4).astype(int) if binary else ratings[:, 2]
    lines = [f"{r} {u - 1}:1 {n_users + i - 1}:1\n"
             for r, u, i in zip(labels, ratings[:, 0], ratings[:, 1])]
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def ml(tmp_path_factory):
    """MovieLens 100K's u1 split as libFM files: ratings, liked (rating >= 4) and groups."""
    shared_data("ml-100k/u1.base")
    folder = tmp_path_factory.mktemp("ml100k")
    train = np.loadtxt(ML_100K / "u1.base", dtype=np.int64)
    test = np.loadtxt(ML_100K / "u1.test", dtype=np.int64)
    n_users = int(max(train[:, 0].max(), test[:, 0].max()))
    n_items = int(max(train[:, 1].max(), test[:, 1].max()))
    (folder / "groups.txt").write_text("0\n" * n_users + "1\n" * n_items)
    return {"dir": folder, "n_features": n_users + n_items,
            "train": write_libfm(folder / "train.libfm", train, n_users),
            "test": write_libfm(folder / "test.libfm", test, n_users),
            "btrain": write_libfm(folder / "btrain.libfm", train, n_users, binary=True),
            "btest": write_libfm(folder / "btest.libfm", test, n_users, binary=True),
            "groups": folder / "groups.txt"}


def read_lines(path):
    return Path(path).read_text().split()


def as_text(values):
    """Predictions as ``-out`` writes them: numpy's shortest repr, which is one-to-one."""
    return [str(v) for v in values]


def python_fit(ml, estimator, **fit):
    """Fit on the ratings with the Python API; return it with the test rows and targets."""
    X, y = load_libsvm(ml["train"], n_features=ml["n_features"])
    X_test, y_test = load_libsvm(ml["test"], n_features=ml["n_features"])
    return estimator.fit(X, y, **fit), X_test, y_test


def metric(stdout, name):
    line = next(line for line in stdout.splitlines() if line.startswith(f"{name} = "))
    return float(line.split(" = ")[1])


# --- libFM's command line -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def mcmc_run(ml):
    """The brief's libFM command line (fewer iterations), run once for several tests."""
    d = ml["dir"]
    result = fmlearn(
        "train", "-task", "r", "-train", ml["train"], "-test", ml["test"], "-dim", "1,1,8",
        "-iter", 20, "-method", "mcmc", "-learn_rate", 0.01, "-regular", "0,0,0.01",
        "-init_stdev", 0.1, "-out", d / "pred.txt", "-meta", ml["groups"],
        "-validation", ml["test"], "-seed", 1, "-verbosity", 1, "-rlog", d / "rlog.tsv",
        "-save_model", d / "mcmc.fm")
    assert result.returncode == 0, result.stderr
    return result


def test_libfm_mcmc_command_line_equals_python_api(ml, mcmc_run):
    reg, X_test, y_test = python_fit(
        ml, FMRegressor(n_factors=8, solver="mcmc", max_iter=20, tol=None, burn_in=0,
                        init_std=0.1, reg_intercept=0.0, reg_linear=0.0, reg_factors=0.01,
                        random_state=1),
        feature_groups=np.loadtxt(ml["groups"], dtype=np.int64))
    pred = reg.predict(X_test)
    assert read_lines(ml["dir"] / "pred.txt") == as_text(pred)
    rmse = float(np.sqrt(np.mean((pred.astype(np.float64) - y_test) ** 2)))
    assert metric(mcmc_run.stdout, "test:rmse") == pytest.approx(rmse, abs=1e-6)
    assert 0.85 < rmse < 1.05
    # stderr: the note on -regular, the data sizes (-verbosity 1), one table row per iteration
    assert "r1, r2 are ignored" in mcmc_run.stderr
    assert "train: " in mcmc_run.stderr and "80000 rows" in mcmc_run.stderr
    assert "validation_rmse" in mcmc_run.stderr
    # -rlog: a header and one line per iteration, its last rmse the final test RMSE
    header, *rows = (ml["dir"] / "rlog.tsv").read_text().splitlines()
    columns = header.split("\t")
    assert columns[:4] == ["iter", "loss_train", "rmse", "alpha"] and "wlambda[1]" in columns
    assert len(rows) == 20
    assert float(rows[-1].split("\t")[2]) == pytest.approx(rmse, abs=1e-6)
    # -save_model: fmlearn's model file, also for MCMC
    assert np.array_equal(load(ml["dir"] / "mcmc.fm").predict(X_test), pred)


@pytest.mark.parametrize("method, flags, params", [
    ("sgd", ["-learn_rate", "0.01", "-regular", "0,0,0.01"],
     {"learning_rate": "constant", "eta0": 0.01, "reg_factors": 0.01}),
    ("als", ["-regular", "0,1,10"], {"reg_linear": 1.0, "reg_factors": 10.0}),
    ("als", ["-regular", "0,1,10", "-dim", "0,0,4"],
     {"reg_linear": 1.0, "reg_factors": 10.0, "fit_intercept": False, "fit_linear": False}),
    ("vb", [], {}),
])
def test_libfm_sgd_and_als_equal_python_api(ml, tmp_path, method, flags, params):
    result = fmlearn("train", "-task", "r", "-train", ml["train"], "-test", ml["test"],
                     "-method", method, "-iter", 3, "-dim", "1,1,4", "-init_stdev", 0.1,
                     "-seed", 7, "-out", tmp_path / "pred.txt", *flags)
    assert result.returncode == 0, result.stderr
    defaults = {"reg_intercept": 0.0, "reg_linear": 0.0, "reg_factors": 0.0}
    reg, X_test, _ = python_fit(ml, FMRegressor(
        n_factors=4, solver=method, max_iter=3, tol=None, init_std=0.1, random_state=7,
        **{**defaults, **params}))
    assert read_lines(tmp_path / "pred.txt") == as_text(reg.predict(X_test))


def test_ordinal_task_equals_python_api_and_needs_mcmc(ml, tmp_path):
    """-task o: FMOrdinalRegressor by MCMC; -out writes the expected rating."""
    from fmlearn import FMOrdinalRegressor

    result = fmlearn("train", "-task", "o", "-train", ml["train"], "-test", ml["test"],
                     "-iter", 5, "-dim", "1,1,4", "-seed", 7, "-out", tmp_path / "pred.txt")
    assert result.returncode == 0, result.stderr
    est, X_test, y_test = python_fit(ml, FMOrdinalRegressor(
        n_factors=4, max_iter=5, init_std=0.1, random_state=7, burn_in=0))
    expected = est.predict_expected(X_test)
    assert read_lines(tmp_path / "pred.txt") == as_text(expected)
    assert metric(result.stdout, "test:rmse") == pytest.approx(
        np.sqrt(np.mean((expected - y_test) ** 2)), abs=1e-6)
    refused = fmlearn("train", "-task", "o", "-method", "als", "-train", ml["train"])
    assert refused.returncode == 2
    assert "-task o (ordinal regression) learns by -method mcmc; got -method als" in refused.stderr


def test_libfm_classification_sgda_then_predict_proba(ml, tmp_path):
    result = fmlearn("train", "-task", "c", "-train", ml["btrain"], "-test", ml["btest"],
                     "-validation", ml["btest"], "-method", "sgda", "-iter", 4,
                     "-learn_rate", 0.05, "-dim", "1,1,4", "-seed", 3,
                     "-out", tmp_path / "proba.txt", "-save_model", tmp_path / "clf.fm")
    assert result.returncode == 0, result.stderr
    # sgda learns its penalties on -validation (here the test file); labels <= 0 are -1
    X, y = load_libsvm(ml["btrain"], n_features=ml["n_features"])
    X_test, y_test = load_libsvm(ml["btest"], n_features=ml["n_features"])
    y, y_test = np.where(y > 0, 1.0, -1.0), np.where(y_test > 0, 1.0, -1.0)
    clf = FMClassifier(n_factors=4, solver="sgda", max_iter=4, tol=None,
                       learning_rate="constant", eta0=0.05, reg_intercept=0.0, reg_linear=0.0,
                       reg_factors=0.0, init_std=0.1, random_state=3)
    clf.fit(X, y, eval_set=(X_test, y_test))
    assert clf.regularization_["reg_factors"].max() > 0
    proba = clf.predict_proba(X_test)[:, 1]
    assert read_lines(tmp_path / "proba.txt") == as_text(proba)  # libFM writes probabilities
    assert metric(result.stdout, "test:accuracy") == pytest.approx(
        np.mean(np.where(proba > 0.5, 1.0, -1.0) == y_test), abs=1e-6)
    rate = np.mean(y > 0)  # a constant predictor: the training file's rate of liked ratings
    constant = -np.mean(np.where(y_test > 0, np.log(rate), np.log1p(-rate)))
    assert 0.75 < metric(result.stdout, "test:auc") < 1.0  # 0.775 measured
    assert metric(result.stdout, "test:logloss") < constant - 0.1  # 0.565 against 0.686

    again = fmlearn("predict", tmp_path / "clf.fm", ml["btest"], "--proba",
                    "-o", tmp_path / "again.txt")
    assert again.returncode == 0, again.stderr
    assert read_lines(tmp_path / "again.txt") == read_lines(tmp_path / "proba.txt")


def test_predict_evaluate_info_round_trip(ml, mcmc_run, tmp_path):
    model = ml["dir"] / "mcmc.fm"
    result = fmlearn("predict", model, ml["test"], "-o", tmp_path / "pred.txt")
    assert result.returncode == 0, result.stderr
    assert read_lines(tmp_path / "pred.txt") == read_lines(ml["dir"] / "pred.txt")

    result = fmlearn("evaluate", model, ml["test"], "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["n_rows"] == 20000
    assert scores["rmse"] == pytest.approx(metric(mcmc_run.stdout, "test:rmse"), abs=1e-6)

    result = fmlearn("info", model)
    assert result.returncode == 0, result.stderr
    header = json.loads(result.stdout)
    assert header["estimator"] == "FMRegressor"
    assert header["n_features_in_"] == ml["n_features"]
    assert header["params"]["solver"] == "mcmc" and header["params"]["n_factors"] == 8


# --- SageMaker ----------------------------------------------------------------------------------
def test_sagemaker_hyperparameters_and_default_paths(ml, tmp_path):
    """SageMaker's layout (through the SM_* variables), all values strings, no --train."""
    channels, config, model_dir = tmp_path / "data", tmp_path / "config", tmp_path / "model"
    for name in ("train", "test"):
        (channels / name).mkdir(parents=True)
        (channels / name / "part-0.libfm").write_text(ml[name].read_text())
    config.mkdir()
    model_dir.mkdir()
    hyper = {"feature_dim": str(ml["n_features"]), "num_factors": "4",
             "predictor_type": "regressor", "epochs": "2", "mini_batch_size": "500",
             "bias_lr": "0.1", "linear_lr": "0.02", "factors_lr": "0.02",
             "bias_wd": "0.01", "linear_wd": "0.001", "factors_wd": "0.0001",
             "factors_init_method": "normal", "factors_init_sigma": "0.05",
             "_tuning_objective_metric": "test:rmse"}
    (config / "hyperparameters.json").write_text(json.dumps(hyper))
    env = {"SM_CHANNEL_TRAIN": str(channels / "train"), "SM_CHANNEL_TEST": str(channels / "test"),
           "SM_INPUT_CONFIG_DIR": str(config), "SM_MODEL_DIR": str(model_dir)}
    result = fmlearn("train", "-seed", 5, env=env)
    assert result.returncode == 0, result.stderr
    assert "ignored" not in result.stderr and "_tuning_objective_metric" not in result.stderr

    reg, X_test, _ = python_fit(ml, FMRegressor(
        n_factors=4, solver="adam", max_iter=2, tol=None, batch_size=500, lr_intercept=0.1,
        lr_linear=0.02, lr_factors=0.02, reg_intercept=0.01, reg_linear=0.001,
        reg_factors=0.0001, init_intercept=("normal", 0.01), init_linear=("normal", 0.01),
        init_factors=("normal", 0.05), clip_predictions=False, random_state=5))
    saved = load(model_dir / "model.fm")
    assert np.array_equal(saved.predict(X_test), reg.predict(X_test))
    assert 0.85 < metric(result.stdout, "test:rmse") < 1.1


# A value other than the default for each of SageMaker's hyperparameters, and the estimator
# parameter (and value) it must become.
SAGEMAKER_MAPPING = [
    ("epochs", "3", "max_iter", 3), ("mini_batch_size", "64", "batch_size", 64),
    ("bias_lr", "0.5", "lr_intercept", 0.5), ("linear_lr", "0.05", "lr_linear", 0.05),
    ("factors_lr", "0.03", "lr_factors", 0.03), ("bias_wd", "0.2", "reg_intercept", 0.2),
    ("linear_wd", "0.02", "reg_linear", 0.02), ("factors_wd", "0.3", "reg_factors", 0.3),
    ("bias_init_sigma", "0.5", "init_intercept", ("normal", 0.5)),
    ("linear_init_sigma", "0.2", "init_linear", ("normal", 0.2)),
    ("factors_init_sigma", "0.1", "init_factors", ("normal", 0.1)),
    ("clip_gradient", "5", "clip_gradient", 5.0), ("eps", "1e-6", "eps", 1e-6),
    ("rescale_grad", "0.25", "rescale_grad", 0.25),
]
SAGEMAKER_REQUIRED = {"feature_dim": "10", "num_factors": "4", "predictor_type": "regressor"}


@pytest.mark.parametrize("name, value, param, expected", SAGEMAKER_MAPPING,
                         ids=[m[0] for m in SAGEMAKER_MAPPING])
def test_every_sagemaker_hyperparameter_is_honoured(name, value, param, expected):
    from fmlearn.cli.sagemaker import estimator_spec

    spec, warnings = estimator_spec({**SAGEMAKER_REQUIRED, name: value})
    assert spec.params["solver"] == "adam" and warnings == []
    assert spec.params[param] == expected
    assert spec.estimator().get_params()[param] == expected


@pytest.mark.parametrize("term, param", [("bias", "init_intercept"), ("linear", "init_linear"),
                                         ("factors", "init_factors")])
def test_sagemaker_init_methods(term, param):
    from fmlearn.cli.sagemaker import estimator_spec

    for method, key, number in (("uniform", "scale", 0.3), ("constant", "value", -0.5)):
        spec, _ = estimator_spec({**SAGEMAKER_REQUIRED, f"{term}_init_method": method,
                                  f"{term}_init_{key}": str(number)})
        assert spec.params[param] == (method, number)
        with pytest.raises(Exception, match=f"{term}_init_method={method} needs "
                                            f"{term}_init_{key}"):
            estimator_spec({**SAGEMAKER_REQUIRED, f"{term}_init_method": method})


def test_sagemaker_defaults_are_sagemakers():
    from fmlearn.cli.sagemaker import estimator_spec

    spec, _ = estimator_spec(SAGEMAKER_REQUIRED)
    est = spec.estimator()
    assert (est.solver, est.max_iter, est.batch_size, est.eps, est.rescale_grad) == (
        "adam", 1, 1000, 1e-8, "auto")
    assert (est.lr_intercept, est.lr_linear, est.lr_factors) == (0.1, 0.001, 0.0001)
    assert (est.reg_intercept, est.reg_linear, est.reg_factors) == (0.01, 0.001, 0.00001)
    assert (est.init_intercept, est.init_linear, est.init_factors) == (
        ("normal", 0.01), ("normal", 0.01), ("normal", 0.001))
    assert est.clip_gradient is None and est.clip_predictions is False


@pytest.mark.skipif(importlib.util.find_spec("fmlearn.io.recordio") is None,
                    reason="fmlearn.io.recordio is not available")
def test_recordio_is_detected_and_read(tmp_path):
    pytest.importorskip("sagemaker")
    import scipy.sparse as sp
    from sagemaker.amazon.common import write_spmatrix_to_sparse_tensor

    rng = np.random.default_rng(0)
    X = sp.random(300, 20, density=0.2, format="csr", dtype=np.float32, random_state=1)
    y = (X @ rng.normal(size=20) > 0).astype(np.float32)
    with open(tmp_path / "train.data", "wb") as fh:
        write_spmatrix_to_sparse_tensor(fh, X, y)
    (tmp_path / "hp.json").write_text(json.dumps(
        {"feature_dim": "20", "num_factors": "2", "predictor_type": "binary_classifier",
         "epochs": "3"}))
    result = fmlearn("train", "--hyperparameters", tmp_path / "hp.json",
                     "--train", tmp_path / "train.data", "--test", tmp_path / "train.data",
                     "--model-out", tmp_path / "model.fm", "-seed", 0)
    assert result.returncode == 0, result.stderr
    assert 0.5 <= metric(result.stdout, "test:accuracy") <= 1.0
    assert load(tmp_path / "model.fm").n_features_in_ == 20


# --- errors -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "good.libfm").write_text("1 0:1 3:1\n0 1:1 2:1\n")
    (folder / "bad.libfm").write_text("1 0:1 3:1\n0 1:1 2:abc\n")
    return folder


@pytest.mark.parametrize("args, status, message", [
    (["train", "-task", "r", "-train", "missing.svm"], 2,
     "fmlearn: error: cannot read 'missing.svm': No such file or directory"),
    (["train", "-task", "r", "-train", "bad.libfm"], 65,
     "fmlearn: error: bad.libfm, line 2, column 7: the value in '2:abc' is not a number"),
    (["train", "-task", "x", "-train", "good.libfm"], 2,
     "Error: Invalid value for '-task': 'x' is not one of 'r', 'c', 'o'."),
    (["train", "-task", "r", "-train", "good.libfm", "-method", "sgda"], 2,
     "-method sgda needs -validation: it learns the regularisation on those rows."),
    (["train", "-tsk", "r"], 2, "No such option '-tsk'. Did you mean '-task'?"),
    (["predict", "good.libfm", "good.libfm"], 65,
     "fmlearn: error: good.libfm: not an fmlearn model file: it is not a zip archive"),
])
def test_errors_give_exit_status_and_one_line(bad_data, args, status, message):
    result = fmlearn(*args, cwd=bad_data)
    assert result.returncode == status, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_console_command_exits_with_the_status(bad_data):
    result = subprocess.run([sys.executable, "-m", "fmlearn.cli", "train", "-task", "r", "-train",
                             "bad.libfm"], capture_output=True, text=True, cwd=bad_data,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=600)
    assert result.returncode == 65
    assert result.stderr.strip().splitlines()[-1] == (
        "fmlearn: error: bad.libfm, line 2, column 7: the value in '2:abc' is not a number")


def test_debug_shows_the_traceback(bad_data):
    result = fmlearn("train", "-task", "r", "-train", "bad.libfm", "--debug", cwd=bad_data)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "DataFormatError" in result.stderr


def test_bench_runs_the_checkouts_runner_with_the_flags_and_passes_its_status(tmp_path):
    suite = tmp_path / "bench"
    suite.mkdir()
    (suite / "run.py").write_text("import json, pathlib, sys\n"
                                  "pathlib.Path(sys.argv[0]).with_name('argv.json')"
                                  ".write_text(json.dumps(sys.argv[1:]))\nsys.exit(3)\n")
    result = fmlearn("bench", "--quick", "--only", "scaling.py", cwd=tmp_path)
    assert result.returncode == 3
    assert json.loads((suite / "argv.json").read_text()) == ["--quick", "--only", "scaling.py"]


def test_bench_outside_a_checkout_says_where_it_looked(tmp_path):
    result = fmlearn("bench", cwd=tmp_path)
    assert result.returncode == 2
    assert ("no benchmark suite at bench/run.py: fmlearn bench runs the bench/ folder of a "
            "source checkout of fmlearn") in " ".join(result.stderr.split())


# --- progress, defaults ---------------------------------------------------------------------------
PROGRESS = re.compile(r"fmlearn: iter +(\d+)/(\d+)  train_loss (\S+)(?:  (\w+) (\S+))?  \S+ s")


def progress(stderr):
    """The per-iteration lines of ``stderr``, as (iteration, of, loss, score name, score)."""
    return [(int(m[1]), int(m[2]), float(m[3]), m[4], m[5] and float(m[5]))
            for m in map(PROGRESS.fullmatch, stderr.splitlines()) if m]


def test_one_progress_line_per_iteration_from_1_and_the_rmse_as_itself(ml, mcmc_run):
    lines = progress(mcmc_run.stderr)
    assert [line[:2] for line in lines] == [(i, 20) for i in range(1, 21)]
    # libFM's -rlog holds the same loss and RMSE, its iterations also counted from 1
    header, *rows = (ml["dir"] / "rlog.tsv").read_text().splitlines()
    rlog = np.array([row.split("\t")[:3] for row in rows], dtype=np.float64)
    assert rlog[:, 0].tolist() == list(range(1, 21))
    np.testing.assert_allclose([line[2] for line in lines], rlog[:, 1], atol=5e-7)
    assert {line[3] for line in lines} == {"validation_rmse"}
    np.testing.assert_allclose([line[4] for line in lines], rlog[:, 2], atol=5e-7)
    assert min(line[4] for line in lines) > 0.8
    # and nothing else: no table of the same iterations after them, no estimator's own lines
    assert all(line.startswith("fmlearn: ") for line in mcmc_run.stderr.splitlines())


def test_progress_on_a_terminal_draws_a_bar_below_the_lines():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from fmlearn.cli.train import Progress

    out = Terminal()
    bar = Progress(2, "test", "logloss", stream=out)
    bar(None, None, None, [0.7], [-0.69])
    bar.close()
    assert "fmlearn: iter 1/2  train_loss 0.700000  test_logloss 0.690000" in out.getvalue()
    assert "50%" in out.getvalue()  # the bar, redrawn in place below the line


def test_quiet_prints_no_progress(ml, tmp_path):
    result = fmlearn("train", "-task", "r", "-train", ml["train"], "-test", ml["test"],
                     "-method", "als", "-iter", 2, "-dim", "1,1,2", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_table_of_default_differences_is_true():
    """libfm.DEFAULTS (the --help text, the README table) against what train passes for flags
    not given and the estimators' own defaults; every other default agrees."""
    libfm_params = {**libfm.estimator_spec("r", method="sgd").params,
                    **libfm.estimator_spec("r").params}  # mcmc has no schedule, sgd no burn-in
    for api in (FMRegressor().get_params(), FMClassifier().get_params()):
        for keys, libfm_values, api_values in libfm.DEFAULTS.values():
            assert tuple(libfm_params[k] for k in keys) == libfm_values
            assert tuple(api[k] for k in keys) == api_values
        listed = {k for keys, _, _ in libfm.DEFAULTS.values() for k in keys}
        assert {k: v for k, v in libfm_params.items() if k not in listed} == {
            k: api[k] for k in libfm_params if k not in listed}


def test_python_defaults_leave_the_flags_not_given_to_the_estimator(ml, tmp_path):
    result = fmlearn("train", "-task", "c", "-train", ml["btrain"], "-iter", 2, "-seed", 0,
                     "--python-defaults", "-init_stdev", 0.05, "--model-out", tmp_path / "m.fm",
                     "-q")
    assert result.returncode == 0, result.stderr
    assert load(tmp_path / "m.fm").get_params() == FMClassifier(
        max_iter=2, random_state=0, init_std=0.05).get_params()
    help_text = " ".join(fmlearn("train", "--help").stdout.split())
    assert "The defaults are libFM's, not the Python API's: -method mcmc (API: sgd)" in help_text
    assert "--python-defaults Take the Python API's defaults" in help_text


def test_python_defaults_do_not_combine_with_hyperparameters(tmp_path):
    (tmp_path / "hp.json").write_text('{"num_factors": "2", "predictor_type": "regressor", '
                                      '"feature_dim": "4"}')
    (tmp_path / "t.libfm").write_text("1 0:1\n")
    result = fmlearn("train", "--hyperparameters", tmp_path / "hp.json", "--train",
                     tmp_path / "t.libfm", "--python-defaults")
    assert result.returncode == 2
    assert "--python-defaults cannot be combined with --hyperparameters" in result.stderr


# --- rows without labels ------------------------------------------------------------------------
def test_predict_reads_rows_without_labels_detected_per_file_or_declared(ml, mcmc_run, tmp_path):
    model, expected = ml["dir"] / "mcmc.fm", read_lines(ml["dir"] / "pred.txt")
    lines = ml["test"].read_text().splitlines()
    unlabelled = ["# no labels", ""] + [line.split(" ", 1)[1] for line in lines]
    (tmp_path / "rows.libfm").write_text("\n".join(unlabelled) + "\n")
    for flags in ([], ["--no-labels"]):
        result = fmlearn("predict", model, tmp_path / "rows.libfm", *flags)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == expected
    # a folder of files: each file tells whether its rows have labels
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.libfm").write_text("\n".join(lines[:100]) + "\n")
    (folder / "b.libfm").write_text("\n".join(unlabelled[102:]) + "\n")
    result = fmlearn("predict", model, folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected


@pytest.mark.parametrize("command, text, message", [
    (["predict", "--no-labels"], "5 0:1 7:1\n", "rows.libfm, line 1: the rows have labels: the "
     "first token, '5', is not a feature (leave out --no-labels)"),
    (["predict"], "0:1 7:1\n1:1 7:x\n", "rows.libfm, line 2, column 5: the value in '7:x' is "
     "not a number"),  # the place in the file as it is, without the label put before it
    (["evaluate"], "\n0:1 7:1\n", "rows.libfm, line 2: the rows have no labels: the first "
     "token, '0:1', is a feature (this command needs a label first on every line)"),
])
def test_rows_without_labels_errors(ml, mcmc_run, tmp_path, command, text, message):
    (tmp_path / "rows.libfm").write_text(text)
    result = fmlearn(command[0], ml["dir"] / "mcmc.fm", "rows.libfm", *command[1:],
                     cwd=tmp_path)
    assert result.returncode == 65, result.stderr
    assert result.stderr.strip() == f"fmlearn: error: {message}"


# --- the real executable: start-up and the README's commands ------------------------------------
# (numba, which ``import fmlearn`` loads, imports scipy's top level; not its submodules)
HEAVY = ("sklearn", "scipy.sparse", "scipy.stats", "pandas", "fmlearn.io", "fmlearn._base",
         "fmlearn.persistence", "tqdm")


@needs_script
@pytest.mark.parametrize("args, status", [
    (["predict", "--help"], 0), (["convert", "--help"], 0), (["train", "--help"], 0),
    (["predict", "missing.fm", "rows.libfm"], 2),  # ends where it would read
    (["train", "-task", "r", "-train", "missing.libfm"], 2),
])
def test_commands_start_without_the_heavy_libraries(tmp_path, args, status):
    result = run_script(*args, cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == status, result.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "fmlearn.cli.train" in imported
    heavy = [m for m in imported if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []


def readme_commands():
    """The command lines of the README's "Command line" block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text[text.index("## Command line"):], re.S)[1]
    return [shlex.split(line, comments=True)
            for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@needs_script
def test_the_readme_commands_run_through_the_real_script(tmp_path):
    """The README's block as written (but serve, and the SageMaker line's files), from a
    folder beside which ../shared/data is the real data; then predict on rows without labels
    and train with --python-defaults."""
    base, test = shared_data("ml-100k/u1.base"), shared_data("ml-100k/u1.test")
    work = tmp_path / "repo"
    work.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    results, written = {}, {}
    for command in readme_commands():
        assert command[0] == "fmlearn"
        if command[1] == "serve" or "--hyperparameters" in command:
            continue
        result = run_script(*command[1:], cwd=work)
        assert result.returncode == 0, (command, result.stderr)
        results.setdefault(command[1], []).append(result)
        written[command[1]] = (work / "pred.txt").read_text() if command[1] in (
            "train", "predict") else None
    # convert: users and items numbered in sorted order, the test rows with the same ids
    ratings = np.loadtxt(base, dtype=np.int64)
    users, items = np.unique(ratings[:, 0]), np.unique(ratings[:, 1])
    X, y = load_libsvm(work / "ml.train.libfm")
    assert y.tolist() == ratings[:, 2].tolist()
    assert X.indices.reshape(-1, 2).tolist() == np.column_stack([
        np.searchsorted(users, ratings[:, 0]),
        users.size + np.searchsorted(items, ratings[:, 1])]).tolist()
    assert (work / "groups.txt").read_text() == "0\n" * users.size + "1\n" * items.size
    vocabulary = json.loads((work / "ml.train.vocab.json").read_text())
    ids = [c["values"] for c in vocabulary["columns"]]
    test_rows = [[ids[0][str(u)]] + ([ids[1][str(i)]] if str(i) in ids[1] else [])
                 for u, i in np.loadtxt(test, dtype=np.int64)[:, :2]]
    X_test, _ = load_libsvm(work / "ml.test.libfm", n_features=X.shape[1])
    assert [X_test.indices[a:b].tolist() for a, b in zip(X_test.indptr, X_test.indptr[1:])] \
        == test_rows
    assert any(len(row) == 1 for row in test_rows)  # items the training rows lack: dropped
    # train: one line per iteration on stderr (a log), from 1, the test RMSE as itself
    train = results["train"][0]
    lines = progress(train.stderr)
    assert [line[:2] for line in lines] == [(i, 100) for i in range(1, 101)]
    assert {line[3] for line in lines} == {"test_rmse"}
    assert lines[-1][4] == metric(train.stdout, "test:rmse") < 0.95  # 0.911 measured
    assert all(line.startswith("fmlearn: ") for line in train.stderr.splitlines())
    assert written["predict"] == written["train"]
    assert json.loads(results["evaluate"][0].stdout)["rmse"] == pytest.approx(
        metric(train.stdout, "test:rmse"), abs=1e-6)
    # predict: the same rows without their labels
    (work / "new.libfm").write_text("".join(line.split(" ", 1)[1] + "\n" for line in
                                            (work / "ml.test.libfm").read_text().splitlines()))
    result = run_script("predict", "model.fm", "new.libfm", cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == written["train"]
    # --python-defaults: the estimator's defaults for the flags not given
    result = run_script("train", "-task", "r", "-train", "ml.train.libfm", "-iter", 2, "-seed", 0,
                        "--python-defaults", "--model-out", "api.fm", "-q", cwd=work)
    assert result.returncode == 0, result.stderr
    assert load(work / "api.fm").get_params() == FMRegressor(max_iter=2,
                                                             random_state=0).get_params()
