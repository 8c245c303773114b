"""gunicorn refuses a size PostgreSQL can never hold (config/connections.py).

Every gunicorn thread may keep a connection (CONN_MAX_AGE); the master asks
the server before any worker starts. The arithmetic and the reading of
DATABASE_URL always; the server's own numbers and a refused start on
PostgreSQL runs (make test-postgres).
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.db import connection

from config.connections import (
    HEADROOM,
    budget_problem,
    check_budget,
    database_settings,
    server_numbers,
)
from tests.support.processes import BASE_DIR, free_port

ROOM = 100 - 3 - HEADROOM


def problem(workers, threads, *, others=0):
    return budget_problem(
        workers=workers,
        threads=threads,
        max_connections=100,
        reserved=3,
        open_elsewhere=others,
    )


def test_a_size_that_fits_is_accepted():
    assert problem(4, 16, others=10) is None


def test_a_size_that_fills_the_server_exactly_is_accepted():
    assert problem(1, ROOM - 20, others=20) is None


def test_a_size_that_can_never_fit_is_refused_with_the_numbers_to_change():
    refuse, why = problem(1, ROOM + 1)
    assert refuse
    assert f"may hold {ROOM + 1}" in why
    assert "accepts 100 (3 reserved" in why
    assert f"which leaves {ROOM}" in why
    assert "GUNICORN_THREADS" in why and "max_connections" in why


def test_a_size_that_fits_once_other_clients_leave_starts_with_a_warning():
    # A second host of the same size, or an old instance shutting down.
    refuse, why = problem(4, 16, others=65)
    assert not refuse
    assert "other clients hold 65 now" in why
    assert f"which leaves {ROOM - 65}" in why


def test_sqlite_is_not_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "sqlite:////tmp/none.sqlite3")
    assert database_settings(tmp_path / ".env") is None
    check_budget(workers=1000, threads=1000)  # nothing to ask, no refusal


def test_the_url_is_read_from_dotenv_as_the_settings_read_it(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text("DATABASE_URL=psql://clinic:s%40cret@db.local:6543/intake\n")
    config = database_settings(dotenv)
    assert config is not None
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"]) == (
        "clinic",
        "s@cret",
        "db.local",
        6543,
    )
    assert config["NAME"] == "intake"


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
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}?conn_max_age=600"


@pytest.mark.django_db
def test_the_server_is_asked_for_its_own_numbers(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", _database_url())
    max_connections, reserved, open_now = server_numbers(database_settings())
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        assert max_connections == int(cursor.fetchone()[0])
    assert 0 <= reserved < max_connections
    assert open_now >= 1  # this test's own Django connection at least


@pytest.mark.django_db
def test_check_budget_refuses_only_what_can_never_fit(monkeypatch):
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
    command = ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PostgreSQL could run out of connections" in result.stderr
    assert "Booting worker" not in result.stderr  # refused before any worker
