"""The per-iteration kernels of the Gibbs sampler against the sums they replace, written out."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm
from hypothesis import given, settings
from hypothesis import strategies as st

from fmlearn._validation import as_fm_csr
from fmlearn.kernels.coordinate import scores_and_sums


@settings(max_examples=30, deadline=None)
@given(n_rows=st.integers(1, 150), n_features=st.integers(1, 12), k=st.integers(1, 9),
       density=st.floats(0.0, 1.0), binary=st.booleans(), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_scores_and_factor_sums_equal_the_formula_written_out(n_rows, n_features, k, density,
                                                              binary, seed, dtype):
    rng = np.random.default_rng(seed)
    X = sp.random(n_rows, n_features, density=density, random_state=seed, format="csr",
                  data_rvs=(lambda n: np.ones(n)) if binary else (lambda n: rng.normal(size=n)))
    X = as_fm_csr(X, dtype)
    w0, w, V = 0.3, rng.normal(size=n_features).astype(dtype), \
        rng.normal(0, 0.7, (n_features, k)).astype(dtype)
    scores, q = np.empty(n_rows), np.empty((k, n_rows), dtype=dtype)
    scores_and_sums(X.indptr, X.indices, X.data, w0, w, V, scores, q)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(scores, brute_force_fm(X, w0, w, V), rtol=tol, atol=tol)
    np.testing.assert_allclose(q, (X.astype(np.float64) @ V.astype(np.float64)).T, rtol=tol,
                               atol=tol)
