"""Logs an operator can use: a request id, one line per request and per Corti
call, and LOG_FORMAT=json (one JSON object a line).

The lines are those the records of real requests make, written by the
project's own formatters (config.logs) with the request id filter, as the
console handler writes them; gunicorn's access log as config/gunicorn.conf.py
sets it up. Corti is the simulator.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings

from config.logs import (
    EscapingFormatter,
    RequestIdFilter,
    json_formatter,
)
from intake.models import Interaction
from tests.support.factories import TYPED, typed_values
from tests.support.pages import post_new_form
from tests.support.processes import BASE_DIR, gunicorn_logger

FORGED = "2026-11-30 08:00:00,000 CRITICAL forged.logger PATIENT Jane Roe"
HEX_ID = re.compile(r"[0-9a-f]{32}")
PATIENT_FIELDS = (
    "assigned_user_id",
    "encounter_identifier",
    "encounter_title",
    "patient_identifier",
    "patient_name",
    "patient_birth_date",
    "patient_pronouns",
)


class Lines:
    """What one handler, like the console's, wrote; and how many records."""

    def __init__(self, kind: str) -> None:
        self.stream = io.StringIO()
        self.records: list[logging.LogRecord] = []
        self.handler = logging.StreamHandler(self.stream)
        plain = django_settings.LOGGING["formatters"]["plain"]["format"]
        self.handler.setFormatter(
            json_formatter() if kind == "json" else EscapingFormatter(plain)
        )
        self.handler.addFilter(RequestIdFilter())
        self.handler.addFilter(self._count)

    def _count(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return True

    def text(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def objects(self) -> list[dict]:
        return [json.loads(line) for line in self.text()]

    def of(self, logger: str) -> list[dict]:
        return [line for line in self.objects() if line["logger"] == logger]


@pytest.fixture
def capture(caplog) -> Iterator:
    caplog.set_level(logging.INFO)
    root = logging.getLogger()
    attached: list[Lines] = []

    def attach(kind: str) -> Lines:
        lines = Lines(kind)
        root.addHandler(lines.handler)
        attached.append(lines)
        return lines

    yield attach
    for lines in attached:
        root.removeHandler(lines.handler)


# --- the request id ----------------------------------------------------------


def test_an_incoming_request_id_is_kept_echoed_and_logged(
    capture, clinician_client, clinician
):
    lines = capture("json")

    response = clinician_client.get(
        "/interactions/?q=PAT-7", headers={"X-Request-ID": "lb-4711.a_B"}
    )

    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-4711.a_B"
    [line] = lines.of("intake.requests")
    assert line["request_id"] == "lb-4711.a_B"
    assert line["method"] == "GET"
    assert line["path"] == "/interactions/"
    assert line["status"] == 200
    assert line["user_id"] == clinician.pk
    assert line["duration_ms"] >= line["own_ms"] >= 0
    assert line["corti_ms"] == 0
    assert line["level"] == "INFO"
    assert "time" in line
    assert "PAT-7" not in "\n".join(lines.text())


def test_a_request_without_an_id_gets_a_new_one(capture, client, db):
    lines = capture("json")

    response = client.get("/accounts/login/")

    request_id = response["X-Request-ID"]
    assert HEX_ID.fullmatch(request_id)
    [line] = lines.of("intake.requests")
    assert line["request_id"] == request_id
    assert line["user_id"] is None
    assert client.get("/accounts/login/")["X-Request-ID"] != request_id


@pytest.mark.parametrize(
    "hostile",
    [
        "a b",
        "x" * 65,
        f"ok\n{FORGED}",
        'quote"d',
        "semi;colon",
        "ünïcode",
        "",
    ],
    ids=repr,
)
def test_a_hostile_request_id_is_replaced(capture, client, db, hostile):
    lines = capture("json")

    response = client.get("/accounts/login/", headers={"X-Request-ID": hostile})

    assert HEX_ID.fullmatch(response["X-Request-ID"])
    [line] = lines.of("intake.requests")
    assert line["request_id"] == response["X-Request-ID"]


def test_the_longest_request_id_is_kept(client, db):
    longest = "A" * 64

    response = client.get("/accounts/login/", headers={"X-Request-ID": longest})

    assert response["X-Request-ID"] == longest


# --- one line a record, whatever the path ------------------------------------


@pytest.mark.parametrize("kind", ["plain", "json"])
def test_a_path_with_a_newline_stays_on_one_line(capture, clinician_client, kind):
    lines = capture(kind)

    # Percent-encoded, as a browser sends it; the path Django logs is decoded.
    response = clinician_client.get(f"/zz%0A{quote(FORGED)}%0D%E2%80%A8x")

    assert response.status_code == 404
    text = lines.text()
    assert len(text) == len(lines.records) >= 2  # Not Found, and the request
    assert not any(line.startswith(FORGED) for line in text)
    if kind == "json":
        [line] = lines.of("intake.requests")
        assert line["path"] == f"/zz\n{FORGED}\r\u2028x"
        assert line["status"] == 404
    else:
        [line] = [line for line in text if " intake.requests " in line]
        assert f"GET /zz\\n{FORGED}\\r\\u2028x 404 " in line


# --- Corti calls -------------------------------------------------------------


def patient_needles() -> set[str]:
    values = typed_values()
    needles = {TYPED[name] for name in PATIENT_FIELDS}
    for name in PATIENT_FIELDS:
        value = values[name]
        needles.add(value.isoformat() if isinstance(value, dt.date) else str(value))
    needles |= set(values["patient_name"].split())
    needles.add(values["assigned_user_id"].hex)
    return needles


@pytest.mark.usefixtures("clinic_zone")
@pytest.mark.parametrize("kind", ["plain", "json"])
def test_a_create_logs_the_request_and_the_corti_call_without_patient_data(
    capture, corti, clinician_client, kind
):
    lines = capture(kind)

    response, key = post_new_form(
        clinician_client, TYPED, headers={"X-Request-ID": "create-1"}
    )

    assert response.status_code == 303
    record = Interaction.objects.get(submission_key=key)
    assert record.outcome == Interaction.Outcome.CREATED
    text = "\n".join(lines.text())
    leaks = [needle for needle in patient_needles() if needle in text]
    assert leaks == []
    if kind == "plain":
        assert "request_id=create-1" in text
        return
    calls = lines.of("intake.corti.calls")
    [create] = [c for c in calls if c["corti_endpoint"].endswith("/interactions/")]
    assert create["corti_method"] == "POST"
    assert create["corti_status"] == 201
    assert create["corti_ms"] > 0
    assert create["request_id"] == "create-1"
    assert uuid.UUID(create["corti_request_id"])
    assert {c["request_id"] for c in lines.objects()} == {"create-1"}
    [line] = lines.of("intake.requests")
    assert line["status"] == 303
    assert line["corti_calls"] == len(calls)
    # Each figure is rounded to 0.1 ms on its own: a sum of n rounded calls
    # is within n x 0.05 ms of the rounded total.
    rounding = 0.05 * (len(calls) + 1)
    assert line["corti_ms"] == pytest.approx(
        sum(c["corti_ms"] for c in calls), abs=rounding
    )
    assert line["own_ms"] == pytest.approx(
        line["duration_ms"] - line["corti_ms"], abs=0.15 + 1e-9
    )


@pytest.mark.usefixtures("clinic_zone")
def test_a_failed_corti_call_keeps_corti_s_request_id(capture, corti, clinician_client):
    lines = capture("json")
    corti.set_faults({"kind": "400", "endpoint": "create", "count": 1})

    response, key = post_new_form(clinician_client, TYPED)

    record = Interaction.objects.get(submission_key=key)
    assert record.error_code == "invalid"
    [failed] = [
        c
        for c in lines.of("intake.corti.calls")
        if c["corti_endpoint"].endswith("/interactions/")
    ]
    assert failed["corti_status"] == 400
    assert failed["corti_request_id"]
    assert failed["corti_request_id"] == record.error_request_id
    assert failed["request_id"] == response["X-Request-ID"]
    text = "\n".join(lines.text())
    assert [needle for needle in patient_needles() if needle in text] == []


# --- gunicorn's two logs, LOG_FORMAT=json ------------------------------------


def test_gunicorn_writes_json_access_and_error_lines(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    logger, access, error = gunicorn_logger()

    class Response:
        status = "404 Not Found"
        sent = 179
        headers = [("X-Request-ID", "abc123")]

    logger.access(
        Response(),
        {},
        {
            "REQUEST_METHOD": "GET",
            "RAW_URI": "/zz%0a?patient=PAT-7",
            "PATH_INFO": f"/zz\n{FORGED}",
            "QUERY_STRING": "patient=PAT-7",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
        },
        dt.timedelta(milliseconds=12),
    )
    logger.error("Invalid request from %s", f"x\n{FORGED}")

    [access_line] = access.getvalue().splitlines()
    assert "PAT-7" not in access_line
    line = json.loads(access_line)
    assert line["path"] == f"/zz\n{FORGED}"
    assert line["method"] == "GET"
    assert line["status"] == 404
    assert line["bytes"] == 179
    assert line["duration_ms"] == 12
    assert line["request_id"] == "abc123"
    [error_line] = error.getvalue().splitlines()
    assert json.loads(error_line)["message"] == f"Invalid request from x\n{FORGED}"
    assert json.loads(error_line)["level"] == "ERROR"


# --- the setting -------------------------------------------------------------


def _manage_check(log_format: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items()}
    env.pop("INTAKE_STARTUP_LOGGED", None)
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", LOG_FORMAT=log_format)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # starts Python processes: ~2 s
def test_log_format_json_makes_django_s_lines_json():
    done = _manage_check("json")

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line]
    assert any(line["message"].startswith("AXES: BEGIN") for line in lines)
    assert all(line["request_id"] == "-" for line in lines)

    refused = _manage_check("xml")
    assert refused.returncode != 0
    assert "LOG_FORMAT must be plain or json" in refused.stderr
