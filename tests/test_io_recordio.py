"""SageMaker RecordIO-protobuf: fmlearn's numba codec against protobuf and the SageMaker SDK."""
import io
import json
import os
import struct
import subprocess
import sys

os.environ["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"  # before sagemaker is imported

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402
from sagemaker.amazon import record_pb2 as sdk_pb2  # noqa: E402
from sagemaker.amazon.common import (  # noqa: E402
    _write_recordio,
    read_recordio,
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)

from fmlearn.io import _record_pb2  # noqa: E402
from fmlearn.io import recordio, recordio_write  # noqa: E402
from fmlearn.io.errors import DataFormatError  # noqa: E402
from fmlearn.io import (  # noqa: E402
    dump_predictions_recordio,
    dump_recordio,
    iter_recordio,
    load_recordio,
    load_recordio_bytes,
    recordio_bytes,
)

MAGIC = 0xCED7230A
MAGIC_FLOAT = np.array([MAGIC], np.uint32).view(np.float32)[0]  # a float whose bytes are the magic


def random_csr(n_rows, n_features, nnz_per_row, rng, empty_rows=(3,)):
    counts = rng.integers(0, 2 * nnz_per_row + 1, n_rows)
    counts[[r for r in empty_rows if r < n_rows]] = 0
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([np.sort(rng.choice(n_features, c, replace=False)) for c in counts])
    data = rng.normal(size=indices.size).astype(np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_features))


def random_rows(n_rows=200, n_features=500, nnz_per_row=10, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    X = random_csr(n_rows, n_features, nnz_per_row, rng)
    y = rng.normal(size=n_rows).astype(np.float32) if labels else None
    return X, y


def sdk_sparse_bytes(X, y=None):
    buffer = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buffer, X, y)
    return buffer.getvalue()


def frame(payloads):
    """Frame whole payloads the SDK's way (no splitting)."""
    buffer = io.BytesIO()
    for payload in payloads:
        _write_recordio(buffer, payload)
    return buffer.getvalue()


def dmlc_payloads(data):
    """Payloads of RecordIO bytes, split records joined as dmlc's RecordIOReader joins them."""
    payloads, pos, parts = [], 0, []
    while pos < len(data):
        magic, head = struct.unpack_from("<II", data, pos)
        assert magic == MAGIC
        flag, length = head >> 29, head & ((1 << 29) - 1)
        parts.append(data[pos + 8:pos + 8 + length])
        pos += 8 + ((length + 3) & ~3)
        if flag in (0, 3):
            payloads.append(struct.pack("<I", MAGIC).join(parts))
            parts = []
    return payloads


def assert_same_rows(X, Y):
    assert X.shape == Y.shape
    assert (sp.csr_matrix(X, dtype=np.float64) != sp.csr_matrix(Y, dtype=np.float64)).nnz == 0


# ----------------------------------------------------------------------------- the schema


def test_schema_is_the_sdks_record_proto():
    ours = descriptor_pb2.FileDescriptorProto()
    _record_pb2.FILE_DESCRIPTOR.CopyToProto(ours)
    theirs = descriptor_pb2.FileDescriptorProto()
    sdk_pb2.DESCRIPTOR.CopyToProto(theirs)
    ours.ClearField("name")
    theirs.ClearField("name")
    assert ours == theirs
    assert _record_pb2.Record.DESCRIPTOR.full_name == "aialgs.data.Record"


def test_schema_messages_interchange_with_the_sdk():
    record = _record_pb2.Record()
    tensor = record.features["values"].float32_tensor
    tensor.values.extend([1.5, -2.0])
    tensor.keys.extend([3, 7])
    tensor.shape.append(10)
    record.label["values"].float32_tensor.values.append(1.0)
    theirs = sdk_pb2.Record.FromString(record.SerializeToString())
    assert list(theirs.features["values"].float32_tensor.keys) == [3, 7]
    assert theirs.SerializeToString() == record.SerializeToString()


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("labels", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(tmp_path, labels, dtype):
    X, y = random_rows(labels=labels)
    path = tmp_path / "train.rec"
    dump_recordio(X, y, path)
    X2, y2 = load_recordio(path, dtype=dtype)
    assert_same_rows(X2, X)
    assert X2.dtype == dtype and X2.indptr.dtype == np.int64 and X2.indices.dtype == np.int32
    assert X2.has_canonical_format
    if labels:
        assert y2.dtype == np.float64
        np.testing.assert_array_equal(y2, y)
    else:
        assert y2 is None
    assert load_recordio(str(path), n_features=X.shape[1])[0].shape == X.shape


def test_round_trip_of_dense_input_and_unsorted_duplicates():
    dense = np.array([[0, 1.5, 0, -2], [0, 0, 0, 0], [3, 0, 0, 0]])
    X, y = load_recordio_bytes(recordio_bytes(dense, [1, 2, 3]))
    np.testing.assert_array_equal(X.toarray(), dense)
    np.testing.assert_array_equal(y, [1, 2, 3])
    messy = sp.csr_matrix((np.array([1.0, 2.0, 4.0]), np.array([3, 0, 3]), np.array([0, 3])),
                          shape=(1, 5))
    before = messy.indices.copy()
    X, _ = load_recordio_bytes(recordio_bytes(messy))
    assert X.toarray().tolist() == [[2.0, 0, 0, 5.0, 0]]
    np.testing.assert_array_equal(messy.indices, before)  # the caller's matrix is untouched


def test_bytes_equal_the_sdk_writer():
    X, y = random_rows(seed=1)
    assert recordio_bytes(X, y) == sdk_sparse_bytes(X, y)
    assert recordio_bytes(X) == sdk_sparse_bytes(X)


def test_ours_read_by_the_sdk(tmp_path):
    X, y = random_rows(seed=2)
    path = tmp_path / "ours.rec"
    dump_recordio(X, y, path)
    with open(path, "rb") as handle:
        records = read_records(handle)
    assert len(records) == X.shape[0]
    for row, record in enumerate(records):
        tensor = record.features["values"].float32_tensor
        start, stop = X.indptr[row], X.indptr[row + 1]
        assert list(tensor.keys) == X.indices[start:stop].tolist()
        np.testing.assert_array_equal(np.array(tensor.values, np.float32), X.data[start:stop])
        assert list(tensor.shape) == [X.shape[1]]
        assert list(record.label["values"].float32_tensor.values) == [y[row]]
    with open(path, "rb") as handle:
        assert len(list(read_recordio(handle))) == X.shape[0]


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("y_dtype", [np.float32, np.float64, int])
def test_sdk_sparse_writer_read_by_ours(x_dtype, y_dtype):
    X, y = random_rows(seed=3)
    X = X.astype(x_dtype)
    y = (y * 10).astype(y_dtype)
    X2, y2 = load_recordio_bytes(sdk_sparse_bytes(X, y), dtype=np.float64)
    assert_same_rows(X2, X)
    np.testing.assert_array_equal(y2, y.astype(np.float64))


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, int])
def test_sdk_dense_writer_read_by_ours(x_dtype):
    rng = np.random.default_rng(4)
    dense = (rng.normal(size=(50, 7)) * (rng.random((50, 7)) < 0.5) * 5).astype(x_dtype)
    dense[5] = 0
    y = rng.integers(0, 2, 50).astype(np.float32)
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, dense, y)
    X, y2 = load_recordio_bytes(buffer.getvalue(), dtype=np.float64)
    np.testing.assert_array_equal(X.toarray(), dense.astype(np.float64))
    assert X.nnz == np.count_nonzero(dense)  # zeros of dense records are dropped
    np.testing.assert_array_equal(y2, y)
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, dense)
    assert load_recordio_bytes(buffer.getvalue())[1] is None


def test_float64_values_beyond_float32_are_an_error_only_for_float32():
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1e300]]))
    data = sdk_sparse_bytes(X)
    assert load_recordio_bytes(data, dtype=np.float64)[0][1, 1] == 1e300
    with pytest.raises(DataFormatError, match=r"record 2: .*non-finite value inf \(or beyond"):
        load_recordio_bytes(data)


# ----------------------------------------------------------------------------- chunks and buffers


@pytest.mark.parametrize("block_bytes", [64, 1000, 2**20])
@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_chunks_equal_the_whole_load(tmp_path, monkeypatch, block_bytes, chunk_size):
    monkeypatch.setattr(recordio, "_BLOCK_BYTES", block_bytes)
    X, y = random_rows(n_rows=150, seed=5)
    path = tmp_path / "train.rec"
    dump_recordio(X, y, path)
    whole_X, whole_y = load_recordio(path)
    assert_same_rows(whole_X, X)
    chunks = list(iter_recordio(path, chunk_size=chunk_size))
    assert [c.shape[0] for c, _ in chunks[:-1]] == [chunk_size] * (len(chunks) - 1)
    assert 0 < chunks[-1][0].shape[0] <= chunk_size
    for c, _ in chunks:
        assert c.indptr.dtype == np.int64 and c.indices.dtype == np.int32
    assert_same_rows(sp.vstack([c for c, _ in chunks]), whole_X)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in chunks]), whole_y)


@pytest.mark.parametrize("chunk_bytes", [1, 500, 5000])
def test_chunks_by_bytes(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(recordio, "_BLOCK_BYTES", 3000)
    X, y = random_rows(n_rows=150, seed=13)
    path = tmp_path / "train.rec"
    dump_recordio(X, y, path)
    chunks = list(iter_recordio(path, chunk_bytes=chunk_bytes, chunk_size=40))
    sizes = [len(recordio_bytes(c, labels)) for c, labels in chunks]  # the bytes they took
    assert sum(sizes) == path.stat().st_size
    for (c, _), size in zip(chunks, sizes):
        assert c.shape[0] <= 40 and (size <= chunk_bytes or c.shape[0] == 1)
    if chunk_bytes == 1:
        assert len(chunks) == X.shape[0]
    assert_same_rows(sp.vstack([c for c, _ in chunks]), X)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in chunks]), y)
    with pytest.raises(ValueError, match="chunk_bytes"):
        iter_recordio(path, chunk_bytes=0)


class CountingReader(io.RawIOBase):
    def __init__(self, data):
        self.inner = io.BytesIO(data)
        self.consumed = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self.inner.readinto(buffer)
        self.consumed += n
        return n


def test_iteration_reads_incrementally(monkeypatch):
    monkeypatch.setattr(recordio, "_BLOCK_BYTES", 4096)
    X, y = random_rows(n_rows=2000, seed=6)
    data = recordio_bytes(X, y)
    reader = CountingReader(data)
    chunks = iter_recordio(reader, chunk_size=10)
    first, _ = next(chunks)
    assert first.shape[0] == 10
    assert reader.consumed <= 2 * 4096 < len(data)
    rest = list(chunks)
    assert reader.consumed == len(data)
    assert_same_rows(sp.vstack([first] + [c for c, _ in rest]), X)


def test_a_record_larger_than_the_buffer(monkeypatch):
    monkeypatch.setattr(recordio, "_BLOCK_BYTES", 16)
    X = random_csr(3, 10_000, 3000, np.random.default_rng(7))
    X2, _ = load_recordio_bytes(recordio_bytes(X))
    assert_same_rows(X2, X)


def test_file_objects_and_argument_checks(tmp_path):
    X, y = random_rows(n_rows=20, seed=8)
    buffer = io.BytesIO()
    dump_recordio(X, y, buffer)
    buffer.seek(0)
    assert_same_rows(load_recordio(buffer)[0], X)
    assert not buffer.closed
    with pytest.raises(ValueError, match="dtype"):
        load_recordio(io.BytesIO(buffer.getvalue()), dtype=np.int32)
    with pytest.raises(ValueError, match="chunk_size"):
        iter_recordio(io.BytesIO(buffer.getvalue()), chunk_size=0)
    with pytest.raises(ValueError, match="n_features"):
        load_recordio(io.BytesIO(buffer.getvalue()), n_features=-1)
    path = tmp_path / "train.rec"
    path.write_bytes(buffer.getvalue())
    with open(path, encoding="latin-1") as text, pytest.raises(TypeError, match="'rb'"):
        load_recordio(text)
    with pytest.raises(ValueError, match="one label per row"):
        recordio_bytes(X, y[:-1])
    with pytest.raises(ValueError, match="2-D"):
        recordio_bytes(np.zeros((2, 2, 2)))


# ----------------------------------------------------------------------------- split records


def _split_at_magic_words(payload):
    """Frame one payload as dmlc's RecordIOWriter does."""
    magic = struct.pack("<I", MAGIC)
    out, done = b"", 0
    for i in range(0, len(payload) // 4 * 4, 4):
        if payload[i:i + 4] == magic:
            out += magic + struct.pack("<I", ((1 if done == 0 else 2) << 29) | (i - done))
            out += payload[done:i]
            done = i + 4
    out += magic + struct.pack("<I", ((3 if done else 0) << 29) | (len(payload) - done))
    out += payload[done:] + b"\0" * (-(len(payload) - done) % 4)
    return out


def test_payload_with_the_magic_word_is_split_like_mxnet():
    X = sp.csr_matrix(np.array([[MAGIC_FLOAT, 0.0], [1.0, 2.0], [MAGIC_FLOAT, MAGIC_FLOAT]],
                               np.float32))
    y = np.array([MAGIC_FLOAT, 0.0, 1.0], np.float32)
    data = recordio_bytes(X, y)
    flags = []
    pos = 0
    while pos < len(data):
        magic, head = struct.unpack_from("<II", data, pos)
        assert magic == MAGIC
        flags.append(head >> 29)
        pos += 8 + (((head & ((1 << 29) - 1)) + 3) & ~3)
    assert flags.count(1) == 2 and flags.count(3) == 2 and 2 in flags  # two split records
    sdk_payloads = dmlc_payloads(sdk_sparse_bytes(X, y))
    assert dmlc_payloads(data) == sdk_payloads
    assert data == b"".join(_split_at_magic_words(p) for p in sdk_payloads)
    X2, y2 = load_recordio_bytes(data)
    assert_same_rows(X2, X)
    assert y2[0].astype(np.float32).view(np.uint32) == MAGIC
    assert_same_rows(load_recordio_bytes(sdk_sparse_bytes(X))[0], X)  # the SDK leaves them whole


def test_split_records_with_middle_and_empty_parts():
    record = sdk_pb2.Record()
    tensor = record.features["values"].float32_tensor
    tensor.values.extend([MAGIC_FLOAT, MAGIC_FLOAT, 1.0])
    tensor.keys.extend([0, 1, 2])
    tensor.shape.append(4)
    record.uid = "abcd"
    payload = record.SerializeToString()
    assert payload.find(struct.pack("<I", MAGIC)) == 16  # the values start 4-aligned
    data = _split_at_magic_words(payload)
    heads = [struct.unpack_from("<I", data, p)[0] >> 29 for p in range(4, len(data), 4)
             if struct.unpack_from("<I", data, p - 4)[0] == MAGIC]
    assert heads[:3] == [1, 2, 3]
    X, _ = load_recordio_bytes(data + frame([payload]))
    np.testing.assert_array_equal(X.toarray()[:, :3].astype(np.float32).view(np.uint32),
                                  [[MAGIC, MAGIC, np.float32(1).view(np.uint32)]] * 2)


# ----------------------------------------------------------------------------- conformance


class Wire:
    """Protobuf wire-format writer for building every encoding a parser must take."""

    def __init__(self, rng):
        self.rng = rng
        self.unpacked_values = 0

    def varint(self, value, overlong=False):
        out = bytearray()
        while value >= 128:
            out.append((value & 127) | 128)
            value >>= 7
        out.append(value)
        if overlong and len(out) < 10 and self.rng.random() < 0.5:
            out[-1] |= 128
            out.append(0)  # a redundant zero byte: still the same value
        return bytes(out)

    def tag(self, field, wire):
        return self.varint(field << 3 | wire)

    def delimited(self, field, body):
        return self.tag(field, 2) + self.varint(len(body), overlong=True) + body

    def unknown(self, taken):
        """A random field whose number is not one of ``taken``."""
        rng = self.rng
        field = int(rng.choice([f for f in (4, 5, 6, 9, 15, 16, 100, 2047, 2**29 - 1)
                                if f not in taken]))
        kind = rng.integers(0, 5)
        if kind == 0:
            return self.tag(field, 0) + self.varint(int(rng.integers(0, 2**63)))
        if kind == 1:
            return self.tag(field, 1) + rng.bytes(8)
        if kind == 2:
            return self.delimited(field, rng.bytes(int(rng.integers(0, 12))))
        if kind == 3:
            return self.tag(field, 5) + rng.bytes(4)
        inner = self.tag(7, 0) + self.varint(5) + self.tag(8, 3) + self.tag(8, 4)  # nested group
        return self.tag(field, 3) + inner + self.tag(field, 4)

    def scatter(self, pieces, taken, unknown=0.3):
        """Shuffle field encodings, keeping the order of each field's own pieces, add unknowns."""
        rng = self.rng
        queues = [list(p) for p in pieces if p]
        out = b""
        while queues:
            if rng.random() < unknown:
                out += self.unknown(taken)
            q = queues[int(rng.integers(0, len(queues)))]
            out += q.pop(0)
            queues = [q for q in queues if q]
        return out

    def repeated(self, field, items, encode_one, wire):
        """``items`` of a repeated scalar field in random runs, each packed or not."""
        rng = self.rng
        runs, start = [], 0
        while start < len(items):
            stop = start + int(rng.integers(1, len(items) - start + 1))
            run = items[start:stop]
            if rng.random() < 0.5:
                runs.append(self.delimited(field, b"".join(encode_one(v) for v in run)))
            else:
                runs.extend(self.tag(field, wire) + encode_one(v) for v in run)
                self.unpacked_values += field == 1
            start = stop
        if rng.random() < 0.1:
            runs.insert(int(rng.integers(0, len(runs) + 1)), self.delimited(field, b""))
        return runs

    def tensor(self, kind, values, keys, shape):
        if kind == 2:
            value_runs = self.repeated(1, values, lambda v: struct.pack("<f", v), 5)
        elif kind == 3:
            value_runs = self.repeated(1, values, lambda v: struct.pack("<d", v), 1)
        else:
            value_runs = self.repeated(1, values, lambda v: self.varint(int(v) & (2**64 - 1)), 0)
        key_runs = self.repeated(2, keys, lambda k: self.varint(k, overlong=True), 0)
        shape_runs = self.repeated(3, shape, self.varint, 0)
        if self.rng.random() < 0.2:  # a known field with a wire type it does not have: unknown
            key_runs.append(self.tag(2, 5) + b"\1\2\3\4")
        return self.scatter([value_runs, key_runs, shape_runs], taken=(1, 2, 3))

    def value(self, kind, values, keys, shape):
        """A Value message; sometimes the tensor in two occurrences (merged), sometimes after
        another oneof member (replaced)."""
        rng = self.rng
        out = b""
        if rng.random() < 0.2:
            other = int(rng.choice([m for m in (2, 3, 7, 9) if m != kind]))
            out += self.delimited(other, self.tensor(other, [1], [], []) if other != 9
                                  else self.delimited(1, b"junk"))
        if rng.random() < 0.3 and len(values) > 1:
            cut = len(values) // 2
            first = self.tensor(kind, values[:cut], keys[:cut] if keys else [], shape)
            second = self.tensor(kind, values[cut:], keys[cut:] if keys else [], [])
            out += self.delimited(kind, first) + self.delimited(kind, second)
        else:
            out += self.delimited(kind, self.tensor(kind, values, keys, shape))
        if rng.random() < 0.3:
            out += self.unknown(taken=(2, 3, 7, 9))
        return out

    def entry(self, key, value):
        """A map entry. Without unknown fields: upb (protobuf's default Python backend) keeps an
        entry that has some as an unknown field of the record instead of in the map, unlike the
        C++ and pure-Python parsers (see test_unknown_fields_inside_map_entries)."""
        rng = self.rng
        pieces = [[self.delimited(1, key.encode())], [self.delimited(2, value)]]
        if rng.random() < 0.2:  # a key written twice: the last counts
            pieces[0].insert(0, self.delimited(1, b"zz"))
        if rng.random() < 0.5:
            pieces.reverse()
        return self.scatter(pieces, taken=(1, 2), unknown=0)


def random_record(wire, width, kind, dense, label_kind):
    rng = wire.rng
    nnz = int(rng.integers(0, width + 1)) if not dense else width
    if kind == 7:
        values = rng.integers(-1000, 1000, nnz).tolist()
    else:
        values = np.round(rng.normal(size=nnz) * 10, 3).astype(
            np.float32 if kind == 2 else np.float64).tolist()
    keys = [] if dense else sorted(rng.choice(width, nnz, replace=False).tolist())
    shape = [width] if not dense or rng.random() < 0.5 else []
    if rng.random() < 0.2 and not dense:
        keys = rng.permutation(keys).tolist()  # unsorted keys: the reader sorts them
        values = values[:len(keys)]
    record = []
    if rng.random() < 0.2:  # an earlier "values" entry, replaced by the later one
        record.append(wire.delimited(1, wire.entry("values", wire.value(2, [9.0], [0], [1]))))
    record.append(wire.delimited(1, wire.entry("values", wire.value(kind, values, keys, shape))))
    if rng.random() < 0.3:
        record.append(wire.delimited(1, wire.entry("other", wire.value(9, [], [], []))))
    if label_kind:
        label = 1 if label_kind == 7 else 0.25
        record.append(wire.delimited(2, wire.entry("values", wire.value(label_kind, [label], [],
                                                                        []))))
    if rng.random() < 0.3:
        record.append(wire.delimited(3, b"uid-1"))
    if rng.random() < 0.3:
        record.append(wire.delimited(5, b'{"k": 1}'))
    return wire.scatter([[piece] for piece in record], taken=(1, 2, 3, 4, 5), unknown=0.2)


def dropped_entries(record):
    """Whether upb kept a map entry of ``record`` as an unknown field (see ``Wire.entry``)."""
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet
        fields = UnknownFieldSet(record)
    except ImportError:  # protobuf < 4.24
        fields = record.UnknownFields()
    return any(field.field_number in (1, 2) for field in fields)


def reference_row(payload):
    """What the record means, read with protobuf: ``(columns -> value, width, label)``.

    Raises ``DecodeError`` where protobuf does not parse it and ``LookupError`` where it parses
    but is not a valid row.
    """
    record = sdk_pb2.Record.FromString(payload)
    if dropped_entries(record):
        raise NotImplementedError("protobuf implementations disagree on this record")
    if "values" not in record.features:
        raise LookupError("no features")
    member = record.features["values"].WhichOneof("value")
    if member not in ("float32_tensor", "float64_tensor", "int32_tensor"):
        raise LookupError("not numeric")
    tensor = getattr(record.features["values"], member)
    values, keys, shape = list(tensor.values), list(tensor.keys), list(tensor.shape)
    if len(shape) > 1:
        raise LookupError("shape")
    if keys:
        if len(keys) != len(values) or not shape or shape[0] > 2**31 - 1 or max(keys) >= shape[0]:
            raise LookupError("sparse")
        width = shape[0]
    else:
        if values and shape and shape[0] != len(values):
            raise LookupError("dense")
        width = len(values) if values else (shape[0] if shape else 0)
        if width > 2**31 - 1:
            raise LookupError("width")
        keys = list(range(len(values)))
    row = {}
    for key, value in zip(keys, values):
        row[key] = row.get(key, 0.0) + value
    if not all(np.isfinite(v) for v in row.values()):
        raise LookupError("non-finite")
    label = None
    if "values" in record.label:
        member = record.label["values"].WhichOneof("value")
        if member not in ("float32_tensor", "float64_tensor", "int32_tensor"):
            raise LookupError("label not numeric")
        label_values = list(getattr(record.label["values"], member).values)
        if len(label_values) != 1 or not np.isfinite(label_values[0]):
            raise LookupError("label size")
        label = label_values[0]
    return row, width, label


def read_one(payload):
    X, y = load_recordio_bytes(frame([payload]), dtype=np.float64)
    row = dict(zip(X.indices.tolist(), X.data.tolist()))
    return row, X.shape[1], None if y is None else y[0]


def test_every_encoding_protobuf_takes_is_read_the_same():
    rng = np.random.default_rng(10)
    wire = Wire(rng)
    for trial in range(400):
        kind = int(rng.choice([2, 3, 7]))
        payload = random_record(wire, width=int(rng.integers(1, 12)), kind=kind,
                                dense=rng.random() < 0.3, label_kind=int(rng.choice([0, 2, 3, 7])))
        expected_row, width, label = reference_row(payload)
        row, width2, label2 = read_one(payload)
        expected_row = {k: v for k, v in expected_row.items()
                        if v != 0 or not _is_dense(payload)}
        assert (row, width2, label2) == (expected_row, width, label), f"trial {trial}"
    assert wire.unpacked_values > 100


def _is_dense(payload):
    record = sdk_pb2.Record.FromString(payload)
    member = record.features["values"].WhichOneof("value")
    return not getattr(record.features["values"], member).keys


def test_corrupted_records_fail_exactly_where_protobuf_fails():
    rng = np.random.default_rng(11)
    wire = Wire(rng)
    outcomes = {"decode error": 0, "invalid row": 0, "read": 0, "skipped": 0}
    for trial in range(1500):
        payload = bytearray(random_record(wire, width=int(rng.integers(1, 8)),
                                          kind=int(rng.choice([2, 3, 7])),
                                          dense=rng.random() < 0.3,
                                          label_kind=int(rng.choice([0, 2]))))
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(0, len(payload)))
            payload[at] = int(rng.integers(0, 256))
        payload = bytes(payload)
        try:
            expected = reference_row(payload)
        except DecodeError:
            with pytest.raises(DataFormatError, match="does not parse as an aialgs.data.Record"):
                read_one(payload)
            outcomes["decode error"] += 1
            continue
        except LookupError:
            with pytest.raises(DataFormatError) as error:
                read_one(payload)
            assert "does not parse" not in str(error.value), f"trial {trial}"
            outcomes["invalid row"] += 1
            continue
        except NotImplementedError:  # a map entry with unknown fields
            outcomes["skipped"] += 1
            continue
        row, width, label = read_one(payload)
        expected_row, expected_width, expected_label = expected
        if _is_dense(payload):
            expected_row = {k: v for k, v in expected_row.items() if v != 0}
        assert (row, width, label) == (expected_row, expected_width, expected_label), trial
        outcomes["read"] += 1
    assert min(outcomes["decode error"], outcomes["invalid row"], outcomes["read"]) > 50, outcomes
    assert outcomes["skipped"] < 100, outcomes


PURE_PYTHON_PARSE = """
import importlib.util, json, sys


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ours = load("fmlearn_record_pb2", sys.argv[1])
sdk = load("record_pb2", sys.argv[2])  # the same names in the default pool: no clash
from google.protobuf.internal import api_implementation
record = ours.Record.FromString(bytes.fromhex(sys.argv[3]))
assert sdk.Record.FromString(record.SerializeToString()) == sdk.Record.FromString(
    bytes.fromhex(sys.argv[3]))
tensor = record.features["values"].float32_tensor
print(json.dumps([api_implementation.Type(), sorted(record.features), list(tensor.values),
                  list(tensor.keys), list(tensor.shape)]))
"""


def test_unknown_fields_inside_map_entries():
    wire = Wire(np.random.default_rng(0))
    tensor = wire.delimited(1, struct.pack("<2f", 1.5, 2.5)) + wire.delimited(2, b"\x01\x03")
    tensor += wire.delimited(3, b"\x05")
    entry = (wire.tag(15, 0) + b"\x07" + wire.delimited(1, b"values")
             + wire.tag(16, 3) + wire.tag(1, 0) + b"\x01" + wire.tag(16, 4)
             + wire.delimited(2, wire.delimited(2, tensor)))
    payload = wire.delimited(1, entry)
    assert read_one(payload) == ({1: 1.5, 3: 2.5}, 5, None)
    # protobuf's pure-Python parser puts the entry in the map, as C++ does (upb keeps it as an
    # unknown field of the record); this also runs the shipped schema on that implementation.
    result = subprocess.run(
        [sys.executable, "-c", PURE_PYTHON_PARSE, _record_pb2.__file__, sdk_pb2.__file__,
         payload.hex()],
        env={**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"},
        capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == ["python", ["values"], [1.5, 2.5], [1, 3], [5]]


# ----------------------------------------------------------------------------- errors


def records(*rows, shape=5):
    """Payloads of sparse Float32 records: each row is (keys, values[, label])."""
    out = []
    for row in rows:
        record = sdk_pb2.Record()
        tensor = record.features["values"].float32_tensor
        tensor.keys.extend(row[0])
        tensor.values.extend(row[1])
        tensor.shape.append(shape)
        if len(row) > 2:
            record.label["values"].float32_tensor.values.append(row[2])
        out.append(record.SerializeToString())
    return out


GOOD = [([0], [1.0], 1.0), ([1, 4], [2.0, 3.0], 0.0), ([2], [4.0], 1.0), ([], [], 0.0)]


def custom(build):
    record = sdk_pb2.Record()
    build(record)
    return record.SerializeToString()


@pytest.mark.parametrize("payloads, n_features, message, number", [
    (records(*GOOD[:2]) + [custom(lambda r: r.features["other"].float32_tensor.values.append(1))],
     None, r'no features\["values"\] tensor', 3),
    (records(*GOOD[:3], ([0, 5], [1.0, 2.0], 1.0)), None,
     r"key 5 .* out of range for its shape \[5\]", 4),
    (records(*GOOD[:2]) + records(([1], [1.0], 1.0), shape=6), None,
     r"shape \[6\] but record 1 has \[5\]", 3),
    (records(*GOOD), 4, r"shape \[5\] but n_features=4", 1),
    (records(GOOD[0], ([1], [float("nan")], 1.0)), None, "non-finite value nan", 2),
    (records(*GOOD[:3], ([1], [1.0], float("inf"))), None, r'label\["values"\] is inf', 4),
    (records(*GOOD[:2], ([1], [1.0])), None, r'no label\["values"\] but record 1 has one', 3),
    (records(([1], [1.0]), ([1], [1.0], 2.0)), None, r'has a label\["values"\] but record 1 has',
     2),
    (records(GOOD[0]) + [custom(lambda r: r.features["values"].float32_tensor.keys.extend([0]))],
     None, "1 keys but 0 values", 2),
    (records(GOOD[0]) + [custom(lambda r: r.features["values"].float32_tensor.keys.extend([0]) or
                                r.features["values"].float32_tensor.values.extend([1.0]))],
     None, "sparse .* has no shape", 2),
    (records(GOOD[0]) + [custom(lambda r: r.features["values"].float32_tensor.shape.extend(
        [5, 2]))], None, "shape of 2 dimensions", 2),
    (records(GOOD[0]) + [custom(lambda r: r.features["values"].float32_tensor.values.extend([1, 2])
                                or r.features["values"].float32_tensor.shape.append(5))],
     None, r"dense with 2 values but its shape is \[5\]", 2),
    (records(GOOD[0]) + [custom(lambda r: r.features["values"].bytes.value.append(b"x"))],
     None, "holds a Bytes value", 2),
    (records(GOOD[0]) + [custom(lambda r: r.features["values"].float32_tensor.shape.append(2**31)
                                or r.features["values"].float32_tensor.keys.append(0) or
                                r.features["values"].float32_tensor.values.append(1))],
     None, r"shape \[2147483648\]; at most 2147483647", 2),
    (records(GOOD[0]) + [custom(lambda r: r.features["values"].float32_tensor.values.append(1) or
                                r.label["values"].float32_tensor.values.extend([1, 2]))],
     None, r'label\["values"\] holds 2 values', 2),
    (records(*GOOD[:2]) + [b"\x0a\x07\x0a\x03val"], None,
     r"7-byte payload does not parse as an aialgs.data.Record .*byte 0", 3),
    (records(GOOD[0]) + [b"\x00\x01"], None, "does not parse", 2),
])
def test_invalid_records(payloads, n_features, message, number):
    with pytest.raises(DataFormatError, match=message) as error:
        load_recordio_bytes(frame(payloads), n_features=n_features, name="train.rec")
    assert error.value.record == number
    assert str(error.value).startswith(f"train.rec, record {number}: ")


def test_framing_errors(tmp_path):
    data = frame(records(*GOOD))
    sizes = [8 + ((len(p) + 3) & ~3) for p in records(*GOOD)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    path = tmp_path / "bad.rec"
    bad = bytearray(data)
    bad[starts[2]] ^= 1  # third record's magic
    path.write_bytes(bytes(bad))
    with pytest.raises(DataFormatError, match=rf"record 3: expected the RecordIO magic number "
                                              rf"0xced7230a at byte {starts[2]}, found 0xced7230b"):
        load_recordio(path)
    path.write_bytes(b"1 3:1.0 7:2.5\n0 2:1.0\n")
    with pytest.raises(DataFormatError, match="record 1: .*magic .*not a RecordIO file"):
        load_recordio(path)
    path.write_bytes(data[:-3])
    with pytest.raises(DataFormatError, match=r"record 4: the record's length word says \d+ bytes"
                                              r" .* the file is truncated"):
        load_recordio(path)
    path.write_bytes(data + b"\x0a\x23\xd7")
    with pytest.raises(DataFormatError, match="record 5: the file ends 3 bytes into a record "
                                              "header"):
        load_recordio(path)
    bad = bytearray(data)
    bad[starts[1] + 7] = 2 << 5  # flag 2 where a record starts
    path.write_bytes(bytes(bad))
    with pytest.raises(DataFormatError, match="record 2: continuation flag 2 at byte"):
        load_recordio(path)
    path.write_bytes(b"")
    with pytest.raises(DataFormatError, match="bad.rec: the file holds no records"):
        load_recordio(path)
    with pytest.raises(DataFormatError, match="holds no records"):
        list(iter_recordio(path))
    with pytest.raises(DataFormatError, match="<bytes>: the file holds no records"):
        load_recordio_bytes(b"")


def test_error_numbers_count_across_chunks_and_buffers(tmp_path, monkeypatch):
    monkeypatch.setattr(recordio, "_BLOCK_BYTES", 100)
    rows = [([i % 5], [1.0], 0.0) for i in range(40)]
    rows[33] = ([7], [1.0], 0.0)
    path = tmp_path / "bad.rec"
    path.write_bytes(frame(records(*rows)))
    chunks = iter_recordio(path, chunk_size=8)
    assert sum(chunk.shape[0] for chunk, _ in [next(chunks) for _ in range(4)]) == 32
    with pytest.raises(DataFormatError, match=r"bad.rec, record 34: key 7"):
        next(chunks)
    with pytest.raises(DataFormatError, match="record 34"):
        load_recordio(path)


# ----------------------------------------------------------------------------- writing


def test_dump_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setattr(recordio_write, "_WRITE_ROWS", 2)
    written = []
    real_blocks = recordio_write._encoded_blocks

    def counted(X, y):
        for block in real_blocks(X, y):
            written.append(len(block))
            yield block

    monkeypatch.setattr(recordio_write, "_encoded_blocks", counted)
    X, y = random_rows(n_rows=9, seed=12)
    X = X.toarray()
    X[7, 0] = np.inf  # fails in the fourth block, after three were written
    path = tmp_path / "train.rec"
    with pytest.raises(ValueError, match="non-finite value inf .* in row 7"):
        dump_recordio(X, y, path)
    assert len(written) == 3
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="non-finite"):
        dump_recordio(X, y, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["train.rec"]
    y[4] = np.nan
    X[7, 0] = 1
    with pytest.raises(ValueError, match="y holds the non-finite value nan .* row 4"):
        dump_recordio(X, y, path)
    assert path.read_bytes() == b"old"
    y[4] = 0
    dump_recordio(X, y, path)
    assert_same_rows(load_recordio(path)[0], sp.csr_matrix(X))
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~mask


def test_values_beyond_float32_are_refused_when_writing():
    with pytest.raises(ValueError, match="non-finite value inf .* row 1"):
        recordio_bytes(np.array([[1.0], [1e40]]))


# ----------------------------------------------------------------------------- responses


def test_prediction_responses_match_sagemaker_fm():
    scores = np.array([0.25, 0.9, MAGIC_FLOAT], np.float32)
    labels = np.array([0.0, 1.0, MAGIC_FLOAT], np.float32)
    body = dump_predictions_recordio(scores, labels)
    parsed = [sdk_pb2.Record.FromString(p) for p in dmlc_payloads(body)]
    assert len(parsed) == 3
    for record, score, label in zip(parsed, scores, labels):
        assert len(record.features) == 0
        assert sorted(record.label) == ["predicted_label", "score"]
        assert record.label["score"].float32_tensor.values == [score]
        assert list(record.label["score"].float32_tensor.keys) == []
        predicted = record.label["predicted_label"].float32_tensor.values[0]
        assert np.float32(predicted).view(np.uint32) == np.float32(label).view(np.uint32)
    with io.BytesIO(dump_predictions_recordio([1.5, -2.0])) as handle:  # regression
        regression = read_records(handle)
    assert [list(r.label) for r in regression] == [["score"], ["score"]]
    assert [r.label["score"].float32_tensor.values[0] for r in regression] == [1.5, -2.0]
    assert dump_predictions_recordio([]) == b""
    with pytest.raises(ValueError, match="2 values for 3 scores"):
        dump_predictions_recordio([1, 2, 3], [0, 1])


# ----------------------------------------------------------------------------- memory
@pytest.mark.parametrize("case", ["one row", "length word of 2**29 - 1", "huge shape"])
def test_memory_follows_the_input_not_what_it_claims(tmp_path, case):
    import tracemalloc
    if case == "one row":
        data = recordio_bytes(np.array([[1.0, 0.0]]))
    elif case == "length word of 2**29 - 1":
        data = struct.pack("<II", MAGIC, (1 << 29) - 1) + b"\0" * 16
    else:  # a sparse record of shape [2**31 - 1]
        data = recordio_bytes(sp.csr_matrix(([1.0], ([0], [2**31 - 2])), shape=(1, 2**31 - 1)))
    path = tmp_path / "small.rec"
    path.write_bytes(data)
    for read in [lambda: load_recordio_bytes(data), lambda: load_recordio(path),
                 lambda: next(iter_recordio(path))]:
        tracemalloc.start()
        try:
            try:
                X, _ = read()
                assert X.nnz == 1
            except DataFormatError as error:
                assert case == "length word of 2**29 - 1" and "truncated" in str(error)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2**20, case


def test_repeated_keys_summing_beyond_float32_are_an_error():
    data = frame(records(([0], [1.0], 0.0), ([1, 1], [3e38, 3e38], 0.0)))
    with pytest.raises(DataFormatError, match=r"record 2: the values of a repeated key of "
                                              r'features\["values"\] sum beyond the range of float32'):
        load_recordio_bytes(data)
    X, _ = load_recordio_bytes(data, dtype=np.float64)
    assert X[1, 1] == np.float64(np.float32(3e38)) * 2
