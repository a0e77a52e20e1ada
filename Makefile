# The two commands: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PEERS := $(STAMP)-peers

.PHONY: demo test bench bench-quick clean

$(STAMP): pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	touch $@

demo: $(STAMP)
	$(BIN)/python -m fmlearn.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --doctest-modules src tests

$(PEERS): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[peers]"
	touch $@

bench: $(PEERS)
	$(BIN)/python bench/run.py

bench-quick: $(PEERS)
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) .pytest_cache bench/results/*.tmp
