"""FieldHasher and the raw Criteo reader: LIBFFM's Criteo tokens, hashed per field, the same from a frame or the file."""
import csv
import math

import numpy as np
import pandas as pd
import pytest
from conftest import shared_data
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils import murmurhash3_32

from fmlearn import FFMClassifier
from fmlearn.io import DataFormatError, iter_criteo, load_criteo
from fmlearn.preprocessing import FieldHasher, column_fields

WIDTH = 39 * 64  # 64 columns a field: small enough for collisions to happen


def sample():
    """The raw Criteo sample in ../shared/data (the test skips where it is absent)."""
    return shared_data("criteo_raw_sample/criteo_sample.txt")


def sample_frame():
    frame = pd.read_csv(sample())
    return frame.drop(columns="label"), frame["label"].to_numpy(float)


def libffm_keys(path):
    """Each row's 39 keys, computed from the text as the LIBFFM Criteo solution's converter does."""
    rows = []
    with open(path) as file:
        for row in csv.DictReader(file):
            keys = []
            for j in range(1, 14):
                value = row[f"I{j}"]
                if value != "":
                    value = int(float(value))
                    value = int(math.log(value) ** 2) if value > 2 else f"SP{value}"
                keys.append(f"I{j}-{value}")
            keys += [f"C{j}-{row[f'C{j}']}" for j in range(1, 27)]
            rows.append(keys)
    return rows


def expected_column(key, field, n_features, n_fields):
    share, extra = divmod(n_features, n_fields)
    width = share + (field < extra)
    start = field * share + min(field, extra)
    return start + murmurhash3_32(key, positive=True) % width


def test_the_file_and_the_frame_give_the_libffm_tokens_hashed():
    X, y, fields = load_criteo(sample(), n_features=WIDTH, chunksize=7)
    frame, labels = sample_frame()
    hasher = FieldHasher(n_features=WIDTH).fit(frame)
    assert (hasher.transform(frame) != X).nnz == 0
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(fields, hasher.fields_)
    expected = [[expected_column(key, f, WIDTH, 39) for f, key in enumerate(keys)]
                for keys in libffm_keys(sample())]
    np.testing.assert_array_equal(X.indices.reshape(-1, 39), expected)
    np.testing.assert_array_equal(X.data, 1.0)
    np.testing.assert_array_equal(fields[X.indices.reshape(-1, 39)], np.tile(np.arange(39), (200, 1)))


def test_a_tab_separated_file_without_header_reads_the_same(tmp_path):
    text = open(sample()).read().splitlines()[1:]
    path = tmp_path / "train.txt"
    path.write_text("\n".join(line.replace(",", "\t") for line in text) + "\n\n")
    X, y, _ = load_criteo(path, n_features=WIDTH, chunksize=50)
    X0, y0, _ = load_criteo(sample(), n_features=WIDTH)
    assert (X != X0).nnz == 0 and X.shape == (200, WIDTH)
    np.testing.assert_array_equal(y, y0)
    frame, _ = next(iter_criteo(path, chunksize=3))
    assert list(frame.columns) == [f"I{j}" for j in range(1, 14)] + [f"C{j}" for j in range(1, 27)]


def test_the_hash_is_stable():
    # Pinned: a change here changes the columns of every model trained on hashed data.
    X, _, _ = load_criteo(sample(), n_features=2**20)
    assert X[0].indices.tolist() == [
        26149, 28477, 55017, 81415, 116614, 150162, 173278, 207903, 226830, 259065, 283028, 312261,
        335444, 372002, 400699, 415659, 430891, 470128, 484012, 529021, 556613, 570861, 599361,
        639564, 659810, 680311, 712174, 743160, 761322, 781354, 806696, 839486, 883931, 892458,
        922553, 962198, 987924, 1015963, 1033188]


@pytest.mark.parametrize("value, token", [
    (0, "SP0"), (1, "SP1"), (2, "SP2"), (-1, "SP-1"), (0.5, "SP0.5"), (3, "1"), (5, "2"),
    (21, "9"), (22, "9"), (260, "30"), (None, "")])
def test_counts_are_binned_as_libffm_criteo(value, token):
    hasher = FieldHasher(n_features=1000).fit(pd.DataFrame({"I1": [1.0]}))
    column = hasher.transform(pd.DataFrame({"I1": [value]}, dtype=float)).indices[0]
    assert column == murmurhash3_32(f"I1-{token}", positive=True) % 1000


def test_equal_tokens_in_different_columns_stay_apart():
    hasher = FieldHasher(n_features=10, counts=None).fit([["x", "x", "x"]])
    row = hasher.transform([["x", "x", "x"]]).indices
    assert hasher.field_widths() == [4, 3, 3]
    np.testing.assert_array_equal(hasher.fields_[row], [0, 1, 2])
    frame = pd.DataFrame({"user": ["u1", "u2"], "item": ["a", "b"], "city": ["x", "y"]})
    ct = ColumnTransformer([("hash", FieldHasher(n_features=20), ["user", "item"]),
                            ("city", "passthrough", [])]).fit(frame)
    np.testing.assert_array_equal(column_fields(ct), np.repeat([0, 1], 10))


def test_collisions_are_counted():
    assert FieldHasher(n_features=1).fit([["a"], ["b"], ["c"], ["a"]]).n_collisions_ == 2
    assert FieldHasher(n_features=1).fit([["a"], [None], [""]]).n_collisions_ == 1  # "" is missing
    frame, _ = sample_frame()
    hasher = FieldHasher(n_features=WIDTH).fit(frame)
    keys = np.array(libffm_keys(sample()))
    expected = 0
    for field in range(39):
        distinct = set(keys[:, field])
        expected += len(distinct) - len({expected_column(k, field, WIDTH, 39) for k in distinct})
    assert hasher.n_collisions_ == expected > 0


def test_unseen_tokens_hash_at_transform_time():
    frame, _ = sample_frame()
    hasher = FieldHasher(n_features=WIDTH).fit(frame.iloc[:10])
    X = hasher.transform(frame)
    assert X.shape == (200, WIDTH) and np.all(np.diff(X.indptr) == 39)
    new = frame.iloc[:1].assign(C3="never seen", I5=1e9)
    row = hasher.transform(new).indices
    assert row[4] == expected_column(f"I5-{int(math.log(1e9) ** 2)}", 4, WIDTH, 39)
    assert row[15] == expected_column("C3-never seen", 15, WIDTH, 39)


def test_bad_hasher_input_is_named():
    with pytest.raises(ValueError, match=r"column 'I1', row 1: 'x' is not a finite count"):
        FieldHasher(counts=["I1"]).fit(pd.DataFrame({"I1": ["1", "x"]}))
    with pytest.raises(ValueError, match=r"column 'I1', row 0: 'inf' is not a finite count"):
        FieldHasher().fit(pd.DataFrame({"I1": [np.inf]}))
    with pytest.raises(ValueError, match="counts names column 'I9', which X does not have"):
        FieldHasher(counts=["I9"]).fit(pd.DataFrame({"I1": [1]}))
    with pytest.raises(ValueError, match=r"n_features=2 is smaller than the number of columns \(3\)"):
        FieldHasher(n_features=2).fit([[1, 2, 3]])


@pytest.mark.parametrize("edit, message", [
    (lambda f: f + ",extra", r"line 4: 41 columns; a Criteo line has 40 \(label, I1-I13, C1-C26\)"),
    (lambda f: f.split(",", 1)[1], "line 4: 39 columns; a Criteo line has 40"),
    (lambda f: "2" + f[1:], "line 4: the label is '2'; expected 0 or 1"),
    (lambda f: f[1:], "line 4: the label is missing; expected 0 or 1"),
    (lambda f: ",".join([f[0], "abc", *f.split(",")[2:]]), "line 4: count I1 is 'abc'; expected an integer or nothing"),
])
def test_bad_lines_are_named(tmp_path, edit, message):
    lines = open(sample()).read().splitlines()[:6]
    lines[3] = edit(lines[3])
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=message):
        load_criteo(path, chunksize=2)


def test_an_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataFormatError, match="no rows"):
        load_criteo(tmp_path / "empty.txt")


def test_ffm_learns_from_hashed_fields_in_a_pipeline():
    frame, y = sample_frame()
    fields = FieldHasher(n_features=WIDTH).fit(frame).fields_
    pipe = make_pipeline(FieldHasher(n_features=WIDTH),
                         FFMClassifier(fields=fields, n_factors=4, max_iter=5, tol=None,
                                       random_state=0)).fit(frame, y)
    X, _, _ = load_criteo(sample(), n_features=WIDTH)
    clf = FFMClassifier(fields=fields, n_factors=4, max_iter=5, tol=None, random_state=0).fit(X, y)
    np.testing.assert_allclose(pipe.predict_proba(frame), clf.predict_proba(X))
    # The width does not depend on the rows, so the fixed fields hold at every refit.
    scores = cross_val_score(pipe, frame, y, cv=2, scoring="neg_log_loss")
    assert scores.shape == (2,) and np.isfinite(scores).all()
