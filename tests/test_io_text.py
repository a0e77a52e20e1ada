"""libSVM / libFM and FFM text: round trips, the formats' corners, exact errors, chunked reading."""
import io
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_svmlight_file

from conftest import shared_data
from fmlearn.io import (DataFormatError, dump_ffm, dump_libsvm, iter_ffm, iter_libsvm, load_ffm,
                        load_libsvm)



def _read(text, **kwargs):
    return load_libsvm(io.BytesIO(text), **kwargs)


def _random_csr(rng, n_rows, n_features, dtype):
    X = sp.random(n_rows, n_features, density=0.3, format="csr", random_state=rng, dtype=dtype)
    X.data = (rng.standard_normal(X.nnz) * 10.0 ** rng.integers(-8, 8, X.nnz)).astype(dtype)
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_libsvm_round_trip_is_exact(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = _random_csr(rng, 50, 30, dtype)
    y = rng.standard_normal(50)
    qid = rng.integers(0, 5, 50)
    path = tmp_path / "rows.svm"
    dump_libsvm(X, y, path, query_id=qid)
    X2, y2, qid2 = load_libsvm(path, n_features=30, query_id=True, dtype=dtype)
    assert X2.dtype == dtype and (X2 != X).nnz == 0
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(qid2, qid)


def test_ffm_round_trip_keeps_fields(tmp_path):
    rng = np.random.default_rng(1)
    X = _random_csr(rng, 40, 12, np.float32)
    fields = rng.integers(0, 4, 12)
    path = tmp_path / "rows.ffm"
    dump_ffm(X, np.ones(40), fields, path, zero_based=False)
    X2, y2, fields2 = load_ffm(path, n_features=12, zero_based=False)
    assert (X2 != X).nnz == 0
    seen = np.unique(X.indices)
    np.testing.assert_array_equal(fields2[seen, 0], fields[seen])
    assert (fields2[np.setdiff1d(np.arange(12), seen), 0] == -1).all()
    np.testing.assert_array_equal(fields2[:, 1], np.arange(12))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1,
                max_size=20))
def test_every_finite_double_reads_back_exactly(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("hyp") / "rows.svm"
    X = sp.csr_matrix(np.array([values]))
    dump_libsvm(X, [0.0], path)
    X2, _ = load_libsvm(path, n_features=len(values), dtype=np.float64)
    np.testing.assert_array_equal(X2.toarray(), X.toarray())


def test_values_parse_as_python_floats():
    tokens = ["1", "-2.5", "+3", ".5", "5.", "1e-3", "1E+3", "0.1234567890123456789", "123456789012",
              "1e-30", "4.9e-324", "00012.5000", "7e22", "7e23"]
    line = "0 " + " ".join(f"{i}:{t}" for i, t in enumerate(tokens)) + "\n"
    X, _ = _read(line.encode(), dtype=np.float64)
    np.testing.assert_array_equal(X.toarray()[0], [float(t) for t in tokens])


def test_windows_line_endings_comments_blank_lines_and_unsorted_indices():
    X, y = _read(b"# header\r\n1 3:4 0:2 # trailing\r\n\r\n  \t\r\n-1\t2:1\r\n")
    np.testing.assert_array_equal(X.toarray(), [[2, 0, 0, 4], [0, 0, 1, 0]])
    np.testing.assert_array_equal(y, [1, -1])
    assert X.has_sorted_indices


def test_a_row_without_features_is_kept():
    X, y = _read(b"1\n2 1:1\n")
    assert X.shape == (2, 2) and X[0].nnz == 0
    np.testing.assert_array_equal(y, [1, 2])


def test_zero_based_options():
    assert _read(b"1 1:1 2:1\n", zero_based=False)[0].shape == (1, 2)
    assert _read(b"1 1:1 2:1\n", zero_based="auto")[0].shape == (1, 2)
    assert _read(b"1 0:1 2:1\n", zero_based="auto")[0].shape == (1, 3)
    with pytest.raises(DataFormatError, match=r"line 2: feature index 0 in a file read as one-based"):
        _read(b"1 1:1\n1 0:1\n", zero_based=False)


@pytest.mark.parametrize("text, message", [
    (b"1 1:abc\n", r"line 1, column 3: the value in '1:abc' is not a number"),
    (b"1 1:2\n1 1 2\n", r"line 2, column 3: '1' is not index:value"),
    (b"0 1:1\n1 -1:2\n", r"line 2, column 3: the feature index in '-1:2' is negative"),
    (b"1 99999999999:2\n", r"line 1, column 3: the feature index in '99999999999:2' is larger "
                           r"than 2147483647"),
    (b"1 1.5:2\n", r"line 1, column 3: the feature index in '1.5:2' is not a non-negative integer"),
    (b"abc 1:2\n", r"line 1, column 1: the label 'abc' is not a number"),
    (b"nan 1:2\n", r"line 1, column 1: the value 'nan' is not finite"),
    (b"1 2:inf\n", r"line 1, column 3: the value 'inf' is not finite"),
    (b"1 1:1e400\n", r"line 1: the value '1e400' is out of the range of a 64-bit float"),
    (b"1 1:1e39\n", r"line 1: the value 1e\+39 is out of the range of float32"),
    (b"1 1:2 1:3\n", r"line 1: feature index 1 occurs twice in one row"),
    (b"1 qid:x 1:2\n", r"line 1, column 3: 'qid:x' is not qid:<non-negative integer>"),
    (b"1 1:2:3\n", r"line 1, column 3: '1:2:3' has too many colons for index:value"),
    (b"1 1:\n", r"line 1, column 3: the value in '1:' is not a number"),
    (b"1 1:2e\n", r"line 1, column 3: the value in '1:2e' is not a number"),
    (b"", r"<stream>: the file holds no data rows"),
    (b"# nothing\n\n", r"<stream>: the file holds no data rows"),
])
def test_libsvm_errors_name_the_place(text, message):
    with pytest.raises(DataFormatError, match=message):
        _read(text)


def test_too_large_index_for_n_features():
    with pytest.raises(DataFormatError, match=r"line 2: feature index 7 is out of range for "
                                              r"n_features=5"):
        _read(b"1 1:1\n1 7:1\n", n_features=5)


@pytest.mark.parametrize("text, message", [
    (b"1 1:2\n", r"line 1, column 3: '1:2' is not field:index:value"),
    (b"1 x:1:2\n", r"line 1, column 3: the field in 'x:1:2' is not a non-negative integer"),
    (b"1 0:1:1:1\n", r"too many colons for field:index:value"),
    (b"1 0:1:2 1:2:3\n0 1:1:1\n", r"line 2: feature 1 is in field 1 here but in field 0 "
                                  r"on line 1; each feature must belong to one field"),
])
def test_ffm_errors_name_the_place(text, message):
    with pytest.raises(DataFormatError, match=message):
        load_ffm(io.BytesIO(text), field_conflicts="raise")


def test_error_names_the_file(tmp_path):
    path = tmp_path / "bad.svm"
    path.write_bytes(b"1 1:1\n1 1:x\n")
    with pytest.raises(DataFormatError, match=rf"^{path}, line 2, column 3:") as info:
        load_libsvm(path)
    assert (info.value.path, info.value.line, info.value.column) == (str(path), 2, 3)
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value) and again.line == 2


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 10**6])
def test_chunks_equal_the_whole_file(tmp_path, block_bytes):
    rng = np.random.default_rng(2)
    X = _random_csr(rng, 60, 9, np.float32)
    fields = np.arange(9) % 3
    dump_ffm(X, np.arange(60.0), fields, tmp_path / "rows.ffm")
    chunks = list(iter_ffm(tmp_path / "rows.ffm", n_features=9, block_bytes=block_bytes))
    assert sp.vstack([c[0] for c in chunks]).toarray().tolist() == X.toarray().tolist()
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), np.arange(60.0))
    for chunk_X, _, chunk_fields in chunks:
        seen = np.unique(chunk_X.indices)
        np.testing.assert_array_equal(chunk_fields[seen], fields[seen])


def test_chunk_errors_count_lines_in_the_whole_file():
    text = b"1 0:1\n" * 50 + b"1 0:x\n"
    with pytest.raises(DataFormatError, match=r"line 51, column 3"):
        list(iter_libsvm(io.BytesIO(text), n_features=1, block_bytes=16))


def test_streaming_needs_a_fixed_index_base():
    with pytest.raises(ValueError, match="zero_based=True or False"):
        next(iter_libsvm(io.BytesIO(b"1 0:1\n"), n_features=1, zero_based="auto"))


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "rows.svm"
    path.write_bytes(b"old\n")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        dump_libsvm(np.eye(2), [1, 2], path)
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.svm"]


def test_dump_ffm_checks_fields(tmp_path):
    with pytest.raises(ValueError, match="a non-negative integer field id for each of the 2"):
        dump_ffm(np.eye(2), [1, 2], [0], tmp_path / "x.ffm")


def test_frappe_reads_like_scikit_learn():
    path = shared_data("frappe/frappe.test.libfm")
    ours, y = load_libsvm(path, n_features=5382)
    theirs, y_sk = load_svmlight_file(str(path), n_features=5382, zero_based=True,
                                      dtype=np.float32)
    assert (ours != theirs).nnz == 0
    np.testing.assert_array_equal(y, y_sk)


def test_criteo_ffm_sample_reads():
    path = shared_data("criteo_libffm_sample/small_train.txt")
    # Its feature ids were hashed over all fields: some occur under two fields.
    with pytest.raises(DataFormatError, match=r"line 17: feature 5525 is in field 7 here but in "
                                              r"field 5 on line 4"):
        load_ffm(path, field_conflicts="raise")
    X, y, fields = load_ffm(path, field_conflicts="first")
    assert X.shape == (200, 9991) and set(np.unique(y)) == {0.0, 1.0}
    first = {}
    for line in path.read_text().splitlines():
        for token in line.split()[1:]:
            field, feature, _ = token.split(":")
            first.setdefault(int(feature), int(field))
    assert {int(f): int(fields[f]) for f in np.unique(X.indices)} == first
    assert X[20, 2738] == np.float32(0.3651) * 2


@pytest.mark.parametrize("number, value", [
    ("0." + "0" * 99999 + "1e1000000", np.inf),  # saturated exponent after a long fraction
    ("1e" + "9" * 30, np.inf),
    ("0." + "0" * 99999 + "1e100000", 1.0),
    ("1" + "0" * 100000 + "e-1000000", 0.0),
    ("123456789" * 3 + "e-" + "0" * 40 + "5", 1.23456789123456789123456789e21),
])
def test_long_numbers_read_as_python_does(number, value):
    assert float(number) == value  # the reference
    text = f"1 0:1\n# two\n2 1:{number}\n".encode()
    if np.isinf(value):
        with pytest.raises(DataFormatError, match=r"line 3: the value '.*' is out of the range"):
            _read(text, dtype=np.float64)
        with pytest.raises(DataFormatError, match=r"line 3: the value '.*' is out of the range"):
            _read(f"0 0:1\n\n{number} 0:1\n".encode())
    else:
        assert _read(text, dtype=np.float64)[0][1, 1] == value


class _Counted(bytes):
    """Bytes that count what concatenating them copies (a quadratic carry-over adds them up)."""

    copied = 0

    def __add__(self, other):
        _Counted.copied += len(self) + len(other)
        return bytes.__add__(self, other)

    def __radd__(self, other):
        _Counted.copied += len(self) + len(other)
        return bytes.__add__(bytes(other), self)


class _Blocks:
    """A binary stream that hands out its bytes as ``_Counted``."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n):
        self.pos += n
        return _Counted(self.data[self.pos - n:self.pos])


@pytest.mark.parametrize("with_fields", [False, True])
def test_a_line_over_many_small_blocks_is_read_in_linear_work(with_fields):
    n = 130_000  # a line of about 10**6 bytes, read 64 bytes at a time
    entries = " ".join(f"{j % 7}:{j}:1" if with_fields else f"{j}:1" for j in range(n))
    text = f"1 {entries}\n0 3:3:2\n".encode() if with_fields else f"1 {entries}\n0 3:2\n".encode()
    assert len(text) > 10**6
    _Counted.copied = 0
    reader = iter_ffm if with_fields else iter_libsvm
    chunks = list(reader(_Blocks(text), n_features=n, block_bytes=64))
    assert _Counted.copied <= 2 * len(text)
    X = sp.vstack([chunk[0] for chunk in chunks]).tocsr()
    assert X.shape == (2, n) and X[0].nnz == n and X[1, 3] == 2


@pytest.mark.parametrize("index", [2**27, 2147483646])
def test_a_tiny_ffm_file_cannot_ask_for_a_huge_fields_array(index):
    import tracemalloc
    text = f"1 0:{index}:1\n".encode()
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=rf"line 1: feature index {index} makes the "
                                                  rf"matrix {index + 1} features wide, more than "
                                                  r"max_features=67108864; pass n_features"):
            load_ffm(io.BytesIO(text))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    # The caller can ask for the width: by n_features or by a larger max_features.
    text = b"1 0:12:1\n"
    with pytest.raises(DataFormatError, match=r"more than max_features=10"):
        load_ffm(io.BytesIO(text), max_features=10)
    assert load_ffm(io.BytesIO(text), max_features=13)[2].shape == (13, 2)
    assert load_ffm(io.BytesIO(text), max_features=10, n_features=20)[2].shape == (20, 2)


def test_summed_repeats_beyond_the_dtype_are_an_error():
    text = b"1 0:0:1\n\n1 0:0:3e38 0:0:3e38\n"
    with pytest.raises(DataFormatError, match=r"line 3: the sum of a feature's values in one row "
                                              r"is out of the range of float32"):
        load_ffm(io.BytesIO(text), field_conflicts="first")
    assert load_ffm(io.BytesIO(text), field_conflicts="first", dtype=np.float64)[0][1, 0] == 6e38


@pytest.mark.parametrize("fill", [0, -1])
def test_an_overflowing_value_names_its_line_whatever_np_empty_holds(monkeypatch, fill):
    real_empty = np.empty

    def empty(shape, dtype=float, **kwargs):  # np.empty's contents are arbitrary
        out = real_empty(shape, dtype, **kwargs)
        out[...] = fill if np.dtype(dtype).kind in "iu" else 0
        return out

    monkeypatch.setattr(np, "empty", empty)
    text = b"1 0:1\n" + b"# comment\n" * 50 + b"2 0:1 1:1e400\n3 0:2\n"
    with pytest.raises(DataFormatError, match=r"line 52: the value '1e400' is out of the range"):
        _read(text)
