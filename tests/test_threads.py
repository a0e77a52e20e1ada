"""The threads' copies of the bias and the hot features make the progress of all the
threads' rows (``fmlearn.kernels.sgd.merge_weight``): steps that keep their direction add
up, steps that reach the minimum within a block are averaged, and AdaGrad's sums hold every
squared gradient.

Averaging the copies at the end of the epoch (the rule before) gave the first 1/T of their
progress and the sums 1/T of the other threads' squared gradients; summing the copies'
steps overshot the second T-fold. Each test fails with one of them.
"""
import sys

import numpy as np
import pytest
from conftest import planted_fm_data

from fmlearn import FFMRegressor, FMClassifier, FMRegressor
from fmlearn._validation import as_fm_csr
from fmlearn.dask._sgd import Steps, add_steps, apply_steps
from fmlearn.kernels.sgd import merge_weight, merged, sgd_epoch
from fmlearn.model import FFMModel, FMModel, HOFMModel, MulticlassFMModel
from fmlearn.solvers.feature_order import FeatureOrder
from fmlearn.solvers.ffm import FFMSolver
from fmlearn.solvers.hofm import HOFMSolver
from fmlearn.solvers.sgd import SGDSolver, SGDState
from fmlearn.solvers.softmax import SoftmaxSolver

X_PLANTED, Y_PLANTED = planted_fm_data(2000, seed=4)
X = as_fm_csr(X_PLANTED, np.float64)
Y = Y_PLANTED + 3.0  # a large intercept to learn
CLASSES = np.digitize(Y, np.quantile(Y, [0.8, 0.9])).astype(np.float64)  # 80%, 10%, 10%
ETA = 1e-7  # steps so small that every row's gradient is the one at the starting parameters


def start(learner):
    """A fresh model and learner class and the targets of ``learner``."""
    rng = np.random.default_rng(0)
    if learner == "fm":
        return FMModel.initial(X.shape[1], 4, 0.1, np.float64, rng), SGDSolver, Y
    if learner == "ffm":
        fields = np.r_[np.zeros(60), np.ones(80), 2].astype(np.int32)
        return FFMModel.initial(fields, 4, 0.1, np.float64, rng), FFMSolver, Y
    if learner == "hofm":
        return HOFMModel.initial(X.shape[1], 3, 4, 0.1, np.float64, rng), HOFMSolver, Y
    return (MulticlassFMModel.initial(3, X.shape[1], 4, 0.1, np.float64, rng), SoftmaxSolver,
            CLASSES)


def score_derivatives(model, y):
    """d loss / d score of every row at the current parameters: (n_rows,) or (n_rows, C)."""
    scores = model.predict(X)
    if scores.ndim == 1:
        return scores - y
    proba = np.exp(scores - scores.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    return proba - np.eye(scores.shape[1])[y.astype(int)]


def fm_gradients(model, g):
    """Each row's gradient of the FM's linear weights and factors (Rendle 2010, eq. 4),
    times ``g``: shapes (n_rows, n_features) and (n_rows, n_features, k)."""
    dense = X.toarray()
    q = dense @ model.factors
    d_factors = dense[:, :, None] * (q[:, None, :] - model.factors[None] * dense[:, :, None])
    return g[:, None] * dense, g[:, None, None] * d_factors


def one_epoch(learner, schedule):
    """The model before and after one epoch on two threads, the learner's state and the
    targets."""
    model, cls, y = start(learner)
    before = model.copy()
    solver = cls("squared", schedule, ETA, 0.25, 0.0, 0.0, 0.0, None, n_threads=2)
    state = SGDState.initial(model)
    solver.epoch(model, X, y, np.ones_like(y), state, np.random.default_rng(1))
    return before, model, state, y


def hot_features():
    """The features the threads step in copies: the real feature and the frequent users.
    The others are stepped in place without locks (Hogwild) and may lose a step when the
    threads collide."""
    hot = SGDSolver("squared", "constant", ETA, 0.25, 0, 0, 0, None, n_threads=2).hot_features(X)
    assert hot[1].size > 1
    return hot[1]


def assert_sums(actual, terms, rtol=1e-4):
    """``actual`` equals the sum of ``terms`` over rows (axis 0) up to ``rtol`` of the sum of
    their sizes (the sums cancel: the softmax's intercepts move by a thousandth of it)."""
    np.testing.assert_allclose(actual, terms.sum(axis=0), rtol=0,
                               atol=rtol * np.abs(terms).sum(axis=0).max())


@pytest.mark.parametrize("learner", ["fm", "ffm", "hofm", "softmax"])
def test_intercepts_far_from_their_values_add_up_their_steps(learner):
    """The intercepts, far from their values at a tiny rate, move by the sum of every row's
    step (averaging moved them half as far)."""
    before, after, _, y = one_epoch(learner, "constant")
    g = score_derivatives(before, y)
    np.testing.assert_allclose(after.intercept - before.intercept, -ETA * g.sum(axis=0),
                               rtol=0.15)


def bias_after_one_epoch(eta0, n_threads):
    """The bias learned alone (no linear weights, no factors) on targets around 5, at a
    constant rate, by one epoch of 32 blocks on ``n_threads`` threads: the kernel runs that
    many thread copies whatever the cores (on two cores, four of eight start after the
    others are done: the stalest copies a machine can have)."""
    rng = np.random.default_rng(0)
    X_ = as_fm_csr(rng.normal(size=(8192, 3)), np.float64)
    y = rng.normal(5.0, 0.1, 8192)
    model = FMModel(0.0, np.zeros(3), np.zeros((3, 0)))
    state = SGDState.initial(model)
    cfg = SGDSolver("squared", "constant", eta0, 0.25, 0, 0, 0, None,
                    fit_linear=False).config(np.float64)
    intercept = np.zeros(1)
    sgd_epoch(X_.indptr, X_.indices, X_.data, y, np.ones_like(y),
              np.arange(32, dtype=np.int64) * 256, 256, intercept, model.coef, model.factors,
              state.acc_intercept, state.acc_coef, state.acc_factors,
              np.full(3, -1, dtype=np.int32), np.zeros(0, dtype=np.int64), state.step, cfg,
              n_threads)
    return intercept[0]


@pytest.mark.parametrize("n_threads", [2, 4, 8])
def test_steps_that_reach_the_minimum_within_a_block_are_averaged(n_threads):
    """At a rate that learns the bias within a block, the threads end near the targets'
    mean, as one thread does (4.99 to 5.01, 5.0 to 6.3 and 5.75 to 6.01 measured on two
    busy cores; summing their steps ended anywhere: 9.96 with 2 threads, -0.1 with 4 and
    39.9 with 8)."""
    assert bias_after_one_epoch(0.05, 1) == pytest.approx(5.0, abs=0.01)
    assert bias_after_one_epoch(0.05, n_threads) == pytest.approx(5.0, abs=2.0)


@pytest.mark.parametrize("n_threads", [1, 2, 8])
@pytest.mark.parametrize("q", [0.0, 0.3, 0.9, 1.0])
def test_the_merge_weight_makes_blocks_side_by_side_add_up_to_blocks_in_a_row(q, n_threads):
    """Along a minimum that each half block brings ``q`` times nearer, the threads' blocks
    from one point, weighted, move as far as that many blocks one after the other."""
    d1, d2 = 1 - q, q * (1 - q)  # each half block's step towards the minimum at distance 1
    weight = merge_weight(d1 * d2, d1 * d1, n_threads)
    assert n_threads * weight * (d1 + d2) == pytest.approx(1 - q ** (2 * n_threads))


@pytest.mark.parametrize("n_threads", [2, 4, 8])
def test_steps_that_keep_their_direction_add_up_over_threads(n_threads):
    """At a rate that moves the bias 2.8 of the way to 5 in the epoch, the threads move it
    as far as one thread (within 10%; averaging their copies moved it 1.68, 0.93 and 0.49)."""
    assert bias_after_one_epoch(1e-4, n_threads) == pytest.approx(
        bias_after_one_epoch(1e-4, 1), rel=0.1)


@pytest.mark.parametrize("learner", ["fm", "ffm", "hofm", "softmax"])
def test_adagrads_sums_hold_every_threads_squared_gradients(learner):
    before, _, state, y = one_epoch(learner, "adagrad")
    g = score_derivatives(before, y)
    assert_sums(state.acc_intercept - 1, g ** 2)
    if learner in ("fm", "ffm"):  # the hot features' copies are merged without a loss
        hot = hot_features()
        d_coef, d_factors = (fm_gradients if learner == "fm" else ffm_gradients)(before, g)
        assert_sums(state.acc_coef[hot] - 1, d_coef[:, hot] ** 2)
        assert_sums(state.acc_factors[hot] - 1, d_factors[:, hot] ** 2)


def test_hot_features_numbered_first_hold_every_squared_gradient(monkeypatch):
    """With the features renumbered by frequency (as a large model trains), the hot features
    are the first ids, which the kernel tells by their number: their sums hold every row's
    squared gradient as well."""
    renumbered = FeatureOrder.by_frequency(X).relabel(X)
    monkeypatch.setattr(sys.modules[__name__], "X", renumbered)
    hot = hot_features()
    np.testing.assert_array_equal(hot, np.arange(hot.size))
    before, _, state, y = one_epoch("fm", "adagrad")
    d_coef, d_factors = fm_gradients(before, score_derivatives(before, y))
    assert_sums(state.acc_coef[hot] - 1, d_coef[:, hot] ** 2)
    assert_sums(state.acc_factors[hot] - 1, d_factors[:, hot] ** 2)


def ffm_gradients(model, g):
    """Each row's gradient of the FFM's linear weights and factors (Juan et al. 2016: for a
    pair ``a, b`` of the row, ``d / d V[i_a, field(i_b)] = x_a x_b V[i_b, field(i_a)]``),
    times ``g``: shapes (n_rows, n_features) and (n_rows, n_features, n_fields, k)."""
    d_factors = np.zeros((X.shape[0],) + model.factors.shape)
    for r in range(X.shape[0]):
        cols, vals = X.indices[X.indptr[r]:X.indptr[r + 1]], X.data[X.indptr[r]:X.indptr[r + 1]]
        for a in range(len(cols)):
            for b in range(a + 1, len(cols)):
                i, j = cols[a], cols[b]
                fi, fj = model.fields[i], model.fields[j]
                d_factors[r, i, fj] += vals[a] * vals[b] * model.factors[j, fi]
                d_factors[r, j, fi] += vals[a] * vals[b] * model.factors[i, fj]
    return g[:, None] * X.toarray(), g[:, None, None, None] * d_factors


@pytest.mark.parametrize("make", [
    lambda **p: FMRegressor(**p),
    lambda **p: FFMRegressor(**p),
    lambda **p: FMRegressor(order=3, **p),
], ids=["fm", "ffm", "hofm"])
def test_two_threads_follow_one_thread_epoch_by_epoch(make):
    """A planted problem with a large intercept, at a rate slow enough that it is still
    being learned over the epochs: the two-thread validation curve stays within 10% of the
    one-thread curve at every epoch (3% measured; averaging the copies lagged 60%)."""
    X_, y = planted_fm_data(4000, seed=3)

    def curve(n_jobs):
        est = make(n_factors=4, learning_rate="constant", eta0=2e-4, max_iter=8, tol=None,
                   reg_linear=1e-5, reg_factors=1e-5, init_std=0.01, n_jobs=n_jobs,
                   random_state=0).fit(X_, y + 5.0, eval_set=(X_, y + 5.0))
        return -np.array(est.validation_scores_)

    np.testing.assert_allclose(curve(2), curve(1), rtol=0.1)


def test_the_multiclass_curve_follows_on_two_threads():
    """Classes of 80%, 10% and 10% of the rows: within 5% at every epoch (0.9% measured;
    averaging the copies of the intercepts lagged 15%)."""
    X_, y = planted_fm_data(4000, seed=3)
    classes = np.digitize(y, np.quantile(y, [0.8, 0.9]))

    def curve(n_jobs):
        est = FMClassifier(n_factors=4, learning_rate="constant", eta0=5e-4, max_iter=8,
                           tol=None, reg_linear=1e-5, reg_factors=1e-5, init_std=0.01,
                           n_jobs=n_jobs, random_state=0)
        return -np.array(est.fit(X_, classes, eval_set=(X_, classes)).validation_scores_)

    np.testing.assert_allclose(curve(2), curve(1), rtol=0.05)


def test_dask_partitions_merge_adagrads_sums_by_the_threads_rule():
    """Two partitions that touched feature 1 from the same state: the driver's sums are the
    start plus both partitions' squared gradients, as merging each copy by ``merged``."""
    model = FMModel(0.0, np.zeros(3), np.zeros((3, 2)))
    state = SGDState.initial(model)
    ends = [np.array([4.0, 2.0]), np.array([3.0, 7.0])]  # coef sums of features (0, 1), (1, 2)
    features = [np.array([0, 1]), np.array([1, 2])]
    updates = [Steps(f, np.ones(2), np.ones(2), np.zeros(2), np.zeros((2, 2)), end - 1,
                     np.full((2, 2), 0.5), 5, 1.0, 0.0, np.array([1.0]), 0.0)
               for f, end in zip(features, ends)]
    apply_steps(model, state, add_steps(*updates))
    expected = np.ones(3)
    for f, end in zip(features, ends):
        expected[f] = merged(end, np.ones(2), expected[f])
    np.testing.assert_array_equal(state.acc_coef, expected)
    np.testing.assert_array_equal(state.acc_coef, [4.0, 1 + 1 + 2, 7.0])
    np.testing.assert_array_equal(state.acc_intercept, [3.0])
    np.testing.assert_array_equal(state.acc_factors, [[1.5, 1.5], [2.0, 2.0], [1.5, 1.5]])


def _pool_sizes():
    """The BLAS pools' sizes (numba's own OpenMP pool follows ``numba.set_num_threads``)."""
    from threadpoolctl import threadpool_info
    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()
            if pool["user_api"] == "blas"}


@pytest.mark.parametrize("solver", ["mcmc", "als", "sgd"])
@pytest.mark.parametrize("n_jobs", [None, 1, 2])
def test_fit_and_predict_keep_the_blas_pools_within_n_jobs(monkeypatch, solver, n_jobs):
    from fmlearn import _base
    from fmlearn._threads import effective_n_jobs
    seen = []
    learner = {"mcmc": "MCMCSolver", "als": "ALSSolver", "sgd": "SGDSolver"}[solver]
    cls = getattr(_base, learner)
    epoch = cls.epoch

    def recording_epoch(self, *args, **kwargs):
        seen.append(_pool_sizes())
        return epoch(self, *args, **kwargs)

    monkeypatch.setattr(cls, "epoch", recording_epoch)
    X, y = planted_fm_data(60, n_users=4, n_items=5)
    before = _pool_sizes()
    est = FMRegressor(solver=solver, n_factors=2, max_iter=2, tol=None, n_jobs=n_jobs,
                      random_state=0).fit(X, y)
    allowed = effective_n_jobs(n_jobs)
    assert seen and all(set(sizes.values()) == {allowed} for sizes in seen)
    assert _pool_sizes() == before                       # restored afterwards

    monkeypatch.setattr(type(est.model_), "predict_csr",
                        lambda model, X, n_jobs, check: seen.append(_pool_sizes()) or
                        np.zeros(X.shape[0], model.dtype))
    seen.clear()
    est.predict(X)
    assert seen == [{api: allowed for api in before}]


def test_the_recommender_runs_its_matrix_products_on_the_estimators_n_jobs(monkeypatch):
    from fmlearn import recommend
    seen = []
    top_columns = recommend._top_columns
    monkeypatch.setattr(recommend, "_top_columns",
                        lambda *args: seen.append(_pool_sizes()) or top_columns(*args))
    X, y = planted_fm_data(60, n_users=4, n_items=5)
    est = FMRegressor(n_factors=2, max_iter=2, tol=None, n_jobs=1, random_state=0).fit(X, y)
    items = X[:5]
    recommend.Recommender(est, items).recommend(X[:3], n=2)
    assert seen and all(set(sizes.values()) == {1} for sizes in seen)
    assert recommend.Recommender(est.model_, items).n_jobs == -1
