"""Fuzz targets for the file readers (libSVM / libFM, FFM, RecordIO-protobuf): bytes in, an outcome out.

Each ``run_*`` function feeds one input to every reader of its format (whole-file and
chunked, with small blocks) and compares what comes out with a reference parser written
here in plain Python from the formats' documentation (for RecordIO, the framing in Python
and the ``Record`` message by protobuf). Its :class:`Outcome` is the worst over the readers:

- ``clean_error``: a ``DataFormatError`` for an input the reference rejects too, naming a
  line (or record) where the reference finds a problem;
- ``correct``: the input is valid and every reader returns exactly what the reference reads;
- ``wrong_value``: a result that differs, a bad input accepted, a valid one refused, or an
  error naming a place where nothing is wrong;
- ``other_exception``: any other exception.

:func:`libsvm_seeds`, :func:`ffm_seeds` and :func:`recordio_seeds` give valid inputs,
:func:`mutate` breaks or bends one, :func:`random_libsvm`, :func:`random_ffm` and
:func:`random_recordio` draw new ones; ``TARGETS`` maps each format to its seeds and run
function. Import with ``bench/`` on ``sys.path``: ``from fuzz_targets import readers``.
"""
import io
import math
import re
import struct
from dataclasses import dataclass

import numpy as np

from fmlearn.io import (DataFormatError, iter_ffm, iter_libsvm, iter_recordio, load_ffm,
                        load_libsvm, load_recordio_bytes)

CLEAN_ERROR, CORRECT, WRONG_VALUE, OTHER_EXCEPTION = ("clean_error", "correct", "wrong_value",
                                                      "other_exception")
GOOD = (CLEAN_ERROR, CORRECT)
INDEX_LIMIT = 2**31 - 1
ITER_FEATURES = 40  # n_features given to the chunked readers
BLOCKS = (1, 7, 64)  # block sizes of the chunked text readers


@dataclass
class Outcome:
    """What an input led to: ``kind`` (one of the four outcomes) and the details."""

    kind: str
    detail: str = ""


_RANK = {CORRECT: 0, CLEAN_ERROR: 0, WRONG_VALUE: 1, OTHER_EXCEPTION: 2}


def _worst(outcomes):
    """The first of the worst outcomes; when all are good, the first reader's."""
    worst = max(outcomes, key=lambda o: _RANK[o.kind])
    return worst if worst.kind not in GOOD else outcomes[0]


# --- the text reference ---------------------------------------------------------------------------
_NUMBER = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INDEX = re.compile(rb"[0-9]+")


class _Bad(Exception):
    """A problem on a line."""


def _number(token):
    """A value token as the format defines it: a finite decimal number."""
    if not _NUMBER.fullmatch(token):
        raise _Bad(f"{token!r} is not a number")
    value = float(token.decode())
    if not math.isfinite(value):
        raise _Bad(f"{token!r} is not finite")
    return value


def _index(token):
    if not _INDEX.fullmatch(token) or int(token) > INDEX_LIMIT:
        raise _Bad(f"{token!r} is not an index")
    return int(token)


def _line(tokens, with_fields):
    """``(label, qid, [(field, index, value), ...])`` of a data line's tokens."""
    label = _number(tokens[0])
    qid = -1
    rest = tokens[1:]
    if rest and rest[0].startswith(b"qid:") and rest[0].count(b":") == 1:
        qid = _index(rest[0][4:])
        rest = rest[1:]
    entries = []
    for token in rest:
        parts = token.split(b":")
        if len(parts) != (3 if with_fields else 2):
            raise _Bad(f"{token!r} has {len(parts) - 1} colons")
        field = _index(parts[0]) if with_fields else -1
        entries.append((field, _index(parts[-2]), _number(parts[-1])))
    return label, qid, entries


@dataclass
class TextReference:
    """What a text file holds: ``rows`` of ``(line, label, qid, {column: value}, [(field,
    column), ...])``, the ``width`` and the lines with ``problems`` (None for the file as a
    whole)."""

    rows: list
    width: int
    problems: set


def read_text(data, *, with_fields, zero_based=True, n_features=None, max_features=None,
              dtype=np.float64, conflicts="raise"):
    """The reference reading of libSVM (``with_fields=False``) or FFM text ``data``.

    Lines split at ``\\n``; ``#`` starts a comment; tokens are separated by spaces, tabs and
    carriage returns. ``conflicts`` is ``"raise"`` (a column in two fields, or twice in a
    row, is a problem) or ``"first"`` (the first field counts, repeats are summed in
    ``dtype`` in file order).
    """
    rows, problems = [], set()
    for number, line in enumerate(data.split(b"\n"), 1):
        tokens = [t for t in re.split(rb"[ \t\r]+", line.split(b"#", 1)[0]) if t]
        if tokens:
            try:
                rows.append((number, *_line(tokens, with_fields)))
            except _Bad:
                problems.add(number)
    columns = []  # (line, row position, field, column, value) in file order
    for position, (number, _, _, entries) in enumerate(rows):
        for field, index, value in entries:
            if not zero_based and index == 0:
                problems.add(number)
            columns.append((number, position, field, index if zero_based else index - 1, value))
    width = max((c[3] for c in columns), default=-1) + 1
    limit = n_features if n_features is not None else max_features
    if limit is not None:
        problems.update(c[0] for c in columns if c[3] >= limit)
    if n_features is not None:
        width = n_features
    first = {}
    for number, _, field, column, _ in columns:
        if first.setdefault(column, field) != field and conflicts == "raise":
            problems.add(number)
    kind = np.dtype(dtype).type
    table = [{} for _ in rows]
    pairs = [[] for _ in rows]
    with np.errstate(over="ignore"):
        for number, position, field, column, value in columns:
            pairs[position].append((field, column))
            cast = kind(value)
            if not np.isfinite(cast):
                problems.add(number)
            elif column in table[position]:
                if conflicts == "raise":
                    problems.add(number)
                total = table[position][column] + cast
                if not np.isfinite(total):
                    problems.add(number)
                table[position][column] = total
            else:
                table[position][column] = cast
    out = [(number, label, qid, {c: float(v) for c, v in row.items()}, entries)
           for (number, label, qid, _), row, entries in zip(rows, table, pairs)]
    if not rows:
        problems.add(None)
    return TextReference(out, width, problems)


def _csr_rows(X):
    return [dict(zip(X.indices[X.indptr[r]:X.indptr[r + 1]].tolist(),
                     X.data[X.indptr[r]:X.indptr[r + 1]].astype(np.float64).tolist()))
            for r in range(X.shape[0])]


def _compare_rows(reference_rows, X, y, qid=None):
    """What differs between the reader's rows and the reference's, or None."""
    want = [row[3] for row in reference_rows]
    if X.shape[0] != len(want):
        return f"{X.shape[0]} rows, the reference has {len(want)}"
    got = _csr_rows(X)
    for r, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"row {r} (line {reference_rows[r][0]}) is {a}, the reference reads {b}"
    labels = [row[1] for row in reference_rows]
    if y.tolist() != labels:
        return f"labels {y.tolist()}, the reference reads {labels}"
    if qid is not None and qid.tolist() != [row[2] for row in reference_rows]:
        return f"qids {qid.tolist()}, the reference reads {[row[2] for row in reference_rows]}"
    return None


def _refusal(exc, problems, where="line"):
    """The outcome of a ``DataFormatError`` when the reference finds ``problems``."""
    place = getattr(exc, where)
    if not problems:
        return Outcome(WRONG_VALUE, f"refused a valid input: {exc}")
    if place not in problems:
        return Outcome(WRONG_VALUE, f"the error names {where} {place}, but the problems are on "
                                    f"{sorted(problems, key=str)}: {exc}")
    return Outcome(CLEAN_ERROR, str(exc))


def _whole(read, problems, check, name, where="line"):
    """Outcome of a whole-input reader ``read()``: as :func:`_chunked` of its one result."""
    def once():
        yield read()
    return _chunked(once(), None, problems, lambda result, _: check(result), name, where)


def _chunked(chunks, rows, problems, check_chunk, name, where="line"):
    """Outcome of a chunked reader where the reference finds ``problems``: the chunks before
    any error equal the reference's ``rows`` (None: not counted); ``check_chunk(chunk,
    start)`` says what differs from row ``start`` on."""
    seen = 0
    try:
        for chunk in chunks:
            difference = check_chunk(chunk, seen)
            if difference:
                return Outcome(WRONG_VALUE, f"{name}, rows from {seen}: {difference}")
            seen += chunk[0].shape[0]
    except DataFormatError as exc:
        return _refusal(exc, problems, where)
    except Exception as exc:  # noqa: BLE001 - classified
        return Outcome(OTHER_EXCEPTION, f"{name}: {exc!r}")
    if problems:
        return Outcome(WRONG_VALUE, f"{name} accepted an input with problems in {where}s "
                                    f"{sorted(problems, key=str)}")
    if rows is not None and seen != len(rows):
        return Outcome(WRONG_VALUE, f"{name} gave {seen} rows, the reference {len(rows)}")
    return Outcome(CORRECT)


def run_libsvm(data):
    """Read ``data`` with ``load_libsvm`` (zero-based float64, one-based float32) and
    ``iter_libsvm`` (blocks of 1, 7 and 64 bytes); the worst outcome, or the first
    reader's when all are good.

    Examples
    --------
    >>> run_libsvm(b"1 qid:3 0:2.5 7:1e-3\\n# comment\\n-1\\t2:4\\r\\n").kind
    'correct'
    >>> run_libsvm(b"1 0:2.5\\n1 0:0." + b"0" * 400 + b"1e1000\\n").kind
    'clean_error'
    """
    outcomes = []
    for dtype, zero_based in [(np.float64, True), (np.float32, False)]:
        ref = read_text(data, with_fields=False, zero_based=zero_based, dtype=dtype)

        def check(result, ref=ref):
            X, y, qid = result
            if X.shape[1] != ref.width:
                return f"width {X.shape[1]}, the reference {ref.width}"
            return _compare_rows(ref.rows, X, y, qid)

        outcomes.append(_whole(lambda: load_libsvm(io.BytesIO(data), dtype=dtype,
                                                   zero_based=zero_based, query_id=True),
                               ref.problems, check, f"load_libsvm(dtype={dtype.__name__}, "
                                           f"zero_based={zero_based})"))
    ref = read_text(data, with_fields=False, n_features=ITER_FEATURES)
    for block in BLOCKS:
        chunks = iter_libsvm(io.BytesIO(data), n_features=ITER_FEATURES, dtype=np.float64,
                             block_bytes=block, query_id=True)
        outcomes.append(_chunked(chunks, ref.rows, ref.problems - {None}, lambda chunk, start:
                                 _compare_rows(ref.rows[start:start + chunk[0].shape[0]], *chunk),
                                 f"iter_libsvm(block_bytes={block})"))
    return _worst(outcomes)


def _check_fields(fields, rows, width):
    """What differs between ``fields`` and the first field of each column in ``rows``."""
    want = np.full(width, -1)
    for row in rows:
        for field, column in row[4]:
            if want[column] < 0:
                want[column] = field
    if fields.shape != (width,) or not np.array_equal(fields, want):
        return f"fields {fields.tolist()}, the reference {want.tolist()}"
    return None


def run_ffm(data):
    """Read ``data`` with ``load_ffm`` (``field_conflicts`` "raise" and "first", float64 and
    float32) and ``iter_ffm`` (blocks of 1, 7 and 64 bytes); the worst outcome, or the first
    reader's when all are good.

    Examples
    --------
    >>> run_ffm(b"1 0:0:1 1:3:0.5\\n0 0:1:1 1:2:1\\n").kind
    'correct'
    >>> run_ffm(b"1 0:2147483646:1\\n").kind
    'clean_error'
    """
    outcomes = []
    for conflicts, dtype in [("raise", np.float64), ("first", np.float32)]:
        ref = read_text(data, with_fields=True, dtype=dtype, conflicts=conflicts,
                        max_features=2**26)

        def check(result, ref=ref):
            X, y, fields = result
            if X.shape[1] != ref.width:
                return f"width {X.shape[1]}, the reference {ref.width}"
            return _compare_rows(ref.rows, X, y) or _check_fields(fields, ref.rows, ref.width)

        outcomes.append(_whole(lambda: load_ffm(io.BytesIO(data), dtype=dtype,
                                                field_conflicts=conflicts), ref.problems, check,
                               f"load_ffm(field_conflicts={conflicts!r})"))
    ref = read_text(data, with_fields=True, n_features=ITER_FEATURES, conflicts="first")

    def check_chunk(chunk, start):
        X, y, fields = chunk
        rows = ref.rows[start:start + X.shape[0]]
        return _compare_rows(rows, X, y) or _check_fields(fields, rows, ITER_FEATURES)

    for block in BLOCKS:
        chunks = iter_ffm(io.BytesIO(data), n_features=ITER_FEATURES, dtype=np.float64,
                          field_conflicts="first", block_bytes=block)
        outcomes.append(_chunked(chunks, ref.rows, ref.problems - {None}, check_chunk,
                                 f"iter_ffm(block_bytes={block})"))
    return _worst(outcomes)


# --- RecordIO ------------------------------------------------------------------------------------
MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
MAGIC_FLOAT = struct.unpack("<f", _MAGIC_BYTES)[0]  # a float32 whose bytes are the magic word
_LENGTH_MASK = (1 << 29) - 1


class _Ambiguous(Exception):
    """protobuf's parsers disagree on the input, or the sum of repeats depends on its order."""


def _record_rows(payload):
    """``({column: value}, width, label or None, dense)`` of one payload, read by protobuf;
    ``_Bad`` where protobuf does not parse it or it is not a valid row."""
    from google.protobuf.message import DecodeError

    from fmlearn.io._record_pb2 import Record
    try:
        record = Record.FromString(payload)
    except DecodeError as exc:
        raise _Bad(str(exc)) from None
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet
        unknown = UnknownFieldSet(record)
    except ImportError:  # protobuf < 4.24
        unknown = record.UnknownFields()
    if any(field.field_number in (1, 2) for field in unknown):
        raise _Ambiguous("a map entry with unknown fields: upb and the C++ parser differ")
    if "values" not in record.features:
        raise _Bad("no features")
    member = record.features["values"].WhichOneof("value")
    if member not in ("float32_tensor", "float64_tensor", "int32_tensor"):
        raise _Bad("features not numeric")
    tensor = getattr(record.features["values"], member)
    values, keys, shape = list(tensor.values), list(tensor.keys), list(tensor.shape)
    if len(shape) > 1:
        raise _Bad("shape of several dimensions")
    dense = not keys
    if keys:
        if len(keys) != len(values) or not shape or shape[0] > INDEX_LIMIT or \
                max(keys) >= shape[0]:
            raise _Bad("sparse tensor")
        width = shape[0]
    else:
        if values and shape and shape[0] != len(values):
            raise _Bad("dense tensor with another shape")
        width = len(values) if values else (shape[0] if shape else 0)
        if width > INDEX_LIMIT:
            raise _Bad("too wide")
        keys = list(range(len(values)))
    label = None
    if "values" in record.label:
        member = record.label["values"].WhichOneof("value")
        if member not in ("float32_tensor", "float64_tensor", "int32_tensor"):
            raise _Bad("label not numeric")
        label_values = list(getattr(record.label["values"], member).values)
        if len(label_values) != 1 or not math.isfinite(label_values[0]):
            raise _Bad("label not one finite value")
        label = float(label_values[0])
    return list(zip(keys, values)), width, label, dense


def _payloads(data):
    """The payloads of the RecordIO framing of ``data`` and the error's record number or None
    (a truncated or corrupt frame, counted from 1)."""
    payloads, parts, pos = [], [], 0
    while pos < len(data):
        if len(data) - pos < 8 or struct.unpack_from("<I", data, pos)[0] != MAGIC:
            return payloads, len(payloads) + 1
        head = struct.unpack_from("<I", data, pos + 4)[0]
        flag, length = head >> 29, head & _LENGTH_MASK
        if flag not in ((2, 3) if parts else (0, 1)) or pos + 8 + (-length % 4) + length > len(data):
            return payloads, len(payloads) + 1
        parts.append(data[pos + 8:pos + 8 + length])
        pos += 8 + length + (-length % 4)
        if flag in (0, 3):
            payloads.append(_MAGIC_BYTES.join(parts))
            parts = []
    return payloads, (len(payloads) + 1 if parts else None)


@dataclass
class RecordReference:
    """What RecordIO bytes hold: ``rows`` of ``{column: value}`` (zeros dropped), the
    ``width``, ``labels`` (or None) and the 1-based records with ``problems`` (None for the
    input as a whole)."""

    rows: list
    width: int
    labels: list
    problems: set


def read_recordio(data, *, n_features=None, dtype=np.float64):
    """The reference reading of RecordIO-protobuf ``data``; ``_Ambiguous`` where protobuf's
    parsers disagree or an overflow depends on the order repeats are summed in."""
    payloads, framing = _payloads(data)
    problems = {framing} if framing else set()
    rows, labels, width, labelled = [], [], n_features, None
    kind = np.dtype(dtype).type
    for number, payload in enumerate(payloads, 1):
        try:
            entries, record_width, label, dense = _record_rows(payload)
        except _Bad:
            problems.add(number)
            continue
        width = record_width if width is None else width
        labelled = (label is not None) if labelled is None else labelled
        if record_width != width or (label is not None) != labelled:
            problems.add(number)
        row = {}
        with np.errstate(over="ignore"):
            for k, v in entries:
                row.setdefault(k, []).append(float(kind(v)))
        if not all(map(math.isfinite, (v for vs in row.values() for v in vs))):
            problems.add(number)
            continue
        largest = float(np.finfo(dtype).max)
        for k, vs in row.items():
            if len(vs) > 2 and math.fsum(map(abs, vs)) > largest:
                raise _Ambiguous("repeats whose sum may overflow in some orders")
            row[k] = math.fsum(vs)
            if abs(row[k]) > largest:
                problems.add(number)
        rows.append({k: v for k, v in row.items() if v != 0 or not dense})
        labels.append(label)
    if not payloads and not problems:
        problems.add(None)
    return RecordReference(rows, width or 0, labels if labelled else None, problems)


def _compare_records(reference_rows, reference_labels, X, y, dtype):
    if X.shape[0] != len(reference_rows):
        return f"{X.shape[0]} rows, the reference has {len(reference_rows)}"
    got = _csr_rows(X)
    rtol = 4 * np.finfo(dtype).eps
    for r, (a, b) in enumerate(zip(got, reference_rows)):
        a = {k: v for k, v in a.items() if v != 0 or k in b}
        if a.keys() != b.keys() or any(not math.isclose(a[k], b[k], rel_tol=rtol, abs_tol=0)
                                       for k in a):
            return f"row {r} is {a}, the reference reads {b}"
    if (y is None) != (reference_labels is None) or (
            y is not None and y.tolist() != reference_labels):
        return f"labels {y if y is None else y.tolist()}, the reference {reference_labels}"
    return None


def run_recordio(data):
    """Read ``data`` with ``load_recordio_bytes`` (float64 and float32) and ``iter_recordio``
    (chunks of 1 and 3 records, and of 64 bytes); the worst outcome, or the first reader's
    when all are good.

    Examples
    --------
    >>> from fmlearn.io import recordio_bytes
    >>> body = recordio_bytes(np.array([[0.0, 2.0], [1.5, 0.0]]), y=[1, 0])
    >>> run_recordio(body).kind, run_recordio(body[:-3]).kind
    ('correct', 'clean_error')
    """
    outcomes = []
    for dtype in (np.float64, np.float32):
        try:
            ref = read_recordio(data, dtype=dtype)
        except _Ambiguous as exc:
            return _unchecked(lambda: load_recordio_bytes(data, dtype=dtype), str(exc))
        outcomes.append(_whole(lambda: load_recordio_bytes(data, dtype=dtype), ref.problems,
                               _record_check(ref, dtype), f"load_recordio_bytes(dtype="
                               f"{dtype.__name__})", "record"))
    ref = read_recordio(data)
    for chunk_size, chunk_bytes in [(1, None), (3, None), (100, 64)]:
        chunks = iter_recordio(io.BytesIO(data), chunk_size=chunk_size, chunk_bytes=chunk_bytes,
                               dtype=np.float64)
        outcomes.append(_chunked(chunks, ref.rows, ref.problems, _record_check(ref, np.float64),
                                 f"iter_recordio(chunk_size={chunk_size}, "
                                 f"chunk_bytes={chunk_bytes})", "record"))
    return _worst(outcomes)


def _record_check(ref, dtype):
    """What differs between a reader's ``(X, y)`` and the reference: all rows, or those from
    ``start`` on."""
    def check(result, start=None):
        X, y = result
        stop = len(ref.rows) if start is None else start + X.shape[0]
        start = start or 0
        if X.shape[1] != ref.width:
            return f"width {X.shape[1]}, the reference {ref.width}"
        labels = None if ref.labels is None else ref.labels[start:stop]
        return _compare_records(ref.rows[start:stop], labels, X, y, dtype)
    return check


def _unchecked(read, why):
    """The outcome of a reader whose result the reference cannot tell: only how it ends."""
    try:
        read()
    except DataFormatError as exc:
        return Outcome(CLEAN_ERROR, str(exc))
    except Exception as exc:  # noqa: BLE001 - classified
        return Outcome(OTHER_EXCEPTION, repr(exc))
    return Outcome(CORRECT, f"not checked: {why}")


# --- generators ----------------------------------------------------------------------------------
_ODD_NUMBERS = [b"nan", b"inf", b"-inf", b"1e400", b"-1e400", b"1e-400", b"4.9e-324", b"3e38",
                b"4e38", b"-3.5e38", b"0." + b"0" * 400 + b"1e1000", b"1e" + b"9" * 25,
                b"123456789012345678901234567890", b".", b"e5", b"1e", b"--1", b"1.2.3", b"",
                b"0x10", b"1_0", b"+.5", b"5.", b"\xd9\xa1", b"1e+", b"00012.5000", b"-0",
                b"1" + b"0" * 30 + b"e-30", b"0." + b"0" * 30 + b"1e31"]
_ODD_INDICES = [b"2147483647", b"2147483648", b"-1", b"", b"a", b"+1", b"007",
                b"99999999999999999999", b"1.5", b"41", b"1 "]
_SEPARATORS = [b" ", b" ", b" ", b"\t", b"  ", b" \r "]


def _random_number(rng, odd):
    if rng.random() < odd:
        return _ODD_NUMBERS[rng.integers(len(_ODD_NUMBERS))]
    kind = rng.integers(4)
    if kind == 0:
        return str(int(rng.integers(-3, 4))).encode()
    if kind == 1:
        return repr(float(np.round(rng.normal() * 10, int(rng.integers(0, 6))))).encode()
    if kind == 2:
        return f"{rng.normal():.{int(rng.integers(1, 20))}e}".encode()
    return repr(float(rng.normal() * 10.0 ** rng.integers(-30, 30))).encode()


def _random_text(rng, with_fields, odd):
    lines = []
    for _ in range(int(rng.integers(0, 7))):
        if rng.random() < 0.15:
            lines.append([b"", b"# a comment", b" \t", b"#", b"\r"][rng.integers(5)])
            continue
        tokens = [_random_number(rng, odd)]
        if rng.random() < 0.2:
            tokens.append(b"qid:" + str(int(rng.integers(0, 5))).encode())
        for index in rng.choice(12, int(rng.integers(0, 6)), replace=False).tolist():
            entry = (_ODD_INDICES[rng.integers(len(_ODD_INDICES))] if rng.random() < odd
                     else str(index).encode()) + b":" + _random_number(rng, odd)
            if with_fields:  # mostly one field per feature
                field = index % 3 if rng.random() >= 1.5 * odd else int(rng.integers(0, 3))
                entry = str(field).encode() + b":" + entry
            tokens.append(entry)
        if len(tokens) > 1 and rng.random() < odd:
            tokens.append(tokens[-1])  # a repeated feature
        line = tokens[0]
        for token in tokens[1:]:
            line += _SEPARATORS[rng.integers(len(_SEPARATORS))] + token
        if rng.random() < 0.1:
            line += b" # trailing"
        lines.append(line + (b"\r" if rng.random() < 0.1 else b""))
    return b"\n".join(lines) + (b"\n" if rng.random() < 0.8 else b"")


def random_libsvm(rng, odd=0.02):
    """A random libSVM / libFM file from the NumPy generator ``rng``; each number or index
    is an odd token (non-finite, overflowing, malformed) with probability ``odd``."""
    return _random_text(rng, False, odd)


def random_ffm(rng, odd=0.02):
    """A random FFM file, as :func:`random_libsvm`; a feature is in one field except with
    probability ``1.5 * odd``."""
    return _random_text(rng, True, odd)


def _tensor_payload(rng, width, labelled):
    """One ``Record`` payload written by protobuf: a sparse or dense Float32, Float64 or
    Int32 tensor, sometimes with the magic word's float among its values, and a label."""
    from fmlearn.io._record_pb2 import Record
    record = Record()
    member = ["float32_tensor", "float64_tensor", "int32_tensor"][rng.integers(3)]
    tensor = getattr(record.features["values"], member)
    dense = rng.random() < 0.3
    n = width if dense else int(rng.integers(0, width + 1))
    if member == "int32_tensor":
        values = rng.integers(-1000, 1000, n).tolist()
    else:
        values = (rng.normal(size=n) * 10.0 ** rng.integers(-3, 4)).tolist()
        if n and rng.random() < 0.3 and member == "float32_tensor":
            values[rng.integers(n)] = MAGIC_FLOAT
    tensor.values.extend(values)
    if not dense:
        tensor.keys.extend(sorted(rng.choice(width, n, replace=False).tolist()))
    if not dense or rng.random() < 0.5:
        tensor.shape.append(width)
    if labelled:
        record.label["values"].float32_tensor.values.append(float(rng.integers(0, 2)))
    return record.SerializeToString()


def frame(payload, rng=None):
    """RecordIO frames of one payload: whole, or (with ``rng``, sometimes) split at magic words
    as MXNet's writer splits it."""
    cuts = [m.start() for m in re.finditer(re.escape(_MAGIC_BYTES), payload)]
    if rng is None or not cuts or rng.random() < 0.3:
        parts = [payload]
    else:
        chosen = sorted(c for c in cuts if rng.random() < 0.7)
        parts, start = [], 0
        for cut in chosen:
            if cut >= start:
                parts.append(payload[start:cut])
                start = cut + 4
        parts.append(payload[start:])
    out = b""
    for i, part in enumerate(parts):
        flag = 0 if len(parts) == 1 else (1 if i == 0 else 3 if i == len(parts) - 1 else 2)
        out += struct.pack("<II", MAGIC, flag << 29 | len(part)) + part + b"\0" * (-len(part) % 4)
    return out


def random_recordio(rng):
    """Random RecordIO-protobuf bytes of 1 to 5 records of one width, from ``rng``."""
    width, labelled = int(rng.integers(1, 6)), rng.random() < 0.7
    return b"".join(frame(_tensor_payload(rng, width, labelled), rng)
                    for _ in range(rng.integers(1, 6)))


_SPECIAL = b" \t\r\n:#.-+eE0123456789q"


def mutate(data, rng):
    """One random change to an input: a byte flipped or set to a format character, bytes
    inserted, deleted or repeated, the input cut short or, for RecordIO, a length word or
    continuation flag rewritten."""
    data = bytearray(data)
    op = int(rng.integers(7))
    at = int(rng.integers(0, len(data) + 1))
    if op == 0 and data:
        data[min(at, len(data) - 1)] ^= 1 << int(rng.integers(8))
    elif op == 1 and data:
        data[min(at, len(data) - 1)] = _SPECIAL[rng.integers(len(_SPECIAL))]
    elif op == 2:
        data[at:at] = bytes(rng.choice(list(_SPECIAL), int(rng.integers(1, 4))).tolist())
    elif op == 3:
        del data[at:at + int(rng.integers(1, 5))]
    elif op == 4:
        end = min(len(data), at + int(rng.integers(1, 16)))
        data[at:at] = data[at:end]
    elif op == 5:
        del data[at:]
    else:
        heads = [m.start() + 4 for m in re.finditer(re.escape(_MAGIC_BYTES), bytes(data))
                 if m.start() + 8 <= len(data)]
        if heads:
            pos = heads[rng.integers(len(heads))]
            length = struct.unpack_from("<I", data, pos)[0] & _LENGTH_MASK
            length = [0, 1, 2**29 - 1, 2**28, length + 4, max(0, length - 4), length + 1,
                      len(data)][rng.integers(8)]
            struct.pack_into("<I", data, pos, int(rng.integers(8)) << 29 | length)
    return bytes(data)


def _seeds(draw, fixed):
    rng = np.random.default_rng(0)
    return {**fixed, **{f"random{i}": draw(rng) for i in range(4)}}


def _valid(draw):
    """``draw`` without odd tokens, drawn again until a file has a data line."""
    def valid(rng):
        while True:
            data = draw(rng, odd=0)
            if re.search(rb"(?m)^[ \t\r]*[^#\s]", data):
                return data
    return valid


def libsvm_seeds():
    """Valid libSVM / libFM files: the format's corners and random ones.

    Examples
    --------
    >>> {name: run_libsvm(data).kind for name, data in libsvm_seeds().items()}["corners"]
    'correct'
    """
    return _seeds(_valid(random_libsvm), {
        "plain": b"1 0:2.5 3:1\n0 2:1\n",
        "corners": b"# header\r\n1 qid:2 3:4 0:2 # trailing\r\n\r\n  \t\r\n-1\t2:1e-3\n2.5e1\n"})


def ffm_seeds():
    """Valid FFM files: the format's corners and random ones."""
    return _seeds(_valid(random_ffm), {"plain": b"1 0:0:1 1:3:0.5\n0 0:1:1 1:2:1\n",
                               "corners": b"-1\t2:5:0.25 0:1:3e2\r\n# c\n\n1 2:5:1\n"})


def recordio_seeds():
    """Valid RecordIO-protobuf inputs, some with records split at magic words."""
    return _seeds(random_recordio, {})


# format -> (seeds, run): what bench/fuzz.py needs of a target, with ``mutate``
TARGETS = {"libsvm": (libsvm_seeds, run_libsvm), "ffm": (ffm_seeds, run_ffm),
           "recordio": (recordio_seeds, run_recordio)}
