"""PostgreSQL connections the served dashboard may hold, checked before it starts.

With CONN_MAX_AGE every gunicorn thread may keep one connection open, so a
host holds up to WEB_CONCURRENCY x GUNICORN_THREADS of them. gunicorn's master
(config/gunicorn.conf.py, `on_starting`) asks the server, before any worker
starts, how many it accepts and how many other clients (another host, the
background worker) hold already; when this host's share does not fit, it
refuses to start and says which numbers to change, instead of the server
refusing sign-ins at the busiest hour. SQLite needs no check.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("intake.connections")

#: Kept free beyond the threads: a `manage.py` command, an admin's shell, the
#: background worker when it starts after the dashboard.
HEADROOM = 3


def budget_problem(
    *,
    workers: int,
    threads: int,
    max_connections: int,
    reserved: int,
    open_elsewhere: int,
) -> str | None:
    """Why this host's connections would not fit on the server; None if they do."""
    wanted = workers * threads
    free = max_connections - reserved - open_elsewhere - HEADROOM
    if wanted <= free:
        return None
    return (
        f"PostgreSQL could run out of connections: this host's {workers} workers "
        f"x {threads} threads may hold {wanted}, but the server accepts "
        f"{max_connections} ({reserved} reserved for superusers), other clients "
        f"hold {open_elsewhere} and {HEADROOM} are kept free for the background "
        f"worker and manage.py, which leaves {max(free, 0)}. Lower "
        "GUNICORN_THREADS or WEB_CONCURRENCY, or raise max_connections."
    )


def server_numbers(database_url: str) -> tuple[int, int, int]:
    """max_connections, superuser_reserved_connections, connections open now
    (other than the one asking)."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=5, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity"
            "   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())"
        ).fetchone()
    assert row is not None  # one row, always
    return row[0], row[1], row[2]


def check_budget(*, workers: int, threads: int) -> None:
    """Refuse to start (SystemExit) when this host's threads would not fit.

    When the server cannot be asked (not PostgreSQL, not reachable yet, a
    pooler in front of it), start anyway: /readyz reports the database.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        return
    # psycopg understands postgresql:// (django-environ's pgsql:// too).
    url = "postgresql://" + url.split("://", 1)[1]
    try:
        max_connections, reserved, open_now = server_numbers(url)
    except Exception as exc:  # any failure only skips the check
        logger.warning(
            "Could not check PostgreSQL's connection limit (%s); starting anyway",
            type(exc).__name__,
        )
        return
    problem = budget_problem(
        workers=workers,
        threads=threads,
        max_connections=max_connections,
        reserved=reserved,
        open_elsewhere=open_now,
    )
    if problem:
        raise SystemExit(problem)
    logger.info(
        "PostgreSQL connections: up to %d for this host of %d (%d open elsewhere)",
        workers * threads,
        max_connections - reserved,
        open_now,
    )
