"""MovieLens loaders: download from a local HTTP server, check, unpack once, parse; the real 100K."""
import dataclasses
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import shared_data
from fmlearn import datasets
from fmlearn.datasets import fetch_movielens_1m, fetch_movielens_100k, get_data_home
from fmlearn.io.errors import DataFormatError

SHARED_ML_100K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-100k"

GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western"]

# (user, item, rating, timestamp), in u.data's order (not sorted, like the real file).
RATINGS_100K = [(2, 30, 3, 891717742), (1, 10, 5, 881250949), (3, 20, 1, 878887116),
                (1, 30, 4, 880606923), (2, 10, 2, 886397596), (3, 10, 4, 884182806),
                (1, 20, 3, 875072484)]


CHILDRENS = "Children's"


def flags(*names):
    return "|".join("1" if genre in names else "0" for genre in GENRES_100K)


def fake_100k_files():
    """The ml-100k layout with a few rows: latin-1 titles, a movie with no date, every split file."""
    files = {
        "u.data": "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS_100K),
        "u.user": "1|24|M|technician|85711\n2|53|F|other|04043\n3|23|M|writer|T8H1N\n",
        "u.genre": "".join(f"{genre}|{code}\n" for code, genre in enumerate(GENRES_100K)) + "\n",
        "u.item": (
            f"10|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/x|"
            f"{flags('Drama', 'Musical')}\n"
            f"20|unknown|||http://us.imdb.com/M/y|{flags('unknown')}\n"
            f"30|Toy Story (1995)|22-Nov-1995||http://us.imdb.com/M/z|"
            f"{flags('Animation', CHILDRENS, 'Comedy')}\n"),
        "README": "fake\n",
    }
    # Test sets: u1..u5 are the five folds of the rows by position; ua / ub hold each user's first /
    # last rating. Split files are sorted by (user, item) like GroupLens', not in u.data's order.
    tests = {f"u{k}": {n for n in range(len(RATINGS_100K)) if n % 5 == k - 1} for k in range(1, 6)}
    by_user = {}
    for n, (user, *_) in enumerate(RATINGS_100K):
        by_user.setdefault(user, []).append(n)
    tests["ua"] = {rows[0] for rows in by_user.values()}
    tests["ub"] = {rows[-1] for rows in by_user.values()}
    for split, test in tests.items():
        for part, rows in (("base", set(range(len(RATINGS_100K))) - test), ("test", test)):
            lines = sorted(RATINGS_100K[n] for n in rows)
            files[f"{split}.{part}"] = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in lines)
    return files, {split: sorted(test) for split, test in tests.items()}


FAKE_1M_FILES = {
    "ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
    "users.dat": "1::F::1::10::48067\n2::M::56::16::02134\n3::M::25::0::98107-4032\n",
    "movies.dat": ("1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                   "661::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Sci-Fi\n"
                   '3::"Misérables, Les" (1995)::Drama|Musical\n'),
    "README": "fake\n",
}


def write_zip(path, folder, files):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/", "")
        for name, text in files.items():
            archive.writestr(f"{folder}/{name}", text.encode("latin-1"))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/www, recording the paths it was asked for."""
    root = tmp_path / "www"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    for name in ("no_proxy", "NO_PROXY"):  # a proxy in the environment must not take loopback
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_port}", requests=requests)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def grouplens(server, monkeypatch):
    """Fake ml-100k.zip and ml-1m.zip on the local server, with the loaders pointed at them."""
    files_100k, tests = fake_100k_files()
    digests = {"ml-100k": write_zip(server.root / "ml-100k.zip", "ml-100k", files_100k),
               "ml-1m": write_zip(server.root / "ml-1m.zip", "ml-1m", FAKE_1M_FILES)}
    for name, digest in digests.items():
        monkeypatch.setitem(datasets._ARCHIVES, name, dataclasses.replace(
            datasets._ARCHIVES[name], url=f"{server.url}/{name}.zip", sha256=digest))
    server.tests_100k = tests
    server.sha256 = digests
    return server


def test_fetch_100k_downloads_unpacks_and_parses(grouplens, tmp_path):
    home = tmp_path / "home"
    ml = fetch_movielens_100k(home)
    assert grouplens.requests == ["/ml-100k.zip"]
    assert (home / "ml-100k.zip").is_file() and (home / "ml-100k" / "u1.base").is_file()
    assert sorted(p.name for p in home.iterdir()) == ["ml-100k", "ml-100k.zip"]  # no temporaries

    expected = pd.DataFrame(RATINGS_100K, columns=["user_id", "item_id", "rating", "timestamp"])
    pd.testing.assert_frame_equal(ml.ratings, expected)
    assert list(ml.users.columns) == ["user_id", "age", "gender", "occupation", "zip"]
    assert ml.users["zip"].tolist() == ["85711", "04043", "T8H1N"]
    assert ml.users["occupation"].tolist() == ["technician", "other", "writer"]
    assert list(ml.movies.columns) == ["item_id", "title", "release_date", "year", "genres"]
    assert ml.movies["title"].tolist() == ["Misérables, Les (1995)", "unknown", "Toy Story (1995)"]
    assert ml.movies["genres"].tolist() == ["Drama|Musical", "unknown",
                                            "Animation|Children's|Comedy"]
    assert ml.movies["release_date"].iloc[2] == pd.Timestamp("1995-11-22")
    assert pd.isna(ml.movies["release_date"].iloc[1]) and pd.isna(ml.movies["year"].iloc[1])
    assert ml.movies["year"].iloc[0] == 1995

    assert sorted(ml.splits) == ["u1", "u2", "u3", "u4", "u5", "ua", "ub"]
    everything = np.arange(len(RATINGS_100K))
    for split, (train, test) in ml.splits.items():
        assert test.tolist() == grouplens.tests_100k[split], split
        assert np.array_equal(np.sort(np.concatenate([train, test])), everything), split


def test_second_fetch_reads_the_folder_without_the_network(grouplens, tmp_path):
    first = fetch_movielens_100k(tmp_path)
    second = fetch_movielens_100k(tmp_path, download_if_missing=False)
    fetch_movielens_1m(tmp_path)
    fetch_movielens_1m(tmp_path)
    assert grouplens.requests == ["/ml-100k.zip", "/ml-1m.zip"]
    pd.testing.assert_frame_equal(first.movies, second.movies)


def test_fetch_1m_parses_double_colons_and_latin1(grouplens, tmp_path):
    ml = fetch_movielens_1m(tmp_path)
    assert grouplens.requests == ["/ml-1m.zip"]
    pd.testing.assert_frame_equal(ml.ratings, pd.DataFrame(
        {"user_id": [1, 1, 2], "item_id": [1193, 661, 1193], "rating": [5, 3, 4],
         "timestamp": [978300760, 978302109, 978298413]}))
    assert list(ml.users.columns) == ["user_id", "age", "gender", "occupation", "zip"]
    assert ml.users["age"].tolist() == [1, 56, 25]
    assert ml.users["gender"].tolist() == ["F", "M", "M"]
    assert ml.users["occupation"].tolist() == ["K-12 student", "self-employed", "other"]
    assert ml.users["zip"].tolist() == ["48067", "02134", "98107-4032"]
    assert list(ml.movies.columns) == ["item_id", "title", "year", "genres"]
    assert ml.movies["title"].tolist() == ["One Flew Over the Cuckoo's Nest (1975)",
                                           "Star Wars: Episode IV - A New Hope (1977)",
                                           '"Misérables, Les" (1995)']
    assert ml.movies["year"].tolist() == [1975, 1977, 1995]
    assert ml.movies["genres"].tolist() == ["Drama", "Action|Adventure|Sci-Fi", "Drama|Musical"]


def test_checksum_mismatch_raises_and_keeps_nothing(grouplens, tmp_path, monkeypatch):
    wrong = "0" * 64
    monkeypatch.setitem(datasets._ARCHIVES, "ml-100k",
                        dataclasses.replace(datasets._ARCHIVES["ml-100k"], sha256=wrong))
    home = tmp_path / "home"
    with pytest.raises(OSError, match=f"expected {wrong}, got {grouplens.sha256['ml-100k']}"):
        fetch_movielens_100k(home)
    assert grouplens.requests == ["/ml-100k.zip"]
    assert list(home.iterdir()) == []


def test_download_if_missing_false_raises_without_a_request(grouplens, tmp_path):
    with pytest.raises(FileNotFoundError, match="download_if_missing is False"):
        fetch_movielens_1m(tmp_path, download_if_missing=False)
    assert grouplens.requests == []


def test_failed_download_names_the_url_and_keeps_nothing(grouplens, tmp_path, monkeypatch):
    url = f"{grouplens.url}/no-such.zip"
    monkeypatch.setitem(datasets._ARCHIVES, "ml-1m",
                        dataclasses.replace(datasets._ARCHIVES["ml-1m"], url=url))
    with pytest.raises(OSError, match=f"Could not download {url}"):
        fetch_movielens_1m(tmp_path / "home")
    assert list((tmp_path / "home").iterdir()) == []


@pytest.mark.parametrize("inside", [False, True], ids=["parent", "folder itself"])
def test_reads_an_unpacked_folder_without_the_network(grouplens, tmp_path, inside):
    with zipfile.ZipFile(grouplens.root / "ml-100k.zip") as archive:
        archive.extractall(tmp_path / "local")
    home = tmp_path / "local" / "ml-100k" if inside else tmp_path / "local"
    ml = fetch_movielens_100k(home)
    assert grouplens.requests == []
    assert len(ml.ratings) == len(RATINGS_100K)


def test_a_zip_put_in_data_home_is_checked_and_unpacked(grouplens, tmp_path):
    (tmp_path / "ml-1m.zip").write_bytes((grouplens.root / "ml-1m.zip").read_bytes())
    ml = fetch_movielens_1m(tmp_path, download_if_missing=False)
    assert grouplens.requests == []
    assert len(ml.ratings) == 3

    other = tmp_path / "other"
    other.mkdir()
    (other / "ml-1m.zip").write_bytes(b"not the archive")
    with pytest.raises(OSError, match="wrong SHA-256"):
        fetch_movielens_1m(other)
    assert (other / "ml-1m.zip").read_bytes() == b"not the archive"  # a user's file is not deleted
    assert grouplens.requests == []


def test_an_incomplete_folder_is_reported_not_downloaded_over(grouplens, tmp_path):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t10\t5\t881250949\n")
    with pytest.raises(FileNotFoundError, match="lacks u.user"):
        fetch_movielens_100k(tmp_path)
    assert grouplens.requests == []


def test_a_split_row_missing_from_u_data_is_a_format_error(grouplens, tmp_path):
    with zipfile.ZipFile(grouplens.root / "ml-100k.zip") as archive:
        archive.extractall(tmp_path)
    with open(tmp_path / "ml-100k" / "u3.test", "a") as file:
        file.write("3\t30\t5\t881250949\n")
    with pytest.raises(DataFormatError, match=r"u3.test, line 2: user 3's rating of item 30"):
        fetch_movielens_100k(tmp_path)


def test_get_data_home_default_environment_and_argument(tmp_path, monkeypatch):
    monkeypatch.delenv("FMLEARN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert get_data_home() == tmp_path / "user" / "fmlearn_data"
    assert get_data_home().is_dir()
    monkeypatch.setenv("FMLEARN_DATA", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"


def test_real_movielens_100k_from_the_shared_folder():
    shared_data("ml-100k/u.data")
    ml = fetch_movielens_100k(SHARED_ML_100K, download_if_missing=False)
    assert ml.ratings.shape == (100_000, 4)
    assert len(ml.users) == ml.ratings["user_id"].nunique() == 943
    assert len(ml.movies) == ml.ratings["item_id"].nunique() == 1682
    assert set(ml.ratings["rating"]) == {1, 2, 3, 4, 5}
    assert ml.movies.set_index("item_id").loc[1, "genres"] == "Animation|Children's|Comedy"
    assert ml.movies.set_index("item_id").loc[543, "title"] == "Misérables, Les (1995)"
    assert (ml.movies["genres"] != "").all()
    folds = np.concatenate([ml.splits[f"u{k}"][1] for k in range(1, 6)])
    assert np.array_equal(np.sort(folds), np.arange(100_000))  # u1..u5 test sets partition u.data
    for split, (train, test) in ml.splits.items():
        assert len(train) + len(test) == 100_000 and not np.intersect1d(train, test).size, split
    for split in ("ua", "ub"):
        assert (ml.ratings.iloc[ml.splits[split][1]].groupby("user_id").size() == 10).all()
