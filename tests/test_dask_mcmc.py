"""Gibbs sampling on a Dask cluster: the single-process chain, draw for draw."""
import os

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from dask.sizeof import sizeof

import fmlearn.dask._als as dask_als
import fmlearn.dask._mcmc as dask_mcmc
from fmlearn import FMClassifier, FMRegressor
from fmlearn.dask import DaskFMClassifier, DaskFMRegressor
from fmlearn.dask._als import make_shard, partition_bounds
from fmlearn.dask._data import Partition
from fmlearn.model import FMModel
from test_dask import client, one_hot  # noqa: F401  (client: the cluster fixture)

GROUPS = np.r_[np.zeros(40, int), np.ones(50, int)]


def data(n_rows=600, seed=0):
    """One-hot rows in three uneven chunks, row weights."""
    X, y = one_hot(n_rows, seed=seed)
    weights = np.random.default_rng(seed + 1).uniform(0.5, 2.0, n_rows)
    return X, y, weights, da.from_array(X, chunks=(250, -1), asarray=False)


@pytest.fixture
def rounds(client, monkeypatch):
    """The gathers (rounds) of each sweep of the fits the test runs."""
    counts, run_epoch, gather = [], dask_mcmc.DaskMCMC.run_epoch, client.gather

    def counted_epoch(*args):
        counts.append(0)
        return run_epoch(*args)

    def counted_gather(*args, **kwargs):
        if counts:
            counts[-1] += 1
        return gather(*args, **kwargs)

    monkeypatch.setattr(dask_mcmc.DaskMCMC, "run_epoch", counted_epoch)
    monkeypatch.setattr(client, "gather", counted_gather)
    return counts


def n_blocks(X):
    """The column blocks the partitions of ``data`` share."""
    cuts = [partition_bounds(Partition(0, X[rows], None, None))
            for rows in (slice(0, 250), slice(250, 500), slice(500, None))]
    return np.unique(np.concatenate(cuts)).shape[0] - 1


def assert_same_chain(dist, ref):
    np.testing.assert_allclose(dist.loss_curve_, ref.loss_curve_, rtol=1e-10)
    for name, trace in ref.hyperparameter_trace_.items():
        np.testing.assert_allclose(dist.hyperparameter_trace_[name], trace, rtol=1e-9)
    assert dist.model_.n_samples == ref.model_.n_samples
    np.testing.assert_allclose(dist.model_.intercepts, ref.model_.intercepts, rtol=1e-9)
    np.testing.assert_allclose(dist.model_.factors_samples, ref.model_.factors_samples,
                               rtol=1e-9, atol=1e-12)


def test_regression_chain_equals_the_single_process_chain(client, rounds):
    X, y, weights, chunks = data()
    params = dict(n_factors=2, solver="mcmc", max_iter=4, burn_in=1, n_kept_samples=2,
                  random_state=0, dtype="float64")
    dist = DaskFMRegressor(**params).fit(chunks, da.from_array(y, chunks=250),
                                         sample_weight=weights, feature_groups=GROUPS,
                                         eval_set=(X[:50], y[:50]), client=client)
    ref = FMRegressor(**params).fit(X, y, sample_weight=weights, feature_groups=GROUPS,
                                    eval_set=(X[:50], y[:50]))
    assert_same_chain(dist, ref)
    # One round per block and layer (3): the loss round starts the next sweep.
    assert rounds[1:] == [3 * n_blocks(X)] * 3
    assert dist.hyperparameter_trace_["mu_w"].shape == (4, 2)  # one prior per group
    np.testing.assert_allclose(dist.validation_scores_, ref.validation_scores_, rtol=1e-9)
    # Predictions average the 2 kept samples' (clipped) predictions.
    kept = dist.model_
    each = [kept.sample(s).predict(X) for s in range(2)]
    expected = np.mean(np.clip(each, y.min(), y.max()), axis=0)
    np.testing.assert_allclose(dist.predict(X), expected, rtol=1e-9)
    np.testing.assert_allclose(dist.predict(chunks).compute(), expected, rtol=1e-9)


def test_probit_chain_equals_the_single_process_chain(client, rounds):
    X, y, weights, chunks = data(seed=2)
    labels = np.where(y > np.median(y), "yes", "no")
    params = dict(n_factors=2, solver="mcmc", max_iter=4, burn_in=1, n_kept_samples=2,
                  random_state=1, dtype="float64")
    dist = DaskFMClassifier(**params).fit(chunks, da.from_array(labels, chunks=250),
                                          sample_weight=weights, feature_groups=GROUPS,
                                          client=client)
    ref = FMClassifier(**params).fit(X, labels, sample_weight=weights, feature_groups=GROUPS)
    assert_same_chain(dist, ref)
    assert rounds[1:] == [3 * n_blocks(X) + 1] * 3  # and the latent targets' round
    np.testing.assert_allclose(dist.predict_proba(X), ref.predict_proba(X), rtol=1e-9)


def test_probit_driver_holds_a_chunk_of_rows_not_all(client, rounds, monkeypatch):
    # 600 rows in partitions of 250, 250, 100 and chunks of 120 rows: the driver draws the
    # latent targets group by group (120, 120, 10 + 110, 120, 10 + 100 rows), never holding
    # more than 120 signed scores, and the chain stays the single process's.
    monkeypatch.setattr(dask_mcmc, "PROBIT_CHUNK_ROWS", 120)
    held, gather = [], client.gather

    def counted_gather(futures, *args, **kwargs):
        result = gather(futures, *args, **kwargs)
        if isinstance(result, list) and result and all(
                isinstance(r, np.ndarray) and r.dtype == np.float64 for r in result):
            held.append(sum(r.shape[0] for r in result))
        return result

    monkeypatch.setattr(client, "gather", counted_gather)
    X, y, weights, chunks = data(seed=3)
    labels = np.where(y > np.median(y), 1, 0)
    params = dict(n_factors=2, solver="mcmc", max_iter=3, burn_in=1, random_state=2,
                  dtype="float64")
    dist = DaskFMClassifier(**params).fit(chunks, da.from_array(labels, chunks=250),
                                          sample_weight=weights, client=client)
    ref = FMClassifier(**params).fit(X, labels, sample_weight=weights)
    assert_same_chain(dist, ref)
    # Five groups per sweep, none above 120 rows (after the first sweep the first group
    # comes with the training losses' gather, not counted here).
    assert held == [120] * (5 + 4 + 4)
    assert rounds[1:] == [3 * n_blocks(X) + 5] * 2  # four more than one gather of all


def test_a_model_of_the_intercept_alone_samples_it(client):
    X, y, _, chunks = data(200)
    params = dict(n_factors=0, fit_linear=False, solver="mcmc", max_iter=2, random_state=0,
                  dtype="float64")
    dist = DaskFMRegressor(**params).fit(chunks, da.from_array(y, chunks=250), client=client)
    assert_same_chain(dist, FMRegressor(**params).fit(X, y))


def test_a_checkpoint_resumes_the_chain(client, tmp_path):
    X, y, _, chunks = data(seed=4)
    target, path = da.from_array(y, chunks=250), str(tmp_path / "chain.fm")
    params = dict(n_factors=2, solver="mcmc", burn_in=1, random_state=0, dtype="float64")
    DaskFMRegressor(max_iter=2, checkpoint=path, **params).fit(chunks, target, client=client)
    resumed = DaskFMRegressor(max_iter=3, checkpoint=path, **params).fit(chunks, target,
                                                                        client=client)
    assert_same_chain(resumed, FMRegressor(max_iter=3, **params).fit(X, y))


def test_a_sum_dominated_by_the_dropped_sample_is_summed_again():
    X, y = one_hot(4)
    shard = make_shard(Partition(0, X, np.sign(y - 1.5), np.ones(4)), partition_bounds(
        Partition(0, X, y, np.ones(4))))
    zeros = (np.zeros(90), np.zeros((90, 2)))
    sure, unsure = FMModel(40.0, *zeros), FMModel(-40.0, *zeros)
    average = dask_mcmc.rebuild_average(shard, [(sure,), (unsure,)], None, "probit")
    added = dask_mcmc.sweep_start(shard, (unsure,))
    average = dask_mcmc.update_average(shard, average, added, (sure,), None, "probit")
    np.testing.assert_array_equal(average.lost, np.arange(4))  # P(-1) was all the sure one's
    refreshed = dask_mcmc.refresh_average(shard, average, [(unsure,), (unsure,)], None,
                                          "probit")
    expected = dask_mcmc.rebuild_average(shard, [(unsure,), (unsure,)], None, "probit")
    np.testing.assert_allclose(refreshed.total, expected.total, rtol=1e-12)
    assert dask_mcmc.average_loss(shard, refreshed, 2, "probit", "probit")[1] == 0


def test_errors_name_the_problem(client):
    X, y, _, chunks = data(200)
    target = da.from_array(y, chunks=250)
    with pytest.raises(ValueError, match="early_stopping is not available with solver='mcmc'"):
        DaskFMRegressor(solver="mcmc", early_stopping=True).fit(chunks, target, client=client)
    with pytest.raises(ValueError, match="feature_groups must give one group per feature"):
        DaskFMRegressor(solver="mcmc").fit(chunks, target, feature_groups=[0, 1], client=client)


def test_a_killed_worker_mid_sweep_leaves_the_chain_as_it_was(client, monkeypatch):
    # Last in the file: its lost worker comes back while later tests run elsewhere.
    X, y, _, chunks = data(seed=3)
    params = dict(n_factors=2, solver="mcmc", max_iter=3, burn_in=0, n_kept_samples=2,
                  random_state=0, dtype="float64")
    victim = sorted(client.run(os.getpid).values())[0]
    draws, calls = dask_als.draw_layer, []

    def killing(*args):  # the worker dies after the 8th block of the first sweep
        calls.append(None)
        if len(calls) == 8:
            os.kill(victim, 9)
        return draws(*args)

    monkeypatch.setattr(dask_als, "draw_layer", killing)
    killed = DaskFMRegressor(**params).fit(chunks, da.from_array(y, chunks=250),
                                           client=client)
    assert victim not in client.run(os.getpid).values()  # the worker did die
    assert_same_chain(killed, FMRegressor(**params).fit(X, y))


def blocks(n_parts=4, rows=150, users=10, items=12, seed=0):
    """Partitions whose rows hold features of their own: a user and an item of the
    partition's ranges, targets from a planted FM."""
    rng = np.random.default_rng(seed)
    n_users = n_parts * users
    part = np.repeat(np.arange(n_parts), rows)
    u = part * users + rng.integers(0, users, part.shape[0])
    i = n_users + part * items + rng.integers(0, items, part.shape[0])
    X = sp.csr_matrix((np.ones(2 * u.shape[0]), np.column_stack([u, i]).ravel(),
                       np.arange(0, 2 * u.shape[0] + 1, 2)),
                      shape=(u.shape[0], n_users + n_parts * items))
    V = rng.normal(0, 0.7, (X.shape[1], 2))
    y = 1.0 + np.einsum("ij,ij->i", V[u], V[i]) + rng.normal(0, 0.1, u.shape[0])
    return X, y, da.from_array(X, chunks=(rows, -1), asarray=False)


@pytest.mark.parametrize("solver", ["als", "mcmc"])
def test_each_partition_gets_only_the_rows_of_its_features(client, monkeypatch, solver):
    # 4 partitions of 22 features each out of 88: a sweep sends each partition its 22 rows
    # (the model went whole to every worker before), and the sweeps stay the single
    # process's.
    X, y, chunks = blocks()
    sent = {}
    submit = client.submit

    def counted_submit(func, *args, **kwargs):
        if func.__name__ in ("begin_sweep", "sweep_start", "update_average",
                             "rebuild_average", "_pass"):
            sent.setdefault(func.__name__, []).append(
                sum(sizeof(a) for a in args if not hasattr(a, "key")))
        return submit(func, *args, **kwargs)

    monkeypatch.setattr(client, "submit", counted_submit)
    params = dict(n_factors=2, solver=solver, max_iter=4, random_state=0, dtype="float64",
                  **({"burn_in": 1, "n_kept_samples": 1} if solver == "mcmc" else
                     {"reg_linear": 1.0, "reg_factors": 1.0, "tol": None}))
    dist = DaskFMRegressor(**params).fit(chunks, da.from_array(y, chunks=150), client=client)
    ref = FMRegressor(**params).fit(X, y)
    np.testing.assert_allclose(dist.loss_curve_, ref.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(dist.predict(X), ref.predict(X), rtol=1e-9)
    model = sizeof(FMModel(0.0, np.zeros(88), np.zeros((88, 2))))
    starts = sent["begin_sweep" if solver == "als" else "sweep_start"]
    assert len(starts) == 4 * (4 if solver == "als" else 5)  # MCMC looks one sweep ahead
    assert max(starts) < model / 2  # 22 of the 88 rows, with their ids
    assert "_pass" not in sent  # nothing shared whole
    if solver == "mcmc":  # the first kept sample and each dropped one: the rows too
        assert len(sent["rebuild_average"]) == 4 and max(sent["rebuild_average"]) < model / 2
        assert len(sent["update_average"]) == 4 * 2 and max(sent["update_average"]) < model / 2
