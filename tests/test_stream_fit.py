"""partial_fit_file as fit: validation scores, early stopping that keeps the best pass, a progress
bar, passes counted from 1, and shuffling that trains a file sorted by label as well as a shuffled
one; every estimator with partial_fit."""
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error

from fmlearn import FFMClassifier, FMClassifier, FMRanker, FMRegressor
from fmlearn.io import (DataFormatError, dump_ffm, dump_libsvm, dump_recordio, iter_chunks,
                        load_libsvm, partial_fit_file)
from fmlearn.io._shuffle import chunk_spans, iter_spans


def _ratings(seed, n_rows=3000, n_users=30, n_items=20, noise=0.3):
    """One-hot (user, item) rows; an additive user + item effect plus noise."""
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, n_users, n_rows), rng.integers(0, n_items, n_rows)
    X = sp.hstack([sp.eye(n_users, format="csr")[users],
                   sp.eye(n_items, format="csr")[items]]).tocsr()
    effect = rng.normal(size=n_users)[users] + rng.normal(size=n_items)[items]
    return X, effect + noise * rng.normal(size=n_rows)


def _sorted_by_label(tmp_path, seed):
    """A training file with every 0 first and every 1 after, and held-out rows."""
    X, target = _ratings(seed)
    y = (target > 0).astype(int)
    order = np.argsort(y[:2000], kind="stable")
    path = tmp_path / "sorted.libfm"
    dump_libsvm(X[:2000][order], y[:2000][order], path)
    return path, X[2000:], y[2000:]


@pytest.mark.parametrize("seed", [0, 1])
def test_shuffling_trains_a_file_sorted_by_label(tmp_path, seed):
    path, X_val, y_val = _sorted_by_label(tmp_path, seed)
    accuracy = {}
    for how, options in {"file order": dict(shuffle=False, block_bytes=4000),
                         "default": dict(block_bytes=4000),  # 16 random pieces of 250 bytes
                         "pooled": dict(block_bytes=500, shuffle_buffer=400)}.items():
        clf = FMClassifier(n_factors=2, random_state=0)
        partial_fit_file(clf, path, n_features=50, classes=[0, 1], n_epochs=2, **options)
        accuracy[how] = clf.score(X_val, y_val)
    # In file order the last chunks are all 1s and the model predicts 1 for most rows
    # (0.71-0.73 measured); shuffled, 0.91-0.92.
    assert accuracy["file order"] < 0.8 < 0.88 < min(accuracy["default"], accuracy["pooled"]), \
        accuracy


def test_early_stopping_keeps_the_best_pass(tmp_path):
    X, y = _ratings(0, n_rows=600)
    path = tmp_path / "rows.libfm"
    dump_libsvm(X[:300], y[:300], path)
    reg = FMRegressor(n_factors=8, eta0=0.3, reg_linear=0, reg_factors=0, init_std=0.3, tol=None,
                      random_state=0)
    partial_fit_file(reg, path, n_features=50, n_epochs=40, eval_set=(X[300:], y[300:]),
                     early_stopping=True, n_iter_no_change=3, block_bytes=2000)
    scores = reg.validation_scores_
    assert 3 < reg.n_iter_ < 40 and len(scores) == len(reg.loss_curve_) == reg.n_iter_
    assert reg.best_validation_score_ == max(scores) > scores[-1]  # the last pass was worse
    assert np.argmax(scores) == reg.n_iter_ - 4  # and so were the two before
    # fit's default score for a regressor, the negative RMSE, of the model kept
    kept = -root_mean_squared_error(y[300:], reg.predict(X[300:]))
    assert kept == pytest.approx(reg.best_validation_score_, rel=1e-6)


def test_validation_scores_are_fits(tmp_path):
    path, X_val, y_val = _sorted_by_label(tmp_path, 0)
    clf = FMClassifier(n_factors=2, random_state=0, tol=None)
    partial_fit_file(clf, path, n_features=50, classes=[0, 1], n_epochs=3, block_bytes=500,
                     eval_set=(X_val, y_val), shuffle_buffer=400)
    assert clf.n_iter_ == 3 and len(clf.validation_scores_) == 3
    # the default: the mean log-likelihood of the labels, of the last pass's model
    assert clf.validation_scores_[-1] == pytest.approx(
        -log_loss(y_val, clf.predict_proba(X_val)), rel=1e-5)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    clf = FMClassifier(n_factors=2, random_state=0, tol=None, scoring="roc_auc")
    partial_fit_file(clf, path, n_features=50, classes=[0, 1], n_epochs=2, block_bytes=500,
                     eval_set=(X_val, y_val))
    assert clf.validation_scores_[-1] == roc_auc_score(y_val, clf.decision_function(X_val))
    partial_fit_file(clf, path, n_features=50, block_bytes=500)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_progress_bar_and_log_lines_count_passes_from_one(tmp_path, capsys):
    X, y = _ratings(0, n_rows=500)
    path = tmp_path / "rows.libfm"
    dump_libsvm(X, y, path)
    passes = []
    reg = FMRegressor(verbose=1, random_state=0, tol=None)
    partial_fit_file(reg, path, n_features=50, n_epochs=2, block_bytes=2000,
                     callback=lambda n, rows: passes.append((n, rows)))
    err = capsys.readouterr().err
    assert "FMRegressor pass 1/2" in err and "FMRegressor pass 2/2" in err
    assert re.search(r"[\d.]+k? rows/s", err) and "pass 0" not in err
    assert [n for n, _ in passes] == sorted(n for n, _ in passes)
    assert passes[0][0] == 1 and passes[-1] == (2, 1000)
    reg = FMRegressor(verbose=2, random_state=0, tol=None)  # one line per pass, none per chunk
    partial_fit_file(reg, path, n_features=50, n_epochs=2, block_bytes=2000,
                     eval_set=(X, y))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["FMRegressor pass 1/2",
                                                      "FMRegressor pass 2/2"]
    # The validation RMSE printed as RMSE, not as the negated score validation_scores_ keep.
    assert all(re.search(r"500 rows in .* rows/s\), loss .*, val_rmse \d", line) for line in lines)
    assert reg.verbose == 2
    partial_fit_file(FMRegressor(random_state=0), path, n_features=50, verbose=1)
    assert "rows/s" in capsys.readouterr().err


def test_shuffle_buffer_pools_rows_of_several_chunks(tmp_path):
    X, y = _ratings(0, n_rows=1000)
    path = tmp_path / "rows.libfm"
    dump_libsvm(X, y, path)
    seen = []
    partial_fit_file(FMRegressor(random_state=0), path, n_features=50, block_bytes=300,
                     shuffle_buffer=300, callback=lambda n, rows: seen.append(rows))
    calls = np.diff([0, *seen])
    assert seen[-1] == 1000 and (calls[:-1] >= 300).all() and (calls < 300 + 40).all()


@pytest.mark.parametrize("make", [
    lambda: FMRegressor(solver="sgd", random_state=0),
    lambda: FMRegressor(solver="sgd", order=3, random_state=0),
    lambda: FMRegressor(solver="als", random_state=0),
    lambda: FMRegressor(solver="mcmc", n_kept_samples=20, random_state=0),
    lambda: FMClassifier(solver="sgd", random_state=0),
    lambda: FMClassifier(solver="als", random_state=0),
    lambda: FMClassifier(solver="mcmc", n_kept_samples=20, random_state=0),
], ids=["sgd", "hofm", "als", "mcmc", "clf-sgd", "clf-als", "clf-mcmc"])
def test_every_learner_with_partial_fit_trains_from_a_file(tmp_path, make):
    X, target = _ratings(0, n_rows=1500, noise=0.1)
    estimator = make()
    y = (target > 0).astype(int) if is_classifier(estimator) else target
    path = tmp_path / "rows.libfm"
    dump_libsvm(X[:1000], y[:1000], path)
    classes = [0, 1] if is_classifier(estimator) else None
    partial_fit_file(estimator, path, n_features=50, classes=classes, n_epochs=4,
                     block_bytes=4000, shuffle_buffer=1000, eval_set=(X[1000:], y[1000:]))
    assert np.isfinite(estimator.validation_scores_).all()
    # R^2 or accuracy on held-out rows; a constant model scores about 0 or 0.5
    assert estimator.score(X[1000:], y[1000:]) > 0.8


def test_ffm_and_many_classes_train_from_files(tmp_path):
    X, target = _ratings(0, n_rows=1500, noise=0.1)
    fields = np.repeat([0, 1], [30, 20])
    y = (target > 0).astype(int)
    dump_ffm(X[:1000], y[:1000], fields, tmp_path / "rows.ffm")
    ffm = FFMClassifier(fields=fields, n_factors=2, random_state=0)
    partial_fit_file(ffm, tmp_path / "rows.ffm", n_features=50, classes=[0, 1], n_epochs=4,
                     block_bytes=4000, eval_set=(X[1000:], y[1000:]))
    assert ffm.score(X[1000:], y[1000:]) > 0.8
    y = np.digitize(target, [-1, 1])  # three classes
    dump_recordio(X[:1000], y[:1000], tmp_path / "rows.rec")
    clf = FMClassifier(random_state=0)
    partial_fit_file(clf, tmp_path / "rows.rec", n_features=50, classes=[0, 1, 2], n_epochs=4,
                     block_bytes=4000, eval_set=(X[1000:], y[1000:]))
    assert clf.score(X[1000:], y[1000:]) > 0.7


@pytest.mark.parametrize("format", ["libsvm", "ffm", "recordio"])
def test_chunks_in_any_order_hold_every_row_once(tmp_path, format):
    X, y = _ratings(1, n_rows=700)
    path = tmp_path / "rows"
    if format == "libsvm":
        dump_libsvm(X, y, path)
    elif format == "ffm":
        dump_ffm(X, y, np.repeat([0, 1], [30, 20]), path)
    else:
        dump_recordio(X, y.astype(np.float32), path)
    spans = chunk_spans(path, format, 1000)
    assert spans[0][0] == 0 and spans[-1][1] == path.stat().st_size and len(spans) > 5
    assert all(end == start for (_, end, _), (start, _, _) in zip(spans, spans[1:]))

    def read(source, n_bytes):
        return iter_chunks(source, n_features=50, format=format, block_bytes=n_bytes)

    order = np.random.default_rng(0).permutation(len(spans))
    chunks = list(iter_spans(path, spans, order, read))
    by_span = [next(iter(read(path, 10**9)))]  # the whole file in one chunk
    got = sp.vstack([X for X, _ in chunks]).toarray(), np.concatenate([y for _, y in chunks])
    want = by_span[0][0].toarray(), by_span[0][1]
    rows_got = sorted(map(tuple, np.column_stack([got[1], got[0]])))
    rows_want = sorted(map(tuple, np.column_stack([want[1], want[0]])))
    assert rows_got == rows_want


def test_errors_name_the_line_of_the_whole_file_in_shuffled_order(tmp_path):
    X, y = _ratings(0, n_rows=300)
    path = tmp_path / "rows.libfm"
    dump_libsvm(X, y, path)
    lines = path.read_text().splitlines(keepends=True)
    lines[256] = "1 3:x\n"
    path.write_text("".join(lines))
    with pytest.raises(DataFormatError, match=r"rows.libfm, line 257, column 3: the value in '3:x' is not"):
        partial_fit_file(FMRegressor(), path, n_features=50, block_bytes=500, shuffle=True)
    X, y = _ratings(0, n_rows=300)
    dump_recordio(X[:200], y[:200].astype(np.float32), tmp_path / "a.rec")
    dump_recordio(X[:1], None, tmp_path / "b.rec")  # a record without a label
    (tmp_path / "c.rec").write_bytes((tmp_path / "a.rec").read_bytes()
                                     + (tmp_path / "b.rec").read_bytes())
    for shuffle in (False, True):
        with pytest.raises(DataFormatError, match=r"c.rec, record 201: .*label"):
            partial_fit_file(FMRegressor(), tmp_path / "c.rec", n_features=50, block_bytes=500,
                             shuffle=shuffle)


def test_refusals_come_before_the_first_pass(tmp_path):
    X, y = _ratings(0, n_rows=100)
    path = tmp_path / "rows.libfm"
    dump_libsvm(X, y, path)
    with pytest.raises(ValueError, match=r"early_stopping needs eval_set=\(X_val, y_val\)"):
        partial_fit_file(FMRegressor(early_stopping=True), path, n_features=50)
    with pytest.raises(ValueError, match="not available with solver='mcmc'"):
        partial_fit_file(FMRegressor(solver="mcmc"), path, n_features=50, eval_set=(X, y),
                         early_stopping=True)
    with pytest.raises(AttributeError, match="FMRegressor lacks: partial_fit is not available "
                                             "with solver='sgda'"):
        partial_fit_file(FMRegressor(solver="sgda"), path, n_features=50)
    with pytest.raises(AttributeError, match="which FMRanker lacks"):
        partial_fit_file(FMRanker(), path, n_features=50)
    reg = FMRegressor()
    with pytest.raises(ValueError, match="X_val has 49 features, but the model expects 50"):
        partial_fit_file(reg, path, n_features=50, eval_set=(X[:, :49], y))
    with pytest.raises(ValueError, match=r"y_val must hold one target per row of X_val \(100\)"):
        partial_fit_file(reg, path, n_features=50, eval_set=(X, y[:5]))
    with pytest.raises(ValueError, match=r"y holds labels \[7\] that are not among the classes"):
        partial_fit_file(FMClassifier(), path, n_features=50, classes=[0, 1],
                         eval_set=(X, np.full(100, 7)))
    with pytest.raises(ValueError, match="n_epochs must be an integer >= 1; got 0"):
        partial_fit_file(reg, path, n_features=50, n_epochs=0)
    assert not hasattr(reg, "model_")
    (tmp_path / "empty.libfm").write_text("# nothing\n")
    for shuffle in (False, True):
        with pytest.raises(DataFormatError, match="empty.libfm: the file holds no data rows"):
            partial_fit_file(reg, tmp_path / "empty.libfm", n_features=50, format="libsvm",
                             shuffle=shuffle)


def test_passes_in_one_call_equal_one_call_per_pass(tmp_path):
    """Several passes in one call equal the same passes one call at a time, in file order."""
    X, y = _ratings(0, n_rows=400)
    path = tmp_path / "rows.libfm"
    dump_libsvm(X, y, path)
    once = partial_fit_file(FMRegressor(random_state=0, tol=None), path, n_features=50,
                            n_epochs=3, shuffle=False, block_bytes=1000)
    apart = FMRegressor(random_state=0)
    for _ in range(3):
        partial_fit_file(apart, path, n_features=50, shuffle=False, block_bytes=1000)
    np.testing.assert_array_equal(once.factors_, apart.factors_)
    assert once.t_ == apart.t_ == 1200
    X2, y2 = load_libsvm(path, n_features=50)
    assert once.score(X2, y2) == apart.score(X2, y2)
