"""FMModel.predict equals the O(n^2 k) formula, for both dtypes and any thread count."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm
from hypothesis import given, settings
from hypothesis import strategies as st

import fmlearn.model as fm_model
from fmlearn import FMModel
from fmlearn.kernels.predict import PREFETCH_FROM_BYTES


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(1, 30), n_features=st.integers(1, 25), n_factors=st.integers(0, 9),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]), n_jobs=st.sampled_from([1, 2]),
       ahead=st.booleans())
def test_predict_equals_brute_force(n_rows, n_features, n_factors, density, seed, dtype, n_jobs,
                                    ahead):
    rng = np.random.default_rng(seed)
    X = sp.random(n_rows, n_features, density=density, format="csr", random_state=rng,
                  data_rvs=lambda n: rng.normal(size=n)).astype(dtype)
    model = FMModel(float(rng.normal()), rng.normal(size=n_features).astype(dtype),
                    rng.normal(size=(n_features, n_factors)).astype(dtype))
    expected = brute_force_fm(X, model.intercept, model.coef, model.factors)
    fm_model.PREFETCH_FROM_BYTES = -1 if ahead else PREFETCH_FROM_BYTES  # the prefetching kernel
    try:
        got = model.predict(X, n_jobs=n_jobs)
    finally:
        fm_model.PREFETCH_FROM_BYTES = PREFETCH_FROM_BYTES
    assert got.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * (1 + np.abs(expected).max()))


def test_a_model_beyond_the_caches_is_scored_with_prefetching(monkeypatch):
    # 200,000 features at k=16 in float32: 13.6 MB of weights and factors, over the 12 MiB
    # from which the kernel that prefetches parameter rows ahead pays; the same scores.
    rng = np.random.default_rng(0)
    n = 200_000
    model = FMModel(0.5, rng.normal(size=n).astype(np.float32),
                    rng.normal(0, 0.1, (n, 16)).astype(np.float32))
    X = sp.random(300, n, density=5e-5, format="csr", random_state=1, dtype=np.float32)
    used, run = [], fm_model.run_predict
    monkeypatch.setattr(fm_model, "run_predict",
                        lambda kernel, *args: used.append(kernel.__name__) or run(kernel, *args))
    got = model.predict(X)
    assert used == ["predict_chunk_ahead"]
    X64, V = X.astype(np.float64), model.factors.astype(np.float64)
    q = X64 @ V  # Rendle's identity, in float64 with numpy
    expected = 0.5 + X64 @ model.coef + 0.5 * ((q ** 2).sum(axis=1)
                                               - X64.multiply(X64) @ (V ** 2).sum(axis=1))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    model.factors = model.factors[:1000]
    model.coef = model.coef[:1000]
    model.predict(X[:, :1000])
    assert used[-1] == "predict_chunk"


def test_predict_accepts_dense_coo_and_duplicate_entries():
    rng = np.random.default_rng(1)
    model = FMModel(0.3, rng.normal(size=4), rng.normal(size=(4, 3)))
    # Two entries for column 2 of row 0 mean x_2 = 1.5 + 0.5 = 2.
    coo = sp.coo_matrix(([1.0, 1.5, 0.5, 3.0], ([0, 0, 0, 1], [0, 2, 2, 3])), shape=(2, 4))
    dense = coo.toarray()
    np.testing.assert_allclose(model.predict(coo), brute_force_fm(dense, 0.3, model.coef, model.factors))
    np.testing.assert_allclose(model.predict(dense), model.predict(coo))
    assert coo.nnz == 4  # the caller's matrix keeps its duplicate entries


def test_predict_leaves_empty_rows_at_the_intercept():
    model = FMModel(1.25, np.ones(3), np.ones((3, 2)))
    np.testing.assert_array_equal(model.predict(sp.csr_matrix((4, 3))), np.full(4, 1.25))


def test_initial_model_draws_factors_at_the_given_scale():
    model = FMModel.initial(2000, 8, 0.3, np.float32, np.random.default_rng(0))
    assert model.intercept == 0 and not model.coef.any()
    assert model.factors.dtype == np.float32
    np.testing.assert_allclose(model.factors.std(), 0.3, rtol=0.02)
    np.testing.assert_allclose(model.factors.mean(), 0.0, atol=0.01)


def test_the_probit_tails_equal_log_ndtr_from_one_ndtr_pass():
    from scipy.special import log_ndtr

    from fmlearn.model import apply_link
    s = np.concatenate([np.linspace(-60, 60, 20001), [0.0, -0.0, 1e-300, 37.5, -37.5, 38.5]])
    want = np.stack([log_ndtr(s), log_ndtr(-s)])
    np.testing.assert_allclose(apply_link(s, "probit"), want, rtol=4e-15, atol=0)


def test_one_probit_tail_equals_log_ndtr():
    from scipy.special import log_ndtr

    from fmlearn.model import log_phi
    s = np.concatenate([np.linspace(-60, 60, 20001), [0.0, -0.0, 1e-300, 37.5, -37.5, 38.5]])
    np.testing.assert_allclose(log_phi(s), log_ndtr(s), rtol=4e-15, atol=0)


def test_probit_sums_add_as_logaddexp():
    """``add_linked`` adds log-probabilities in whole-array passes: numpy's ``logaddexp`` to
    round-off, -inf plus -inf is -inf, and NaN stays NaN."""
    from fmlearn.model import add_linked
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 50, 10000), rng.normal(0, 50, 10000)
    np.testing.assert_allclose(add_linked(a, b, "probit"), np.logaddexp(a, b), rtol=1e-14,
                               atol=1e-14)
    edge_a = np.array([-np.inf, -np.inf, 0.0, np.nan, -3.0, -1e308])
    edge_b = np.array([-np.inf, 1.0, -np.inf, 1.0, -3.0, -1e308])
    with np.errstate(invalid="ignore"):
        want = np.logaddexp(edge_a, edge_b)
    np.testing.assert_array_equal(add_linked(edge_a, edge_b, "probit"), want)
