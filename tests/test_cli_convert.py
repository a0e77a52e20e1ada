"""``fmlearn convert``: tables to libFM, libSVM, FFM and RecordIO rows, the vocabulary and its
reuse, the groups file, Parquet, and the errors. In this process, as the console script runs
(test_cli.py runs the README's conversion of MovieLens through the real executable)."""
import importlib.util
import json
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fmlearn.io import load_ffm, load_libsvm
from test_cli import fmlearn

TABLE = """user,movie,genres,age,when,stars
7,m1,Drama|War,31,2001,4
3,m2,,,2002,5

10,m2,Drama| Comedy|Drama,40.5,2003,1
"""
COLUMNS = ["--categorical", "user,movie", "--multi", "genres", "--numeric", "age",
           "--target", "stars"]
# user 3, 7, 10 (sorted as numbers) | movie m1, m2 | genres Comedy, Drama, War | age
EXPECTED = np.array([[0, 1, 0, 1, 0, 0, 1, 1, 31.0],
                     [1, 0, 0, 0, 1, 0, 0, 0, 0.0],
                     [0, 0, 1, 0, 1, 1, 1, 0, 40.5]])
GROUPS = [0, 0, 0, 1, 1, 2, 2, 2, 3]


@pytest.fixture
def table(tmp_path):
    (tmp_path / "t.csv").write_text(TABLE)
    return tmp_path


@pytest.mark.parametrize("output, to", [("t.libfm", None), ("t.svm", "libsvm"),
                                        ("t.ffm", "ffm"), ("t.txt", "libsvm"),
                                        ("t.recordio", "recordio")])
def test_each_format_holds_the_table(table, output, to):
    result = fmlearn("convert", "t.csv", output, *COLUMNS, "--meta", "t.groups",
                     *(["--to", to] if to else []), cwd=table)
    assert result.returncode == 0, result.stderr
    path = table / output
    if to == "recordio":
        from fmlearn.io.recordio import load_recordio

        X, y = load_recordio(path)
    elif to == "ffm":
        X, y, fields = load_ffm(path, n_features=9)
        assert fields[:, 0].tolist() == GROUPS  # a field per source column
    else:
        X, y = load_libsvm(path, n_features=9, zero_based=to is None)
    np.testing.assert_array_equal(X.toarray(), EXPECTED)
    assert y.tolist() == [4, 5, 1]
    assert (table / "t.groups").read_text().split() == [str(g) for g in GROUPS]
    assert ("left out the 1 column: 'when'" in result.stderr
            and f"wrote 3 rows and 9 features (user: 3, movie: 2, genres: 3, age: 1) to {output}"
            in result.stderr)
    vocabulary = json.loads((table / "t.vocab.json").read_text())
    assert vocabulary["target"] == "stars" and vocabulary["n_features"] == 9
    assert [(c["name"], c["kind"], c.get("values", c.get("feature")))
            for c in vocabulary["columns"]] == [
        ("user", "categorical", {"3": 0, "7": 1, "10": 2}),
        ("movie", "categorical", {"m1": 3, "m2": 4}),
        ("genres", "multi", {"Comedy": 5, "Drama": 6, "War": 7}), ("age", "numeric", 8)]


def test_the_text_is_what_libfm_reads(table):
    """Whole numbers are written without a decimal point, as libFM files are."""
    result = fmlearn("convert", "t.csv", "t.libfm", "--categorical", "user,movie",
                     "--target", "stars", cwd=table)
    assert result.returncode == 0, result.stderr
    assert (table / "t.libfm").read_text() == "4 1:1 3:1\n5 0:1 4:1\n1 2:1 4:1\n"


def test_a_vocabulary_numbers_a_test_table_as_the_training_table(table):
    assert fmlearn("convert", "t.csv", "train.libfm", *COLUMNS, cwd=table).returncode == 0
    (table / "test.csv").write_text("stars,genres,user,movie,age\n"
                                    "2,War|Western,3,m9,20\n3,Drama,99,m1,\n")
    result = fmlearn("convert", "test.csv", "test.libfm", "--vocabulary", "train.vocab.json",
                     cwd=table)
    assert result.returncode == 0, result.stderr
    X, y = load_libsvm(table / "test.libfm", n_features=9)
    # user 3 -> 0, m9 unseen, War -> 7, Western unseen, age -> 8;
    # user 99 unseen, m1 -> 3, Drama -> 6
    assert X.toarray().tolist() == [[1, 0, 0, 0, 0, 0, 0, 1, 20], [0, 0, 0, 1, 0, 0, 1, 0, 0]]
    assert y.tolist() == [2, 3]
    for column in ("user", "movie", "genres"):
        assert (f"1 value of {column!r} is not in train.vocab.json: dropped (their rows keep "
                "their other features)") in result.stderr
    assert not (table / "test.vocab.json").exists()
    # a table without the target: labels 0, rows for fmlearn predict
    (table / "new.csv").write_text("user,movie,genres,age\n7,m2,,\n")
    result = fmlearn("convert", "new.csv", "new.libfm", "--vocabulary", "train.vocab.json",
                     cwd=table)
    assert result.returncode == 0, result.stderr
    assert (table / "new.libfm").read_text() == "0 1:1 4:1\n"
    assert "new.csv has no column 'stars': every label is 0" in result.stderr


def test_a_header_less_table_with_a_tab_separator(tmp_path):
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    result = fmlearn("convert", "u.data", "u.libfm", "--sep", "\\t", "--names",
                     "user,item,rating,ts", "--categorical", "user,item", "--target", "rating",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "u.libfm").read_text() == "3 1:1 2:1\n3 0:1 3:1\n"
    assert (tmp_path / "u.vocab.json").exists()


@pytest.fixture
def parquet_file(table):
    (table / "t.parquet").write_bytes(b"")  # only opened before pyarrow is looked for
    return table


def test_parquet_reads_as_the_csv(table):
    pytest.importorskip("pyarrow")
    frame = pd.read_csv(table / "t.csv")  # typed columns: user int, age float with NaN
    frame["genres"] = [["Drama", "War"], None, ["Drama", "Comedy", "Drama"]]  # list cells
    frame.to_parquet(table / "t.parquet")
    result = fmlearn("convert", "t.parquet", "t.libfm", *COLUMNS, cwd=table)
    assert result.returncode == 0, result.stderr
    X, y = load_libsvm(table / "t.libfm", n_features=9)
    np.testing.assert_array_equal(X.toarray(), EXPECTED)


def test_parquet_without_pyarrow_names_the_package(parquet_file):
    find_spec = importlib.util.find_spec
    with mock.patch("importlib.util.find_spec",
                    lambda name, *a: None if name == "pyarrow" else find_spec(name, *a)):
        result = fmlearn("convert", "t.parquet", "t.libfm", *COLUMNS, cwd=parquet_file)
    assert result.returncode == 1
    assert result.stderr.strip() == ("fmlearn: error: cannot read the Parquet table "
                                     "'t.parquet': reading Parquet needs the pyarrow package "
                                     "(pip install pyarrow)")


@pytest.mark.parametrize("args, status, message", [
    (["bad.csv", "o.libfm", "--categorical", "user", "--numeric", "age", "--target", "stars"],
     65, "fmlearn: error: bad.csv, line 3: the column 'age' holds 'abc', not a number"),
    (["bad.csv", "o.libfm", "--categorical", "user", "--target", "stars"], 65,
     "fmlearn: error: bad.csv, line 4: the column 'stars' is empty"),
    (["bad.csv", "o.libfm", "--categorical", "usr", "--target", "stars"], 2,
     "fmlearn: error: bad.csv has no column 'usr' (named by the command line); its columns: "
     "user, age, stars"),
    (["bad.csv", "o.libfm", "--categorical", "user", "--target", "rating"], 2,
     "fmlearn: error: bad.csv has no column 'rating' (--target); its columns: user, age, stars"),
    (["bad.csv", "o.libfm", "--categorical", "user", "--numeric", "user"], 2,
     "Error: the column 'user' is named by --categorical and --numeric; give each column one "
     "kind."),
    (["bad.csv", "o.libfm", "--categorical", "user", "--target", "user"], 2,
     "Error: the target 'user' cannot also be a feature (--categorical)."),
    (["bad.csv", "o.libfm", "--target", "stars"], 2,
     "Error: name the columns to convert: --categorical, --multi or --numeric."),
    (["bad.csv", "o.libfm", "--names", "a,b", "--categorical", "a"], 2,
     "fmlearn: error: --names gives 2 distinct names but bad.csv has 3 columns (separated by "
     "',': is --sep right?)"),
    (["bad.csv", "o.libfm", "--vocabulary", "bad.csv"], 65,
     "fmlearn: error: bad.csv: not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    (["bad.csv", "o.libfm", "--vocabulary", "v.json", "--categorical", "user"], 2,
     "Error: --categorical cannot be combined with --vocabulary, which names the columns and "
     "their kinds."),
    (["empty.csv", "o.libfm", "--categorical", "user"], 65,
     "fmlearn: error: empty.csv: the table holds no rows"),
    (["missing.csv", "o.libfm", "--categorical", "user"], 2,
     "fmlearn: error: cannot read 'missing.csv': No such file or directory"),
    (["t.parquet", "o.libfm", "--sep", ";", "--categorical", "user"], 2,
     "Error: --sep and --names are for text tables; a Parquet table names its columns."),
])
def test_errors_name_the_line_or_the_flag(parquet_file, args, status, message):
    (parquet_file / "bad.csv").write_text("user,age,stars\n1,31,3\n2,abc,4\n3,,\n")
    (parquet_file / "empty.csv").write_text("user,age\n\n")
    result = fmlearn("convert", *args, cwd=parquet_file)
    assert result.returncode == status, result.stderr
    assert message in " ".join(result.stderr.split())
    assert not (parquet_file / "o.libfm").exists()


@pytest.mark.parametrize("text, problem", [
    ('{"format": "other"}', 'not a vocabulary of fmlearn convert (no "format": '
     '"fmlearn-vocabulary")'),
    ('{"format": "fmlearn-vocabulary", "version": 1, "target": null, "n_features": 2, '
     '"columns": [{"name": "u", "kind": "categorical", "values": {"a": 2}}]}',
     "column 1 ('u'): needs feature ids, integers from 0 to n_features - 1 = 1"),
    ('{"format": "fmlearn-vocabulary", "version": 1, "target": null, "n_features": 2, '
     '"columns": [{"name": "u", "kind": "multi", "values": {"a": 0}}]}',
     "column 1 ('u'): a multi-valued column needs its separator"),
])
def test_a_broken_vocabulary_is_named(table, text, problem):
    (table / "v.json").write_text(text)
    result = fmlearn("convert", "t.csv", "o.libfm", "--vocabulary", "v.json", cwd=table)
    assert result.returncode == 65
    assert result.stderr.strip() == f"fmlearn: error: v.json: {problem}"


cells = st.lists(st.sampled_from(["a", "b", "7", "10", "x y"]), max_size=3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["u1", "u2", "3", ""]), cells,
                          st.sampled_from(["", "0", "2.5", "-1e3"])), min_size=1, max_size=12))
def test_each_row_holds_its_cells_features(tmp_path_factory, rows):
    """Whatever the cells: a row's features are its values' ids under the vocabulary, with the
    number of a numeric cell; empty cells and repeated values add nothing."""
    folder = tmp_path_factory.mktemp("convert")
    frame = pd.DataFrame({"id": [r[0] for r in rows], "tags": ["|".join(r[1]) for r in rows],
                          "x": [r[2] for r in rows], "y": range(len(rows))})
    frame.to_csv(folder / "t.csv", index=False)
    result = fmlearn("convert", "t.csv", "t.libfm", "--categorical", "id", "--multi", "tags",
                     "--numeric", "x", "--target", "y", cwd=folder)
    assert result.returncode == 0, result.stderr
    vocabulary = json.loads((folder / "t.vocab.json").read_text())
    ids, tags, x = vocabulary["columns"]
    X, y = load_libsvm(folder / "t.libfm", n_features=vocabulary["n_features"])
    assert y.tolist() == list(range(len(rows)))
    for row, (user, values, number) in zip(X.toarray(), rows):
        expected = np.zeros(vocabulary["n_features"])
        if user:
            expected[ids["values"][user]] = 1
        for value in values:
            expected[tags["values"][value]] = 1
        expected[x["feature"]] = float(number or 0)
        np.testing.assert_array_equal(row, expected)
