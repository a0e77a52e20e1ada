"""Click-through models side by side: FM (AdaGrad and FTRL), FFM (AdaGrad and FTRL) and FwFM,
against xLearn's FM and FFM in the same run. Writes bench/results/ctr.json.

Sections:

- **frappe, k=64** (``../shared/data/frappe``: train on the reconstructed training file, choose
  the settings and the epoch on the validation file, report on the test file): test AUC,
  log-loss, the number of parameters and seconds per epoch (one thread, one epoch of each model
  in turn, five rounds) of FFM, FwFM (at k=64,
  and at the largest k with at most a tenth of FFM's parameters) and FM (AdaGrad and FTRL).
  LIBFFM's FFM on these files: AUC 0.9826, log-loss 0.1357 (quoted in bench/ffm.py).
- **Criteo sample** (``../shared/data/criteo_libffm_sample``, LIBFFM's and xLearn's toy files):
  read by default with a column per (field, feature) token; the largest difference between
  a fitted FFM's scores and LIBFFM's formula written out over the file's tokens.
- **Pipelines**: ``GridSearchCV`` over a ``ColumnTransformer`` + ``FFMClassifier(fields="auto")``
  whose refits change the width (the one-hot encoder's ``min_frequency`` is searched).
- **a9a and mushroom** (``../shared/data``): the same models with k=8 beside xLearn's FM and
  FFM, each stopping early on the same validation rows (20 % of the training file), tested
  on the test file, three alternating rounds of fits (seconds min/median/max). Their fields are
  the original attributes, found from the one-hot columns (a column starts a new field when it
  occurs in a row with a column of the current one). FFM and FwFM take ``normalize="auto"``
  (xLearn normalises rows by default); their seconds include both fits.

    python bench/ctr.py [--quick]
"""
import argparse
import contextlib
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from common import alternate, load_frappe, peer, require, spread, summary_row, write_results
from ffm import FRAPPE_FIELD_STARTS, LIBFFM
from sklearn.compose import ColumnTransformer
from sklearn.datasets import dump_svmlight_file, load_svmlight_file
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from fmlearn import FFMClassifier, FMClassifier, FwFMClassifier
from fmlearn.io import dump_ffm, load_ffm

os.environ.setdefault("USER", "bench")  # xLearn aborts when USER is unset
REPEATS = 5


def metrics(est, X, y):
    """Test AUC and log-loss of a fitted classifier."""
    p = est.predict_proba(X)[:, 1]
    return {"test_auc": float(roc_auc_score(y, p)), "test_logloss": float(log_loss(y, p))}


def n_parameters(est):
    """The number of learned numbers of a fitted FM, FFM or FwFM."""
    model = est.model_
    extra = model.field_weights.size if hasattr(model, "field_weights") else 0
    return int(1 + model.coef.size + model.factors.size + extra)


def epoch_timer(est, X, y):
    """A callable running one warm-started epoch of a copy of ``est``'s settings on one thread,
    after a warm-up epoch."""
    timed = type(est)(**{**est.get_params(), "max_iter": 1, "tol": None, "warm_start": True,
                         "early_stopping": False, "n_jobs": 1}).fit(X, y)
    return lambda: timed.fit(X, y)


def choose(make, grid, train, valid, test):
    """Fit ``make(**params)`` for each of ``grid`` with early stopping on ``valid``; the best
    on validation (``"estimator"``), reported on ``test``."""
    trials = []
    for params in grid:
        start = time.perf_counter()
        est = make(**params).fit(*train, eval_set=valid)
        trials.append({"params": params, "epochs": est.n_iter_,
                       "validation_logloss": -est.best_validation_score_,
                       "fit_seconds": time.perf_counter() - start, "estimator": est})
    best = min(trials, key=lambda t: t["validation_logloss"])
    est = best["estimator"]
    return {"chosen": best["params"], "epochs": best["epochs"], "parameters": n_parameters(est),
            **metrics(est, *test), "estimator": est,
            "trials": [{k: v for k, v in t.items() if k != "estimator"} for t in trials]}


EARLY = dict(max_iter=100, early_stopping=True, n_iter_no_change=3, tol=0.0, random_state=0)


def frappe(quick):
    train, valid, test = load_frappe(np.float32)
    fields = np.repeat(np.arange(10), np.diff(FRAPPE_FIELD_STARTS))
    k = 8 if quick else 64
    ffm_grid = [dict(eta0=0.2)]  # LIBFFM's settings (reg 2e-5)
    fwfm_grid = [dict(eta0=eta0) for eta0 in (0.1, 0.2, 0.3)]
    fm_grid = [dict(eta0=0.1, reg_linear=1e-4, reg_factors=1e-3),
               dict(eta0=0.2, reg_linear=1e-4, reg_factors=3e-3)]
    ftrl_grid = [dict(solver="ftrl", eta0=0.5, reg_linear=1e-3, reg_factors=l2)
                 for l2 in (0.3, 1.0)]
    if quick:
        fwfm_grid, fm_grid, ftrl_grid = fwfm_grid[1:2], fm_grid[:1], ftrl_grid[:1]
    n, n_fields = len(fields), 10
    ffm_size = 1 + n + n * n_fields * k
    tenth_k = max(j for j in range(1, k + 1) if 1 + n + n * j + n_fields ** 2 <= ffm_size / 10)
    runs = {
        "ffm_adagrad": choose(lambda **p: FFMClassifier(fields=fields, n_factors=k, **EARLY, **p),
                              ffm_grid, train, valid, test),
        "fwfm_adagrad": choose(lambda **p: FwFMClassifier(fields=fields, n_factors=k, **EARLY,
                                                          **p), fwfm_grid, train, valid, test),
        # the most factors with at most a tenth of FFM's parameters: (k + 1) per feature
        # against FFM's (10 k + 1), so k - 1 at k = 64
        "fwfm_adagrad_tenth": choose(
            lambda **p: FwFMClassifier(fields=fields, n_factors=tenth_k, **EARLY, **p),
            fwfm_grid, train, valid, test),
        "fm_adagrad": choose(lambda **p: FMClassifier(n_factors=k, init_std=0.1, **EARLY, **p),
                             fm_grid, train, valid, test),
        "fm_ftrl": choose(lambda **p: FMClassifier(n_factors=k, init_std=0.1, **EARLY, **p),
                          ftrl_grid, train, valid, test),
    }
    timers = {name: epoch_timer(run.pop("estimator"), *train) for name, run in runs.items()}
    _, seconds = alternate(timers, REPEATS)  # one epoch of each model in turn, REPEATS rounds
    for name, run in runs.items():
        run["seconds_per_epoch"] = spread(seconds[name])
    for name in ("fwfm_adagrad", "fwfm_adagrad_tenth"):
        runs[name]["parameter_share_of_ffm"] = (runs[name]["parameters"]
                                                / runs["ffm_adagrad"]["parameters"])
    runs["ftrl_auc_minus_adagrad"] = runs["fm_ftrl"]["test_auc"] - runs["fm_adagrad"]["test_auc"]
    runs["fwfm_adagrad_tenth"]["n_factors"] = tenth_k
    for name in ("ffm_adagrad", "fwfm_adagrad", "fwfm_adagrad_tenth", "fm_adagrad", "fm_ftrl"):
        r = runs[name]
        print(f"frappe k={k} {name}: AUC {r['test_auc']:.4f} log-loss {r['test_logloss']:.4f} "
              f"{r['parameters']} parameters, {r['seconds_per_epoch']['median']:.3f} s/epoch")
    return k, runs


def libffm_scores(path, vocabulary, factors, normalize):
    """LIBFFM's score of every line of ``path`` (its formula, no bias or linear terms), with the
    latent vectors of each (field, feature) token looked up in ``vocabulary``."""
    column = {(int(f), int(j)): c for c, (f, j) in enumerate(vocabulary)}
    scores = []
    for line in Path(path).read_text().splitlines():
        tokens = [(int(f), int(j), float(v))
                  for f, j, v in (t.split(":") for t in line.split()[1:])]
        tokens = [(f, column[f, j], v) for f, j, v in tokens if (f, j) in column]
        r = 1.0 / sum(v * v for _, _, v in tokens) if normalize else 1.0
        phi = 0.0
        for a, (fa, ca, va) in enumerate(tokens):
            for fb, cb, vb in tokens[a + 1:]:
                phi += float(factors[ca, fb] @ factors[cb, fa]) * va * vb * r
        scores.append(phi)
    return np.array(scores)


def criteo():
    train, test = require("criteo_libffm_sample/small_train.txt",
                          "criteo_libffm_sample/small_test.txt")
    X, y, vocabulary = load_ffm(train)
    X_test, y_test, _ = load_ffm(test, vocabulary=vocabulary)
    clf = FFMClassifier(fields=vocabulary, n_factors=4, normalize=True, max_iter=15, tol=None,
                        fit_intercept=False, fit_linear=False, random_state=0).fit(X, y)
    # The fitted vectors indexed by LIBFFM's (feature, field), through the renumbered fields.
    field_code = {label: code for code, label in enumerate(clf.field_names_)}
    factors = clf.factors_[:, [field_code.get(f, 0) for f in range(max(field_code) + 1)]]
    differences = [float(np.max(np.abs(clf.decision_function(Xf)
                                       - libffm_scores(path, vocabulary, factors, True))))
                   for path, Xf in ((train, X), (test, X_test))]
    result = {"train_rows": X.shape[0], "columns": X.shape[1],
              "tokens_in_two_fields": int(X.shape[1] - np.unique(vocabulary[:, 1]).size),
              "max_abs_difference_from_libffm_formula": {"train": differences[0],
                                                         "test": differences[1]},
              **metrics(clf, X_test, y_test)}
    print(f"Criteo sample: {result['columns']} token columns, LIBFFM formula difference "
          f"{max(differences):.2e}, test AUC {result['test_auc']:.4f}")
    return result


def pipeline_search():
    """GridSearchCV over a ColumnTransformer's width and an FFM's factors, on frappe's rows
    decoded back to their categorical columns."""
    (X, y), _, _ = load_frappe(np.float32)
    X, y = X[:6000], y[:6000]
    names = ["user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather",
             "country", "city"]
    columns = sp.csr_matrix(X).indices.reshape(-1, 10) - np.array(FRAPPE_FIELD_STARTS[:-1])
    frame = pd.DataFrame(columns.astype(str), columns=names)

    def encoder(min_frequency):
        return ColumnTransformer([("ids", OneHotEncoder(
            sparse_output=False, min_frequency=min_frequency,
            handle_unknown="infrequent_if_exist"), names)]).set_output(transform="pandas")

    pipe = make_pipeline(encoder(1), FFMClassifier(fields="auto", max_iter=5, tol=None,
                                                   random_state=0))
    grid = {"columntransformer__ids__min_frequency": [1, 10], "ffmclassifier__n_factors": [4, 8]}
    search = GridSearchCV(pipe, grid, cv=3, scoring="roc_auc").fit(frame, y)
    best = search.best_estimator_[-1]
    result = {"rows": len(frame), "best_params": search.best_params_,
              "best_cv_auc": float(search.best_score_),
              "widths": {m: int(encoder(m).fit_transform(frame).shape[1]) for m in (1, 10)},
              "fields_of_best": [str(name) for name in best.field_names_]}
    print(f"GridSearchCV: best {search.best_params_}, CV AUC {search.best_score_:.4f}, "
          f"widths {result['widths']}")
    return result


def one_hot_fields(X):
    """The field of each column of one-hot rows: a column starts a new field when it occurs in a
    row together with a column of the current field."""
    present = (sp.csr_matrix(X) != 0).astype(np.int64)
    together = (present.T @ present).toarray() > 0
    fields = np.zeros(X.shape[1], dtype=np.int32)
    start = 0
    for j in range(1, X.shape[1]):
        if together[j, start:j].any():
            start = j
        fields[j] = fields[j - 1] + (start == j)
    return fields


@contextlib.contextmanager
def silent():
    """Send what C++ code writes to standard output and error to /dev/null meanwhile."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


class XLearn:
    """xLearn's FM or FFM through its file interface (AdaGrad, early stopping on the validation
    file as xLearn does by default)."""

    def __init__(self, kind, k, folder, fields):
        self.kind, self.k, self.folder, self.fields = kind, k, Path(folder), fields

    def _write(self, name, X, y):
        path = self.folder / f"{self.kind}_{name}.txt"
        if self.kind == "ffm":
            dump_ffm(X, y, self.fields, path)
        else:
            dump_svmlight_file(X, y, str(path), zero_based=True)
        return str(path)

    def run(self, train, valid, test):
        import xlearn

        model = xlearn.create_ffm() if self.kind == "ffm" else xlearn.create_fm()
        model.setTrain(self._write("train", *train))
        model.setValidate(self._write("valid", *valid))
        out = str(self.folder / f"{self.kind}.model")
        start = time.perf_counter()
        with silent():  # not setQuiet(): it skips the validation loss and early stopping with it
            model.fit({"task": "binary", "k": self.k, "lr": 0.2, "lambda": 2e-5, "epoch": 100,
                       "opt": "adagrad", "nthread": 1, "stop_window": 3}, out)
        seconds = time.perf_counter() - start
        model.setTest(self._write("test", test[0], test[1]))
        model.setSigmoid()
        with silent():
            model.predict(out, str(self.folder / "pred.txt"))
        p = np.clip(np.loadtxt(self.folder / "pred.txt"), 1e-15, 1 - 1e-15)
        return {"test_auc": float(roc_auc_score(test[1], p)),
                "test_logloss": float(log_loss(test[1], p)), "fit_seconds": seconds}


def side_by_side(name, train_file, test_file, n_features, quick):
    paths = require(train_file, test_file)
    X, y = load_svmlight_file(str(paths[0]), n_features=n_features, dtype=np.float32)
    X_test, y_test = load_svmlight_file(str(paths[1]), n_features=n_features, dtype=np.float32)
    y, y_test = (y > 0).astype(np.float32), (y_test > 0).astype(np.float32)
    X, X_val, y, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    fields = one_hot_fields(sp.vstack([X, X_val, X_test]))
    train, valid, test = (X, y), (X_val, y_val), (X_test, y_test)
    k = 8
    auto = dict(normalize="auto", **EARLY)  # xLearn normalises rows by default; choose here
    make = {
        "FM AdaGrad": lambda: FMClassifier(n_factors=k, eta0=0.1, **EARLY),
        "FM FTRL": lambda: FMClassifier(n_factors=k, solver="ftrl", eta0=0.5, **EARLY),
        "FFM AdaGrad": lambda: FFMClassifier(fields=fields, n_factors=k, **auto),
        "FFM FTRL": lambda: FFMClassifier(fields=fields, n_factors=k, solver="ftrl", eta0=0.5,
                                          **auto),
        "FwFM AdaGrad": lambda: FwFMClassifier(fields=fields, n_factors=k, **auto),
        "FwFM FTRL": lambda: FwFMClassifier(fields=fields, n_factors=k, solver="ftrl", eta0=0.5,
                                            **auto),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="fmlearn-ctr-") as tmp:
        for _ in range(1 if quick else 3):  # alternating: ours, then xLearn's, in turn
            for label, new in make.items():
                start = time.perf_counter()
                est = new().fit(*train, eval_set=valid)
                seconds = time.perf_counter() - start
                run = results.setdefault(label, {"epochs": est.n_iter_, **metrics(est, *test),
                                                 "normalize": getattr(est, "normalize_", False),
                                                 "fit_seconds": []})
                run["fit_seconds"].append(seconds)
            for kind in ("fm", "ffm"):
                label = f"xLearn {kind.upper()}"
                got = XLearn(kind, k, tmp, fields).run(train, valid, test)
                run = results.setdefault(label, {**got, "fit_seconds": []})
                run["fit_seconds"].append(got["fit_seconds"])
    for label, run in results.items():
        run["fit_seconds"] = spread(run["fit_seconds"])
        print(f"{name} {label}: AUC {run['test_auc']:.4f} log-loss {run['test_logloss']:.4f} "
              f"fit {run['fit_seconds']['median']:.2f} s")
    return {"fields": int(fields.max()) + 1, "k": k, "results": results}


def main():
    warnings.simplefilter("ignore", ConvergenceWarning)  # mushroom is separable: no early stop
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    k, frappe_runs = frappe(args.quick)
    payload = {
        "frappe": {"k": k, "libffm_quoted": LIBFFM["k64"], **frappe_runs},
        "criteo_sample": criteo(),
        "pipeline_search": pipeline_search(),
        "a9a": side_by_side("a9a", "a9a/a9a", "a9a/a9a.t", 123, args.quick),
        "mushroom": side_by_side("mushroom", "mushroom/agaricus_train.txt",
                                 "mushroom/agaricus_test.txt", 127, args.quick),
    }
    rows = [summary_row("frappe", "classification", f"{label} k={k}, 1 thread", metric,
                        frappe_runs[name][key], frappe_runs[name]["seconds_per_epoch"]["median"],
                        "epoch", [peer("LIBFFM FFM k=64", LIBFFM["k64"][key[5:]], None,
                                       "quoted, bench/ffm.py")] if k == 64 else [])
            for name, label in (("fwfm_adagrad", "FwFM AdaGrad"),
                                ("fwfm_adagrad_tenth", "FwFM AdaGrad, a tenth of FFM's parameters"),
                                ("ffm_adagrad", "FFM AdaGrad"),
                                ("fm_ftrl", "FM FTRL"), ("fm_adagrad", "FM AdaGrad"))
            for metric, key in (("test AUC", "test_auc"), ("test log-loss", "test_logloss"))]
    write_results("ctr" + ("_quick" if args.quick else ""), payload, rows)


if __name__ == "__main__":
    main()
