"""The Corti simulator as the tests run and read it, over real HTTP.

`start_simulator` runs `manage.py corti_simulator` in a process of its own;
the rest arms its fault switch, reads its counts, and speaks to it as Corti's
own clients would (a token, a create) or points the dashboard away from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from intake.corti import CortiClient, CortiConfig, clear_clients
from tests.support.processes import BASE_DIR, closed_port

STARTUP_TIMEOUT = 30.0
HTTP_TIMEOUT = (2.0, 5.0)
TOKEN_PATH = "/realms/base/protocol/openid-connect/token"


@dataclass
class Simulator:
    """A running `manage.py corti_simulator` process, reached over real HTTP."""

    process: subprocess.Popen
    base_url: str
    #: ws://127.0.0.1:PORT of its streams websocket.
    stream_origin: str = ""
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

    def streams(self) -> dict:
        """What each interaction's stream sockets received, by interaction ID."""
        return self.state()["streams"]

    def token(self, scope: str | None = None) -> str:
        """A fresh access token; `scope` as the token request's, e.g. "streams"."""
        response = token_response(self, **({} if scope is None else {"scope": scope}))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def stream_url(self, interaction_id: Any, *, token: str | None = None) -> str:
        """The stream socket of an interaction, with `token` in its query."""
        url = (
            f"{self.stream_origin}/audio-bridge/v2/interactions/{interaction_id}"
            f"/streams?tenant-name={self.tenant}"
        )
        return url if token is None else f"{url}&token=Bearer%20{token}"

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
    # "... listening on http://HOST:PORT (streams on ws://HOST:SPORT)"
    rest = lines[0].split("listening on ", 1)[1].strip()
    base_url, _, streams = rest.partition(" (streams on ")
    simulator = Simulator(
        process=process, base_url=base_url, stream_origin=streams.rstrip(")")
    )
    for flag, attr in (
        ("--tenant", "tenant"),
        ("--client-id", "client_id"),
        ("--client-secret", "client_secret"),
    ):
        if flag in args:
            setattr(simulator, attr, args[args.index(flag) + 1])
    return simulator


# --- the fault switch ----------------------------------------------------------


def fault(kind: str, endpoint: str = "create", **fields: Any) -> dict[str, Any]:
    """One fault rule: `kind` answered on `endpoint` ("create", "list", ...)."""
    return {"kind": kind, "endpoint": endpoint, **fields}


def set_faults(sim: Simulator, *faults: dict[str, Any], seed: int | None = None):
    """Replace the simulator's fault rules (an empty call removes them all)."""
    sim.set_faults(*faults, seed=seed)


def clear_faults(sim: Simulator) -> None:
    """Remove every fault rule through the switch's DELETE."""
    requests.delete(f"{sim.base_url}/_simulator/faults", timeout=5)


def post_faults(sim: Simulator, body: Any) -> requests.Response:
    """POST `body` to the fault switch as it is; the switch's own answer."""
    return requests.post(f"{sim.base_url}/_simulator/faults", json=body, timeout=5)


def get_faults(sim: Simulator) -> list:
    response = requests.get(f"{sim.base_url}/_simulator/faults", timeout=5)
    assert response.status_code == 200
    return response.json()


# --- what the simulator counted and holds --------------------------------------


def counts(sim: Simulator) -> dict[str, int]:
    return sim.state()["counts"]


def create_attempts(state: dict) -> int:
    """POSTs that reached the create endpoint, those a fault answered included."""
    return state["counts"].get("create_requests", 0)


def create_requests(sim: Simulator) -> int:
    """How many create requests reached the simulator, faulted or not."""
    return create_attempts(sim.state())


def list_requests(sim: Simulator) -> int:
    return sim.state()["counts"].get("list_requests", 0)


def corti_holds(sim: Simulator) -> list[dict[str, Any]]:
    """What the simulator created; both of its counts must agree."""
    state = sim.state()
    assert state["counts"].get("created", 0) == len(state["interactions"])
    return state["interactions"]


# --- speaking to it as Corti's clients do ----------------------------------------


def token_response(sim: Simulator, *, realm=None, **form) -> requests.Response:
    """The token endpoint's answer to a client-credentials request."""
    data = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        **form,
    }
    return requests.post(sim.auth_url(realm), data=data, timeout=HTTP_TIMEOUT)


def token_for(sim: Simulator) -> str:
    """A fresh access token of the simulator's client."""
    response = token_response(sim)
    assert response.status_code == 200
    return response.json()["access_token"]


def corti_create(sim: Simulator, body: dict[str, Any]) -> uuid.UUID:
    """Create an interaction straight in the simulator, as Corti would have."""
    response = requests.post(
        f"{sim.api_url}/interactions/",
        json=body,
        headers={
            "Authorization": f"Bearer {token_for(sim)}",
            "Tenant-Name": sim.tenant,
        },
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["interactionId"])


def corti_item(
    sim: Simulator, method: str, interaction_id: Any, body: Any = None
) -> requests.Response:
    """One interaction's call straight to the simulator (GET, PATCH, DELETE),
    as another Corti client would make it."""
    return requests.request(
        method,
        f"{sim.api_url}/interactions/{interaction_id}",
        json=body,
        headers={
            "Authorization": f"Bearer {token_for(sim)}",
            "Tenant-Name": sim.tenant,
        },
        timeout=HTTP_TIMEOUT,
    )


# --- the dashboard pointed where nobody answers ----------------------------------


def point_corti_at_a_closed_port(settings, *, userinfo: str = "") -> None:
    """Point the dashboard's Corti settings at a loopback port nobody listens on."""
    base = f"http://{userinfo}127.0.0.1:{closed_port()}"
    settings.CORTI_API_URL = f"{base}/v2"
    settings.CORTI_AUTH_URL = f"{base}{TOKEN_PATH}"
    clear_clients()


@contextmanager
def pointing_at_a_closed_port(settings) -> Iterator[None]:
    """Corti refuses every connection while this lasts."""
    saved = settings.CORTI_API_URL, settings.CORTI_AUTH_URL
    point_corti_at_a_closed_port(settings)
    try:
        yield
    finally:
        settings.CORTI_API_URL, settings.CORTI_AUTH_URL = saved
        clear_clients()
