"""Every log record is one line: nothing a request carries can forge another.

The formatters of Django's LOGGING and of gunicorn's two logs, each given a
record with control characters in it. tests/test_gunicorn.py checks the same
on a running gunicorn.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys

import pytest

from config.logs import EscapingFormatter, escape_controls
from tests.support.processes import gunicorn_logger

FORGED = "2026-11-30 08:00:00,000 CRITICAL forged.logger PATIENT Jane Roe"


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("plain text, café, 東京", "plain text, café, 東京"),
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00 bel\x07 del\x7f", "nul\\x00 bel\\x07 del\\x7f"),
        ("vt\x0b ff\x0c fs\x1c", "vt\\x0b ff\\x0c fs\\x1c"),
        ("nel\x85 csi\x9b", "nel\\x85 csi\\x9b"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("\u202eevil", "\\u202eevil"),
        ("a back\\slash stays", "a back\\slash stays"),
    ],
    ids=repr,
)
def test_control_characters_are_escaped(text, logged):
    assert escape_controls(text) == logged
    assert len(escape_controls(text).splitlines()) <= 1


def _django_console_formatter() -> logging.Formatter:
    """The formatter Django's LOGGING gave the console handler."""
    [handler] = [h for h in logging.getLogger().handlers if h.name == "console"]
    return handler.formatter


def test_django_logging_escapes_a_newline_in_an_argument():
    formatter = _django_console_formatter()
    assert isinstance(formatter, EscapingFormatter)
    record = logging.LogRecord(
        "intake.views",
        logging.WARNING,
        __file__,
        1,
        "Not Found: %s",
        (f"/zz\n{FORGED}",),
        None,
    )

    line = formatter.format(record)

    assert line.splitlines() == [line]
    assert line.endswith(f"WARNING intake.views Not Found: /zz\\n{FORGED}")


def test_django_logging_writes_a_traceback_on_the_record_s_line():
    formatter = _django_console_formatter()
    try:
        raise ValueError(f"bad value\n{FORGED}")
    except ValueError:
        record = logging.LogRecord(
            "intake", logging.ERROR, __file__, 1, "Failed", (), sys.exc_info()
        )

    line = formatter.format(record)

    assert line.splitlines() == [line]
    assert "Failed\\nTraceback (most recent call last):\\n" in line
    assert f"ValueError: bad value\\n{FORGED}" in line


def test_gunicorn_access_log_writes_one_line_per_request():
    logger, access, _ = gunicorn_logger()

    class Response:
        status = "404 Not Found"
        sent = 179
        headers = ()

    logger.access(
        Response(),
        {},
        {
            "REQUEST_METHOD": "GET",
            "RAW_URI": "/zz%0a",
            "PATH_INFO": f"/zz\n{FORGED}\r\x1b[2J",
            "QUERY_STRING": "patient=PAT-7",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
        },
        dt.timedelta(milliseconds=12),
    )

    assert access.getvalue() == (
        f'127.0.0.1 "GET /zz\\n{FORGED}\\r\\x1b[2J" 404 179 12ms\n'
    )


def test_gunicorn_error_log_writes_one_line_per_record():
    logger, _, error = gunicorn_logger()

    logger.error("Invalid request from %s", f"x\n{FORGED}")

    [line] = error.getvalue().splitlines()
    assert line.endswith(f"[ERROR] Invalid request from x\\n{FORGED}")
