"""The dashboard as gunicorn serves it: its logs, and readiness across workers.

One gunicorn (config/gunicorn.conf.py, two worker processes) on a scratch
SQLite database with the production settings and the database cache, talking
to the test simulator; its standard output and error go to files read back
here. Loopback only, bounded request counts.
"""

from __future__ import annotations

import os
import re
import runpy
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.concurrency import probe_in_parallel, timed_get, wait_for
from tests.support.processes import BASE_DIR, SERVED_SETTINGS, free_port

# Real gunicorn workers, hundreds of probes: ~15 s.
pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
WORKERS = 2
THREADS = 4
#: Parallel readiness probes, as a crowd of load balancers (or anyone) sends.
PROBES = 300
#: Seconds within which /readyz and /healthz must answer whatever Corti does.
ANSWER_WITHIN = 1.0
#: intake.services.readiness.CHECK_TIMEOUT, and a margin.
CHECK_TIMEOUT = 3.0
#: Probes in flight at once.
AT_ONCE = 50
FORGED = "2026-11-30 08:00:00,000 CRITICAL forged.logger PATIENT Jane Roe"


@dataclass
class Served:
    url: str
    database: Path
    stdout: Path
    stderr: Path

    def log_lines(self) -> list[str]:
        text = self.stdout.read_text(errors="replace")
        return [
            *text.splitlines(),
            *self.stderr.read_text(errors="replace").splitlines(),
        ]

    def forget_readiness(self) -> None:
        """Empty the shared cache (what the workers know of Corti's sign-in)."""
        with sqlite3.connect(self.database, timeout=20) as db:
            db.execute("DELETE FROM intake_cache")


@pytest.fixture(scope="module")
def served(simulator, tmp_path_factory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("gunicorn")
    database = workdir / "served.sqlite3"
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "INTAKE_", "CORTI_", "AXES_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE=SERVED_SETTINGS,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS=HOST,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DATABASE_URL=f"sqlite:///{database}",
        CORTI_SANDBOX="true",
        CORTI_API_URL=simulator.api_url,
        CORTI_AUTH_URL=simulator.auth_url(),
        HOST=HOST,
        PORT=str(port),
        WEB_CONCURRENCY=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
        PYTHONDONTWRITEBYTECODE="1",
    )
    for command in (["migrate", "--noinput"], ["createcachetable"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command, "--verbosity", "0"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    stdout, stderr = workdir / "stdout.log", workdir / "stderr.log"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--config",
                "config/gunicorn.conf.py",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr.read_text()
            try:
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:  # refused, or workers still booting
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield Served(url=url, database=database, stdout=stdout, stderr=stderr)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- logs: one line per record ------------------------------------------------


def test_a_forged_log_line_in_the_path_stays_inside_its_own_line(served):
    # A line break, a carriage return, a terminal escape, NEL and U+2028.
    path = "/zz%0a" + FORGED.replace(" ", "%20") + "%0d%1b[2J%c2%85%e2%80%a8end"
    escaped = "/zz\\n" + FORGED + "\\r\\x1b[2J\\x85\\u2028end"

    response = requests.get(f"{served.url}{path}", timeout=10)

    assert response.status_code == 404

    def all_logged() -> list[str]:
        lines = [line for line in served.log_lines() if "forged.logger" in line]
        return lines if len(lines) >= 3 else []

    # gunicorn's access line, the dashboard's request line, Django's warning.
    access, request, django = sorted(wait_for(all_logged))
    assert f" INFO intake.requests GET {escaped} 404 " in request, request
    # gunicorn's access line and Django's "Not Found" warning, each whole.
    assert re.fullmatch(
        re.escape(f'{HOST} "GET {escaped}" 404 ') + r"\d+ \d+ms", access
    ), access
    assert django.endswith(f" WARNING django.request Not Found: {escaped}"), django
    lines = served.log_lines()
    assert not any(line.startswith(FORGED[:23]) for line in lines)
    assert not any(char in line for line in lines for char in "\x1b\x85\u2028")


def test_axes_start_up_line_is_written_once_for_all_workers(served):
    def axes_lines() -> list[str]:
        return [line for line in served.log_lines() if "AXES: BEGIN version" in line]

    # Each worker sets Django up as it boots, and used to write the line;
    # now only the first does (config/gunicorn.conf.py).
    wait_for(axes_lines)
    assert len(axes_lines()) == 1, axes_lines()


def test_a_refused_csrf_check_logs_one_line_without_traceback(served):
    response = requests.post(
        f"{served.url}/accounts/login/", data={"username": "x"}, timeout=10
    )

    assert response.status_code == 403
    django = wait_for(
        lambda: [line for line in served.log_lines() if "Forbidden (CSRF" in line]
    )
    assert len(django) == 1, django
    assert django[0].endswith(
        " WARNING django.security.csrf Forbidden (CSRF cookie not set.): "
        "POST /accounts/login/ 403"
    ), django
    assert not [line for line in served.log_lines() if "Traceback" in line]


def test_favicon_is_served_without_a_warning(served):
    response = requests.get(f"{served.url}/favicon.ico", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/svg+xml"

    # The dashboard's own request line (intake.requests) aside.
    def access_lines() -> list[str]:
        return [
            line
            for line in served.log_lines()
            if "/favicon.ico" in line and " intake.requests " not in line
        ]

    wait_for(access_lines)
    [access] = access_lines()
    assert '"GET /favicon.ico" 200 ' in access


# --- readiness: one sign-in check for every worker ---------------------------


def test_parallel_probes_on_every_worker_cost_corti_one_sign_in(served, corti):
    served.forget_readiness()

    answers = probe_in_parallel(f"{served.url}/readyz", PROBES, at_once=AT_ONCE)

    # The first to ask starts the check; those that asked before it finished
    # hear "checking" (503, or 200 "degraded" on the worker that already holds
    # the check's token), the rest the result.
    seen = {r.json()["corti"] for _, r in answers}
    assert seen <= {"ok", "checking"}
    assert "ok" in seen
    assert all(r.status_code == 200 for _, r in answers if r.json()["corti"] == "ok")
    counts = corti.state()["counts"]
    assert counts.get("token_requests") == 1
    assert counts.get("tokens_issued") == 1
    assert max(seconds for seconds, _ in answers) < 2 * ANSWER_WITHIN
    final = requests.get(f"{served.url}/readyz", timeout=5)
    assert (final.status_code, final.json()) == (
        200,
        {"status": "ok", "database": "ok", "corti": "ok"},
    )
    assert corti.state()["counts"]["token_requests"] == 1


def test_a_hanging_sign_in_service_holds_no_worker(served, corti):
    corti.set_faults({"kind": "hang", "endpoint": "token", "delay": 5})
    served.forget_readiness()

    probes = probe_in_parallel(f"{served.url}/readyz", 100, at_once=AT_ONCE)
    # One at a time while the check still hangs: what a load balancer sees.
    health = [timed_get(f"{served.url}/healthz") for _ in range(3)]
    ready = [timed_get(f"{served.url}/readyz") for _ in range(3)]

    # The crowd shares two cores with this test; each alone is well under.
    assert max(seconds for seconds, _ in probes) < 2 * ANSWER_WITHIN
    assert max(seconds for seconds, _ in [*health, *ready]) < ANSWER_WITHIN
    # A worker still holding a token from earlier tests says "degraded".
    assert {r.json()["corti"] for _, r in probes} == {"checking"}
    assert {r.json()["corti"] for _, r in ready} <= {"checking", "unreachable"}
    assert {(r.status_code, r.json()["status"]) for _, r in probes + ready} <= {
        (503, "unavailable"),
        (200, "degraded"),
    }
    assert {(r.status_code, r.json()["status"]) for _, r in health} == {(200, "ok")}
    assert corti.state()["counts"]["token_requests"] == 1
    # The check gives up after its own short timeout; then everyone knows why.
    answer = wait_for(
        lambda: (
            r
            if (r := requests.get(f"{served.url}/readyz", timeout=5)).json()["corti"]
            != "checking"
            else None
        ),
        timeout=CHECK_TIMEOUT + 3,
    )
    body = answer.json()
    assert (answer.status_code, body.pop("status")) in {
        (503, "unavailable"),
        (200, "degraded"),
    }
    assert body == {
        "database": "ok",
        "corti": "unreachable",
        "corti_detail": "Corti's sign-in service did not answer in time.",
    }
    assert corti.state()["counts"]["token_requests"] == 1


#: PostgreSQL's default max_connections, less its superuser_reserved_connections.
POSTGRES_CONNECTIONS = 100 - 3


def test_shipped_sizing_waits_on_corti_in_threads_within_postgres_connections(
    monkeypatch,
):
    """4 processes x 16 threads; every thread's connection + the db_worker fit."""
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    conf = runpy.run_path(str(BASE_DIR / "config" / "gunicorn.conf.py"))
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == (
        "gthread",
        4,
        16,
    )
    # CONN_MAX_AGE keeps one connection per thread; the db_worker holds one.
    assert conf["workers"] * conf["threads"] + 1 <= POSTGRES_CONNECTIONS - 10
    assert conf["timeout"] == 60
