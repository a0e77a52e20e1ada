"""The SGD solver's thread-local copies of hot features, its prefetching and its
renumbering of the features."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import planted_fm_data

from fmlearn import FMRegressor
from fmlearn._validation import as_fm_csr
from fmlearn.model import FMModel
from fmlearn.solvers import sgd
from fmlearn.solvers.feature_order import FeatureOrder
from fmlearn.solvers.sgd import SGDSolver, SGDState


def run(solver, X, y, epochs=3, dtype=np.float64):
    model = FMModel.initial(X.shape[1], 4, 0.1, dtype, np.random.default_rng(0))
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


def test_prefetching_the_rows_ahead_changes_no_value(monkeypatch):
    X, y = planted_fm_data(3000, seed=2)
    X = as_fm_csr(X, np.float64)
    args = ("squared", "adagrad", 0.1, 0.25, 1e-3, 1e-3, 1e-3, None)
    plain, plain_state = run(SGDSolver(*args), X, y)
    monkeypatch.setattr(sgd, "OUT_OF_CACHE_BYTES", 0)  # every model counts as large
    fetched, fetched_state = run(SGDSolver(*args), X, y)
    np.testing.assert_array_equal(plain.factors, fetched.factors)
    np.testing.assert_array_equal(plain.coef, fetched.coef)
    np.testing.assert_array_equal(plain_state.acc_factors, fetched_state.acc_factors)


def test_feature_order_puts_frequent_features_first_and_undoes_itself():
    X, _ = planted_fm_data(500, n_users=5, n_items=30, seed=3)
    X = as_fm_csr(X, np.float64)
    order = FeatureOrder.by_frequency(X)
    counts = np.bincount(X.indices, minlength=X.shape[1])
    assert (np.diff(counts[order.old]) <= 0).all()  # falling frequency
    np.testing.assert_array_equal(order.new[order.old], np.arange(X.shape[1]))
    relabelled = order.relabel(X)
    # Column j of X is column new[j] of the relabelled rows, each row in its own order.
    np.testing.assert_array_equal(relabelled.toarray()[:, order.new], X.toarray())
    np.testing.assert_array_equal(np.diff(relabelled.indptr), np.diff(X.indptr))
    factors = np.random.default_rng(0).normal(size=(X.shape[1], 3))
    moved = factors.copy()
    order.forward([moved])
    np.testing.assert_array_equal(moved, factors[order.old])
    order.backward([moved])
    np.testing.assert_array_equal(moved, factors)


def renumbering_everything(monkeypatch):
    monkeypatch.setattr(sgd, "OUT_OF_CACHE_BYTES", 0)
    monkeypatch.setattr(sgd, "RENUMBER_FROM_VISITS_PER_FEATURE", 0)


@pytest.mark.parametrize("scoring", [None, "r2"])
def test_a_fit_with_the_features_renumbered_gives_the_same_model(monkeypatch, scoring):
    X, y = planted_fm_data(3000, seed=4)
    params = dict(n_factors=4, max_iter=6, random_state=0, early_stopping=True,
                  n_iter_no_change=2, scoring=scoring, eta0=0.05)
    plain = FMRegressor(**params).fit(X, y)
    renumbering_everything(monkeypatch)
    spy = []
    by_frequency = FeatureOrder.by_frequency
    monkeypatch.setattr(FeatureOrder, "by_frequency",
                        classmethod(lambda cls, X: spy.append(1) or by_frequency(X)))
    renumbered = FMRegressor(**params).fit(X, y)
    assert spy, "the fit did not renumber the features"
    np.testing.assert_array_equal(plain.model_.factors, renumbered.model_.factors)
    np.testing.assert_array_equal(plain.model_.coef, renumbered.model_.coef)
    assert plain.model_.intercept == renumbered.model_.intercept
    # A scorer predicts through the estimator, which sorts each renumbered validation row:
    # the same terms, summed in another order.
    np.testing.assert_allclose(plain.validation_scores_, renumbered.validation_scores_,
                               rtol=0 if scoring is None else 1e-6)
    np.testing.assert_array_equal(plain._solver_state.acc_factors,
                                  renumbered._solver_state.acc_factors)


def test_parameters_return_to_their_numbering_when_an_epoch_fails(monkeypatch):
    X, y = planted_fm_data(2000, seed=5)
    est = FMRegressor(n_factors=4, max_iter=2, random_state=0).fit(X, y)
    before = est.model_.copy()
    renumbering_everything(monkeypatch)

    def interrupted(self, model, X, y, sample_weight, state, rng=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(SGDSolver, "epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(X, y)  # updates model_ in place
    np.testing.assert_array_equal(est.model_.factors, before.factors)
    np.testing.assert_array_equal(est.model_.coef, before.coef)


def staging(monkeypatch):
    """Every fit stages its rows (no copy of them all); returns the list of its choices."""
    monkeypatch.setattr(sgd, "COPY_ROWS_BYTES", 0)
    choices = []
    stages = SGDSolver.stages
    monkeypatch.setattr(SGDSolver, "stages",
                        lambda self, *args: choices.append(stages(self, *args)) or choices[-1])
    return choices


@pytest.mark.parametrize("renumber", [True, False])
def test_a_staged_fit_in_storage_order_gives_the_model_of_a_copy(monkeypatch, renumber):
    X, y = planted_fm_data(3000, seed=6)  # 12 blocks, the last one short
    weights = np.random.default_rng(0).uniform(0, 2, y.shape[0])
    weights[::7] = 0
    as_given = [X.data.copy(), X.indices.copy(), X.indptr.copy()]
    if renumber:
        renumbering_everything(monkeypatch)
    params = dict(n_factors=4, max_iter=3, tol=None, random_state=0, shuffle=False,
                  dtype="float64")
    monkeypatch.setattr(sgd, "STAGE_BLOCKS", 5)  # groups of 5 blocks, the last of 2
    copied = FMRegressor(**params).fit(X, y, sample_weight=weights)
    choices = staging(monkeypatch)
    staged = FMRegressor(**params).fit(X, y, sample_weight=weights)
    assert choices == [renumber]  # nothing to copy when the rows stay as they are
    # The same steps in the same order: equal but for the rounding of the kernel compiled
    # for staging (fastmath may contract other products into fused ones).
    close = dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(copied.model_.factors, staged.model_.factors, **close)
    np.testing.assert_allclose(copied.model_.coef, staged.model_.coef, **close)
    np.testing.assert_allclose(copied.model_.intercept, staged.model_.intercept, **close)
    np.testing.assert_allclose(copied.loss_curve_, staged.loss_curve_, **close)
    for before, after in zip(as_given, [X.data, X.indices, X.indptr]):
        np.testing.assert_array_equal(before, after)  # the caller's rows, untouched


def test_a_shuffled_staged_epoch_visits_every_row_once(monkeypatch):
    X, y = planted_fm_data(3000, seed=6)
    X = as_fm_csr(X, np.float64)
    weights = np.random.default_rng(0).uniform(0, 2, y.shape[0])
    still = SGDSolver("squared", "constant", 0.0, 0.25, 0, 0, 0, None)  # eta0 0: no step
    model = FMModel.initial(X.shape[1], 4, 0.5, np.float64, np.random.default_rng(0))
    state = SGDState.initial(model)
    whole = still.epoch(model, X, y, weights, state, np.random.default_rng(1))
    still.stage(X, FeatureOrder.by_frequency(X))
    FeatureOrder.by_frequency(X).forward(still.feature_arrays(model, state))
    for seed in range(3):  # the weighted loss of each row once, in another order
        staged = still.epoch(model, X, y, weights, state, np.random.default_rng(seed))
        np.testing.assert_allclose(staged, whole, rtol=1e-12)


def test_staged_blocks_are_the_rows_renumbered_and_scattered():
    from fmlearn.kernels.rows import stage_blocks
    from fmlearn.solvers.sgd import shuffled_blocks

    rng = np.random.default_rng(3)
    X = as_fm_csr(sp.random(1000, 50, density=0.05, random_state=3, format="csr"), np.float32)
    y, w = rng.normal(size=1000), rng.uniform(size=1000)
    columns = rng.permutation(50).astype(np.int32)
    starts, _ = shuffled_blocks(1000, 64, 1, rng)  # 16 blocks, the last of 40 rows
    positions = rng.permutation(5 * 64).astype(np.int32)
    out = (np.empty(5 * 64 + 1, np.int64), np.empty(5000, np.int32), np.empty(5000, np.float32),
           np.empty(5 * 64), np.empty(5 * 64))
    for group in (starts[:5], starts[starts == 960], starts[np.isin(starts, [0, 960, 64])]):
        m = stage_blocks(X.indptr, X.indices, X.data, y, w, group, 64, positions, columns,
                         np.empty_like(positions), *out)
        read = np.concatenate([np.arange(b, min(b + 64, 1000)) for b in group])
        places = positions[positions < m]  # the i-th row read goes to places[i]
        rows = np.empty(m, np.int64)
        rows[places] = read
        assert m == read.size
        expected = X[rows]
        got = sp.csr_matrix((out[2][:out[0][m]], out[1][:out[0][m]], out[0][:m + 1]),
                            shape=(m, 50))
        np.testing.assert_array_equal(got.indptr, expected.indptr)
        np.testing.assert_array_equal(got.indices, columns[expected.indices])
        np.testing.assert_array_equal(got.data, expected.data)
        np.testing.assert_array_equal(out[3][:m], y[rows])
        np.testing.assert_array_equal(out[4][:m], w[rows])


def test_a_staged_fit_with_two_threads(monkeypatch):
    X, y = planted_fm_data(4000, n_users=20, n_items=30, seed=7)
    renumbering_everything(monkeypatch)
    copied, staged = [], []
    for seed in range(3):  # lock-free threads and the orders differ by chance: seeds' means
        params = dict(n_factors=4, max_iter=4, tol=None, random_state=seed, n_jobs=2)
        monkeypatch.setattr(sgd, "COPY_ROWS_BYTES", 2**30)
        copied.append(FMRegressor(**params).fit(X, y))
        choices = staging(monkeypatch)
        staged.append(FMRegressor(**params).fit(X, y))
        assert choices == [True]
    # (the means of 3 seeds differed by at most 3.8 % in 15 trials of this test)
    np.testing.assert_allclose(np.mean([f.loss_curve_ for f in copied], axis=0),
                               np.mean([f.loss_curve_ for f in staged], axis=0), rtol=0.1)
    for a, b in zip(copied, staged):
        assert abs(a.score(X, y) - b.score(X, y)) < 0.02


def test_a_staged_fit_needs_little_more_than_its_data(monkeypatch):
    import tracemalloc

    rng = np.random.default_rng(8)
    n_rows, per_row, n_features = 200_000, 10, 500
    indices = rng.integers(0, n_features, (n_rows, per_row)) + np.arange(per_row) * n_features
    X = sp.csr_matrix((np.ones(n_rows * per_row, np.float32), indices.ravel().astype(np.int32),
                       np.arange(0, n_rows * per_row + 1, per_row, dtype=np.int32)),
                      shape=(n_rows, per_row * n_features))
    y = rng.normal(size=n_rows).astype(np.float32)
    data_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes
    renumbering_everything(monkeypatch)
    staging(monkeypatch)
    params = dict(n_factors=4, max_iter=1, tol=None, random_state=0)
    FMRegressor(**params).fit(X[:100], y[:100])  # compiled before the count
    tracemalloc.start()
    try:
        FMRegressor(**params).fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The int64 row pointers (8 bytes a row: 0.09 of the data), the staging buffers (16,384
    # rows: 1.5 MB, 0.09) and a model of 5,000 features (0.01), and no array of unit
    # weights (0.05 more); a copy of the rows alone would be 0.98.
    assert peak < 0.23 * data_bytes, peak / data_bytes


def test_a_staged_fit_without_weights_weighs_every_row_one(monkeypatch):
    X, y = planted_fm_data(3000, seed=9)
    staging(monkeypatch)
    params = dict(n_factors=4, max_iter=2, tol=None, random_state=0)
    plain = FMRegressor(**params).fit(X, y)
    ones = FMRegressor(**params).fit(X, y, sample_weight=np.ones(y.shape[0]))
    np.testing.assert_array_equal(plain.model_.factors, ones.model_.factors)
    assert plain.loss_curve_ == ones.loss_curve_


def packing(monkeypatch, on=True):
    """Every AdaGrad epoch counts its parameters as beyond the caches and packs them (``on``)
    or none packs; returns the list of tables the epochs stepped (None: not packed)."""
    monkeypatch.setattr(sgd, "OUT_OF_CACHE_BYTES", 0)
    monkeypatch.setattr(sgd, "PACK_FROM_VISITS_PER_FEATURE", 0 if on else np.inf)
    tables = []
    chosen = SGDSolver._packing
    monkeypatch.setattr(SGDSolver, "_packing",
                        lambda self, *args: tables.append(chosen(self, *args)) or tables[-1])
    return tables


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_parameters_take_the_steps_of_separate_arrays(monkeypatch, dtype):
    X, y = planted_fm_data(3000, seed=10)
    X, y = as_fm_csr(X, dtype), y.astype(dtype)
    args = ("squared", "adagrad", 0.1, 0.25, 1e-3, 1e-3, 1e-3, None)
    tables = packing(monkeypatch, on=False)
    plain, plain_state = run(SGDSolver(*args), X, y, dtype=dtype)
    assert tables == [None] * 3
    tables = packing(monkeypatch)
    packed, packed_state = run(SGDSolver(*args), X, y, dtype=dtype)
    assert len(tables) == 3 and all(t.shape == (X.shape[1], 2 * 4 + 2) for t in tables)
    for name in ("coef", "factors"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(packed, name))
    for name in ("acc_coef", "acc_factors", "acc_intercept", "step"):
        np.testing.assert_array_equal(getattr(plain_state, name), getattr(packed_state, name))
    assert plain.intercept == packed.intercept
    # The table holds what the epoch left in the separate arrays.
    np.testing.assert_array_equal(
        tables[-1], sgd.pack_rows(packed.coef, packed_state.acc_coef, packed.factors,
                                  packed_state.acc_factors))


def test_packed_parameters_with_two_threads_merge_the_hot_copies(monkeypatch):
    X, y = planted_fm_data(4000, n_users=20, n_items=30, seed=11)
    X, y = as_fm_csr(X, np.float32), y.astype(np.float32)
    args = ("squared", "adagrad", 0.1, 0.25, 1e-3, 1e-3, 1e-3, None)
    curves = {}
    for on in (False, True):
        tables = packing(monkeypatch, on)
        curves[on] = []
        for seed in range(3):  # lock-free threads: the means of seeds
            solver = SGDSolver(*args, n_threads=2)
            model = FMModel.initial(X.shape[1], 4, 0.1, np.float32, np.random.default_rng(0))
            state, rng = SGDState.initial(model), np.random.default_rng(seed)
            curves[on].append([solver.epoch(model, X, y, np.ones_like(y), state, rng)
                               for _ in range(4)])
            hot = solver.hot_features(X)[1]
            assert hot.size > 0  # the real feature and the frequent ones
            # Each hot feature's AdaGrad sums hold both threads' squared steps: above the 1
            # they start from.
            assert (state.acc_factors[hot] > 1).all() and (state.acc_coef[hot] > 1).all()
        assert (tables[-1] is not None) == on
    # The means of 3 seeds differed by at most 4.4 % in 15 trials (7.2 % once on a loaded
    # machine); two sets of 3 seeds both over separate arrays by 5.5 %. Hot factors left out
    # of the table's merge put them 114-121 % apart.
    np.testing.assert_allclose(np.mean(curves[False], axis=0), np.mean(curves[True], axis=0),
                               rtol=0.15)


def test_epochs_pack_only_adagrad_with_enough_visits_over_a_copy(monkeypatch):
    X, y = planted_fm_data(3000, seed=12)
    X, y = as_fm_csr(X, np.float32), y.astype(np.float32)
    monkeypatch.setattr(sgd, "OUT_OF_CACHE_BYTES", 0)
    visits = X.nnz / X.shape[1]

    def packs(schedule="adagrad", threshold=visits, staged=False):
        monkeypatch.setattr(sgd, "PACK_FROM_VISITS_PER_FEATURE", threshold)
        solver = SGDSolver("squared", schedule, 0.1, 0.25, 0, 0, 0, None)
        if staged:
            solver.stage(X, None)
        model = FMModel.initial(X.shape[1], 4, 0.1, np.float32, np.random.default_rng(0))
        solver.epoch(model, X, y, np.ones_like(y), SGDState.initial(model))
        return solver._packed is not None

    assert packs()
    assert not packs(threshold=visits + 1)
    assert not packs("constant")
    assert not packs(staged=True)  # short of memory: no table beside the parameters


def test_a_packed_epoch_steps_adagrad_only():
    from fmlearn.kernels.sgd import sgd_epoch

    model = FMModel.initial(3, 2, 0.1, np.float32, np.random.default_rng(0))
    state = SGDState.initial(model)
    X = as_fm_csr(sp.eye(3, format="csr", dtype=np.float32), np.float32)
    cfg = SGDSolver("squared", "constant", 0.1, 0.25, 0, 0, 0, None).config(np.float32)
    packed = sgd.pack_rows(model.coef, state.acc_coef, model.factors, state.acc_factors)
    with pytest.raises(ValueError, match="packed epochs are AdaGrad's"):
        sgd_epoch(X.indptr, X.indices, X.data, np.ones(3, np.float32), np.ones(3, np.float32),
                  np.zeros(1, np.int64), 256, np.zeros(1, np.float32), model.coef,
                  model.factors, state.acc_intercept, state.acc_coef, state.acc_factors,
                  np.zeros(0, np.int32), np.zeros(0, np.int64), state.step, cfg, 1,
                  packed=packed)
