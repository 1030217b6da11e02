# Nanjing medical-insurance integration hub: developer and CI entry points.
#   make test                      # venv + RabbitMQ/Redis, then the whole suite
#   make test PYTEST_ARGS='-k tax -x'
#   make test-unit                 # no servers: -m "not integration"
#   make demo | run | simulate | migrate | bench | lint | stop | clean
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Packages that are linted and type-checked (tests are not); missing ones are skipped.
LINT_PATHS := $(wildcard adapters api bootstrap broker cli config contracts jobs kernel retry routes services simulators storage tools bench main.py)

.PHONY: help venv lock services postgres demo test test-unit test-cluster bench lint run simulate migrate \
	stop compose-config clean distclean

help:
	@echo "targets: venv lock services postgres demo test test-unit bench lint run simulate"
	@echo "         migrate stop compose-config clean distclean"
	@echo "vars:    PYTEST_ARGS='...' passed to pytest"

venv:
	@bash scripts/venv.sh

# Re-pin requirements.lock (runtime + dev extra, Python 3.11) from pyproject.toml with
# pip-tools, kept in its own venv under .run/ (not a project dependency). Existing pins
# stay unless pyproject.toml needs otherwise; `make lock UPGRADE=1` moves all to the
# newest allowed. Then .venv is brought in line with the new lock.
LOCK_VENV := .run/pip-tools
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { \
	  $${PYTHON:-python3.11} -m venv $(LOCK_VENV) \
	  && $(LOCK_VENV)/bin/python -m pip install -q "pip-tools>=7.4,<8"; }
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile -q --extra dev --extra bench \
	  --strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade) \
	  --output-file requirements.lock pyproject.toml
	@bash scripts/venv.sh

services:
	@bash scripts/services.sh

# Optional PostgreSQL on 127.0.0.1:5433 (prints its HUB_DATABASE_URL).
postgres:
	@bash scripts/postgres.sh

# run, simulate and demo are development hubs: HUB_ENV=development (dev admin tokens,
# built-in development secrets). Anything else defaults to production (README).
demo: venv services
	HUB_ENV=$${HUB_ENV:-development} $(PY) main.py demo

# PostgreSQL too: the database-restart fault test and the PostgreSQL path run on it.
test: venv services
	@bash scripts/postgres.sh >/dev/null
	@bash scripts/browser.sh  # chromium + chromium-driver for tests/browser (the console)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Two hub processes on a 3-node RabbitMQ cluster (scripts/rabbit_cluster.sh, ports 5681-5683,
# apart from the shared broker on 5672); one node stops mid-batch. Stops the cluster after.
test-cluster: venv services
	$(PY) -m pytest -q -m cluster tests/cluster $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -q -m "not integration" $(PYTEST_ARGS)

# Every bench/<name>.py that defines main(), run as `python -m bench.<name>`; the
# memory bench last: the broker is still compacting its 200,000 messages for a while
# after it, which would slow whatever runs next.
BENCHES = $(filter-out bench/memory.py,$(wildcard bench/[a-z]*.py)) bench/memory.py
bench: venv services
	@rc=0; for f in $(BENCHES); do \
	  [ -e "$$f" ] || continue; \
	  grep -qE '^(async )?def main\(' "$$f" || continue; \
	  name=$$(basename "$$f" .py); \
	  echo "== bench.$$name"; \
	  $(PY) -m bench.$$name || { echo "bench.$$name failed" >&2; rc=1; }; \
	done; exit $$rc

# ruff and mypy both run; the target fails when either does.
lint: venv
	@rc=0; \
	echo "$(VENV)/bin/ruff check $(LINT_PATHS)"; $(VENV)/bin/ruff check $(LINT_PATHS) || rc=1; \
	echo "$(PY) -m mypy $(LINT_PATHS)"; $(PY) -m mypy $(LINT_PATHS) || rc=1; \
	exit $$rc

run: venv services
	HUB_ENV=$${HUB_ENV:-development} $(PY) main.py run

simulate: venv
	HUB_ENV=$${HUB_ENV:-development} $(PY) main.py simulate

migrate: venv
	$(PY) main.py migrate

stop:
	@bash scripts/stop.sh

compose-config:
	@if command -v docker-compose >/dev/null 2>&1; then docker-compose config -q; \
	else docker compose config -q; fi

# Caches and outputs; keeps .venv and the servers' data in .run.
clean:
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache bench/out

# Everything made here: stops the servers, then removes .venv and .run.
distclean: stop clean
	rm -rf $(VENV) .run
