"""PostgreSQL connections the served dashboard may hold, checked before it starts.

With CONN_MAX_AGE every gunicorn thread may keep one connection open, so a
host holds up to WEB_CONCURRENCY x GUNICORN_THREADS of them. gunicorn's master
(config/gunicorn.conf.py, `on_starting`) asks the server, before any worker
starts, how many it accepts and how many other clients (another host, the
background worker) hold already. A size that could never fit is refused,
naming the numbers to change, instead of the server refusing sign-ins at
the busiest hour; one that fits only once other clients' connections close
(an old instance still shutting down, another host) starts with a warning.
SQLite needs no check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("intake.connections")

#: Where the settings read DATABASE_URL from when it is not in the environment.
DOTENV = Path(__file__).resolve().parent.parent / ".env"

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
) -> tuple[bool, str] | None:
    """Why this host's connections may not fit on the server; None if they do.

    (True, why) when they can never fit, even with no other client: the
    start is refused. (False, why) when they fit only once other clients'
    connections close (an overlapping restart, another host): a warning, as
    those may be about to go.
    """
    wanted = workers * threads
    room = max_connections - reserved - HEADROOM
    free = room - open_elsewhere
    if wanted <= free:
        return None
    sizing = (
        f"this host's {workers} workers x {threads} threads may hold {wanted} "
        f"PostgreSQL connections, but the server accepts {max_connections} "
        f"({reserved} reserved for superusers) and {HEADROOM} are kept free for "
        "the background worker and manage.py"
    )
    if wanted > room:
        return True, (
            f"PostgreSQL could run out of connections: {sizing}, which leaves "
            f"{max(room, 0)}. Lower GUNICORN_THREADS or WEB_CONCURRENCY, or raise "
            "max_connections."
        )
    return False, (
        f"PostgreSQL may run out of connections: {sizing}; other clients hold "
        f"{open_elsewhere} now, which leaves {max(free, 0)}. If they stay (another "
        "host, not an old instance shutting down), lower GUNICORN_THREADS or "
        "WEB_CONCURRENCY, or raise max_connections."
    )


def database_settings(dotenv: Path = DOTENV) -> dict[str, Any] | None:
    """The database as Django will see it: DATABASE_URL, from the environment
    or the .env file beside manage.py, as the settings read it. None unless
    it is PostgreSQL."""
    import environ

    env = environ.Env()
    if dotenv.is_file():
        env.read_env(dotenv, overwrite=False)
    if not env.str("DATABASE_URL", default=""):
        return None
    config: dict[str, Any] = env.db_url("DATABASE_URL")
    if "postgresql" not in config.get("ENGINE", ""):
        return None
    return config


def server_numbers(config: dict[str, Any]) -> tuple[int, int, int]:
    """max_connections, superuser_reserved_connections, connections open now
    (other than the one asking), for Django's database settings `config`."""
    import psycopg

    options = {
        key: value
        for key, value in (config.get("OPTIONS") or {}).items()
        if key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options")
    }
    params = {
        "dbname": config.get("NAME") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        **options,
    }
    with psycopg.connect(
        connect_timeout=5,
        autocommit=True,
        **{key: value for key, value in params.items() if value is not None},
    ) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity"
            "   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())"
        ).fetchone()
    assert row is not None  # one row, always
    return row[0], row[1], row[2]


def check_budget(*, workers: int, threads: int) -> None:
    """Refuse to start (SystemExit) a size that can never fit; warn when it
    fits only once other clients' connections close.

    When the server cannot be asked (not PostgreSQL, not reachable yet, a
    pooler in front of it), start anyway: /readyz reports the database.
    """
    try:
        config = database_settings()
        if config is None:
            return
        max_connections, reserved, open_now = server_numbers(config)
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
    if problem is None:
        logger.info(
            "PostgreSQL connections: up to %d for this host of %d (%d open elsewhere)",
            workers * threads,
            max_connections - reserved,
            open_now,
        )
        return
    refuse, why = problem
    if refuse:
        raise SystemExit(why)
    logger.warning("%s", why)
