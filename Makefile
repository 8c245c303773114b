# Corti Intake. The two commands a new machine needs:
#   make run    set everything up and start the dashboard on the simulator
#   make test   set everything up and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# PostgreSQL for `make test-postgres` (CI runs it; it skips when none answers).
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test test-postgres load-test lint format check-python browser-deps clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Corti Intake needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'

$(VENV)/.runtime: requirements.txt | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The browser tests drive Debian's chromium (a test tool's own browser download
# cannot work here) and inject axe-core from the npm registry. Installed when
# missing; when that is impossible the browser tests skip and say why.
AXE := tests/browser/node_modules/axe-core/axe.min.js

browser-deps: $(AXE)
	@if command -v chromium >/dev/null 2>&1; then :; \
	else \
		echo "Installing Debian's chromium for the browser tests (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
		( $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
		  || { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; } ) \
		|| echo "WARNING: could not install chromium; the browser tests will be skipped."; \
	fi

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error \
		|| echo "WARNING: npm could not install axe-core; the accessibility checks will be skipped."; \
	else \
		echo "WARNING: npm is missing; the accessibility checks will be skipped."; \
	fi

run: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PORT=$(PORT) $(PY) manage.py run_dashboard

test: $(VENV)/.dev browser-deps
	$(PY) -m pytest --ds=config.settings.test

test-postgres: $(VENV)/.dev browser-deps
	@if $(PY) -c 'import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()' '$(TEST_POSTGRES_URL)' 2>/dev/null; then \
		echo "Running the suite on PostgreSQL at $(TEST_POSTGRES_URL)"; \
		DATABASE_URL='$(TEST_POSTGRES_URL)' $(PY) -m pytest --ds=config.settings.test; \
	else \
		echo "SKIPPED: no PostgreSQL answers at $(TEST_POSTGRES_URL); set TEST_POSTGRES_URL to run the suite on PostgreSQL."; \
	fi

# 1,000 submissions with ~20% of Corti's answers faulted, on SQLite and (when a
# server answers) PostgreSQL; fails unless nothing is lost or duplicated.
load-test: $(VENV)/.dev
	$(PY) benchmarks/load_faults.py --check
	@if $(PY) -c 'import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()' '$(TEST_POSTGRES_URL)' 2>/dev/null; then \
		$(PY) benchmarks/load_faults.py --check --database-url '$(TEST_POSTGRES_URL)'; \
	else \
		echo "SKIPPED: no PostgreSQL answers at $(TEST_POSTGRES_URL); the load test ran on SQLite only."; \
	fi

# pip-audit: a pin in requirements*.txt with a known vulnerability fails; where
# the advisory data cannot be reached it prints "SKIPPED: ..." and goes on.
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) .ci/pip_audit.py

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache tests/browser/node_modules
