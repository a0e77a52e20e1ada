"""Reading a file's chunks in a random order, and pooling chunks into larger batches.

A text file is cut at the first line end after every ``block_bytes`` bytes, found by seeking,
so indexing costs one short read per chunk. A RecordIO file is cut between records, found by
reading the 8-byte record headers one after the other and skipping the payloads.
"""
import os
import struct

import numpy as np
import scipy.sparse as sp

from .errors import DataFormatError

_RECORD_HEADER = struct.Struct("<II")  # magic word, then length with a 3-bit continuation flag
_RECORD_MAGIC = 0xCED7230A
_SCAN_BYTES = 1 << 16


def chunk_spans(path, format, block_bytes):
    """The file cut into chunks of at least ``block_bytes`` bytes, ended at a row's end.

    Returns a list of ``(start, end, rows_before)``: byte offsets, and for RecordIO the
    number of rows before ``start`` (None for text, whose lines are counted on error).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.libfm")
    >>> _ = open(path, "w").write("1 0:1\\n0 1:1\\n1 2:1\\n")
    >>> chunk_spans(path, "libsvm", 7)
    [(0, 12, None), (12, 18, None)]
    """
    if format == "recordio":
        return _record_spans(path, block_bytes)
    return _line_spans(path, block_bytes)


def _line_spans(path, block_bytes):
    size = os.path.getsize(path)
    starts = [0]
    with open(path, "rb") as handle:
        while starts[-1] + block_bytes < size:
            pos = starts[-1] + block_bytes - 1  # the chunk ends after the line end at or past here
            handle.seek(pos)
            while True:
                piece = handle.read(_SCAN_BYTES)
                found = piece.find(b"\n")
                if found >= 0 or not piece:
                    pos += found + 1 if found >= 0 else 0
                    break
                pos += len(piece)
            if not piece or pos >= size:
                break
            starts.append(pos)
    return [(start, end, None) for start, end in zip(starts, [*starts[1:], size])]


def _record_spans(path, block_bytes):
    size = os.path.getsize(path)
    spans, start, rows, rows_at_start = [], 0, 0, 0
    block, block_at, pos = b"", 0, 0
    with open(path, "rb") as handle:
        while pos + _RECORD_HEADER.size <= size:
            if pos + _RECORD_HEADER.size > block_at + len(block):
                handle.seek(pos)
                block, block_at = handle.read(_SCAN_BYTES), pos
            magic, word = _RECORD_HEADER.unpack_from(block, pos - block_at)
            if magic != _RECORD_MAGIC:
                break  # the reader names this record when it gets there
            if word >> 29 in (0, 1):  # a whole record, or the first part of one
                if pos - start >= block_bytes:
                    spans.append((start, pos, rows_at_start))
                    start, rows_at_start = pos, rows
                rows += 1
            pos += _RECORD_HEADER.size + ((word & 0x1FFFFFFF) + 3 & ~3)
    spans.append((start, size, rows_at_start))
    return spans


class _Span:
    """The bytes ``[start, end)`` of an open binary file, as a file object named ``name``."""

    def __init__(self, handle, start, end, name):
        handle.seek(start)
        self.handle, self.left, self.name = handle, end - start, name

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        return data


def iter_spans(path, spans, order, read):
    """Yield the chunks of ``spans`` taken in ``order``; ``read(file, n_bytes)`` yields the
    ``(X, y)`` of one span. Errors name the line or record in the whole file.

    Examples
    --------
    >>> import os, tempfile
    >>> from fmlearn.io import iter_chunks
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.libfm")
    >>> _ = open(path, "w").write("1 0:1\\n2 1:1\\n3 2:1\\n")
    >>> read = lambda f, n: iter_chunks(f, n_features=3, format="libsvm", block_bytes=n + 1)
    >>> [y.tolist() for X, y in iter_spans(path, chunk_spans(path, "libsvm", 6), [2, 0, 1], read)]
    [[3.0], [1.0], [2.0]]
    """
    with open(path, "rb") as handle:
        for index in order:
            start, end, rows_before = spans[index]
            try:
                yield from read(_Span(handle, start, end, str(path)), end - start)
            except DataFormatError as exc:
                line = exc.line if exc.line is None else exc.line + _count_lines(handle, start)
                record = exc.record if exc.record is None else exc.record + rows_before
                raise DataFormatError(exc.path, exc.problem, line=line, record=record,
                                      column=exc.column) from None


def _count_lines(handle, end):
    """Line ends in the first ``end`` bytes of ``handle``."""
    handle.seek(0)
    count = 0
    while end > 0:
        piece = handle.read(min(end, 1 << 24))
        count += piece.count(b"\n")
        end -= len(piece)
    return count


def pooled(chunks, *, n_rows=None, n_chunks=None):
    """Join consecutive ``(X, y)`` chunks until each batch holds at least ``n_rows`` rows,
    or else ``n_chunks`` chunks.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> chunks = [(sp.csr_matrix(np.eye(2)), np.array([0.0, 1.0]))] * 3
    >>> [X.shape[0] for X, y in pooled(iter(chunks), n_rows=3)]
    [4, 2]
    >>> [X.shape[0] for X, y in pooled(iter(chunks), n_chunks=3)]
    [6]
    """
    pieces, held = [], 0
    for X, y in chunks:
        pieces.append((X, y))
        held += X.shape[0]
        if held >= n_rows if n_rows is not None else len(pieces) >= n_chunks:
            batch, pieces, held = _stack(pieces), [], 0
            yield batch
    if pieces:
        yield _stack(pieces)


def _stack(pieces):
    if len(pieces) == 1:
        return pieces[0]
    return (sp.vstack([X for X, _ in pieces], format="csr"),
            np.concatenate([y for _, y in pieces]))
