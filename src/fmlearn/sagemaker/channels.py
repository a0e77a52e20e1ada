"""SageMaker's input channels for the container's ``train``: File mode folders (gzip too) and
Pipe mode FIFOs, RecordIO-protobuf or libSVM, read in chunks and re-cut into fixed batches.

SageMaker describes each channel in ``input/config/inputdataconfig.json`` (``ContentType``,
``TrainingInputMode``, ``CompressionType``); File mode puts the channel's files in
``input/data/<channel>/``, Pipe mode streams each pass into the FIFO
``input/data/<channel>_<epoch>``. Nothing is loaded whole.
"""
import json
import os
import time

#: The channel ContentTypes read, and their format.
CONTENT_TYPES = {"application/x-recordio-protobuf": "recordio", "text/libsvm": "libsvm",
                 "text/x-libsvm": "libsvm"}
#: About this many rows per ``partial_fit`` call (a whole number of mini-batches).
BATCH_ROWS = 100_000
#: Bytes of a channel read per chunk.
BLOCK_BYTES = 4 * 2**20
#: How long to wait for SageMaker to create a Pipe mode FIFO.
PIPE_WAIT_S = 600.0


class TrainingError(Exception):
    """A reason training cannot go on, written to ``output/failure``.

    Examples
    --------
    >>> str(TrainingError("no 'train' channel"))
    "no 'train' channel"
    """

def _read_json(path, default):
    """A JSON object from ``path``, or ``default`` when the file does not exist."""
    if not os.path.exists(path):
        return default
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot read {path}: {exc}") from exc
    if not isinstance(value, dict):
        raise TrainingError(f"{path} is not a JSON object")
    return value


def _channel_settings(name, config):
    """``(mode, format or None, gzip)`` of a channel from its ``inputdataconfig.json`` entry."""
    if not isinstance(config, dict):
        raise TrainingError(f"inputdataconfig.json: channel {name!r} is not a JSON object")
    mode = config.get("TrainingInputMode", "File")
    if mode not in ("File", "FastFile", "Pipe"):
        raise TrainingError(f"channel {name!r}: TrainingInputMode {mode!r} is not one of File, "
                            "FastFile, Pipe")
    if config.get("RecordWrapperType", "None") not in ("None", None):
        raise TrainingError(f"channel {name!r}: RecordWrapperType "
                            f"{config['RecordWrapperType']!r} is not read; use None")
    content_type = config.get("ContentType")
    fmt = None
    if content_type:
        fmt = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        if fmt is None:
            raise TrainingError(f"channel {name!r}: ContentType {content_type!r} is not read; "
                                f"use one of {', '.join(CONTENT_TYPES)}")
    gzip = mode != "Pipe" and config.get("CompressionType") == "Gzip"  # Pipe mode inflates
    return mode, fmt, gzip


def _channel_files(folder, name):
    files = sorted(os.path.join(where, f) for where, _, names in os.walk(folder)
                   for f in names if not f.startswith("."))
    if not files:
        raise TrainingError(f"the {name} channel ({folder}) holds no files")
    return files


def _wait_for(path):
    deadline = time.monotonic() + PIPE_WAIT_S
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TrainingError(f"the Pipe mode FIFO {path} did not appear in {PIPE_WAIT_S:g} s")
        time.sleep(0.05)


def _read_stream(handle, name, fmt, n_features):
    """``(X, y)`` chunks of an open binary stream in ``fmt``, "recordio" or "libsvm"."""
    from ..io import iter_libsvm, iter_recordio

    if fmt == "recordio":
        chunks = iter_recordio(handle, n_features=n_features, chunk_bytes=BLOCK_BYTES)
    else:
        chunks = iter_libsvm(handle, n_features=n_features, block_bytes=BLOCK_BYTES)
    rows = 0
    for X, y in chunks:
        if y is None:
            raise TrainingError(f"{name}: record {rows + 1} has no label")
        rows += X.shape[0]
        yield X, y


def _channel_chunks(data_dir, name, settings, epoch, n_features):
    """``(X, y)`` chunks of one pass over channel ``name``, never the whole channel.

    Without a ContentType, a Pipe mode channel is RecordIO-protobuf (SageMaker FM's
    format) and a file is read as :func:`fmlearn.io.detect_format` tells.
    """
    import gzip

    from ..io import detect_format

    mode, fmt, zipped = settings
    if mode == "Pipe":
        sources = [os.path.join(data_dir, f"{name}_{epoch}")]
        _wait_for(sources[0])
    else:
        sources = _channel_files(os.path.join(data_dir, name), name)
    for path in sources:
        kind = fmt or ("recordio" if mode == "Pipe" or zipped else detect_format(path))
        if kind not in ("recordio", "libsvm"):
            raise TrainingError(f"{path}: {kind} data is not read; give RecordIO-protobuf or "
                                "libSVM")
        with gzip.open(path, "rb") if zipped else open(path, "rb") as handle:
            yield from _read_stream(handle, path, kind, n_features)


def _batches(chunks, n_rows):
    """Re-cut ``(X, y)`` chunks into batches of ``n_rows`` rows (the last one shorter), so
    the training calls do not depend on how the channel is split into files or reads."""
    import numpy as np
    import scipy.sparse as sp

    held = []
    for X, y in chunks:
        held.append((X, y))
        if sum(x.shape[0] for x, _ in held) < n_rows:
            continue
        X = sp.vstack([x for x, _ in held], format="csr")
        y = np.concatenate([t for _, t in held])
        start = 0
        while X.shape[0] - start >= n_rows:
            yield X[start:start + n_rows], y[start:start + n_rows]
            start += n_rows
        held = [(X[start:], y[start:])] if start < X.shape[0] else []
    if held:
        yield (sp.vstack([x for x, _ in held], format="csr"),
               np.concatenate([t for _, t in held]))
