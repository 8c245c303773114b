"""One line per log record, whatever a request put into it.

A path, a header or an exception message can carry a line break: gunicorn logs
the decoded path, so `GET /x%0a2026-01-01 00:00:00,000 CRITICAL ...` printed a
second, genuine-looking line. Every formatter here writes each record as one
line, with control characters escaped (`\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`),
tracebacks included. Used by Django's LOGGING (config.settings.base) and by
gunicorn's access and error logs (config/gunicorn.conf.py).

Imports nothing of Django: gunicorn's master process loads it.
"""

from __future__ import annotations

import logging
import os
import re

from gunicorn.glogging import Logger as GunicornBaseLogger

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


class GunicornLogger(GunicornBaseLogger):
    """gunicorn's logger, with every handler of its two logs escaping.

    Whatever configured the handlers (the access and error log settings, a
    syslog address, logconfig_dict), their formatters are wrapped after setup.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                inner = handler.formatter or logging.Formatter()
                if not isinstance(inner, EscapingFormatter | _Escaped):
                    handler.setFormatter(_Escaped(inner))
