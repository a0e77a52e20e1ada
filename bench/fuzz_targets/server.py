"""Fuzz target for the inference server's ``/invocations`` and ``/recommend``: bytes in, an outcome out.

An input is one request: a header line ``path<TAB>content-type<TAB>accept`` (the last two
may be missing, for no such header) and the body after the first newline. :func:`run_request`
sends it to an in-process app of :func:`fmlearn.serve.create_app` (a small classifier with an
item catalogue and a 4 KiB payload limit), then sends a known request to check the server
still answers, and compares the answer with a reference written here from the documented
contract (``create_app``'s docstring): the request's rows decoded in plain Python and scored
by the library (``predict_proba`` and ``Recommender.recommend``). Outcomes:

- ``clean_error``: a 4xx with a JSON error, with the status the reference expects (415 for
  an unsupported Content-Type, 406 for an Accept it cannot meet, 413 for a body over the
  limit, 400 for a body that does not hold valid rows);
- ``correct``: 200, and the predictions (or recommendations) equal the reference's;
- ``wrong_value``: another status or answer than the reference's;
- ``other_exception``: a 5xx, an exception, or a server that no longer answers.

:func:`request_seeds` gives valid requests of every content type, :func:`mutate` bends one
(JSON literals swapped for odd ones, bytes changed, headers swapped),
:func:`random_request` draws new ones. Import with ``bench/`` on ``sys.path``:
``from fuzz_targets import server``.
"""
import asyncio
import json
import math
import re
import struct
import warnings

import numpy as np
import scipy.sparse as sp

from . import readers
from .readers import CLEAN_ERROR, CORRECT, OTHER_EXCEPTION, WRONG_VALUE, Outcome

N_FEATURES = 8
N_ITEMS = 5
LIMIT = 4096  # the app's max_payload_bytes
JSON, JSONLINES, CSV, RECORDIO = ("application/json", "application/jsonlines", "text/csv",
                                  "application/x-recordio-protobuf")
# What a Content-Type's media type (parameters dropped, lower case) is read as.
MEDIA = {JSON: JSON, JSONLINES: JSONLINES, "application/x-jsonlines": JSONLINES,
         "application/jsonl": JSONLINES, CSV: CSV, RECORDIO: RECORDIO}
# Accept headers and the answer's type (None: 406).
ACCEPTS = {None: JSON, "*/*": JSON, JSON: JSON, JSONLINES: JSONLINES, RECORDIO: RECORDIO,
           "application/jsonlines;q=0.5, application/json": JSON, "text/html": None}
_WORLD = {}


class _Reject(Exception):
    """The reference refuses the request with ``status``."""

    def __init__(self, status, why):
        super().__init__(why)
        self.status = status


class _Unknown(Exception):
    """The contract leaves the answer open (a CSV number NumPy may or may not read, scores
    that overflow)."""


def world():
    """The app, its fitted classifier and item catalogue, built once per process."""
    if not _WORLD:
        from fmlearn import FMClassifier
        from fmlearn.serve import create_app
        rng = np.random.default_rng(0)
        X = (rng.random((120, N_FEATURES)) < 0.4) * rng.normal(size=(120, N_FEATURES))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = FMClassifier(n_factors=2, max_iter=5, random_state=0).fit(X, X[:, 0] > 0)
        items = np.zeros((N_ITEMS, N_FEATURES), dtype=np.float32)
        items[np.arange(N_ITEMS), 3 + np.arange(N_ITEMS)] = 1
        _WORLD.update(est=est, items=items, dtype=est.model_.dtype,
                      app=create_app(est, items=items, max_payload_bytes=LIMIT))
    return _WORLD


# --- requests ------------------------------------------------------------------------------------
def request(path, body, content_type=None, accept=None):
    """The input bytes of a request.

    Examples
    --------
    >>> request("/invocations", b"1,2", "text/csv")
    b'/invocations\\ttext/csv\\n1,2'
    """
    fields = [path]
    if content_type is not None or accept is not None:
        fields.append(content_type or "")
    if accept is not None:
        fields.append(accept)
    return "\t".join(fields).encode("latin-1") + b"\n" + body


def _header_value(raw):
    """A header value as HTTP can carry it: printable ASCII, trimmed."""
    return bytes(c for c in raw if 32 <= c < 127).decode("ascii").strip()


def parse(data):
    """``(path, content_type, accept, body)`` of input bytes; headers None when left out."""
    head, _, body = data.partition(b"\n")
    fields = head.split(b"\t")
    path = "/recommend" if fields[0].strip() == b"/recommend" else "/invocations"
    content_type = _header_value(fields[1]) if len(fields) > 1 else None
    accept = _header_value(fields[2]) if len(fields) > 2 else None
    return path, content_type or None, accept or None, body


async def _send(app, path, body, headers):
    import httpx
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as client:
        response = await client.post(path, content=body, headers=headers)
        ping = await client.get("/ping")
        known = await client.post("/invocations", content=b'{"features": [' + b", ".join(
            [b"1.0"] * N_FEATURES) + b"]}", headers={"Content-Type": JSON})
        return response, ping, known


# --- the reference -------------------------------------------------------------------------------
def _is_number(value):
    """A JSON number: a float, or an integer a double can hold (``true`` is not one)."""
    if type(value) is int:
        return abs(value) <= 1.7976931348623157e308
    return type(value) is float


def _row(element, where, dtype):
    """``{column: value}`` of a features element: a dense list or a sparse object."""
    kind = np.dtype(dtype).type
    if isinstance(element, dict):
        keys, shape, values = element.get("keys"), element.get("shape"), element.get("values")
        if values is None:
            raise _Reject(400, f"{where}: no values")
        if keys is None or (keys == [] and shape is None):
            return _row(values, where, dtype)
        if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values):
            raise _Reject(400, f"{where}: keys and values")
        if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int
                and shape[0] == N_FEATURES):
            raise _Reject(400, f"{where}: shape")
        if not all(type(k) is int and 0 <= k < N_FEATURES for k in keys):
            raise _Reject(400, f"{where}: keys")
    elif isinstance(element, list):
        if len(element) != N_FEATURES:
            raise _Reject(400, f"{where}: length")
        keys, values = range(N_FEATURES), element
    else:
        raise _Reject(400, f"{where}: not a list or object")
    if not all(_is_number(v) for v in values):
        raise _Reject(400, f"{where}: not numbers")
    row = {}
    with np.errstate(over="ignore"):
        for key, value in zip(keys, values):
            cast = kind(value)
            if not np.isfinite(cast):
                raise _Reject(400, f"{where}: not finite in {np.dtype(dtype).name}")
            row[key] = row[key] + cast if key in row else cast  # repeats summed in the dtype
        if not all(np.isfinite(v) for v in row.values()):
            raise _Reject(400, f"{where}: repeats sum beyond {np.dtype(dtype).name}")
    row = {k: float(v) for k, v in row.items()}
    return {k: v for k, v in row.items() if v != 0 or isinstance(element, dict)}


def _instance(instance, where, dtype):
    if not isinstance(instance, dict):
        raise _Reject(400, f"{where}: not an object")
    features = instance.get("features")
    if features is None:
        data = instance.get("data")
        features = data.get("features") if isinstance(data, dict) else data
    if features is None:
        raise _Reject(400, f"{where}: no features")
    return _row(features, where, dtype)


def _json(text):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise _Reject(400, "not JSON") from None


_PLAIN = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


def _csv_rows(body, dtype):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Reject(400, "not UTF-8") from None
    if re.search(r"\r(?!\n)", text):  # a carriage return alone: CSV readers disagree on it
        raise _Unknown("a CSV body with a bare carriage return")
    rows = []
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            continue
        fields = line.split(",")
        if not all(_PLAIN.fullmatch(f) for f in fields):
            raise _Unknown(f"CSV line {line!r}: fields NumPy may or may not read")
        if len(fields) != N_FEATURES:
            raise _Reject(400, "CSV width")
        rows.append(_row([float(f) for f in fields], "csv", dtype))
    if not rows:
        raise _Reject(400, "no CSV rows")
    return rows


def decode(content_type, body, dtype):
    """The rows (``{column: value}``) of an ``/invocations`` body; ``_Reject`` with the
    status where the contract refuses it."""
    if content_type == JSON:
        document = _json(body)
        if isinstance(document, dict) and "instances" not in document and (
                "features" in document or "data" in document):
            instances = [document]
        elif isinstance(document, dict) and isinstance(document.get("instances"), list):
            instances = document["instances"]
        else:
            raise _Reject(400, "no instances")
        if not instances:
            raise _Reject(400, "no instances")
        return [_instance(inst, f"instance {i}", dtype) for i, inst in enumerate(instances)]
    if content_type == JSONLINES:
        lines = [line for line in body.splitlines() if line.strip()]
        if not lines:
            raise _Reject(400, "no lines")
        return [_instance(_json(line), f"line {i}", dtype) for i, line in enumerate(lines)]
    if content_type == CSV:
        return _csv_rows(body, dtype)
    if not body:
        raise _Reject(400, "no records")
    try:
        reference = readers.read_recordio(body, n_features=N_FEATURES, dtype=dtype)
    except readers._Ambiguous as exc:
        raise _Unknown(str(exc)) from None
    if reference.problems:
        raise _Reject(400, f"RecordIO problems in records {sorted(reference.problems, key=str)}")
    return reference.rows


def _matrix(rows, dtype):
    X = sp.lil_matrix((len(rows), N_FEATURES), dtype=np.float64)
    for r, row in enumerate(rows):
        for k, v in row.items():
            X[r, k] = v
    return sp.csr_matrix(X, dtype=dtype)


def _scores(est, X):
    """The library's probabilities of ``X``; ``_Unknown`` where its scores overflow."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            decision = est.decision_function(X)
            proba = est.predict_proba(X)[:, 1]
        except (ValueError, FloatingPointError) as exc:
            raise _Unknown(f"the library refuses the rows: {exc}") from None
    if not (np.isfinite(decision).all() and np.isfinite(proba).all()):
        raise _Unknown("scores overflow")
    return proba


def expect_invocations(content_type, accept, body):
    """``(media type of the answer, probabilities)`` the contract gives an ``/invocations``
    request; ``_Reject`` or ``_Unknown`` otherwise."""
    w = world()
    if content_type is None:
        raise _Reject(415, "no Content-Type")
    media = MEDIA.get(content_type.split(";", 1)[0].strip().lower())
    if media is None:
        raise _Reject(415, "unsupported Content-Type")
    if accept not in ACCEPTS:
        raise _Unknown(f"Accept {accept!r}")
    if ACCEPTS[accept] is None:
        raise _Reject(406, "Accept")
    if len(body) > LIMIT:
        raise _Reject(413, "too large")
    rows = decode(media, body, w["dtype"])
    return ACCEPTS[accept], _scores(w["est"], _matrix(rows, w["dtype"]))


def expect_recommend(content_type, accept, body):
    """``(items, scores)`` lists the contract gives a ``/recommend`` request (one list per
    user, or one list for ``"user"``); ``_Reject`` or ``_Unknown`` otherwise."""
    from fmlearn.recommend import Recommender
    w = world()
    if content_type is not None and content_type.split(";", 1)[0].strip().lower() != JSON:
        raise _Reject(415, "unsupported Content-Type")
    if accept not in ACCEPTS:
        raise _Unknown(f"Accept {accept!r}")
    if ACCEPTS[accept] != JSON:
        raise _Reject(406, "Accept")
    if len(body) > LIMIT:
        raise _Reject(413, "too large")
    document = _json(body)
    if not isinstance(document, dict) or ("user" in document) == ("users" in document):
        raise _Reject(400, "user or users")
    single = "user" in document
    users = [document["user"]] if single else document["users"]
    if not isinstance(users, list) or not users:
        raise _Reject(400, "users")
    n = document.get("n", 10)
    if type(n) is not int or n < 1:
        raise _Reject(400, "n")
    exclude = document.get("exclude")
    if exclude is not None:
        lists = [exclude] if single else exclude
        if not isinstance(lists, list) or len(lists) != len(users) or not all(
                isinstance(e, list) and all(type(i) is int for i in e) for e in lists):
            raise _Reject(400, "exclude")
        if any(not 0 <= i < N_ITEMS for e in lists for i in e):
            raise _Reject(400, "exclude out of the catalogue")
    rows = [_instance(u, "user", w["dtype"]) if isinstance(u, dict) and (
        "features" in u or "data" in u) else _row(u, "user", w["dtype"]) for u in users]
    X = _matrix(rows, w["dtype"])
    rec = Recommender(w["est"], sp.csr_matrix(w["items"]))
    with np.errstate(all="ignore"):
        ids, scores = rec.recommend(X, n, exclude=None if exclude is None else (
            exclude if single or len(users) > 1 else exclude[0]))
    ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
    keep = ids >= 0
    if not np.isfinite(scores[keep]).all():
        raise _Unknown("scores overflow")
    return ([row[k].tolist() for row, k in zip(ids, keep)],
            [row[k].astype(np.float64).tolist() for row, k in zip(scores, keep)])


def _answer_scores(media, response):
    """The scores of an ``/invocations`` answer of type ``media``."""
    if media == JSON:
        return [p["score"] for p in response.json()["predictions"]]
    if media == JSONLINES:
        return [json.loads(line)["score"] for line in response.text.splitlines()]
    from fmlearn.io._record_pb2 import Record
    scores, data, pos = [], response.content, 0
    while pos < len(data):
        length = struct.unpack_from("<I", data, pos + 4)[0] & ((1 << 29) - 1)
        record = Record.FromString(data[pos + 8:pos + 8 + length])
        scores.append(float(np.float64(record.label["score"].float32_tensor.values[0])))
        pos += 8 + length + (-length % 4)
    return scores


def _check(path, content_type, accept, body, response):
    """The outcome of ``response`` against the reference."""
    try:
        if path == "/invocations":
            want = expect_invocations(content_type, accept, body)
        else:
            want = expect_recommend(content_type, accept, body)
    except _Reject as exc:
        if response.status_code == exc.status:
            return Outcome(CLEAN_ERROR, response.json()["error"])
        return Outcome(WRONG_VALUE, f"status {response.status_code} ({response.text[:200]}); the "
                                    f"reference refuses with {exc.status}: {exc}")
    except _Unknown as exc:
        if response.status_code in (200, 400, 406) or (response.status_code == 413
                                                        and len(body) > LIMIT):
            return Outcome(CORRECT if response.status_code == 200 else CLEAN_ERROR,
                           f"not checked: {exc}")
        return Outcome(WRONG_VALUE, f"status {response.status_code}: {response.text[:200]}")
    if response.status_code != 200:
        return Outcome(WRONG_VALUE, f"refused a valid request: {response.status_code} "
                                    f"{response.text[:300]}")
    if path == "/invocations":
        media, proba = want
        if response.headers["content-type"] != media:
            return Outcome(WRONG_VALUE, f"answered {response.headers['content-type']}, not {media}")
        got = np.array(_answer_scores(media, response))
        tol = 1e-6 if media != RECORDIO else 1e-6 + 1e-7  # float32 on the wire
        if got.shape != proba.shape or not np.allclose(got, proba, rtol=tol, atol=tol):
            return Outcome(WRONG_VALUE, f"scores {got.tolist()}, the reference {proba.tolist()}")
        return Outcome(CORRECT)
    items, scores = want
    answer = response.json()
    got_items, got_scores = answer["items"], answer["scores"]
    if "user" in json.loads(body):
        got_items, got_scores = [got_items], [got_scores]
    if got_items != items or not all(np.allclose(a, b, rtol=1e-5, atol=1e-6)
                                     for a, b in zip(got_scores, scores)):
        return Outcome(WRONG_VALUE, f"recommended {got_items} {got_scores}, the reference "
                                    f"{items} {scores}")
    return Outcome(CORRECT)


def run_request(data):
    """Send the request ``data`` and a known one after it; classify the answer.

    Examples
    --------
    >>> run_request(request("/invocations", b'{"features": [1, 0, 0, 0, 0, 0, 0, true]}',
    ...                     "application/json")).kind
    'clean_error'
    >>> run_request(request_seeds()["recommend-users"]).kind
    'correct'
    """
    path, content_type, accept, body = parse(data)
    headers = {k: v for k, v in [("Content-Type", content_type), ("Accept", accept)] if v}
    try:
        with warnings.catch_warnings():  # overflow warnings of the library on huge values
            warnings.simplefilter("ignore")
            response, ping, known = asyncio.run(_send(world()["app"], path, body, headers))
    except Exception as exc:  # noqa: BLE001 - classified
        return Outcome(OTHER_EXCEPTION, f"the client: {exc!r}")
    if response.status_code >= 500:
        return Outcome(OTHER_EXCEPTION, f"{response.status_code}: {response.text[:300]}")
    if ping.status_code != 200 or known.status_code != 200:
        return Outcome(OTHER_EXCEPTION, f"the server stopped answering: /ping {ping.status_code}, "
                                        f"a known request {known.status_code}")
    if response.status_code != 200 and response.headers.get("content-type") != JSON:
        return Outcome(WRONG_VALUE, f"a {response.status_code} without a JSON error body")
    try:
        return _check(path, content_type, accept, body, response)
    except Exception as exc:  # noqa: BLE001 - an answer the reference cannot read
        return Outcome(WRONG_VALUE, f"unreadable answer {response.status_code} "
                                    f"{response.text[:200]!r}: {exc!r}")


# --- generators ----------------------------------------------------------------------------------
def _values(rng, n):
    return [round(float(v), int(rng.integers(0, 6))) for v in rng.normal(size=n)]


def _element(rng):
    """A features element: dense list, or sparse ``keys``/``shape``/``values``."""
    if rng.random() < 0.5:
        return _values(rng, N_FEATURES)
    keys = sorted(rng.choice(N_FEATURES, int(rng.integers(0, N_FEATURES + 1)),
                             replace=False).tolist())
    return {"keys": keys, "shape": [N_FEATURES], "values": _values(rng, len(keys))}


def _instance_of(rng):
    element = _element(rng)
    return {"features": element} if rng.random() < 0.5 else {"data": {"features": element}}


def random_request(rng):
    """A valid request of a random content type and Accept, from the NumPy generator ``rng``."""
    n = int(rng.integers(1, 5))
    accept = list(ACCEPTS)[rng.integers(len(ACCEPTS) - 1)]  # all but the refused one
    kind = rng.integers(5)
    if kind == 0:
        body = json.dumps({"instances": [_instance_of(rng) for _ in range(n)]})
        return request("/invocations", body.encode(), JSON, accept)
    if kind == 1:
        lines = "\n".join(json.dumps(_instance_of(rng)) for _ in range(n))
        return request("/invocations", lines.encode(), JSONLINES, accept)
    if kind == 2:
        rows = "\n".join(",".join(map(repr, _values(rng, N_FEATURES))) for _ in range(n))
        return request("/invocations", rows.encode(), CSV, accept)
    if kind == 3:
        from fmlearn.io import recordio_bytes
        X = (rng.random((n, N_FEATURES)) < 0.5) * rng.normal(size=(n, N_FEATURES))
        return request("/invocations", recordio_bytes(X), RECORDIO, accept)
    users = [_instance_of(rng) if rng.random() < 0.3 else _element(rng) for _ in range(n)]
    exclude = [sorted(rng.choice(N_ITEMS, int(rng.integers(0, 3)), replace=False).tolist())
               for _ in users]
    body = ({"user": users[0], "exclude": exclude[0]} if rng.random() < 0.5 else
            {"users": users, "exclude": exclude})
    body["n"] = int(rng.integers(1, N_ITEMS + 2))
    return request("/recommend", json.dumps(body).encode(), JSON if rng.random() < 0.8 else None)


def request_seeds():
    """Valid requests: every content type, both instance forms, and ``/recommend``.

    Examples
    --------
    >>> sorted(request_seeds())[:3]
    ['csv', 'json-dense', 'json-sparse']
    """
    dense = [0.5] * N_FEATURES
    sparse = {"keys": [0, 3], "shape": [N_FEATURES], "values": [1.0, -2.0]}
    rng = np.random.default_rng(0)
    return {
        "json-dense": request("/invocations", json.dumps(
            {"instances": [{"features": dense}]}).encode(), JSON),
        "json-sparse": request("/invocations", json.dumps(
            {"instances": [{"data": {"features": sparse}}, {"features": dense}]}).encode(),
            "application/json; charset=utf-8", JSONLINES),
        "jsonlines": request("/invocations", (json.dumps({"features": sparse}) + "\n" + json.dumps(
            {"features": dense}) + "\n").encode(), "application/x-jsonlines", JSON),
        "csv": request("/invocations", b"1,0,0,2.5,0,0,0,-1\n0,0,0,0,0,0,0,0\n", CSV, RECORDIO),
        "recordio": random_request_of(rng, 3),
        "recommend-user": request("/recommend", json.dumps(
            {"user": sparse, "n": 3, "exclude": [1]}).encode(), JSON),
        "recommend-users": request("/recommend", json.dumps(
            {"users": [dense, {"features": sparse}], "n": 2}).encode()),
    }


def random_request_of(rng, kind):
    """A valid request of one kind (0 JSON, 1 JSON lines, 2 CSV, 3 RecordIO, 4 /recommend)."""
    while True:
        data = random_request(rng)
        if parse(data)[1] == [JSON, JSONLINES, CSV, RECORDIO, JSON][kind] or (
                kind == 4 and parse(data)[0] == "/recommend"):
            return data


_ODD_LITERALS = [b"true", b"false", b"null", b'"x"', b"1e400", b"-1e400", b"NaN", b"Infinity",
                 b"-0", b"18446744073709551616", b"9223372036854775808", b"-1", b"8", b"1.5",
                 b"[]", b"{}", b"[1]", b"1e39", b"3.4028235e38", b"0", b"" + b"9" * 400]
_HEADERS = ["application/json", "Application/JSON; charset=utf-8", "application/jsonlines",
            "application/jsonl", "text/csv", "text/plain", "application/x-recordio-protobuf",
            "", "application/json;", "*/*"]


def mutate(data, rng):
    """One random change to a request: a JSON number or literal replaced by an odd one (a
    boolean, null, a huge or non-finite number, a list), the bytes changed (as
    :func:`readers.mutate` does), the Content-Type, Accept or path swapped, or the body made
    larger than the payload limit."""
    path, content_type, accept, body = parse(data)
    op = rng.random()
    if op < 0.45:
        literals = list(re.finditer(rb"-?[0-9][0-9.eE+-]*|true|false|null|\[\]", body))
        if literals:
            m = literals[rng.integers(len(literals))]
            odd = _ODD_LITERALS[rng.integers(len(_ODD_LITERALS))]
            body = body[:m.start()] + odd + body[m.end():]
    elif op < 0.8:
        return readers.mutate(data, rng)
    elif op < 0.9:
        content_type = _HEADERS[rng.integers(len(_HEADERS))] or None
    elif op < 0.95:
        accept = list(ACCEPTS)[rng.integers(len(ACCEPTS))]
    elif op < 0.98:
        path = "/recommend" if path == "/invocations" else "/invocations"
    else:
        body = body + b" " * (LIMIT + 1 - len(body))
    return request(path, body, content_type, accept)


# format -> (seeds, run): what bench/fuzz.py needs of a target, with ``mutate``
TARGETS = {"server": (request_seeds, run_request)}
