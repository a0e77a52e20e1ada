"""Reading and writing sparse text rows: the machinery shared by the libSVM and FFM formats."""
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit

from .._validation import with_fm_indices
from ..kernels import text as kt
from .errors import DataFormatError
from .._numba_cache import CACHE

_PROBLEMS = {
    kt.BAD_LABEL: "the label {token!r} is not a number",
    kt.NO_COLON: "{token!r} is not {entry}",
    kt.BAD_INDEX: "the feature index in {token!r} is not a non-negative integer",
    kt.NEGATIVE_INDEX: "the feature index in {token!r} is negative",
    kt.BIG_INDEX: f"the feature index in {{token!r}} is larger than {kt.INDEX_LIMIT}",
    kt.BAD_VALUE: "the value in {token!r} is not a number",
    kt.BAD_FIELD: "the field in {token!r} is not a non-negative integer",
    kt.BAD_QID: "{token!r} is not qid:<non-negative integer>",
    kt.TOO_MANY_COLONS: "{token!r} has too many colons for {entry}",
}
_ENTRY = {False: "index:value", True: "field:index:value"}

DEFAULT_BLOCK_BYTES = 64 * 2**20


@dataclass
class ParsedRows:
    """Rows read from text: CSR parts with ``int64`` feature indices in file order."""

    labels: np.ndarray
    lines: np.ndarray
    qids: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    fields: np.ndarray | None
    values: np.ndarray


@njit(cache=CACHE)
def _count_separators(buf):
    lines = 1
    colons = 0
    for c in buf:
        if c == 10:
            lines += 1
        elif c == 58:
            colons += 1
    return lines, colons


def describe(source):
    """The name of a file or file object for messages."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", "<stream>")


def parse_buffer(buf, *, name, with_fields, first_line=1):
    """Parse the complete lines in the uint8 array ``buf`` into ``ParsedRows``.

    Raises ``DataFormatError`` naming ``name``, the line and column for any
    malformed token, non-finite value or number out of range.
    """
    n_lines, n_colons = _count_separators(buf)
    capacity = n_colons // 2 if with_fields else n_colons
    labels = np.empty(n_lines, np.float64)
    lines = np.empty(n_lines, np.int64)
    qids = np.empty(n_lines, np.int64)
    indptr = np.empty(n_lines + 1, np.int64)
    indices = np.empty(capacity, np.int32)
    fields = np.empty(capacity if with_fields else 0, np.int32)
    values = np.empty(capacity, np.float64)
    slow = np.empty((1024 + capacity // 64, 3), np.int64)
    while True:
        n_rows, nnz, n_slow, status, line, column, t0, t1 = kt.tokenize_sparse_text(
            buf, with_fields, first_line, labels, lines, qids, indptr, indices, fields, values, slow)
        if status != kt.SLOW_FULL:
            break
        slow = np.empty((capacity + n_lines, 3), np.int64)
    if status != kt.OK:
        token = bytes(buf[t0:t1]).decode("utf-8", "replace")
        problem = _PROBLEMS[status].format(token=token, entry=_ENTRY[with_fields])
        if status in (kt.BAD_LABEL, kt.BAD_VALUE):
            problem = _non_finite_problem(token) or problem
        raise DataFormatError(name, problem, line=line, column=column)
    _convert_slow(buf, slow[:n_slow], labels, values, lines[:n_rows], indptr[:n_rows + 1], name)
    return ParsedRows(labels[:n_rows], lines[:n_rows], qids[:n_rows], indptr[:n_rows + 1],
                      indices[:nnz], fields[:nnz] if with_fields else None, values[:nnz])


def _non_finite_problem(token):
    number = token.rpartition(":")[2]
    try:
        value = float(number)
    except ValueError:
        return None
    return None if np.isfinite(value) else f"the value {number!r} is not finite"


def _convert_slow(buf, slow, labels, values, lines, indptr, name):
    for entry, start, end in slow:
        text = bytes(buf[start:end])
        value = float(text)
        if entry < 0:
            labels[-1 - entry] = value
            row = -1 - entry
        else:
            values[entry] = value
            row = np.searchsorted(indptr, entry, side="right") - 1
        if not np.isfinite(value):
            raise DataFormatError(name, f"the value {text.decode()!r} is out of the range of a "
                                  "64-bit float", line=int(lines[row]))


def line_of_entry(parsed, entry):
    """The line number holding entry ``entry`` of the parsed rows."""
    return int(parsed.lines[np.searchsorted(parsed.indptr, entry, side="right") - 1])


def feature_columns(parsed, *, name, zero_based, n_features, max_features=None):
    """The zero-based column of every parsed entry and the matrix width.

    ``zero_based`` is True, False or ``"auto"`` (one-based unless a 0 index
    occurs); indices must be below ``n_features`` when it is given, else below
    ``max_features`` (if not None).
    """
    indices = parsed.indices
    if zero_based == "auto":
        zero_based = indices.size == 0 or indices.min() == 0
    if not zero_based:
        zeros = np.flatnonzero(indices == 0)
        if zeros.size:
            raise DataFormatError(name, "feature index 0 in a file read as one-based "
                                  "(pass zero_based=True)", line=line_of_entry(parsed, zeros[0]))
        indices = indices - 1
    width = int(indices.max()) + 1 if indices.size else 0
    if n_features is None and max_features is not None and width > max_features:
        entry = np.flatnonzero(indices >= max_features)[0]
        raise DataFormatError(
            name, f"feature index {parsed.indices[entry]} makes the matrix {width} features "
            f"wide, more than max_features={max_features}; pass n_features (or a larger "
            "max_features) if the data really has that many", line=line_of_entry(parsed, entry))
    if n_features is None:
        n_features = width
    elif width > n_features:
        entry = np.flatnonzero(indices >= n_features)[0]
        raise DataFormatError(
            name, f"feature index {parsed.indices[entry]} is out of range for "
            f"n_features={n_features}", line=line_of_entry(parsed, entry))
    return indices, n_features


def to_csr(parsed, columns, n_features, *, name, dtype, sum_duplicates=False):
    """The CSR matrix of parsed rows with entries at ``columns``, rows sorted by column.

    A column repeated within a row is an error unless ``sum_duplicates``.
    """
    with np.errstate(over="ignore"):
        values = parsed.values.astype(dtype)
    if not np.isfinite(values).all():
        entry = np.flatnonzero(~np.isfinite(values))[0]
        raise DataFormatError(name, f"the value {float(parsed.values[entry])!r} is out of the "
                              f"range of {np.dtype(dtype).name}", line=line_of_entry(parsed, entry))
    shape = (parsed.labels.size, n_features)
    if kt.rows_strictly_increasing(parsed.indptr, columns):  # as most writers leave them
        return with_fm_indices(sp.csr_matrix((values, columns, parsed.indptr), shape=shape,
                                             copy=False))
    order = sp.csr_matrix((np.arange(columns.size, dtype=np.int64), columns, parsed.indptr),
                          shape=shape)
    order.sort_indices()
    permutation = order.data
    same = np.flatnonzero(order.indices[1:] == order.indices[:-1]) + 1
    same = same[~np.isin(same, parsed.indptr)]
    if same.size and not sum_duplicates:
        entry = permutation[same[0]]
        raise DataFormatError(name, f"feature index {parsed.indices[entry]} occurs twice in "
                              "one row", line=line_of_entry(parsed, entry))
    X = sp.csr_matrix((values[permutation], order.indices, order.indptr), shape=shape)
    if same.size:
        with np.errstate(over="ignore"):
            X.sum_duplicates()
        if not np.isfinite(X.data).all():
            row = int(np.searchsorted(X.indptr, np.flatnonzero(~np.isfinite(X.data))[0],
                                      side="right")) - 1
            raise DataFormatError(name, f"the sum of a feature's values in one row is out of the "
                                  f"range of {np.dtype(dtype).name}", line=int(parsed.lines[row]))
    return with_fm_indices(X)



def read_bytes(source):
    """All bytes of a path or binary file object as a uint8 array."""
    if isinstance(source, (str, os.PathLike)):
        return np.fromfile(source, dtype=np.uint8)
    return np.frombuffer(source.read(), dtype=np.uint8)


def iter_blocks(source, block_bytes):
    """Yield ``(first_line, buf)`` for runs of complete lines of about ``block_bytes`` bytes.

    A line longer than a block is carried over as a list of the blocks read so far
    and joined once, when its end arrives: linear in the line's length.
    """
    own = isinstance(source, (str, os.PathLike))
    handle = open(source, "rb") if own else source
    try:
        carry = []  # the start of a line that no block so far has ended
        line = 1
        while True:
            data = handle.read(block_bytes)
            if not data:
                break
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry.append(data)
                continue
            block = b"".join([*carry, data[:cut]])
            carry = [data[cut:]]
            yield line, np.frombuffer(block, dtype=np.uint8)
            line += block.count(b"\n")
        tail = b"".join(carry)
        if tail:
            yield line, np.frombuffer(tail, dtype=np.uint8)
    finally:
        if own:
            handle.close()


def format_rows(X, y, *, fields=None, ids=None, qid=None, zero_based=True):
    """The text of the rows of CSR ``X`` with labels ``y``, as bytes.

    ``ids`` (optional) is the feature id written for each column, else the column.

    Each distinct value is formatted once, with the fewest digits that read
    back to the same number of its dtype; the lines are assembled by a kernel.
    """
    if y is None:
        raise ValueError("the text formats need a label on every row; pass y")
    X = sp.csr_matrix(X)
    X.sort_indices()
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must hold one label per row: X has {X.shape[0]} rows, y has shape "
                         f"{y.shape}")
    labels, label_codes = np.unique(y, return_inverse=True)
    values, value_codes = np.unique(X.data, return_inverse=True)
    strings = [s.encode() for s in np.concatenate([labels.astype(str), values.astype(str)])]
    offsets = np.cumsum([0] + [len(s) for s in strings])
    text = np.frombuffer(b"".join(strings), dtype=np.uint8)
    fields = np.empty(0, np.int64) if fields is None else np.asarray(fields, np.int64)[X.indices]
    qids = np.empty(0, np.int64) if qid is None else np.asarray(qid, dtype=np.int64)
    widest = max(len(s) for s in strings)
    size = X.shape[0] * (widest + 22 * (qid is not None) + 1) + X.nnz * (widest + 2 * 11 + 3)
    out = np.empty(size, dtype=np.uint8)
    length = kt.format_sparse_text(
        out, X.indptr.astype(np.int64),
        (X.indices if ids is None else np.asarray(ids)[X.indices]).astype(np.int64),
        0 if zero_based else 1,
        fields, (value_codes + labels.size).astype(np.int64), label_codes.astype(np.int64), qids,
        text, offsets.astype(np.int64))
    return out[:length].tobytes()
