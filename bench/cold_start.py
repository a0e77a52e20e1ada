"""What a new user waits for while numba compiles: ``import fmlearn``, the README quickstart's
first ``fit`` + ``predict``, and the first fit of every estimator kind and solver, in new
interpreters over an empty numba cache (``NUMBA_CACHE_DIR`` pointing at a new empty folder).

Two measures, each in its own interpreter and cache:

- ``quickstart``: ``import fmlearn`` then the README quickstart (a fresh cache, nothing else
  compiled before it);
- ``kinds``: every estimator kind and solver fitted one after the other in one interpreter,
  each on a small planted problem, each first fit timed (later kinds reuse the kernels the
  earlier ones compiled, as in a user's session); their sum is what a user waits for to try
  everything once. Then ``kinds, warm cache``: the same in a new interpreter over the cache
  the first filled.

    python bench/cold_start.py [--repeats N] [--quick]

Writes ``bench/results/cold_start.json`` (min / median / max over the repeats).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import ROOT, spread, write_results

QUICKSTART = """
import time
start = time.perf_counter()
import fmlearn
imported = time.perf_counter()
import numpy as np, scipy.sparse as sp
from fmlearn import FMRegressor
rng = np.random.default_rng(0)
users, items = rng.integers(0, 100, 5000), rng.integers(0, 200, 5000)
X = sp.hstack([sp.eye(100, format="csr")[users], sp.eye(200, format="csr")[items]]).tocsr()
y = np.sin(users) * np.cos(items) + 3
begin = time.perf_counter()
fm = FMRegressor(n_factors=8, early_stopping=True, random_state=0).fit(X, y)
fm.predict(X[:3])
done = time.perf_counter()
print(json.dumps({"import fmlearn": imported - start, "quickstart fit + predict": done - begin}))
"""

# Each estimator kind and solver: (name, constructor, target kind).
KINDS = [
    ("FMRegressor sgd", "FMRegressor(solver='sgd')", "real"),
    ("FMRegressor sgda", "FMRegressor(solver='sgda')", "real"),
    ("FMRegressor als", "FMRegressor(solver='als')", "real"),
    ("FMRegressor mcmc", "FMRegressor(solver='mcmc', max_iter=20)", "real"),
    ("FMRegressor adam", "FMRegressor(solver='adam')", "real"),
    ("FMRegressor ftrl", "FMRegressor(solver='ftrl')", "real"),
    ("FMRegressor order=3 sgd", "FMRegressor(order=3)", "real"),
    ("FMClassifier sgd", "FMClassifier(solver='sgd')", "binary"),
    ("FMClassifier sgda", "FMClassifier(solver='sgda')", "binary"),
    ("FMClassifier als", "FMClassifier(solver='als')", "binary"),
    ("FMClassifier mcmc", "FMClassifier(solver='mcmc', max_iter=20)", "binary"),
    ("FMClassifier adam", "FMClassifier(solver='adam')", "binary"),
    ("FMClassifier ftrl", "FMClassifier(solver='ftrl')", "binary"),
    ("FMClassifier order=3 sgd", "FMClassifier(order=3)", "binary"),
    ("FMClassifier 3 classes sgd", "FMClassifier()", "classes"),
    ("FFMRegressor sgd", "FFMRegressor(fields=fields)", "real"),
    ("FFMClassifier sgd", "FFMClassifier(fields=fields)", "binary"),
    ("FMRanker sgd", "FMRanker()", "pairs"),
]

EVERY_KIND = """
import time
import numpy as np, scipy.sparse as sp
from fmlearn import FFMClassifier, FFMRegressor, FMClassifier, FMRanker, FMRegressor
rng = np.random.default_rng(0)
users, items = rng.integers(0, 50, 2000), rng.integers(0, 80, 2000)
X = sp.hstack([sp.eye(50, format="csr")[users], sp.eye(80, format="csr")[items]]).tocsr()
fields = np.repeat([0, 1], [50, 80])
score = np.sin(users) * np.cos(items)
targets = {"real": score + 3, "binary": score > 0, "classes": np.digitize(score, [-0.3, 0.3]),
           "pairs": score}
seconds = {}
for name, make, target in KINDS:
    model = eval(make)
    begin = time.perf_counter()
    if target == "pairs":
        model.fit(X, targets[target], groups=users)
    else:
        model.fit(X, targets[target])
    model.predict(X[:5])
    seconds[name] = time.perf_counter() - begin
print(json.dumps(seconds))
"""


def run_child(code, cache):
    """Run ``code`` in a new interpreter with numba's cache in ``cache``; its JSON line."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONWARNINGS": "ignore"}
    script = f"import json\nKINDS = {KINDS!r}\n{code}"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode:
        sys.exit(f"the measured run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    runs = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="fmlearn-cold-") as cache:
            for name, value in run_child(QUICKSTART, cache).items():
                runs.setdefault(("quickstart", name), []).append(value)
        with tempfile.TemporaryDirectory(prefix="fmlearn-cold-") as cache:
            for label in ("kinds, empty cache", "kinds, warm cache"):
                seconds = run_child(EVERY_KIND, cache)
                seconds["sum"] = sum(seconds.values())
                for name, value in seconds.items():
                    runs.setdefault((label, name), []).append(value)
    load = os.getloadavg()
    results = {}
    for (group, name), values in runs.items():
        results.setdefault(group, {})[name] = spread(values)
    for group, figures in results.items():
        print(group)
        for name, s in figures.items():
            print(f"  {name:32} {s['median']:7.2f} s (min {s['min']:.2f}, max {s['max']:.2f})")
    print(f"load average {load[0]:.1f} on {os.cpu_count()} cores")
    write_results("cold_start" + ("_quick" if args.quick else ""),
                  {"repeats": repeats, "load_average": load, "seconds": results})


if __name__ == "__main__":
    main()
