"""Relational block structure: rows that repeat large sub-vectors hold an index into a block.

Rendle, "Scaling Factorization Machines to Relational Data" (VLDB 2013); libFM's
``-relation`` and myFM's ``RelationBlock``. Row ``r`` of the design matrix is X's row
followed by row ``indices[r]`` of each block's matrix: the feature space is X's columns,
then each block's, in the order of ``relations``.
"""
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from ._validation import as_fm_csr, with_fm_indices
from .kernels.relations import relational_scores_and_sums


@dataclass(frozen=True)
class RelationBlock:
    """A block of rows shared by many rows: row ``r`` holds row ``indices[r]`` of ``X``.

    Parameters
    ----------
    indices : array-like of int of shape (n_samples,)
        The block row each sample holds, in ``[0, X.shape[0])``.
    X : {array-like, sparse matrix} of shape (n_block_rows, n_block_features)
        The block's rows (e.g. one per user: the items the user rated, or side features).

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import RelationBlock
    >>> users = RelationBlock([0, 1, 1, 0], np.eye(2))
    >>> users.n_features
    2
    """

    indices: np.ndarray
    X: object

    @property
    def n_features(self):
        """The block's width."""
        return self.X.shape[1]


@dataclass
class RelationalRows:
    """Rows of X with their blocks: what the learners and models read for relational data.

    ``X`` is the CSR of the rows' own features, ``index`` (n_blocks, n_rows) the block row of
    each row in each block, ``blocks`` the blocks' matrices in CSC. ``shape`` is that of the
    expanded matrix, ``hstack([X] + [B[i] for each block])``.

    Examples
    --------
    >>> import numpy as np
    >>> rows = relational_rows(as_fm_csr(np.ones((2, 1)), np.float64),
    ...                        [RelationBlock([1, 0], np.eye(2))], np.float64)
    >>> rows.shape, rows.expand().toarray().tolist()
    ((2, 3), [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    >>> rows[[1]].expand().toarray().tolist()
    [[1.0, 1.0, 0.0]]
    """

    X: sp.csr_matrix
    index: np.ndarray
    blocks: list

    @property
    def shape(self):
        """(n_rows, width of X and the blocks)."""
        return self.X.shape[0], self.X.shape[1] + sum(B.shape[1] for B in self.blocks)

    @property
    def dtype(self):
        """The values' dtype."""
        return self.X.dtype

    def __getitem__(self, rows):
        """The rows ``rows`` (an index array), with the same blocks."""
        return RelationalRows(with_fm_indices(self.X[rows]), self.index[:, rows], self.blocks)

    def expand(self):
        """The expanded CSR matrix (memory O(rows x block nnz): for checks and small data)."""
        parts = [self.X] + [B.tocsr()[i] for B, i in zip(self.blocks, self.index)]
        return as_fm_csr(sp.hstack(parts, format="csr"), self.X.dtype)

    @cached_property
    def packed(self):
        """The tuple ``fmlearn.kernels.relations`` reads (see its notes)."""
        widths = [B.shape[1] for B in self.blocks]
        col_start = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        ptrs = [np.zeros(1, np.int64)]
        for B in self.blocks:
            ptrs.append(B.indptr[1:].astype(np.int64) + ptrs[-1][-1])
        col_ptr = np.concatenate(ptrs)
        rows = np.concatenate([B.indices for B in self.blocks] + [np.zeros(0, np.int32)])
        data = np.concatenate([B.data for B in self.blocks] + [np.zeros(0, self.X.dtype)])
        # Unsigned indices spare numba's negative-index checks; 16 bits where the blocks
        # have fewer rows halve what the memory-bound sweeps read.
        n_block_rows = np.array([B.shape[0] for B in self.blocks], dtype=np.int64)
        index_type = np.uint16 if n_block_rows.max(initial=0) <= 2**16 else np.uint32
        return (self.X.shape[1], self.index.astype(index_type), col_start, n_block_rows,
                col_ptr, rows.astype(index_type), data.astype(self.X.dtype))

    def scores(self, intercept, coef, factors, q=None):
        """FM scores of the rows (float64) under the given parameters; their factor sums
        into ``q`` (n_factors, n_rows) when given."""
        out = np.empty(self.X.shape[0])
        relational_scores_and_sums(self.X.indptr, self.X.indices, self.X.data, float(intercept),
                                   coef, factors, self.packed, out, q)
        return out


def relational_rows(X, relations, dtype, n_features=None):
    """Check ``relations`` against the CSR ``X`` (already validated) and return the
    :class:`RelationalRows`; ``n_features`` is the width a fitted model expects.

    Each relation is a :class:`RelationBlock` or an ``(indices, X_block)`` pair; its indices
    must be integers in ``[0, n_block_rows)``, one per row of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> X = as_fm_csr(np.ones((2, 1)), np.float64)
    >>> relational_rows(X, [([0, 2], np.eye(2))], np.float64)
    Traceback (most recent call last):
    ...
    ValueError: relations[0]: index 2 at row 1 is outside [0, 2), the block's rows.
    """
    if not isinstance(relations, (list, tuple)):
        raise ValueError(f"relations must be a list of RelationBlock; got {type(relations).__name__}.")
    index = np.empty((len(relations), X.shape[0]), dtype=np.int64)
    blocks = []
    for b, relation in enumerate(relations):
        name = f"relations[{b}]"
        if isinstance(relation, tuple) and len(relation) == 2:
            relation = RelationBlock(*relation)
        if not isinstance(relation, RelationBlock):
            raise ValueError(f"{name} must be a RelationBlock or an (indices, X) pair; got "
                             f"{type(relation).__name__}.")
        B = as_fm_csr(relation.X, dtype, name=f"{name}.X")
        idx = np.asarray(relation.indices)
        if idx.ndim != 1 or idx.shape[0] != X.shape[0]:
            raise ValueError(f"{name}: indices must give one block row per row of X "
                             f"({X.shape[0]}); got shape {idx.shape}.")
        if idx.shape[0] and idx.dtype.kind not in "iu":
            raise ValueError(f"{name}: indices must be integers; got dtype {idx.dtype}.")
        bad = np.flatnonzero((idx < 0) | (idx >= B.shape[0]))
        if bad.size:
            raise ValueError(f"{name}: index {idx[bad[0]]} at row {bad[0]} is outside "
                             f"[0, {B.shape[0]}), the block's rows.")
        index[b] = idx
        blocks.append(B.tocsc())
    rows = RelationalRows(X, index, blocks)
    if n_features is not None and rows.shape[1] != n_features:
        raise ValueError(f"X and its relations have {rows.shape[1]} features together, but "
                         f"the model expects {n_features}.")
    return rows
