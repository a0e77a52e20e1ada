"""Criteo's raw click logs: a label, 13 integer counts and 26 hashed categories a row, empty = missing."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from itertools import chain, islice

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..preprocessing import FieldHasher
from .errors import DataFormatError

COUNTS = [f"I{j}" for j in range(1, 14)]
CATEGORIES = [f"C{j}" for j in range(1, 27)]
NAMES = ["label", *COUNTS, *CATEGORIES]


def iter_criteo(path: str | os.PathLike[str], *,
                chunksize: int = 100_000) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Read a raw Criteo file in chunks of rows, as DataFrames and labels.

    The file has 40 columns a line: the label (0 or 1), the counts ``I1`` to
    ``I13`` and the categories ``C1`` to ``C26``, an empty column being a
    missing value. Columns are separated by tabs (Criteo's ``train.txt``) or
    commas (a first line that starts ``label,`` is a header and skipped); blank
    lines are skipped.

    Parameters
    ----------
    path : str or path-like
    chunksize : int, default=100_000
        Lines a chunk.

    Yields
    ------
    frame : DataFrame
        ``I1..I13`` as float64 and ``C1..C26`` as str, missing values NaN:
        what :class:`~fmlearn.preprocessing.FieldHasher` hashes, as ``pd.read_csv``
        gives them.
    y : ndarray of float64
        The labels.

    Raises
    ------
    DataFormatError
        Naming the line, for a line without 40 columns, a label other than 0
        or 1, or a count that is not a finite number.

    Examples
    --------
    >>> frame, y = next(iter_criteo("../shared/data/criteo_raw_sample/criteo_sample.txt",
    ...                             chunksize=5))
    >>> frame.shape, y
    ((5, 39), array([0., 0., 0., 0., 0.]))
    >>> frame.loc[0, ["I1", "I2", "I3"]].tolist(), frame.loc[0, "C1"]
    ([nan, 3.0, 260.0], '05db9164')
    """
    with open(path) as file:
        lines = enumerate(file, 1)
        first = next(lines, None)
        if first is None:
            return
        sep = "\t" if "\t" in first[1] else ","
        lines = chain([] if first[1].startswith("label" + sep) else [first], lines)
        while batch := list(islice(lines, chunksize)):
            batch = [(number, line) for number, line in batch if line.strip()]
            if batch:
                yield _frame(path, batch, sep)


def load_criteo(path: str | os.PathLike[str], *, n_features: int = 2**20,
                chunksize: int = 100_000) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Read a raw Criteo file hashed into a fixed width, one field per column.

    Each chunk of :func:`iter_criteo` goes through
    ``FieldHasher(n_features, counts=["I1", ..., "I13"])``: the same matrix as
    the hasher gives on a DataFrame of the file's rows, and the same columns for
    any file read with the same ``n_features``.

    Parameters
    ----------
    path : str or path-like
    n_features : int, default=2**20
        The width, split evenly between the 39 fields.
    chunksize : int, default=100_000
        Lines hashed at a time.

    Returns
    -------
    X : csr_matrix of shape (n_rows, n_features)
        One non-zero (1.0) per field and row.
    y : ndarray of float64
    fields : ndarray of int64, shape (n_features,)
        The field of every column (``FieldHasher.fields_``), for ``FFMClassifier(fields=...)``.

    Examples
    --------
    >>> X, y, fields = load_criteo("../shared/data/criteo_raw_sample/criteo_sample.txt",
    ...                            n_features=39 * 1000)
    >>> X.shape, X.nnz == 39 * X.shape[0], int(fields.max()) + 1
    ((200, 39000), True, 39)
    """
    hasher = FieldHasher(n_features=n_features, counts=COUNTS)
    blocks: list[sp.csr_matrix] = []
    labels: list[np.ndarray] = []
    for frame, y in iter_criteo(path, chunksize=chunksize):
        if not blocks:
            hasher.fit(frame)
        blocks.append(hasher.transform(frame))
        labels.append(y)
    if not blocks:
        raise DataFormatError(path, "no rows")
    return sp.vstack(blocks, format="csr"), np.concatenate(labels), hasher.fields_


def _frame(path: str | os.PathLike[str], batch: list[tuple[int, str]],
           sep: str) -> tuple[pd.DataFrame, np.ndarray]:
    for number, line in batch:
        if line.count(sep) != len(NAMES) - 1:
            raise DataFormatError(path, f"{line.count(sep) + 1} columns; a Criteo line has "
                                  f"{len(NAMES)} (label, I1-I13, C1-C26)", line=number)
    table = pd.read_csv(io.StringIO("".join(line for _, line in batch)), sep=sep, header=None,
                        names=NAMES, dtype=str, keep_default_na=False, na_values=[""],
                        quoting=csv.QUOTE_NONE)
    numeric = table[["label", *COUNTS]]
    numbers = numeric.apply(pd.to_numeric, errors="coerce")
    bad = (numeric.notna() & ~np.isfinite(numbers)).to_numpy()
    bad[:, 0] = ~numbers["label"].isin([0, 1]).to_numpy()
    if bad.any():
        i, j = np.argwhere(bad)[0]
        what = "the label" if j == 0 else f"count {numeric.columns[j]}"
        value = numeric.iat[i, j]
        raise DataFormatError(path, f"{what} is {'missing' if pd.isna(value) else repr(value)}; expected "
                              + ("0 or 1" if j == 0 else "an integer or nothing"), line=batch[i][0])
    frame = pd.concat([numbers[COUNTS].astype(np.float64), table[CATEGORIES]], axis=1)
    return frame, numbers["label"].to_numpy(dtype=np.float64)
