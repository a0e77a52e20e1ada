"""Features renumbered by falling frequency while a model trains.

When the parameters outgrow the caches, an SGD epoch waits on memory for the rare
features' rows. Renumbering the features so that the frequent ones come first packs the
rows the epoch reads most into few pages and cache sets, where they stay (an epoch over
2e7 power-law rows 1.28x faster, 2.0x with the prefetch; ``bench/bandwidth_floor.py``). The rows keep their
non-zeros in their own order, so the arithmetic, and with one thread every value, is
exactly that of the original numbering.
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._validation import with_fm_indices
from ..kernels.rows import column_counts, permute_rows, relabel_columns


@dataclass(frozen=True)
class FeatureOrder:
    """A renumbering of the features: feature ``old[i]`` is feature ``i`` in training.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[0, 1, 1], [0, 0, 1]], dtype=np.float32))
    >>> order = FeatureOrder.by_frequency(X)
    >>> order.old.tolist()
    [2, 1, 0]
    >>> order.relabel(X).indices.tolist()
    [1, 0, 0]
    >>> coef = np.array([10.0, 20.0, 30.0])
    >>> order.forward([coef]); coef.tolist()
    [30.0, 20.0, 10.0]
    >>> order.backward([coef]); coef.tolist()
    [10.0, 20.0, 30.0]
    """

    old: np.ndarray  # the original id of each training id
    new: np.ndarray  # the training id of each original id

    @classmethod
    def by_frequency(cls, X):
        """The most frequent features of the CSR matrix ``X`` first (ties by id)."""
        counts = column_counts(X.indices, X.shape[1])
        old = np.argsort(np.negative(counts, out=counts), kind="stable").astype(X.indices.dtype)
        new = np.empty_like(old)
        new[old] = np.arange(old.shape[0], dtype=old.dtype)
        return cls(old, new)

    @classmethod
    def identity(cls, n_features):
        """The features as they are numbered."""
        ids = np.arange(n_features, dtype=np.int32)
        return cls(ids, ids)

    def relabel(self, X, in_place=False):
        """``X`` with its columns renumbered; ``in_place`` renumbers ``X`` itself (for a
        matrix the caller owns) and returns it."""
        if not in_place:
            indices = np.empty_like(X.indices)
            relabel_columns(X.indices, self.new, indices)
            return with_fm_indices(sp.csr_matrix((X.data, indices, X.indptr), shape=X.shape))
        relabel_columns(X.indices, self.new, X.indices)
        # Each row keeps its order, no longer that of the columns.
        X.has_canonical_format = X.has_sorted_indices = False
        return X

    def forward(self, arrays):
        """Reorder the per-feature ``arrays`` (1-D, or 2-D with the features along the first
        axis) in place into the training numbering, without a copy of any."""
        for array in arrays:
            permute_rows(array if array.ndim == 2 else array[:, None], self.old)

    def backward(self, arrays):
        """Undo :meth:`forward` on ``arrays`` in place."""
        for array in arrays:
            permute_rows(array if array.ndim == 2 else array[:, None], self.new)
