"""HTTP inference server with SageMaker's hosting contract (FastAPI and uvicorn).

``GET /ping``, ``POST /invocations`` (JSON, JSON lines, CSV and RecordIO-protobuf in;
JSON, JSON lines and RecordIO-protobuf out, as SageMaker's Factorization Machines answer)
and ``POST /recommend`` (top-N items over a catalogue). See :func:`create_app` for the
contract and :func:`serve` to run it; ``fmlearn serve model.fm --port 8080`` calls the
latter. Needs the ``serve`` extra: ``pip install 'fmlearn[serve]'``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .app import DEFAULT_MAX_PAYLOAD_BYTES, Predictor, create_app

if TYPE_CHECKING:
    from .._typing import MatrixLike, Scorer, StrPath

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "Predictor", "create_app", "serve"]


def serve(model_path: StrPath | Scorer, *, host: str = "127.0.0.1", port: int = 8080,
          max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
          items: StrPath | MatrixLike | None = None, log_level: str = "warning") -> None:
    """Load ``model_path`` once and serve it over HTTP with uvicorn until interrupted.

    One process and one event loop: each request's rows are scored by one kernel call
    on the loop's thread. Access logs are written only at ``log_level="info"`` or more
    verbose.

    Parameters
    ----------
    model_path : str, path-like or fitted estimator
        A model file written by :func:`fmlearn.save`, or a SageMaker ``model.tar.gz``
        (:func:`fmlearn.sagemaker.load_model`).
    host : str, default="127.0.0.1"
        The address to listen on (``"0.0.0.0"`` inside a SageMaker container).
    port : int, default=8080
        The TCP port (SageMaker's is 8080).
    max_payload_bytes : int, default=6 * 2**20
        The largest request body accepted; larger ones get 413.
    items : str, path-like, array-like or sparse matrix, default=None
        The item catalogue of ``/recommend`` (see :func:`create_app`).
    log_level : {"critical", "error", "warning", "info", "debug", "trace"}, default="warning"
        uvicorn's log level.

    Examples
    --------
    >>> import inspect
    >>> list(inspect.signature(serve).parameters)   # serve() blocks; the CLI calls it so
    ['model_path', 'host', 'port', 'max_payload_bytes', 'items', 'log_level']
    """
    import uvicorn

    app = create_app(model_path, max_payload_bytes=max_payload_bytes, items=items)
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                access_log=log_level in ("info", "debug", "trace"))
