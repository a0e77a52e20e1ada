"""The HTTP server over sockets: every content type and Accept, every error, concurrency, /recommend.

Servers run in subprocesses through ``fmlearn.serve.serve`` (what ``fmlearn serve`` calls) on
free loopback ports; clients use httpx. Answers are compared with ``predict`` and
``predict_proba`` of the estimator that was saved.
"""
import io
import json
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.sparse as sp

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")  # the SDK writes RecordIO for the tests
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fmlearn import FMClassifier, FMRegressor, save  # noqa: E402
from fmlearn.recommend import Recommender  # noqa: E402

N_USERS, N_ITEMS = 4, 6
N_FEATURES = N_USERS + N_ITEMS + 2  # one-hot user, one-hot item, two real-valued features
LIMIT = 4096  # max_payload_bytes of the regressor's server


def make_rows(n, rng):
    """Rows of a one-hot user, a one-hot item and two real values (float32-exact)."""
    X = np.zeros((n, N_FEATURES), dtype=np.float32)
    X[np.arange(n), rng.integers(0, N_USERS, n)] = 1
    X[np.arange(n), N_USERS + rng.integers(0, N_ITEMS, n)] = 1
    X[:, -2:] = rng.normal(size=(n, 2)).astype(np.float32)
    return X


class Server:
    """``fmlearn.serve.serve`` in a subprocess on a port the kernel picks (no race for a port).

    The port is read from uvicorn's start-up line; a thread keeps draining the server's log.
    """

    def __init__(self, model_path, **options):
        args = "".join(f", {k}={v!r}" for k, v in options.items())
        code = (f"from fmlearn.serve import serve; serve({model_path!r}, port=0, "
                f"log_level='info'{args})")
        self.process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE,
                                        text=True)
        self.log = []
        self.started = threading.Event()
        self.url = None
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.process.stderr:
            if len(self.log) < 200:
                self.log.append(line)
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if found and self.url is None:
                self.url = found.group(1)
                self.started.set()
        self.started.set()

    def wait(self, timeout=600):  # a server compiles its kernels before it answers /ping
        if not self.started.wait(timeout) or self.url is None:
            raise RuntimeError("server did not start:\n" + "".join(self.log))
        assert httpx.get(self.url + "/ping").status_code == 200
        return self

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Three fitted models, saved, and a server for each (started in parallel)."""
    tmp = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(0)
    X = make_rows(300, rng)
    y = X[:, :N_USERS].argmax(1) * 0.5 - X[:, N_USERS:-2].argmax(1) * 0.3 + X[:, -1]
    estimators = {
        "regressor": FMRegressor(n_factors=3, max_iter=10, random_state=0).fit(X, y),
        "classifier": FMClassifier(n_factors=3, max_iter=10, random_state=0).fit(X, y > 0),
        "mcmc": FMClassifier(n_factors=3, solver="mcmc", max_iter=12,
                             random_state=0).fit(X, y > 0),
    }
    items = np.zeros((N_ITEMS, N_FEATURES), dtype=np.float32)
    items[np.arange(N_ITEMS), N_USERS + np.arange(N_ITEMS)] = 1
    items[:, -1] = rng.normal(size=N_ITEMS).astype(np.float32)
    items_path = tmp / "items.svm"
    items_path.write_text("".join("0 " + " ".join(f"{j}:{float(row[j])!r}" for j in
                                                  np.flatnonzero(row)) + "\n" for row in items))
    servers = {}
    for name, est in estimators.items():
        path = str(tmp / f"{name}.fm")
        save(est, path)
        options = ({"max_payload_bytes": LIMIT} if name == "regressor"
                   else {"items": str(items_path)})
        servers[name] = Server(path, **options)
        if len(servers) == 1:  # it compiles the kernels into numba's cache for the others
            servers[name].wait()
    try:
        for server in servers.values():
            server.wait()
        yield {"estimators": estimators, "servers": servers, "items": items, "rng": rng}
    finally:
        for server in servers.values():
            server.stop()


def expected(est, X):
    if isinstance(est, FMClassifier):
        proba = est.predict_proba(X)[:, 1]
        return proba, (proba >= 0.5).astype(int)
    return est.predict(X).astype(np.float64), None


# --- encoders of request bodies ------------------------------------------------------------------
def sparse_instance(row):
    keys = np.flatnonzero(row)
    return {"data": {"features": {"keys": keys.tolist(), "shape": [row.shape[0]],
                                  "values": row[keys].tolist()}}}


def encode(content_type, X):
    if content_type == "json-dense":
        return "application/json", json.dumps(
            {"instances": [{"features": r.tolist()} for r in X]}).encode()
    if content_type == "json-sparse":
        return "application/json", json.dumps(
            {"instances": [sparse_instance(r) for r in X]}).encode()
    if content_type == "jsonlines":  # both instance forms, one per line
        lines = [json.dumps({"features": r.tolist()} if i % 2 else sparse_instance(r))
                 for i, r in enumerate(X)]
        return "application/jsonlines", ("\n".join(lines) + "\n").encode()
    if content_type == "csv":
        return "text/csv", "".join(",".join(repr(v) for v in r.tolist()) + "\n"
                                   for r in X).encode()
    if content_type == "recordio":  # written by the SageMaker SDK, independently of fmlearn
        write_spmatrix_to_sparse_tensor = pytest.importorskip(
            "sagemaker.amazon.common").write_spmatrix_to_sparse_tensor
        buf = io.BytesIO()
        write_spmatrix_to_sparse_tensor(buf, sp.csr_matrix(X))
        return "application/x-recordio-protobuf", buf.getvalue()
    raise ValueError(content_type)


def decode(accept, response):
    """(scores, labels or None) of an answer."""
    if accept == "application/json":
        predictions = response.json()["predictions"]
    elif accept == "application/jsonlines":
        assert response.text.endswith("\n")
        predictions = [json.loads(line) for line in response.text.splitlines()]
    else:
        read_records = pytest.importorskip("sagemaker.amazon.common").read_records
        records = read_records(io.BytesIO(response.content))
        predictions = []
        for record in records:
            assert not record.features
            label = {key: list(record.label[key].float32_tensor.values) for key in record.label}
            predictions.append({k: v[0] for k, v in label.items()})
    scores = np.array([p["score"] for p in predictions])
    labels = (np.array([p["predicted_label"] for p in predictions])
              if "predicted_label" in predictions[0] else None)
    return scores, labels


CONTENT_TYPES = ["json-dense", "json-sparse", "jsonlines", "csv", "recordio"]
ACCEPTS = ["application/json", "application/jsonlines", "application/x-recordio-protobuf"]


def test_ping(world):
    for server in world["servers"].values():
        response = httpx.get(server.url + "/ping")
        assert response.status_code == 200


@pytest.mark.parametrize("name", ["regressor", "classifier", "mcmc"])
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("accept", ACCEPTS)
def test_round_trip_equals_predict(world, name, content_type, accept):
    est = world["estimators"][name]
    X = make_rows(7, np.random.default_rng(hash((name, content_type, accept)) % 2**32))
    X[3, -2:] = 0  # a row with explicit zeros among the dense values
    media, body = encode(content_type, X)
    response = httpx.post(world["servers"][name].url + "/invocations", content=body,
                          headers={"Content-Type": media, "Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == accept
    scores, labels = decode(accept, response)
    want_scores, want_labels = expected(est, X)
    if accept == "application/x-recordio-protobuf":  # float32 tensors on the wire
        np.testing.assert_array_equal(scores, want_scores.astype(np.float32))
    else:
        np.testing.assert_array_equal(scores, want_scores)
    if want_labels is None:
        assert labels is None
    else:
        np.testing.assert_array_equal(labels, want_labels)


@pytest.mark.parametrize("accept", [None, "*/*", "application/*", "text/html;q=0.9, */*;q=0.1",
                                    "application/json; charset=utf-8",
                                    "text/plain;q=0.2, application/jsonlines;q=0.5"])
def test_accept_negotiation(world, accept):
    X = make_rows(2, np.random.default_rng(5))
    media, body = encode("json-sparse", X)
    headers = {"Content-Type": media}
    if accept is not None:
        headers["Accept"] = accept
    response = httpx.post(world["servers"]["classifier"].url + "/invocations", content=body,
                          headers=headers)
    assert response.status_code == 200
    wanted = "application/jsonlines" if accept and "jsonlines" in accept else "application/json"
    assert response.headers["content-type"] == wanted
    np.testing.assert_array_equal(decode(wanted, response)[0],
                                  expected(world["estimators"]["classifier"], X)[0])


def test_response_shapes_follow_sagemaker(world):
    X = make_rows(1, np.random.default_rng(6))
    media, body = encode("json-dense", X)
    clf = httpx.post(world["servers"]["classifier"].url + "/invocations", content=body,
                     headers={"Content-Type": media}).json()
    assert list(clf) == ["predictions"] and set(clf["predictions"][0]) == {"score",
                                                                          "predicted_label"}
    assert clf["predictions"][0]["predicted_label"] in (0, 1)
    reg = httpx.post(world["servers"]["regressor"].url + "/invocations", content=body,
                     headers={"Content-Type": media, "Accept": "application/jsonlines"}).text
    assert list(json.loads(reg)) == ["score"] and reg.count("\n") == 1


def dense(values):
    return json.dumps({"instances": [{"features": values}]})


def sparse(keys, values, shape=N_FEATURES):
    return json.dumps({"instances": [{"data": {"features": {"keys": keys, "shape": [shape],
                                                            "values": values}}}]})


JSON = {"Content-Type": "application/json"}
# A dense instance, then a sparse one whose key is KEY.
MIXED = ('{"instances": [{"features": [' + ",".join(["1.0"] * N_FEATURES) + ']}, {"data": '
         f'{{"features": {{"keys": [KEY], "shape": [{N_FEATURES}], "values": [1.5]}}}}}}]}}')
ERRORS = [
    # (headers, body, status, part of the error message)
    (JSON, '{"instances": [', 400, "is not valid JSON"),
    (JSON, "[1, 2]", 400, 'must be a JSON object {"instances"'),
    (JSON, '{"rows": []}', 400, 'no "instances" list'),
    (JSON, '{"instances": []}', 400, '"instances" is empty'),
    (JSON, '{"instances": [{"values": [1]}]}', 400, 'instance 0 has no "features"'),
    (JSON, '{"instances": [7]}', 400, "instance 0 must be an object"),
    (JSON, dense([1.0, 2.0, 3.0]), 400, "instance 0 has 3 features; the model expects 12"),
    (JSON, dense("abc"), 400, "features must be a list of numbers"),
    (JSON, dense([1.0] * 11 + ["x"]), 400, 'value "x" is not a number'),
    (JSON, dense([1.0] * 11 + [None]), 400, "value null is not a number"),
    (JSON, sparse([0, 5], [1.0, 1.0], shape=5), 400,
     "has shape [5]: 5 features; the model expects 12"),
    (JSON, sparse([0, 12], [1.0, 1.0]), 400,
     "instance 0: key 12 is out of range; the model has features 0 to 11"),
    (JSON, sparse([-1], [1.0]), 400, "key -1 is out of range"),
    (JSON, sparse([1.5], [1.0]), 400, "key 1.5 is not an integer"),
    (JSON, sparse(["a"], [1.0]), 400, 'key "a" is not an integer'),
    (JSON, sparse([0, 1], [1.0]), 400, "features has 2 keys but 1 values"),
    (JSON, '{"instances": [{"data": {"features": {"keys": [0], "shape": 12, "values": [1]}}}]}',
     400, "features shape must be [n_features]"),
    (JSON, sparse([0], [1.0]).replace("1.0", "NaN"), 400, "values must be finite"),
    (JSON, sparse([0], [1.0]).replace("1.0", "-Infinity"), 400, "values must be finite"),
    (JSON, sparse([0], [1e39]), 400, "within the range of float32"),
    (JSON, sparse([0], [10**400]), 400, "is not a number"),
    (JSON, dense([1.0] * 11 + [True]), 400, "instance 0: features: value true is not a number"),
    (JSON, sparse([0, 1], [1.0, False]), 400, "instance 0: features: value false is not a number"),
    (JSON, sparse([0, True], [1.0, 1.0]), 400, "instance 0: key true is not an integer"),
    (JSON, MIXED.replace("KEY", str(2**63)), 400,
     "instance 1: key 9223372036854775808 is out of range"),
    (JSON, MIXED.replace("KEY", str(-2**64)), 400,
     "instance 1: key -18446744073709551616 is out of range"),
    (JSON, MIXED.replace("KEY", "[1]"), 400, "instance 1: key [1] is not an integer"),
    (JSON, sparse([5, 0, 5], [3e38, 1.0, 3e38]), 400,
     "instance 0: the values of feature 5 sum to inf; values must be finite"),
    (JSON, MIXED.replace("KEY", "0").replace("1.5", '"x"'), 400,
     'instance 1: features: value "x" is not a number'),
    ({"Content-Type": "application/jsonlines"}, '{"features": [' + ",".join(["0"] * 12) +
     ']}\n{"features": [1,\n', 400, "instance 1 (line 2) is not valid JSON"),
    ({"Content-Type": "application/jsonlines"}, "\n\n", 400, "holds no JSON lines"),
    ({"Content-Type": "text/csv"}, "1,2,3\n", 400,
     "the CSV rows have 3 features; the model expects 12"),
    ({"Content-Type": "text/csv"}, ",".join(["1"] * 11 + ["abc"]), 400, "CSV body is malformed"),
    ({"Content-Type": "text/csv"}, ",".join(["1"] * 11 + ["nan"]), 400,
     "the value of feature 11 is nan"),
    ({"Content-Type": "text/csv"}, "", 400, "holds no rows"),
    ({"Content-Type": "application/x-recordio-protobuf"}, b"\x00garbage!", 400,
     "RecordIO body is malformed"),
    ({"Content-Type": "application/x-recordio-protobuf"}, b"", 400, "holds no records"),
    ({"Content-Type": "text/plain"}, "1,2", 415, "unsupported Content-Type 'text/plain'"),
    ({}, "1,2", 415, "the request has no Content-Type"),
    ({"Content-Type": "application/json", "Accept": "text/html"}, dense([0.0] * 12), 406,
     "cannot answer in any type of Accept 'text/html'"),
    ({"Content-Type": "application/json", "Accept": "application/json;q=0"}, dense([0.0] * 12),
     406, "cannot answer"),
    (JSON, sparse([0], [1.0]) + " " * LIMIT, 413,
     f"the server accepts at most {LIMIT} bytes (max_payload_bytes)"),
]


@pytest.mark.parametrize("headers, body, status, message", ERRORS,
                         ids=[f"{i}-{e[2]}" for i, e in enumerate(ERRORS)])
def test_bad_requests_get_4xx_with_a_json_error(world, headers, body, status, message):
    url = world["servers"]["regressor"].url
    with httpx.Client() as client:
        response = client.post(url + "/invocations", content=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert message in response.json()["error"]
        # The server keeps serving, on the same connection when it stays open.
        good = client.post(url + "/invocations", content=sparse([0, 5], [1.0, 2.0]),
                           headers=JSON)
        assert good.status_code == 200


@pytest.mark.parametrize("content_type, media", [
    ("json-sparse", "application/json; charset=utf-8"),
    ("json-dense", "Application/JSON"),
    ("json-sparse", "APPLICATION/JSON ;charset=UTF-8"),
    ("jsonlines", "application/jsonlines"),
    ("jsonlines", "application/x-jsonlines"),
    ("jsonlines", "application/jsonl"),
    ("jsonlines", "Application/X-JSONLines; charset=utf-8"),
    ("csv", "text/csv; header=absent"),
    ("csv", "Text/CSV"),
    ("recordio", "Application/X-RecordIO-Protobuf; charset=binary"),
])
def test_content_type_parameters_case_and_aliases(world, content_type, media):
    X = make_rows(3, np.random.default_rng(9))
    body = encode(content_type, X)[1]
    response = httpx.post(world["servers"]["classifier"].url + "/invocations", content=body,
                          headers={"Content-Type": media})
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(decode("application/json", response)[0],
                                  expected(world["estimators"]["classifier"], X)[0])


@pytest.mark.parametrize("media", ["application/json; charset=utf-8", "Application/Json"])
def test_recommend_content_type_parameters_and_case(world, media):
    response = httpx.post(world["servers"]["classifier"].url + "/recommend", headers={
        "Content-Type": media}, content=json.dumps({"user": [0.0] * N_FEATURES, "n": 2}))
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == 2


def test_oversize_body_without_content_length(world):
    url = world["servers"]["regressor"].url

    def chunks():  # no Content-Length: httpx sends it chunked
        yield sparse([0], [1.0]).encode()
        for _ in range(10):
            yield b" " * 1000
    response = httpx.post(url + "/invocations", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert f"exceeds {LIMIT} bytes" in response.json()["error"]
    assert httpx.get(url + "/ping").status_code == 200


def test_paths_and_methods(world):
    url = world["servers"]["regressor"].url
    response = httpx.get(url + "/invocations")
    assert response.status_code == 405 and "use POST" in response.json()["error"]
    response = httpx.get(url + "/nowhere")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}
    assert httpx.post(url + "/ping").status_code == 405
    params = httpx.get(url + "/execution-parameters").json()
    assert params["BatchStrategy"] == "MULTI_RECORD"


def test_duplicate_keys_are_summed_as_predict_does(world):
    est = world["estimators"]["regressor"]
    body = sparse([3, 0, 3], [0.5, 1.0, 1.5])
    got = httpx.post(world["servers"]["regressor"].url + "/invocations", content=body,
                     headers=JSON).json()["predictions"][0]["score"]
    X = sp.csr_matrix(([0.5, 1.0, 1.5], ([0, 0, 0], [3, 0, 3])), shape=(1, N_FEATURES))
    assert got == pytest.approx(float(est.predict(X)[0]), rel=1e-6)


def test_concurrent_clients_all_get_their_own_answers(world):
    est = world["estimators"]["classifier"]
    url = world["servers"]["classifier"].url + "/invocations"
    X = make_rows(32 * 20, np.random.default_rng(7))
    want = expected(est, X)[0]
    failures = []

    def client(t):
        with httpx.Client() as session:
            for r in range(20):
                i = t * 20 + r
                response = session.post(url, content=json.dumps(
                    {"instances": [sparse_instance(X[i])]}), headers=JSON)
                score = response.json()["predictions"][0]["score"]
                if response.status_code != 200 or score != want[i]:
                    failures.append((i, response.status_code, score, want[i]))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# --- /recommend ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["classifier", "mcmc"])
def test_recommend_equals_the_library(world, name):
    est = world["estimators"][name]
    rec = Recommender(est, sp.csr_matrix(world["items"]))
    users = np.zeros((3, N_FEATURES), dtype=np.float32)
    users[np.arange(3), [0, 1, 3]] = 1
    users[:, -2] = [0.5, -1.0, 2.0]
    url = world["servers"][name].url + "/recommend"
    # One user, sparse form, with an exclusion.
    keys = np.flatnonzero(users[0])
    body = {"user": {"keys": keys.tolist(), "shape": [N_FEATURES],
                     "values": users[0][keys].tolist()}, "n": 3, "exclude": [2]}
    answer = httpx.post(url, json=body).json()
    ids, scores = rec.recommend(users[0], 3, exclude=[2])
    assert answer["items"] == ids.tolist()
    np.testing.assert_allclose(answer["scores"], scores, rtol=1e-6)
    np.testing.assert_allclose(answer["probabilities"],
                               est.predict_proba(users[[0]] + world["items"][ids])[:, 1],
                               rtol=1e-5)
    # A batch in dense form, n larger than the catalogue.
    answer = httpx.post(url, json={"users": [{"features": u.tolist()} for u in users],
                                   "n": 50, "exclude": [[0], [], [1, 2]]}).json()
    ids, scores = rec.recommend(users, 50, exclude=[[0], [], [1, 2]])
    assert answer["items"] == [row[row >= 0].tolist() for row in ids]
    assert [len(r) for r in answer["items"]] == [N_ITEMS - 1, N_ITEMS, N_ITEMS - 2]
    for got, row, keep in zip(answer["scores"], scores, ids >= 0):
        np.testing.assert_allclose(got, row[keep], rtol=1e-6)


def test_recommend_errors(world):
    response = httpx.post(world["servers"]["regressor"].url + "/recommend",
                          json={"user": [0.0] * N_FEATURES})
    assert response.status_code == 400 and "no item catalogue" in response.json()["error"]
    url = world["servers"]["classifier"].url + "/recommend"
    for body, message in [({"user": [0.0] * N_FEATURES, "n": 0}, '"n" must be a positive'),
                          ({"user": [0.0] * 3}, "user has 3 features; the model expects 12"),
                          ({"user": [0.0] * N_FEATURES, "exclude": [99]},
                           "exclude holds item index 99, outside the catalogue of 6 items"),
                          ({"user": [0.0] * N_FEATURES, "exclude": [[1]]},
                           '"exclude" must be a list of item indices'),
                          ({"n": 3}, 'with "user"'),
                          ({"users": []}, '"users" must be a non-empty list')]:
        response = httpx.post(url, json=body)
        assert response.status_code == 400, body
        assert message in response.json()["error"]
    response = httpx.post(url, content=b"1,2", headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    response = httpx.post(url, json={"user": [0.0] * N_FEATURES},
                          headers={"Accept": "application/x-recordio-protobuf"})
    assert response.status_code == 406 and "accepted: application/json" in response.json()["error"]
    assert httpx.get(world["servers"]["classifier"].url + "/ping").status_code == 200


# --- in process ----------------------------------------------------------------------------------
def test_create_app_takes_an_estimator_and_an_item_matrix(world):
    import asyncio

    from fmlearn.serve import create_app
    est = world["estimators"]["regressor"]
    app = create_app(est, items=world["items"], max_payload_bytes=100)
    X = make_rows(1, np.random.default_rng(8))

    async def talk():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            csv = await client.post("/invocations", content=",".join(map(repr, X[0].tolist())),
                                    headers={"Content-Type": "text/csv"})
            recommend = await client.post("/recommend", json={"user": [0.0] * N_FEATURES, "n": 2})
            big = await client.post("/invocations", content=b"1" * 101,
                                    headers={"Content-Type": "text/csv"})
            return csv, recommend, big

    csv, recommend, big = asyncio.run(talk())
    assert csv.json()["predictions"][0]["score"] == float(est.predict(X)[0])
    assert recommend.status_code == 200 and len(recommend.json()["items"]) == 2
    assert big.status_code == 413
    with pytest.raises(ValueError, match="max_payload_bytes must be a positive integer"):
        create_app(est, max_payload_bytes=0)
    with pytest.raises(TypeError, match="expected a fitted FMRegressor"):
        create_app(FMRegressor())


def test_serve_signature_is_what_the_cli_calls():
    import inspect

    from fmlearn.serve import serve
    params = inspect.signature(serve).parameters
    assert list(params) == ["model_path", "host", "port", "max_payload_bytes", "items",
                            "log_level"]
    assert params["port"].default == 8080 and params["max_payload_bytes"].default == 6 * 2**20
