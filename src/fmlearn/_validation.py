"""Input checks: every user-facing error about X, y and sample_weight is raised here.

Whatever the caller passes (numpy arrays, pandas frames, any scipy sparse
format), the kernels receive a CSR matrix with ``int64`` row pointers,
``int32`` column indices, data in the model dtype and no duplicate entries.
The arrays of a sparse input are checked first (``check_sparse_arrays``), before
SciPy or a kernel reads them: SciPy builds matrices whose indices lie outside
their shape, and reading those crashes the process. The caller's arrays are never
modified: anything that must change is copied.
"""
import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import _check_sample_weight, check_array, validate_data

from .kernels.checks import (DECREASES, INDEX_OUTSIDE, NOT_FROM_ZERO, PAST_THE_ENTRIES,
                             SHORT_OF_THE_ENTRIES, first_bad_compressed, first_bad_coordinate)

_INDEX_LIMIT = np.iinfo(np.int32).max
# Formats whose stored values scikit-learn can check for NaN and inf; others (dok, lil, ...)
# are converted to the first before checking.
_FORMATS = ("csr", "csc", "coo")
# What the lines and the indices of each compressed format are.
_LINES = {"csr": ("row", "column"), "csc": ("column", "row"), "bsr": ("block row", "block column")}


def check_sparse_arrays(X, name="X"):
    """Raise ``ValueError`` naming the first entry where the arrays of a sparse ``X`` break
    its format; anything else passes.

    A CSR, CSC or BSR matrix needs a row pointer ``indptr`` with one entry more than it
    has rows (CSC: columns, BSR: block rows) that starts at 0, never decreases and ends at
    ``len(indices) == len(data)``, and every index inside the shape; a COO matrix needs
    row and column indices inside the shape and as many values. The raw arrays are read
    as they are, before anything converts them: int64 indices are not narrowed (2**33 + 1
    would become 1) and no SciPy routine, some of which read the arrays unchecked, runs
    first. One numba pass (``fmlearn.kernels.checks``), about 1 ns per stored entry.
    DOK and LIL matrices check their indices as they are built.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix((np.ones(2), np.array([0, 10**8]), np.array([0, 1, 2])), shape=(2, 6))
    >>> check_sparse_arrays(X)
    Traceback (most recent call last):
    ...
    ValueError: X row 1 has column index 100000000, outside [0, 6).
    >>> check_sparse_arrays(sp.eye(3, format="coo"))
    """
    if not sp.issparse(X):
        return
    if X.format == "coo":
        _check_coordinates(X, name)
    elif X.format in _LINES:
        shape = X.shape[::-1] if X.format == "csc" else X.shape
        block = X.blocksize if X.format == "bsr" else (1, 1)
        _check_compressed(X, shape[0] // block[0], shape[1] // block[1], _LINES[X.format], name)


def check_fm_csr(X, n_features, dtype, name="X"):
    """Raise ``ValueError`` unless ``X`` is a CSR matrix in the form ``as_fm_csr`` returns for
    a model of ``n_features`` features and ``dtype``: ``int64`` row pointers, ``int32``
    column indices, values of ``dtype`` and arrays that pass ``check_sparse_arrays``.

    ``X`` may be anything with the attributes ``indptr``, ``indices``, ``data`` and ``shape``.

    Examples
    --------
    >>> import numpy as np
    >>> X = as_fm_csr(np.eye(2), np.float32)
    >>> check_fm_csr(X, 2, np.float32)
    >>> X.indices[1] = 7
    >>> check_fm_csr(X, 2, np.float32)
    Traceback (most recent call last):
    ...
    ValueError: X row 1 has column index 7, outside [0, 2).
    """
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects {n_features}.")
    for part, want in (("indptr", np.int64), ("indices", np.int32), ("data", dtype)):
        got = np.asarray(getattr(X, part)).dtype
        if got != want:
            raise ValueError(f"{name}.{part} has dtype {got}; predict_csr reads "
                             f"{np.dtype(want).name} (the form as_fm_csr returns): pass {name} "
                             "to predict, which converts it.")
    _check_compressed(X, X.shape[0], n_features, _LINES["csr"], name)


def _index_array(X, part, name):
    """The index array ``part`` of ``X`` as int32 or int64 (narrower integers widened)."""
    values = np.asarray(getattr(X, part))
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise ValueError(f"{name}.{part} must be a 1-d array of integers; got {values.dtype} "
                         f"of shape {values.shape}.")
    # uint64 values beyond int64 wrap to negatives: still outside, and reported from X itself.
    return values if values.dtype in (np.int32, np.int64) else values.astype(np.int64)


def _check_compressed(X, n_lines, n_minor, words, name):
    """``check_sparse_arrays`` of compressed arrays with ``n_lines`` lines (rows for CSR)
    and indices in ``[0, n_minor)``; ``words`` names a line and an index."""
    line_word, index_word = words
    indptr, indices = _index_array(X, "indptr", name), _index_array(X, "indices", name)
    data = np.asarray(X.data)
    n_entries = indices.shape[0]
    if indptr.shape[0] != n_lines + 1:
        raise ValueError(f"{name} has {n_lines} {line_word}s, but its indptr has "
                         f"{indptr.shape[0]} entries; it needs {n_lines + 1}.")
    if data.ndim < 1 or data.shape[0] != n_entries:
        raise ValueError(f"{name} has {data.shape[0] if data.ndim else 0} stored values "
                         f"(len(data)) but {n_entries} {index_word} indices (len(indices)); "
                         "they must have the same length.")
    problem, line, p = first_bad_compressed(indptr, indices, n_minor)
    if problem == INDEX_OUTSIDE:
        raise ValueError(f"{name} {line_word} {line} has {index_word} index "
                         f"{X.indices[p]}, outside [0, {n_minor}).")
    if problem == NOT_FROM_ZERO:
        raise ValueError(f"{name}'s indptr starts at {X.indptr[0]}; it must start at 0.")
    if problem == DECREASES:
        raise ValueError(f"{name}'s indptr decreases at {line_word} {line}: the {line_word} "
                         f"starts at entry {X.indptr[line]} and ends at entry "
                         f"{X.indptr[line + 1]}.")
    if problem == PAST_THE_ENTRIES:
        raise ValueError(f"{name}'s indptr points past the stored entries: {line_word} {line} "
                         f"ends at entry {X.indptr[line + 1]}, but {name} stores {n_entries} "
                         "(len(indices)).")
    if problem == SHORT_OF_THE_ENTRIES:
        raise ValueError(f"{name}'s indptr ends at {X.indptr[-1]}, but {name} stores "
                         f"{n_entries} entries (len(indices)); they must be equal.")


def _check_coordinates(X, name):
    """``check_sparse_arrays`` of a COO matrix."""
    row, col = _index_array(X, "row", name), _index_array(X, "col", name)
    n_values = np.shape(X.data)[0] if np.ndim(X.data) else 0
    if not row.shape[0] == col.shape[0] == n_values:
        raise ValueError(f"{name} has {n_values} stored values (len(data)), {row.shape[0]} row "
                         f"indices and {col.shape[0]} column indices; they must have the same "
                         "length.")
    p = first_bad_coordinate(row, col, X.shape[0], X.shape[1])
    if p >= 0:
        raise ValueError(f"{name} entry {p} is at row {X.row[p]}, column {X.col[p]}, outside "
                         f"the shape {X.shape}.")


def as_fm_csr(X, dtype, n_features=None, name="X"):
    """Check ``X`` and return it as a CSR matrix in the layout the kernels read.

    ``X`` is checked as the models' ``predict`` needs: sparse arrays by
    ``check_sparse_arrays``, then numeric, finite and 2-d by scikit-learn's
    ``check_array``, and ``n_features`` columns when given. Index arrays are converted
    when their type differs, duplicate entries are summed, stored zeros dropped, and
    nothing the caller holds is written to.

    Examples
    --------
    >>> import numpy as np
    >>> as_fm_csr(np.eye(2), np.float32).indices.dtype
    dtype('int32')
    >>> as_fm_csr(np.eye(2), np.float32, n_features=3)
    Traceback (most recent call last):
    ...
    ValueError: X has 2 features, but the model expects 3.
    """
    check_sparse_arrays(X, name)
    X = check_array(X, accept_sparse=_FORMATS, dtype=dtype, input_name=name)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects {n_features}.")
    return _fm_layout(X, dtype)


def _fm_layout(X, dtype):
    """``X``, already checked (finite, numeric, 2-d, sound sparse arrays), as the CSR
    ``as_fm_csr`` returns."""
    dtype = np.dtype(dtype)
    if not sp.issparse(X):
        X = sp.csr_matrix(np.asarray(X, dtype=dtype))
    elif X.format != "csr":
        X = X.tocsr()
    if X.shape[1] > _INDEX_LIMIT:
        raise ValueError(f"X has {X.shape[1]} columns; at most {_INDEX_LIMIT} features are supported.")
    csr = sp.csr_matrix(
        (X.data.astype(dtype, copy=False), X.indices.astype(np.int32, copy=False),
         X.indptr.astype(np.int64, copy=False)),
        shape=X.shape, copy=False,
    )
    own = not X.has_canonical_format
    if own:
        csr = csr.copy()
        csr.sum_duplicates()
    if not csr.data.all():
        # Stored zeros are dropped: SGD's penalty steps the features a row holds, so a
        # stored 0 would train differently from the same row without it.
        csr = csr if own else csr.copy()
        csr.eliminate_zeros()
    return with_fm_indices(csr)


def with_fm_indices(csr):
    """Give a CSR matrix we built ``int64`` row pointers and ``int32`` column indices.

    scipy narrows row pointers to ``int32`` wherever they fit; the kernels are
    compiled for one layout. Only the attributes of ``csr`` are replaced, never the
    arrays it was built from. Nothing is checked: this is for matrices fmlearn built
    itself; ``as_fm_csr`` converts anything else.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> with_fm_indices(sp.csr_matrix(np.eye(2))).indptr.dtype
    dtype('int64')
    """
    csr.indptr = csr.indptr.astype(np.int64, copy=False)
    csr.indices = csr.indices.astype(np.int32, copy=False)
    return csr


def validate_fm_data(estimator, X, y="no_validation", *, reset, y_numeric=False):
    """Validate estimator input with scikit-learn's rules, then convert ``X`` as ``as_fm_csr`` does.

    Raises ``ValueError`` naming the problem for broken sparse arrays
    (``check_sparse_arrays``), NaN or infinite values, empty
    input, mismatched lengths, non-numeric data and (when ``reset`` is false) a
    feature count that differs from the one seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from fmlearn import FMRegressor
    >>> X, y = validate_fm_data(FMRegressor(), np.eye(3), [1, 2, 3], reset=True, y_numeric=True)
    >>> X.format, y.dtype
    ('csr', dtype('float32'))
    """
    dtype = np.dtype(estimator.dtype)
    check_sparse_arrays(X)
    if isinstance(y, str) and y == "no_validation":
        X = validate_data(estimator, X, accept_sparse=_FORMATS, dtype=dtype, reset=reset)
        return _fm_layout(X, dtype)
    if y_numeric:
        _check_numeric_target(estimator, y)
    X, y = validate_data(estimator, X, y, accept_sparse=_FORMATS, dtype=dtype, reset=reset,
                         y_numeric=y_numeric, multi_output=False)
    if y_numeric:
        with np.errstate(over="ignore"):
            y = y.astype(dtype, copy=False)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains values too large for the model dtype "
                             f"{dtype.name}; rescale y or use dtype='float64'.")
    return _fm_layout(X, dtype), y


def _check_numeric_target(estimator, y):
    y = np.asarray(y) if y is not None else y
    if y is None or y.dtype.kind not in "OUS":
        return
    for value in y.ravel():
        try:
            float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{type(estimator).__name__} needs numeric targets; y holds "
                             f"{str(value)!r}, which is not a number.") from None


def validate_sample_weight(sample_weight, X, dtype):
    """Return non-negative finite sample weights of ``X``'s length, ones when ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> validate_sample_weight(None, np.zeros((2, 1)), np.float32)
    array([1., 1.], dtype=float32)
    """
    return _check_sample_weight(sample_weight, X, dtype=dtype, ensure_non_negative=True)


def validate_feature_groups(feature_groups, n_features, solver):
    """Return the group of each feature as codes 0..G-1 (int64), or None when not given.

    Examples
    --------
    >>> validate_feature_groups([5, 5, 9], 3, "mcmc")
    array([0, 0, 1])
    """
    if feature_groups is None:
        return None
    if solver not in ("mcmc", "vb", "sgda"):
        raise ValueError(f"feature_groups sets the priors of solver='mcmc' and 'vb' and the "
                         f"penalty groups of solver='sgda'; solver={solver!r} does not use it.")
    groups = np.asarray(feature_groups)
    if groups.ndim != 1 or groups.shape[0] != n_features:
        raise ValueError(f"feature_groups must give one group per feature: X has {n_features} "
                         f"features, feature_groups has shape {groups.shape}.")
    if groups.dtype.kind not in "iub":
        raise ValueError(f"feature_groups must hold integer group ids; got dtype {groups.dtype}.")
    return np.unique(groups, return_inverse=True)[1].astype(np.int64)


def validate_fields(fields, n_features):
    """Return the field of each feature as codes 0..F-1 (int32); None puts all in field 0.

    A field of -1 (what :func:`fmlearn.io.load_ffm` gives a feature that never occurs
    in its file) means none: such features get the first field.

    Examples
    --------
    >>> validate_fields([3, 3, 7], 3)
    array([0, 0, 1], dtype=int32)
    >>> validate_fields([-1, 5, 2], 3)
    array([0, 1, 0], dtype=int32)
    >>> validate_fields(None, 2)
    array([0, 0], dtype=int32)
    """
    if fields is None:
        return np.zeros(n_features, dtype=np.int32)
    codes = np.asarray(fields)
    if codes.ndim != 1 or codes.shape[0] != n_features:
        raise ValueError(f"fields must give one field per feature: X has {n_features} features, "
                         f"fields has shape {codes.shape}.")
    if codes.dtype.kind not in "iu":
        raise ValueError(f"fields must hold integer field ids; got dtype {codes.dtype}.")
    if (codes < -1).any():
        raise ValueError(f"fields must be ids >= 0 (or -1 for none); got {codes.min()}.")
    known = codes >= 0
    out = np.zeros(n_features, dtype=np.int32)
    out[known] = np.unique(codes[known], return_inverse=True)[1].reshape(-1)
    return out
