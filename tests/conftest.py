"""Shared fixtures: a Corti simulator process, users in each role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from intake.corti import CortiClient, CortiConfig, clear_clients

BASE_DIR = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0


@dataclass
class Simulator:
    """A running `manage.py corti_simulator` process, reached over real HTTP."""

    process: subprocess.Popen
    base_url: str
    tenant: str = "base"
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v2"

    def auth_url(self, tenant: str | None = None) -> str:
        realm = tenant or self.tenant
        return f"{self.base_url}/realms/{realm}/protocol/openid-connect/token"

    def config(self, **overrides) -> CortiConfig:
        values = {
            "api_url": self.api_url,
            "auth_url": self.auth_url(),
            "tenant_name": self.tenant,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
            "retry_budget": 1.0,
            "retry_after_max": 1.0,
        }
        values.update(overrides)
        return CortiConfig(**values)

    def client(self, **overrides) -> CortiClient:
        return CortiClient(self.config(**overrides))

    def _call(self, method: str, path: str) -> dict:
        # The control endpoints take posts as JSON only (a cross-site form
        # cannot send that).
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=b"{}" if method == "POST" else None,
            headers={"Content-Type": "application/json"} if method == "POST" else {},
            method=method,
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def state(self) -> dict:
        return self._call("GET", "/_simulator/state")

    def reset(self) -> None:
        self._call("POST", "/_simulator/reset")

    def expire_tokens(self) -> None:
        self._call("POST", "/_simulator/expire-tokens")

    def set_faults(self, *faults: dict, seed: int | None = None) -> None:
        """Replace the fault rules (see sandbox.simulator.Fault); none clears.

        Raises urllib.error.HTTPError when the simulator refuses a rule.
        """
        body: dict = {"faults": list(faults)}
        if seed is not None:
            body["seed"] = seed
        request = urllib.request.Request(
            f"{self.base_url}/_simulator/faults",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def start_simulator(*args: str) -> Simulator:
    """Start a simulator on a free loopback port; wait until it listens."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "corti_simulator", "--port", "0", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline()), daemon=True
    )
    reader.start()
    reader.join(STARTUP_TIMEOUT)
    if not lines or "listening on " not in lines[0]:
        process.kill()
        process.wait()
        process.stdout.close()
        raise RuntimeError(f"the Corti simulator did not start: {lines!r}")
    base_url = lines[0].split("listening on ", 1)[1].strip()
    simulator = Simulator(process=process, base_url=base_url)
    for flag, attr in (
        ("--tenant", "tenant"),
        ("--client-id", "client_id"),
        ("--client-secret", "client_secret"),
    ):
        if flag in args:
            setattr(simulator, attr, args[args.index(flag) + 1])
    return simulator


@pytest.fixture(scope="session")
def simulator():
    """One simulator process for the whole run."""
    sim = start_simulator()
    yield sim
    sim.stop()


@pytest.fixture
def corti(simulator, settings):
    """The simulator, emptied, with the dashboard's settings pointing at it.

    The cache is emptied too: it holds what the readiness check last found.
    """
    from django.core.cache import cache

    simulator.reset()
    cache.clear()
    settings.CORTI_API_URL = simulator.api_url
    settings.CORTI_AUTH_URL = simulator.auth_url()
    settings.CORTI_TENANT_NAME = simulator.tenant
    settings.CORTI_CLIENT_ID = simulator.client_id
    settings.CORTI_CLIENT_SECRET = simulator.client_secret
    clear_clients()
    yield simulator
    clear_clients()


@pytest.fixture
def clinician(db, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("clin", password="pw-clinician-1")
    user.groups.add(Group.objects.get(name="Clinicians"))
    return user


@pytest.fixture
def administrator(db, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(
        "boss", password="pw-administrator-1", is_staff=True
    )
    user.groups.add(Group.objects.get(name="Administrators"))
    return user


@pytest.fixture
def no_role_user(db, django_user_model):
    return django_user_model.objects.create_user("norole", password="pw-norole-1")


@pytest.fixture
def clinician_client(client, clinician):
    client.force_login(clinician)
    return client


@pytest.fixture
def admin_client_(client, administrator):
    client.force_login(administrator)
    return client


@pytest.fixture(scope="session", autouse=True)
def _test_database_droppable(django_db_setup, django_db_blocker):
    """At the end, end any session still open on the PostgreSQL test database.

    Processes and threads the tests start (the worker, gunicorn, a live
    server's request threads) connect to it; one left connected would stop
    pytest-django from dropping it, and the run would end in an error.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
