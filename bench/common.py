"""Shared helpers of the benchmark scripts: where the data is, machine facts, JSON output."""
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

FRAPPE_FEATURES = 5382
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"


def require(*relative):
    """Paths under ../shared/data; exit with a clear reason when one is missing."""
    paths = [DATA / r for r in relative]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"SKIPPED: benchmark data not found: {', '.join(missing)} "
              "(the real data sets live in ../shared/data beside the repository)")
        sys.exit(0)
    return paths


def load_frappe(dtype=np.float32):
    """frappe's train (reconstructed), validation and test files as three (X CSR, y) pairs."""
    from sklearn.datasets import load_svmlight_files

    files = require("frappe/frappe.train.reconstructed.libfm", "frappe/frappe.validation.libfm",
                    "frappe/frappe.test.libfm")
    data = load_svmlight_files([str(f) for f in files], n_features=FRAPPE_FEATURES,
                               zero_based=True, dtype=dtype)
    return [(data[i], data[i + 1]) for i in range(0, 6, 2)]


def movielens(name):
    """MovieLens 100K's split ``name`` (e.g. ``"u1.base"``) in its stored order (sorted by user
    and item): one-hot user and item columns (943 users, then 1,682 items) and the ratings."""
    import scipy.sparse as sp

    (path,) = require(f"ml-100k/{name}")
    a = np.loadtxt(path, dtype=np.int64)
    cols = np.column_stack([a[:, 0] - 1, 943 + a[:, 1] - 1]).ravel()
    X = sp.csr_matrix((np.ones(cols.shape[0], np.float32),
                       (np.repeat(np.arange(a.shape[0]), 2), cols)), shape=(a.shape[0], 2625))
    return X, a[:, 2].astype(np.float64)


def machine():
    """Facts about this machine and the library versions, for the JSON header."""
    import numba
    import scipy
    import sklearn

    import fmlearn
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "versions": {"fmlearn": fmlearn.__version__, "numpy": np.__version__,
                     "scipy": scipy.__version__, "numba": numba.__version__,
                     "scikit-learn": sklearn.__version__},
    }


def write_json(out, payload):
    """Write ``payload`` as JSON to ``out`` atomically (a reader never sees half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")
    return out


def write_results(name, payload, summary=()):
    """Write ``bench/results/<name>.json``: the machine, ``payload`` and the rows this benchmark
    adds to the run's summary table (``summary_row``)."""
    return write_json(RESULTS / f"{name}.json",
                      {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                       "machine": machine(), **payload, "summary": list(summary)})


def kept_results(name):
    """The cases in ``bench/results/<name>.json`` (none when it is absent), which a run of some
    cases alone keeps."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text())["results"] if path.exists() else {}


def spread(values):
    """``{"min", "median", "max"}`` of a list of numbers (timings on a noisy machine)."""
    return {"min": float(min(values)), "median": float(np.median(values)),
            "max": float(max(values))}


def speedups(ours, theirs):
    """The peer's time over ours for each pair of alternating runs (A B A B ...), as a
    ``spread``: above 1 fmlearn is faster. Pairing runs that were measured next to each
    other cancels most of a shared machine's drift."""
    return spread([t / o for o, t in zip(ours, theirs, strict=True)])


def alternate(fits, repeats):
    """Time each callable of ``fits`` (name -> fit) ``repeats`` times, in turn (A B A B ...);
    return the first result of each and the list of seconds of each."""
    first, seconds = {}, {name: [] for name in fits}
    for _ in range(repeats):
        for name, fit in fits.items():
            start = time.perf_counter()
            result = fit()
            seconds[name].append(time.perf_counter() - start)
            first.setdefault(name, result)
    return first, seconds


def summary_row(dataset, task, learner, metric, value, seconds, per, peers=()):
    """One row of the run's summary table.

    ``value`` is fmlearn's ``metric`` on real data, ``seconds`` its time ``per`` unit of work
    (iteration, epoch, fit). Each peer is a dict with ``name``, ``value``, ``seconds`` and
    ``source`` ("same run" or where a quoted figure comes from) and, for peers timed in the
    same run, ``speedup`` (``speedups``).
    """
    return {"dataset": dataset, "task": task, "learner": learner, "metric": metric,
            "value": float(value), "seconds": None if seconds is None else float(seconds),
            "per": per, "peers": list(peers)}


def peer(name, value, seconds, source="same run", speedup=None):
    """A peer's entry of ``summary_row``."""
    entry = {"name": name, "value": None if value is None else float(value),
             "seconds": None if seconds is None else float(seconds), "source": source}
    if speedup is not None:
        entry["speedup"] = speedup
    return entry


FIT_EPOCHS = 100  # the estimators' default max_iter


def epoch_timer(X, y, k, n_threads, schedule, renumber=None, staged=False):
    """A callable running one SGD epoch over ``X`` (float32, squared loss) on one model and
    returning its seconds; the first epoch, run here, warms the kernel up.

    The features are renumbered by frequency when ``renumber`` is true, or, when it is None,
    as a fit of the model for ``FIT_EPOCHS`` epochs would renumber them. ``staged`` stages
    the rows a few blocks at a time, renumbered and shuffled, without a copy of them all
    (what a fit does when memory is short)."""
    from fmlearn._validation import as_fm_csr
    from fmlearn.model import FMModel
    from fmlearn.solvers.feature_order import FeatureOrder
    from fmlearn.solvers.sgd import SGDSolver, SGDState

    X = as_fm_csr(X, np.float32)
    y = y.astype(np.float32)
    model = FMModel.initial(X.shape[1], k, 0.1, np.float32, np.random.default_rng(0))
    state = SGDState.initial(model)
    solver = SGDSolver("squared", schedule, 0.05, 0.25, 0.0, 1e-3, 0.02, None, n_threads=n_threads)
    order = (solver.feature_order(X, model, FIT_EPOCHS) if renumber is None
             else FeatureOrder.by_frequency(X) if renumber else None)
    if staged:
        solver.stage(X, order)
    elif order is not None:
        X = order.relabel(X)
    if order is not None:
        order.forward(solver.feature_arrays(model, state))
    rng = np.random.default_rng(0)
    weights = np.ones_like(y)

    def epoch():
        start = time.perf_counter()
        solver.epoch(model, X, y, weights, state, rng)
        return time.perf_counter() - start

    epoch()
    return epoch


def epoch_seconds(X, y, k, n_threads, schedule, repeats):
    """Seconds per SGD epoch over ``X`` (float32, squared loss), after one warm-up epoch:
    ``spread`` of ``repeats`` epochs."""
    epoch = epoch_timer(X, y, k, n_threads, schedule)
    return spread([epoch() for _ in range(repeats)])


BURN_IN_SHARES = (0.0, 0.1, 0.2)  # the burn-ins tried on validation data: shares of the samples


def dropping_first(est, n):
    """A copy of the fitted MCMC estimator ``est`` averaging its samples after the first ``n``."""
    import copy

    from fmlearn.model import FMSamples

    m = est.model_
    out = copy.copy(est)
    out.model_ = FMSamples(m.intercepts[n:], m.coefs[n:], m.factors_samples[n:], m.link)
    return out


def choose_burn_in(est, score):
    """The burn-in among ``BURN_IN_SHARES`` of ``est``'s samples with the lowest ``score(copy)``
    (a validation error), and every candidate's score."""
    n = est.model_.n_samples
    scores = {int(share * n): score(dropping_first(est, int(share * n)))
              for share in BURN_IN_SHARES}
    return min(scores, key=scores.get), scores
