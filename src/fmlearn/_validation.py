"""Input checks: every user-facing error about X, y and sample_weight is raised here.

Whatever the caller passes (numpy arrays, pandas frames, any scipy sparse
format), the kernels receive a CSR matrix with ``int64`` row pointers,
``int32`` column indices, data in the model dtype and no duplicate entries.
The caller's arrays are never modified: anything that must change is copied.
"""
import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import _check_sample_weight, validate_data

_INDEX_LIMIT = np.iinfo(np.int32).max
# Formats whose stored values scikit-learn can check for NaN and inf; others (dok, lil, ...)
# are converted to the first before checking.
_FORMATS = ("csr", "csc", "coo")


def as_fm_csr(X, dtype):
    """Return ``X`` as a CSR matrix in the layout the kernels read.

    ``X`` must already be finite and numeric (``validate_fm_data`` checks that
    for estimator input). Index arrays are converted when their type differs,
    duplicate entries are summed, and nothing the caller holds is written to.

    Examples
    --------
    >>> import numpy as np
    >>> as_fm_csr(np.eye(2), np.float32).indices.dtype
    dtype('int32')
    """
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
    if not X.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    return with_fm_indices(csr)


def with_fm_indices(csr):
    """Give a CSR matrix we built ``int64`` row pointers and ``int32`` column indices.

    scipy narrows row pointers to ``int32`` wherever they fit; the kernels are
    compiled for one layout. Only the attributes of ``csr`` are replaced, never the
    arrays it was built from.

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
    """Validate estimator input with scikit-learn's rules, then convert ``X`` with ``as_fm_csr``.

    Raises ``ValueError`` naming the problem for NaN or infinite values, empty
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
    if isinstance(y, str) and y == "no_validation":
        X = validate_data(estimator, X, accept_sparse=_FORMATS, dtype=dtype, reset=reset)
        return as_fm_csr(X, dtype)
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
    return as_fm_csr(X, dtype), y


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
    if solver not in ("mcmc", "sgda"):
        raise ValueError(f"feature_groups sets the priors of solver='mcmc' and the penalty "
                         f"groups of solver='sgda'; solver={solver!r} does not use it.")
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
