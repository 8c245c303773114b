"""gunicorn refuses a size PostgreSQL cannot hold (config/connections.py).

Every gunicorn thread may keep a connection (CONN_MAX_AGE); the master asks
the server before any worker starts. The arithmetic always; the server's
own numbers and a refused start on PostgreSQL runs (make test-postgres).
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.db import connection

from config.connections import HEADROOM, budget_problem, check_budget, server_numbers
from tests.support.processes import BASE_DIR, free_port


def test_a_size_that_fits_is_accepted():
    assert (
        budget_problem(
            workers=4, threads=16, max_connections=100, reserved=3, open_elsewhere=10
        )
        is None
    )


def test_a_size_that_fills_the_server_exactly_is_accepted():
    free = 100 - 3 - 20 - HEADROOM
    assert (
        budget_problem(
            workers=1, threads=free, max_connections=100, reserved=3, open_elsewhere=20
        )
        is None
    )


def test_one_connection_too_many_is_refused_with_the_numbers_to_change():
    free = 100 - 3 - 20 - HEADROOM
    problem = budget_problem(
        workers=1, threads=free + 1, max_connections=100, reserved=3, open_elsewhere=20
    )
    assert problem is not None
    assert f"may hold {free + 1}" in problem
    assert "accepts 100 (3 reserved" in problem
    assert "other clients hold 20" in problem
    assert f"which leaves {free}" in problem
    assert "GUNICORN_THREADS" in problem and "max_connections" in problem


def test_a_second_host_counts_what_the_first_holds():
    # The first host's 64 are open: a second of the same size does not fit.
    assert (
        budget_problem(
            workers=4, threads=16, max_connections=100, reserved=3, open_elsewhere=65
        )
        is not None
    )


def test_sqlite_is_not_checked(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/none.sqlite3")
    check_budget(workers=1000, threads=1000)  # nothing to ask, no refusal


def test_an_unreachable_server_starts_anyway_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv("DATABASE_URL", f"postgres://nobody@127.0.0.1:{free_port()}/x")
    check_budget(workers=1000, threads=1000)
    assert "Could not check PostgreSQL's connection limit" in caplog.text


def _database_url() -> str:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL runs only (make test-postgres)")
    settings = connection.settings_dict
    user = quote(settings["USER"] or "", safe="")
    password = quote(settings["PASSWORD"] or "", safe="")
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or "5432"
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}"


@pytest.mark.django_db
def test_the_server_is_asked_for_its_own_numbers():
    url = _database_url()
    max_connections, reserved, open_now = server_numbers(
        "postgresql://" + url.split("://", 1)[1]
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        assert max_connections == int(cursor.fetchone()[0])
    assert 0 <= reserved < max_connections
    assert open_now >= 1  # this test's own Django connection at least


@pytest.mark.django_db
def test_check_budget_refuses_only_what_does_not_fit(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", _database_url())
    check_budget(workers=1, threads=1)
    with pytest.raises(SystemExit, match="PostgreSQL could run out of connections"):
        check_budget(workers=100, threads=100)


@pytest.mark.slow
@pytest.mark.django_db
def test_gunicorn_refuses_to_start_a_size_postgres_cannot_hold():
    url = _database_url()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "WEB_CONCURRENCY": "50",
        "GUNICORN_THREADS": "50",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "config/gunicorn.conf.py",
            "config.wsgi",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PostgreSQL could run out of connections" in result.stderr
    assert "Booting worker" not in result.stderr  # refused before any worker
