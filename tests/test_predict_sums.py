"""float32 models predict with float64 sums: the scores of every model kind (FM, FFM, HOFM,
multiclass) against the formula written out in float64, within the float32
rounding of the result. Rows of 1000 values near 1e3 cancelled to a relative error of 7.5e-4
with float32 sums."""
import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import brute_force_fm

from fmlearn.model import FFMModel, FMModel, HOFMModel, MulticlassFMModel


def wide_rows(n_rows, n_features, seed):
    """Dense float32 rows of values in [500, 1500], as CSR."""
    rng = np.random.default_rng(seed)
    return sp.csr_matrix(rng.uniform(500, 1500, (n_rows, n_features)).astype(np.float32))


def assert_float32_rounding_of(scores, exact, magnitude):
    """``scores`` are ``exact`` rounded to float32, up to float64 error on ``magnitude`` (the
    sum of the terms' absolute values)."""
    assert scores.dtype == np.float32
    err = np.abs(scores.astype(np.float64) - exact)
    assert np.all(err <= np.spacing(np.abs(exact).astype(np.float32)) + 1e-12 * magnitude), err


def test_fm_and_multiclass_scores():
    rng = np.random.default_rng(0)
    X = wide_rows(3, 1000, 1)
    coef = rng.normal(0, 1e-3, (2, 1000)).astype(np.float32)
    factors = rng.normal(0, 1e-3, (2, 1000, 8)).astype(np.float32)
    exact = np.column_stack([brute_force_fm(X, 0.5, coef[c], factors[c]) for c in range(2)])
    dense = X.toarray().astype(np.float64)
    magnitude = np.einsum("ni,ij,nj->n", dense, np.abs(factors[0] @ factors[0].T), dense)
    assert_float32_rounding_of(FMModel(0.5, coef[0], factors[0]).predict(X), exact[:, 0],
                               magnitude)
    classes = MulticlassFMModel(np.full(2, 0.5, np.float32), coef, factors)
    assert_float32_rounding_of(classes.predict(X), exact, magnitude[:, None])


def test_ffm_scores():
    rng = np.random.default_rng(2)
    n, n_fields = 300, 3
    X = wide_rows(2, n, 3)
    fields = (np.arange(n) % n_fields).astype(np.int32)
    coef = rng.normal(0, 1e-3, n).astype(np.float32)
    factors = rng.normal(0, 1e-3, (n, n_fields, 4)).astype(np.float32)
    V = factors.astype(np.float64)
    left = V[:, fields]  # left[a, b] = V[a, field(b)]
    pair = np.triu(np.einsum("abk,bak->ab", left, left), k=1)
    dense = X.toarray().astype(np.float64)
    exact = 0.5 + dense @ coef + np.einsum("na,ab,nb->n", dense, pair, dense)
    magnitude = np.einsum("na,ab,nb->n", dense, np.abs(pair), dense)
    model = FFMModel(0.5, coef, factors, fields)
    assert_float32_rounding_of(model.predict(X), exact, magnitude)


@pytest.mark.parametrize("order", [3, 4])
def test_hofm_scores(order):
    rng = np.random.default_rng(order)
    X = wide_rows(2, 40, 4)
    factors = rng.normal(0, 1e-3, (order - 1, 40, 3)).astype(np.float32)
    dense = X.toarray().astype(np.float64)
    exact = np.zeros(2)
    magnitude = np.zeros(2)
    for o, P in enumerate(factors.astype(np.float64)):
        for tup in itertools.combinations(range(40), o + 2):
            term = np.prod(dense[:, tup], axis=1) * np.prod(P[list(tup)], axis=0).sum()
            exact += term
            magnitude += np.abs(term)
    model = HOFMModel(0.0, np.zeros(40, np.float32), factors)
    assert_float32_rounding_of(model.predict(X), exact, magnitude)
