"""``fmlearn warmup`` fills numba's cache, so that a later process fits without compiling; the
Dask estimators compile on each worker once per cluster."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmlearn.warmup import KINDS, warmup

SCRIPT = Path(sys.executable).with_name("fmlearn")
needs_script = pytest.mark.skipif(not SCRIPT.exists(), reason=f"no console script at {SCRIPT}")

# A fit in a new process, printing how many of fmlearn's functions numba compiled.
COUNT_COMPILES = """
import numpy as np, scipy.sparse as sp
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        if ev.data["dispatcher"].py_func.__module__.startswith("fmlearn"):
            compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
from fmlearn import FMRegressor
X = sp.random(200, 30, density=0.1, format="csr", random_state=0)
FMRegressor(n_factors=4, max_iter=3).fit(X, np.arange(200.0)).predict(X)
print(len(compiled), sorted(set(compiled)))
"""


def in_new_process(code, cache):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(cache)}, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_script
def test_after_warmup_a_new_process_fits_without_compiling(tmp_path):
    cold = in_new_process(COUNT_COMPILES, tmp_path / "cold")
    assert int(cold.split()[0]) > 0  # an empty cache compiles: the count can tell
    done = subprocess.run([str(SCRIPT), "warmup", "--kind", "FMRegressor sgd"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "warm")})
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("fmlearn: warmup: FMRegressor sgd float32: ")
    assert lines[-1].startswith("fmlearn: warmup: done in ")
    assert str(tmp_path / "warm") in lines[-1]
    assert in_new_process(COUNT_COMPILES, tmp_path / "warm").split()[0] == "0"


def test_warmup_reports_each_step_and_rejects_unknown_kinds():
    seen = []
    seconds = warmup(kinds=["FMClassifier sgd", "FFMRegressor"],
                     progress=lambda step, s: seen.append(step))
    assert seen == list(seconds) == ["FMClassifier sgd float32", "FFMRegressor float32"]
    assert all(s >= 0 for s in seconds.values())
    with pytest.raises(ValueError, match=r"unknown estimator kinds \['FMRegresor'\]"):
        warmup(kinds=["FMRegresor"])


def test_every_kind_names_an_estimator_and_solver():
    import fmlearn
    for name, (cls, params, _) in KINDS.items():
        assert name.startswith(cls) and hasattr(fmlearn, cls)
        assert params.get("solver", "sgd") in name or "solver" not in params


def test_dask_estimators_warm_each_worker_once_per_cluster(monkeypatch):
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    from fmlearn.dask import DaskFMRegressor
    from fmlearn.dask import _estimators

    calls = []
    real_run = distributed.Client.run

    def counting_run(self, function, *args, **kwargs):
        calls.append((function.__name__, args))
        return real_run(self, function, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "run", counting_run)
    rng = np.random.default_rng(0)
    X = da.from_array(rng.random((400, 6)), chunks=200)
    y = da.from_array(rng.random(400), chunks=200)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        for _ in range(2):
            DaskFMRegressor(n_factors=2, max_iter=2).fit(X, y, client=client)
        assert calls == [("fit_kind", ("FMRegressor sgd", "float32", 1))]
        DaskFMRegressor(n_factors=2, max_iter=2, dtype="float64").fit(X, y, client=client)
        assert calls[1:] == [("fit_kind", ("FMRegressor sgd", "float64", 1))]
        key = (client.scheduler_info()["id"], "FMRegressor sgd", "float32")
        assert key in _estimators._WARM_CLUSTERS
