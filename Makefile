# The front door: `make run` starts the app on its embedded defaults; `make test` sets up and tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-fast test-container lint system-deps test-deps venv check bench clean

# Runtime packages at the versions the image installs (requirements.lock; tests/unit/test_lockfile.py holds the
# two together): unconstrained, pip takes the newest a dependency allows, which moves under the lock.
# uv installs the same set (same `pip freeze`) with site-packages byte-compiled on every core: 13-18 s against pip's
# 33-37 s with warm caches (docs/performance.md). pip stays the fallback (no uv wheel, an index only pip.conf names).
UV_VERSION := 0.13.8
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/pip install -q uv==$(UV_VERSION) && \
	  $(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode -c requirements.lock -e '.[dev]'; } || \
	{ $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -c requirements.lock -e '.[dev]'; }
	touch $(STAMP)

# The project's own modules byte-compiled: with PYTHONDONTWRITEBYTECODE set (as in CI) and `-B` in every sandboxed
# child, Python would otherwise compile them from source in each process it starts (0.03-0.2 CPU-s each, hundreds
# in a test run). Up-to-date files are skipped; a file edited since is compiled in memory until the next `make`.
venv: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 app graders client/gradax

# Debian packages: only the sandbox's for the app; everything the whole suite needs for `make test`.
system-deps:
	@bash scripts/system-deps.sh run

test-deps:
	@bash scripts/system-deps.sh test

run: system-deps venv
	$(BIN)/gradax serve --host 127.0.0.1 --port 8000

# On a cgroup v2 host the sandboxes get a parent cgroup of their own (scripts/test-cgroup-parent.sh).
# The container test (builds the image, runs it against real PostgreSQL and Redis) runs on its own after
# the suite: its image build would otherwise compete for the 2 cores with time-bounded tests. With
# PYTEST_ARGS (a subset), only the suite runs. The 25 slowest tests close the log: where the time budget goes;
# every test's time is in test-artifacts/pytest.xml (JUnit), to see what each file costs.
# Three workers on the 2-core machine: with two, the cores sat idle 12 % of a run (tests waiting on a lock's timeout,
# long polls, a browser); a third fills that. Side by side, A/B/A/B (docs/performance.md, 2026-12-04): two workers
# 684.5 / 652.5 s at 88 % busy, three 625.0 / 617.5 s at 98 %, every run all passed.
PYTEST_WORKERS ?= 3
# mypy (~15 CPU-s on one core, from cold in a fresh clone) runs beside the suite instead of before it, where the other
# core sat idle; its report follows the suite's, and either failing fails `make test`.
test: test-deps venv
	$(BIN)/ruff check .
	@mkdir -p test-artifacts; $(BIN)/mypy > test-artifacts/mypy.log 2>&1 & mypy=$$!; \
	GRADAX_CGROUP_PARENT="$$(bash scripts/test-cgroup-parent.sh)" \
	  $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not container" --durations=25 \
	  --junitxml=test-artifacts/pytest.xml $(PYTEST_ARGS); suite=$$?; \
	wait $$mypy; typed=$$?; echo "mypy:"; cat test-artifacts/mypy.log; \
	if [ $$suite -ne 0 ] || [ $$typed -ne 0 ]; then exit 1; fi
	@if [ -z "$(PYTEST_ARGS)" ]; then $(MAKE) --no-print-directory test-container; fi

test-container: test-deps venv
	$(BIN)/python -m pytest -m container tests/container

test-fast: venv
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow and not browser and not service and not container" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

check: venv system-deps
	$(BIN)/gradax check problems

bench: venv system-deps
	$(BIN)/gradax bench

clean:
	rm -rf $(VENV) .gradax .pytest_cache .mypy_cache .ruff_cache
