"""Field-weighted FM: the score against the formula, the SGD step against finite differences,
threads, learning a planted FwFM, model files, the server and errors."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fmlearn import FMModel, FMRegressor, FwFMClassifier, FwFMModel, FwFMRegressor, load, save
from fmlearn.solvers.fwfm import FwFMSolver, FwFMState
from test_ffm import planted_ffm


def brute_force_fwfm(X, intercept, coef, factors, fields, field_weights):
    """The FwFM formula over all pairs of columns, written out with loops."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    out = intercept + X @ coef
    n = X.shape[1]
    for r in range(X.shape[0]):
        for i in range(n):
            for j in range(i + 1, n):
                out[r] += (field_weights[fields[i], fields[j]] * (factors[i] @ factors[j])
                           * X[r, i] * X[r, j])
    return out


def random_fwfm(rng, n_features=9, n_fields=3, k=4):
    fields = rng.integers(0, n_fields, n_features).astype(np.int32)
    fields[:n_fields] = np.arange(n_fields)  # every field present
    weights = rng.normal(size=(n_fields, n_fields))
    return FwFMModel(0.3, rng.normal(size=n_features), rng.normal(size=(n_features, k)), fields,
                     weights + weights.T)


@pytest.mark.parametrize("normalize", [False, True])
def test_scores_equal_the_formula_with_same_field_pairs_and_empty_rows(normalize):
    rng = np.random.default_rng(0)
    model = random_fwfm(rng, n_features=12, n_fields=4)
    model.normalize = normalize
    X = sp.random(40, 12, density=0.5, random_state=1, format="csr") * 3
    X.data -= 1.0
    X = sp.vstack([X, sp.csr_matrix((2, 12))]).tocsr()  # two empty rows
    norms = np.sqrt(X.multiply(X).sum(axis=1)).A
    rows = sp.csr_matrix(X.multiply(1 / np.maximum(norms, 1e-300))) if normalize else X
    expected = brute_force_fwfm(rows, model.intercept, model.coef, model.factors, model.fields,
                                model.field_weights)
    np.testing.assert_allclose(model.predict(X, n_jobs=2), expected, rtol=1e-10)
    assert model.predict(X)[-1] == pytest.approx(0.3)


def test_unit_field_weights_are_the_fm():
    rng = np.random.default_rng(1)
    V = rng.normal(size=(8, 3))
    fields = rng.integers(0, 3, 8).astype(np.int32)
    fwfm = FwFMModel(0.1, rng.normal(size=8), V, fields, np.ones((3, 3)))
    X = sp.random(40, 8, density=0.4, random_state=2, format="csr")
    np.testing.assert_allclose(fwfm.predict(X), FMModel(0.1, fwfm.coef, V).predict(X),
                               rtol=1e-12)


REG = (0.01, 0.02, 0.03, 0.04)


@pytest.mark.parametrize("loss, y", [("squared", 0.7), ("logistic", -1.0)])
def test_one_step_is_the_finite_difference_gradient(loss, y):
    # One row, one step at a unit constant rate: the step is the gradient of the loss plus
    # the penalties of what the row touches, a field weight r[f, g] = r[g, f] being one
    # parameter.
    rng = np.random.default_rng(3)
    model = random_fwfm(rng, n_features=6, n_fields=3, k=2)
    model.fields[:] = [0, 1, 2, 0, 1, 2]
    x = sp.csr_matrix(np.array([[0.5, 0.0, -1.2, 1.5, 2.0, 0.0]]))  # field 0 twice, 2 and 1
    start = model.copy()
    present = sorted({model.fields[i] for i in x.indices})
    used = [(f, g) for f in present for g in present if f <= g]

    def objective(intercept, coef, factors, weights):
        score = brute_force_fwfm(x, intercept, coef, factors, model.fields, weights)[0]
        data = 0.5 * (score - y) ** 2 if loss == "squared" else np.logaddexp(0, -y * score)
        penalty = REG[0] * intercept**2 + REG[1] * (coef[x.indices] ** 2).sum() \
            + REG[2] * (factors[x.indices] ** 2).sum() \
            + REG[3] * sum(weights[f, g] ** 2 for f, g in used)
        return data + 0.5 * penalty

    FwFMSolver(loss, "constant", 1.0, 0.25, *REG[:3], None, reg_field_weights=REG[3]).epoch(
        model, x, np.array([y]), np.ones(1), FwFMState.initial(model))
    assert np.array_equal(model.field_weights, model.field_weights.T)
    eps = 1e-6
    theta = [np.array([start.intercept]), start.coef, start.factors, start.field_weights]
    after = [np.array([model.intercept]), model.coef, model.factors, model.field_weights]
    for part in range(4):
        for index in np.ndindex(theta[part].shape):
            if part == 3 and index[0] > index[1]:
                continue
            up = [t.copy() for t in theta]
            down = [t.copy() for t in theta]
            for mirror in {index, index[::-1]} if part == 3 else {index}:
                up[part][mirror] += eps
                down[part][mirror] -= eps
            numeric = (objective(up[0][0], *up[1:]) - objective(down[0][0], *down[1:])) / (2 * eps)
            step = theta[part][index] - after[part][index]
            assert step == pytest.approx(numeric, rel=1e-6, abs=1e-8), (part, index)


def planted_fwfm(n_rows, seed=0):
    """test_ffm's three one-hot fields, with pairs whose strengths differ by field pair: an
    FwFM, not an FM."""
    X, _, fields = planted_ffm(n_rows, seed)
    rng = np.random.default_rng(seed)
    weights = np.array([[0.0, 2.0, 0.0], [2.0, 0.0, -1.0], [0.0, -1.0, 0.0]])
    true = FwFMModel(0.0, rng.normal(0, 0.3, 60), rng.normal(0, 0.8, (60, 2)),
                     fields.astype(np.int32), weights)
    return X, true.predict(X), fields


def test_a_planted_fwfm_is_learned_better_than_by_an_fm():
    X, y, fields = planted_fwfm(12000)
    train, test = slice(0, 10000), slice(10000, None)
    common = dict(n_factors=4, max_iter=40, random_state=0, tol=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fwfm = FwFMRegressor(fields=fields, **common).fit(X[train], y[train])
        fm = FMRegressor(eta0=0.2, **common).fit(X[train], y[train])

    def rmse(model):
        return np.sqrt(np.mean((model.predict(X[test]) - y[test]) ** 2))

    assert rmse(fwfm) < 0.15 * y.std()
    assert rmse(fwfm) < 0.5 * rmse(fm)
    assert fwfm.factors_.shape == (60, 4) and fwfm.field_weights_.shape == (3, 3)
    assert fwfm.fields_.tolist() == fields.tolist()


def test_two_threads_learn_as_one_does():
    X, score, fields = planted_fwfm(6000, seed=1)
    y = (score > np.median(score)).astype(int)
    aucs = []
    for n_jobs in (1, 2):
        clf = FwFMClassifier(fields=fields, n_factors=4, max_iter=10, tol=None, random_state=0,
                             n_jobs=n_jobs).fit(X[:5000], y[:5000])
        assert np.array_equal(clf.field_weights_, clf.field_weights_.T)
        aucs.append(clf.score(X[5000:], y[5000:]))
    assert min(aucs) > 0.9 and abs(aucs[0] - aucs[1]) < 0.02


def test_fields_are_checked_against_the_data():
    X = np.eye(3)
    with pytest.raises(ValueError, match="X has 3 features, fields has shape \\(2,\\)"):
        FwFMRegressor(fields=[0, 1]).fit(X, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="integer field ids; got dtype float64"):
        FwFMClassifier(fields=[0.0, 1.0, 1.0]).fit(X, [0, 1, 1])
    with pytest.raises(ValueError, match="reg_field_weights"):
        FwFMRegressor(reg_field_weights=-1.0).fit(X, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("Estimator", [FwFMRegressor, FwFMClassifier])
def test_model_file_round_trip_warm_start_and_server(Estimator, tmp_path):
    import asyncio

    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from fmlearn.serve import create_app

    X, score, fields = planted_fwfm(800, seed=2)
    y = score if Estimator is FwFMRegressor else (score > 0).astype(int)
    est = Estimator(fields=fields, n_factors=3, max_iter=3, tol=None, normalize=True,
                    random_state=0).fit(X, y)
    loaded = load(save(est, tmp_path / "fwfm.fm"))
    assert type(loaded) is Estimator and loaded.model_.normalize
    assert np.array_equal(loaded.predict(X), est.predict(X))
    for name in ("field_weights_", "fields_", "factors_", "coef_"):
        assert np.array_equal(getattr(loaded, name), getattr(est, name)), name
    assert np.array_equal(loaded._solver_state.acc_field_weights,
                          est._solver_state.acc_field_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for again in (est, loaded):
            again.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert np.array_equal(loaded.field_weights_, est.field_weights_)

    async def talk():
        transport = httpx.ASGITransport(app=create_app(loaded))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/invocations", content=",".join(map(str, X[0].toarray()[0])),
                                     headers={"Content-Type": "text/csv"})

    answer = asyncio.run(talk())
    expected = est.predict(X[:1]) if Estimator is FwFMRegressor else est.predict_proba(X[:1])[:, 1]
    assert answer.json()["predictions"][0]["score"] == pytest.approx(float(expected[0]), rel=1e-6)


def crafted(data, name, change):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from fuzz_targets.model_files import read_array, with_array

    return with_array(data, name, change(read_array(data, name).copy()))


def _set(index, value):
    def change(a):
        a[index] = value
        return a
    return change


@pytest.mark.parametrize("name, change, problem", [
    ("model.field_weights", _set((0, 1), 5.0), r"'model.field_weights' is not symmetric: "
                                                r"\[0, 1\] is 5.0, \[1, 0\]"),
    ("model.field_weights", _set((2, 2), np.nan), "'model.field_weights' holds nan at index "
                                                  r"\(2, 2\); parameters must be finite"),
    ("model.field_weights", lambda a: a[:2], r"'model.field_weights' has shape \[2, 3\]; "
                                             r"expected \[n_fields=2, n_fields=2\]"),
    ("model.fields", _set(4, 3), "'model.fields' holds 3 at index 4; the model has 3 fields"),
    ("model.factors", lambda a: a[:, :2], r"'model.factors' has shape \[60, 2\]; expected "
                                          r"\[n_features=60, n_factors=3\]"),
    ("solver_state.acc_field_weights", _set((1, 0), 0.0),
     r"'solver_state.acc_field_weights' holds 0.0 at index \(1, 0\); it must be finite and > 0"),
    ("solver_state.acc_field_weights", lambda a: a[:1], r"has shape \[1, 3\]; expected "
                                                         r"\[n_fields=3, n_fields=3\]"),
])
def test_bad_model_files_are_refused_naming_the_array(tmp_path, name, change, problem):
    from fmlearn import ModelFileError

    X, score, fields = planted_fwfm(300, seed=3)
    est = FwFMRegressor(fields=fields, n_factors=3, max_iter=2, tol=None, random_state=0)
    with open(save(est.fit(X, score), tmp_path / "good.fm"), "rb") as good:
        data = good.read()
    path = tmp_path / "bad.fm"
    path.write_bytes(crafted(data, name, change))
    with pytest.raises(ModelFileError, match=problem):
        load(path)


def test_the_server_scores_rows_of_a_normalizing_ffm_too():
    # The server's rows are no SciPy matrix; normalising them failed for the FFM as well.
    from fmlearn import FFMClassifier
    from fmlearn.serve.app import Predictor
    from fmlearn.serve.codecs import Rows

    X, score, fields = planted_fwfm(300, seed=4)
    clf = FFMClassifier(fields=fields, n_factors=2, max_iter=2, tol=None, normalize=True,
                        random_state=0).fit(X, score > 0)
    row = X[:1].astype(np.float32)
    rows = Rows(row.indptr.astype(np.int64), row.indices.astype(np.int32), row.data, row.shape)
    assert Predictor(clf)(rows)[0][0] == pytest.approx(clf.predict_proba(X[:1])[0, 1], rel=1e-6)


def test_a_token_vocabulary_gives_the_fields_and_is_kept_in_model_files(tmp_path):
    X, score, fields = planted_fwfm(300, seed=5)
    vocabulary = np.column_stack([fields, np.arange(60) % 7])  # (field, feature id) per column
    est = FwFMRegressor(fields=vocabulary, n_factors=2, max_iter=2, tol=None,
                        random_state=0).fit(X, score)
    assert est.fields_.tolist() == fields.tolist()
    loaded = load(save(est, tmp_path / "tokens.fm"))
    assert loaded.feature_ids_.tolist() == (np.arange(60) % 7).tolist()
    assert np.array_equal(loaded.predict(X), est.predict(X))


def test_normalize_auto_keeps_an_fwfm(tmp_path):
    X, score, fields = planted_fwfm(2000, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = FwFMClassifier(fields=fields, n_factors=2, normalize="auto", early_stopping=True,
                             max_iter=3, random_state=0).fit(X, score > 0)
    assert isinstance(clf.model_, FwFMModel) and clf.model_.normalize == clf.normalize_
    assert np.array_equal(load(save(clf, tmp_path / "auto.fm")).predict(X), clf.predict(X))
