"""The ASGI application: SageMaker's hosting contract (``/ping``, ``/invocations``), ``/recommend``.

The model is loaded once, in :func:`create_app`. ``/invocations`` is the hot path and is
answered over bare ASGI in front of FastAPI's routing (:class:`_Invocations`): a request's
rows are decoded straight into the CSR arrays the prediction kernel reads
(:mod:`fmlearn.serve.codecs` checks the feature count, the keys and the values itself, so
no scikit-learn validation runs per request) and scored by one call of the model's
``predict_csr``. All endpoints are ``async`` and run on the event loop's thread: no thread
hop per request, and kernel calls never run concurrently. A large request holds the loop
while it is decoded (about 15 ms per 1,000 sparse JSON rows, mostly ``json.loads``).
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from numpy.typing import ArrayLike, NDArray
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..fwfm_model import FwFMModel
from ..model import FFMModel, FMModel, FMSamples, HOFMModel, check_scores
from . import codecs
from .codecs import RequestError

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from .._typing import MatrixLike, Scorer, StrPath
    from ..recommend import Recommender

logger = logging.getLogger("fmlearn.serve")

#: SageMaker's default (and largest) real-time payload, 6 MiB.
DEFAULT_MAX_PAYLOAD_BYTES = 6 * 2**20


class Predictor:
    """Scores :class:`~fmlearn.serve.codecs.Rows` as SageMaker's FM reports them.

    A regressor's ``score`` is ``predict``; a classifier's ``score`` is the probability
    of ``classes_[1]`` (``predict_proba[:, 1]``) and ``predicted_label`` is 1 when that
    score is at least 0.5, else 0. A bare :class:`~fmlearn.model.FMModel` or
    ``FMSamples`` is served as a regressor with its raw score.

    Parameters
    ----------
    estimator : FMRegressor, FMClassifier, FMModel or FMSamples
        A fitted estimator or a model; an :mod:`fmlearn.neural` estimator is scored by
        its network (``_serving_model``).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMModel
    >>> from fmlearn.serve.codecs import decode_json
    >>> predictor = Predictor(FMModel(1.0, np.array([2.0, 3.0]), np.zeros((2, 1))))
    >>> predictor(decode_json(b'{"instances": [{"features": [1, 1]}]}', 2, np.float64))
    (array([6.]), None)
    """

    model: Any  # FMModel, FFMModel, FwFMModel, HOFMModel or FMSamples
    _finish: Callable[[NDArray[Any]], NDArray[Any]] | None
    _cdf: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None

    def __init__(self, estimator: Scorer) -> None:
        self.estimator = estimator
        if isinstance(estimator, (FMModel, FFMModel, FwFMModel, HOFMModel, FMSamples)):
            self.model, self._finish, self._cdf, self.n_jobs = estimator, None, None, None
        else:
            model = getattr(estimator, "model_", None)
            if model is None and hasattr(estimator, "network_"):  # fmlearn.neural's (torch)
                model = estimator._serving_model()
            elif not isinstance(model, (FMModel, FFMModel, FwFMModel, HOFMModel, FMSamples)):
                raise TypeError(f"expected a fitted FMRegressor or FMClassifier (or a model file); "
                                f"got {type(estimator).__name__}")
            self.model, self.n_jobs = model, estimator.n_jobs
            self._finish = getattr(estimator, "_finish_scores", None)
            self._cdf = None
            if hasattr(estimator, "classes_"):  # the link predict_proba uses
                self._cdf = estimator._link_cdf()
        self.n_features = int(self.model.n_features)
        self.dtype = self.model.dtype
        self.is_classifier = self._cdf is not None

    def __call__(self, rows: codecs.Rows) -> tuple[NDArray[Any], NDArray[np.int64] | None]:
        """``(scores, labels)`` for the rows; ``labels`` is None for a regressor. A raw score
        that is not finite is a 400, in the words of the ``ValueError`` ``predict`` raises."""
        try:  # fmlearn.neural's field models refuse two features of one field
            raw = self.model.predict_csr(rows, self.n_jobs)
            check_scores(raw, self.dtype)
        except ValueError as exc:
            raise RequestError(400, str(exc).replace("X row", "instance", 1)) from None
        if self._finish is not None:
            raw = self._finish(raw)
        if self._cdf is None:
            return raw, None
        proba = self._cdf(raw.astype(np.float64))
        return proba, (proba >= 0.5).astype(np.int64)

    def probability(self, decision: ArrayLike) -> NDArray[np.float64]:
        """``predict_proba[:, 1]`` from decision scores (classifiers only)."""
        return self._cdf(np.asarray(decision, dtype=np.float64))  # type: ignore[misc]


def _load(model: StrPath | Scorer) -> Scorer:
    if isinstance(model, (str, os.PathLike)):
        from ..persistence import load
        from ..sagemaker.artifact import is_model_tarball, load_model
        return load_model(model) if is_model_tarball(model) else load(model)
    return model


def _catalogue(items: StrPath | MatrixLike, n_features: int, dtype: np.dtype[Any]) -> Any:
    """The item catalogue as a matrix: a libSVM file (zero-based, labels ignored) or a matrix."""
    if isinstance(items, (str, os.PathLike)):
        from ..io.libsvm import load_libsvm
        X, _ = load_libsvm(items, n_features=n_features, dtype=dtype)
        return X
    return items


# One RecordIO record of shape [1] holding 1.0 at key 0, as ``recordio_bytes`` writes it.
_ONE_RECORD = (b"\n#\xd7\xce\x1a\x00\x00\x00\n\x18\n\x06values\x12\x0e\x12\x0c\n\x04\x00\x00"
               b"\x80?\x12\x01\x00\x1a\x01\x01\x00\x00")


def _warm_up(predictor: Predictor, recommender: Recommender | None) -> None:
    """Compile (or load from numba's cache) every kernel a request reaches, before ``/ping``
    answers: compiling the RecordIO decoder on a first request takes longer than clients wait.
    """
    from ..io.recordio import load_recordio_bytes
    load_recordio_bytes(_ONE_RECORD, dtype=predictor.dtype)
    user = codecs.Rows(np.array([0, 1]), np.zeros(1, np.int32), np.ones(1, predictor.dtype),
                       (1, predictor.n_features))
    scores, labels = predictor(user)
    for encode in codecs.ENCODERS.values():
        encode(scores, labels)
    if recommender is not None:
        import scipy.sparse as sp
        recommender.recommend(sp.csr_matrix((user.data, user.indices, user.indptr),
                                            shape=user.shape), 1)


def _error_body(message: str) -> bytes:
    return codecs.json.dumps({"error": message}).encode()


def _error(status: int, message: str) -> Response:
    return Response(_error_body(message), status_code=status, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body of a Starlette request; 413 as soon as it is known to exceed ``limit`` bytes."""
    _check_length(request.headers.get("content-length"), limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _check_length(length: str | None, limit: int) -> None:
    if length is not None:
        if not length.isdigit():
            raise RequestError(400, f"invalid Content-Length {length!r}")
        if int(length) > limit:
            raise RequestError(413, f"the payload has {int(length)} bytes; the server accepts at "
                               f"most {limit} bytes (max_payload_bytes)")


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"the payload exceeds {limit} bytes; the server accepts at most "
                        f"{limit} bytes (max_payload_bytes)")


class _App(FastAPI):
    """FastAPI, with ``/invocations`` answered by :class:`_Invocations` before anything else."""

    invocations: _Invocations | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/invocations" and self.invocations:
            return await self.invocations(scope, receive, send)
        return await super().__call__(scope, receive, send)


class _Disconnected(Exception):
    """The client went away before its body arrived."""


class _Invocations:
    """``/invocations`` over bare ASGI: the hot path, in front of FastAPI.

    Headers are read from the ASGI scope, the body from ``receive``, and the answer sent
    without Starlette's request and response objects, routing, middleware or FastAPI's
    per-request bookkeeping (together these cost more than decoding and scoring one row).
    """

    def __init__(self, predictor: Predictor, limit: int) -> None:
        self.predictor = predictor
        self.limit = limit
        self.n_features = predictor.n_features
        self.dtype = predictor.dtype

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, media, extra = 200, b"application/json", []
        try:
            if scope["method"] != "POST":
                extra = [(b"allow", b"POST")]
                raise RequestError(405, f"method {scope['method']} is not allowed on /invocations; "
                                   "use POST")
            content_type = accept = length = None
            for name, value in scope["headers"]:
                if name == b"content-type":
                    content_type = value.decode("latin-1")
                elif name == b"accept":
                    accept = value.decode("latin-1")
                elif name == b"content-length":
                    length = value.decode("latin-1")
            kind = codecs.request_type(content_type)
            answer = codecs.response_type(accept)
            _check_length(length, self.limit)
            body = await self._body(receive)
            rows = codecs.DECODERS[kind](body, self.n_features, self.dtype)
            scores, labels = self.predictor(rows)
            payload = codecs.ENCODERS[answer](scores, labels)
            media = codecs.CONTENT_TYPES[answer].encode()
        except _Disconnected:
            return
        except RequestError as exc:
            status, payload = exc.status, _error_body(exc.message)
        except Exception as exc:  # a bug, not the client's fault: answer, log, keep serving
            logger.exception("internal error in /invocations")
            status, payload = 500, _error_body(f"internal error: {type(exc).__name__}: {exc}")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", media),
                                (b"content-length", str(len(payload)).encode()), *extra]})
        await send({"type": "http.response.body", "body": payload})

    async def _body(self, receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.limit:
                    raise _too_large(self.limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def create_app(model: StrPath | Scorer, *,
               max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
               items: StrPath | MatrixLike | None = None) -> FastAPI:
    """The FastAPI application serving ``model`` under SageMaker's inference contract.

    Endpoints:

    ``GET /ping``
        200 ``{"status": "ok"}`` (the model is loaded before the app exists).
    ``POST /invocations``
        Rows in ``application/json`` (``{"instances": [{"features": [...]}, ...]}``
        or the sparse ``{"data": {"features": {"keys", "shape", "values"}}}``),
        ``application/jsonlines`` (one instance per line), ``text/csv`` (dense rows,
        no header) or ``application/x-recordio-protobuf``; all rows of a request are
        scored by one kernel call. The response type follows ``Accept``
        (``application/json`` by default or for ``*/*``; ``application/jsonlines``;
        ``application/x-recordio-protobuf``): ``{"predictions": [{"score": s,
        "predicted_label": l}, ...]}``, where a classifier's score is the probability
        of ``classes_[1]`` and its label 1 when ``score >= 0.5`` (else 0), and a
        regressor gives ``score`` only.
    ``POST /recommend``
        JSON ``{"user": features, "n": 10, "exclude": [item, ...]}`` for one user, or
        ``{"users": [features, ...], "n": 10, "exclude": [[...], ...]}`` for several,
        where ``features`` is a dense list, ``{"keys", "shape", "values"}`` or an
        instance as above. Answers ``{"items": [...], "scores": [...]}`` (lists of lists
        for ``users``), the top-N of :func:`fmlearn.recommend.recommend` over the
        catalogue ``items``; classifiers add ``"probabilities"`` (of ``classes_[1]``),
        their ``scores`` being decision scores. 400 when no catalogue was given.
    ``GET /execution-parameters``
        What SageMaker batch transform asks for: ``MULTI_RECORD`` batches and the
        payload limit.

    Bad requests get a 4xx status and a JSON body ``{"error": "..."}``: 400 for a body
    that cannot be read or rows that do not fit the model (naming the instance, the
    expected and the received feature count, the key or the value), 413 for a payload
    over ``max_payload_bytes`` (checked from Content-Length and while reading), 415 for
    an unsupported Content-Type, 406 for an Accept the server cannot satisfy, 404 and
    405 for unknown paths and methods.

    Parameters
    ----------
    model : str, path-like, FMRegressor, FMClassifier, FMModel or FMSamples
        A model file written by :func:`fmlearn.save` or a SageMaker ``model.tar.gz``
        (:func:`fmlearn.sagemaker.load_model`), loaded once, here; or a fitted estimator.
    max_payload_bytes : int, default=6 * 2**20
        The largest request body accepted, in bytes (SageMaker's limit is 6 MiB).
    items : str, path-like, array-like or sparse matrix, default=None
        The item catalogue of ``/recommend``: a libSVM file of item rows (zero-based
        indices, labels ignored) or a matrix of shape (n_items, n_features).

    Returns
    -------
    app : fastapi.FastAPI

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMModel
    >>> app = create_app(FMModel(0.5, np.ones(3), np.zeros((3, 2))))
    >>> sorted(r.path for r in app.routes)  # /invocations is answered in front of the router
    ['/execution-parameters', '/ping', '/recommend']
    """
    if not isinstance(max_payload_bytes, int) or max_payload_bytes < 1:
        raise ValueError(f"max_payload_bytes must be a positive integer; got {max_payload_bytes!r}")
    estimator = _load(model)
    predictor = Predictor(estimator)
    n_features, dtype = predictor.n_features, predictor.dtype
    recommender = None
    if items is not None:
        from ..recommend import Recommender
        recommender = Recommender(estimator, _catalogue(items, n_features, dtype))
    _warm_up(predictor, recommender)
    limit = max_payload_bytes

    app = _App(title="fmlearn", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.predictor = predictor
    app.state.recommender = recommender

    @app.exception_handler(StarletteHTTPException)
    # 404, 405 and the like, with the JSON error body
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    @app.get("/ping")
    async def ping() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/execution-parameters")
    async def execution_parameters() -> Response:
        body = {"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": max(1, limit // 2**20)}
        return Response(codecs.json.dumps(body).encode(), media_type="application/json")

    @app.post("/recommend")
    async def recommend(request: Request) -> Response:
        try:
            if recommender is None:
                raise RequestError(400, "no item catalogue is configured; start the server with "
                                   "items=<libSVM file or matrix> (fmlearn serve --items FILE)")
            media = request.headers.get("content-type")
            if media and codecs.media_type(media) != codecs.JSON:
                raise RequestError(415, f"unsupported Content-Type {media!r}; /recommend reads "
                                   "application/json")
            codecs.response_type(request.headers.get("accept"), offered={codecs.JSON})
            body = await _read_body(request, limit)
            return Response(_recommend(recommender, predictor, body),
                            media_type="application/json")
        except RequestError as exc:
            return _error(exc.status, exc.message)
        except Exception as exc:
            logger.exception("internal error in /recommend")
            return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    # /invocations is answered in front of FastAPI, over bare ASGI (see _Invocations).
    app.invocations = _Invocations(predictor, limit)
    return app


def _recommend(recommender: Recommender, predictor: Predictor, body: bytes) -> bytes:
    """The JSON answer of ``/recommend`` for a request body."""
    import scipy.sparse as sp
    request = codecs._parse_json(body, "the body")
    if not isinstance(request, dict) or ("user" in request) == ("users" in request):
        raise RequestError(400, 'the body must be an object with "user" (one user\'s features) '
                           'or "users" (a list of them), "n" and optionally "exclude"')
    single = "user" in request
    users = [request["user"]] if single else request["users"]
    if not isinstance(users, list) or not users:
        raise RequestError(400, '"users" must be a non-empty list of feature vectors')
    n = request.get("n", 10)
    if type(n) is not int or n < 1:
        raise RequestError(400, f'"n" must be a positive integer; got {codecs.json.dumps(n)}')
    exclude = request.get("exclude")
    if exclude is not None:
        lists = [exclude] if single else exclude
        if not isinstance(lists, list) or len(lists) != len(users) or not all(
                isinstance(e, list) and all(type(i) is int for i in e) for e in lists):
            raise RequestError(400, '"exclude" must be a list of item indices for "user", or one '
                               'such list per user for "users"')
    builder = codecs._Builder(predictor.n_features, predictor.dtype)
    for number, user in enumerate(users):
        where = "user" if single else f"user {number}"
        if isinstance(user, dict) and ("features" in user or "data" in user):
            codecs._instance(builder, user, where)
        else:
            builder.element(user, where)
    rows = builder.rows()
    matrix = sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=rows.shape)
    if exclude is not None and len(users) == 1:
        exclude = exclude if single else exclude[0]  # a one-row sparse matrix is one user
    try:
        ids, scores = recommender.recommend(matrix, n, exclude=exclude)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    if ids.ndim == 1:
        ids, scores = ids[None, :], scores[None, :]
    keep = ids >= 0
    out_ids = [row[k].tolist() for row, k in zip(ids, keep)]
    out_scores = [row[k].astype(np.float64).tolist() for row, k in zip(scores, keep)]
    answer = {"items": out_ids, "scores": out_scores}
    if predictor.is_classifier:
        answer["probabilities"] = [predictor.probability(s).tolist() for s in out_scores]
    if any(not math.isfinite(s) for row in out_scores for s in row):
        raise RequestError(400, "a recommendation score is not finite; the user's values "
                           "overflow the model's arithmetic")
    if single:
        answer = {key: value[0] for key, value in answer.items()}
    return codecs.json.dumps(answer).encode()
