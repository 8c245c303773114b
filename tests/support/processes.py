"""What a test needs to start a process of its own: the project's folder, a
free port, and the test database as a DATABASE_URL."""

from __future__ import annotations

import io
import runpy
import socket
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent.parent
#: The settings module of a dashboard a test serves under gunicorn.
SERVED_SETTINGS = "tests.support.served_settings"


def free_port() -> int:
    """A loopback port nothing listens on (free to bind; connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Where Corti cannot be reached: nothing listens there.
closed_port = free_port


def database_url_for_processes() -> str:
    """The test database as a DATABASE_URL, for a process the test starts."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


def gunicorn_logger() -> tuple[Any, io.StringIO, io.StringIO]:
    """gunicorn's logger as config/gunicorn.conf.py sets it up (reading
    LOG_FORMAT now), and the access and error streams it writes to."""
    from gunicorn.config import Config

    from config.logs import GunicornLogger

    cfg = Config()
    for name, value in runpy.run_path(
        str(BASE_DIR / "config" / "gunicorn.conf.py")
    ).items():
        if name in cfg.settings:
            cfg.set(name, value)
    assert cfg.logger_class is GunicornLogger
    logger = cfg.logger_class(cfg)
    access, error = io.StringIO(), io.StringIO()
    for log, stream in ((logger.access_log, access), (logger.error_log, error)):
        for handler in log.handlers:
            if getattr(handler, "_gunicorn", False):  # not pytest's own
                handler.setStream(stream)
    return logger, access, error
