# The front door: `make run` starts the app on its embedded defaults; `make test` sets up and tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-fast lint system-deps venv check bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

run: venv system-deps
	$(BIN)/gradax serve --host 127.0.0.1 --port 8000

test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -n 2 -m "not slow and not browser and not service" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

check: venv system-deps
	$(BIN)/gradax check problems

bench: venv system-deps
	$(BIN)/gradax bench

clean:
	rm -rf $(VENV) .gradax .pytest_cache .mypy_cache .ruff_cache
