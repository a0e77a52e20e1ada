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


def write_results(name, payload):
    """Write ``bench/results/<name>.json`` atomically and print where."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                               "machine": machine(), **payload}, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")
    return out


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
