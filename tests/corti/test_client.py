"""The Corti client against the simulator over real HTTP.

`responses` stands in only for answers the simulator cannot give: 429, 5xx,
the older problem shape, malformed success bodies.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import socket
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from intake.corti import clear_clients, get_client
from intake.corti.client import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_RATE_LIMIT_WAITS,
    MIN_ATTEMPT_SECONDS,
    CortiClient,
    CortiConfig,
    redact_url,
)
from intake.corti.errors import (
    CortiAuthError,
    CortiConfigurationError,
    CortiConnectionError,
    CortiDisconnectedError,
    CortiError,
    CortiForbiddenError,
    CortiNotFoundError,
    CortiRateLimitError,
    CortiResponseError,
    CortiServerError,
    CortiTimeoutError,
    CortiUnauthorizedError,
    CortiValidationError,
)
from intake.corti.types import (
    Encounter,
    EncounterStatus,
    EncounterType,
    Gender,
    InteractionCreate,
    InteractionListed,
    Patient,
    parse_rfc3339,
)
from sandbox.contract import validate_create_request
from tests.support.corti import set_faults, start_simulator
from tests.support.processes import closed_port

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
GATEWAY_REASON = "The access token is missing, unknown or expired"

# Fake Corti endpoints for the `responses` tests: nothing listens there.
MOCK_API = "https://api.eu.corti.test/v2"
MOCK_AUTH = "https://auth.eu.corti.test/realms/base/protocol/openid-connect/token"
MOCK_CREATE = f"{MOCK_API}/interactions/"


class RecordingSession(requests.Session):
    """A real session that remembers every call's kwargs and every answer."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict]] = []
        self.answers: list[requests.Response] = []
        self.hooks["response"].append(self._keep)

    def request(self, method, url, *args, **kwargs):
        self.calls.append((method, url, kwargs))
        return super().request(method, url, *args, **kwargs)

    def _keep(self, response, *args, **kwargs):
        self.answers.append(response)

    def trail(self) -> list[tuple[str, str, int]]:
        return [
            (a.request.method, urlsplit(a.url).path, a.status_code)
            for a in self.answers
        ]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def minimal_request(identifier: str = "ENC-1") -> InteractionCreate:
    return InteractionCreate(
        encounter=Encounter(
            identifier=identifier,
            status=EncounterStatus.PLANNED,
            type=EncounterType.CONSULTATION,
            started_at=dt.datetime(2026, 3, 29, 3, 30, tzinfo=COPENHAGEN),
        )
    )


def full_request() -> InteractionCreate:
    return InteractionCreate(
        assigned_user_id=uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479"),
        encounter=Encounter(
            identifier="ENC-42",
            status=EncounterStatus.IN_PROGRESS,
            type=EncounterType.FIRST_CONSULTATION,
            started_at=dt.datetime(2026, 3, 29, 3, 30, tzinfo=COPENHAGEN),
            ended_at=dt.datetime(2026, 3, 29, 4, 15, tzinfo=COPENHAGEN),
            title="Knee pain",
        ),
        patient=Patient(
            identifier="PAT-7",
            name="Alex Example",
            gender=Gender.OTHER,
            birth_date=dt.date(1980, 2, 29),
            pronouns="they/them",
        ),
    )


def recording_client(sim, clock=None, **overrides):
    session = RecordingSession()
    kwargs = {"clock": clock, "wall_clock": clock} if clock else {}
    return CortiClient(sim.config(**overrides), session=session, **kwargs), session


def sent_body(session: RecordingSession) -> dict:
    [create] = [a for a in session.answers if a.url.endswith("/interactions/")]
    return json.loads(create.request.body)


@pytest.fixture
def silent_server():
    """A loopback server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture(scope="module")
def stillborn():
    """A simulator whose tokens are expired the moment they are issued."""
    sim = start_simulator("--token-ttl", "0")
    yield sim
    sim.stop()


@pytest.fixture
def mocked():
    """`responses` with a token endpoint; the client points at fake URLs."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(
            MOCK_AUTH,
            json={"access_token": "tok-1", "expires_in": 300, "token_type": "Bearer"},
        )
        yield rsps


def mocked_client() -> CortiClient:
    return CortiClient(
        CortiConfig(
            api_url=MOCK_API,
            auth_url=MOCK_AUTH,
            tenant_name="base",
            client_id="mock-client",
            client_secret="mock-secret",
        )
    )


def api_calls(rsps) -> list:
    return [c for c in rsps.calls if c.request.url == MOCK_CREATE]


class FakeTime:
    """A clock that moves only when the client sleeps: exact pauses, no waiting."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class EdgeRandom(random.Random):
    """Jitter pinned to one end of its range."""

    def __init__(self, *, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def timed_client(sim, *, rng=None, **overrides):
    """A simulator client with a recording session and fake time."""
    session = RecordingSession()
    fake = FakeTime()
    client = CortiClient(
        sim.config(**overrides),
        session=session,
        clock=fake.clock,
        sleep=fake.sleep,
        rng=rng or random.Random(7),
    )
    return client, session, fake


def mocked_timed_client(*, rng=None, **overrides):
    """A `responses` client with fake time."""
    values = {
        "api_url": MOCK_API,
        "auth_url": MOCK_AUTH,
        "tenant_name": "base",
        "client_id": "mock-client",
        "client_secret": "mock-secret",
        "retry_budget": 1.0,
    }
    values.update(overrides)
    fake = FakeTime()
    client = CortiClient(
        CortiConfig(**values),
        clock=fake.clock,
        sleep=fake.sleep,
        rng=rng or random.Random(7),
    )
    return client, fake


def sent(session: RecordingSession, method: str, suffix: str) -> int:
    """How many requests the session sent (answered or not) to a path."""
    return sum(
        1
        for m, url, _ in session.calls
        if m == method and urlsplit(url).path.endswith(suffix)
    )


def refused() -> requests.ConnectionError:
    """What requests raises when the connection is refused."""
    return requests.ConnectionError(
        MaxRetryError(
            None,
            MOCK_CREATE,
            NewConnectionError(None, "Failed to establish a new connection: refused"),
        )
    )


def dns_failure() -> requests.ConnectionError:
    """What requests raises when the host name does not resolve."""
    return requests.ConnectionError(
        MaxRetryError(
            None,
            MOCK_CREATE,
            NameResolutionError(
                "api.eu.corti.test", None, socket.gaierror(-2, "Name not known")
            ),
        )
    )


def connect_timeout() -> requests.ConnectTimeout:
    return requests.ConnectTimeout("Connection to api.eu.corti.test timed out")


def ceilings(n: int) -> list[float]:
    """The backoff ceilings of the first `n` pauses."""
    return [min(BACKOFF_CAP, BACKOFF_BASE * 2**k) for k in range(n)]


# --- tokens ----------------------------------------------------------------


def test_token_is_reused_across_many_creates(corti):
    client = corti.client()
    ids = {
        client.create_interaction(minimal_request()).interaction_id for _ in range(20)
    }
    assert len(ids) == 20
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 20,
        "created": 20,
    }


def test_token_is_refreshed_before_it_expires(corti):
    clock = FakeClock()
    client, session = recording_client(corti, clock=clock)
    client.create_interaction(minimal_request())
    # expires_in is 300 s; the client refreshes 120 s early, at 180 s.
    clock.now += 179.9
    client.create_interaction(minimal_request())
    assert corti.state()["counts"]["tokens_issued"] == 1

    clock.now += 0.2
    client.create_interaction(minimal_request())
    assert corti.state()["counts"] == {
        "token_requests": 2,
        "tokens_issued": 2,
        "create_requests": 3,
        "created": 3,
    }
    assert session.trail() == [
        ("POST", "/realms/base/protocol/openid-connect/token", 200),
        ("POST", "/v2/interactions/", 201),
        ("POST", "/v2/interactions/", 201),
        ("POST", "/realms/base/protocol/openid-connect/token", 200),
        ("POST", "/v2/interactions/", 201),
    ]
    bearers = [
        a.request.headers["Authorization"]
        for a in session.answers
        if a.url.endswith("/interactions/")
    ]
    assert bearers[0] == bearers[1] != bearers[2]


def test_token_expired_by_the_server_is_replaced_once_and_the_create_retried(corti):
    client, session = recording_client(corti)
    client.create_interaction(minimal_request())
    corti.expire_tokens()

    created = client.create_interaction(minimal_request("ENC-2"))

    assert corti.state()["counts"] == {
        "token_requests": 2,
        "tokens_issued": 2,
        "create_requests": 3,
        "created": 2,
    }
    assert session.trail()[1:] == [
        ("POST", "/v2/interactions/", 201),
        ("POST", "/v2/interactions/", 401),
        ("POST", "/realms/base/protocol/openid-connect/token", 200),
        ("POST", "/v2/interactions/", 201),
    ]
    assert corti.state()["interactions"][-1]["id"] == str(created.interaction_id)


def test_concurrent_callers_share_one_token_fetch(corti):
    client = corti.client()
    barrier = threading.Barrier(16, timeout=10)

    def fetch(_):
        barrier.wait()
        return client.access_token()

    with ThreadPoolExecutor(16) as pool:
        tokens = list(pool.map(fetch, range(16)))

    assert len(set(tokens)) == 1
    assert corti.state()["counts"] == {"token_requests": 1, "tokens_issued": 1}


def test_concurrent_creates_share_one_token_fetch(corti):
    client = corti.client()
    barrier = threading.Barrier(8, timeout=10)

    def create(n):
        barrier.wait()
        return client.create_interaction(minimal_request(f"ENC-{n}"))

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, range(8)))

    assert len({c.interaction_id for c in created}) == 8
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 8,
        "created": 8,
    }


def test_concurrent_401s_share_one_token_refresh(corti):
    client = corti.client()
    client.access_token()
    corti.expire_tokens()
    barrier = threading.Barrier(8, timeout=10)

    def create(n):
        barrier.wait()
        return client.create_interaction(minimal_request(f"ENC-{n}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(8)))

    counts = corti.state()["counts"]
    assert (counts["token_requests"], counts["tokens_issued"]) == (2, 2)
    assert counts["created"] == 8


# --- what goes on the wire -------------------------------------------------


def test_every_api_request_carries_bearer_token_and_tenant_name(corti):
    client, session = recording_client(corti)
    for n in range(3):
        client.create_interaction(minimal_request(f"ENC-{n}"))
    corti.expire_tokens()
    client.create_interaction(minimal_request("ENC-3"))

    token_answers = [a for a in session.answers if "/realms/" in a.url]
    api_answers = [a for a in session.answers if a.url.endswith("/interactions/")]
    tokens = [a.json()["access_token"] for a in token_answers]
    assert len(tokens) == 2
    assert [
        (a.request.headers["Authorization"], a.request.headers["Tenant-Name"])
        for a in api_answers
    ] == [
        (f"Bearer {tokens[0]}", "base"),
        (f"Bearer {tokens[0]}", "base"),
        (f"Bearer {tokens[0]}", "base"),
        (f"Bearer {tokens[0]}", "base"),
        (f"Bearer {tokens[1]}", "base"),
    ]
    assert all(a.request.headers["Accept"] == "application/json" for a in api_answers)
    assert all(
        a.request.headers["User-Agent"] == "corti-intake/1.0" for a in session.answers
    )


def test_token_request_is_a_client_credentials_form_without_bearer(corti):
    client, session = recording_client(corti)
    client.access_token()
    [answer] = session.answers
    request = answer.request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request.headers
    assert parse_qs(request.body) == {
        "grant_type": ["client_credentials"],
        "client_id": ["sandbox-client"],
        "client_secret": ["sandbox-secret"],
        "scope": ["openid"],
    }


def test_every_request_has_an_explicit_connect_and_read_timeout(corti):
    client, session = recording_client(corti, connect_timeout=1.5, read_timeout=4.5)
    client.create_interaction(minimal_request())
    corti.expire_tokens()
    client.create_interaction(minimal_request())
    assert [(method, kwargs["timeout"]) for method, _, kwargs in session.calls] == [
        ("POST", (1.5, 4.5)),
        ("POST", (1.5, 4.5)),
        ("POST", (1.5, 4.5)),
        ("POST", (1.5, 4.5)),
        ("POST", (1.5, 4.5)),
    ]


def test_minimal_request_body_validates_against_the_contract(corti):
    client, session = recording_client(corti)
    client.create_interaction(minimal_request())
    body = sent_body(session)
    assert body == {
        "encounter": {
            "identifier": "ENC-1",
            "status": "planned",
            "type": "consultation",
            "period": {"startedAt": "2026-03-29T01:30:00Z"},
        }
    }
    assert validate_create_request(body) == []


def test_full_request_body_validates_against_the_contract(corti):
    client, session = recording_client(corti)
    client.create_interaction(full_request())
    body = sent_body(session)
    assert body == {
        "assignedUserId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "encounter": {
            "identifier": "ENC-42",
            "status": "in-progress",
            "type": "first_consultation",
            "period": {
                "startedAt": "2026-03-29T01:30:00Z",
                "endedAt": "2026-03-29T02:15:00Z",
            },
            "title": "Knee pain",
        },
        "patient": {
            "identifier": "PAT-7",
            "name": "Alex Example",
            "gender": "other",
            "birthDate": "1980-02-29T00:00:00Z",
            "pronouns": "they/them",
        },
    }
    assert validate_create_request(body) == []
    [record] = corti.state()["interactions"]
    assert (record["encounter"], record["patient"], record["assignedUserId"]) == (
        body["encounter"],
        body["patient"],
        body["assignedUserId"],
    )


def test_empty_optional_fields_are_absent_from_the_body(corti):
    client, session = recording_client(corti)
    request = InteractionCreate(
        assigned_user_id=None,
        encounter=Encounter(
            identifier="ENC-5",
            status=EncounterStatus.DELETED,
            type=EncounterType.INPATIENT,
            started_at=dt.datetime(2026, 7, 1, 9, 0, tzinfo=COPENHAGEN),
            ended_at=None,
            title="",
        ),
        patient=Patient(
            identifier="PAT-5", name="", gender=None, birth_date=None, pronouns=""
        ),
    )
    client.create_interaction(request)
    raw = next(
        a.request.body for a in session.answers if a.url.endswith("/interactions/")
    )
    assert b'""' not in raw
    assert b"null" not in raw
    assert json.loads(raw) == {
        "encounter": {
            "identifier": "ENC-5",
            "status": "deleted",
            "type": "inpatient",
            "period": {"startedAt": "2026-07-01T07:00:00Z"},
        },
        "patient": {"identifier": "PAT-5"},
    }
    assert validate_create_request(json.loads(raw)) == []


def test_create_returns_the_id_and_websocket_url_the_simulator_recorded(corti):
    client, session = recording_client(corti)
    created = client.create_interaction(full_request())
    assert isinstance(created.interaction_id, uuid.UUID)
    [record] = corti.state()["interactions"]
    assert record["id"] == str(created.interaction_id)
    assert record["websocketUrl"] == created.websocket_url
    assert created.websocket_url == (
        f"{corti.stream_origin}/audio-bridge/v2/interactions/{created.interaction_id}/streams"
        "?tenant-name=base"
    )
    assert created.request_id == session.answers[-1].headers["X-Request-Id"]
    uuid.UUID(created.request_id)


# --- refusals the simulator gives ------------------------------------------


def test_wrong_client_secret_is_an_auth_error_naming_the_settings(corti):
    client = corti.client(client_secret="not-the-secret")
    with pytest.raises(CortiAuthError) as caught:
        client.create_interaction(minimal_request())
    error = caught.value
    assert type(error) is CortiAuthError
    assert error.status == 401
    assert error.message == (
        "Corti refused the client credentials (invalid_client): check "
        "CORTI_CLIENT_ID and CORTI_CLIENT_SECRET."
    )
    assert "not-the-secret" not in str(error)
    assert corti.state()["counts"] == {"token_requests": 1}


def test_unknown_tenant_realm_is_an_auth_error_naming_the_tenant_setting(corti):
    client = corti.client(auth_url=corti.auth_url("nowhere"))
    with pytest.raises(CortiAuthError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.status == 404
    assert "CORTI_TENANT_NAME" in caught.value.message
    assert corti.state()["counts"] == {"token_requests": 1}


def test_tenant_name_not_matching_the_token_is_forbidden(corti):
    client, session = recording_client(corti, tenant_name="other-tenant")
    with pytest.raises(CortiForbiddenError) as caught:
        client.create_interaction(minimal_request())
    error = caught.value
    assert error.status == 403
    assert error.problem.detail == (
        "The Tenant-Name header does not match the tenant of the token."
    )
    assert error.request_id == session.answers[-1].headers["X-Request-Id"]
    assert error.request_id == error.problem.raw["requestid"]
    uuid.UUID(error.request_id)
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 1,
    }


def test_missing_encounter_identifier_is_a_validation_error_naming_the_field(corti):
    client, session = recording_client(corti)
    with pytest.raises(CortiValidationError) as caught:
        client.create_interaction(minimal_request(identifier=""))
    error = caught.value
    assert error.status == 400
    assert error.problem.validation_errors == (("encounter.identifier", "is required"),)
    assert error.problem.detail == "The request body does not match the contract."
    assert error.request_id == session.answers[-1].headers["X-Request-Id"]
    uuid.UUID(error.request_id)
    assert error.outcome_unknown is False
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 1,
    }


@pytest.mark.slow  # starts a simulator process of its own: ~2 s
def test_401_after_a_fresh_token_is_unauthorized_after_two_attempts(stillborn):
    stillborn.reset()
    client, session = recording_client(stillborn)
    with pytest.raises(CortiUnauthorizedError) as caught:
        client.create_interaction(minimal_request())
    error = caught.value
    assert error.status == 401
    assert error.request_id == session.answers[-1].headers["X-Request-Id"]
    assert stillborn.state()["counts"] == {
        "token_requests": 2,
        "tokens_issued": 2,
        "create_requests": 2,
    }
    # The gateway's reason, whole: it contains a comma inside the quotes.
    assert error.problem.detail == GATEWAY_REASON


# --- answers only `responses` can give -------------------------------------


def test_401_after_the_refresh_is_not_retried_again(mocked):
    mocked.replace(responses.POST, MOCK_AUTH, json={"access_token": "tok-1"})
    mocked.add(responses.POST, MOCK_AUTH, json={"access_token": "tok-2"})
    mocked.post(MOCK_CREATE, status=401, body=b"")
    with pytest.raises(CortiUnauthorizedError) as caught:
        mocked_client().create_interaction(minimal_request())
    assert caught.value.status == 401
    calls = api_calls(mocked)
    assert [c.request.headers["Authorization"] for c in calls] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    assert [c.request.headers["Tenant-Name"] for c in calls] == ["base", "base"]
    assert len(mocked.calls) == 4


def test_empty_401_keeps_the_www_authenticate_reason_in_the_problem(mocked):
    mocked.post(
        MOCK_CREATE,
        status=401,
        body=b"",
        headers={
            "WWW-Authenticate": 'Bearer error="invalid_token", '
            'error_description="Token signature invalid"',
            "X-Request-Id": "req-401",
        },
    )
    with pytest.raises(CortiUnauthorizedError) as caught:
        mocked_client().create_interaction(minimal_request())
    assert caught.value.problem.detail == "Token signature invalid"
    assert caught.value.request_id == "req-401"
    assert str(caught.value) == "Corti answered 401: Token signature invalid"


@pytest.mark.parametrize("retry_after", ["7", "12.5"])
def test_429_asking_longer_than_the_bound_fails_at_once_with_retry_after(
    mocked, retry_after
):
    mocked.post(
        MOCK_CREATE,
        status=429,
        headers={"Retry-After": retry_after},
        json={
            "requestid": "req-429",
            "status": 429,
            "type": "https://api.corti.app/problems/too-many-requests",
            "detail": "The trial has expired.",
        },
    )
    with pytest.raises(CortiRateLimitError) as caught:
        mocked_client().create_interaction(minimal_request())
    error = caught.value
    assert error.retry_after == float(retry_after)
    assert (error.status, error.request_id) == (429, "req-429")
    assert error.problem.detail == "The trial has expired."
    assert len(api_calls(mocked)) == 1


def test_429_retry_after_as_http_date_becomes_seconds(mocked):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    mocked.post(
        MOCK_CREATE,
        status=429,
        headers={"Retry-After": email.utils.format_datetime(when, usegmt=True)},
    )
    with pytest.raises(CortiRateLimitError) as caught:
        mocked_client().create_interaction(minimal_request())
    assert 55.0 <= caught.value.retry_after <= 60.0


def test_429_without_retry_after_has_none(mocked):
    mocked.post(MOCK_CREATE, status=429, json={"detail": "slow down"})
    with pytest.raises(CortiRateLimitError) as caught:
        mocked_client().create_interaction(minimal_request())
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (
            500,
            b'{"requestid": "req-5xx", "status": 500, "type": "about:blank", '
            b'"detail": "Internal error"}',
            "Internal error",
        ),
        (502, b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (503, b'{"requestid": "req-5xx", "detail": "Maintenance"}', "Maintenance"),
        (
            504,
            b'{"requestid": "req-5xx", "detail": "Upstream timeout"}',
            "Upstream timeout",
        ),
    ],
)
def test_5xx_is_a_server_error_with_unknown_outcome_and_no_retry(
    mocked, status, body, detail
):
    mocked.post(MOCK_CREATE, status=status, body=body)
    with pytest.raises(CortiServerError) as caught:
        mocked_client().create_interaction(minimal_request())
    error = caught.value
    assert error.status == status
    assert error.outcome_unknown is True
    assert error.problem.detail == detail
    # A blind retry could create the interaction twice.
    assert len(api_calls(mocked)) == 1


def test_older_problem_shape_is_read_from_an_error_answer(mocked):
    mocked.post(
        MOCK_CREATE,
        status=404,
        json={
            "requestid": "req-old",
            "type": "https://api.corti.app/problems/not-found",
            "status": 404,
            "title": "Not Found",
            "details": "No such route on this tenant.",
            "instance": "/v2/interactions/",
        },
    )
    with pytest.raises(CortiNotFoundError) as caught:
        mocked_client().create_interaction(minimal_request())
    problem = caught.value.problem
    assert (problem.title, problem.detail, problem.instance, problem.request_id) == (
        "Not Found",
        "No such route on this tenant.",
        "/v2/interactions/",
        "req-old",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"websocketUrl": "wss://api.eu.corti.app/audio-bridge/v2/x"},
        {"interactionId": "not-a-uuid", "websocketUrl": "wss://x"},
        {"interactionId": "f47ac10b-58cc-4372-a567-0e02b2c3d479"},
        {"interactionId": "f47ac10b-58cc-4372-a567-0e02b2c3d479", "websocketUrl": None},
    ],
)
def test_201_without_a_usable_interaction_is_a_response_error(mocked, body):
    mocked.post(MOCK_CREATE, status=201, json=body, headers={"X-Request-Id": "r-201"})
    with pytest.raises(CortiResponseError) as caught:
        mocked_client().create_interaction(minimal_request())
    assert (caught.value.status, caught.value.request_id) == (201, "r-201")
    assert "interactionId or websocketUrl" in caught.value.message


@pytest.mark.parametrize("body", [b"<html>Created</html>", b"", b'["a", "b"]'])
def test_201_with_a_body_that_is_not_a_json_object_is_a_response_error(mocked, body):
    mocked.post(MOCK_CREATE, status=201, body=body, headers={"X-Request-Id": "r-2"})
    with pytest.raises(CortiResponseError) as caught:
        mocked_client().create_interaction(minimal_request())
    assert (caught.value.status, caught.value.request_id) == (201, "r-2")
    assert caught.value.message == (
        "Corti answered 201 with a body that is not a JSON object."
    )


# --- the network failing -----------------------------------------------------


@pytest.mark.slow  # a closed port, retried within the retry budget: ~0.5 s
def test_connection_refused_is_a_connection_error(corti):
    client = corti.client(api_url=f"http://127.0.0.1:{closed_port()}/v2")
    with pytest.raises(CortiConnectionError) as caught:
        client.create_interaction(minimal_request())
    assert type(caught.value) is CortiConnectionError
    assert caught.value.outcome_unknown is False
    assert "nothing was sent" in caught.value.message
    assert corti.state()["counts"] == {"token_requests": 1, "tokens_issued": 1}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("auth_url", "auth.example.invalid/realms/base/token"),
        ("auth_url", "ftp://auth.example.invalid/token"),
        ("api_url", "api.example.invalid/v2"),
        ("api_url", "http://[::1/v2"),
        ("tenant_name", "base\r\nX-Injected: 1"),
    ],
)
def test_unusable_address_or_tenant_is_a_configuration_error_not_retried(
    corti, setting, value
):
    slept: list[float] = []
    client = CortiClient(corti.config(**{setting: value}), sleep=slept.append)

    with pytest.raises(CortiConfigurationError) as caught:
        client.create_interaction(minimal_request())

    assert caught.value.code == "misconfigured"
    assert "nothing was sent" in caught.value.message
    assert slept == []
    assert corti.state()["counts"].get("create_requests", 0) == 0


@responses.activate
def test_an_unexpected_requests_failure_after_sending_is_an_unknown_outcome():
    responses.add(
        responses.POST,
        "https://api.example.invalid/v2/interactions/",
        body=requests.exceptions.TooManyRedirects("Exceeded 30 redirects."),
    )
    responses.add(
        responses.POST,
        "https://auth.example.invalid/token",
        json={"access_token": "t", "expires_in": 300, "token_type": "Bearer"},
    )
    client = CortiClient(
        CortiConfig(
            api_url="https://api.example.invalid/v2",
            auth_url="https://auth.example.invalid/token",
            tenant_name="base",
            client_id="c",
            client_secret="s",
        )
    )

    with pytest.raises(CortiDisconnectedError) as caught:
        client.create_interaction(minimal_request())

    assert caught.value.outcome_unknown is True
    creates = [c for c in responses.calls if "/interactions/" in c.request.url]
    assert len(creates) == 1


@pytest.mark.slow  # a closed port, retried within the retry budget: ~0.3 s
def test_unreachable_sign_in_service_is_a_connection_error(corti):
    port = closed_port()
    client = corti.client(
        auth_url=f"http://127.0.0.1:{port}/realms/base/protocol/openid-connect/token"
    )
    with pytest.raises(CortiConnectionError):
        client.create_interaction(minimal_request())
    assert corti.state()["counts"] == {}


@pytest.mark.slow  # waits out a read timeout: ~0.3 s
def test_read_timeout_is_a_timeout_error_with_unknown_outcome(corti, silent_server):
    url, accepted = silent_server
    client = corti.client(api_url=f"{url}/v2", read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(CortiTimeoutError) as caught:
        client.create_interaction(minimal_request())
    elapsed = time.monotonic() - started
    assert caught.value.outcome_unknown is True
    host = urlsplit(url).netloc
    assert caught.value.message == f"{host} did not answer within 0.3 s."
    assert 0.3 <= elapsed < 2.0
    # The request went out once: a blind retry could create a duplicate.
    assert len(accepted) == 1
    accepted[0].settimeout(1)
    assert accepted[0].recv(4096).startswith(b"POST /v2/interactions/ HTTP/1.1")
    assert corti.state()["counts"] == {"token_requests": 1, "tokens_issued": 1}


@pytest.mark.slow  # waits out a read timeout: ~0.3 s
def test_silent_sign_in_service_is_a_connection_error(corti, silent_server):
    url, _ = silent_server
    client = corti.client(
        auth_url=f"{url}/realms/base/protocol/openid-connect/token", read_timeout=0.3
    )
    with pytest.raises(CortiConnectionError) as caught:
        client.access_token()
    assert caught.value.message == "Corti's sign-in service did not answer in time."


# --- construction and logging ----------------------------------------------


def test_get_client_shares_one_client_per_configuration(corti, settings):
    first = get_client()
    assert get_client() is first
    assert first.config == corti.config(connect_timeout=2.0, read_timeout=5.0)
    settings.CORTI_TENANT_NAME = "other"
    assert get_client() is not first
    clear_clients()
    settings.CORTI_TENANT_NAME = corti.tenant
    assert get_client() is not first


def test_config_from_settings_strips_the_trailing_slash(corti, settings):
    settings.CORTI_API_URL = f"{corti.api_url}/"
    assert CortiConfig.from_settings().api_url == corti.api_url


def test_secrets_and_tokens_stay_out_of_reprs_and_logs(corti, caplog):
    caplog.set_level(logging.DEBUG, logger="intake.corti")
    client, _ = recording_client(corti, tenant_name="other-tenant")
    with pytest.raises(CortiForbiddenError):
        client.create_interaction(minimal_request())
    token = client.access_token()
    assert "sandbox-secret" not in repr(client.config)
    assert token not in repr(client._token)
    assert caplog.records
    assert token not in caplog.text
    assert "sandbox-secret" not in caplog.text


# --- the retry policy: nothing reached Corti ---------------------------------


@pytest.mark.parametrize(
    ("high", "budget", "pauses"),
    [
        # Pauses at the top of their range: 0.2, 0.4, then 0.8 + 0.1 > 0.4 left.
        (True, 1.0, [0.2, 0.4]),
        # At the bottom: 0.1, 0.2, 0.4, then 0.8 + 0.1 > 0.3 left.
        (False, 1.0, [0.1, 0.2, 0.4]),
        # A budget too small for even the first pause: one attempt.
        (True, 0.25, []),
    ],
)
def test_refused_api_is_retried_until_the_budget_is_spent(corti, high, budget, pauses):
    client, session, fake = timed_client(
        corti,
        rng=EdgeRandom(high=high),
        api_url=f"http://127.0.0.1:{closed_port()}/v2",
        retry_budget=budget,
    )
    with pytest.raises(CortiConnectionError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.code == "unreachable"
    assert caught.value.outcome_unknown is False
    assert fake.sleeps == pytest.approx(pauses)
    assert sent(session, "POST", "/interactions/") == len(pauses) + 1
    assert sum(fake.sleeps) + MIN_ATTEMPT_SECONDS <= budget
    # One token served every attempt.
    assert corti.state()["counts"] == {"token_requests": 1, "tokens_issued": 1}


def test_backoff_doubles_from_the_base_and_stops_at_the_cap(mocked):
    mocked.post(MOCK_CREATE, body=refused())
    client, fake = mocked_timed_client(rng=EdgeRandom(high=True), retry_budget=12.0)
    with pytest.raises(CortiConnectionError):
        client.create_interaction(minimal_request())
    # 12 s: 0.2 + 0.4 + 0.8 + 1.6 + 4 x 2.0 = 11.0, then 2.0 + 0.1 > 1.0 left.
    assert fake.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0])
    assert max(fake.sleeps) <= BACKOFF_CAP
    assert fake.sleeps == sorted(fake.sleeps)
    assert len(api_calls(mocked)) == 9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jitter_stays_between_half_the_ceiling_and_the_ceiling(mocked, seed):
    mocked.post(MOCK_CREATE, body=refused())
    client, fake = mocked_timed_client(rng=random.Random(seed), retry_budget=20.0)
    with pytest.raises(CortiConnectionError):
        client.create_interaction(minimal_request())
    assert len(fake.sleeps) >= 8
    for pause, ceiling in zip(fake.sleeps, ceilings(len(fake.sleeps)), strict=True):
        assert ceiling / 2 <= pause <= ceiling
    # Capped pauses are jittered, not all the same.
    assert len(set(fake.sleeps[4:])) == len(fake.sleeps[4:])


def test_jitter_comes_from_the_injected_random_source(mocked):
    mocked.post(MOCK_CREATE, body=refused())
    runs = []
    for seed in (5, 5, 6):
        client, fake = mocked_timed_client(rng=random.Random(seed), retry_budget=5.0)
        with pytest.raises(CortiConnectionError):
            client.create_interaction(minimal_request())
        runs.append(fake.sleeps)
    assert runs[0] == runs[1] != runs[2]


@pytest.mark.parametrize(
    "failure",
    [refused, dns_failure, connect_timeout],
    ids=["refused", "dns", "connect-timeout"],
)
def test_nothing_sent_is_retried_even_for_a_create(mocked, failure):
    mocked.post(MOCK_CREATE, body=failure())
    mocked.add(
        responses.POST,
        MOCK_CREATE,
        status=201,
        json={"interactionId": str(uuid.UUID(int=1)), "websocketUrl": "wss://x"},
    )
    client, fake = mocked_timed_client()
    created = client.create_interaction(minimal_request())
    assert created.interaction_id == uuid.UUID(int=1)
    assert len(api_calls(mocked)) == 2
    assert len(fake.sleeps) == 1
    assert BACKOFF_BASE / 2 <= fake.sleeps[0] <= BACKOFF_BASE


def test_create_succeeding_on_the_fourth_attempt_returns_normally(mocked):
    for failure in (refused, dns_failure, connect_timeout):
        mocked.post(MOCK_CREATE, body=failure())
    mocked.post(
        MOCK_CREATE,
        status=201,
        json={"interactionId": str(uuid.UUID(int=4)), "websocketUrl": "wss://x"},
        headers={"X-Request-Id": "req-4th"},
    )
    client, fake = mocked_timed_client(rng=EdgeRandom(high=True), retry_budget=5.0)
    created = client.create_interaction(minimal_request())
    assert (created.interaction_id, created.request_id) == (uuid.UUID(int=4), "req-4th")
    assert len(api_calls(mocked)) == 4
    assert fake.sleeps == pytest.approx([0.2, 0.4, 0.8])


@pytest.mark.parametrize(
    ("answers", "raised"),
    [
        ([refused(), (503, b'{"detail": "down"}')], CortiServerError),
        ([(503, b'{"detail": "down"}'), refused()], CortiConnectionError),
    ],
    ids=["refused-then-503", "503-then-refused"],
)
def test_the_last_error_is_raised_when_the_budget_runs_out(mocked, answers, raised):
    for answer in answers:
        if isinstance(answer, Exception):
            mocked.get(MOCK_CREATE, body=answer)
        else:
            mocked.get(MOCK_CREATE, status=answer[0], body=answer[1])
    client, fake = mocked_timed_client(rng=EdgeRandom(high=True), retry_budget=2.0)
    with pytest.raises(raised):
        client.list_interactions()
    # 2 s: 0.2 + 0.4 + 0.8 = 1.4, then 1.6 + 0.1 > 0.6 left: four attempts.
    assert fake.sleeps == pytest.approx([0.2, 0.4, 0.8])
    gets = [c for c in mocked.calls if c.request.method == "GET"]
    assert len(gets) == 4


@pytest.mark.slow  # a closed port, retried within the retry budget: ~0.5 s
def test_budget_bounds_the_real_time_spent_against_a_closed_port(corti):
    budget = 0.5
    client, session = recording_client(
        corti, api_url=f"http://127.0.0.1:{closed_port()}/v2", retry_budget=budget
    )
    client.access_token()
    started = time.monotonic()
    with pytest.raises(CortiConnectionError):
        client.create_interaction(minimal_request())
    elapsed = time.monotonic() - started
    # A correctness bound (the retries stop), not a speed assertion.
    assert elapsed < budget + 0.5
    assert sent(session, "POST", "/interactions/") >= 2


# --- the retry policy: 401 and 429 -------------------------------------------


def test_one_injected_401_costs_a_fresh_token_and_the_create_succeeds(corti):
    set_faults(corti, {"kind": "401", "endpoint": "create", "count": 1})
    client, session, fake = timed_client(corti)
    created = client.create_interaction(minimal_request())
    assert sent(session, "POST", "/interactions/") == 2
    assert [status for *_, status in session.trail()] == [200, 401, 200, 201]
    state = corti.state()
    assert [i["id"] for i in state["interactions"]] == [str(created.interaction_id)]
    assert state["counts"]["tokens_issued"] == 2
    assert fake.sleeps == []


def test_two_injected_401s_are_unauthorized_after_two_creates(corti):
    set_faults(corti, {"kind": "401", "endpoint": "create", "count": 2})
    client, session, fake = timed_client(corti)
    with pytest.raises(CortiUnauthorizedError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.status == 401
    assert sent(session, "POST", "/interactions/") == 2
    assert sent(session, "POST", "/token") == 2
    assert corti.state()["interactions"] == []
    assert fake.sleeps == []


def test_429_with_a_short_retry_after_is_waited_out_and_the_create_succeeds(corti):
    set_faults(
        corti, {"kind": "429", "endpoint": "create", "count": 1, "retry_after": 0.3}
    )
    client, session, fake = timed_client(corti)
    created = client.create_interaction(minimal_request())
    assert fake.sleeps == [0.3]
    assert sent(session, "POST", "/interactions/") == 2
    [record] = corti.state()["interactions"]
    assert record["id"] == str(created.interaction_id)


@pytest.mark.slow  # waits out a Retry-After: ~0.3 s
def test_429_really_waits_the_retry_after(corti):
    set_faults(
        corti, {"kind": "429", "endpoint": "create", "count": 1, "retry_after": 0.3}
    )
    client = corti.client()
    client.access_token()
    started = time.monotonic()
    client.create_interaction(minimal_request())
    assert time.monotonic() - started >= 0.3
    assert len(corti.state()["interactions"]) == 1


def test_429_that_never_ends_is_waited_out_three_times_then_raised(corti):
    set_faults(corti, {"kind": "429", "endpoint": "create", "retry_after": 0.3})
    client, session, fake = timed_client(corti, retry_budget=5.0)
    with pytest.raises(CortiRateLimitError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.retry_after == 0.3
    assert fake.sleeps == [0.3] * MAX_RATE_LIMIT_WAITS
    assert sent(session, "POST", "/interactions/") == MAX_RATE_LIMIT_WAITS + 1 == 4
    assert corti.state()["interactions"] == []


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(5.0, 5.0), (1.5, 1.5), (None, None)],
    ids=["far-above-bound", "just-above-bound", "no-retry-after"],
)
def test_429_that_cannot_be_waited_out_is_raised_at_once(corti, retry_after, expected):
    set_faults(
        corti,
        {"kind": "429", "endpoint": "create", "count": 1, "retry_after": retry_after},
    )
    client, session, fake = timed_client(corti, retry_after_max=1.0, retry_budget=10.0)
    with pytest.raises(CortiRateLimitError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.retry_after == expected
    assert caught.value.outcome_unknown is False
    assert sent(session, "POST", "/interactions/") == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(("budget", "pauses"), [(1.0, [0.5]), (0.55, [])])
def test_429_wait_must_fit_the_budget(corti, budget, pauses):
    set_faults(corti, {"kind": "429", "endpoint": "create", "retry_after": 0.5})
    client, session, fake = timed_client(corti, retry_budget=budget)
    with pytest.raises(CortiRateLimitError):
        client.create_interaction(minimal_request())
    assert fake.sleeps == pauses
    assert sent(session, "POST", "/interactions/") == len(pauses) + 1


@pytest.mark.parametrize("retry_after", ["0", "0.05"])
def test_429_retry_after_below_the_backoff_base_waits_the_base(mocked, retry_after):
    mocked.post(MOCK_CREATE, status=429, headers={"Retry-After": retry_after})
    mocked.add(
        responses.POST,
        MOCK_CREATE,
        status=201,
        json={"interactionId": str(uuid.UUID(int=2)), "websocketUrl": "wss://x"},
    )
    client, fake = mocked_timed_client()
    assert client.create_interaction(minimal_request()).interaction_id == uuid.UUID(
        int=2
    )
    assert fake.sleeps == [BACKOFF_BASE]


# --- the retry policy: unknown outcomes ----------------------------------------


@pytest.mark.parametrize(
    ("kind", "raised", "created"),
    [
        ("drop", CortiDisconnectedError, 0),
        ("created-drop", CortiDisconnectedError, 1),
        ("500", CortiServerError, 0),
        ("502", CortiServerError, 0),
        ("503", CortiServerError, 0),
        ("504", CortiServerError, 0),
        ("created-500", CortiServerError, 1),
        ("created-504", CortiServerError, 1),
        ("slow", CortiTimeoutError, 1),
        ("hang", CortiTimeoutError, 0),
    ],
)
def test_create_with_an_unknown_outcome_is_never_sent_twice(
    corti, kind, raised, created
):
    # One fault only: a retry would succeed, and create a second interaction.
    set_faults(corti, {"kind": kind, "endpoint": "create", "count": 1, "delay": 1.0})
    client, session, fake = timed_client(corti, read_timeout=0.3, retry_budget=5.0)
    with pytest.raises(raised) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.outcome_unknown is True
    assert sent(session, "POST", "/interactions/") == 1
    assert fake.sleeps == []
    assert len(corti.state()["interactions"]) == created


@pytest.mark.parametrize("kind", ["created-504", "created-drop"])
def test_lost_answer_after_a_create_leaves_the_interaction_in_corti(corti, kind):
    set_faults(corti, {"kind": kind, "endpoint": "create", "count": 1})
    client, _, _ = timed_client(corti)
    request = full_request()
    with pytest.raises((CortiServerError, CortiDisconnectedError)) as caught:
        client.create_interaction(request)
    assert caught.value.outcome_unknown is True
    # The duplicate hazard: Corti holds it although the client saw a failure.
    [record] = corti.state()["interactions"]
    assert record["encounter"] == request.encounter.to_json()
    # The caller can find it again instead of sending the create a second time.
    [listed] = client.list_interactions(patient="PAT-7")
    assert str(listed.id) == record["id"]
    assert corti.state()["counts"]["create_requests"] == 1


@pytest.mark.parametrize(
    "kind", ["drop", "500", "502", "503", "504", "created-504", "slow", "hang"]
)
def test_list_is_retried_after_an_unknown_outcome(corti, kind):
    set_faults(corti, {"kind": kind, "endpoint": "list", "count": 1, "delay": 1.0})
    client, session, fake = timed_client(corti, read_timeout=0.3)
    assert client.list_interactions() == []
    assert sent(session, "GET", "/interactions/") == 2
    assert len(fake.sleeps) == 1


def test_list_failing_every_time_raises_when_the_budget_is_spent(corti):
    set_faults(corti, {"kind": "503", "endpoint": "list"})
    client, session, fake = timed_client(corti, rng=EdgeRandom(high=True))
    with pytest.raises(CortiServerError) as caught:
        client.list_interactions()
    assert caught.value.status == 503
    assert fake.sleeps == pytest.approx([0.2, 0.4])
    assert sent(session, "GET", "/interactions/") == 3


@pytest.mark.parametrize(
    ("kind", "raised"),
    [("400", CortiValidationError), ("403", CortiForbiddenError)],
)
def test_list_refused_by_corti_is_not_retried(corti, kind, raised):
    set_faults(corti, {"kind": kind, "endpoint": "list", "count": 1})
    client, session, fake = timed_client(corti)
    with pytest.raises(raised):
        client.list_interactions()
    assert sent(session, "GET", "/interactions/") == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(
    ("status", "unknown"),
    [
        (200, True),
        (201, True),
        (204, True),
        (299, True),
        (199, False),
        (300, False),
        (400, False),
        (404, False),
        (500, False),
        (502, False),
    ],
)
def test_response_error_outcome_is_unknown_only_for_a_success_status(status, unknown):
    error = CortiResponseError("unreadable", status=status)
    assert error.outcome_unknown is unknown


def test_unreadable_201_is_an_unknown_outcome_and_not_retried(mocked):
    mocked.post(MOCK_CREATE, status=201, body=b"<html>Created</html>")
    client, fake = mocked_timed_client()
    with pytest.raises(CortiResponseError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.outcome_unknown is True
    assert len(api_calls(mocked)) == 1
    assert fake.sleeps == []


# --- the sign-in service failing -----------------------------------------------


@pytest.mark.parametrize("kind", ["503", "500", "429", "drop"])
def test_sign_in_service_failing_twice_is_retried_and_the_create_succeeds(corti, kind):
    set_faults(corti, {"kind": kind, "endpoint": "token", "count": 2})
    client, session, fake = timed_client(corti)
    created = client.create_interaction(minimal_request())
    assert sent(session, "POST", "/token") == 3
    assert sent(session, "POST", "/interactions/") == 1
    assert len(fake.sleeps) == 2
    state = corti.state()
    assert state["counts"]["tokens_issued"] == 1
    assert [i["id"] for i in state["interactions"]] == [str(created.interaction_id)]


def test_sign_in_service_always_503_is_unreachable_after_the_budget(corti):
    set_faults(corti, {"kind": "503", "endpoint": "token"})
    client, session, fake = timed_client(corti, rng=EdgeRandom(high=True))
    with pytest.raises(CortiConnectionError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.code == "unreachable"
    assert caught.value.message == "Corti's sign-in service answered 503."
    assert fake.sleeps == pytest.approx([0.2, 0.4])
    assert sent(session, "POST", "/token") == 3
    assert sent(session, "POST", "/interactions/") == 0


def test_sign_in_service_refusing_credentials_is_not_retried(corti):
    client, session, fake = timed_client(corti, client_secret="not-the-secret")
    with pytest.raises(CortiAuthError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.status == 401
    assert sent(session, "POST", "/token") == 1
    assert fake.sleeps == []


def test_injected_401_from_the_sign_in_service_is_not_retried(corti):
    set_faults(corti, {"kind": "401", "endpoint": "token", "count": 1})
    client, session, fake = timed_client(corti)
    with pytest.raises(CortiAuthError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.status == 401
    assert sent(session, "POST", "/token") == 1
    assert sent(session, "POST", "/interactions/") == 0
    assert fake.sleeps == []


# --- listing interactions -------------------------------------------------------


def request_for(
    identifier: str,
    patient: str | None = None,
    status: EncounterStatus = EncounterStatus.PLANNED,
) -> InteractionCreate:
    return InteractionCreate(
        encounter=Encounter(
            identifier=identifier,
            status=status,
            type=EncounterType.CONSULTATION,
            started_at=dt.datetime(2026, 3, 29, 3, 30, tzinfo=COPENHAGEN),
        ),
        patient=Patient(identifier=patient) if patient else None,
    )


def last_query(session: RecordingSession) -> dict[str, list[str]]:
    query = urlsplit(session.answers[-1].request.url).query
    return parse_qs(query, keep_blank_values=True)


def test_list_sends_the_default_query(corti):
    client, session = recording_client(corti)
    assert client.list_interactions() == []
    assert last_query(session) == {
        "sort": ["createdAt"],
        "direction": ["desc"],
        "pageSize": ["10"],
        "index": ["1"],
    }
    request = session.answers[-1].request
    assert request.method == "GET"
    assert request.headers["Authorization"].startswith("Bearer ")
    assert request.headers["Tenant-Name"] == "base"
    assert session.trail()[-1] == ("GET", "/v2/interactions/", 200)


def test_list_sends_every_filter_as_a_query_parameter(corti):
    client, session = recording_client(corti)
    client.list_interactions(
        patient="PAT 7&x",
        encounter_status=["planned", "completed"],
        sort="updatedAt",
        direction="asc",
        page_size=5,
        index=2,
    )
    assert last_query(session) == {
        "sort": ["updatedAt"],
        "direction": ["asc"],
        "pageSize": ["5"],
        "index": ["2"],
        "encounterStatus": ["planned", "completed"],
        "patient": ["PAT 7&x"],
    }


def test_list_reads_the_interaction_the_simulator_created(corti):
    client = corti.client()
    request = full_request()
    before = dt.datetime.now(dt.UTC)
    created = client.create_interaction(request)
    after = dt.datetime.now(dt.UTC)
    [listed] = client.list_interactions()
    assert isinstance(listed, InteractionListed)
    assert listed.id == created.interaction_id
    assert isinstance(listed.id, uuid.UUID)
    assert listed.websocket_url == created.websocket_url
    assert listed.created_at is not None
    assert listed.created_at.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=1) <= listed.created_at <= after
    assert listed.encounter == request.encounter.to_json()
    assert listed.patient == request.patient.to_json()
    assert listed.assigned_user_id == "f47ac10b-58cc-4372-a567-0e02b2c3d479"


def test_list_filters_by_patient_and_status_pages_and_sorts_newest_first(corti):
    client = corti.client()
    plan = [
        ("E1", "PAT-A", EncounterStatus.PLANNED),
        ("E2", "PAT-B", EncounterStatus.PLANNED),
        ("E3", "PAT-A", EncounterStatus.COMPLETED),
        ("E4", None, EncounterStatus.IN_PROGRESS),
        ("E5", "PAT-A", EncounterStatus.PLANNED),
    ]
    ids = {
        name: client.create_interaction(
            request_for(name, patient, status)
        ).interaction_id
        for name, patient, status in plan
    }

    def names(items):
        return [item.encounter["identifier"] for item in items]

    assert names(client.list_interactions()) == ["E5", "E4", "E3", "E2", "E1"]
    assert names(client.list_interactions(direction="asc")) == [
        "E1",
        "E2",
        "E3",
        "E4",
        "E5",
    ]
    by_patient = client.list_interactions(patient="PAT-A")
    assert names(by_patient) == ["E5", "E3", "E1"]
    assert [i.id for i in by_patient] == [ids["E5"], ids["E3"], ids["E1"]]
    assert all(i.patient == {"identifier": "PAT-A"} for i in by_patient)
    assert names(client.list_interactions(encounter_status=["planned"])) == [
        "E5",
        "E2",
        "E1",
    ]
    assert names(
        client.list_interactions(
            patient="PAT-A", encounter_status=["completed", "in-progress"]
        )
    ) == ["E3"]
    assert client.list_interactions(patient="PAT-NOBODY") == []
    pages = [client.list_interactions(page_size=2, index=n) for n in (1, 2, 3, 4)]
    assert [names(p) for p in pages] == [["E5", "E4"], ["E3", "E2"], ["E1"], []]
    [no_patient] = client.list_interactions(encounter_status=["in-progress"])
    assert no_patient.patient is None
    times = [i.created_at for i in client.list_interactions()]
    assert times == sorted(times, reverse=True)


VALID_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"interactions": None},
        {"interactions": {}},
        {"interactions": "none"},
        {"interactions": [{"id": VALID_ID}]},
        {"interactions": [{"id": VALID_ID, "encounter": None}]},
        {"interactions": [{"id": VALID_ID, "encounter": "E1"}]},
        {"interactions": [{"id": "not-a-uuid", "encounter": {}}]},
        {"interactions": [{"encounter": {}}]},
        {"interactions": ["E1"]},
        [],
    ],
)
def test_unreadable_list_answer_is_a_response_error(mocked, body):
    mocked.get(MOCK_CREATE, json=body, headers={"X-Request-Id": "req-list"})
    client, fake = mocked_timed_client()
    with pytest.raises(CortiResponseError) as caught:
        client.list_interactions()
    assert (caught.value.status, caught.value.request_id) == (200, "req-list")
    assert caught.value.outcome_unknown is True
    gets = [c for c in mocked.calls if c.request.method == "GET"]
    assert len(gets) == 1
    assert fake.sleeps == []


def test_listed_interaction_accepts_either_id_name_and_optional_fields():
    listed = InteractionListed.from_json(
        {
            "interactionId": VALID_ID,
            "encounter": {"identifier": "E1"},
            "patient": None,
            "createdAt": "2026-03-29T03:30:00.1234567+02:00",
            "assignedUserId": None,
        }
    )
    assert listed == InteractionListed(
        id=uuid.UUID(VALID_ID),
        websocket_url="",
        created_at=dt.datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=dt.UTC),
        encounter={"identifier": "E1"},
        patient=None,
        assigned_user_id="",
    )
    assert listed.created_at.utcoffset() == dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-29T01:30:00Z", dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)),
        (
            "2026-03-29T01:30:00.250000Z",
            dt.datetime(2026, 3, 29, 1, 30, 0, 250000, tzinfo=dt.UTC),
        ),
        ("2026-03-29T03:30:00+02:00", dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)),
        ("2026-03-29T01:30:00", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1774747800, None),
    ],
)
def test_parse_rfc3339_reads_corti_times_and_rejects_the_rest(value, expected):
    parsed = parse_rfc3339(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


@pytest.fixture
def truncating_server():
    """A loopback server that answers 201 but closes halfway through the body."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    requests_seen: list[bytes] = []
    stop = threading.Event()

    def read_request(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                requests_seen.append(read_request(conn))
                conn.sendall(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 200\r\n\r\n{"interactionId": "f47ac10b-'
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests_seen
    stop.set()
    thread.join(2)
    listener.close()


def test_answer_cut_off_mid_body_is_a_disconnect_with_unknown_outcome(
    corti, truncating_server
):
    url, seen = truncating_server
    client, _, fake = timed_client(corti, api_url=f"{url}/v2")
    with pytest.raises(CortiDisconnectedError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.outcome_unknown is True
    assert len(seen) == 1
    assert fake.sleeps == []


# --- credentials written into an address ----------------------------------------

USERINFO = "clinic-proxy:url-secret-42@"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "http://user:secret@auth.example:8443/realms/base/token?x=1",
            "http://***@auth.example:8443/realms/base/token?x=1",
        ),
        ("https://token-only@api.example/v2", "https://***@api.example/v2"),
        ("https://a:b@c@api.example/v2", "https://***@api.example/v2"),
        ("http://u:p@[::1/v2", "http://***@[::1/v2"),
        ("https://api.eu.corti.app/v2", "https://api.eu.corti.app/v2"),
        (
            "https://api.example/v2?mail=a@b.example",
            "https://api.example/v2?mail=a@b.example",
        ),
        ("", ""),
    ],
)
def test_redact_url_hides_the_user_name_and_password(url, shown):
    assert redact_url(url) == shown


def _failure_text(error: BaseException) -> str:
    """The message and the whole traceback, as a log would print them."""
    return "".join(traceback.format_exception(error))


def test_an_unreachable_address_with_credentials_shows_only_the_host(corti):
    port = closed_port()
    client = corti.client(
        api_url=f"http://{USERINFO}127.0.0.1:{port}/v2", retry_budget=0.0
    )
    with pytest.raises(CortiConnectionError) as caught:
        client.create_interaction(minimal_request())
    assert (
        caught.value.message
        == f"Could not connect to 127.0.0.1:{port}: nothing was sent."
    )
    assert "url-secret-42" not in _failure_text(caught.value)


@pytest.mark.slow  # waits out a read timeout: ~0.3 s
def test_a_silent_address_with_credentials_shows_only_the_host(corti, silent_server):
    url, _ = silent_server
    host = urlsplit(url).netloc
    client = corti.client(
        api_url=url.replace("://", f"://{USERINFO}") + "/v2", read_timeout=0.3
    )
    with pytest.raises(CortiTimeoutError) as caught:
        client.create_interaction(minimal_request())
    assert caught.value.message == f"{host} did not answer within 0.3 s."
    assert "url-secret-42" not in _failure_text(caught.value)


@pytest.mark.parametrize(
    "auth_url",
    [
        f"ftp://{USERINFO}auth.example.invalid/token",
        f"{USERINFO}auth.example.invalid/token",
        f"http://{USERINFO}auth.example.invalid:port/token",
    ],
)
def test_an_unusable_address_with_credentials_never_shows_them(corti, auth_url):
    client = corti.client(auth_url=auth_url)
    with pytest.raises(CortiConfigurationError) as caught:
        client.access_token()
    assert "url-secret-42" not in _failure_text(caught.value)


# --- the readiness check's sign-in ---------------------------------------------


@pytest.mark.slow  # a silent sign-in service, a 3 s read timeout: ~3 s
def test_check_sign_in_never_waits_for_a_token_refresh_under_way(corti, silent_server):
    url, _ = silent_server
    client = corti.client(
        auth_url=f"{url}/realms/base/protocol/openid-connect/token", read_timeout=3.0
    )
    refused: list[CortiError] = []

    def refresh() -> None:
        try:
            client.access_token()
        except CortiConnectionError as exc:
            refused.append(exc)

    # A submission's token refresh hangs on a silent sign-in service ...
    refreshing = threading.Thread(target=refresh)
    refreshing.start()
    time.sleep(0.2)

    # ... and the readiness check, with its own short timeout, does not queue.
    started = time.monotonic()
    with pytest.raises(CortiConnectionError) as caught:
        client.check_sign_in(timeout=0.3)
    elapsed = time.monotonic() - started

    assert caught.value.message == "Corti's sign-in service did not answer in time."
    assert elapsed < 1.0, elapsed
    refreshing.join(10)
    assert len(refused) == 1  # the refresh took its own, longer, timeout


def test_check_sign_in_keeps_the_fresh_token_and_a_failure_keeps_the_old(corti):
    client = corti.client()
    client.check_sign_in(timeout=1.0)
    token = client.access_token()
    assert corti.state()["counts"]["tokens_issued"] == 1

    corti.set_faults({"kind": "503", "endpoint": "token"})
    with pytest.raises(CortiConnectionError):
        client.check_sign_in(timeout=1.0)

    assert client.has_usable_token()
    assert client.access_token() == token
