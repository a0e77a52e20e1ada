"""Field-aware FM: the score against the formula, the SGD step against finite differences,
learning a planted FFM, fields from files, model files and the server's predictor."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score

from fmlearn import FFMClassifier, FFMModel, FFMRegressor, FMModel, FMRegressor, load, save
from fmlearn._validation import as_fm_csr
from fmlearn.io import dump_ffm, load_ffm
from fmlearn.kernels.ffm import sgd_epoch as ffm_sgd_epoch
from fmlearn.serve.app import Predictor
from fmlearn.solvers.ffm import FFMSolver
from fmlearn.solvers.sgd import SGDState


def brute_force_ffm(X, intercept, coef, factors, fields):
    """The FFM formula over all pairs of columns, written out with loops."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    out = intercept + X @ coef
    n = X.shape[1]
    for r in range(X.shape[0]):
        for i in range(n):
            for j in range(i + 1, n):
                out[r] += factors[i, fields[j]] @ factors[j, fields[i]] * X[r, i] * X[r, j]
    return out


def random_ffm(rng, n_features=9, n_fields=3, k=4):
    fields = rng.integers(0, n_fields, n_features).astype(np.int32)
    fields[:n_fields] = np.arange(n_fields)  # every field present
    return FFMModel(0.3, rng.normal(size=n_features), rng.normal(size=(n_features, n_fields, k)),
                    fields)


@pytest.mark.parametrize("normalize", [False, True])
def test_scores_equal_the_formula(normalize):
    rng = np.random.default_rng(0)
    model = random_ffm(rng)
    model.normalize = normalize
    X = sp.random(30, 9, density=0.5, random_state=1, format="csr") * 3
    X.data -= 1.0
    expected_rows = X.multiply(1 / np.sqrt(X.multiply(X).sum(axis=1)).A) if normalize else X
    expected = brute_force_ffm(sp.csr_matrix(expected_rows), model.intercept, model.coef,
                               model.factors, model.fields)
    np.testing.assert_allclose(model.predict(X, n_jobs=2), expected, rtol=1e-10)


def test_one_field_is_the_fm():
    rng = np.random.default_rng(1)
    V = rng.normal(size=(8, 1, 3))
    ffm = FFMModel(0.1, rng.normal(size=8), V, np.zeros(8, dtype=np.int32))
    fm = FMModel(0.1, ffm.coef, V[:, 0, :])
    X = sp.random(40, 8, density=0.4, random_state=2, format="csr")
    np.testing.assert_allclose(ffm.predict(X), fm.predict(X), rtol=1e-12)


REG = (0.01, 0.02, 0.03)


def one_row_step(loss, y, hot=None):
    """One SGD step (constant unit rate) on one row whose three features lie in three
    fields, by the solver or, with ``hot`` (the features stepped in a thread's copies), by
    the kernel on two threads; the model before and after, and the row's objective."""
    rng = np.random.default_rng(3)
    model = random_ffm(rng, n_features=6, n_fields=3, k=2)
    model.fields[:] = [0, 1, 2, 0, 1, 2]
    x = as_fm_csr(sp.csr_matrix(np.array([[0.5, 0.0, -1.2, 0.0, 2.0, 0.0]])), np.float64)
    start = model.copy()

    def objective(intercept, coef, factors):
        score = brute_force_ffm(x, intercept, coef, factors, model.fields)[0]
        data = 0.5 * (score - y) ** 2 if loss == "squared" else np.logaddexp(0, -y * score)
        used = [(i, model.fields[j]) for i in x.indices for j in x.indices if i != j]
        penalty = REG[0] * intercept**2 + REG[1] * (coef[x.indices] ** 2).sum() \
            + REG[2] * sum((factors[i, f] ** 2).sum() for i, f in used)
        return data + 0.5 * penalty

    solver = FFMSolver(loss, "constant", 1.0, 0.25, *REG, None)
    state = SGDState.initial(model)
    if hot is None:
        solver.epoch(model, x, np.array([y]), np.ones(1), state)
    else:
        # two blocks, the row in the first: thread 0 steps it, thread 1 nothing; the hot
        # features' copies settle into the model exactly
        slot = np.full(6, -1, dtype=np.int32)
        slot[list(hot)] = np.arange(len(hot), dtype=np.int32)
        intercept = np.array([model.intercept])
        ffm_sgd_epoch(x.indptr, x.indices, x.data, np.array([y]), np.ones(1), np.array([0, 1]),
                      1, model.fields, intercept, model.coef, model.factors,
                      state.acc_intercept, state.acc_coef, state.acc_factors, slot,
                      np.array(hot, dtype=np.int64), state.step, solver.config(np.float64), 2)
        model.intercept = float(intercept[0])
    return start, model, objective


# With one feature per field, each latent vector enters the row's score through one pair, so
# one step with a unit constant rate is the gradient of the loss plus the penalties. On two
# threads, with hot features (0, 2 and 4 are the row's): the pairs among hot features, between
# hot and other features and among the others, each group stepped apart.
@pytest.mark.parametrize("hot", [None, (), (0,), (0, 4), (0, 2, 4)])
@pytest.mark.parametrize("loss, y", [("squared", 0.7), ("logistic", -1.0)])
def test_one_step_is_the_finite_difference_gradient(loss, y, hot):
    start, model, objective = one_row_step(loss, y, hot)
    eps = 1e-6
    theta = [np.array([start.intercept]), start.coef, start.factors]
    after = [np.array([model.intercept]), model.coef, model.factors]
    for part in range(3):
        for index in np.ndindex(theta[part].shape):
            up = [t.copy() for t in theta]
            down = [t.copy() for t in theta]
            up[part][index] += eps
            down[part][index] -= eps
            numeric = (objective(up[0][0], up[1], up[2])
                       - objective(down[0][0], down[1], down[2])) / (2 * eps)
            step = theta[part][index] - after[part][index]
            assert step == pytest.approx(numeric, rel=1e-6, abs=1e-8), (part, index)


def planted_ffm(n_rows, seed=0):
    """Three one-hot fields whose pairwise interactions differ by field pair: an FFM, not an FM."""
    rng = np.random.default_rng(seed)
    sizes = np.array([30, 20, 10])
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    cols = np.column_stack([o + rng.integers(0, s, n_rows) for o, s in zip(offsets, sizes)])
    X = sp.csr_matrix((np.ones(cols.size), (np.repeat(np.arange(n_rows), 3), cols.ravel())),
                      shape=(n_rows, sizes.sum()))
    fields = np.repeat(np.arange(3), sizes)
    true = FFMModel(0.0, rng.normal(0, 0.3, sizes.sum()),
                    rng.normal(0, 0.8, (sizes.sum(), 3, 2)), fields.astype(np.int32))
    return X, true.predict(X), fields


def test_a_planted_ffm_is_learned_better_than_by_an_fm():
    X, y, fields = planted_ffm(12000)
    train, test = slice(0, 10000), slice(10000, None)
    common = dict(n_factors=4, max_iter=40, random_state=0, tol=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ffm = FFMRegressor(fields=fields, **common).fit(X[train], y[train])
        fm = FMRegressor(eta0=0.2, **common).fit(X[train], y[train])

    def rmse(model):
        return np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))

    assert rmse(ffm) < 0.15 * y.std()
    assert rmse(ffm) < 0.5 * rmse(fm)
    assert ffm.factors_.shape == (60, 3, 4) and ffm.fields_.tolist() == fields.tolist()


def test_classifier_two_threads_and_fields_from_an_ffm_file(tmp_path):
    X, score, fields = planted_ffm(6000, seed=1)
    y = (score > np.median(score)).astype(int)
    dump_ffm(X, y, fields, tmp_path / "train.ffm")
    X_file, y_file, fields_file = load_ffm(tmp_path / "train.ffm")
    assert fields_file.tolist() == np.c_[fields, np.arange(fields.size)].tolist()
    one = FFMClassifier(fields=fields_file, n_factors=4, max_iter=10, tol=None, random_state=0)
    two = FFMClassifier(fields=fields_file, n_factors=4, max_iter=10, tol=None, random_state=0,
                        n_jobs=2)
    for clf in (one, two):
        clf.fit(X_file[:5000], y_file[:5000])
        assert roc_auc_score(y[5000:], clf.predict_proba(X[5000:])[:, 1]) > 0.93


def test_fields_are_checked_against_the_data():
    X = np.eye(3)
    with pytest.raises(ValueError, match="X has 3 features, fields has shape \\(2,\\)"):
        FFMRegressor(fields=[0, 1]).fit(X, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="integer field ids; got dtype float64"):
        FFMRegressor(fields=[0.0, 1.0, 1.0]).fit(X, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("Estimator", [FFMRegressor, FFMClassifier])
def test_model_file_round_trip_and_server_predictor(Estimator, tmp_path):
    X, score, fields = planted_ffm(800, seed=2)
    y = score if Estimator is FFMRegressor else (score > 0).astype(int)
    est = Estimator(fields=fields, n_factors=3, max_iter=3, tol=None, normalize=True,
                    random_state=0).fit(X, y)
    loaded = load(save(est, tmp_path / "ffm.fm"))
    assert type(loaded) is Estimator and loaded.model_.normalize
    assert np.array_equal(loaded.predict(X), est.predict(X))
    assert np.array_equal(loaded.fields_, est.fields_)
    np.testing.assert_array_equal(loaded.fields, fields)  # the parameter, an int64 array member
    scores, labels = Predictor(loaded)(as_fm_csr(X, np.float32))
    expected = est.predict(X) if Estimator is FFMRegressor else est.predict_proba(X)[:, 1]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_fields_from_a_column_transformer():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    from fmlearn.preprocessing import column_fields

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"user": rng.integers(0, 30, 3000), "ad": rng.integers(0, 20, 3000),
                          "site": rng.integers(0, 10, 3000)})
    ct = ColumnTransformer([("ids", OneHotEncoder(), ["user", "ad", "site"])]).fit(frame)
    fields = column_fields(ct)
    assert fields.tolist() == [0] * 30 + [1] * 20 + [2] * 10
    X = ct.transform(frame)
    y = frame["user"] % 3 == frame["ad"] % 3  # a user-ad interaction
    clf = FFMClassifier(fields=fields, n_factors=4, max_iter=30, tol=None, random_state=0)
    assert clf.fit(X[:2500], y[:2500]).score(X[2500:], y[2500:]) > 0.9
