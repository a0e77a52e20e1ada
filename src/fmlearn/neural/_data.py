"""Mini-batches of a CSR matrix for the PyTorch models, without densifying the features.

Bag models (FM, NFM) read a batch as the CSR slice of its rows: the column ids, the
values and the row of each stored entry (an embedding bag with per-sample values).
Field models (DeepFM) read a ``(n_samples, n_fields)`` slot layout: in each row the one
feature of every field and its value (feature 0 with value 0 where a row has none).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def field_slots(X: sp.csr_matrix, fields: np.ndarray, n_fields: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The slot layout of ``X``: per row and field the feature id and its value.

    Raises ValueError naming the row and the field when a row holds two features of
    one field.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1.0, 0, 2], [0, 3, 0]]))
    >>> ids, values = field_slots(X, np.array([0, 0, 1]), 2)
    >>> ids.tolist(), values.tolist()
    ([[0, 2], [1, 0]], [[1.0, 2.0], [3.0, 0.0]])
    >>> field_slots(sp.csr_matrix(np.ones((1, 2))), np.array([0, 0]), 1)
    Traceback (most recent call last):
    ...
    ValueError: row 0 of X holds two features (columns 0 and 1) of field 0; this model takes one feature per field.
    """
    n = X.shape[0]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(X.indptr))
    keys = rows * n_fields + fields[X.indices]
    order = np.argsort(keys, kind="stable")
    twice = np.flatnonzero(np.diff(keys[order]) == 0)
    if twice.size:
        first, second = X.indices[order[twice[0]]], X.indices[order[twice[0] + 1]]
        raise ValueError(f"row {rows[order[twice[0]]]} of X holds two features (columns "
                         f"{first} and {second}) of field {fields[first]}; this model takes "
                         "one feature per field.")
    ids = np.zeros(n * n_fields, dtype=np.int64)
    values = np.zeros(n * n_fields, dtype=X.dtype)
    ids[keys], values[keys] = X.indices, X.data
    return ids.reshape(n, n_fields), values.reshape(n, n_fields)


class Batches:
    """The rows of ``X`` (and targets, weights) in a given order, cut into mini-batches of
    tensors: ``(indices, values, rows, n_rows)`` for bag models, ``(ids, values)`` for field
    models (``slots`` given); ``values`` None when every value is 1.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[1.0, 0], [0, 2], [3, 4]]))
    >>> data = Batches(X, np.array([2, 0, 1]))
    >>> [b[0][2].tolist() for b in data.cut(2, "cpu")]
    [[0, 0, 1], [0]]
    """

    def __init__(self, X: sp.csr_matrix, order: np.ndarray, *arrays: np.ndarray,
                 slots: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.n = len(order)
        self.arrays = [torch.from_numpy(np.ascontiguousarray(a[order])) for a in arrays]
        if slots is not None:
            ids, values = slots
            self.slots = (torch.from_numpy(np.ascontiguousarray(ids[order])),
                          _values(np.ascontiguousarray(values[order])))
            return
        self.slots = None
        Xo = X[order] if not np.array_equal(order, np.arange(X.shape[0])) else X
        self.indptr = Xo.indptr.astype(np.int64)
        self.indices = torch.from_numpy(Xo.indices.astype(np.int64))
        self.values = _values(Xo.data)

    def cut(self, batch_size: int, device: torch.device | str):
        """Yield ``(inputs, arrays)`` per batch, both tuples of tensors on ``device``."""
        for a in range(0, self.n, batch_size):
            b = min(a + batch_size, self.n)
            if self.slots is not None:
                inputs = tuple(_part(t, a, b, device) for t in self.slots)
            else:
                s, e = self.indptr[a], self.indptr[b]
                rows = np.repeat(np.arange(b - a, dtype=np.int64), np.diff(self.indptr[a:b + 1]))
                inputs = (self.indices[s:e].to(device), _part(self.values, s, e, device),
                          torch.from_numpy(rows).to(device), b - a)
            yield inputs, tuple(t[a:b].to(device) for t in self.arrays)


def _values(values: np.ndarray) -> torch.Tensor | None:
    """The entries' values as a tensor, or None when every one is 1 (one-hot rows: the
    networks skip the product).

    Examples
    --------
    >>> _values(np.ones(3, np.float32)) is None, _values(np.array([1.0, 2.0])).tolist()
    (True, [1.0, 2.0])
    """
    return None if (values == 1).all() else torch.from_numpy(values)


def _part(tensor: torch.Tensor | None, a: int, b: int, device) -> torch.Tensor | None:
    """``tensor[a:b]`` on ``device`` (None stays None)."""
    return None if tensor is None else tensor[a:b].to(device)
