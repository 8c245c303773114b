"""A local stand-in for Corti: a real HTTP server for the demo and the tests.

It speaks the parts of the API the dashboard uses, as documented in
`schema/interactions-create.openapi.yaml` and the project's API notes:

- ``POST /realms/{tenant}/protocol/openid-connect/token``: OAuth2 client
  credentials; checks the client id and secret and issues tokens that expire.
- ``POST /v2/interactions/``: validates the body against the contract; answers
  201, 400 (RFC 9457 problem details with ``validationErrors``), 401 (missing,
  unknown or expired token, empty body) or 403 (wrong tenant).
- ``GET /v2/interactions/``: lists what was created, with Corti's query
  parameters ``sort``, ``direction``, ``pageSize``, ``index``,
  ``encounterStatus`` (repeatable) and ``patient`` (patient identifier).
- ``GET``, ``PATCH`` and ``DELETE /v2/interactions/{id}``: one interaction;
  a PATCH body is checked as Corti checks it (unknown fields, enum values,
  types: `contract.validate_update_request`) and merged field by field; the
  answer is the whole interaction. A deleted interaction is a 404 from then
  on (a second DELETE too).
- The streams websocket (`sandbox.streams`, a port of its own):
  ``/audio-bridge/v2/interactions/{id}/streams?tenant-name=...&token=Bearer%20...``
  speaks Corti's stream protocol (config, CONFIG_ACCEPTED, WebM/Opus audio,
  deterministic ``transcript`` and ``facts`` messages, flush, end, usage,
  ENDED); what each socket received is in the state's ``streams``.

Tokens carry scopes: ``scope`` in the token request may ask for ``openid``,
``streams`` and ``transcribe``. A token with ``streams`` or ``transcribe`` is
limited, as Corti's: only the stream socket takes it (a ``streams`` one), and
every REST endpoint refuses it with 403.

Faults, to prove the dashboard loses and duplicates nothing: each rule names
an endpoint (``create``, ``list``, ``get``, ``update``, ``delete``,
``token``, ``stream`` or ``any``), a kind (see `FAULT_KINDS`), and how often
it fires (a probability ``rate`` and/or a ``count`` of times). On ``update`` and
``delete`` the ``created-...`` kinds do the change and then lose or spoil
the answer, as on ``create``. On ``stream`` (the websocket) a status refuses
the handshake, ``drop`` cuts the socket `delay` seconds after CONFIG_ACCEPTED,
``slow`` accepts the config late and ``config-denied`` denies it. Set them
with ``--fault`` on the command line or with ``POST /_simulator/faults``.

Control endpoints for tests and demos, under ``/_simulator/``:
``GET state`` (what was created, request counts, what each interaction's
stream sockets received under ``streams``), ``POST reset`` (back to
how it started, faults included), ``POST expire-tokens`` (every issued token
stops working), ``GET``/``POST``/``DELETE faults``.

It keeps what was created in memory for as long as it runs.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import random
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .contract import validate_create_request, validate_update_request

logger = logging.getLogger(__name__)

TOKEN_PATH_SUFFIX = "/protocol/openid-connect/token"
ITEM_PREFIX = "/v2/interactions/"
PROBLEM_BASE = "https://api.corti.app/problems"

ENDPOINTS = ("create", "list", "get", "update", "delete", "token", "stream", "any")
#: Endpoints that change something: their "created-..." faults do the work,
#: then lose or spoil the answer.
WORK_ENDPOINTS = ("create", "update", "delete")
#: Every fault the switch knows. Statuses answer at once and change nothing;
#: "slow" does the work and answers after `delay` seconds; "hang" waits
#: `delay` seconds and closes the connection without doing anything; "drop"
#: closes it at once; "created-<status>" and "created-drop" create the
#: interaction and then answer that status or drop the connection: the
#: answers after which a blind retry would create a duplicate;
#: "slow-created" waits `delay` seconds, THEN creates the interaction and
#: answers 201: with a client timeout shorter than the delay, the client has
#: given up (and searched) before the interaction exists.
FAULT_STATUSES = (400, 401, 403, 404, 409, 429, 500, 502, 503, 504)
FAULT_KINDS = (
    *(str(status) for status in FAULT_STATUSES),
    "slow",
    "slow-created",
    "hang",
    "drop",
    "created-drop",
    *(f"created-{status}" for status in (500, 502, 503, 504)),
    "config-denied",
)
#: Kinds only the stream socket understands ("config-denied" answers its
#: config message), and kinds that mean nothing there (it creates nothing).
STREAM_ONLY_KINDS = ("config-denied",)
NOT_FOR_STREAMS = tuple(k for k in FAULT_KINDS if k.startswith(("created-", "slow-")))
#: The scopes a token may ask for; "streams" and "transcribe" make it a
#: limited token that the REST API refuses.
TOKEN_SCOPES = ("openid", "streams", "transcribe")
LIMITED_SCOPES = frozenset({"streams", "transcribe"})
SORT_KEYS = ("id", "assignedUserId", "patient", "createdAt", "endedAt", "updatedAt")
#: The only addresses the simulator listens on, and the only Host names its
#: control endpoints answer to.
LOOPBACK_HOST_NAMES = ("127.0.0.1", "localhost", "[::1]")
MAX_PAGE_SIZE = 100


@dataclass
class Fault:
    """One rule of the fault switch."""

    kind: str
    endpoint: str = "create"
    rate: float = 1.0
    count: int | None = None
    delay: float = 2.0
    retry_after: float | None = 1.0
    validation_errors: list[dict[str, str]] | None = None

    def __post_init__(self) -> None:
        def number(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

        if not number(self.rate) or not number(self.delay):
            raise ValueError("rate and delay must be numbers")
        if self.count is not None and (
            not isinstance(self.count, int) or isinstance(self.count, bool)
        ):
            raise ValueError("count must be a whole number or null")
        if self.retry_after is not None and not number(self.retry_after):
            raise ValueError("retry_after must be a number of seconds or null")
        if self.validation_errors is not None and not (
            isinstance(self.validation_errors, list)
            and all(
                isinstance(item, dict)
                and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in item.items()
                )
                for item in self.validation_errors
            )
        ):
            raise ValueError(
                'validation_errors must be a list of {"field": "message"} objects'
            )
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault {self.kind!r}; one of {', '.join(FAULT_KINDS)}"
            )
        if self.endpoint not in ENDPOINTS:
            raise ValueError(
                f"unknown endpoint {self.endpoint!r}; one of {', '.join(ENDPOINTS)}"
            )
        if self.kind in STREAM_ONLY_KINDS and self.endpoint != "stream":
            raise ValueError(f"fault {self.kind!r} is for the stream endpoint only")
        if self.kind in NOT_FOR_STREAMS and self.endpoint == "stream":
            raise ValueError(f"fault {self.kind!r} means nothing on a stream")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if self.count is not None and self.count < 0:
            raise ValueError("count must not be negative")
        if not 0.0 <= self.delay <= 60.0:
            raise ValueError("delay must be between 0 and 60 seconds")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Read ``ENDPOINT:KIND[:RATE]`` as given to ``--fault``."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(
                f"{text!r}: write ENDPOINT:KIND[:RATE], e.g. create:created-504:0.1"
            )
        rate = float(parts[2]) if len(parts) == 3 else 1.0
        return cls(endpoint=parts[0], kind=parts[1], rate=rate)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        if not isinstance(data, dict):
            raise ValueError("each fault is a JSON object")
        known = {
            "kind",
            "endpoint",
            "rate",
            "count",
            "delay",
            "retry_after",
            "validation_errors",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "endpoint": self.endpoint,
            "rate": self.rate,
            "count": self.count,
            "delay": self.delay,
            "retry_after": self.retry_after,
            "validation_errors": self.validation_errors,
        }


@dataclass
class SimulatorState:
    tenant_name: str = "base"
    client_id: str = "sandbox-client"
    client_secret: str = field(default="sandbox-secret", repr=False)
    token_ttl: float = 300.0
    #: token -> (tenant, expiry on the monotonic clock, scopes)
    tokens: dict[str, tuple[str, float, frozenset[str]]] = field(
        default_factory=dict, repr=False
    )
    interactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The IDs of deleted interactions, oldest first (for tests).
    deleted: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    #: What each interaction's stream sockets received (sandbox.streams).
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ws://host:port of the stream server, once it listens.
    stream_origin: str | None = None
    initial_faults: list[Fault] = field(default_factory=list)
    seed: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.initial_faults = [Fault(**f.as_json()) for f in self.faults]
        self.rng = random.Random(self.seed)  # noqa: S311 (fault dice, not secrets)

    def count(self, name: str) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def issue_token(self, scopes: frozenset[str] = frozenset({"openid"})) -> str:
        token = secrets.token_urlsafe(32)
        expiry = time.monotonic() + self.token_ttl
        with self.lock:
            self.tokens[token] = (self.tenant_name, expiry, scopes)
        return token

    def token_grant(self, token: str) -> tuple[str, frozenset[str]] | None:
        """The tenant and scopes of a live token, or None."""
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0], entry[2]

    def token_tenant(self, token: str) -> str | None:
        """Return the tenant a live token belongs to, or None."""
        grant = self.token_grant(token)
        return None if grant is None else grant[0]

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {k: (t, 0.0, s) for k, (t, _, s) in self.tokens.items()}

    def reset(self) -> None:
        """Back to how the simulator started, faults included."""
        with self.lock:
            self.tokens.clear()
            self.interactions.clear()
            self.deleted.clear()
            self.counts.clear()
            self.streams.clear()
            self.faults = [Fault(**f.as_json()) for f in self.initial_faults]
            self.rng = random.Random(self.seed)  # noqa: S311

    def set_faults(self, faults: list[Fault], seed: int | None = None) -> None:
        with self.lock:
            self.faults = faults
            if seed is not None:
                self.rng = random.Random(seed)  # noqa: S311

    def pick_fault(self, endpoint: str) -> Fault | None:
        """The first rule for `endpoint` that fires this time, if any."""
        with self.lock:
            for fault in self.faults:
                if fault.endpoint not in (endpoint, "any"):
                    continue
                if fault.count == 0:
                    continue
                if fault.rate < 1.0 and self.rng.random() >= fault.rate:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                key = f"fault:{endpoint}:{fault.kind}"
                self.counts[key] = self.counts.get(key, 0) + 1
                self.counts["faults"] = self.counts.get("faults", 0) + 1
                return fault
        return None

    def refund(self, fault: Fault, endpoint: str) -> None:
        """Give back a fault that found nothing to spoil (say, the token was bad)."""
        with self.lock:
            if fault.count is not None:
                fault.count += 1
            for key in (f"fault:{endpoint}:{fault.kind}", "faults"):
                self.counts[key] -= 1
                if not self.counts[key]:
                    del self.counts[key]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tenant": self.tenant_name,
                "interactions": [_public(i) for i in self.interactions.values()],
                "deleted": list(self.deleted),
                "counts": dict(self.counts),
                "faults": [f.as_json() for f in self.faults],
                "streams": copy.deepcopy(self.streams),
            }


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections under load.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, SimulatorHandler)
        self.state = state

    @property
    def base_url(self) -> str:
        # The socket's own name: str host and int port for AF_INET and AF_INET6
        # (server_address is typed for every address family).
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


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
        self._swallow = False
        self._swallowed: tuple[Any, ...] | None = None
        self._did_work = False
        self._answer_delay = 0.0
        self.body = self._read_body()
        path = urlsplit(self.path).path
        state = self.server.state
        refusal = self._host_refusal()
        if refusal is not None:
            # Every route, the API's too: with the sandbox's public client
            # credentials a rebound page could otherwise list every patient.
            return self._problem(*refusal)
        if method == "POST" and path.endswith(TOKEN_PATH_SUFFIX):
            realm = path.removesuffix(TOKEN_PATH_SUFFIX).rsplit("/", 1)[-1]
            return self._faulted("token", lambda: self._token(realm))
        if path == "/v2/interactions/" and method == "POST":
            return self._faulted("create", self._create_interaction)
        if path == "/v2/interactions/" and method == "GET":
            return self._faulted("list", self._list_interactions)
        item = path.removeprefix(ITEM_PREFIX) if path.startswith(ITEM_PREFIX) else ""
        if item and "/" not in item:
            if method == "GET":
                return self._faulted("get", lambda: self._get_interaction(item))
            if method == "PATCH":
                return self._faulted("update", lambda: self._update_interaction(item))
            if method == "DELETE":
                return self._faulted("delete", lambda: self._delete_interaction(item))
        if path.startswith("/_simulator/"):
            refusal = self._control_refusal(method)
            if refusal is not None:
                return self._problem(*refusal)
        if path == "/_simulator/faults":
            return self._faults(method)
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

    def _our_hosts(self) -> set[str]:
        port = self.server.server_address[1]
        return {f"{host}:{port}" for host in LOOPBACK_HOST_NAMES}

    def _host_refusal(self) -> tuple[HTTPStatus, str] | None:
        """Only requests addressed to this machine (no DNS rebinding)."""
        if self.headers.get("Host", "").lower() in self._our_hosts():
            return None
        port = self.server.server_address[1]
        return (
            HTTPStatus.FORBIDDEN,
            "The simulator answers only requests addressed to 127.0.0.1, "
            f"localhost or [::1] on port {port}.",
        )

    def _control_refusal(self, method: str) -> tuple[HTTPStatus, str] | None:
        """Why a control request must be refused, or None to serve it.

        The control endpoints show every sandbox patient and switch faults on:
        only for programs on this machine. A web page the tester has open could
        otherwise read them through DNS rebinding (a Host that is not ours) or
        post to them (a cross-site form sends text/plain with its Origin).
        """
        ours = self._our_hosts()
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in {
            f"http://{host}" for host in ours
        }:
            return (
                HTTPStatus.FORBIDDEN,
                "The simulator's controls refuse requests from web pages.",
            )
        content_type = self.headers.get("Content-Type", "")
        if method == "POST" and (
            content_type.split(";", 1)[0].strip().lower() != "application/json"
        ):
            return (
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "Send control requests as application/json.",
            )
        return None

    # --- faults ---------------------------------------------------------

    def _faulted(self, endpoint: str, handle: Callable[[], None]) -> None:
        """Run `handle`, unless a fault rule says to misbehave instead."""
        state = self.server.state
        state.count(f"{endpoint}_requests")
        fault = state.pick_fault(endpoint)
        if fault is None:
            return handle()
        kind = fault.kind
        if endpoint not in WORK_ENDPOINTS:
            # Only a change has work to spoil; elsewhere these are plain faults.
            kind = kind.removeprefix("created-")
        if kind == "drop":
            return self._drop()
        if kind == "hang":
            time.sleep(fault.delay)
            return self._drop()
        if kind == "slow":
            self._answer_delay = fault.delay
            return handle()
        if kind == "slow-created":
            if endpoint not in WORK_ENDPOINTS:
                self._answer_delay = fault.delay
                return handle()
            # Corti still working on it after the client stopped waiting.
            time.sleep(fault.delay)
            return handle()
        if kind.startswith("created-"):
            # Do the work, then lose or spoil the answer.
            self._swallow = True
            handle()
            self._swallow = False
            if not self._did_work:
                # Nothing was created (a bad token or body): answer as is, and
                # keep the fault for a create it can spoil.
                state.refund(fault, endpoint)
                return self._send_swallowed()
            if kind == "created-drop":
                return self._drop()
            status = HTTPStatus(int(kind.removeprefix("created-")))
            return self._problem(status, _FAULT_DETAILS[status])
        status = HTTPStatus(int(kind))
        if status == HTTPStatus.UNAUTHORIZED:
            return self._send(
                status,
                b"",
                content_type=None,
                extra={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        extra = {}
        if status == HTTPStatus.TOO_MANY_REQUESTS and fault.retry_after is not None:
            extra["Retry-After"] = f"{fault.retry_after:g}"
        if endpoint == "token" and status < 500:
            return self._send(
                status,
                json.dumps(
                    {"error": "fault", "error_description": _FAULT_DETAILS[status]}
                ).encode(),
                content_type="application/json",
                extra=extra,
            )
        if status == HTTPStatus.BAD_REQUEST:
            return self._problem(
                status,
                _FAULT_DETAILS[status],
                validation_errors=fault.validation_errors
                or [{"encounter.identifier": "Rejected by the fault switch."}],
            )
        return self._problem(status, _FAULT_DETAILS[status], extra=extra)

    def _drop(self) -> None:
        """Close the connection without a word."""
        self.close_connection = True
        self._swallowed = None

    def _faults(self, method: str) -> None:
        state = self.server.state
        if method == "GET":
            return self._json(HTTPStatus.OK, state.snapshot()["faults"])
        if method == "DELETE":
            state.set_faults([])
            return self._json(HTTPStatus.OK, [])
        if method != "POST":
            return self._problem(
                HTTPStatus.METHOD_NOT_ALLOWED, "Use GET, POST or DELETE."
            )
        try:
            data = json.loads(self.body.decode("utf-8") or "null")
            if isinstance(data, list):
                data = {"faults": data}
            if not isinstance(data, dict) or not isinstance(data.get("faults"), list):
                raise ValueError('send {"faults": [...], "seed": N}')
            unknown = set(data) - {"faults", "seed"}
            if unknown:
                raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
            faults = [Fault.from_json(item) for item in data["faults"]]
            seed = data.get("seed")
            if seed is not None and not isinstance(seed, int):
                raise ValueError("seed must be an integer")
        except ValueError as exc:
            return self._problem(HTTPStatus.BAD_REQUEST, str(exc))
        state.set_faults(faults, seed)
        return self._json(HTTPStatus.OK, [f.as_json() for f in faults])

    # --- endpoints ------------------------------------------------------

    def _token(self, realm: str) -> None:
        state = self.server.state
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
        scopes = _requested_scopes(form.get("scope", ""))
        if scopes is None:
            return self._json(
                HTTPStatus.BAD_REQUEST,
                {
                    "error": "invalid_scope",
                    "error_description": "Invalid scopes: "
                    f"{form.get('scope', '')} (allowed: {' '.join(TOKEN_SCOPES)})",
                },
            )
        state.count("tokens_issued")
        if LIMITED_SCOPES & set(scopes):
            state.count("stream_tokens_issued")
        return self._json(
            HTTPStatus.OK,
            {
                "access_token": state.issue_token(frozenset(scopes)),
                "expires_in": int(state.token_ttl)
                if state.token_ttl >= 1
                else state.token_ttl,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": " ".join(scopes),
            },
        )

    def _create_interaction(self) -> None:
        state = self.server.state
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
        # The stream server's own origin when it runs; alone (a unit test's
        # make_server) the HTTP server's, as Corti's is on the API host.
        origin = state.stream_origin or f"ws://{self.headers.get('Host', 'localhost')}"
        websocket_url = (
            f"{origin}/audio-bridge/v2/"
            f"interactions/{interaction_id}/streams?tenant-name={state.tenant_name}"
        )
        now = _now()
        record = {
            "id": interaction_id,
            "assignedUserId": body.get("assignedUserId") or str(uuid.uuid4()),
            "encounter": copy.deepcopy(body["encounter"]),
            "patient": body.get("patient"),
            "createdAt": now,
            "updatedAt": now,
            "lastUpdated": now,
            "endedAt": (body["encounter"].get("period") or {}).get("endedAt"),
            "websocketUrl": websocket_url,
        }
        with state.lock:
            record["_seq"] = len(state.interactions)
            state.interactions[interaction_id] = record
        state.count("created")
        self._did_work = True
        return self._json(
            HTTPStatus.CREATED,
            {"interactionId": interaction_id, "websocketUrl": websocket_url},
        )

    def _list_interactions(self) -> None:
        state = self.server.state
        if not self._authorized():
            return None
        query = parse_qs(urlsplit(self.path).query)

        def one(name: str, default: str) -> str:
            return query.get(name, [default])[-1]

        sort = one("sort", "createdAt")
        direction = one("direction", "desc")
        statuses = query.get("encounterStatus", [])
        patient = one("patient", "")
        problems = []
        if sort not in SORT_KEYS:
            problems.append({"sort": f"must be one of: {', '.join(SORT_KEYS)}"})
        if direction not in ("asc", "desc"):
            problems.append({"direction": "must be one of: asc, desc"})
        try:
            page_size = int(one("pageSize", "10"))
            if not 1 <= page_size <= MAX_PAGE_SIZE:
                raise ValueError
        except ValueError:
            problems.append({"pageSize": f"must be a whole number 1-{MAX_PAGE_SIZE}"})
            page_size = 10
        try:
            index = int(one("index", "1"))
            if index < 1:
                raise ValueError
        except ValueError:
            problems.append({"index": "must be a whole number from 1"})
            index = 1
        valid_statuses = (
            "planned",
            "in-progress",
            "on-hold",
            "completed",
            "cancelled",
            "deleted",
        )
        for value in statuses:
            if value not in valid_statuses:
                problems.append({"encounterStatus": f"unknown status {value!r}"})
        if problems:
            return self._problem(
                HTTPStatus.BAD_REQUEST,
                "The query parameters are not valid.",
                validation_errors=problems,
            )
        with state.lock:
            items = list(state.interactions.values())
        if statuses:
            items = [i for i in items if i["encounter"].get("status") in statuses]
        if patient:
            items = [
                i
                for i in items
                if (i.get("patient") or {}).get("identifier") == patient
            ]

        def key(item: dict[str, Any]) -> tuple[bool, str, int]:
            value = item.get(sort)
            if sort == "patient":
                value = (item.get("patient") or {}).get("identifier")
            # Ties (same createdAt) keep creation order, like a serial id.
            return (value is None, str(value or ""), item["_seq"])

        items.sort(key=key, reverse=direction == "desc")
        page = items[(index - 1) * page_size : index * page_size]
        return self._json(
            HTTPStatus.OK,
            {"interactions": [_public(item) for item in page]},
        )

    def _found(self, item: str) -> dict[str, Any] | None:
        """The interaction `item` names (answering 400 or 404 when none)."""
        if not self._authorized():
            return None
        try:
            key = str(uuid.UUID(item))
        except ValueError:
            self._problem(
                HTTPStatus.BAD_REQUEST,
                "The interaction ID is not a UUID.",
                validation_errors=[{"id": "must be a valid uuid"}],
            )
            return None
        state = self.server.state
        with state.lock:
            record = state.interactions.get(key)
        if record is None:
            self._problem(HTTPStatus.NOT_FOUND, f"Interaction {key} was not found.")
        return record

    def _get_interaction(self, item: str) -> None:
        record = self._found(item)
        if record is None:
            return None
        self.server.state.count("read")
        with self.server.state.lock:
            public = _public(record)
        return self._json(HTTPStatus.OK, public)

    def _update_interaction(self, item: str) -> None:
        state = self.server.state
        record = self._found(item)
        if record is None:
            return None
        try:
            body = json.loads(self.body.decode("utf-8") or "null")
        except ValueError:
            return self._problem(HTTPStatus.BAD_REQUEST, "The body is not JSON.")
        errors = validate_update_request(body)
        if errors:
            return self._problem(
                HTTPStatus.BAD_REQUEST,
                "The request body does not match the contract.",
                validation_errors=[{path: message} for path, message in errors],
            )
        now = _now()
        with state.lock:
            if record["id"] not in state.interactions:
                # Deleted while this request was read.
                found = False
            else:
                found = True
                _merge(record, body)
                ended = ((record["encounter"] or {}).get("period") or {}).get("endedAt")
                record["endedAt"] = ended
                record["updatedAt"] = record["lastUpdated"] = now
                public = _public(record)
        if not found:
            return self._problem(
                HTTPStatus.NOT_FOUND, f"Interaction {record['id']} was not found."
            )
        state.count("updated")
        self._did_work = True
        return self._json(HTTPStatus.OK, public)

    def _delete_interaction(self, item: str) -> None:
        state = self.server.state
        record = self._found(item)
        if record is None:
            return None
        with state.lock:
            gone = state.interactions.pop(record["id"], None)
            if gone is not None:
                state.deleted.append(record["id"])
        if gone is None:
            return self._problem(
                HTTPStatus.NOT_FOUND, f"Interaction {record['id']} was not found."
            )
        state.count("deleted")
        self._did_work = True
        return self._send(HTTPStatus.NO_CONTENT, b"", content_type=None)

    def _authorized(self) -> bool:
        state = self.server.state
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        grant = state.token_grant(token) if scheme.lower() == "bearer" else None
        if grant is None:
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
        tenant, scopes = grant
        if scopes & LIMITED_SCOPES:
            # A token minted for a browser's stream socket must not reach
            # patients' records if the page leaks it.
            self._problem(
                HTTPStatus.FORBIDDEN, "This token's scope does not allow this call."
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

    def _send_swallowed(self) -> None:
        swallowed, self._swallowed = self._swallowed, None
        if swallowed is not None:
            status, payload, content_type, extra = swallowed
            self._send(status, payload, content_type=content_type, extra=extra)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _problem(
        self,
        status: HTTPStatus,
        detail: str,
        *,
        validation_errors: list[dict[str, str]] | None = None,
        extra: dict[str, str] | None = None,
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
            extra=extra,
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
        if self._swallow:
            # A "created-..." fault answers instead; keep this for when the
            # work failed and there is nothing to spoil.
            self._swallowed = (status, payload, content_type, extra)
            return
        if self._answer_delay:
            time.sleep(self._answer_delay)
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-Id", self.request_id)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up waiting (a late answer): nothing to tell.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # Paths only: query strings can carry patient identifiers.
        logger.info(
            "%s %s -> %s",
            self.command,
            urlsplit(self.path).path,
            args[1] if len(args) > 1 else "-",
        )


_FAULT_DETAILS = {
    HTTPStatus.BAD_REQUEST: "The request was rejected by the simulator's fault switch.",
    HTTPStatus.UNAUTHORIZED: "Unauthorized (fault switch).",
    HTTPStatus.FORBIDDEN: "The tenant or client is not allowed (fault switch).",
    HTTPStatus.NOT_FOUND: "No such interaction (fault switch).",
    HTTPStatus.CONFLICT: "The interaction changed meanwhile (fault switch).",
    HTTPStatus.TOO_MANY_REQUESTS: "Too many requests (fault switch).",
    HTTPStatus.INTERNAL_SERVER_ERROR: "Internal error (fault switch).",
    HTTPStatus.BAD_GATEWAY: "Bad gateway (fault switch).",
    HTTPStatus.SERVICE_UNAVAILABLE: "The service is unavailable (fault switch).",
    HTTPStatus.GATEWAY_TIMEOUT: "The request took too long upstream (fault switch).",
}


def _requested_scopes(text: str) -> list[str] | None:
    """The scopes a token request asks for, in order (None: one is unknown)."""
    asked = list(dict.fromkeys(text.split()))
    if any(scope not in TOKEN_SCOPES for scope in asked):
        return None
    return asked or ["openid"]


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """An interaction as Corti shows it (without the simulator's bookkeeping)."""
    return copy.deepcopy({k: v for k, v in item.items() if not k.startswith("_")})


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _merge(record: dict[str, Any], body: dict[str, Any]) -> None:
    """Apply a PATCH body: objects field by field, anything else replaced."""
    for name, value in body.items():
        if isinstance(value, dict) and isinstance(record.get(name), dict):
            _merge(record[name], value)
        else:
            record[name] = copy.deepcopy(value)


def make_server(
    *, host: str = "127.0.0.1", port: int = 0, state: SimulatorState | None = None
) -> SimulatorServer:
    """A simulator on `host` (loopback only: it holds sandbox patients)."""
    if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(
            f"{host!r} is not a loopback address: the simulator listens on "
            "127.0.0.1, localhost or ::1 only."
        )
    return SimulatorServer((host.strip("[]"), port), state or SimulatorState())
