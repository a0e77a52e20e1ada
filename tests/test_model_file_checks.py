"""Model files whose arrays disagree with their header or with each other are refused.

Every kind of model file (FM by SGD, SGDA, ALS and MCMC, higher-order, multiclass,
field-aware, ranking) is crafted member by member: each file must load into an estimator
that predicts what the formula gives on its arrays and warm-starts, or raise
``ModelFileError`` naming the member. The property-based part drives the fuzz target of
``bench/fuzz_targets/model_files.py`` (truncations, byte flips, crafted arrays, claimed
shapes, header values) and requires one of those two outcomes every time.
"""
import io
import re
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmlearn import ModelFileError, load

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from fuzz_targets.model_files import (CRAFTS, GOOD, HEADER_VALUES, SEEDS, array_names,  # noqa: E402
                                      craft, flip, header_of, header_paths, read_array,
                                      run_isolated, run_model_file, seed_data, seed_files,
                                      seed_target, set_path, truncate, with_array, with_header,
                                      with_npy_shape)

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seeds():
    return seed_files()


def load_bytes(data, tmp_path):
    path = tmp_path / "crafted.fm"
    path.write_bytes(data)
    return load(path)


def array(name, change):
    """A mutation: array ``name`` replaced by ``change(a copy of it)``."""
    return lambda data: with_array(data, name, change(read_array(data, name).copy()))


def header(change):
    """A mutation: the header replaced by ``change(header)``."""
    return lambda data: with_header(data, change)


def at(index, value):
    def change(a):
        a[index] = value
        return a
    return change


def params(**changes):
    return header(lambda h: {**h, "params": {**h["params"], **changes}})


def attribute(name, value):
    return header(lambda h: {**h, "attributes": {**h["attributes"], name: value}})


def state_field(name, value):
    def change(h):
        state = h["attributes"]["_solver_state"]
        state["fields"][name] = value
        return h
    return header(change)


def big_fields(a):
    a[5] = 10**8
    return a


CRAFTED = [
    # field-aware: 6 features in 2 fields
    ("ffm", array("model.fields", big_fields),
     "array 'model.fields' holds 100000000 at index 5; the model has 2 fields"),
    ("ffm", array("model.fields", at(0, -1)), "'model.fields' holds -1 at index 0"),
    ("ffm", array("model.fields", lambda a: a.astype(bool)),
     r"'model.fields' has dtype \|b1; expected <i4"),
    ("ffm", array("model.fields", lambda a: a.astype(np.int64)),
     "'model.fields' has dtype <i8; expected <i4"),
    ("ffm", array("model.fields", lambda a: a[:5]),
     r"'model.fields' has shape \[5\]; expected \[n_features=6\]"),
    ("ffm", array("model.factors", lambda a: np.concatenate([a, a[..., :1]], axis=2)),
     r"'model.factors' has shape \[6, 2, 3\]; expected \[n_features=6, n_fields=2, "
     r"n_factors=2\]"),
    ("ffm", header(lambda h: set_path(h, ["model", "fields", "normalize"], "yes")),
     "model field 'normalize' is 'yes'; expected true or false"),
    ("ffm_classifier", array("solver_state.acc_factors", lambda a: a[:, :2]),
     r"'solver_state.acc_factors' has shape \[6, 2, 2\]; expected \[n_features=6, "
     r"n_fields=3, n_factors=2\]"),
    # second-order FM, float32, 6 features, n_factors=2
    ("fm_sgd", array("model.factors", lambda a: a[:5]),
     r"'model.factors' has shape \[5, 2\]; expected \[n_features=6, n_factors=2\]"),
    ("fm_sgd", array("model.factors", lambda a: a.astype(bool)),
     r"'model.factors' has dtype \|b1; expected <f4 \(the model's dtype\)"),
    ("fm_sgd", array("model.factors", lambda a: a.astype(np.int32)), "has dtype <i4; expected <f4"),
    ("fm_sgd", array("model.coef", lambda a: a.astype(np.float64)), "has dtype <f8; expected <f4"),
    ("fm_sgd", array("model.coef", lambda a: a.astype(">f4")), "has dtype >f4; expected <f4"),
    ("fm_sgd", array("model.coef", lambda a: a[None]),
     r"'model.coef' has shape \[1, 6\]; expected \[n_features=6\]"),
    ("fm_sgd", array("model.coef", at(3, np.nan)),
     "'model.coef' holds nan at index 3; parameters must be finite"),
    ("fm_sgd", array("model.factors", at((2, 1), -np.inf)),
     r"'model.factors' holds -inf at index \(2, 1\)"),
    ("fm_sgd", header(lambda h: set_path(h, ["model", "fields", "intercept"], float("nan"))),
     "model field 'intercept' is nan; expected a finite number"),
    ("fm_sgd", header(lambda h: set_path(h, ["model", "fields", "intercept"], True)),
     "model field 'intercept' is True"),
    ("fm_sgd", params(n_factors=3),
     r"'model.factors' has shape \[6, 2\]; expected \[n_features=6, n_factors=3\]"),
    ("fm_sgd", header(lambda h: {**h, "n_features_in_": 10**8}),
     r"'model.coef' has shape \[6\]; expected \[n_features=100000000\]"),
    ("fm_sgd", header(lambda h: {**h, "dtype": "float64"}),
     "the header's dtype is 'float64' but the parameters say dtype='float32'"),
    ("fm_sgd", header(lambda h: {**h, "dtype": "float64",
                                 "params": {**h["params"], "dtype": "float64"}}),
     "'model.coef' has dtype <f4; expected <f8"),
    ("fm_sgd", params(n_factors=-1), "invalid parameters: The 'n_factors' parameter"),
    ("fm_sgd", params(n_jobs=0), "n_jobs=0"),
    ("fm_sgd", header(lambda h: {**h, "feature_names_in_": ["a", "b"]}),
     "feature_names_in_ is not a list of 6 names"),
    ("fm_sgd", header(lambda h: {**h, "classes_": [0, 1], "classes_dtype": "<i8"}),
     r"FMRegressor has no classes_; the header lists \[0, 1\]"),
    ("fm_sgd", header(lambda h: {**h, "model_kind": "ffm"}),
     "the header's model_kind 'ffm' is not the model's kind 'fm'"),
    ("fm_sgd", header(lambda h: {**h, "model_kind": ["torch-state"]}),
     r"the header's model_kind \['torch-state'\] is not the model's kind 'fm'"),
    ("fm_sgd", attribute("target_range_", {"tuple": [2.0, float("nan")]}),
     "target_range_ is .*; expected finite"),
    ("fm_sgd", attribute("target_range_", {"tuple": [2.0, 1.0]}), "target_range_ is"),
    ("fm_sgd", attribute("t_", -5), "t_ is -5; expected an integer >= 0"),
    ("fm_sgd", header(lambda h: {**h, "attributes": {k: v for k, v in h["attributes"].items()
                                                       if k != "_solver_state"}}),
     "the fitted attribute _solver_state is missing"),
    # the solver state a warm start continues from
    ("fm_sgd", array("solver_state.acc_factors", lambda a: a[:5]),
     r"'solver_state.acc_factors' has shape \[5, 2\]; expected \[n_features=6, n_factors=2\]"),
    ("fm_sgd", array("solver_state.acc_coef", at(0, 0.0)),
     "'solver_state.acc_coef' holds 0.0 at index 0; it must be finite and > 0"),
    ("fm_sgd", array("solver_state.step", lambda a: a.astype(np.float64)),
     "'solver_state.step' has dtype <f8; expected <i8"),
    ("fm_sgd", state_field("acc_coef", [1.0] * 6),
     "_solver_state field 'acc_coef' is a list; expected an array"),
    ("fm_sgd", params(solver="als"), "_solver_state is a sgd_state; expected a hyperparameters"),
    ("ranker", array("solver_state.acc_coef", lambda a: a[:2]),
     r"'solver_state.acc_coef' has shape \[2\]; expected \[n_features=6\]"),
    ("ranker", array("model.factors", lambda a: a.T.copy()),
     r"'model.factors' has shape \[2, 6\]; expected \[n_features=6, n_factors=2\]"),
    # higher order: factors of orders 2 and 3
    ("hofm", params(order=4),
     r"'model.factors' has shape \[2, 6, 2\]; expected \[order - 1=3, n_features=6, "
     r"n_factors=2\]"),
    ("hofm", array("model.factors", lambda a: a[:1]), r"'model.factors' has shape \[1, 6, 2\]"),
    ("hofm", params(solver="als"), "order=3 models are learned by solver='sgd'"),
    # multiclass: 3 classes
    ("multiclass", array("model.intercept", lambda a: a[:2]),
     r"'model.intercept' has shape \[2\]; expected \[n_classes=3\]"),
    ("multiclass", header(lambda h: {**h, "classes_": [0, 1, 2, 3]}),
     r"'model.intercept' has shape \[3\]; expected \[n_classes=4\]"),
    ("multiclass", header(lambda h: {**h, "classes_": [0, 1]}),
     "the model is a fm_multiclass; FMClassifier with these parameters and classes holds a fm"),
    ("multiclass", header(lambda h: {**h, "classes_": [0, 1, 1]}), "not distinct labels"),
    ("multiclass", params(solver="als"),
     "classes_ holds 3 labels, but FMClassifier with solver='als', order=2 learns two"),
    ("multiclass", array("model.coef", lambda a: a[:, :5]),
     r"'model.coef' has shape \[3, 5\]; expected \[n_classes=3, n_features=6\]"),
    ("multiclass", array("solver_state.acc_intercept", lambda a: a[:1]),
     r"'solver_state.acc_intercept' has shape \[1\]; expected \[n_classes=3\]"),
    # MCMC: 6 kept samples
    ("mcmc_regressor", array("model.intercepts", lambda a: a[:5]),
     r"'model.coefs' has shape \[6, 6\]; expected \[n_samples=5, n_features=6\]"),
    ("mcmc_regressor", array("model.intercepts", lambda a: a.astype(np.float32)),
     "'model.intercepts' has dtype <f4; expected <f8"),
    ("mcmc_regressor", array("model.coefs", lambda a: a.astype(np.float64)),
     "'model.coefs' has dtype <f8; expected <f4"),
    ("mcmc_regressor", array("model.factors_samples", lambda a: a[:, :, :1]),
     r"'model.factors_samples' has shape \[6, 6, 1\]; expected \[n_samples=6, n_features=6, "
     r"n_factors=2\]"),
    ("mcmc_regressor", header(lambda h: set_path(h, ["model", "fields", "link"], "probit")),
     "model field 'link' is 'probit'; expected 'identity'"),
    ("mcmc_classifier", header(lambda h: set_path(h, ["model", "fields", "link"], "identity")),
     "model field 'link' is 'identity'; expected 'probit'"),
    ("mcmc_regressor", array("solver_state.groups", at(0, 5)),
     "'solver_state.groups' holds 5 at index 0; the model has 1 feature groups"),
    ("mcmc_regressor", array("solver_state.hyper.lam_v", lambda a: a[:, :1]),
     r"'solver_state.hyper.lam_v' has shape \[1, 1\]; expected \[n_groups=1, n_factors=2\]"),
    ("mcmc_regressor", array("solver_state.hyper.alpha", at(0, -1.0)),
     "'solver_state.hyper.alpha' holds -1.0 at index 0; it must be finite and > 0"),
    ("mcmc_regressor", array("solver_state.trace.mu_v", lambda a: a[:4]),
     r"'solver_state.trace.mu_v' has shape \[4, 1, 2\]; expected \[n_iter=6, n_groups=1, "
     r"n_factors=2\]"),
    ("mcmc_classifier", array("solver_state.sums.q", lambda a: a.astype(np.float64)),
     "'solver_state.sums.q' has dtype <f8; expected <f4"),
    ("mcmc_classifier", array("solver_state.sums.q", lambda a: a[:1]),
     r"'solver_state.sums.q' has shape \[1, \d+\]; expected \[n_factors=2, n_rows=\d+\]"),
    ("mcmc_classifier", array("solver_state.sums.scores", at(3, np.inf)),
     "'solver_state.sums.scores' holds inf at index 3; parameters must be finite"),
    ("mcmc_classifier", state_field("sums", [1, 2]),
     "_solver_state field 'sums' is not the training rows' scores and q"),
    ("mcmc_regressor", attribute("_burn_in", 10),
     "keeps 6 samples after 6 draws with a burn-in of 10"),
    ("mcmc_regressor", state_field("current", None),
     "_solver_state field 'current' is a NoneType; expected a fm"),
    ("mcmc_regressor", header(lambda h: {**h, "model_kind": "fm",
                                         "model": h["attributes"]["_solver_state"]["fields"][
                                             "current"]}),
     "the model is a fm; FMRegressor with these parameters and classes holds a fm_samples"),
    # SGDA: penalties learned per group
    ("fm_sgda", array("solver_state.groups", at(0, 9)),
     "'solver_state.groups' holds 9 at index 0; the model has 1 feature groups"),
    ("fm_sgda", array("solver_state.lam_v", at((0, 1), -1.0)),
     r"'solver_state.lam_v' holds -1.0 at index \(0, 1\); it must be finite and >= 0"),
    ("fm_sgda", array("solver_state.val_next", at(0, -1)), "a row index must be >= 0"),
    ("fm_sgda", array("solver_state.grad_factors", lambda a: a[:3]),
     r"'solver_state.grad_factors' has shape \[3, 2\]; expected \[n_features=6, n_factors=2\]"),
    # ALS: fixed priors
    ("fm_als_classifier", array("solver_state.mu_w", lambda a: a[:0]),
     r"'solver_state.mu_w' has shape \[0\]: n_groups must be at least 1"),
    ("fm_als_classifier", array("solver_state.alpha", lambda a: np.ones(2)),
     r"'solver_state.alpha' has shape \[2\]; expected \[1\]"),
]
IDS = [f"{seed}-{i}" for i, (seed, _, _) in enumerate(CRAFTED)]


@pytest.mark.parametrize("seed, mutation, problem", CRAFTED, ids=IDS)
def test_crafted_files_are_refused_naming_the_member(seeds, tmp_path, seed, mutation, problem):
    data = mutation(seeds[seed])
    with pytest.raises(ModelFileError, match=f"^{re.escape(str(tmp_path))}.*: .*{problem}"):
        load_bytes(data, tmp_path)


def test_every_seed_loads_predicts_the_formula_and_warm_starts(seeds, tmp_path):
    X, y = seed_data()
    for name, data in seeds.items():
        assert run_model_file(data).kind == "correct", name
        estimator = load_bytes(data, tmp_path)
        before = estimator.n_iter_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.set_params(warm_start=True, max_iter=2).fit(X, seed_target(name, y))
        assert estimator.n_iter_ == 2 and before > 0, name
        assert run_model_file(data).kind == "correct", name


def test_the_reference_catches_a_wrong_prediction(seeds, tmp_path):
    """The fuzz target's check has teeth: predictions off by 1e-3 are 'wrong'."""
    from fuzz_targets.model_files import compare, probe_rows
    for name in ("ffm", "hofm", "mcmc_classifier", "multiclass"):
        estimator = load_bytes(seeds[name], tmp_path)
        X = probe_rows(estimator.n_features_in_)
        assert compare(estimator, X).kind == "correct", name
        finish = estimator._finish_scores
        estimator._finish_scores = lambda scores: finish(scores) + 1e-3
        assert compare(estimator, X).kind == "wrong", name


def crafted_ffm(seeds):
    return with_array(seeds["ffm"], "model.fields", big_fields(read_array(seeds["ffm"],
                                                                          "model.fields")))


def test_the_crafted_ffm_file_no_longer_kills_the_process(seeds):
    """It loaded, then predicting a 2-feature row read out of bounds: signal 11."""
    outcome = run_isolated(crafted_ffm(seeds))
    assert outcome.kind == "refused", outcome
    assert "'model.fields' holds 100000000 at index 5" in outcome.detail


def test_serve_refuses_to_start_on_the_crafted_ffm_file(seeds, tmp_path):
    pytest.importorskip("fastapi")
    from fmlearn.serve import create_app
    path = tmp_path / "served.fm"
    path.write_bytes(crafted_ffm(seeds))
    with pytest.raises(ModelFileError, match="'model.fields' holds 100000000 at index 5"):
        create_app(str(path))


# --- fuzzing -------------------------------------------------------------------------------------
SEED_NAMES = st.sampled_from(sorted(SEEDS))


def assert_good(outcome):
    assert outcome.kind in GOOD, outcome


def offset_classes(data):
    """An offset in every part of a zip archive: each member's local header, its name, its
    data (start, middle, end), the central directory and its end record."""
    offsets = {0, 1, 4, 8, len(data) - 22, len(data) - 1}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            start = info.header_offset
            body = start + 30 + len(info.filename)
            offsets |= {start, start + 26, start + 30, body, body + 1,
                        body + info.compress_size // 2, body + info.compress_size - 1}
        offsets.add(archive.start_dir)
    return sorted(o for o in offsets if 0 <= o < len(data))


@pytest.mark.parametrize("name", ["ffm", "mcmc_classifier", "multiclass"])
def test_truncation_at_every_offset_class(seeds, name):
    data = seeds[name]
    for offset in offset_classes(data):
        assert run_model_file(truncate(data, offset)).kind == "refused", offset


@FUZZ
@given(name=SEED_NAMES, where=st.floats(0, 1, exclude_max=True))
def test_truncation_anywhere(seeds, name, where):
    data = seeds[name]
    assert run_model_file(truncate(data, int(where * len(data)))).kind == "refused"


@FUZZ
@given(name=SEED_NAMES, where=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_byte_flips(seeds, name, where, mask):
    data = seeds[name]
    assert_good(run_model_file(flip(data, int(where * len(data)), mask)))


@FUZZ
@given(name=SEED_NAMES, pick=st.integers(0, 10**6), how=st.sampled_from(CRAFTS))
def test_crafted_arrays(seeds, name, pick, how):
    """Other dtypes (bool, ints, float16, big-endian, objects that must never unpickle),
    other shapes, NaN, inf, 1e30, -1, 10**8 and 0 in any array of any kind."""
    data = seeds[name]
    names = array_names(data)
    member = names[pick % len(names)]
    assert_good(run_model_file(with_array(data, member, craft(read_array(data, member), how))))


@FUZZ
@given(name=SEED_NAMES, pick=st.integers(0, 10**6), axis=st.integers(0, 2),
       size=st.sampled_from([2**31, 10**12, 2**62 // 8]))
def test_huge_claimed_shapes_are_refused_before_reading(seeds, name, pick, axis, size):
    data = seeds[name]
    names = array_names(data)
    member = names[pick % len(names)]
    shape = list(read_array(data, member).shape) or [1]
    shape[axis % len(shape)] = size
    assert run_model_file(with_npy_shape(data, member, shape)).kind == "refused"


@FUZZ
@given(name=SEED_NAMES, pick=st.integers(0, 10**6), value=st.sampled_from(HEADER_VALUES))
def test_header_values(seeds, name, pick, value):
    data = seeds[name]
    paths = header_paths(header_of(data))
    path = paths[pick % len(paths)]
    assert_good(run_model_file(with_header(data, lambda h: set_path(h, path, value))))
