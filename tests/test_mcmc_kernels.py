"""The per-iteration kernels of the Gibbs sampler against the sums they replace, written out."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm
from hypothesis import given, settings
from hypothesis import strategies as st

from fmlearn._validation import as_fm_csr
from fmlearn.kernels.coordinate import coordinate_sweep, scores_and_sums, seed_generator
from fmlearn.model import FMModel
from fmlearn.solvers.als import Hyperparameters, block_layout


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
    np.testing.assert_allclose(scores, brute_force_fm(X, w0, w, V), rtol=tol, atol=1e-5)
    np.testing.assert_allclose(q, (X.astype(np.float64) @ V.astype(np.float64)).T, rtol=tol,
                               atol=1e-5)


def test_one_hot_sweeps_keep_residuals_and_factor_sums_of_their_parameters():
    """With values all 1 the sweep moves the residuals and factor sums in the model's dtype
    (float32 here); they stay those of the drawn parameters, and the draws those of the
    path that reads the values."""
    dtype = np.float32
    rng = np.random.default_rng(3)
    n_rows, fields, k = 400, (7, 5, 3), 4
    columns = np.cumsum((0,) + fields[:-1]) + np.stack([rng.integers(0, m, n_rows)
                                                        for m in fields], axis=1)
    X = as_fm_csr(sp.csr_matrix((np.ones(columns.size), columns.ravel(),
                                 np.arange(0, columns.size + 1, len(fields)))), dtype)
    y = rng.normal(size=n_rows)
    draws = []
    for ones in (False, True):  # data None (values 1 taken as known), then read as values
        model = FMModel(0.1, np.full(15, 0.2, dtype=dtype),
                        np.full((15, k), 0.3, dtype=dtype))
        bounds, ptr, rows, features, _ = block_layout(X)
        layout = (bounds, ptr, rows, features, np.ones(X.nnz, dtype) if ones else None)
        scores, q = np.empty(n_rows), np.empty((k, n_rows), dtype=dtype)
        scores_and_sums(X.indptr, X.indices, X.data, model.intercept, model.coef, model.factors,
                        scores, q)
        e, w0 = (scores - y).astype(dtype), np.array([model.intercept])
        hyper = Hyperparameters.initial(1, k, 1.0, 1.0)
        seed_generator(5)
        coordinate_sweep(layout, np.ones(n_rows), False, e, q, w0, model.coef, model.factors,
                         np.zeros(15, np.int64), hyper.arrays(), 1.0, True, True, True, 1, True,
                         True, None)
        np.testing.assert_allclose(e, brute_force_fm(X, w0[0], model.coef, model.factors) - y,
                                   atol=1e-5)
        np.testing.assert_allclose(q, (X @ model.factors.astype(np.float64)).T, atol=1e-5)
        draws.append(model.factors)
    np.testing.assert_allclose(draws[0], draws[1], atol=1e-5)
