"""Sparse matrices whose arrays break their format get a ValueError naming the entry, never a
crash: every learner, every model's predict and predict_csr, recommend and the Dask partitions.

SciPy builds such matrices without complaint (out-of-range or negative indices, int64 indices
that int32 would wrap, row pointers that decrease or miss the end, arrays set afterwards), and
its own routines, like the kernels, read them unchecked.
"""
import json
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from fmlearn import FFMClassifier, FFMRegressor, FMClassifier, FMModel, FMRanker, FMRegressor
from fmlearn._validation import as_fm_csr
from fmlearn.model import FFMModel, FMSamples, HOFMModel, MulticlassFMModel
from fmlearn.recommend import recommend

N_FEATURES = 6
GOOD = np.eye(3, N_FEATURES)
Y = np.array([0.0, 1.0, 2.0])


def csr(indices=(0, 1, 2), indptr=(0, 1, 2, 3), **later):
    """A 3 x 6 CSR matrix of ones at ``indices`` (int32 when they fit, else int64) with row
    pointers ``indptr``, then the arrays in ``later`` set on it, as a user can."""
    indices = np.asarray(indices, dtype=np.int64)
    if np.abs(indices).max() < 2**31:
        indices = indices.astype(np.int32)
    X = sp.csr_matrix(GOOD)
    X.data, X.indices, X.indptr = np.ones(len(indices)), indices, np.asarray(indptr, np.int64)
    for name, value in later.items():
        setattr(X, name, value)
    return X


def csc_row(row):
    X = sp.csc_matrix(GOOD)
    X.indices = np.array([0, row, 2], dtype=np.int64)
    return X


def coo_column(column):
    X = sp.coo_matrix(GOOD)
    X.col = np.array([0, column, 2])
    return X


OUTSIDE = "X row 1 has column index {}, outside [0, 6)."
# Each case: a broken matrix and the exact message (of an input named "X").
CASES = {
    "column 10**8": (lambda: csr(indices=(0, 10**8, 2)), OUTSIDE.format(10**8)),
    "column 7 of 6": (lambda: csr(indices=(0, 7, 2)), OUTSIDE.format(7)),
    "column 6 of 6": (lambda: csr(indices=(0, 6, 2)), OUTSIDE.format(6)),
    "column -1": (lambda: csr(indices=(0, -1, 2)), OUTSIDE.format(-1)),
    "column 2**33+1 int64": (lambda: csr(indices=(0, 2**33 + 1, 2)), OUTSIDE.format(2**33 + 1)),
    "indptr decreasing": (lambda: csr(indptr=(0, 2, 1, 3)),
                          "X's indptr decreases at row 1: the row starts at entry 2 and ends at "
                          "entry 1."),
    "indptr short of nnz": (lambda: csr(indptr=(0, 1, 2, 2)),
                            "X's indptr ends at 2, but X stores 3 entries (len(indices)); they "
                            "must be equal."),
    "indptr past nnz": (lambda: csr(indptr=(0, 1, 2, 4)),
                        "X's indptr points past the stored entries: row 2 ends at entry 4, but X "
                        "stores 3 (len(indices))."),
    "indptr not from 0": (lambda: csr(indptr=(1, 1, 2, 3)),
                          "X's indptr starts at 1; it must start at 0."),
    "indptr too short": (lambda: csr(indptr=(0, 1, 3)),
                         "X has 3 rows, but its indptr has 3 entries; it needs 4."),
    "data too long": (lambda: csr(data=np.ones(4)),
                      "X has 4 stored values (len(data)) but 3 column indices (len(indices)); "
                      "they must have the same length."),
    "csc row 10**8": (lambda: csc_row(10**8), "X column 1 has row index 100000000, outside "
                                              "[0, 3)."),
    "coo column -1": (lambda: coo_column(-1),
                      "X entry 1 is at row 1, column -1, outside the shape (3, 6)."),
}
# The CSR cases whose arrays predict_csr would otherwise read as they are (int32 indices).
CSR_CASES = [case for case in CASES if not case.startswith(("csc", "coo", "column 2**33"))]

LEARNERS = {
    "sgd": lambda: FMRegressor(solver="sgd"),
    "als": lambda: FMRegressor(solver="als"),
    "mcmc": lambda: FMRegressor(solver="mcmc"),
    "sgda": lambda: FMRegressor(solver="sgda"),
    "hofm": lambda: FMRegressor(order=3),
    "classifier": lambda: FMClassifier(),
    "probit classifier": lambda: FMClassifier(solver="mcmc"),
    "multiclass": lambda: FMClassifier(),
    "ranker": lambda: FMRanker(),
    "ffm regressor": lambda: FFMRegressor(),
    "ffm classifier": lambda: FFMClassifier(),
}


def target(learner):
    """Targets of the three rows: two classes for the binary classifiers, three otherwise."""
    return np.array([0, 1, 1]) if learner in ("classifier", "probit classifier",
                                              "ffm classifier") else Y


def raises(message):
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("learner", LEARNERS)
def test_fit_and_partial_fit_reject_broken_arrays(learner, case):
    build, message = CASES[case]
    est = LEARNERS[learner]().set_params(max_iter=2, n_factors=2)
    with raises(message):
        est.fit(build(), target(learner))
    if hasattr(est, "partial_fit") and learner not in ("als", "mcmc"):
        with raises(message):
            est.partial_fit(build(), target(learner), **(
                {"classes": np.unique(target(learner))} if "classifier" in learner
                or learner == "multiclass" else {}))


@pytest.fixture(scope="module")
def fitted():
    return {learner: LEARNERS[learner]().set_params(max_iter=2, n_factors=2, random_state=0)
            .fit(GOOD, target(learner)) for learner in LEARNERS}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("learner", LEARNERS)
def test_predict_rejects_broken_arrays(fitted, learner, case):
    build, message = CASES[case]
    est = fitted[learner]
    methods = ["predict"] + [m for m in ("predict_proba", "decision_function") if hasattr(est, m)]
    for method in methods:
        with raises(message):
            getattr(est, method)(build())
    with raises(message):  # a broken eval_set
        LEARNERS[learner]().set_params(max_iter=2, n_factors=2).fit(
            GOOD, target(learner), eval_set=(build(), target(learner)))


def models():
    rng = np.random.default_rng(0)
    fm = FMModel(0.5, rng.normal(size=N_FEATURES), rng.normal(size=(N_FEATURES, 2)))
    return {
        "fm": fm,
        "ffm": FFMModel(0.5, fm.coef, rng.normal(size=(N_FEATURES, 2, 2)),
                        np.array([0, 0, 0, 1, 1, 1], np.int32)),
        "ffm normalized": FFMModel(0.5, fm.coef, rng.normal(size=(N_FEATURES, 2, 2)),
                                   np.array([0, 0, 0, 1, 1, 1], np.int32), normalize=True),
        "hofm": HOFMModel(0.5, fm.coef, rng.normal(size=(2, N_FEATURES, 2))),
        "multiclass": MulticlassFMModel(np.zeros(3), rng.normal(size=(3, N_FEATURES)),
                                        rng.normal(size=(3, N_FEATURES, 2))),
        "samples": FMSamples.stack([fm, fm.copy()]),
    }


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("model", models())
def test_model_predict_and_predict_csr_reject_broken_arrays(model, case):
    build, message = CASES[case]
    for method in ["predict", "predict_csr"] if case in CSR_CASES else ["predict"]:
        with raises(message):
            getattr(models()[model], method)(build())


def test_predict_csr_names_the_form_it_reads():
    model = models()["fm"]
    with raises("X.indices has dtype int64; predict_csr reads int32 (the form as_fm_csr "
                "returns): pass X to predict, which converts it."):
        model.predict_csr(csr(indices=(0, 2**33 + 1, 2)))
    with raises("X has 5 features, but the model expects 6."):
        model.predict_csr(as_fm_csr(np.eye(3, 5), np.float64))
    with raises("X has 7 features, but the model expects 6."):
        model.predict(np.eye(3, 7))


@pytest.mark.parametrize("case", CASES)
def test_recommend_rejects_broken_users_and_items(case):
    build, message = CASES[case]
    model = models()["fm"]
    with raises(re.sub(r"\bX\b", "user_features", message)):
        recommend(model, build(), GOOD, n=2)
    with raises(re.sub(r"\bX\b", "item_features", message)):
        recommend(model, GOOD, build(), n=2)


def test_a_broken_dask_partition_is_named():
    from fmlearn.dask._data import make_partition  # what every chunk and file shard goes through
    build, message = CASES["column 7 of 6"]
    with raises(f"partition 3: X: {message}"):
        make_partition(3, build(), Y, None, np.float32, seed=None)


@st.composite
def csr_arrays(draw):
    """The arrays of a random CSR matrix, and whether a random defect was put in them."""
    n_rows, n_cols = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    lengths = draw(st.lists(st.integers(0, 4), min_size=n_rows, max_size=n_rows))
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    nnz = int(indptr[-1])
    indices = np.array(draw(st.lists(st.integers(0, n_cols - 1), min_size=nnz, max_size=nnz)),
                       dtype=np.int64)  # unsorted, with duplicates
    data = np.array(draw(st.lists(st.floats(-2, 2), min_size=nnz, max_size=nnz)))
    defects = ["none", "start", "end", "decrease", "length", "data"] + (["column"] if nnz else [])
    defect = draw(st.sampled_from(defects))
    if defect == "column":
        p = draw(st.integers(0, nnz - 1))
        indices[p] = draw(st.sampled_from([n_cols, n_cols + 1, -1, -n_cols, 10**8, 2**33 + 1,
                                           2**32 + indices[p]]))
    elif defect == "start":
        indptr[0] = draw(st.sampled_from([1, -1]))
    elif defect == "end":
        indptr[-1] += draw(st.sampled_from([1, -1]))
    elif defect == "decrease":
        indptr[draw(st.integers(1, n_rows))] = -1
    elif defect == "length":
        indptr = indptr[:-1]
    elif defect == "data":
        data = np.append(data, 1.0)
    return (data, indices, indptr, (n_rows, n_cols)), defect != "none"


@settings(max_examples=150, deadline=None)
@given(arrays=csr_arrays(), as_int32=st.booleans())
def test_random_csr_arrays_are_rejected_or_predicted_as_dense(arrays, as_int32):
    (data, indices, indptr, shape), broken = arrays
    X = sp.csr_matrix(np.zeros(shape))
    if as_int32 and np.abs(indices).max(initial=0) < 2**31:
        indices = indices.astype(np.int32)
    X.data, X.indices, X.indptr = data, indices, indptr
    rng = np.random.default_rng(0)
    model = FMModel(0.5, rng.normal(size=shape[1]), rng.normal(size=(shape[1], 3)))
    if broken:
        with pytest.raises(ValueError, match="indptr|index|stored values"):
            model.predict(X)
        return
    dense = np.zeros(shape)
    np.add.at(dense, (np.repeat(np.arange(shape[0]), np.diff(indptr)), indices), data)
    np.testing.assert_allclose(model.predict(X), model.predict(dense), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.predict_csr(as_fm_csr(X, np.float64)), model.predict(dense),
                               rtol=1e-12, atol=1e-12)


def test_fit_and_predict_check_the_arrays_once(monkeypatch):
    import fmlearn._validation as validation
    calls = []
    kernel = validation.first_bad_compressed
    monkeypatch.setattr(validation, "first_bad_compressed",
                        lambda *arrays: calls.append(1) or kernel(*arrays))
    X = sp.random(60, N_FEATURES, density=0.5, format="csr", random_state=0)
    reg = FMRegressor(n_factors=2, max_iter=3, early_stopping=True, n_iter_no_change=5)
    reg.fit(X, np.arange(60.0))  # the validation rows are split from the checked ones
    assert len(calls) == 1
    reg.predict(X)
    assert len(calls) == 2


OVERFLOW = (r"^{} 1: the prediction is (nan|-?inf); the input values overflow the model's "
            r"float32 arithmetic\. Scale the features or use dtype='float64'\.$")


def test_overflowing_input_raises_as_the_server_answers_400():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    big = np.array([[1.0, 0.0, 0.0, 0.0], [1e38, 1e38, 1e38, 1e38]])  # finite in float32
    reg = FMRegressor(n_factors=2, max_iter=3, random_state=0).fit(X, X[:, 0])
    clf = FMClassifier(n_factors=2, max_iter=3, random_state=0).fit(X, X[:, 0] > 0)
    for predict in (reg.predict, reg.model_.predict, clf.predict, clf.predict_proba,
                    clf.decision_function):
        with pytest.raises(ValueError, match=OVERFLOW.format("X row")):
            predict(big)
    pytest.importorskip("fastapi")
    from fmlearn.serve import codecs
    from fmlearn.serve.app import Predictor
    body = json.dumps({"instances": [{"features": row} for row in big.tolist()]}).encode()
    for est in (reg, clf):
        with pytest.raises(codecs.RequestError, match=OVERFLOW.format("instance")) as error:
            Predictor(est)(codecs.decode_json(body, 4, np.float32))
        assert error.value.status == 400
