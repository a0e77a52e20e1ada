"""Second-order FM scores over CSR rows in O(k * nnz) (Rendle 2010, Lemma 3.1).

The sums run in the dtype of the factor sums ``q``: the learners pass the model dtype,
:func:`predict_csr` float64, since ``1/2 sum_f (q_f^2 - sum_i v_if^2 x_i^2)`` cancels
(float32 sums were off by 7.5e-4 of the score over 1000 non-zeros near 1e3).
"""
import numpy as np
from numba import njit
from .._numba_cache import CACHE
from .prefetch import prefetch_entry, prefetch_row

# Weights and factors of more bytes than this are scored with predict_chunk_ahead. Measured on
# 10^6 synthetic rows, one thread: prefetching the next row cost 7-14 % at 1.9-7.4 MB, and
# saved 12 % at 19.5 MB (k=16) and 36-47 % at 68-260 MB (10^6 features, k=16 and 64).
PREFETCH_FROM_BYTES = 12 * 2**20


@njit(cache=CACHE, fastmath=True, inline="always")
def accumulate_factors(factors, i, x, q):
    """Add ``factors[i] * x`` to ``q``; return ``sum_f (factors[i, f] * x)**2`` (``q``'s dtype)."""
    tp = q.dtype.type
    squares = tp(0)
    for f in range(q.shape[0]):
        vx = tp(factors[i, f]) * x
        q[f] += vx
        squares += vx * vx
    return squares


@njit(cache=CACHE, fastmath=True, inline="always")
def finish_score(linear, squares, q):
    """The FM score from its linear part, ``sum_i sum_f (v_if x_i)**2`` and the sums ``q``."""
    pairs = q.dtype.type(0)
    for f in range(q.shape[0]):
        pairs += q[f] * q[f]
    return linear + q.dtype.type(0.5) * (pairs - squares)


@njit(cache=CACHE, fastmath=True)
def score_row(start, end, indices, data, intercept, coef, factors, q):
    """Score one CSR row ``data[start:end]`` at columns ``indices[start:end]``.

    ``q`` (length k) receives the factor sums ``q_f = sum_i v_if x_i``, which the
    SGD update reuses. Returns ``w0 + sum_i w_i x_i + 1/2 sum_f (q_f**2 - sum_i v_if**2 x_i**2)``,
    summed in ``q``'s dtype.
    """
    tp = q.dtype.type
    q[:] = 0
    linear = tp(intercept)
    squares = tp(0)
    for p in range(start, end):
        linear += tp(coef[indices[p]]) * data[p]
        squares += accumulate_factors(factors, indices[p], data[p], q)
    return finish_score(linear, squares, q)


@njit(cache=CACHE, fastmath=True, nogil=True)
def predict_chunk(c, n_chunks, indptr, indices, data, intercept, coef, factors, out):
    """Write the raw FM score of chunk ``c`` of ``n_chunks`` equal chunks of the CSR rows into
    ``out``; the sums run in float64."""
    n_rows = indptr.shape[0] - 1
    chunk = (n_rows + n_chunks - 1) // n_chunks
    q = np.empty(factors.shape[1])
    for r in range(c * chunk, min(n_rows, (c + 1) * chunk)):
        out[r] = score_row(indptr[r], indptr[r + 1], indices, data, intercept, coef, factors, q)


@njit(cache=CACHE, fastmath=True, nogil=True)
def predict_chunk_ahead(c, n_chunks, indptr, indices, data, intercept, coef, factors, out):
    """:func:`predict_chunk` that prefetches the weights and factors of the next row's
    features while it scores a row, for parameters that do not fit in cache: their misses
    overlap the arithmetic. The same scores as :func:`predict_chunk`."""
    n_rows = indptr.shape[0] - 1
    chunk = (n_rows + n_chunks - 1) // n_chunks
    stop = min(n_rows, (c + 1) * chunk)
    q = np.empty(factors.shape[1])
    for r in range(c * chunk, stop):
        if r + 1 < stop:
            for p in range(indptr[r + 1], indptr[r + 2]):
                prefetch_row(factors, indices[p])
                prefetch_entry(coef, indices[p])
        out[r] = score_row(indptr[r], indptr[r + 1], indices, data, intercept, coef, factors, q)
