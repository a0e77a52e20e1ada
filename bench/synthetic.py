"""Synthetic recommender-style data for scaling runs: one-hot fields with power-law
feature frequencies and labels from a planted FM; written in chunks, never held whole."""
import numpy as np
import scipy.sparse as sp

from fmlearn.io._text import format_rows


def planted_rows(n_rows, *, n_fields=10, n_features=1_000_000, n_factors=8, seed=0):
    """``(X, y)``: each row one feature per field, drawn with Zipf-like frequencies (a = 1.2);
    y = a planted FM's score plus noise, rounded to two decimals (as ratings files are)."""
    rng = np.random.default_rng(seed)
    width = n_features // n_fields
    planted = np.random.default_rng(12345)
    coef = planted.normal(0, 0.1, n_features)
    factors = planted.normal(0, 0.3, (n_features, n_factors))
    ranks = np.minimum(rng.zipf(1.2, size=(n_rows, n_fields)), width) - 1
    scatter = planted.permutation(width)  # frequent features spread over the field's range
    columns = scatter[ranks] + np.arange(n_fields) * width
    X = sp.csr_matrix((np.ones(columns.size, np.float32), columns.ravel(),
                       np.arange(0, columns.size + 1, n_fields)), shape=(n_rows, n_features))
    q = factors[columns].sum(axis=1)
    pairs = 0.5 * ((q ** 2).sum(axis=1) - (factors[columns] ** 2).sum(axis=(1, 2)))
    y = coef[columns].sum(axis=1) + pairs + rng.normal(0, 0.1, n_rows)
    return X, np.round(y, 2)


def write_planted_file(path, n_bytes=None, *, n_rows=None, rows_per_chunk=500_000, seed=0,
                       **kwargs):
    """Append chunks of :func:`planted_rows` as libFM text to ``path`` until it holds
    ``n_bytes`` or ``n_rows`` rows; return the number of rows written."""
    if (n_bytes is None) == (n_rows is None):
        raise ValueError("give one of n_bytes and n_rows")
    written = 0
    with open(path, "wb") as handle:
        chunk = 0
        while handle.tell() < n_bytes if n_rows is None else written < n_rows:
            size = rows_per_chunk if n_rows is None else min(rows_per_chunk, n_rows - written)
            X, y = planted_rows(size, seed=seed + chunk, **kwargs)
            handle.write(format_rows(X, y))
            written += size
            chunk += 1
    return written


def power_law_rows(n_rows, *, n_fields=4, width=2000, a=1.3, seed=0):
    """``(X, y)``: one feature per field drawn with Zipf frequencies (``a``), y = a planted
    k=4 FM (factors N(0, 0.3), weights N(0, 0.1)) plus noise N(0, 0.1): a few features in
    most rows, most features in a few (the Dask tests' planted set, at any size)."""
    rng, planted = np.random.default_rng(seed), np.random.default_rng(99)
    factors = planted.normal(0, 0.3, (n_fields * width, 4))
    coef = planted.normal(0, 0.1, n_fields * width)
    columns = np.minimum(rng.zipf(a, (n_rows, n_fields)), width) - 1 + np.arange(n_fields) * width
    X = sp.csr_matrix((np.ones(columns.size, np.float32), columns.ravel(),
                       np.arange(0, columns.size + 1, n_fields)), shape=(n_rows, n_fields * width))
    q = factors[columns].sum(axis=1)
    pairs = 0.5 * ((q ** 2).sum(axis=1) - (factors[columns] ** 2).sum(axis=(1, 2)))
    return X, coef[columns].sum(axis=1) + pairs + rng.normal(0, 0.1, n_rows)
