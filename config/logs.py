"""One line per log record, whatever a request put into it.

A path, a header or an exception message can carry a line break: gunicorn logs
the decoded path, so `GET /x%0a2026-01-01 00:00:00,000 CRITICAL ...` printed a
second, genuine-looking line. Every formatter here writes each record as one
line, with control characters escaped (`\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`),
tracebacks included. Used by Django's LOGGING (config.settings.base) and by
gunicorn's access and error logs (config/gunicorn.conf.py).

LOG_FORMAT=json writes each record as one JSON object instead (python-json-logger;
the JSON encoding does the escaping). Every record of a request carries its
request id (`RequestIdFilter`, from the context `request_log_start` sets).

Imports nothing of Django: gunicorn's master process loads it.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from gunicorn.glogging import Logger as GunicornBaseLogger
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 controls, DEL and C1 controls; the Unicode line and paragraph separators
# (str.splitlines and some viewers break lines there); bidirectional overrides
# and isolates, which can make a line read as something else.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape sequence."""
    return _CONTROL.sub(_escape_one, text)


class EscapingFormatter(logging.Formatter):
    """A `logging.Formatter` whose every record comes out as one line."""

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class _Escaped(logging.Formatter):
    """Another formatter's output, escaped (whatever kind of formatter it is)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(self.inner.format(record))


#: Set (to "1") in the environment of processes whose starter already wrote
#: the start-up lines: run_dashboard's children, and every gunicorn worker but
#: the first (config/gunicorn.conf.py). Each process sets Django up, and
#: django-axes writes its "AXES: BEGIN version ..." line once in each: six for
#: one `make run` (the command, the simulator, the worker, three web workers).
STARTUP_LOGGED = "INTAKE_STARTUP_LOGGED"


class StartupLineOnce(logging.Filter):
    """django-axes' start-up line, only where no process before wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("AXES: BEGIN"):
            return os.environ.get(STARTUP_LOGGED) != "1"
        return True


class ExpectedForbidden(logging.Filter):
    """A 403 as one line with method, path and status; never a traceback.

    Django logs a refused permission ("Forbidden (Permission denied): /path")
    with the PermissionDenied's traceback: expected, and many lines long. A
    500 keeps its traceback: only records of 403 answers are touched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != 403:
            return True
        record.exc_info = None
        record.exc_text = None
        request = getattr(record, "request", None)
        args = record.args if isinstance(record.args, tuple) else ()
        # Both of Django's 403 messages end with the (escaped) path.
        if request is not None and args:
            method = str(getattr(request, "method", "") or "-")
            record.args = (*args[:-1], f"{method} {args[-1]} 403")
        return True


# --- LOG_FORMAT=json ------------------------------------------------------------

LOG_FORMATS = ("plain", "json")

#: Record attributes never written as JSON fields: logging's own, and the
#: request objects Django attaches (django.request, django.server), whose text
#: holds the query string, where a search carries patient identifiers.
NOT_FIELDS = (*RESERVED_ATTRS, "request", "server_time")


def log_format() -> str:
    """LOG_FORMAT from the environment: "plain" (the default) or "json"."""
    value = os.environ.get("LOG_FORMAT", "").strip().lower() or "plain"
    if value not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    return value


def json_formatter() -> JsonFormatter:
    """One JSON object a line: time, level, logger, message and the extras."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        reserved_attrs=NOT_FIELDS,
    )


# --- the request id ----------------------------------------------------------


@dataclass
class RequestLog:
    """What the log knows of the request this thread is answering."""

    request_id: str
    corti_ms: float = 0.0
    corti_calls: int = 0


_request_log: ContextVar[RequestLog | None] = ContextVar("request_log", default=None)


def request_log_start(request_id: str) -> Token[RequestLog | None]:
    return _request_log.set(RequestLog(request_id=request_id))


def request_log_end(token: Token[RequestLog | None]) -> None:
    _request_log.reset(token)


def request_log_current() -> RequestLog | None:
    return _request_log.get()


def request_log_add_corti_time(ms: float) -> None:
    """Count a call to Corti in the current request's time (if any)."""
    current = _request_log.get()
    if current is not None:
        current.corti_ms += ms
        current.corti_calls += 1


class RequestIdFilter(logging.Filter):
    """Every record gets `request_id`: its request's, or "-" outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            current = _request_log.get()
            record.request_id = current.request_id if current else "-"
        return True


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger, with every handler of its two logs escaping.

    Whatever configured the handlers (the access and error log settings, a
    syslog address, logconfig_dict), their formatters are wrapped after setup;
    with LOG_FORMAT=json they write JSON instead, and each access line has
    its fields (never the query string) and the request id the answer carried.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.json = log_format() == "json"
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if self.json:
                    handler.setFormatter(json_formatter())
                    continue
                inner = handler.formatter or logging.Formatter()
                if not isinstance(inner, EscapingFormatter | _Escaped):
                    handler.setFormatter(_Escaped(inner))

    def access(self, resp, req, environ, request_time) -> None:
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        fields: dict[str, Any] = {
            "method": atoms["m"],
            "path": atoms["U"],
            "status": _int_or_none(atoms["s"]),
            "bytes": _int_or_none(atoms["B"]),
            "duration_ms": _int_or_none(atoms["M"]),
            "remote_addr": atoms["h"],
            "request_id": atoms["{x-request-id}o"],
        }
        try:
            self.access_log.info(self.cfg.access_log_format, atoms, extra=fields)
        except Exception:
            self.exception("The access line could not be written")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
