# Corti Intake. The two commands a new machine needs:
#   make run    set everything up and start the dashboard on the simulator
#   make test   set everything up and run the whole test suite
# While working: `make check` (lint, types and the fast tests, in parallel).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# PostgreSQL for `make test-postgres` (CI runs it; it skips when none answers).
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
# Test processes (pytest-xdist) for check, test and test-postgres: one per
# core. Each has its own test database, simulator, live server and browser.
JOBS ?= auto
# Bytecode caches (__pycache__/, ignored by git) are kept even where the
# environment sets PYTHONDONTWRITEBYTECODE: without them every pytest process
# rewrites the asserts of ~150 test modules again, ~5 s each time.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest --ds=config.settings.test
# The markers (pyproject.toml): browser (tests/browser/, chromium), postgres
# (needs PostgreSQL), slow (real processes, long tables, mostly waiting),
# screenshots (rewrites docs/screenshots/; deselected unless `-m screenshots`).
FAST := not browser and not slow and not screenshots

.PHONY: run test test-postgres check screenshots load-test lint types format lock \
	check-python browser-deps sdk-deps clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Corti Intake needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'

# Each set installs from its hash-locked file (`make lock` writes them from
# the .in files): requirements.txt is production's, requirements-sandbox.txt
# adds the Corti simulator's needs (`make run`), requirements-dev.txt the
# test, lint and type tools. A stamp per set reinstalls only when its lock moves.
$(VENV)/.runtime: requirements.txt | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt
	touch $@

$(VENV)/.sandbox: requirements-sandbox.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --require-hashes -r requirements-sandbox.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.sandbox
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# Rewrites the three locks from requirements*.in, keeping every pin that still
# fits; `make lock LOCK_ARGS=--upgrade` (or `--upgrade-package django`) moves
# them. Resolved against PyPI alone (a machine's own pip configuration, such as
# a local wheel folder, never leaks into the locks or their hashes).
PIP_COMPILE := env PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= CUSTOM_COMPILE_COMMAND="make lock" \
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_ARGS)

lock: $(VENV)/.dev
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-sandbox.txt requirements-sandbox.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in

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

# Corti's official JavaScript SDK, which a test drives against the simulator
# (tests/sandbox/test_official_sdk.py): installed from its lock file.
SDK := tests/sandbox/sdk/node_modules/@corti/sdk/package.json

sdk-deps: $(SDK)

$(SDK): tests/sandbox/sdk/package.json tests/sandbox/sdk/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/sandbox/sdk --no-audit --no-fund --loglevel=error \
		|| echo "WARNING: npm could not install @corti/sdk; its test will fail and say so."; \
	else \
		echo "WARNING: npm is missing; the official SDK's test will fail and say so."; \
	fi

run: $(VENV)/.sandbox
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PORT=$(PORT) $(PY) manage.py run_dashboard

# Every test on SQLite, the browser ones included (not the screenshot writer).
test: $(VENV)/.dev browser-deps sdk-deps
	$(PYTEST) -n $(JOBS)

# The fast loop: lint, types, and the tests that are neither browser nor slow,
# in parallel on SQLite. `make test` runs everything else too.
check: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PYTEST) -q -n $(JOBS) -m "$(FAST)"

# Rewrites docs/screenshots/*.png (the README shows them); commit the result.
screenshots: $(VENV)/.dev browser-deps
	$(PYTEST) -m screenshots tests/browser/test_screenshots.py

# Every test but the browser ones (they run once, on SQLite, in `make test`).
test-postgres: $(VENV)/.dev sdk-deps
	@if $(PY) -c 'import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()' '$(TEST_POSTGRES_URL)' 2>/dev/null; then \
		echo "Running the suite on PostgreSQL at $(TEST_POSTGRES_URL)"; \
		DATABASE_URL='$(TEST_POSTGRES_URL)' $(PYTEST) -n $(JOBS) -m "not browser and not screenshots"; \
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
	$(VENV)/bin/mypy
	$(PY) .ci/pip_audit.py

# mypy with django-stubs; what it checks, and how strictly: pyproject.toml.
types: $(VENV)/.dev
	$(VENV)/bin/mypy

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .mypy_cache tests/browser/node_modules tests/sandbox/sdk/node_modules
