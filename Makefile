# The two commands: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PEERS := $(STAMP)-peers

.PHONY: demo test test-slow test-packaging docs browser bench bench-quick clean

$(STAMP): pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# fmlearn.neural's tests: the CPU build of torch (from the local index here; a bare `torch`
	# would pull a CUDA build of several GB), before the extras so that they keep it.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@

demo: $(STAMP)
	$(BIN)/python -m fmlearn.demo

# The kernels are compiled into numba's cache first, as a deployment does with `fmlearn warmup`
# (--all: float64 models and the file readers too, which the tests use; about four minutes on
# 2 cores); the tests of compiling itself use caches of their own. The tests run in a worker
# process per core (pytest-xdist; at most 4, each holds up to 2 GB): 6-9 minutes of pytest
# on 2 cores against 13 in one process.
test: $(STAMP) browser
	$(BIN)/fmlearn warmup --all
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 -m "not slow" --durations=25 \
		--doctest-modules src tests

# The tests marked slow (real-data accuracy at the defaults, the conformance checks of the
# neural estimators the CI run leaves out, the packaging smoke test): about 5 minutes.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests

# `python -m build`'s sdist and wheel, installed in a fresh venv (dependencies from the package
# index) and smoke-tested there: tests/test_packaging.py, marked slow (about 100 s on 2 cores).
test-packaging: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_packaging.py

# The documentation site (docs/conf.py) in docs/_build/html; any warning is an error.
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -E -b html -d docs/_build/doctrees docs docs/_build/html

# The headless browser tests/test_docs_site.py renders the docs with: Debian's chromium,
# installed when absent where we are root with apt-get (CI); elsewhere those checks skip.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || \
	{ echo "make: installing Debian's chromium for tests/test_docs_site.py"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	    >/tmp/fmlearn-chromium.log 2>&1 || \
	  echo "make: could not install chromium (/tmp/fmlearn-chromium.log); the docs' browser checks fail in CI"; }

$(PEERS): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[peers]"
	touch $@

bench: $(PEERS)
	$(BIN)/python bench/run.py

bench-quick: $(PEERS)
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache bench/results/*.tmp
