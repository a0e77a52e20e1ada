"""Training rows spread over a Dask cluster: one ``Partition`` per chunk, held by the workers."""
import hashlib
from dataclasses import dataclass
from functools import partial

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import scipy.sparse as sp

from .._validation import as_fm_csr
from ..io import detect_format, load_ffm, load_libsvm, load_recordio


@dataclass
class Partition:
    """The rows of one chunk as the kernels read them: CSR features, targets, row weights.

    Built on a worker and kept there; only its summaries travel to the driver.
    ``y`` holds the raw labels until ``encode`` replaces them by the loss's targets.
    """

    index: int
    X: sp.csr_matrix
    y: np.ndarray
    sample_weight: np.ndarray

    def summary(self):
        """What the driver needs to know of the partition: size, width, weight, the target
        range (numeric targets) and the distinct labels (the first 1001: a classifier needs
        two)."""
        y = self.y
        numeric = y.dtype.kind in "biuf" and y.size > 0
        return {"n_rows": self.X.shape[0], "n_features": self.X.shape[1],
                "weight_sum": float(self.sample_weight.sum(dtype=np.float64)),
                "labels": np.unique(y)[:1001],
                "low": float(y.min()) if numeric else None,
                "high": float(y.max()) if numeric else None}


def digest(part):
    """A hash of the partition's rows, labels and weights, in their order (hex, 16 digits)."""
    h = hashlib.blake2b(digest_size=8)
    y = part.y if part.y.dtype.kind in "biuf" else part.y.astype(str)
    for array in (part.X.indptr, part.X.indices, part.X.data, y, part.sample_weight):
        h.update(np.ascontiguousarray(array).view(np.uint8))
    return h.hexdigest()


def _fail(index, problem):
    raise ValueError(f"partition {index}: {problem}")


def make_partition(index, X, y, sample_weight, dtype, seed):
    """Validate one chunk and build its ``Partition``, rows shuffled once by ``seed`` (None
    keeps their order)."""
    try:
        X = as_fm_csr(X, dtype)
    except ValueError as exc:
        _fail(index, f"X: {exc}")
    y = np.asarray(y).ravel()
    if y.shape[0] != X.shape[0]:
        _fail(index, f"X has {X.shape[0]} rows but y has {y.shape[0]}; the chunks of X and y "
              "must hold the same rows")
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        _fail(index, "y contains NaN or infinity")
    if sample_weight is None:
        sample_weight = np.ones(X.shape[0], dtype=dtype)
    sample_weight = np.asarray(sample_weight, dtype=dtype).ravel()
    if sample_weight.shape[0] != X.shape[0] or not np.isfinite(sample_weight).all() \
            or (sample_weight < 0).any():
        _fail(index, "sample_weight must be finite, non-negative and one per row")
    if seed is not None:
        order = np.random.default_rng([seed, index]).permutation(X.shape[0])
        X, y, sample_weight = X[order], y[order], sample_weight[order]
    return Partition(index, X, y, sample_weight)


# Shards are read alone: an FFM id in two fields is an error, not a column of one shard only.
_READERS = {"libsvm": load_libsvm, "ffm": partial(load_ffm, field_conflicts="raise"),
            "recordio": load_recordio}


def read_partition(index, path, file_format, dtype, seed):
    """Read one file shard (libSVM/libFM, FFM, whose fields are dropped, or RecordIO)."""
    fmt = detect_format(path) if file_format == "auto" else file_format
    rows = _READERS[fmt](path, dtype=dtype)
    return make_partition(index, rows[0], rows[1], None, dtype, seed)


def widen(part, n_features):
    """The partition with ``n_features`` columns (a file shard is as wide as its largest
    index)."""
    if part.X.shape[1] == n_features:
        return part
    X = sp.csr_matrix((part.X.data, part.X.indices, part.X.indptr),
                      shape=(part.X.shape[0], n_features), copy=False)
    return Partition(part.index, X, part.y, part.sample_weight)


def encode(part, classes):
    """The partition with its labels replaced by the classifier's targets (-1 / +1) or, for a
    regressor (``classes`` None), by numbers of the model dtype."""
    dtype = part.X.dtype
    if classes is None:
        return Partition(part.index, part.X, part.y.astype(dtype), part.sample_weight)
    return Partition(part.index, part.X, np.where(part.y == classes[1], 1, -1).astype(dtype),
                     part.sample_weight)


def is_distributed(X):
    """Whether ``fit`` input is for the cluster: a Dask collection or a list of file paths."""
    if isinstance(X, (da.Array, dd.DataFrame)):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(
        isinstance(p, str) or hasattr(p, "__fspath__") for p in X)


def _row_chunks(values, chunks, name):
    """``values`` (a Dask or in-memory 1-d array, or None) cut into the row chunks of X."""
    if values is None:
        return [None] * len(chunks)
    if isinstance(values, (dd.Series, dd.DataFrame)):
        values = values.to_dask_array(lengths=True)
    if not isinstance(values, da.Array):
        values = da.from_array(np.asarray(values), chunks=-1)
    values = values.ravel() if values.ndim > 1 else values
    if values.shape[0] != sum(chunks):
        raise ValueError(f"X has {sum(chunks)} rows but {name} has {values.shape[0]}.")
    return list(values.rechunk((chunks,)).to_delayed().ravel())


def _chunks_of(X, y, sample_weight):
    """Delayed (X, y, weight) chunks of a Dask array or DataFrame."""
    if isinstance(X, dd.DataFrame):
        X = X.to_dask_array(lengths=True)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-dimensional; got a Dask array of shape {X.shape}.")
    X = X.rechunk({1: -1})
    chunks = X.chunks[0]
    if y is None:
        raise ValueError("y is required with a Dask collection X.")
    return (list(X.to_delayed().ravel()), _row_chunks(y, chunks, "y"),
            _row_chunks(sample_weight, chunks, "sample_weight"))


@dataclass
class PartitionedData:
    """Futures of the ``Partition``s on the workers and what the driver knows of them.

    Examples
    --------
    >>> PartitionedData.__name__
    'PartitionedData'
    """

    client: object
    parts: list
    n_rows: int
    n_features: int
    weight_sum: float
    summaries: list

    @property
    def shape(self):
        return (self.n_rows, self.n_features)

    @classmethod
    def build(cls, client, X, y, sample_weight, *, dtype, file_format, seed):
        """Build the partitions on the workers, from a Dask array or DataFrame (with ``y``) or
        a list of file shards (whose labels are in the files)."""
        if isinstance(X, (da.Array, dd.DataFrame)):
            xs, ys, ws = _chunks_of(X, y, sample_weight)
            parts = [dask.delayed(make_partition)(i, x, yy, w, dtype, seed)
                     for i, (x, yy, w) in enumerate(zip(xs, ys, ws))]
            parts = client.compute(parts)
        else:
            if y is not None or sample_weight is not None:
                raise ValueError("With file shards the labels come from the files: pass y=None "
                                 "and sample_weight=None.")
            paths = [str(p) for p in X]
            parts = [client.submit(read_partition, i, p, file_format, dtype, seed,
                                   pure=False) for i, p in enumerate(paths)]
        summaries = client.gather([client.submit(Partition.summary, p) for p in parts])
        n_features = max(s["n_features"] for s in summaries)
        parts = [client.submit(widen, p, n_features) for p in parts]
        return cls(client, parts, sum(s["n_rows"] for s in summaries), n_features,
                   sum(s["weight_sum"] for s in summaries), summaries)

    def fingerprint(self):
        """What tells this data from other data: the rows of each partition, the features and
        a hash of the partitions' contents (see ``digest``)."""
        digests = self.client.gather([self.client.submit(digest, p) for p in self.parts])
        h = hashlib.blake2b("".join(digests).encode(), digest_size=8)
        return {"partition_rows": [s["n_rows"] for s in self.summaries],
                "n_features": self.n_features, "digest": h.hexdigest()}

    def labels(self):
        """The distinct labels over all partitions."""
        return np.unique(np.concatenate([s["labels"] for s in self.summaries]))

    def target_range(self):
        """The smallest and largest target over all partitions."""
        return (min(s["low"] for s in self.summaries if s["low"] is not None),
                max(s["high"] for s in self.summaries if s["high"] is not None))

    def widened(self, n_features):
        """The partitions with ``n_features`` columns (see ``widen``)."""
        parts = [self.client.submit(widen, p, n_features) for p in self.parts]
        return PartitionedData(self.client, parts, self.n_rows, n_features, self.weight_sum,
                               self.summaries)

    def encoded(self, classes):
        """The partitions with targets encoded for the loss (see ``encode``)."""
        parts = [self.client.submit(encode, p, classes) for p in self.parts]
        return PartitionedData(self.client, parts, self.n_rows, self.n_features,
                               self.weight_sum, self.summaries)
