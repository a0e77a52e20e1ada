"""Request bodies in, prediction bodies out: the content types of SageMaker's FM inference contract.

Every decoder turns a body into a :class:`Rows` (the CSR arrays the prediction kernel
reads) or raises :class:`RequestError` with the HTTP status and a message naming the
instance, the key and what was expected. Nothing here touches the model beyond its
feature count and dtype, so the decoders are testable without a server.
"""
import io
import json
from typing import NamedTuple

import numpy as np

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"

# Media types read from Content-Type, with the aliases clients send.
REQUEST_TYPES = {JSON: JSON, JSONLINES: JSONLINES, "application/x-jsonlines": JSONLINES,
                 "application/jsonl": JSONLINES, CSV: CSV, RECORDIO: RECORDIO}
# Media types written for Accept, in the order ``*/*`` and ``application/*`` prefer them.
RESPONSE_TYPES = {JSON: JSON, JSONLINES: JSONLINES, "application/x-jsonlines": JSONLINES,
                  "application/jsonl": JSONLINES, RECORDIO: RECORDIO}
_SPARSE_HINT = ('{"features": [dense values]} or {"data": {"features": {"keys": [...], '
                '"shape": [n_features], "values": [...]}}}')


class RequestError(Exception):
    """A request the server refuses: an HTTP status (4xx) and a message for the client.

    Examples
    --------
    >>> err = RequestError(415, "unsupported Content-Type 'text/plain'")
    >>> err.status, str(err)
    (415, "unsupported Content-Type 'text/plain'")
    """

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Rows(NamedTuple):
    """Rows to score, in the CSR layout the kernels read (``int64`` indptr, ``int32`` indices).

    It has the ``shape``, ``indptr``, ``indices`` and ``data`` attributes that
    ``FMModel.predict_csr`` uses, so a request is scored without building a SciPy matrix.

    Examples
    --------
    >>> import numpy as np
    >>> rows = Rows(np.array([0, 1]), np.array([2], np.int32), np.array([1.0]), (1, 3))
    >>> rows.shape[0]
    1
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple


def media_type(header):
    """The lower-case media type of a Content-Type or Accept entry, parameters dropped.

    Examples
    --------
    >>> media_type("Application/JSON; charset=utf-8")
    'application/json'
    """
    return header.split(";", 1)[0].strip().lower()


def request_type(content_type):
    """The canonical request type of a Content-Type header; 415 when unsupported or missing.

    Examples
    --------
    >>> request_type("application/x-jsonlines")
    'application/jsonlines'
    """
    if not content_type:
        raise RequestError(415, "the request has no Content-Type; send one of "
                           f"{_names(REQUEST_TYPES)}")
    kind = REQUEST_TYPES.get(media_type(content_type))
    if kind is None:
        raise RequestError(415, f"unsupported Content-Type {content_type!r}; send one of "
                           f"{_names(REQUEST_TYPES)}")
    return kind


def response_type(accept, offered=None):
    """The response type that best satisfies an Accept header (JSON when absent); 406 if none.

    Media ranges are tried by decreasing ``q`` and, for equal ``q``, in header order;
    ``*/*`` and ``application/*`` give JSON. ``offered`` limits the types the endpoint
    can produce (default: all of ``RESPONSE_TYPES``).

    Examples
    --------
    >>> response_type("text/html;q=0.9, application/jsonlines;q=0.5, */*;q=0.1")
    'application/jsonlines'
    >>> response_type(None)
    'application/json'
    >>> response_type("application/jsonlines, application/json;q=0.5", offered={JSON})
    'application/json'
    """
    if not accept or not accept.strip():
        return JSON
    types = RESPONSE_TYPES if offered is None else {
        name: kind for name, kind in RESPONSE_TYPES.items() if kind in offered}
    ranges = []
    for position, entry in enumerate(accept.split(",")):
        parts = entry.split(";")
        kind = parts[0].strip().lower()
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind and q > 0:
            ranges.append((-q, position, kind))
    for _, _, kind in sorted(ranges):
        if kind in ("*/*", "application/*") and JSON in types.values():
            return JSON
        if kind in types:
            return types[kind]
    raise RequestError(406, f"cannot answer in any type of Accept {accept!r}; accepted: "
                       f"{_names(types)}")


def _names(types):
    return ", ".join(sorted(set(types)))


# --- decoding --------------------------------------------------------------------------------------
class _Builder:
    """Collects rows as (keys, values) in sparse form and checks them in bulk at the end."""

    def __init__(self, n_features, dtype):
        self.n_features = n_features
        self.dtype = dtype
        self.keys = []
        self.values = []
        self.lengths = []

    def dense(self, row, where):
        if not isinstance(row, list):
            raise RequestError(400, f"{where}: features must be a list of numbers or an object "
                               f"with keys, shape and values; got {_kind(row)}")
        if len(row) != self.n_features:
            raise RequestError(400, f"{where} has {len(row)} features; the model expects "
                               f"{self.n_features}")
        values = _numbers(row, f"{where}: features")
        keys = np.flatnonzero(values)
        self.keys.append(keys)
        self.values.append(values[keys])
        self.lengths.append(keys.shape[0])

    def sparse(self, element, where):
        keys, shape, values = element.get("keys"), element.get("shape"), element.get("values")
        if values is None:
            raise RequestError(400, f"{where}: features has no \"values\"; expected {_SPARSE_HINT}")
        if keys is None or (isinstance(keys, list) and not keys and shape is None):
            return self.dense(values, where)  # the protobuf form of a dense vector
        if not isinstance(keys, list) or not isinstance(values, list):
            raise RequestError(400, f"{where}: features keys and values must be lists")
        if not (isinstance(shape, list) and len(shape) == 1 and type(shape[0]) is int):
            raise RequestError(400, f"{where}: features shape must be [n_features] "
                               f"(here [{self.n_features}]); got {_shorten(json.dumps(shape))}")
        if shape[0] != self.n_features:
            raise RequestError(400, f"{where} has shape [{shape[0]}]: {shape[0]} features; the "
                               f"model expects {self.n_features}")
        if len(keys) != len(values):
            raise RequestError(400, f"{where}: features has {len(keys)} keys but {len(values)} "
                               "values")
        self.keys.append(keys)
        self.values.append(values)
        self.lengths.append(len(keys))

    def element(self, element, where):
        if isinstance(element, dict):
            self.sparse(element, where)
        else:
            self.dense(element, where)

    def rows(self):
        """The collected rows as :class:`Rows`, keys checked to be integers in range."""
        n_rows = len(self.lengths)
        if n_rows == 1 and type(self.keys[0]) is list and self.lengths[0] <= _SMALL:
            rows = _small_row(self.keys[0], self.values[0], self.n_features, self.dtype)
            if rows is not None:
                return rows
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=indptr[1:])
        if n_rows == 1:
            keys, values = self.keys[0], self.values[0]
        else:
            keys, values = _joined(self.keys), _joined(self.values)
        keys = _keys(keys, indptr, self.n_features)
        values = _numbers(values, None, indptr)
        data = _finite(values, self.dtype, indptr, keys)
        return _canonical(Rows(indptr, keys, data, (n_rows, self.n_features)))


_SMALL = 256  # rows with at most this many keys are checked in plain Python, faster than NumPy


def _small_row(keys, values, n_features, dtype):
    """One sparse row with sorted, distinct, in-range integer keys and finite numbers, or None.

    The fast path of a typical single-row request; None sends the row through the general
    checks, which also write the error messages.
    """
    previous = -1
    for key in keys:
        if type(key) is not int or key <= previous or key >= n_features:
            return None
        previous = key
    for value in values:
        if type(value) is not float and type(value) is not int:
            return None
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            data = np.array(values, dtype=dtype)
    except OverflowError:
        return None
    if not np.isfinite(data).all():
        return None
    return Rows(np.array([0, len(keys)], dtype=np.int64), np.array(keys, dtype=np.int32), data,
                (1, n_features))


def _joined(parts):
    """Row parts (arrays of dense rows, lists of sparse ones) as one array, or as one list of
    Python numbers when any part is a list."""
    if not any(isinstance(part, list) for part in parts):
        return np.concatenate(parts)
    return [x for part in parts for x in (part.tolist() if isinstance(part, np.ndarray) else part)]


def _kind(value):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _shorten(text, limit=40):
    return text if len(text) <= limit else text[:limit] + "..."


def _row_of(indptr, position):
    return int(np.searchsorted(indptr, position, side="right") - 1)


def _numbers(values, where, indptr=None):
    """``values`` as a 1-D float64 array; 400 naming the first entry that is not a number.

    Only JSON numbers count: ``true`` is not read as 1.
    """
    if isinstance(values, np.ndarray):
        return values.astype(np.float64, copy=False)
    if set(map(type, values)) <= {int, float}:
        try:
            return np.asarray(values, dtype=np.float64)
        except OverflowError:  # an integer beyond the range of a double
            pass
    position, value = next((p, v) for p, v in enumerate(values) if not _is_number(v))
    place = where if where is not None else f"instance {_row_of(indptr, position)}: features"
    raise RequestError(400, f"{place}: value {_shorten(json.dumps(value))} is not a number")


def _is_number(value):
    """Whether a JSON value is a number within the range of a double."""
    if type(value) is int:
        try:
            float(value)
        except OverflowError:
            return False
        return True
    return type(value) is float


def _keys(keys, indptr, n_features):
    """Sparse keys as int32; 400 for a key that is not an integer in ``[0, n_features)``.

    Only JSON integers count: ``true`` is not read as 1.
    """
    if isinstance(keys, np.ndarray):
        array = keys
    elif set(map(type, keys)) <= {int}:
        try:
            array = np.asarray(keys, dtype=np.int64)
        except OverflowError:
            array = np.asarray(keys, dtype=object)  # integers too large for int64
    else:
        position, key = next((p, k) for p, k in enumerate(keys) if type(k) is not int)
        raise RequestError(400, f"instance {_row_of(indptr, position)}: key "
                           f"{_shorten(json.dumps(key))} is not an integer")
    if array.size == 0:
        return np.zeros(0, dtype=np.int32)
    bad = np.flatnonzero((array < 0) | (array >= n_features))
    if bad.size:
        position = int(bad[0])
        raise RequestError(400, f"instance {_row_of(indptr, position)}: key "
                           f"{_shorten(str(array[position]))} is out of range; the model has "
                           f"features 0 to {n_features - 1}")
    return array.astype(np.int32)


def _finite(values, dtype, indptr, keys):
    """``values`` in the model dtype; 400 naming the first NaN, infinite or too large value."""
    with np.errstate(over="ignore", invalid="ignore"):
        data = values.astype(dtype, copy=False)
    if not np.isfinite(data).all():
        position = int(np.flatnonzero(~np.isfinite(data))[0])
        raise RequestError(400, f"instance {_row_of(indptr, position)}: the value of feature "
                           f"{keys[position]} is {float(values[position])!r}; values must be finite "
                           f"(and within the range of {np.dtype(dtype).name})")
    return data


def _canonical(rows):
    """Sum repeated keys of a row (as ``as_fm_csr`` does), so the FM treats them as one feature;
    400 for a sum beyond the range of the dtype."""
    indices, indptr = rows.indices, rows.indptr
    if indices.shape[0] < 2:
        return rows
    step = np.diff(indices.astype(np.int64))
    starts = indptr[1:-1]  # positions where a new row begins (diff index = start - 1)
    increasing = step > 0
    increasing[starts[(starts > 0) & (starts < indices.shape[0])] - 1] = True
    if increasing.all():
        return rows
    import scipy.sparse as sp
    matrix = sp.csr_matrix((rows.data, indices, indptr), shape=rows.shape)
    with np.errstate(over="ignore"):
        matrix.sum_duplicates()
    if not np.isfinite(matrix.data).all():
        position = int(np.flatnonzero(~np.isfinite(matrix.data))[0])
        raise RequestError(400, f"instance {_row_of(matrix.indptr, position)}: the values of "
                           f"feature {matrix.indices[position]} sum to "
                           f"{float(matrix.data[position])!r}; values must be finite (and within "
                           f"the range of {matrix.dtype.name})")
    return Rows(matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32),
                matrix.data, rows.shape)


def _parse_json(text, where):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"{where} is not valid JSON: {exc}") from None


def _instance(builder, instance, where):
    if not isinstance(instance, dict):
        raise RequestError(400, f"{where} must be an object such as {_SPARSE_HINT}; got "
                           f"{_kind(instance)}")
    features = instance.get("features")
    if features is None:
        data = instance.get("data")
        if isinstance(data, dict):
            features = data.get("features")
        elif data is not None:
            features = data  # {"data": [dense values]}
    if features is None:
        raise RequestError(400, f"{where} has no \"features\"; expected {_SPARSE_HINT}")
    builder.element(features, where)


def decode_json(body, n_features, dtype):
    """Rows of an ``application/json`` body: ``{"instances": [instance, ...]}``.

    Each instance is ``{"features": [dense values]}``, ``{"data": {"features": {"keys":
    [...], "shape": [n_features], "values": [...]}}}`` (SageMaker's sparse form) or
    ``{"features": {"keys": ..., "shape": ..., "values": ...}}``. A single instance
    object without ``"instances"`` is accepted too.

    Examples
    --------
    >>> import numpy as np
    >>> body = b'{"instances": [{"features": [0, 2.5, 0]}, {"data": {"features": ' \\
    ...        b'{"keys": [2], "shape": [3], "values": [1]}}}]}'
    >>> rows = decode_json(body, 3, np.float32)
    >>> rows.indptr, rows.indices, rows.data
    (array([0, 1, 2]), array([1, 2], dtype=int32), array([2.5, 1. ], dtype=float32))
    """
    document = _parse_json(body, "the body")
    builder = _Builder(n_features, dtype)
    if isinstance(document, dict) and "instances" not in document and (
            "features" in document or "data" in document):
        instances = [document]
    elif isinstance(document, dict):
        instances = document.get("instances")
        if not isinstance(instances, list):
            raise RequestError(400, "the body has no \"instances\" list; expected "
                               f"{{\"instances\": [{_SPARSE_HINT}, ...]}}")
    else:
        raise RequestError(400, f"the body must be a JSON object {{\"instances\": [...]}}; got "
                           f"{_kind(document)}")
    if not instances:
        raise RequestError(400, "\"instances\" is empty; send at least one instance")
    for number, instance in enumerate(instances):
        _instance(builder, instance, f"instance {number}")
    return builder.rows()


def decode_jsonlines(body, n_features, dtype):
    """Rows of an ``application/jsonlines`` body: one instance object per line.

    Blank lines are skipped; each line is an instance as in :func:`decode_json`.

    Examples
    --------
    >>> import numpy as np
    >>> rows = decode_jsonlines(b'{"features": [1, 0]}\\n{"features": [0, 3]}\\n', 2, np.float64)
    >>> rows.indices, rows.data
    (array([0, 1], dtype=int32), array([1., 3.]))
    """
    builder = _Builder(n_features, dtype)
    number = 0
    for line in body.splitlines():
        if not line.strip():
            continue
        where = f"instance {number} (line {number + 1})"
        _instance(builder, _parse_json(line, where), where)
        number += 1
    if number == 0:
        raise RequestError(400, "the body holds no JSON lines; send one instance per line")
    return builder.rows()


def decode_csv(body, n_features, dtype):
    """Rows of a ``text/csv`` body: one dense row of ``n_features`` numbers per line, no header.

    Examples
    --------
    >>> import numpy as np
    >>> decode_csv(b"1,0,2\\n0,0,0\\n", 3, np.float32).indptr
    array([0, 2, 2])
    """
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2,
                           comments=None)
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"the CSV body is not UTF-8 text: {exc}") from None
    except ValueError as exc:
        raise RequestError(400, f"the CSV body is malformed: {exc}") from None
    if table.shape[0] == 0:
        raise RequestError(400, "the CSV body holds no rows")
    if table.shape[1] != n_features:
        raise RequestError(400, f"the CSV rows have {table.shape[1]} features; the model expects "
                           f"{n_features}")
    bad = ~np.isfinite(table)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise RequestError(400, f"instance {row}: the value of feature {col} is "
                           f"{float(table[row, col])!r}; values must be finite")
    rows, cols = np.nonzero(table)
    indptr = np.zeros(table.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=table.shape[0]), out=indptr[1:])
    values = table[rows, cols]
    return Rows(indptr, cols.astype(np.int32), _finite(values, dtype, indptr, cols),
                (table.shape[0], n_features))


def decode_recordio(body, n_features, dtype):
    """Rows of an ``application/x-recordio-protobuf`` body (SageMaker's ``Record`` messages).

    Read by :func:`fmlearn.io.load_recordio_bytes`: sparse or dense
    ``features["values"]`` tensors of shape ``[n_features]``; labels, if any, are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn.io import recordio_bytes
    >>> decode_recordio(recordio_bytes(np.array([[0.0, 2.0, 0.0]])), 3, np.float32).indices
    array([1], dtype=int32)
    >>> decode_recordio(b"", 3, np.float32)
    Traceback (most recent call last):
    ...
    fmlearn.serve.codecs.RequestError: the RecordIO body holds no records
    """
    if not body:
        raise RequestError(400, "the RecordIO body holds no records")
    from ..io.errors import DataFormatError
    from ..io.recordio import load_recordio_bytes
    try:
        X, _ = load_recordio_bytes(body, n_features=n_features, dtype=dtype, name="<body>")
    except DataFormatError as exc:
        where = f"record {exc.record}: " if exc.record is not None else ""
        raise RequestError(400, f"the RecordIO body is malformed: {where}{exc.problem}") from None
    if X.shape[0] == 0:
        raise RequestError(400, "the RecordIO body holds no records")
    return Rows(X.indptr.astype(np.int64, copy=False), X.indices.astype(np.int32, copy=False),
                X.data.astype(dtype, copy=False), X.shape)


DECODERS = {JSON: decode_json, JSONLINES: decode_jsonlines, CSV: decode_csv,
            RECORDIO: decode_recordio}


# --- encoding --------------------------------------------------------------------------------------
def _check_finite(scores):
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise RequestError(400, f"instance {row}: the prediction is {float(scores[row])!r}; the input "
                           "values overflow the model's arithmetic")


def encode_json(scores, labels):
    """``{"predictions": [{"score": s, "predicted_label": l}, ...]}`` (no labels: score only).

    Scores are written with Python's shortest round-trip repr of the float64 value, so
    a client reads back exactly the number the model computed.

    Examples
    --------
    >>> import numpy as np
    >>> encode_json(np.array([0.25, 0.75]), np.array([0, 1]))
    b'{"predictions":[{"score":0.25,"predicted_label":0},{"score":0.75,"predicted_label":1}]}'
    """
    return ('{"predictions":[' + ",".join(_prediction_objects(scores, labels)) + "]}").encode()


def encode_jsonlines(scores, labels):
    """One ``{"score": s[, "predicted_label": l]}`` object per line, newline-terminated.

    Examples
    --------
    >>> import numpy as np
    >>> encode_jsonlines(np.array([1.5, -2.0]), None)
    b'{"score":1.5}\\n{"score":-2.0}\\n'
    """
    return "".join(item + "\n" for item in _prediction_objects(scores, labels)).encode()


def _prediction_objects(scores, labels):
    """``{"score": s[, "predicted_label": l]}`` as JSON text, one string per row."""
    _check_finite(scores)
    if labels is None:
        return [f'{{"score":{s!r}}}' for s in scores.tolist()]
    return [f'{{"score":{s!r},"predicted_label":{lab}}}'
            for s, lab in zip(scores.tolist(), labels.tolist())]


def encode_recordio(scores, labels):
    """One RecordIO-protobuf ``Record`` per row, with float32 label tensors ``score`` and, for
    classifiers, ``predicted_label``, as SageMaker's FM answers
    (:func:`fmlearn.io.dump_predictions_recordio`).

    Examples
    --------
    >>> import numpy as np
    >>> len(encode_recordio(np.array([0.25, 0.75]), np.array([0, 1])))
    112
    """
    _check_finite(scores)
    from ..io.recordio_write import dump_predictions_recordio
    return dump_predictions_recordio(scores, labels)


ENCODERS = {JSON: encode_json, JSONLINES: encode_jsonlines, RECORDIO: encode_recordio}
CONTENT_TYPES = {JSON: JSON, JSONLINES: JSONLINES, RECORDIO: RECORDIO}
