"""Quiet, useful logs: an expected 403 is one line, a 500 keeps its traceback,
django-axes' start-up line is written once, /favicon.ico is served.

The records are those Django's LOGGING lets through (caplog sits on the root
logger, behind the loggers' filters), each formatted as the console writes it.
tests/test_gunicorn.py and tests/management/test_run_dashboard.py count the
same lines in the output of real processes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.utils.log import log_response

from config.logs import STARTUP_LOGGED, EscapingFormatter
from tests.support.processes import BASE_DIR

AXES_LINE = "AXES: BEGIN version"


def console_lines(records: list[logging.LogRecord]) -> list[str]:
    """The records as the console handler writes them, split into lines."""
    [handler] = [h for h in logging.getLogger().handlers if h.name == "console"]
    assert isinstance(handler.formatter, EscapingFormatter)
    return [
        line
        for record in records
        for line in handler.formatter.format(record).split("\n")
    ]


def warnings_of(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- an expected 403: one line, no traceback ---------------------------------


@pytest.mark.parametrize(
    ("user", "method", "path", "reason"),
    [
        # A view's permission_required(raise_exception=True).
        ("no_role_user", "get", "/interactions/", "Permission denied"),
        # An administrator opening an admin page only a superuser may.
        ("administrator", "get", "/admin/intake/interaction/add/", "Permission denied"),
        (
            "administrator",
            "post",
            "/admin/intake/interaction/add/",
            "Permission denied",
        ),
    ],
)
def test_a_refused_permission_logs_one_warning_line_without_traceback(
    request, client, caplog, user, method, path, reason
):
    client.force_login(request.getfixturevalue(user))
    caplog.set_level(logging.INFO)

    response = getattr(client, method)(path)

    assert response.status_code == 403
    [record] = warnings_of(caplog)
    assert record.exc_info is None
    [line] = console_lines([record])
    assert line.endswith(
        f" WARNING django.request Forbidden ({reason}): {method.upper()} {path} 403"
    ), line
    assert "Traceback" not in line


def test_a_failed_csrf_check_logs_one_warning_line(db, caplog):
    caplog.set_level(logging.INFO)

    response = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "x", "password": "y"}
    )

    assert response.status_code == 403
    [record] = warnings_of(caplog)
    [line] = console_lines([record])
    assert line.endswith(
        " WARNING django.security.csrf Forbidden (CSRF cookie not set.): "
        "POST /accounts/login/ 403"
    ), line


def test_a_server_error_keeps_its_traceback(caplog):
    request = RequestFactory().get("/interactions/")
    try:
        raise ValueError("broken")
    except ValueError as exc:
        log_response(
            "Internal Server Error: %s",
            request.path,
            response=HttpResponse(status=500),
            request=request,
            exception=exc,
        )

    [record] = warnings_of(caplog)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    [line] = console_lines([record])
    assert "Internal Server Error: /interactions/" in line
    assert "Traceback (most recent call last):\\n" in line
    assert line.endswith("ValueError: broken")


# --- django-axes' start-up line ----------------------------------------------


def _check_output(extra_env: dict[str, str]) -> str:
    env = {name: value for name, value in os.environ.items() if name != STARTUP_LOGGED}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", **extra_env)
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow  # starts Python processes: ~1 s
def test_a_process_writes_the_axes_start_up_line_once():
    output = _check_output({})

    assert output.count(AXES_LINE) == 1, output


@pytest.mark.slow  # starts Python processes: ~1 s
def test_a_process_whose_starter_wrote_the_line_does_not_repeat_it():
    output = _check_output({STARTUP_LOGGED: "1"})

    assert AXES_LINE not in output, output


# --- /favicon.ico --------------------------------------------------------------


def test_favicon_is_the_site_s_icon_cached_for_a_day(db, client, caplog):
    caplog.set_level(logging.INFO)

    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    with open(finders.find("favicon.svg"), "rb") as icon:
        assert response.content == icon.read()
    assert "max-age=86400" in response["Cache-Control"]
    assert "public" in response["Cache-Control"]
    assert warnings_of(caplog) == []
