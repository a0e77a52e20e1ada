"""``fmlearn serve``: the HTTP inference server (:mod:`fmlearn.serve`) for a model file."""
import click

from . import sagemaker
from ._common import CONTEXT, CommandError, debug_option, file_error


@click.command(context_settings=CONTEXT)
@click.argument("model", required=False)
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1; 0.0.0.0 when MODEL "
                             "is omitted (SageMaker)]")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--max-payload-bytes", "max_payload_bytes", type=click.IntRange(min=1),
              default=6 * 2**20, show_default=True, help="Largest request body accepted.")
@click.option("--items", metavar="FILE", help="Item catalogue for recommendations, passed to "
                                              "fmlearn.serve.serve(items=...).")
@click.option("--log-level", "log_level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug", "trace"]))
@debug_option
def serve(model, host, port, max_payload_bytes, items, log_level):
    """Serve MODEL over HTTP (SageMaker's inference contract).

    Without MODEL, SageMaker's /opt/ml/model/model.fm is served on 0.0.0.0:8080.
    Needs the server extra: pip install 'fmlearn[serve]'.
    \f

    Examples
    --------
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(serve, ["--help"])
    >>> "--max-payload-bytes" in result.output
    True
    """
    in_sagemaker = model is None
    if in_sagemaker:
        model = sagemaker.default_paths()["model_out"]
    try:
        with open(model, "rb"):
            pass
    except OSError as exc:
        raise file_error(model, exc) from exc
    try:
        from ..serve import serve as run_server
    except ImportError as exc:
        raise CommandError(f"fmlearn serve needs the server dependencies: pip install "
                           f"'fmlearn[serve]' ({exc})") from exc
    run_server(model, host=host or ("0.0.0.0" if in_sagemaker else "127.0.0.1"), port=port,
               max_payload_bytes=max_payload_bytes, items=items, log_level=log_level)


__test__ = {"serve_command": serve.callback}
