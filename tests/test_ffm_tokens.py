"""Per-token fields: every (field, feature id) of an FFM file is a column, as LIBFFM reads
it; the vocabulary reads other files, round-trips through dump_ffm and model files, and
fmlearn's FFM gives LIBFFM's scores on the Criteo sample."""
import io
import json
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_data
from fmlearn import FFMClassifier, FFMModel, FwFMClassifier, load, save
from fmlearn.persistence import read_header
from fmlearn.io import dump_ffm, iter_ffm, load_ffm

SAMPLE = "criteo_libffm_sample/small_{}.txt"


def tokens(path):
    """The (field, id, value) tokens of every line of an FFM text file, and the labels."""
    rows, labels = [], []
    for line in open(path).read().splitlines():
        label, *entries = line.split()
        labels.append(float(label))
        rows.append([(int(f), int(j), float(v)) for f, j, v in (e.split(":") for e in entries)])
    return rows, np.array(labels)


def test_every_field_of_an_id_is_a_column_by_default():
    rows, labels = tokens(shared_data(SAMPLE.format("train")))
    X, y, vocabulary = load_ffm(shared_data(SAMPLE.format("train")), dtype=np.float64)
    np.testing.assert_array_equal(y, labels)
    column = {tuple(pair): c for c, pair in enumerate(vocabulary.tolist()) if pair[0] >= 0}
    pairs = list(dict.fromkeys((f, j) for row in rows for f, j, _ in row))
    assert len(column) == len(pairs) == X.shape[1] - np.sum(vocabulary[:, 0] < 0)
    first = {}
    for f, j in pairs:
        first.setdefault(j, f)
    n_ids = max(first) + 1
    assert X.shape[1] == n_ids + len(pairs) - len(first)  # 15 ids in a second field
    for f, j in pairs:  # an id's first field keeps its column, the others follow in order
        assert column[f, j] == j if first[j] == f else column[f, j] >= n_ids
    extra = [pair for pair in pairs if first[pair[1]] != pair[0]]
    assert [tuple(p) for p in vocabulary[n_ids:].tolist()] == extra
    never = np.setdiff1d(np.arange(n_ids), list(first))
    np.testing.assert_array_equal(vocabulary[never], np.c_[np.full(never.size, -1), never])
    dense = np.zeros(X.shape)
    for r, row in enumerate(rows):
        for f, j, v in row:
            dense[r, column[f, j]] = v
    np.testing.assert_array_equal(X.toarray(), dense)


def test_load_dump_load_gives_the_same_tokens(tmp_path):
    path = shared_data(SAMPLE.format("train"))
    X, y, vocabulary = load_ffm(path)
    dump_ffm(X, y, vocabulary, tmp_path / "again.ffm")
    (rows, labels), (again, labels2) = tokens(path), tokens(tmp_path / "again.ffm")
    np.testing.assert_array_equal(labels, labels2)
    as_float32 = [sorted((f, j, np.float32(v)) for f, j, v in row) for row in rows]
    assert [sorted((f, j, np.float32(v)) for f, j, v in row) for row in again] == as_float32
    X2, _, vocabulary2 = load_ffm(tmp_path / "again.ffm", vocabulary=vocabulary)
    assert (X2 != X).nnz == 0


def test_a_vocabulary_reads_another_file_and_drops_unknown_tokens():
    _, _, vocabulary = load_ffm(shared_data(SAMPLE.format("train")))
    path = shared_data(SAMPLE.format("test"))
    X, y, same = load_ffm(path, vocabulary=vocabulary, dtype=np.float64)
    np.testing.assert_array_equal(same, vocabulary)
    column = {tuple(pair): c for c, pair in enumerate(vocabulary.tolist()) if pair[0] >= 0}
    rows, labels = tokens(path)
    dense = np.zeros(X.shape)
    dropped = 0
    for r, row in enumerate(rows):
        for f, j, v in row:
            if (f, j) in column:
                dense[r, column[f, j]] = v
            else:
                dropped += 1
    assert dropped > 0
    np.testing.assert_array_equal(X.toarray(), dense)
    np.testing.assert_array_equal(y, labels)
    chunks = list(iter_ffm(path, vocabulary=vocabulary, dtype=np.float64, block_bytes=4096))
    assert len(chunks) > 1 and all(np.array_equal(f, vocabulary) for _, _, f in chunks)
    assert (sp.vstack([c[0] for c in chunks]) != X).nnz == 0


@pytest.mark.parametrize("call, message", [
    (lambda: load_ffm(io.BytesIO(b"1 0:0:1\n"), vocabulary=[[0, 0]], n_features=3),
     r"vocabulary= gives the columns of \(field, id\) tokens: it goes with "
     r"field_conflicts='token' and without n_features"),
    (lambda: load_ffm(io.BytesIO(b"1 0:0:1\n"), vocabulary=[0, 1]),
     r"vocabulary must be the \(field id, feature id\) integers of every column, shape "
     r"\(n_columns, 2\); got shape \(2,\)"),
    (lambda: load_ffm(io.BytesIO(b"1 0:0:1\n"), vocabulary=[[0, 1], [1, 1], [0, 1]]),
     r"vocabulary row 2 repeats the \(field, id\) pair \[0, 1\] of an earlier row"),
    (lambda: load_ffm(io.BytesIO(b"1 0:0:1\n"), vocabulary=[[0, -1]]),
     r"vocabulary holds an id out of range"),
    (lambda: next(iter_ffm(io.BytesIO(b"1 0:0:1\n"), n_features=2, field_conflicts="token")),
     r"field_conflicts='token' reads chunks by a fixed vocabulary: pass vocabulary="),
    (lambda: next(iter_ffm(io.BytesIO(b"1 0:0:1\n"))),
     r"iter_ffm needs exactly one of n_features .* and vocabulary"),
    (lambda: load_ffm(io.BytesIO(b"1 0:0:1\n"), field_conflicts="last"),
     r"field_conflicts must be 'token', 'raise' or 'first'; got 'last'"),
])
def test_vocabulary_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_token_twice_in_one_row_is_an_error_naming_the_line():
    from fmlearn.io import DataFormatError
    with pytest.raises(DataFormatError, match=r"line 2: feature index 3 occurs twice in one row"):
        load_ffm(io.BytesIO(b"1 0:3:1\n0 1:3:1 1:3:2\n"))
    X, _, _ = load_ffm(io.BytesIO(b"1 0:3:1\n0 1:3:1 0:3:2\n"))  # two fields: two columns
    np.testing.assert_array_equal(X.toarray(), [[0, 0, 0, 1, 0], [0, 0, 0, 2, 1]])


def test_dump_ffm_writes_unused_vocabulary_columns_only_when_empty(tmp_path):
    X = sp.csr_matrix(np.array([[1.0, 0.0, 2.0]]))
    dump_ffm(X, [1], [[0, 5], [-1, 1], [1, 5]], tmp_path / "x.ffm")
    assert (tmp_path / "x.ffm").read_text() == "1 0:5:1.0 1:5:2.0\n"
    with pytest.raises(ValueError, match=r"feature 1 has \[-1, 1\]"):
        dump_ffm(np.ones((1, 3)), [1], [[0, 5], [-1, 1], [1, 5]], tmp_path / "x.ffm")


def libffm_scores(rows, W, normalize):
    """LIBFFM's ffm_predict (ffm.cpp, wTx), transcribed over the tokens of each row: no bias
    or linear term, one latent vector W[j, f] per feature id j and field f."""
    out = []
    for row in rows:
        r = 1 / sum(v * v for _, _, v in row) if normalize else 1.0
        phi = 0.0
        for a, (f1, j1, v1) in enumerate(row):
            for f2, j2, v2 in row[a + 1:]:
                phi += W[j1, f2] @ W[j2, f1] * v1 * v2 * r
        out.append(phi)
    return np.array(out)


def model_from_libffm(W, vocabulary, normalize):
    """An FFMModel whose every column of feature id j copies LIBFFM's W[j]."""
    fields = np.where(vocabulary[:, 0] >= 0, vocabulary[:, 0], 0).astype(np.int32)
    factors = W[vocabulary[:, 1]]  # the file's field ids are the codes: all are used
    return FFMModel(0.0, np.zeros(len(vocabulary)), factors, fields, normalize,
                    vocabulary[:, 1])


@pytest.mark.parametrize("normalize", [True, False])
def test_scores_are_libffms_on_the_criteo_sample(normalize):
    train, test = shared_data(SAMPLE.format("train")), shared_data(SAMPLE.format("test"))
    X, _, vocabulary = load_ffm(train, dtype=np.float64)
    n_fields = vocabulary[:, 0].max() + 1
    assert set(vocabulary[:, 0]) - {-1} == set(range(n_fields))
    W = np.random.default_rng(0).normal(0, 0.3, (vocabulary[:, 1].max() + 1, n_fields, 4))
    model = model_from_libffm(W, vocabulary, normalize)
    rows, _ = tokens(train)
    np.testing.assert_allclose(model.predict(X), libffm_scores(rows, W, normalize), rtol=1e-10,
                               atol=1e-12)
    X_test, _, _ = load_ffm(test, vocabulary=vocabulary, dtype=np.float64)
    known = {tuple(pair) for pair in vocabulary.tolist()}
    kept = [[(f, j, v) for f, j, v in row if (f, j) in known] for row in tokens(test)[0]]
    np.testing.assert_allclose(model.predict(X_test), libffm_scores(kept, W, normalize),
                               rtol=1e-10, atol=1e-12)


def test_ffm_fitted_on_the_criteo_sample_keeps_the_vocabulary(tmp_path):
    X, y, vocabulary = load_ffm(shared_data(SAMPLE.format("train")))
    clf = FFMClassifier(fields=vocabulary, n_factors=4, max_iter=3, tol=None,
                        random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.feature_ids_, vocabulary[:, 1])
    assert clf.factors_.shape == (X.shape[1], 18, 4)
    save(clf, tmp_path / "clf.fmlearn")
    again = load(tmp_path / "clf.fmlearn")
    np.testing.assert_array_equal(again.feature_ids_, vocabulary[:, 1])
    X_test, _, _ = load_ffm(shared_data(SAMPLE.format("test")), vocabulary=vocabulary)
    np.testing.assert_array_equal(again.predict_proba(X_test), clf.predict_proba(X_test))
    assert FFMClassifier(fields=[0, 1], max_iter=1).fit(np.eye(2), [0, 1]).feature_ids_ is None


def test_estimator_refuses_negative_feature_ids():
    with pytest.raises(ValueError, match=r"fields: the feature ids \(second column\) must be "
                                         r"0 .. 2\*\*31 - 1; column 1 has -3"):
        FFMClassifier(fields=[[0, 0], [1, -3]], max_iter=1).fit(np.eye(2), [0, 1])


def vocabulary_model_file(tmp_path):
    """The bytes of a saved FFM fitted with a vocabulary, and the bench's crafting helpers."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from fuzz_targets import model_files

    clf = FFMClassifier(fields=[[0, 5], [1, 5], [-1, 2]], max_iter=2, tol=None,
                        random_state=0).fit(np.eye(3), [0, 1, 0])
    save(clf, tmp_path / "m.fm")
    return (tmp_path / "m.fm").read_bytes(), model_files


@pytest.mark.parametrize("change, problem", [
    (lambda a: np.array([-1, 5, 2], dtype=np.int32),
     r"'model.feature_ids' holds -1 at index 0; feature ids are >= 0"),
    (lambda a: a.astype(np.int64), r"'model.feature_ids' has dtype <i8; expected <i4"),
    (lambda a: a[:2], r"'model.feature_ids' has shape \[2\]; expected \[n_features=3\]"),
])
def test_model_files_check_the_feature_ids(tmp_path, change, problem):
    from fmlearn import ModelFileError

    data, files = vocabulary_model_file(tmp_path)
    np.testing.assert_array_equal(load(tmp_path / "m.fm").feature_ids_, [5, 5, 2])
    crafted = files.with_array(data, "model.feature_ids",
                               change(files.read_array(data, "model.feature_ids")))
    (tmp_path / "crafted.fm").write_bytes(crafted)
    with pytest.raises(ModelFileError, match=problem):
        load(tmp_path / "crafted.fm")


def test_model_files_without_feature_ids_load_as_before(tmp_path):
    data, files = vocabulary_model_file(tmp_path)

    def old(header):  # as written before the (field, id) columns: no feature_ids field
        del header["model"]["fields"]["feature_ids"]
        header["arrays"] = {k: v for k, v in header["arrays"].items()
                            if k not in ("model.feature_ids", "params.fields")}
        del header["param_arrays"]  # and integer vectors as JSON lists in the params
        header["params"]["fields"] = [0, 1, -1]
        return header

    crafted = files.with_header(data, old)
    (tmp_path / "old.fm").write_bytes(crafted)
    loaded = load(tmp_path / "old.fm")
    assert loaded.feature_ids_ is None
    np.testing.assert_array_equal(loaded.predict_proba(np.eye(3)),
                                  load(tmp_path / "m.fm").predict_proba(np.eye(3)))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(st.tuples(st.integers(0, 3), st.integers(0, 6)),
                                st.sampled_from([0.5, 1.0, 2.0, -3.0]), min_size=1, max_size=6),
                min_size=1, max_size=8))
def test_random_token_files_round_trip(rows):
    text = "".join("1 " + " ".join(f"{f}:{j}:{v}" for (f, j), v in row.items()) + "\n"
                   for row in rows).encode()
    X, _, vocabulary = load_ffm(io.BytesIO(text), dtype=np.float64)
    column = {tuple(p): c for c, p in enumerate(vocabulary.tolist()) if p[0] >= 0}
    assert len(column) == len({pair for row in rows for pair in row})
    read = [{tuple(vocabulary[c]): v for c, v in zip(X[r].indices, X[r].data)}
            for r in range(X.shape[0])]
    assert read == rows
    X2, _, _ = load_ffm(io.BytesIO(text), vocabulary=vocabulary, dtype=np.float64)
    assert (X2 != X).nnz == 0
    with tempfile.TemporaryDirectory() as folder:
        dump_ffm(X, np.ones(len(rows)), vocabulary, f"{folder}/again.ffm")
        X3, _, _ = load_ffm(f"{folder}/again.ffm", vocabulary=vocabulary, dtype=np.float64)
    assert (X3 != X).nnz == 0


def test_long_fields_are_an_array_member_not_json(tmp_path):
    """A field per column of a 3-million-column hashed space: the header stays small (JSON
    would take tens of MB and, past 64 MiB, save a file that does not load)."""
    n = 3_000_000
    fields = np.arange(n, dtype=np.int32) % 3
    rows = sp.csr_matrix((np.ones(6), [0, 1, 2, n - 3, n - 2, n - 1], [0, 3, 6]), shape=(2, n))
    clf = FwFMClassifier(fields=fields, n_factors=1, max_iter=2, tol=None,
                         random_state=0).fit(rows, [0, 1])
    path = save(clf, tmp_path / "wide.fm")
    header = read_header(path)
    assert header["param_arrays"] == {"fields": {"array": "params.fields"}}
    assert len(json.dumps(header)) < 10_000
    loaded = load(path)
    np.testing.assert_array_equal(loaded.fields, fields)
    np.testing.assert_array_equal(loaded.predict_proba(rows), clf.predict_proba(rows))


@pytest.mark.parametrize("change, problem", [
    (lambda data, files: files.with_array(data, "params.fields", np.ones(3)),
     r"parameter 'fields' \(array 'params.fields'\) must be a vector of integers"),
    (lambda data, files: files.with_header(
        data, lambda h: {**h, "params": {**h["params"], "fields": [0, 1, 2]}}),
     r"parameter 'fields' is both in params and in param_arrays"),
])
def test_crafted_parameter_arrays_are_refused(tmp_path, change, problem):
    from fmlearn import ModelFileError

    data, files = vocabulary_model_file(tmp_path)
    (tmp_path / "bad.fm").write_bytes(change(data, files))
    with pytest.raises(ModelFileError, match=problem):
        load(tmp_path / "bad.fm")
