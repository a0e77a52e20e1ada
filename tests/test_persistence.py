"""Model files: round trips, exact predictions, warm starts, atomic writes, every way to fail."""
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import planted_fm_data
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from fmlearn import FMClassifier, FMRegressor
from fmlearn import _files, persistence
from fmlearn import _model_archive as persistence_checks
from fmlearn.persistence import ModelFileError, load, read_header, save

COMBOS = [(cls, solver) for cls in (FMRegressor, FMClassifier)
          for solver in ("sgd", "sgda", "als", "mcmc")]
IDS = [f"{cls.__name__}-{solver}" for cls, solver in COMBOS]


@pytest.fixture(scope="module")
def data():
    X, y = planted_fm_data(300, n_users=20, n_items=30, seed=3)
    labels = np.where(y > np.median(y), "yes", "no")
    return X, y, labels


def fit(cls, solver, data, max_iter=10, labels=None, **params):
    X, y, str_labels = data
    target = y if cls is FMRegressor else (str_labels if labels is None else labels)
    est = cls(n_factors=3, solver=solver, max_iter=max_iter, tol=None, init_std=0.1,
              random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X[:250], target[:250], eval_set=(X[250:], target[250:]))


def assert_bitwise(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def outputs(est, X):
    out = {"predict": est.predict(X)}
    if isinstance(est, FMClassifier):
        out["predict_proba"] = est.predict_proba(X)
        out["decision_function"] = est.decision_function(X)
    return out


def assert_same_outputs(a, b, X):
    out_a, out_b = outputs(a, X), outputs(b, X)
    for name in out_a:
        assert_bitwise(out_a[name], out_b[name])


def rewrite(src, dst, header=None, drop=(), replace=None):
    """Copy a model file, changing its header, dropping or replacing members."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if info.filename == "header.json" and header is not None:
                data = json.dumps(header(json.loads(data))).encode()
            zout.writestr(info.filename, replace.get(info.filename, data))
    return dst


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("models") / "reg.fm"
    save(fit(FMRegressor, "sgd", data, max_iter=3), path)
    return path


# --- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, solver", COMBOS, ids=IDS)
def test_round_trip_is_exact(cls, solver, data, tmp_path):
    est = fit(cls, solver, data)
    loaded = load(save(est, tmp_path / "model.fm"))
    assert type(loaded) is cls
    assert_same_outputs(est, loaded, data[0])
    assert loaded.get_params() == est.get_params()
    assert sorted(vars(loaded)) == sorted(vars(est)), \
        "a fitted attribute is not saved: add it to persistence._ATTRIBUTES"
    for name in ("n_iter_", "t_", "loss_curve_", "validation_scores_", "best_validation_score_",
                 "n_features_in_") + (("_burn_in",) if solver == "mcmc" else ()):
        assert getattr(loaded, name) == getattr(est, name), name
    assert loaded.validation_scores_ is not None and len(loaded.loss_curve_) == 10
    for name in ("intercept_", "coef_", "factors_"):
        assert_bitwise(getattr(loaded, name), getattr(est, name))
    if cls is FMRegressor:
        assert loaded.target_range_ == est.target_range_
        assert isinstance(loaded.target_range_, tuple)
    else:
        assert_bitwise(loaded.classes_, est.classes_)
    if solver == "mcmc":
        assert loaded.model_.n_samples == est.model_.n_samples == 9
        assert loaded.model_.link == est.model_.link
        for name, trace in est.hyperparameter_trace_.items():
            assert_bitwise(loaded.hyperparameter_trace_[name], trace)
    if solver == "sgda":
        for name, penalties in est.regularization_.items():
            assert_bitwise(loaded.regularization_[name], penalties)


@pytest.mark.parametrize("labels", [np.array([3, 7]), np.array(["no", "yes"]),
                                    np.array([False, True]), np.array([-1.0, 1.0]),
                                    np.array(["a", "bb"], dtype=object)],
                         ids=["int", "str", "bool", "float", "object"])
def test_classes_keep_their_dtype(labels, data, tmp_path):
    y = labels[(data[1] > np.median(data[1])).astype(int)]
    clf = fit(FMClassifier, "sgd", data, max_iter=2, labels=y)
    loaded = load(save(clf, tmp_path / "clf.fm"))
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.classes_.tolist() == clf.classes_.tolist()
    assert [type(v) for v in loaded.classes_.tolist()] == [type(v) for v in labels.tolist()]
    predicted = loaded.predict(data[0])
    assert predicted.dtype == clf.predict(data[0]).dtype
    assert predicted.tolist() == clf.predict(data[0]).tolist()


def test_feature_names_are_restored(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.random((100, 3)), columns=["age", "price", "score"])
    y = X["age"] * X["price"]
    reg = FMRegressor(n_factors=2, max_iter=3, random_state=0).fit(X, y)
    loaded = load(save(reg, tmp_path / "named.fm"))
    assert loaded.feature_names_in_.tolist() == ["age", "price", "score"]
    assert loaded.feature_names_in_.dtype == reg.feature_names_in_.dtype
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_bitwise(loaded.predict(X), reg.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(X[["price", "age", "score"]])


def test_mcmc_samples_are_written_once_and_not_shared(data, tmp_path):
    reg = fit(FMRegressor, "mcmc", data)
    path = save(reg, tmp_path / "mcmc.fm")
    arrays = read_header(path)["arrays"]
    assert arrays["solver_state.samples.coefs"] == {"same_as": "model.coefs"}
    assert arrays["solver_state.samples.factors"] == {"same_as": "model.factors_samples"}
    loaded = load(path)
    assert not np.shares_memory(loaded._solver_state.samples[0].coef, loaded.model_.coefs)


def test_random_state_instance_is_saved_as_none(data, tmp_path):
    reg = fit(FMRegressor, "sgd", data, max_iter=2).set_params(
        random_state=np.random.RandomState(0))
    with pytest.warns(UserWarning, match="RandomState"):
        loaded = load(save(reg, tmp_path / "rs.fm"))
    assert loaded.random_state is None
    assert_same_outputs(reg, loaded, data[0])


def test_compressed_files_round_trip(data, tmp_path):
    clf = fit(FMClassifier, "mcmc", data)
    plain, packed = save(clf, tmp_path / "a.fm"), save(clf, tmp_path / "b.fm", compress=True)
    assert os.path.getsize(packed) < os.path.getsize(plain)
    assert_same_outputs(clf, load(packed), data[0])


def test_files_are_deterministic_and_plain_npz(data, tmp_path):
    reg = fit(FMRegressor, "als", data, max_iter=2)
    a, b = save(reg, tmp_path / "a.fm"), save(reg, tmp_path / "b.fm")
    assert open(a, "rb").read() == open(b, "rb").read()
    with np.load(a, allow_pickle=False) as npz:
        assert npz.files[0] == "header.json"
        assert json.loads(npz["header.json"])["format"] == "fmlearn-model"
        assert_bitwise(npz["model.factors"], reg.factors_)


# --- warm start ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, solver", COMBOS, ids=IDS)
def test_warm_start_after_load_continues_like_the_original(cls, solver, data, tmp_path):
    X, y, labels = data
    target = y if cls is FMRegressor else labels
    est = fit(cls, solver, data)
    loaded = load(save(est, tmp_path / "model.fm"))
    for model in (est, loaded):
        model.set_params(warm_start=True, max_iter=10).fit(X, target)
    assert_same_outputs(est, loaded, X)
    assert loaded.loss_curve_ == est.loss_curve_
    assert loaded.t_ == est.t_
    if solver == "mcmc":
        assert loaded.model_.n_samples == est.model_.n_samples == 19
        assert_bitwise(loaded.hyperparameter_trace_["lam_v"], est.hyperparameter_trace_["lam_v"])
    # The continuation really did continue: a fresh fit of 10 epochs differs.
    fresh = fit(cls, solver, data)
    assert not np.array_equal(outputs(fresh, X)["predict" if cls is FMRegressor
                                                else "decision_function"],
                              outputs(loaded, X)["predict" if cls is FMRegressor
                                                 else "decision_function"])


# --- safety --------------------------------------------------------------------------------------
def test_load_and_read_header_never_allow_pickle(model_file, monkeypatch):
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    load(model_file)
    read_header(model_file)
    assert calls == [False, False]


def test_object_array_member_is_rejected(model_file, tmp_path):
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}] * 4, dtype=object), allow_pickle=True)
    bad = rewrite(model_file, tmp_path / "obj.fm", replace={"model.coef.npy": buffer.getvalue()})
    with pytest.raises(ModelFileError, match="'model.coef' holds Python objects"):
        load(bad)


def test_read_header_reads_no_array(model_file, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("read_header read an array")

    monkeypatch.setattr(np.lib.format, "read_array", fail)
    with pytest.raises(ModelFileError):  # the patch does stop array reads
        load(model_file)
    header = read_header(model_file)
    assert header["format"] == "fmlearn-model" and header["format_version"] == 1
    assert header["estimator"] == "FMRegressor" and header["model_kind"] == "fm"
    assert header["dtype"] == "float32" and header["n_iter_"] == 3
    assert header["n_features_in_"] == 51 and header["classes_"] is None
    assert header["params"]["solver"] == "sgd" and header["params"]["random_state"] == 0
    assert header["arrays"]["model.factors"] == {"dtype": "<f4", "shape": [51, 3]}
    from fmlearn import __version__
    assert header["fmlearn_version"] == __version__


def test_header_holds_classes_as_json(data, tmp_path):
    labels = (data[1] > np.median(data[1])).astype(np.int64) * 5
    clf = fit(FMClassifier, "als", data, max_iter=2, labels=labels)
    header = read_header(save(clf, tmp_path / "c.fm"))
    assert header["classes_"] == [0, 5] and header["classes_dtype"] == "<i8"


# --- atomic writes -------------------------------------------------------------------------------
def fail_after(n_calls, real):
    count = [0]

    def write_array(*args, **kwargs):
        count[0] += 1
        if count[0] > n_calls:
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    return write_array


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(data, tmp_path, monkeypatch):
    path = tmp_path / "model.fm"
    save(fit(FMRegressor, "sgd", data, max_iter=2), path)
    before = path.read_bytes()
    other = fit(FMClassifier, "mcmc", data)
    monkeypatch.setattr(np.lib.format, "write_array", fail_after(2, np.lib.format.write_array))
    with pytest.raises(OSError, match="disk full"):
        save(other, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.fm"]
    assert load(path).n_iter_ == 2


def test_failed_rename_leaves_no_temporary(data, tmp_path, monkeypatch):
    def no_replace(src, dst):
        raise PermissionError("simulated")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(PermissionError):
        save(fit(FMRegressor, "sgd", data, max_iter=2), tmp_path / "model.fm")
    assert os.listdir(tmp_path) == []


def test_temporary_files_name_their_process(data, tmp_path, monkeypatch):
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(src),
                                                         real_replace(src, dst)))
    save(fit(FMRegressor, "sgd", data, max_iter=2), tmp_path / "model.fm")
    assert re.fullmatch(rf"\.model\.fm\.{os.getpid()}-{_files._HOST}\.[0-9a-f]{{12}}\.tmp",
                        os.path.basename(renamed[0]))


KILLED_SAVE = """
import os, sys, time
import numpy as np
from fmlearn import FMRegressor, save
reg = FMRegressor(n_factors=2, max_iter=1, random_state=0).fit(np.eye(3), [1.0, 2.0, 3.0])
def stall(*args, **kwargs):
    print("writing", flush=True)
    time.sleep(600)
np.lib.format.write_array = stall
save(reg, sys.argv[1])
"""


def test_a_killed_saves_temporary_file_is_removed_by_the_next_save(data, tmp_path):
    """A save killed while writing leaves its temporary file; the next save of the same
    target removes it, and leaves the files of live writers, other machines and other
    targets alone."""
    path = tmp_path / "model.fm"
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait()
    left = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".model.fm.")
    others = [f".model.fm.{os.getpid()}-{_files._HOST}.0123456789ab.tmp",  # alive: this process
              f".model.fm.{child.pid}-{'0' * 8 if _files._HOST != '0' * 8 else '1' * 8}"
              ".0123456789ab.tmp",  # another machine's
              f".other.fm.{child.pid}-{_files._HOST}.0123456789ab.tmp"]  # another target's
    for name in others:
        (tmp_path / name).write_bytes(b"partial")
    save(fit(FMRegressor, "sgd", data, max_iter=2), path)
    assert sorted(os.listdir(tmp_path)) == sorted(others + ["model.fm"])
    assert load(path).n_iter_ == 2


def test_unfitted_or_foreign_estimators_are_not_saved(tmp_path):
    with pytest.raises(NotFittedError):
        save(FMRegressor(), tmp_path / "a.fm")
    with pytest.raises(TypeError, match="LinearRegression"):
        save(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), tmp_path / "b.fm")
    assert os.listdir(tmp_path) == []


def test_callable_scoring_is_refused(data, tmp_path):
    reg = fit(FMRegressor, "sgd", data, max_iter=2).set_params(scoring=lambda est, X, y: 0.0)
    with pytest.raises(ModelFileError, match="cannot save scoring=.*callable.*scorer name"):
        save(reg, tmp_path / "s.fm")
    assert os.listdir(tmp_path) == []


# --- files that are no (good) model ---------------------------------------------------------------
def in_message(path, problem):
    return f"^{re.escape(str(path))}: .*{problem}"


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.99])
def test_truncated_file(model_file, tmp_path, keep):
    raw = model_file.read_bytes()
    cut = tmp_path / "cut.fm"
    cut.write_bytes(raw[:int(len(raw) * keep)])
    for reader in (load, read_header):
        with pytest.raises(ModelFileError, match=in_message(cut, "truncated or corrupt")):
            reader(cut)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.fm"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match=in_message(empty, "empty")):
        load(empty)


def test_corrupt_array_bytes(model_file, tmp_path):
    raw = bytearray(model_file.read_bytes())
    with zipfile.ZipFile(model_file) as archive:
        info = archive.getinfo("model.factors.npy")
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    last = info.header_offset + 30 + name_len + extra_len + info.compress_size - 1
    raw[last] ^= 0xFF
    bad = tmp_path / "flipped.fm"
    bad.write_bytes(bytes(raw))
    read_header(bad)  # the header is intact
    with pytest.raises(ModelFileError, match=in_message(bad, "'model.factors' is truncated or "
                                                              "corrupt.*CRC")):
        load(bad)


def test_not_model_files(data, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps(fit(FMRegressor, "sgd", data, max_iter=1)))
    npz = tmp_path / "arrays.npz"
    np.savez(npz, coef=np.ones(3))
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    cases = {text: "not a zip archive", pickled: "looks like a pickle", npz: "no header.json",
             npy: "single NumPy array"}
    for path, problem in cases.items():
        for reader in (load, read_header):
            with pytest.raises(ModelFileError, match=in_message(path, problem)):
                reader(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing.fm")


def test_missing_array(model_file, tmp_path):
    bad = rewrite(model_file, tmp_path / "partial.fm", drop={"model.coef.npy"})
    with pytest.raises(ModelFileError, match=in_message(bad, "missing array 'model.coef'")):
        load(bad)


def test_array_that_differs_from_its_header(model_file, tmp_path):
    import io
    buffer = io.BytesIO()
    np.save(buffer, np.ones(7, dtype=np.float32))
    bad = rewrite(model_file, tmp_path / "shape.fm", replace={"model.coef.npy": buffer.getvalue()})
    with pytest.raises(ModelFileError, match=in_message(bad, "'model.coef' has dtype <f4 and "
                                                              r"shape \[7\]")):
        load(bad)


def test_newer_format_version_is_refused(model_file, tmp_path):
    def bump(header):
        return {**header, "format_version": 2, "fmlearn_version": "9.0.0"}

    newer = rewrite(model_file, tmp_path / "newer.fm", header=bump)
    message = in_message(newer, "written by fmlearn 9.0.0 with format version 2; this fmlearn "
                                r"\(.*\) reads up to 1; upgrade fmlearn")
    for reader in (load, read_header):
        with pytest.raises(ModelFileError, match=message):
            reader(newer)


@pytest.mark.parametrize("change, problem", [
    (lambda h: {**h, "format": "other"}, "does not declare format 'fmlearn-model'"),
    (lambda h: {**h, "format_version": "1"}, "invalid format_version '1'"),
    (lambda h: {**h, "estimator": "FMForest"}, "unknown estimator 'FMForest'.*upgrade"),
    (lambda h: {**h, "model": {**h["model"], "kind": "fm2049"}}, "unknown model kind 'fm2049'"),
    (lambda h: {**h, "attributes": {"predict": 1}}, "malformed header.*'predict'"),
    (lambda h: {k: v for k, v in h.items() if k != "params"}, "malformed header"),
    (lambda h: {**h, "n_features_in_": 7}, r"'model.coef' has shape \[51\]; expected "
                                           r"\[n_features=7\]"),
])
def test_malformed_headers(model_file, tmp_path, change, problem):
    bad = rewrite(model_file, tmp_path / "bad.fm", header=change)
    with pytest.raises(ModelFileError, match=in_message(bad, problem)):
        load(bad)


@pytest.mark.parametrize("version", [0, -1, True, 1.0, None, "1"])
def test_unsupported_format_versions_are_refused(model_file, tmp_path, version):
    """Only format version 1 exists: 0 (a file from no fmlearn) must not load as 1."""
    bad = rewrite(model_file, tmp_path / "v.fm", header=lambda h: {**h, "format_version": version})
    message = in_message(bad, f"invalid format_version {re.escape(repr(version))}; this fmlearn "
                              "reads format version 1")
    for reader in (load, read_header):
        with pytest.raises(ModelFileError, match=message):
            reader(bad)


def peak_bytes(call):
    """The peak of memory traced while ``call()`` runs (numpy reports its arrays)."""
    import tracemalloc
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_huge_header_is_refused_before_it_is_read(model_file, tmp_path):
    header = zipfile.ZipFile(model_file).read("header.json")
    padded = header + b" " * (persistence_checks.MAX_HEADER_BYTES + 1 - len(header))
    bad = tmp_path / "big_header.fm"
    with zipfile.ZipFile(model_file) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            payload = padded if info.filename == "header.json" else zin.read(info)
            zout.writestr(info.filename, payload, compress_type=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(bad) < 2**20  # 64 MiB of spaces deflate to little
    for reader in (load, read_header):
        def read():
            with pytest.raises(ModelFileError, match=in_message(
                    bad, "header.json claims 67108865 bytes; a model header has at most "
                         "67108864")):
                reader(bad)
        assert peak_bytes(read) < 8 * 2**20


def test_a_huge_claimed_array_is_refused_before_it_is_allocated(model_file, tmp_path):
    """A member whose .npy header (and the header's table) claims 2**30 floats: numpy would
    allocate 4 GiB before finding the data missing."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from fuzz_targets.model_files import with_npy_shape
    bad = tmp_path / "huge.fm"
    bad.write_bytes(with_npy_shape(model_file.read_bytes(), "model.coef", [2**30]))

    def read():
        with pytest.raises(ModelFileError, match=in_message(
                bad, r"array 'model.coef' declares shape \[1073741824\] of <f4 \(4294967424 "
                     r"bytes with its header\) but its member holds 332 bytes")):
            load(bad)
    assert peak_bytes(read) < 8 * 2**20


def patch_sizes(raw, filename, size):
    """A zip archive whose directory says member ``filename`` expands to ``size`` bytes."""
    raw = bytearray(raw)
    name = filename.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := raw.find(signature, start)) >= 0:
            name_at = start + (30 if signature == b"PK\x03\x04" else 46)
            if raw[name_at:name_at + len(name)] == name:
                raw[start + offset:start + offset + 4] = struct.pack("<I", size)
            start += 4
    return bytes(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_a_member_claiming_more_than_its_bytes_hold_is_refused(data, tmp_path, compress):
    path = save(fit(FMRegressor, "sgd", data, max_iter=2), tmp_path / "m.fm", compress=compress)
    with zipfile.ZipFile(path) as archive:
        stored = archive.getinfo("model.factors.npy").compress_size
    claim = 2000 * stored + 4096
    bad = tmp_path / "claims.fm"
    bad.write_bytes(patch_sizes(open(path, "rb").read(), "model.factors.npy", claim))
    with pytest.raises(ModelFileError, match=in_message(
            bad, f"array 'model.factors' claims {claim} bytes, "
                 f"more than its {stored} stored bytes can hold")):
        load(bad)


def test_members_of_other_compression_methods_are_refused(model_file, tmp_path):
    bad = tmp_path / "bz.fm"
    with zipfile.ZipFile(model_file) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            method = zipfile.ZIP_BZIP2 if info.filename == "model.coef.npy" else zipfile.ZIP_STORED
            zout.writestr(info.filename, zin.read(info), compress_type=method)
    with pytest.raises(ModelFileError, match=in_message(
            bad, "array 'model.coef' uses zip compression method 12; fmlearn writes stored or "
                 "deflated members only")):
        load(bad)


def test_save_refuses_an_estimator_its_load_would_refuse(data, tmp_path):
    reg = fit(FMRegressor, "sgd", data, max_iter=2).set_params(n_factors=5)
    with pytest.raises(ModelFileError, match=in_message(
            tmp_path / "m.fm", r"cannot save an estimator that would not load back: array "
                               r"'model.factors' has shape \[51, 3\]; expected \[n_features=51, "
                               r"n_factors=5\]")):
        save(reg, tmp_path / "m.fm")
    reg.set_params(n_factors=3).model_.coef[4] = np.nan
    with pytest.raises(ModelFileError, match="'model.coef' holds nan at index 4"):
        save(reg, tmp_path / "m.fm")
    assert os.listdir(tmp_path) == []


def test_header_that_is_not_json(model_file, tmp_path):
    bad = rewrite(model_file, tmp_path / "garbled.fm", replace={"header.json": b"{not json"})
    with pytest.raises(ModelFileError, match=in_message(bad, "header is truncated or corrupt")):
        read_header(bad)


# --- the registry --------------------------------------------------------------------------------
@dataclass
class HigherOrderToy:
    """A model of a kind still to come: one factor array per order, 3-D field-aware factors."""

    intercept: float
    factors: list
    field_factors: np.ndarray
    fields: np.ndarray


def test_a_new_kind_is_one_registry_entry(monkeypatch):
    monkeypatch.setattr(persistence, "_KINDS", dict(persistence._KINDS))
    monkeypatch.setattr(persistence, "_KIND_OF_CLASS", dict(persistence._KIND_OF_CLASS))
    persistence._register("higher_order_toy", HigherOrderToy)
    rng = np.random.default_rng(0)
    toy = HigherOrderToy(0.5, [rng.random((4, 2)), rng.random((4, 3))], rng.random((4, 2, 3)),
                         np.array([0, 0, 1, 1]))
    encoder = persistence._Encoder()
    node = json.loads(json.dumps(encoder.node(toy, "model")))
    assert sorted(encoder.arrays) == ["model.factors.0", "model.factors.1",
                                      "model.field_factors", "model.fields"]
    table, arrays = persistence._array_table(encoder.arrays)
    back = persistence._Decoder("toy.fm", arrays, table).value(node)
    assert back.intercept == 0.5 and len(back.factors) == 2
    assert_bitwise(back.factors[1], toy.factors[1])
    assert_bitwise(back.field_factors, toy.field_factors)
    assert_bitwise(back.fields, toy.fields)
