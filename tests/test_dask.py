"""Training on a Dask cluster: a LocalCluster of two worker processes, one thread each."""
import copy
import os
import signal
import sys
import threading
import time
from pathlib import Path

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from dask.sizeof import sizeof
from dask.utils import key_split
from distributed import Client, LocalCluster, get_task_stream

from conftest import shared_data
from fmlearn import FMClassifier, FMRegressor, load
from fmlearn.dask import DaskFMClassifier, DaskFMRegressor
from fmlearn.dask import _estimators as dask_estimators
from fmlearn.dask._data import Partition
from fmlearn.dask import _sgd
from fmlearn.dask._sgd import (Steps, add_steps, apply_steps, compact, make_slices,
                               train_slice)
from fmlearn.dask._solver import tree_share, tree_sum
from fmlearn.io import dump_ffm, dump_libsvm, dump_recordio
from fmlearn.model import FMModel
from fmlearn.solvers.sgd import SGDSolver, SGDState
from fmlearn.warmup import fit_kind

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synthetic import power_law_rows  # noqa: E402  (the planted sets of bench/dask_rounds.py)

ML_100K = Path(__file__).resolve().parents[2] / "shared/data/ml-100k"


@pytest.fixture
def client(dask_client):
    return dask_client  # the session's cluster (conftest.py)


def one_hot(n_rows, seed=0, n_users=40, n_items=50):
    """Rows of a one-hot user and a one-hot item, targets from a planted FM."""
    rng = np.random.default_rng(seed)
    cols = np.column_stack([rng.integers(0, n_users, n_rows),
                            n_users + rng.integers(0, n_items, n_rows)]).ravel()
    X = sp.csr_matrix((np.ones(2 * n_rows), (np.repeat(np.arange(n_rows), 2), cols)),
                      shape=(n_rows, n_users + n_items))
    V = rng.normal(0, 0.7, (n_users + n_items, 3))
    w = rng.normal(0, 0.5, n_users + n_items)
    pairs = np.einsum("ij,ij->i", V[cols[0::2]], V[cols[1::2]])
    return X, 1.0 + X @ w + pairs + rng.normal(0, 0.1, n_rows)


def shards(tmp_path, X, y, n):
    """``X, y`` written as ``n`` libFM files."""
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(X.shape[0]), n)):
        paths.append(tmp_path / f"part{i}.libfm")
        dump_libsvm(X[rows], y[rows], paths[-1])
    return paths


def test_als_sweeps_equal_the_single_machine_sweeps(client):
    X, y = one_hot(3000)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    params = dict(n_factors=3, solver="als", max_iter=4, reg_linear=2.0, reg_factors=3.0,
                  init_std=0.1, random_state=0, dtype="float64", tol=None)
    # 5 partitions of uneven size, each a scipy.sparse matrix
    chunks = da.from_array(X.astype(np.float64), chunks=(700, -1), asarray=False)
    dist = DaskFMRegressor(**params).fit(chunks, da.from_array(y, chunks=700),
                                         sample_weight=weights, client=client)
    ref = FMRegressor(**params).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(dist.loss_curve_, ref.loss_curve_, rtol=1e-12)
    assert dist.intercept_ == pytest.approx(ref.intercept_, rel=1e-12)
    np.testing.assert_allclose(dist.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dist.factors_, ref.factors_, rtol=1e-9, atol=1e-12)


def test_als_classification_equals_the_single_machine_probit_als(client):
    X, y = one_hot(2000, seed=2)
    labels = np.where(y > np.median(y), "yes", "no")
    params = dict(n_factors=2, solver="als", max_iter=3, reg_linear=1.0, reg_factors=1.0,
                  init_std=0.1, random_state=0, dtype="float64", tol=None)
    frame = dd.from_pandas(pd.DataFrame(X.toarray()), npartitions=3)
    dist = DaskFMClassifier(**params).fit(frame, dd.from_pandas(pd.Series(labels),
                                                                npartitions=3), client=client)
    ref = FMClassifier(**params).fit(X, labels)
    assert list(dist.classes_) == ["no", "yes"]
    np.testing.assert_allclose(dist.factors_, ref.factors_, rtol=1e-9, atol=1e-12)
    proba = dist.predict_proba(frame)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), ref.predict_proba(X), rtol=1e-9)


@pytest.mark.parametrize("local_steps", [None, "auto"])
def test_sgd_on_movielens_follows_the_single_machine_rmse_per_epoch(client, tmp_path, local_steps):
    shared_data("ml-100k/u1.base")
    def read(name):
        a = np.loadtxt(ML_100K / name, dtype=np.int64)
        cols = np.column_stack([a[:, 0] - 1, 943 + a[:, 1] - 1]).ravel()
        X = sp.csr_matrix((np.ones(cols.shape[0], np.float32),
                           (np.repeat(np.arange(a.shape[0]), 2), cols)), shape=(a.shape[0], 2625))
        return X, a[:, 2].astype(np.float64)

    (X, y), (X_test, y_test) = read("u1.base"), read("u1.test")
    order = np.random.default_rng(0).permutation(X.shape[0])
    paths = shards(tmp_path, X[order], y[order], 2)
    params = dict(n_factors=8, max_iter=20, eta0=0.05, reg_linear=0.01, reg_factors=0.01,
                  init_std=0.1, random_state=0, tol=None)
    single = FMRegressor(**params).fit(X, y, eval_set=(X_test, y_test))
    dist = DaskFMRegressor(local_steps=local_steps, **params).fit(
        paths, eval_set=(X_test, y_test), client=client)
    assert -single.validation_scores_[-1] < 0.97  # a model that learned: the mean scores 1.154
    # After every epoch (1.8 % at worst measured; averaging lagged up to 3 %).
    ratio = np.array(dist.validation_scores_) / np.array(single.validation_scores_)
    assert ratio.max() <= 1.02, ratio


def test_sgd_test_rmse_follows_one_process_epoch_by_epoch(client):
    # 4 partitions, the default rounds (32 an epoch) and rule: within the 2 % of the issue's
    # figure after each epoch (0.84 %, 1.74 %, 1.48 % measured; bench/dask_rounds.py); one
    # round per epoch lagged 12.8 %, the factors' shares unscaled or 16 rounds an epoch up to
    # 7 % on larger sets of this kind, averaging the partitions' parameters 11 % to 19 %.
    X, y = power_law_rows(15_000)
    train, test = (X[:12_000], y[:12_000]), (X[12_000:], y[12_000:])
    params = dict(n_factors=4, max_iter=3, eta0=0.05, reg_linear=1e-4, reg_factors=1e-4,
                  init_std=0.05, random_state=0, tol=None)
    single = FMRegressor(**params).fit(*train, eval_set=test)
    dist = DaskFMRegressor(**params).fit(
        da.from_array(train[0], chunks=(3000, -1), asarray=False),
        da.from_array(train[1], chunks=3000), eval_set=test, client=client)
    ratio = np.array(dist.validation_scores_) / np.array(single.validation_scores_)
    assert ratio.max() <= 1.02, ratio


def test_sgd_tasks_are_named_workers_warm_once_and_verbose_shows_a_bar(client, tmp_path, capsys,
                                                                        monkeypatch):
    X, y = one_hot(400)
    paths = shards(tmp_path, X, y, 2)
    params = dict(n_factors=2, max_iter=2, local_steps=100, tol=None, verbose=1)
    with get_task_stream(client) as stream:
        DaskFMRegressor(**params).fit(paths, client=client)
    assert (client.scheduler_info()["id"], "FMRegressor sgd", "float32") in \
        dask_estimators._WARM_CLUSTERS
    runs, run = [], client.run
    monkeypatch.setattr(client, "run", lambda f, *a, **k: runs.append(f) or run(f, *a, **k))
    DaskFMRegressor(**params).fit(paths, client=client)
    assert fit_kind not in runs  # the workers compiled the kernels once, not once per fit
    keys = [task["key"] for task in stream.data]
    assert {"fmlearn-sgd-slices", "fmlearn-sgd-round"} <= {key_split(k) for k in keys}
    # epoch 2, round 1, partition 0 (dashboard: fmlearn-sgd-round)
    assert any(k.startswith("fmlearn-sgd-round-2-1-0-") for k in keys)
    assert "DaskFMRegressor: 100%" in capsys.readouterr().err  # tqdm's bar, as FMRegressor's


def test_ffm_and_recordio_shards_give_the_model_of_libfm_shards(client, tmp_path):
    X, y = one_hot(600)
    params = dict(n_factors=2, solver="als", max_iter=2, random_state=0, tol=None)
    fields = np.r_[np.zeros(40, int), np.ones(50, int)]
    paths = {"libsvm": [], "ffm": [], "recordio": []}
    for i, rows in enumerate(np.array_split(np.arange(600), 2)):
        for fmt, write in (("libsvm", lambda p: dump_libsvm(X[rows], y[rows], p)),
                           ("ffm", lambda p: dump_ffm(X[rows], y[rows], fields, p)),
                           ("recordio", lambda p: dump_recordio(X[rows], y[rows], p))):
            paths[fmt].append(tmp_path / f"{fmt}{i}")
            write(paths[fmt][-1])
    models = {fmt: DaskFMRegressor(**params).fit(p, client=client) for fmt, p in paths.items()}
    for fmt in ("ffm", "recordio"):
        np.testing.assert_allclose(models[fmt].factors_, models["libsvm"].factors_, rtol=1e-5)


def test_sgd_combines_parameters_by_rows_per_feature(client):
    # Features 0-9 live only in the first partition, 10-19 only in the second: each keeps
    # what its own partition learned, unaveraged, so one round equals two separate fits.
    X = sp.block_diag([sp.identity(10), sp.identity(10)], format="csr")
    X = sp.vstack([X[:10]] * 3 + [X[10:]] * 3).tocsr()
    y = np.arange(60, dtype=np.float64) % 7
    params = dict(n_factors=2, max_iter=1, learning_rate="constant", eta0=0.1,
                  fit_intercept=False, shuffle=False, random_state=0, tol=None)
    dist = DaskFMRegressor(**params).fit(da.from_array(X.toarray(), chunks=(30, -1)),
                                         da.from_array(y, chunks=30), client=client)
    first = FMRegressor(**params).fit(X[:30], y[:30])
    second = FMRegressor(**params).fit(X[30:], y[30:])
    for part, rows in ((first, slice(0, 10)), (second, slice(10, 20))):
        np.testing.assert_allclose(dist.coef_[rows], part.coef_[rows], rtol=1e-6)
        np.testing.assert_allclose(dist.factors_[rows], part.factors_[rows], rtol=1e-6)


def driver_combined(model, state, leaves, eta0):
    """The partitions' steps combined at the driver, parameter by parameter from the rule of
    docs/dask.md: summed steps weighted by (1 - (1 - a)^C) / sum_p (1 - (1 - a)^c_p), the
    weight's a from its AdaGrad sum, a factor's from its own and the weight's, times 0.03."""
    model, state = model.copy(), copy.deepcopy(state)
    reached = lambda c, a: 1 - (1 - a) ** c  # noqa: E731
    bounded = lambda a: min(max(a, 1e-3), 0.5)  # noqa: E731
    for f in np.unique(np.concatenate([u.features for u in leaves])):
        held = [(u, int(np.searchsorted(u.features, f))) for u in leaves if f in u.features]
        acc_w = float(state.acc_coef[f])
        shares = [bounded(eta0 / np.sqrt(acc_w))] + [
            bounded(0.03 * eta0 * np.sqrt(float(acc_v)) / acc_w) for acc_v in state.acc_factors[f]]
        weight = [reached(sum(u.counts[i] for u, i in held), a)
                  / sum(reached(u.counts[i], a) for u, i in held) for a in shares]
        model.coef[f] += weight[0] * sum(float(u.coef[i]) for u, i in held)
        model.factors[f] += np.array(weight[1:]) * sum(u.factors[i].astype(np.float64)
                                                       for u, i in held)
        state.acc_coef[f] += sum(u.acc_coef[i] for u, i in held)
        state.acc_factors[f] += sum(u.acc_factors[i] for u, i in held)
    a = bounded(eta0 / np.sqrt(float(state.acc_intercept[0])))
    weight = (reached(sum(u.n_rows for u in leaves), a)
              / sum(reached(u.n_rows, a) for u in leaves))
    model.intercept += weight * sum(u.intercept for u in leaves)
    state.acc_intercept += sum(u.acc_intercept for u in leaves)
    return model, state


@pytest.mark.parametrize("n_parts", [1, 2, 3, 4, 5])
def test_sgd_tree_combined_equals_driver_combined(client, n_parts):
    # The workers add the partitions' steps pairwise (odd counts carry one up a level);
    # the driver applies the root: the same per-feature weighted sum as combining them all
    # at the driver, to round-off.
    rng = np.random.default_rng(n_parts)
    X = sp.random(60 * n_parts, 30, density=0.1, format="csr", random_state=n_parts,
                  dtype=np.float32)
    X = sp.hstack([X, np.ones((X.shape[0], 1), np.float32)], format="csr")  # one hot feature
    y = rng.normal(size=X.shape[0]).astype(np.float32)
    solver = SGDSolver("squared", "adagrad", 0.05, 0.25, 0.0, 0.0, 0.0, None)
    model = FMModel.initial(X.shape[1], 3, 0.1, np.float32, rng)
    state = SGDState.initial(model)
    state.acc_coef[:5] = 1e4  # shares between the bounds
    leaves = []
    for p in range(n_parts):
        rows = slice(60 * p, 60 * (p + 1))
        (s,) = make_slices(Partition(p, X[rows], y[rows], np.ones(60, np.float32)), [60])
        leaves.append(train_slice(s, compact(model, state, s.features), solver, p))
    expected, expected_state = driver_combined(model, state, leaves, solver.eta0)
    root = client.gather(tree_sum(client, client.scatter(leaves), add_steps, "test-combine"))
    loss = apply_steps(model, state, root, solver.eta0)
    assert loss == pytest.approx(sum(u.loss for u in leaves))
    assert state.step[0] == X.shape[0]
    np.testing.assert_allclose(model.intercept, expected.intercept, rtol=1e-6)
    np.testing.assert_allclose(model.coef, expected.coef, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.factors, expected.factors, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(state.acc_coef, expected_state.acc_coef, rtol=1e-6)
    np.testing.assert_allclose(state.acc_factors, expected_state.acc_factors, rtol=1e-6)
    np.testing.assert_allclose(state.acc_intercept, expected_state.acc_intercept, rtol=1e-6)


@pytest.mark.parametrize("local_steps", [None, 5])
def test_sgd_driver_sends_and_receives_at_most_the_model_per_round(client, monkeypatch,
                                                                   local_steps):
    # 4 partitions that each touch nearly all 90 features (one round per epoch): the model
    # goes to the workers once, not 4 copies of its rows; 5-row slices: their rows only.
    # Either way one combined sum comes back per round, not one per partition.
    X, y = one_hot(400)
    sent, gathered = [0], []  # bytes the driver sends per round, what it gathers
    submit, gather = client.submit, client.gather

    def counted_submit(func, *args, key=None, **kwargs):
        if func.__name__ in ("_pass", "train_slice", "train_from_rows"):
            sent[-1] += sum(sizeof(a) for a in args if not hasattr(a, "key"))
        return submit(func, *args, key=key, **kwargs)

    def counted_gather(futures, *args, **kwargs):
        result = gather(futures, *args, **kwargs)
        gathered.append(result)
        if isinstance(result, Steps):
            sent.append(0)
        return result

    monkeypatch.setattr(client, "submit", counted_submit)
    monkeypatch.setattr(client, "gather", counted_gather)
    est = DaskFMRegressor(n_factors=3, max_iter=1, random_state=0, tol=None,
                          local_steps=local_steps).fit(
        da.from_array(X.toarray(), chunks=(100, -1)), da.from_array(y, chunks=100),
        client=client)
    rounds = [g for g in gathered if isinstance(g, Steps)]
    assert len(rounds) == (1 if local_steps is None else 20)
    fitted = FMModel(est.intercept_, est.coef_, est.factors_)
    model = sizeof(fitted) + sizeof(SGDState.initial(fitted))  # with its AdaGrad sums
    n, k = fitted.factors.shape
    assert max(sent) <= model + 4 * n + 1000  # the rows' ids; the tasks' small arguments
    # one sum of steps over every row of the model, at most
    rows = Steps(np.arange(n), np.ones(n, np.int64), np.ones((n, k + 1)), fitted.coef,
                 fitted.factors, fitted.coef, fitted.factors, 1, 1.0, 0.0, np.ones(1), 0.0)
    assert max(sizeof(g) for g in rounds) <= sizeof(rows) + 1000


def test_tree_share_puts_one_copy_on_each_worker_by_doubling(client):
    # Each worker gets a copy made on it; the driver uploads one (level 0), the rest are
    # copies made from copies: three homes (two workers and an unknown one) in two levels.
    workers = sorted(client.scheduler_info()["workers"])
    value = np.arange(1000.0)
    with get_task_stream(client) as stream:
        copies = tree_share(client, workers * 3 + [None], "test-send", value, "rows")
        client.gather(list(copies.values()))
    assert set(copies) == {*workers, None}
    ran_on = {t["key"]: t["worker"] for t in stream.data}
    for worker in workers:
        assert ran_on[copies[worker].key] == worker
        got, label = copies[worker].result()
        np.testing.assert_array_equal(got, value)
        assert label == "rows"
    levels = sorted(t["key"].split("-")[2] for t in stream.data)  # test-send-{level}-...
    assert levels == ["0", "1", "2"]  # one upload; a copy of it; a third home at level 2


@pytest.mark.parametrize("local_steps", [None, 50])
def test_sgd_rows_sent_by_tree_give_the_model_of_rows_sent_by_the_driver(client, monkeypatch,
                                                                           local_steps):
    # Whether the round's parameter rows go to each partition from the driver or down the
    # tree as one union, the partitions train on the same rows: the same model, bit for bit.
    X, y = one_hot(600)
    fitted = []
    for tree in (False, True):
        monkeypatch.setattr(_sgd, "by_tree", lambda *args, tree=tree: tree)
        with get_task_stream(client) as stream:
            est = DaskFMRegressor(n_factors=3, max_iter=2, random_state=0, tol=None,
                                  local_steps=local_steps).fit(
                da.from_array(X.toarray(), chunks=(150, -1)), da.from_array(y, chunks=150),
                client=client)
        sent = {key_split(t["key"]) for t in stream.data}
        assert ("fmlearn-sgd-send" in sent) == tree
        fitted.append(est)
    np.testing.assert_array_equal(fitted[0].coef_, fitted[1].coef_)
    np.testing.assert_array_equal(fitted[0].factors_, fitted[1].factors_)
    assert fitted[0].intercept_ == fitted[1].intercept_


def test_checkpoint_resumes_as_one_long_fit(client, tmp_path):
    X, y = one_hot(2000)
    paths = shards(tmp_path, X, y, 2)
    path = tmp_path / "model.fm"
    params = dict(n_factors=3, eta0=0.05, random_state=3, tol=None)
    DaskFMRegressor(max_iter=3, checkpoint=str(path), **params).fit(paths, client=client)
    assert load(path).n_iter_ == 3
    resumed = DaskFMRegressor(max_iter=6, checkpoint=str(path), **params).fit(paths,
                                                                             client=client)
    whole = DaskFMRegressor(max_iter=6, **params).fit(paths, client=client)
    assert resumed.n_iter_ == 6 and load(path).n_iter_ == 6
    assert len(resumed.loss_curve_) == 6
    np.testing.assert_allclose(resumed.loss_curve_, whole.loss_curve_, rtol=1e-6)
    np.testing.assert_allclose(resumed.factors_, whole.factors_, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"other parameters: n_factors=3"):
        DaskFMRegressor(max_iter=6, checkpoint=str(path), **{**params, "n_factors": 4}
                        ).fit(paths, client=client)


def test_checkpoint_of_other_data_is_refused_naming_both(client, tmp_path):
    X, y = one_hot(2000)
    path = tmp_path / "model.fm"
    params = dict(n_factors=3, max_iter=2, random_state=3, tol=None, checkpoint=str(path))
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    DaskFMRegressor(**params).fit(shards(tmp_path / "a", X, y, 2), client=client)
    ours = r"2 partitions of 1000, 1000 rows, 90 features, digest [0-9a-f]{16}"
    with pytest.raises(ValueError, match=rf"written for other data: {ours}; this fit's is 3 "
                                         r"partitions of 500, 500, 500 rows, 90 features"):
        DaskFMRegressor(**params).fit(shards(tmp_path / "b", X[:1500], y[:1500], 3),
                                      client=client)
    relabelled = shards(tmp_path / "c", X, y + 1, 2)  # same sizes, other labels
    with pytest.raises(ValueError, match=rf"other data: {ours}; this fit's is 2 partitions of "
                                         r"1000, 1000 rows, 90 features, digest"):
        DaskFMRegressor(**params).fit(relabelled, client=client)
    # What the message offers: the saved model trained further on the other data.
    further = load(path).set_params(warm_start=True, checkpoint=None, max_iter=3)
    assert further.fit(relabelled, client=client).n_iter_ == 3
    with pytest.raises(ValueError, match=r"holds a DaskFMRegressor, not a DaskFMClassifier"):
        DaskFMClassifier(**params).fit(relabelled, client=client)


def test_a_killed_worker_costs_a_retry_not_the_fit(tmp_path):
    # 4 partitions that each touch all 90 features on 2 workers: the rounds' rows go down the
    # tree (_sgd.by_tree), whose copies prefer a worker that is about to die.
    X, y = one_hot(20_000)
    paths = shards(tmp_path, X, y, 4)
    path = tmp_path / "model.fm"
    params = dict(n_factors=4, max_iter=12, local_steps=1000, eta0=0.05, random_state=0,
                  tol=None)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as c:
        clean = DaskFMRegressor(**params).fit(paths, client=c)
        pids = c.run(os.getpid)
        victim = sorted(pids.values())[0]

        def kill_after_first_epoch():
            while not path.exists():
                time.sleep(0.005)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_after_first_epoch)
        killer.start()
        killed = DaskFMRegressor(checkpoint=str(path), **params).fit(paths, client=c)
        killer.join()
        c.wait_for_workers(2)
        assert victim not in c.run(os.getpid).values()  # the worker did die
    assert killed.n_iter_ == 12 and load(path).n_iter_ == 12
    # Every retried task and epoch starts from the same combined model: nothing changes.
    np.testing.assert_allclose(killed.factors_, clean.factors_, rtol=1e-6)
    np.testing.assert_allclose(killed.loss_curve_, clean.loss_curve_, rtol=1e-6)


def test_errors_name_the_problem(client, tmp_path):
    X, y = one_hot(200)
    dense = X.toarray()
    dense[150, 3] = np.nan
    with pytest.raises(ValueError, match=r"partition 1: X: Input (X )?contains NaN"):
        DaskFMRegressor().fit(da.from_array(dense, chunks=(100, -1)),
                              da.from_array(y, chunks=100), client=client)
    with pytest.raises(ValueError, match="solver='sgd', 'als' or 'mcmc' on a cluster; got "
                                         "solver='vb'"):
        DaskFMRegressor(solver="vb").fit(da.from_array(X.toarray(), chunks=(100, -1)), y,
                                         client=client)
    with pytest.raises(ValueError, match="X has 200 rows but y has 150"):
        DaskFMRegressor().fit(da.from_array(X.toarray(), chunks=(100, -1)), y[:150],
                              client=client)
    paths = shards(tmp_path, X, y, 2)
    with pytest.raises(ValueError, match="the labels come from the files"):
        DaskFMRegressor().fit(paths, y, client=client)
    with pytest.raises(ValueError, match="early_stopping on a cluster needs eval_set"):
        DaskFMRegressor(early_stopping=True).fit(paths, client=client)


def test_without_a_client_fit_says_how_to_get_one():
    X, y = one_hot(100)
    with pytest.raises(ValueError, match=r"needs a distributed Client: pass client="):
        DaskFMRegressor().fit(da.from_array(X.toarray(), chunks=50), da.from_array(y, chunks=50))
