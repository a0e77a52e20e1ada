"""Relational block structure: fits and predictions through blocks equal those on the
expanded matrix (myFM's tests/regression/test_block.py does the same check)."""
import contextlib
import io
import struct

import numpy as np
import pytest
import scipy.sparse as sp

from fmlearn import FMClassifier, FMRegressor, RelationBlock, load, save
from fmlearn._validation import as_fm_csr
from fmlearn.cli import main
from fmlearn.io import DataFormatError, dump_libsvm, load_libfm_relation
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


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("solver", ["als", "mcmc"])
def test_relational_fit_equals_the_fit_on_the_expanded_matrix(solver, weighted):
    """Both paths update the columns in order within each layer (X's, then each block's),
    drawing the same random numbers: the same chain up to round-off."""
    X, relations, expanded, y = relational_data()
    weight = np.random.default_rng(2).integers(0, 3, size=y.shape[0]) if weighted else None
    groups = np.repeat([0, 1, 2], [7, 9, 6])
    extra = dict(feature_groups=groups) if solver == "mcmc" else {}
    params = dict(solver=solver, n_factors=3, max_iter=6, dtype="float64", random_state=0)
    flat = FMRegressor(**params).fit(expanded, y, sample_weight=weight, **extra)
    rel = FMRegressor(**params).fit(X, y, sample_weight=weight, relations=relations, **extra)
    np.testing.assert_allclose(rel.factors_, flat.factors_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(rel.coef_, flat.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(rel.predict(X, relations=relations), flat.predict(expanded),
                               rtol=1e-7)


@pytest.mark.parametrize("solver", ["als", "mcmc"])
def test_relational_probit_classifier_equals_the_expanded_fit(solver):
    X, relations, expanded, y = relational_data(seed=3)
    labels = (y > np.median(y)).astype(int)
    params = dict(solver=solver, n_factors=2, max_iter=5, dtype="float64", random_state=0)
    flat = FMClassifier(**params).fit(expanded, labels)
    rel = FMClassifier(**params).fit(X, labels, relations=relations)
    np.testing.assert_allclose(rel.predict_proba(X, relations), flat.predict_proba(expanded),
                               rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("params", [dict(solver="sgd"), dict(solver="sgd", order=3),
                                    dict(solver="adam")])
def test_stochastic_solvers_with_relations_equal_the_expanded_fit(params):
    X, relations, expanded, y = relational_data(seed=4)
    params = dict(params, n_factors=2, max_iter=3, dtype="float64", random_state=0)
    flat = FMRegressor(**params).fit(expanded, y)
    rel = FMRegressor(**params).fit(X, y, relations=relations)
    np.testing.assert_allclose(rel.predict(X, relations), flat.predict(expanded), rtol=1e-10)
    labels = (y > np.median(y)).astype(int) + (y > np.quantile(y, 0.8))  # three classes
    if params["solver"] == "sgd" and "order" not in params:  # a multiclass model
        flat = FMClassifier(**params).fit(expanded, labels)
        rel = FMClassifier(**params).fit(X, labels, relations=relations)
        np.testing.assert_allclose(rel.predict_proba(X, relations),
                                   flat.predict_proba(expanded), rtol=1e-10)


def test_a_relational_model_saves_and_loads(tmp_path):
    X, relations, _, y = relational_data(seed=5)
    est = FMRegressor(solver="mcmc", n_factors=2, max_iter=5, random_state=0)
    est.fit(X, y, relations=relations)
    save(est, tmp_path / "rel.npz")
    back = load(tmp_path / "rel.npz")
    np.testing.assert_array_equal(back.predict(X, relations), est.predict(X, relations))
    assert back.relation_widths_ == [9, 6]
    est.fit(X.toarray()[:, :3], y)  # refitted without relations: the blocks are gone
    assert est.relation_widths_ == [] and save(est, tmp_path / "plain.npz")


@pytest.mark.parametrize("solver", ["als", "mcmc", "sgd"])
def test_validation_rows_with_their_relations_score_as_expanded(solver):
    X, relations, expanded, y = relational_data(seed=6)
    rows = np.arange(40, 60)
    val_relations = [RelationBlock(r.indices[rows], r.X) for r in relations]
    params = dict(solver=solver, n_factors=2, max_iter=4, dtype="float64", random_state=0)
    flat = FMRegressor(**params).fit(expanded[:40], y[:40], eval_set=(expanded[rows], y[rows]))
    train_relations = [RelationBlock(r.indices[:40], r.X) for r in relations]
    rel = FMRegressor(**params).fit(X[:40], y[:40], relations=train_relations,
                                    eval_set=(X[rows], y[rows], val_relations))
    np.testing.assert_allclose(rel.validation_scores_, flat.validation_scores_, rtol=1e-7)


@pytest.mark.parametrize("make, message", [
    (lambda X, r: [RelationBlock(r[0].indices[:-1], r[0].X)],
     r"relations\[0\]: indices must give one block row per row of X \(60\)"),
    (lambda X, r: [RelationBlock(r[0].indices + 7, r[0].X)],
     r"relations\[0\]: index \d+ at row 0 is outside \[0, 7\), the block's rows"),
    (lambda X, r: [RelationBlock(r[0].indices * 1.0, r[0].X)],
     r"relations\[0\]: indices must be integers; got dtype float64"),
    (lambda X, r: [r[0], "block"], r"relations\[1\] must be a RelationBlock or an \(indices, X\)"),
    (lambda X, r: r[0], "relations must be a list of RelationBlock"),
])
def test_bad_relations_are_named(make, message):
    X, relations, _, y = relational_data()
    with pytest.raises(ValueError, match=message):
        FMRegressor(solver="als", max_iter=1).fit(X, y, relations=make(X, relations))


def test_predict_needs_the_relations_of_the_fit():
    X, relations, _, y = relational_data()
    est = FMRegressor(solver="als", max_iter=1).fit(X, y, relations=relations)
    with pytest.raises(ValueError, match="The model was fitted with relations"):
        est.predict(X)
    with pytest.raises(ValueError, match="X and its relations have 16 features together, but "
                                         "the model expects 22"):
        est.predict(X, relations=relations[:1])
    with pytest.raises(ValueError, match="validation rows need their own relations"):
        FMRegressor(early_stopping=True).fit(X, y, relations=relations)
    with pytest.raises(ValueError, match="validation rows need their own relations"):
        FMRegressor().fit(X, y, relations=relations, eval_set=(X, y))


def write_sparse_binary(path, X, transpose=False):
    """``X`` in libFM's binary sparse format (its ``convert`` tool; ``transpose``: its
    ``transpose`` tool's ``.xt``)."""
    X = sp.csr_matrix(X.T if transpose else X)
    body = [struct.pack("<IIQII", 2, 4, X.nnz, X.shape[0], X.shape[1])]
    for r in range(X.shape[0]):
        cols, vals = X.indices[X.indptr[r]:X.indptr[r + 1]], X.data[X.indptr[r]:X.indptr[r + 1]]
        body.append(struct.pack("<I", len(cols)))
        body += [struct.pack("<If", c, v) for c, v in zip(cols, vals)]
    path.write_bytes(b"".join(body))


def write_relation(prefix, block, train, test, groups=None, transpose=False):
    write_sparse_binary(prefix.with_suffix(".xt" if transpose else ".x"), block, transpose)
    prefix.with_suffix(".train").write_text("".join(f"{i}\n" for i in train))
    # the test mapping in libFM's binary vector format
    prefix.with_suffix(".test").write_bytes(struct.pack("<III", 1, 4, len(test))
                                            + np.asarray(test, "<u4").tobytes())
    if groups is not None:
        prefix.with_suffix(".groups").write_text("".join(f"{g}\n" for g in groups))


def test_libfm_block_files_read_as_written(tmp_path):
    X, relations, _, _ = relational_data()
    block, index = relations[1].X, relations[1].indices
    write_relation(tmp_path / "item", block, index, index[:5], groups=[0, 0, 1, 1, 1, 1],
                   transpose=True)
    rel = load_libfm_relation(str(tmp_path / "item"))
    np.testing.assert_allclose(rel.X.toarray(), block.astype(np.float32).toarray())
    assert rel.train.tolist() == index.tolist() and rel.test.tolist() == index[:5].tolist()
    assert rel.groups.tolist() == [0, 0, 1, 1, 1, 1]
    (tmp_path / "item.train").write_text("0\n12\n")
    with pytest.raises(DataFormatError, match=r"item.train, line 2: block row 12 is outside"):
        load_libfm_relation(str(tmp_path / "item"))
    (tmp_path / "item.xt").write_bytes((tmp_path / "item.xt").read_bytes()[:-3])
    with pytest.raises(DataFormatError, match=r"item.xt: row 5: the file ends before its entry count"):
        load_libfm_relation(str(tmp_path / "item"))


def fmlearn(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exit:
            assert not exit.code, err.getvalue()
    return out.getvalue()


def test_cli_relation_flag_equals_the_expanded_files(tmp_path):
    """``-relation`` gives the predictions of the same rows written out expanded, with each
    relation in a group of its own after the main table's (libFM's joined meta data)."""
    X, relations, _, y = relational_data(seed=7)
    X = sp.csr_matrix(X)
    train, test = np.arange(45), np.arange(45, 60)
    for name, rows in (("train", train), ("test", test)):
        dump_libsvm(X[rows], y[rows], tmp_path / f"{name}.libfm", zero_based=True)
        wide = sp.hstack([X[rows]] + [r.X[r.indices[rows]] for r in relations]).tocsr()
        wide.data = wide.data.astype(np.float32).astype(np.float64)  # as the binary files
        dump_libsvm(wide, y[rows], tmp_path / f"{name}.wide.libfm", zero_based=True)
    names = []
    for name, r in zip(("user", "item"), relations):
        write_relation(tmp_path / name, r.X, r.indices[train], r.indices[test])
        names.append(str(tmp_path / name))
    (tmp_path / "groups.txt").write_text("0\n" * 7 + "1\n" * 9 + "2\n" * 6)
    common = ["-task", "r", "-dim", "1,1,2", "-iter", "5", "-seed", "3", "-q", "--dtype",
              "float64"]
    relational = fmlearn("train", "-train", tmp_path / "train.libfm", "-test",
                         tmp_path / "test.libfm", "-relation", ",".join(names), "-out",
                         tmp_path / "rel.txt", *common)
    expanded = fmlearn("train", "-train", tmp_path / "train.wide.libfm", "-test",
                       tmp_path / "test.wide.libfm", "-meta", tmp_path / "groups.txt", "-out",
                       tmp_path / "wide.txt", *common)
    assert relational.splitlines()[0].startswith("test:rmse")
    np.testing.assert_allclose(np.loadtxt(tmp_path / "rel.txt"),
                               np.loadtxt(tmp_path / "wide.txt"), rtol=1e-6)
