"""The vector steps of an FFM pair (fmlearn.kernels.lanes) against NumPy's arithmetic."""
import numpy as np
import pytest
from numba import njit

from fmlearn.kernels.lanes import adagrad_pair, pair_dot


@njit
def _dot(A, i, f, B, j, g):
    return pair_dot(A, i, f, B, j, g)


@njit
def _step(Vi, acc_i, i, fb, Vj, acc_j, j, fa, gxx, reg, eta, clip):
    adagrad_pair(Vi, acc_i, i, fb, Vj, acc_j, j, fa, gxx, reg, eta, clip)


def _numpy_step(V, acc, i, fb, j, fa, gxx, reg, eta, clip):
    """The AdaGrad pair step in float64, both vectors from their values before it."""
    vi, vj = V[i, fb].astype(np.float64), V[j, fa].astype(np.float64)
    gi = np.clip(gxx * vj + reg * vi, -clip, clip)
    gj = np.clip(gxx * vi + reg * vj, -clip, clip)
    ai, aj = acc[i, fb] + gi ** 2, acc[j, fa] + gj ** 2
    return vi - eta * gi / np.sqrt(ai), vj - eta * gj / np.sqrt(aj), ai, aj


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [3, 4, 5, 8, 12, 16, 24])
def test_pair_dot_is_the_dot_product_of_the_two_vectors(k, dtype):
    rng = np.random.default_rng(k)
    A = rng.normal(size=(3, 4, k)).astype(dtype)
    B = rng.normal(size=(2, 4, k)).astype(dtype)
    got = _dot(A, 2, 1, B, 1, 3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert got == pytest.approx(float(A[2, 1].astype(np.float64) @ B[1, 3]), rel=tol, abs=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [3, 4, 5, 8, 12, 16, 24])
def test_adagrad_pair_steps_both_vectors_from_their_values_before_the_step(k, dtype):
    rng = np.random.default_rng(k)
    V = rng.normal(size=(4, 3, k)).astype(dtype)
    acc = rng.uniform(0.5, 2.0, size=(4, 3, k)).astype(dtype)
    # A clip that binds for some entries and not for others.
    gxx, reg, eta, clip = dtype(1.7), dtype(0.05), dtype(0.2), dtype(1.0)
    want = _numpy_step(V, acc, 1, 2, 3, 0, gxx, reg, eta, clip)
    before = V.copy(), acc.copy()
    _step(V, acc, 1, 2, V, acc, 3, 0, gxx, reg, eta, clip)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    for got, expected in zip((V[1, 2], V[3, 0], acc[1, 2], acc[3, 0]), want):
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    untouched = np.ones(V.shape[:2], bool)
    untouched[1, 2] = untouched[3, 0] = False
    np.testing.assert_array_equal(V[untouched], before[0][untouched])
    np.testing.assert_array_equal(acc[untouched], before[1][untouched])


@pytest.mark.parametrize("k", [4, 8, 16])
def test_adagrad_pair_on_two_arrays_matches_the_same_step_on_one(k):
    """A hot feature steps in a thread's copy against a vector of the shared array."""
    rng = np.random.default_rng(0)
    V = rng.normal(size=(3, 2, k)).astype(np.float32)
    acc = np.ones_like(V)
    copy, copy_acc = V.copy(), acc.copy()
    other, other_acc = V.copy(), acc.copy()
    args = np.float32(-0.8), np.float32(0.01), np.float32(0.1), np.float32(np.inf)
    _step(V, acc, 0, 1, V, acc, 2, 0, *args)
    _step(copy, copy_acc, 0, 1, other, other_acc, 2, 0, *args)
    np.testing.assert_array_equal(copy[0, 1], V[0, 1])
    np.testing.assert_array_equal(other[2, 0], V[2, 0])
    np.testing.assert_array_equal(copy_acc[0, 1], acc[0, 1])
