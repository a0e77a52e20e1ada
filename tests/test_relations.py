"""Relational block structure: fits and predictions through blocks equal those on the
expanded matrix (myFM's tests/regression/test_block.py does the same check)."""
import numpy as np
import pytest
import scipy.sparse as sp

from fmlearn.relations import RelationBlock
from fmlearn._validation import as_fm_csr
from fmlearn.model import FMModel
from fmlearn.relations import relational_rows


def relational_data(seed=0, n_rows=60):
    """X (user one-hot), a user block (implicit items, real values) and an item block
    (side features, some all-zero block rows and columns); their expansion; targets."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 7, 9
    users = rng.integers(n_users, size=n_rows)
    items = rng.integers(n_items, size=n_rows)
    X = sp.csr_matrix((np.ones(n_rows), (np.arange(n_rows), users)), shape=(n_rows, n_users))
    implicit = sp.random(n_users, n_items, density=0.4, random_state=seed, format="csr")
    implicit.data = rng.random(implicit.nnz) + 0.5
    side = sp.random(n_items, 5, density=0.5, random_state=seed + 1, format="csr")
    side = sp.hstack([side, sp.csr_matrix((n_items, 1))]).tocsr()  # an empty column
    relations = [RelationBlock(users, implicit), RelationBlock(items, side)]
    expanded = sp.hstack([X, implicit[users], side[items]]).tocsr()
    y = rng.normal(size=n_rows) + expanded @ rng.normal(size=expanded.shape[1])
    return X, relations, expanded, y


def test_relational_scores_equal_those_of_the_expanded_matrix():
    X, relations, expanded, _ = relational_data()
    rng = np.random.default_rng(1)
    p = expanded.shape[1]
    model = FMModel(0.3, rng.normal(size=p), rng.normal(size=(p, 4)))
    rows = relational_rows(as_fm_csr(X, np.float64), relations, np.float64, p)
    np.testing.assert_allclose(model.predict_csr(rows, check=False), model.predict(expanded), rtol=1e-10)
