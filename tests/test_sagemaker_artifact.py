"""SageMaker FM model.tar.gz in and out, against files written and read by MXNet 1.9.1.

The fixtures under tests/fixtures/mxnet/ were made by tools/mxnet/artifacts.py with real MXNet
(``make``: two models, one per parameter layout, and MXNet's predictions; ``check``: what MXNet
read from the files :func:`write_round_trips` writes).
"""
import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmlearn import FMClassifier, FMRegressor, load, save
from fmlearn.cli import main
from fmlearn.persistence import ModelFileError
from fmlearn.sagemaker import load_model, read_header, save_model
from fmlearn.sagemaker.artifact import LAYOUTS
from fmlearn.sagemaker.ndarray import read_ndarrays, write_ndarrays

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mxnet"
RECORD = json.loads((FIXTURES / "mxnet_predictions.json").read_text())
ROWS = np.asarray(RECORD["rows"], dtype=np.float64)
NAMES = sorted(RECORD["fixtures"])
TRAINED = "fmlearn_trained.tar.gz"


def train_fixture(path):
    """``fmlearn_trained.tar.gz``: a classifier trained by fmlearn on 7 features, as saved."""
    rng = np.random.default_rng(3)
    X = rng.random((400, 7))
    y = (X[:, 0] * X[:, 1] - X[:, 2] * X[:, 3] > 0).astype(int)
    clf = FMClassifier(n_factors=3, max_iter=20, tol=None, random_state=0, n_jobs=1).fit(X, y)
    return save_model(clf, path)


def write_round_trips(folder):
    """Each MXNet fixture loaded by fmlearn and saved again in each layout, and the
    fmlearn-trained fixture saved again; the files ``tools/mxnet/artifacts.py check`` reads
    with MXNet."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {f"{name}_as_{layout}.tar.gz": save_model(
        load_model(FIXTURES / f"{name}.tar.gz"), folder / f"{name}_as_{layout}.tar.gz",
        layout=layout) for name in NAMES for layout in LAYOUTS}
    written[TRAINED] = save_model(load_model(FIXTURES / TRAINED), folder / TRAINED)
    return written


def scores(estimator, X):
    """What SageMaker's FM answers as ``score``: the prediction or the probability of 1."""
    if isinstance(estimator, FMClassifier):
        return estimator.predict_proba(X)[:, 1]
    return estimator.predict(X)


def brute_force(estimator, X):
    """The FM formula over every pair, in float64."""
    w0 = float(estimator.intercept_)
    w = estimator.coef_.astype(np.float64)
    V = estimator.factors_.astype(np.float64)
    out = []
    for x in X:
        pairs = sum(V[i] @ V[j] * x[i] * x[j] for i in range(len(x)) for j in range(i + 1, len(x)))
        out.append(w0 + w @ x + pairs)
    out = np.array(out)
    return 1 / (1 + np.exp(-out)) if isinstance(estimator, FMClassifier) else out


def params_bytes(path):
    """``params`` of a model.tar.gz."""
    with tarfile.open(path) as tar:
        inner = tar.extractfile("model_algo-1").read()
    with zipfile.ZipFile(io.BytesIO(inner)) as archive:
        return archive.read("params"), archive.read("symbol.json")


def tarball(path, members, inner=None, **zip_members):
    """A model.tar.gz with tar ``members`` (name -> bytes, or None for model_algo-1, a zip of
    ``zip_members``, default those of the regressor fixture)."""
    if inner is None:
        params, symbol = params_bytes(FIXTURES / "w_regressor.tar.gz")
        zip_members = zip_members or {"symbol.json": symbol, "params": params}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in zip_members.items():
                archive.writestr(name, data)
        inner = buffer.getvalue()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            data = inner if data is None else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --- reading MXNet's files -----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_fixtures_predict_as_mxnet_and_the_formula(name):
    fixture = RECORD["fixtures"][name]
    estimator = load_model(FIXTURES / fixture["file"])
    expected_class = FMClassifier if "classifier" in name else FMRegressor
    assert type(estimator) is expected_class
    assert (estimator.n_features_in_, estimator.n_factors) == (fixture["feature_dim"],
                                                               fixture["num_factors"])
    ours = scores(estimator, ROWS)
    np.testing.assert_allclose(ours, fixture["predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours, brute_force(estimator, ROWS), rtol=1e-5, atol=1e-6)


def test_layouts_map_to_the_same_model():
    """The Linear_Plus_Bias layout's (1, N) weights and (k, N) factors are transposed."""
    params, _ = params_bytes(FIXTURES / "linear_plus_bias_classifier.tar.gz")
    arrays = read_ndarrays(params)
    clf = load_model(FIXTURES / "linear_plus_bias_classifier.tar.gz")
    np.testing.assert_array_equal(clf.coef_, arrays["arg:Linear_Plus_Bias_weight"][0])
    np.testing.assert_array_equal(clf.factors_, arrays["arg:v"].T)
    assert clf.intercept_ == arrays["arg:Linear_Plus_Bias_bias"][0]
    np.testing.assert_array_equal(clf.classes_, [0, 1])


def test_hyperparameters_give_the_predictor_type_and_check_the_shapes(tmp_path):
    path = FIXTURES / "linear_plus_bias_classifier.tar.gz"
    reg = load_model(path, {"predictor_type": "regressor", "feature_dim": "7",
                            "num_factors": "3", "epochs": "5"})
    proba = np.asarray(RECORD["fixtures"]["linear_plus_bias_classifier"]["predictions"])
    assert type(reg) is FMRegressor
    np.testing.assert_allclose(reg.predict(ROWS), np.log(proba / (1 - proba)), rtol=1e-4)
    with pytest.raises(ModelFileError, match="Linear_Plus_Bias_weight has 7 weights; "
                                             "feature_dim is 8"):
        load_model(path, {"feature_dim": 8})
    with pytest.raises(ModelFileError, match=r"v has shape \(3, 7\); expected .* num_factors=4"):
        load_model(path, {"num_factors": 4})
    with pytest.raises(ModelFileError, match="hyperparameter feature_dim='x'"):
        load_model(path, {"feature_dim": "x"})
    with pytest.raises(ModelFileError, match="predictor_type 'multiclass'"):
        load_model(path, {"predictor_type": "multiclass"})
    params, _ = params_bytes(path)
    broken = tarball(tmp_path / "m.tar.gz", {"model_algo-1": None},
                     **{"symbol.json": b"[1]", "params": params})
    with pytest.raises(ModelFileError, match="symbol.json is not an MXNet symbol"):
        load_model(broken, {"predictor_type": "regressor"})  # checked even when not needed


def test_v_orientation_follows_feature_dim(tmp_path):
    """A w0_weight model whose v is stored (k, N) is read the right way round."""
    rng = np.random.default_rng(1)
    params = {"arg:w0_weight": np.ones(1, np.float32),
              "arg:w1_weight": rng.normal(size=(5, 1)).astype(np.float32),
              "arg:v": rng.normal(size=(2, 5)).astype(np.float32)}
    _, symbol = params_bytes(FIXTURES / "w_regressor.tar.gz")
    path = tarball(tmp_path / "m.tar.gz", {"model_algo-1": None},
                   **{"symbol.json": symbol, "params": write_ndarrays(params)})
    reg = load_model(path)
    np.testing.assert_array_equal(reg.factors_, params["arg:v"].T)
    np.testing.assert_allclose(reg.predict(np.eye(5)), brute_force(reg, np.eye(5)), rtol=1e-5)


# --- writing for MXNet ---------------------------------------------------------------------------
def test_mxnet_read_what_fmlearn_writes(tmp_path):
    """tools/mxnet/artifacts.py check loaded these very bytes with mx.nd.load / mx.sym.load and
    predicted the fixtures' rows as MXNet predicted them from the originals."""
    checked = json.loads((FIXTURES / "fmlearn_written.json").read_text())["files"]
    written = write_round_trips(tmp_path)
    assert sorted(checked) == sorted(written)
    for name, path in written.items():
        record = checked[name]
        tar = gzip.decompress(Path(path).read_bytes())  # deflate's bytes vary with zlib
        assert hashlib.sha256(tar).hexdigest() == record["tar_sha256"], name
        if name == TRAINED:  # trained by fmlearn: MXNet predicts as fmlearn does
            np.testing.assert_allclose(scores(load_model(path), ROWS), record["predictions"],
                                       rtol=1e-5, atol=1e-6)
            continue
        source, layout = name.removesuffix(".tar.gz").split("_as_")
        assert record["names"] == sorted(f"arg:{p}" for p in LAYOUTS[layout])
        assert set(record["dtypes"].values()) == {"float32"}
        mxnet = RECORD["fixtures"][source]["predictions"]
        np.testing.assert_allclose(record["predictions"], mxnet, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scores(load_model(path), ROWS), record["predictions"],
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("cls, solver", [(FMRegressor, "sgd"), (FMClassifier, "sgd"),
                                         (FMClassifier, "adam")])
def test_round_trip_of_a_fitted_estimator(tmp_path, layout, cls, solver):
    rng = np.random.default_rng(0)
    X = rng.random((150, 6))
    y = X[:, 0] * X[:, 1] + X[:, 2]
    estimator = cls(n_factors=3, max_iter=4, random_state=0, solver=solver)
    if cls is FMRegressor:
        estimator.set_params(clip_predictions=False)
    estimator.fit(X, y if cls is FMRegressor else y > np.median(y))
    path = save_model(estimator, tmp_path / "model.tar.gz", layout=layout)
    loaded = load_model(path)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.factors_, estimator.factors_.astype(np.float32))
    np.testing.assert_allclose(scores(loaded, X), scores(estimator, X), rtol=1e-5, atol=1e-6)
    # an ordinary fitted estimator: it saves to an fmlearn model file and trains on
    again = load(save(loaded, tmp_path / "model.fm"))
    np.testing.assert_array_equal(scores(again, X), scores(loaded, X))
    loaded.set_params(warm_start=True, max_iter=1).fit(X, y if cls is FMRegressor else y > 1)
    # the bytes depend only on the parameters
    first = Path(path).read_bytes()
    again = save_model(estimator, tmp_path / "again.tar.gz", layout=layout)
    assert Path(again).read_bytes() == first


def test_save_model_refuses_what_sagemaker_cannot_hold(tmp_path):
    X = np.eye(4)
    y = [0, 1, 0, 1]
    mcmc = FMClassifier(n_factors=2, solver="mcmc", max_iter=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="one set of parameters; got FMClassifier holding a "
                                         "FMSamples"):
        save_model(mcmc, tmp_path / "m.tar.gz")
    als = FMClassifier(n_factors=2, solver="als", max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="solver='als' classifies with the probit link"):
        save_model(als, tmp_path / "m.tar.gz")
    reg = FMRegressor(n_factors=2, max_iter=2).fit(X, [1.0, 2, 3, 4])
    with pytest.raises(ValueError, match="layout='w1'; expected one of"):
        save_model(reg, tmp_path / "m.tar.gz", layout="w1")
    assert not list(tmp_path.iterdir())


def fmlearn(*args):
    """``fmlearn ARGS`` in this process: its exit status and stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit:
        main(list(args))
    return exit.value.code, out.getvalue()


def test_command_line_takes_the_tarball(tmp_path):
    path = str(FIXTURES / "linear_plus_bias_classifier.tar.gz")
    status, out = fmlearn("info", path)
    assert status == 0, out
    header = json.loads(out)
    assert (header["source"], header["estimator"], header["n_features_in_"]) == (
        "sagemaker", "FMClassifier", 7)
    rows = tmp_path / "rows.svm"
    rows.write_text("".join(" ".join(["0"] + [f"{j}:{v}" for j, v in enumerate(x) if v]) + "\n"
                            for x in ROWS))
    status, out = fmlearn("predict", path, str(rows), "--proba", "--labels")
    assert status == 0, out
    np.testing.assert_allclose([float(v) for v in out.split()],
                               RECORD["fixtures"]["linear_plus_bias_classifier"]["predictions"],
                               rtol=1e-5)
    assert read_header(path)["arrays"]["model.coef"]["shape"] == [7]


def test_server_loads_the_tarball():
    httpx = pytest.importorskip("httpx")
    from fmlearn.serve import create_app

    app = create_app(str(FIXTURES / "w_regressor.tar.gz"))
    body = {"instances": [{"features": list(map(float, x))} for x in ROWS]}

    async def ask():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://app") as client:
            return await client.post("/invocations", json=body,
                                     headers={"Accept": "application/json"})

    answer = asyncio.run(ask())
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose([p["score"] for p in answer.json()["predictions"]],
                               RECORD["fixtures"]["w_regressor"]["predictions"], rtol=1e-5)


# --- malformed files -----------------------------------------------------------------------------
VALID = params_bytes(FIXTURES / "w_regressor.tar.gz")[0]


def record_offsets(data):
    """Where each record, the names and the end start, read from a valid file."""
    offsets, at = [], 24
    (count,) = struct.unpack_from("<Q", data, 16)
    for _ in range(count):
        offsets.append(at)
        ndim = struct.unpack_from("<i", data, at + 8)[0]
        shape = struct.unpack_from(f"<{ndim}q", data, at + 12)
        at += 12 + 8 * ndim + 12 + 4 * int(np.prod(shape))
    return offsets + [at, len(data)]


def test_every_truncation_is_refused():
    offsets = record_offsets(VALID)
    assert len(offsets) == 5
    for cut in range(len(VALID)):
        with pytest.raises(ModelFileError, match="^m.params: params: .* left$"):
            read_ndarrays(VALID[:cut], "m.params")
    with pytest.raises(ModelFileError, match=r"record 2 of 3: truncated: the record magic"):
        read_ndarrays(VALID[:offsets[2]], "m.params")
    with pytest.raises(ModelFileError, match=r"names: truncated: the name count: 8 bytes needed"):
        read_ndarrays(VALID[:offsets[3]], "m.params")


def patched(data, offset, fmt, *values):
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


@pytest.mark.parametrize("where, fmt, values, message", [
    (0, "<Q", (0x113,), r"header: not an MXNet NDArray file: magic 0x113, expected 0x112"),
    (8, "<Q", (1,), "reserved field is 1"),
    (16, "<Q", (2**62,), "arrays cannot fit in the"),
    ("r0", "<I", (0xF993FACB,), r"record 0 of 3: unknown record magic 0xf993facb"),
    ("r0+4", "<i", (1,), "record 0 of 3: row_sparse storage is not supported"),
    ("r0+4", "<i", (2,), "csr storage is not supported"),
    ("r0+4", "<i", (7,), "unknown storage type 7"),
    ("r0+8", "<i", (33,), "ndim 33 is not 1 to 32"),
    ("r0+8", "<i", (0,), r"an empty NDArray \(no shape\)"),
    ("r0+12", "<q", (2**40,), r"shape \(1099511627776,\) of float32 needs 4398046511104 bytes"),
    ("r0+12", "<q", (-1,), "negative dimension"),
    ("r0+20", "<i", (4,), r"unknown context \(device type 4"),
    ("r0+28", "<i", (13,), "unknown dtype flag 13"),
    ("names", "<Q", (2,), "names: 2 names for 3 arrays"),
    ("names", "<Q", (2**60,), "names: 1152921504606846976 names for 3 arrays"),
    ("names+8", "<Q", (2**50,), "name 0: truncated: its bytes: .* bytes needed"),
])
def test_malformed_fields_are_refused(where, fmt, values, message):
    offsets = record_offsets(VALID)
    if isinstance(where, str):
        base, _, plus = where.partition("+")
        where = (offsets[0] if base == "r0" else offsets[3]) + int(plus or 0)
    with pytest.raises(ModelFileError, match=f"^m.params: params: .*{message}"):
        read_ndarrays(patched(VALID, where, fmt, *values), "m.params")


def test_other_record_versions_and_names():
    arrays = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.ones(2, np.float16)}
    data = write_ndarrays(arrays)
    # V1: no storage type; before V1: ndim then u32 dims
    v1 = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iiqqiii", 0xF993FAC8, 2, 2, 3, 1, 0, 6)
    v1 += arrays["a"].tobytes() + struct.pack("<Q", 0)
    np.testing.assert_array_equal(read_ndarrays(v1)[0], arrays["a"])
    legacy = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<IIIiii", 2, 2, 3, 1, 0, 6)
    legacy += arrays["a"].tobytes() + struct.pack("<Q", 0)
    np.testing.assert_array_equal(read_ndarrays(legacy)[0], arrays["a"])
    read = read_ndarrays(data)
    assert {k: (v.dtype, v.shape) for k, v in read.items()} == {
        k: (v.dtype, v.shape) for k, v in arrays.items()}
    empty_but_huge = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack(
        "<Iiiqqiii", 0xF993FAC9, 0, 2, 0, 2**62, 1, 0, 0) + struct.pack("<Q", 0)
    with pytest.raises(ModelFileError, match=r"shape \(0, 4611686018427387904\) has a "
                                             r"dimension over 2\*\*40"):
        read_ndarrays(empty_but_huge)  # found by bench/fuzz.py: NumPy's ValueError before
    with pytest.raises(ModelFileError, match="end: 1 bytes after the last name"):
        read_ndarrays(data + b"\0")
    one = struct.pack("<Q", 1)
    twice = data.replace(one + b"b", one + b"a")
    with pytest.raises(ModelFileError, match="names: 'a' names two arrays"):
        read_ndarrays(twice)


@pytest.mark.parametrize("members, message", [
    ({"model_algo-1": None, "extra": b"x"}, "a member 'extra'"),
    ({"../model_algo-1": None}, "an unsafe member name '../model_algo-1'"),
    ({"/etc/passwd": b"x"}, "an unsafe member name '/etc/passwd'"),
    ({"model_algo-1": None, "./model_algo-1": None}, "is repeated or not a file"),
    ({}, "the archive has no 'model_algo-1'"),
    ({"model_algo-1": b"not a zip"}, "model_algo-1 is not a zip archive"),
])
def test_tarball_members_are_checked(tmp_path, members, message):
    with pytest.raises(ModelFileError, match=message):
        load_model(tarball(tmp_path / "m.tar.gz", members))


def test_zip_members_are_checked(tmp_path):
    params, symbol = params_bytes(FIXTURES / "w_regressor.tar.gz")
    cases = [({"symbol.json": symbol}, "model_algo-1 has no params"),
             ({"symbol.json": symbol, "params": params, "x/../../evil": b""},
              "'x/../../evil' is an unsafe member"),
             ({"symbol.json": symbol, "params": params, "notes.txt": b""},
              "'notes.txt' is an unexpected member"),
             ({"symbol.json": b"{", "params": params}, "symbol.json is not an MXNet symbol"),
             ({"symbol.json": b'{"nodes": []}', "params": params},
              "does not tell regressor from binary_classifier"),
             ({"symbol.json": symbol, "params": params[:-1]}, "params: name 2: truncated"),
             ({"symbol.json": symbol, "params": write_ndarrays({"arg:w0_weight": np.ones(1)})},
              r"params holds \['arg:w0_weight'\]"),
             ({"symbol.json": symbol, "params": write_ndarrays({
                 "w0_weight": np.ones(1, np.float32), "w1_weight": np.ones((3, 1), np.float32),
                 "v": np.full((3, 2), np.nan, np.float32)})}, "model_algo-1: params: .*finite")]
    for members, message in cases:
        with pytest.raises(ModelFileError, match=message):
            load_model(tarball(tmp_path / "m.tar.gz", {"model_algo-1": None}, **members))


def test_cut_gzip_and_unknown_zip_versions_are_refused(tmp_path):
    """Found by bench/fuzz.py's sagemaker_models target: an EOFError and a NotImplementedError."""
    data = (FIXTURES / "w_regressor.tar.gz").read_bytes()
    for cut in (20, len(data) // 2, len(data) - 9):
        (tmp_path / "cut.tar.gz").write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated or corrupt"):
            load_model(tmp_path / "cut.tar.gz")
    (tmp_path / "long.tar.gz").write_bytes(gzip.compress(gzip.decompress(data) + bytes(2**21)))
    with pytest.raises(ModelFileError, match="more than 1048576 bytes after the tar's end"):
        load_model(tmp_path / "long.tar.gz")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("params", VALID)
    central = inner.getvalue().index(b"PK\x01\x02")
    newer = patched(inner.getvalue(), central + 6, "<H", 75)  # version needed to extract: 7.5
    with pytest.raises(ModelFileError, match="model_algo-1 is not a zip archive .*7.5"):
        load_model(tarball(tmp_path / "v.tar.gz", {"model_algo-1": newer}))


def test_declared_sizes_are_bounded(tmp_path, monkeypatch):
    """A member that says it holds more than the limit is refused before it is decompressed."""
    from fmlearn.sagemaker import artifact

    path = tarball(tmp_path / "m.tar.gz", {"model_algo-1": None})
    monkeypatch.setattr(artifact, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(ModelFileError, match="'model_algo-1' says it holds 3033 bytes, more than "
                                             "the 1000 read"):
        load_model(path)
    monkeypatch.setattr(artifact, "MAX_MEMBER_BYTES", 2**20)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("params", b"\0" * (2**20 + 1))
    with pytest.raises(ModelFileError, match="'params' says it holds 1048577 bytes"):
        load_model(tarball(tmp_path / "b.tar.gz", {"model_algo-1": bomb.getvalue()}))
    cut = gzip.decompress(Path(path).read_bytes())[:700]
    (tmp_path / "t.tar.gz").write_bytes(gzip.compress(cut))
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(tmp_path / "t.tar.gz")


# --- fuzz ----------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1,
                max_size=6), st.integers(0, len(VALID)))
def test_fuzzed_ndarray_files_load_or_are_refused(changes, cut):
    data = bytearray(VALID[:max(cut, 1)] if cut < len(VALID) else VALID)
    for at, value in changes:
        if at < len(data):
            data[at] = value
    try:
        arrays = read_ndarrays(bytes(data), "fuzz")
    except ModelFileError:
        return
    values = arrays.values() if isinstance(arrays, dict) else arrays
    assert sum(a.nbytes for a in values) <= len(data)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.tuples(
    st.sampled_from(["<f4", "<f8", "<f2", "u1", "<i4", "i1", "<i8"]),
    st.lists(st.integers(0, 4), min_size=1, max_size=3)), max_size=4))
def test_written_arrays_read_back(spec):
    rng = np.random.default_rng(0)
    arrays = {name: (rng.normal(size=shape) * 50).astype(dtype)
              for name, (dtype, shape) in spec.items()}
    read = read_ndarrays(write_ndarrays(arrays))
    if not arrays:
        assert read == []
        return
    assert list(read) == list(arrays)
    for name, array in arrays.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape
        np.testing.assert_array_equal(read[name], array)
