"""LIBFFM's model files (``ffm-train``'s output) as an :class:`~fmlearn.model.FFMModel`."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..model import FFMModel
from .errors import DataFormatError
from .ffm import _checked_vocabulary

if TYPE_CHECKING:
    from .._typing import StrPath

_HEADER = 13  # int32 n, m, k and a one-byte bool: LIBFFM >= 1.2's binary file


def load_libffm_model(path: StrPath, vocabulary: ArrayLike, *, align: int = 4) -> FFMModel:
    """Read a LIBFFM model file into an FFM over the (field, feature id) columns of
    ``vocabulary``.

    LIBFFM keeps latent vectors ``W[j, f]`` per feature id ``j < n`` and field ``f < m``
    and shares them between the fields an id occurs in; each column here gets a copy of
    ``W[id, :]``, so the scores are LIBFFM's (no bias or linear terms; rows scaled to unit
    length when the model says ``normalization``). A column whose id or field is beyond
    the model gets zero vectors, as LIBFFM skips such tokens (they still count in a row's
    length). Both formats are read: the text of LIBFFM 1.0-1.1 (``n``, ``m``, ``k``,
    ``normalization`` lines, then ``w<j>,<f>`` lines) and the binary of later versions.

    Parameters
    ----------
    path : str or path
    vocabulary : array-like of int of shape (n_columns, 2)
        The (field id, feature id) of each column: the ``fields`` of
        :func:`~fmlearn.io.load_ffm` for the rows to score.
    align : {4, 1}, default=4
        Binary files: the ``kALIGN`` of the LIBFFM build that wrote them, 4 with SSE
        (its Makefile's default), 1 without.

    Returns
    -------
    FFMModel

    Raises
    ------
    DataFormatError
        Naming the file (and line) where it is not a LIBFFM model.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "model.txt")
    >>> _ = open(path, "w").write("n 2\\nm 2\\nk 1\\nnormalization 0\\n"
    ...                           "w0,0 1 \\nw0,1 2 \\nw1,0 3 \\nw1,1 4 \\n")
    >>> model = load_libffm_model(path, [[0, 0], [1, 1]])
    >>> model.predict(np.array([[1.0, 1.0]]))  # <W[0, field 1], W[1, field 0]> = 2 * 3
    array([6.], dtype=float32)
    """
    vocabulary = _checked_vocabulary(vocabulary)
    if align not in (1, 4):
        raise ValueError(f"align must be 4 (LIBFFM built with SSE) or 1; got {align!r}")
    with open(path, "rb") as fh:
        data = fh.read()
    name = os.fspath(path)
    weights, normalization = (_text_weights(data, name) if data.startswith(b"n ")
                              else _binary_weights(data, name, align))
    n, m, k = weights.shape
    field, ids = vocabulary[:, 0], vocabulary[:, 1]
    known = (field >= 0) & (field < m) & (ids < n)
    factors = np.zeros((len(vocabulary), m, k), dtype=np.float32)
    factors[known] = weights[ids[known]]
    return FFMModel(0.0, np.zeros(len(vocabulary), dtype=np.float32), factors,
                    np.where(known, field, 0).astype(np.int32), normalization, ids)


def _binary_weights(data: bytes, name: str, align: int) -> tuple[NDArray[np.float32], bool]:
    """``ffm_save_model`` of LIBFFM >= 1.2: n, m, k, normalization, then per (j, f) blocks of
    ``align`` weights followed by ``align`` AdaGrad sums, k padded to a multiple of
    ``align``."""
    if len(data) < _HEADER:
        raise DataFormatError(name, "not a LIBFFM model: shorter than its 13-byte header")
    n, m, k = (int(v) for v in np.frombuffer(data, dtype="<i4", count=3))
    k_aligned = -(-k // align) * align if k > 0 else 0
    expected = _HEADER + 4 * 2 * n * m * k_aligned
    if min(n, m, k) < 1 or data[12] > 1 or len(data) != expected:
        raise DataFormatError(name, f"not a LIBFFM model: its header says n={n}, m={m}, k={k}, "
                              f"which take {expected} bytes with align={align}; the file has "
                              f"{len(data)}")
    blocks = np.frombuffer(data, dtype="<f4", offset=_HEADER)
    blocks = blocks.reshape(n, m, k_aligned // align, 2, align)[:, :, :, 0, :]
    weights = blocks.reshape(n, m, k_aligned)[:, :, :k].astype(np.float32)
    if not np.isfinite(weights).all():
        j, f, _ = np.argwhere(~np.isfinite(weights))[0]
        raise DataFormatError(name, f"the weights of feature {j} for field {f} are not finite")
    return weights, bool(data[12])


def _text_weights(data: bytes, name: str) -> tuple[NDArray[np.float32], bool]:
    """``ffm_save_model`` of LIBFFM 1.0-1.1: four ``key value`` lines, then ``w<j>,<f>`` and
    k numbers per line, j major."""
    lines = data.decode("ascii", errors="replace").splitlines()
    header = {}
    for number, (line, key) in enumerate(zip(lines, ("n", "m", "k", "normalization")), 1):
        parts = line.split()
        if len(parts) != 2 or parts[0] != key or not parts[1].isdigit():
            raise DataFormatError(name, f"expected '{key} <integer>', found {line!r}",
                                  line=number)
        header[key] = int(parts[1])
    n, m, k = header["n"], header["m"], header["k"]
    body = lines[4:]
    if len(body) != n * m:
        raise DataFormatError(name, f"the header says n={n}, m={m}: {n * m} weight lines; the "
                              f"file has {len(body)}")
    weights = np.empty((n * m, k), dtype=np.float32)
    for row, line in enumerate(body):
        parts = line.split()
        j, f = divmod(row, m)
        try:
            if parts[0] != f"w{j},{f}" or len(parts) != k + 1:
                raise ValueError
            weights[row] = [float(v) for v in parts[1:]]
        except (ValueError, IndexError):
            raise DataFormatError(name, f"expected 'w{j},{f}' and {k} numbers, found "
                                  f"{line[:60]!r}", line=row + 5) from None
    if not np.isfinite(weights).all():
        row = int(np.flatnonzero(~np.isfinite(weights).all(axis=1))[0])
        raise DataFormatError(name, "a weight is not finite", line=row + 5)
    return weights.reshape(n, m, k), bool(header["normalization"])
