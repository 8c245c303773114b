"""A local stand-in for Corti: a real HTTP server for the demo and the tests.

It speaks the parts of the API the dashboard uses, as documented in
`schema/interactions-create.openapi.yaml` and the project's API notes:

- ``POST /realms/{tenant}/protocol/openid-connect/token``: OAuth2 client
  credentials; checks the client id and secret and issues tokens that expire.
- ``POST /v2/interactions/``: validates the body against the contract; answers
  201, 400 (RFC 9457 problem details with ``validationErrors``), 401 (missing,
  unknown or expired token, empty body) or 403 (wrong tenant).

Control endpoints for tests and demos, under ``/_simulator/``:
``GET state`` (what was created, request counts), ``POST reset``,
``POST expire-tokens`` (every issued token stops working).

It keeps what was created in memory for as long as it runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .contract import validate_create_request

logger = logging.getLogger(__name__)

TOKEN_PATH_SUFFIX = "/protocol/openid-connect/token"
PROBLEM_BASE = "https://api.corti.app/problems"


@dataclass
class SimulatorState:
    tenant_name: str = "base"
    client_id: str = "sandbox-client"
    client_secret: str = field(default="sandbox-secret", repr=False)
    token_ttl: float = 300.0
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)
    interactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (self.tenant_name, time.monotonic() + self.token_ttl)
        return token

    def token_tenant(self, token: str) -> str | None:
        """Return the tenant a live token belongs to, or None."""
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {k: (t, 0.0) for k, (t, _) in self.tokens.items()}

    def reset(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.interactions.clear()
            self.counts.clear()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tenant": self.tenant_name,
                "interactions": list(self.interactions.values()),
                "counts": dict(self.counts),
            }


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        super().__init__(address, SimulatorHandler)
        self.state = state

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class SimulatorHandler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle's algorithm
    # and delayed ACKs add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    server_version = "CortiSimulator/1.0"

    # --- routing --------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self.request_id = str(uuid.uuid4())
        self.body = self._read_body()
        path = urlsplit(self.path).path
        state = self.server.state
        if method == "POST" and path.endswith(TOKEN_PATH_SUFFIX):
            realm = path.removesuffix(TOKEN_PATH_SUFFIX).rsplit("/", 1)[-1]
            return self._token(realm)
        if path == "/v2/interactions/" and method == "POST":
            return self._create_interaction()
        if path == "/_simulator/state" and method == "GET":
            return self._json(HTTPStatus.OK, state.snapshot())
        if path == "/_simulator/reset" and method == "POST":
            state.reset()
            return self._json(HTTPStatus.OK, {"reset": True})
        if path == "/_simulator/expire-tokens" and method == "POST":
            state.expire_tokens()
            return self._json(HTTPStatus.OK, {"expired": True})
        if path == "/healthz" and method == "GET":
            return self._json(HTTPStatus.OK, {"status": "ok"})
        return self._problem(HTTPStatus.NOT_FOUND, f"No route for {method} {path}.")

    # --- endpoints ------------------------------------------------------

    def _token(self, realm: str) -> None:
        state = self.server.state
        state.count("token_requests")
        if realm != state.tenant_name:
            return self._json(HTTPStatus.NOT_FOUND, {"error": "Realm does not exist"})
        form = {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}
        if form.get("grant_type") != "client_credentials":
            return self._json(
                HTTPStatus.BAD_REQUEST,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Unsupported grant_type",
                },
            )
        if not (
            secrets.compare_digest(form.get("client_id", ""), state.client_id)
            and secrets.compare_digest(
                form.get("client_secret", ""), state.client_secret
            )
        ):
            return self._json(
                HTTPStatus.UNAUTHORIZED,
                {
                    "error": "invalid_client",
                    "error_description": "Invalid client or Invalid client credentials",
                },
            )
        state.count("tokens_issued")
        return self._json(
            HTTPStatus.OK,
            {
                "access_token": state.issue_token(),
                "expires_in": int(state.token_ttl)
                if state.token_ttl >= 1
                else state.token_ttl,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "openid",
            },
        )

    def _create_interaction(self) -> None:
        state = self.server.state
        state.count("create_requests")
        if not self._authorized():
            return None
        try:
            body = json.loads(self.body.decode("utf-8") or "null")
        except ValueError:
            return self._problem(HTTPStatus.BAD_REQUEST, "The body is not JSON.")
        errors = validate_create_request(body)
        if errors:
            return self._problem(
                HTTPStatus.BAD_REQUEST,
                "The request body does not match the contract.",
                validation_errors=[{path: message} for path, message in errors],
            )
        interaction_id = str(uuid.uuid4())
        websocket_url = (
            f"ws://{self.headers.get('Host', 'localhost')}/audio-bridge/v2/"
            f"interactions/{interaction_id}/streams?tenant-name={state.tenant_name}"
        )
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        record = {
            "id": interaction_id,
            "assignedUserId": body.get("assignedUserId") or str(uuid.uuid4()),
            "encounter": body["encounter"],
            "patient": body.get("patient"),
            "createdAt": now,
            "updatedAt": now,
            "endedAt": None,
            "websocketUrl": websocket_url,
        }
        with state.lock:
            state.interactions[interaction_id] = record
        state.count("created")
        return self._json(
            HTTPStatus.CREATED,
            {"interactionId": interaction_id, "websocketUrl": websocket_url},
        )

    def _authorized(self) -> bool:
        state = self.server.state
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        tenant = state.token_tenant(token) if scheme.lower() == "bearer" else None
        if tenant is None:
            # Corti's gateway answers an expired or unknown token with no body.
            self._send(
                HTTPStatus.UNAUTHORIZED,
                b"",
                content_type=None,
                extra={
                    "WWW-Authenticate": 'Bearer error="invalid_token", '
                    'error_description="The access token is missing, unknown or '
                    'expired"'
                },
            )
            return False
        if self.headers.get("Tenant-Name") != tenant:
            self._problem(
                HTTPStatus.FORBIDDEN,
                "The Tenant-Name header does not match the tenant of the token.",
            )
            return False
        return True

    # --- plumbing -------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _problem(
        self,
        status: HTTPStatus,
        detail: str,
        *,
        validation_errors: list[dict[str, str]] | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "requestid": self.request_id,
            "status": int(status),
            "type": f"{PROBLEM_BASE}/{status.phrase.lower().replace(' ', '-')}",
            "detail": detail,
        }
        if validation_errors is not None:
            body["validationErrors"] = validation_errors
        self._send(
            status,
            json.dumps(body).encode(),
            content_type="application/problem+json",
        )

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), content_type="application/json")

    def _send(
        self,
        status: HTTPStatus,
        payload: bytes,
        *,
        content_type: str | None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-Id", self.request_id)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Paths only: query strings can carry patient identifiers.
        logger.info(
            "%s %s -> %s",
            self.command,
            urlsplit(self.path).path,
            args[1] if len(args) > 1 else "-",
        )


def make_server(
    *, host: str = "127.0.0.1", port: int = 0, state: SimulatorState | None = None
) -> SimulatorServer:
    return SimulatorServer((host, port), state or SimulatorState())
