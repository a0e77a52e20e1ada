"""The command line's field models: ``train`` on FFM files (FFM by default, ``--model``),
LIBFFM's ``ffm-train`` / ``ffm-predict``, each against the Python estimator fitted with the
same parameters; the first test through the real ``fmlearn`` script, the others through the
same entry point in this process (a new process costs seconds of imports)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss

from conftest import shared_data
from test_cli import fmlearn as run_in_process  # the same command, in this process
from fmlearn import FFMClassifier, FMClassifier, FwFMClassifier, load
from fmlearn.cli.libffm import estimator_params
from fmlearn.io import load_ffm

SCRIPT = Path(sys.executable).with_name("fmlearn")  # the console script pip installed
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason=f"no console script at {SCRIPT}")


def run_script(*args, cwd):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=os.environ, timeout=600)


@pytest.fixture(scope="module")
def criteo():
    """The Criteo sample read as LIBFFM does: train, and test through its vocabulary."""
    train, test = (shared_data(f"criteo_libffm_sample/small_{n}.txt") for n in ("train", "test"))
    X, y, vocabulary = load_ffm(train)
    X_test, y_test, _ = load_ffm(test, vocabulary=vocabulary)
    return train, test, (X, np.where(y > 0, 1.0, -1.0)), (X_test, np.where(y_test > 0, 1, -1)), \
        vocabulary


def test_ffm_train_and_predict_are_the_estimator(criteo, tmp_path):
    train, test, (X, y), (X_test, y_test), vocabulary = criteo
    result = run_script("ffm-train", "-l", "1e-4", "-k", "3", "-t", "30", "-r", "0.5", "-p", test,
                        "--auto-stop", "--seed", "0", train, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "validation_logloss" in result.stderr.splitlines()[0]
    model = tmp_path / "small_train.txt.model"  # LIBFFM's default name, in the working folder
    params = estimator_params(lam=1e-4, k=3, n_iter=30, eta=0.5, auto_stop=True, seed=0)
    expected = FFMClassifier(fields=vocabulary, **params).fit(X, y, eval_set=(X_test, y_test))
    fitted = load(model)
    assert {name: fitted.get_params()[name] for name in params} == params
    assert fitted.n_iter_ == expected.n_iter_ and expected.n_iter_ < 30  # it stopped early
    np.testing.assert_array_equal(fitted.predict_proba(X_test), expected.predict_proba(X_test))

    result = run_script("ffm-predict", test, model, "out.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    proba = expected.predict_proba(X_test)[:, 1]
    written = np.loadtxt(tmp_path / "out.txt", dtype=proba.dtype)
    np.testing.assert_array_equal(written, proba)
    assert result.stdout == f"logloss = {log_loss(y_test, proba):.5f}\n"


def test_ffm_train_defaults_are_libffms(criteo, tmp_path):
    train, _, (X, y), (X_test, _), vocabulary = criteo
    result = run_in_process("ffm-train", "--no-norm", "--quiet", "--seed", "1", train, "m",
                        cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    fitted = load(tmp_path / "m")
    expected = {"reg_factors": 2e-5, "n_factors": 4, "max_iter": 15, "eta0": 0.2, "n_jobs": 1,
                "normalize": False, "learning_rate": "adagrad", "fit_intercept": False,
                "fit_linear": False, "tol": None}
    assert {name: fitted.get_params()[name] for name in expected} == expected
    by_hand = FFMClassifier(fields=vocabulary, random_state=1, **expected).fit(X, y)
    np.testing.assert_array_equal(fitted.predict_proba(X_test), by_hand.predict_proba(X_test))
    result = run_in_process("ffm-train", "-s", "2", "-k", "2", "-t", "1", "-l", "0.5", "-r", "0.3",
                        "--quiet", train, "m2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {name: load(tmp_path / "m2").get_params()[name] for name in expected} == {
        **expected, "n_jobs": 2, "n_factors": 2, "max_iter": 1, "reg_factors": 0.5,
        "eta0": 0.3, "normalize": True}
    result = run_in_process("ffm-train", "--auto-stop", train, cwd=tmp_path)
    assert result.returncode == 2 and "--auto-stop needs a validation set: give -p PATH" \
        in result.stderr


def test_train_fits_an_ffm_on_ffm_files(criteo, tmp_path):
    train, test, (X, y), (X_test, y_test), vocabulary = criteo
    flags = ["-task", "c", "-train", train, "-test", test, "-dim", "0,1,3", "-iter", "3",
             "-learn_rate", "0.05", "-regular", "0,0.01,0.001", "-seed", "0", "-q"]
    result = run_in_process("train", *flags, "--model-out", "ffm.fm", "-out", "pred.txt",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fitted = load(tmp_path / "ffm.fm")
    expected = FFMClassifier(fields=vocabulary, n_factors=3, fit_intercept=False, max_iter=3,
                             tol=None, eta0=0.05, learning_rate="constant", reg_intercept=0.0,
                             reg_linear=0.01, reg_factors=0.001, init_std=0.1,
                             random_state=0).fit(X, y)
    assert type(fitted) is FFMClassifier
    np.testing.assert_array_equal(fitted.feature_ids_, vocabulary[:, 1])
    proba = expected.predict_proba(X_test)[:, 1]
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "pred.txt", dtype=proba.dtype), proba)
    result = run_in_process("predict", "ffm.fm", test, "--proba", "-o", "again.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "again.txt").read_text() == (tmp_path / "pred.txt").read_text()

    result = run_in_process("train", *flags, "--model", "fwfm", "--model-out", "fwfm.fm",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert type(load(tmp_path / "fwfm.fm")) is FwFMClassifier
    result = run_in_process("train", *flags, "--model", "fm", "-method", "als", "--model-out",
                        "fm.fm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert type(load(tmp_path / "fm.fm")) is FMClassifier


def test_train_field_model_errors(criteo, tmp_path):
    train = criteo[0]
    result = run_in_process("train", "-task", "c", "-train", train, "-method", "mcmc", "-q",
                        cwd=tmp_path)
    assert result.returncode == 2
    assert "-method mcmc is not available with --model ffm: the field models learn by " \
           "-method sgd" in result.stderr
    (tmp_path / "rows.libfm").write_text("1 0:1 3:1\n0 1:1 2:1\n")
    result = run_in_process("train", "-task", "c", "-train", "rows.libfm", "--model", "ffm", "-q",
                        cwd=tmp_path)
    assert result.returncode == 2
    assert "--model ffm needs the fields of FFM rows (field:index:value); rows.libfm holds " \
           "libsvm rows" in result.stderr
    (tmp_path / "hp.json").write_text('{"num_factors": "2", "predictor_type": '
                                      '"binary_classifier", "feature_dim": "4"}')
    result = run_in_process("train", "--hyperparameters", "hp.json", "--train", "rows.libfm",
                        "--model", "ffm", cwd=tmp_path)
    assert result.returncode == 2
    assert "--model cannot be combined with --hyperparameters" in result.stderr


def test_a_folder_of_ffm_files_shares_one_vocabulary(tmp_path):
    from fmlearn.cli._data import read_data

    (tmp_path / "part-0").write_text("1 0:3:1 1:4:1\n0 0:5:1 1:3:2\n")
    (tmp_path / "part-1").write_text("1 2:3:1 1:4:0.5\n0 0:7:1 1:8:1\n")
    data = read_data(tmp_path, "ffm", tokens=True)
    rows = [{(f, j, v) for f, j, v in (t.split(":") for t in line.split()[1:])}
            for part in ("part-0", "part-1") for line in (tmp_path / part).read_text().split("\n")
            if line]
    X = data.X.tocsr()
    read = [{(str(data.fields[c, 0]), str(data.fields[c, 1]), f"{v:g}")
             for c, v in zip(X[r].indices, X[r].data)} for r in range(X.shape[0])]
    assert read == [{(f, j, f"{float(v):g}") for f, j, v in row} for row in rows]
    assert data.y.tolist() == [1, 0, 1, 0]


def libffm_binary(W, normalization, align):
    """The bytes LIBFFM >= 1.2's ffm_save_model writes for W of shape (n, m, k): blocks of
    ``align`` weights and ``align`` AdaGrad sums (here 1), k padded to a multiple of align."""
    n, m, k = W.shape
    k_aligned = -(-k // align) * align
    padded = np.zeros((n, m, k_aligned), dtype=np.float32)
    padded[:, :, :k] = W
    blocks = np.ones((n, m, k_aligned // align, 2, align), dtype=np.float32)
    blocks[:, :, :, 0, :] = padded.reshape(n, m, k_aligned // align, align)
    header = np.array([n, m, k], dtype="<i4").tobytes() + bytes([normalization])
    return header + blocks.astype("<f4").tobytes()


def libffm_text(W, normalization):
    """LIBFFM 1.0-1.1's text model file."""
    n, m, k = W.shape
    lines = [f"n {n}", f"m {m}", f"k {k}", f"normalization {int(normalization)}"]
    lines += [f"w{j},{f} " + " ".join(repr(float(v)) for v in W[j, f]) + " "
              for j in range(n) for f in range(m)]
    return "\n".join(lines) + "\n"


def test_ffm_predict_scores_libffm_models_as_libffm(criteo, tmp_path):
    from test_ffm_tokens import libffm_scores, tokens

    from fmlearn.io import DataFormatError, load_libffm_model

    train, test = criteo[:2]
    rows, labels = tokens(test)
    n = 9000  # ids of the test file beyond the model are skipped, as LIBFFM does
    W = np.random.default_rng(3).normal(0, 0.5, (n, 17, 3)).astype(np.float32)
    kept = [[(f, j, v) for f, j, v in row if j < n and f < 17] for row in rows]
    expected = libffm_scores(kept, W.astype(np.float64), normalize=False)
    r = np.array([sum(v * v for *_, v in row) for row in rows])
    (tmp_path / "libffm.model").write_bytes(libffm_binary(W, True, align=4))
    result = run_in_process("ffm-predict", test, "libffm.model", "out.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    proba = np.loadtxt(tmp_path / "out.txt")
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-expected / r)), rtol=1e-5)
    assert result.stdout == f"logloss = {log_loss(labels > 0, proba):.5f}\n"

    X, _, vocabulary = load_ffm(test)
    (tmp_path / "one.model").write_bytes(libffm_binary(W, False, align=1))
    (tmp_path / "text.model").write_text(libffm_text(W, False))
    for path, align in (("one.model", 1), ("text.model", 4)):
        model = load_libffm_model(tmp_path / path, vocabulary, align=align)
        np.testing.assert_allclose(model.predict(X), expected, rtol=1e-4, atol=1e-5)
    (tmp_path / "cut.model").write_bytes(libffm_binary(W, False, align=4)[:-4])
    with pytest.raises(DataFormatError, match=r"cut.model: not a LIBFFM model: its header "
                                              r"says n=9000, m=17, k=3, which take"):
        load_libffm_model(tmp_path / "cut.model", vocabulary)


def test_predict_reads_ffm_rows_through_an_fwfm_models_vocabulary(criteo, tmp_path):
    from fmlearn import save

    train, test, (X, y), (X_test, _), vocabulary = criteo
    fwfm = FwFMClassifier(fields=vocabulary, n_factors=2, max_iter=2, tol=None,
                          random_state=0).fit(X, y)
    save(fwfm, tmp_path / "fwfm.fm")
    result = run_in_process("predict", "fwfm.fm", test, "--proba", "-o", "p.txt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    proba = fwfm.predict_proba(X_test)[:, 1]
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "p.txt", dtype=proba.dtype), proba)
