import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(relative):
    """The path of ``relative`` in ``../shared/data``, the real data sets beside the repo.

    Missing data skips the test on a developer's machine and fails it in CI, which
    always has the folder: a real-data test must not pass there by not running.
    """
    path = SHARED_DATA / relative
    if not path.exists():
        message = f"real data not found at {path} (it lives in ../shared/data beside the repo)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI always has it")
        pytest.skip(message)
    return path


def brute_force_fm(X, intercept, coef, factors):
    """The FM formula written out over all pairs: w0 + x.w + sum_{i<j} <v_i, v_j> x_i x_j."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    V = factors.astype(np.float64)
    pairs = np.triu(V @ V.T, k=1)
    return intercept + X @ coef.astype(np.float64) + np.einsum("ni,ij,nj->n", X, pairs, X)


def planted_fm_data(n_rows, n_users=60, n_items=80, n_factors=4, noise=0.1, seed=0):
    """Rows of a one-hot user, a one-hot item and a real-valued feature, with targets from a known FM."""
    rng = np.random.default_rng(seed)
    n_features = n_users + n_items + 1
    users = rng.integers(0, n_users, n_rows)
    items = n_users + rng.integers(0, n_items, n_rows)
    real = rng.normal(size=n_rows)
    rows = np.repeat(np.arange(n_rows), 3)
    cols = np.column_stack([users, items, np.full(n_rows, n_features - 1)]).ravel()
    vals = np.column_stack([np.ones(n_rows), np.ones(n_rows), real]).ravel()
    X = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_features))
    intercept = 0.5
    coef = rng.normal(0, 0.5, n_features)
    factors = rng.normal(0, 0.5, (n_features, n_factors))
    y = brute_force_fm(X, intercept, coef, factors) + rng.normal(0, noise, n_rows)
    return X, y


@pytest.fixture(scope="session")
def dask_client():
    """A ``LocalCluster`` of two worker processes, one thread each, shared by the Dask test
    modules: a fresh cluster's workers take seconds to import fmlearn before their first task.
    A worker killed by a test is replaced by its nanny."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture
def planted():
    return planted_fm_data
