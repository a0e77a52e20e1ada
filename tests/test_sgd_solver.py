"""The SGD solver's thread-local copies of hot features and its prefetching."""
import numpy as np
from conftest import planted_fm_data

from fmlearn._validation import as_fm_csr
from fmlearn.model import FMModel
from fmlearn.solvers import sgd
from fmlearn.solvers.sgd import SGDSolver, SGDState


def run(solver, X, y, epochs=3):
    model = FMModel.initial(X.shape[1], 4, 0.1, np.float64, np.random.default_rng(0))
    state = SGDState.initial(model)
    rng = np.random.default_rng(1)
    for _ in range(epochs):
        solver.epoch(model, X, y, np.ones_like(y), state, rng)
    return model, state


def test_hot_features_are_the_frequent_ones_and_only_with_threads():
    X, _ = planted_fm_data(2000, n_users=60, n_items=80, seed=0)
    X = as_fm_csr(X, np.float64)
    slot, hot = SGDSolver("squared", "adagrad", 0.1, 0.25, 0, 0, 0, None, n_threads=2,
                          hot_share=0.5).hot_features(X)
    np.testing.assert_array_equal(hot, [X.shape[1] - 1])  # the real feature is in every row
    assert slot[X.shape[1] - 1] == 0 and (np.delete(slot, -1) == -1).all()
    _, none = SGDSolver("squared", "adagrad", 0.1, 0.25, 0, 0, 0, None).hot_features(X)
    assert none.size == 0


def test_thread_local_copies_with_one_thread_change_nothing():
    X, y = planted_fm_data(3000, seed=1)
    X = as_fm_csr(X, np.float64)
    args = ("squared", "adagrad", 0.1, 0.25, 1e-3, 1e-3, 1e-3, None)
    plain, plain_state = run(SGDSolver(*args), X, y)
    # Force every feature hot on a single thread: copied in, updated, copied back.
    forced = SGDSolver(*args)
    slot = np.arange(X.shape[1], dtype=np.int32)
    forced._hot = (X, (slot, np.arange(X.shape[1], dtype=np.int64)))
    local, local_state = run(forced, X, y)
    np.testing.assert_array_equal(plain.factors, local.factors)
    np.testing.assert_array_equal(plain.coef, local.coef)
    np.testing.assert_array_equal(plain_state.acc_factors, local_state.acc_factors)
    assert plain.intercept == local.intercept


def test_prefetching_the_adagrad_sums_changes_no_value(monkeypatch):
    X, y = planted_fm_data(3000, seed=2)
    X = as_fm_csr(X, np.float64)
    args = ("squared", "adagrad", 0.1, 0.25, 1e-3, 1e-3, 1e-3, None)
    plain, plain_state = run(SGDSolver(*args), X, y)
    monkeypatch.setattr(sgd, "PREFETCH_ABOVE_BYTES", 0)  # every model counts as large
    fetched, fetched_state = run(SGDSolver(*args), X, y)
    np.testing.assert_array_equal(plain.factors, fetched.factors)
    np.testing.assert_array_equal(plain.coef, fetched.coef)
    np.testing.assert_array_equal(plain_state.acc_factors, fetched_state.acc_factors)
