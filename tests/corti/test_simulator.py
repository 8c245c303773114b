"""The Corti simulator, spoken to over real HTTP as Corti would be."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from intake.corti.contract import validation_errors
from tests.conftest import start_simulator

TIMEOUT = (2.0, 5.0)
GATEWAY_WWW_AUTHENTICATE = (
    'Bearer error="invalid_token", error_description="The access token is '
    'missing, unknown or expired"'
)
PROBLEMS = "https://api.corti.app/problems"
STATUS_MESSAGE = (
    "must be one of: planned, in-progress, on-hold, completed, cancelled, deleted"
)
ENCOUNTER = {
    "identifier": "ENC-1",
    "status": "planned",
    "type": "consultation",
    "period": {"startedAt": "2026-03-29T01:30:00Z"},
}


@pytest.fixture(scope="module")
def short_lived():
    """A simulator whose tokens live one second."""
    sim = start_simulator("--token-ttl", "1")
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def clinic():
    """A simulator for another tenant with its own client credentials."""
    sim = start_simulator(
        "--tenant", "clinic", "--client-id", "clinic-app", "--client-secret", "s3cret"
    )
    yield sim
    sim.stop()


def token_response(sim, *, realm=None, **form) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        **form,
    }
    return requests.post(sim.auth_url(realm), data=data, timeout=TIMEOUT)


def token_for(sim) -> str:
    response = token_response(sim)
    assert response.status_code == 200
    return response.json()["access_token"]


def create(sim, body, *, token=None, tenant=None, headers=None) -> requests.Response:
    sent = {"Tenant-Name": tenant or sim.tenant}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    kwargs = {"data": body} if isinstance(body, bytes | str) else {"json": body}
    return requests.post(
        f"{sim.api_url}/interactions/", headers=sent, timeout=TIMEOUT, **kwargs
    )


def assert_empty_401(response: requests.Response) -> None:
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["WWW-Authenticate"] == GATEWAY_WWW_AUTHENTICATE
    uuid.UUID(response.headers["X-Request-Id"])


# --- the token endpoint ---------------------------------------------------


def test_token_endpoint_issues_a_bearer_token_for_valid_credentials(corti):
    response = token_response(corti, scope="openid")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert len(body["access_token"]) >= 40
    assert {k: v for k, v in body.items() if k != "access_token"} == {
        "expires_in": 300,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "openid",
    }
    assert corti.state()["counts"] == {"token_requests": 1, "tokens_issued": 1}


def test_each_token_request_gets_a_new_token(corti):
    assert token_for(corti) != token_for(corti)
    assert corti.state()["counts"] == {"token_requests": 2, "tokens_issued": 2}


@pytest.mark.parametrize(
    "form",
    [
        {"client_secret": "wrong-secret"},
        {"client_id": "someone-else"},
        {"client_id": "", "client_secret": ""},
        {"client_secret": "sandbox-secret "},
    ],
)
def test_token_endpoint_refuses_wrong_client_credentials(corti, form):
    response = token_response(corti, **form)
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "Invalid client or Invalid client credentials",
    }
    assert corti.state()["counts"] == {"token_requests": 1}


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", ""])
def test_token_endpoint_refuses_other_grant_types(corti, grant_type):
    response = token_response(corti, grant_type=grant_type)
    assert response.status_code == 400
    assert response.json() == {
        "error": "unsupported_grant_type",
        "error_description": "Unsupported grant_type",
    }
    assert corti.state()["counts"] == {"token_requests": 1}


def test_token_endpoint_checks_grant_type_before_credentials(corti):
    response = token_response(corti, grant_type="password", client_secret="wrong")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_token_endpoint_answers_404_for_an_unknown_realm(corti):
    response = token_response(corti, realm="nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "Realm does not exist"}
    assert corti.state()["counts"] == {"token_requests": 1}


def test_token_endpoint_accepts_only_post(corti):
    response = requests.get(corti.auth_url(), timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "No route for GET /realms/base/protocol/openid-connect/token."
    )
    assert corti.state()["counts"] == {}


def test_issued_tokens_expire_after_their_ttl(short_lived):
    short_lived.reset()
    issued = token_response(short_lived)
    assert issued.json()["expires_in"] == 1
    token = issued.json()["access_token"]
    issued_at = time.monotonic()

    assert create(short_lived, {"encounter": ENCOUNTER}, token=token).status_code == 201
    time.sleep(max(0.0, 1.05 - (time.monotonic() - issued_at)))
    assert_empty_401(create(short_lived, {"encounter": ENCOUNTER}, token=token))

    assert short_lived.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 2,
        "created": 1,
    }


# --- POST /v2/interactions/ ------------------------------------------------


def test_create_answers_201_with_interaction_id_and_websocket_url(corti):
    response = create(corti, {"encounter": ENCOUNTER}, token=token_for(corti))
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"interactionId", "websocketUrl"}
    assert validation_errors(body, "InteractionsCreateResponse") == []
    interaction_id = uuid.UUID(body["interactionId"])
    host = urlsplit(corti.base_url).netloc
    assert body["websocketUrl"] == (
        f"ws://{host}/audio-bridge/v2/interactions/{interaction_id}/streams"
        "?tenant-name=base"
    )
    uuid.UUID(response.headers["X-Request-Id"])
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 1,
        "created": 1,
    }


def test_create_answers_400_problem_for_a_body_that_breaks_the_contract(corti):
    body = {
        "encounter": {"identifier": "ENC-1", "status": "open"},
        "patient": {"identifier": "P-1", "gender": "f"},
    }
    response = create(corti, body, token=token_for(corti))
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem == {
        "requestid": response.headers["X-Request-Id"],
        "status": 400,
        "type": f"{PROBLEMS}/bad-request",
        "detail": "The request body does not match the contract.",
        "validationErrors": [
            {"encounter.type": "is required"},
            {"encounter.status": STATUS_MESSAGE},
            {"patient.gender": "must be one of: male, female, unknown, other"},
        ],
    }
    uuid.UUID(problem["requestid"])
    assert validation_errors(problem, "ErrorResponse") == []
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 1,
    }
    assert corti.state()["interactions"] == []


def test_create_answers_400_problem_for_a_body_that_is_not_json(corti):
    response = create(
        corti,
        b"encounter=ENC-1",
        token=token_for(corti),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem == {
        "requestid": response.headers["X-Request-Id"],
        "status": 400,
        "type": f"{PROBLEMS}/bad-request",
        "detail": "The body is not JSON.",
    }
    assert validation_errors(problem, "ErrorResponse") == []
    assert corti.state()["interactions"] == []


def test_create_answers_400_problem_for_an_empty_body(corti):
    response = create(corti, b"", token=token_for(corti))
    assert response.status_code == 400
    assert response.json()["validationErrors"] == [{"(body)": "must be of type object"}]


def test_create_answers_401_with_empty_body_without_a_token(corti):
    assert_empty_401(create(corti, {"encounter": ENCOUNTER}))
    assert corti.state()["counts"] == {"create_requests": 1}


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token-we-issued", "Bearer ", "Bearer", "Token {token}"],
)
def test_create_answers_401_for_an_unknown_or_malformed_token(corti, authorization):
    token = token_for(corti)
    response = create(
        corti,
        {"encounter": ENCOUNTER},
        headers={"Authorization": authorization.format(token=token)},
    )
    assert_empty_401(response)
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 1,
    }


def test_create_accepts_a_lower_case_bearer_scheme(corti):
    token = token_for(corti)
    response = create(
        corti, {"encounter": ENCOUNTER}, headers={"Authorization": f"bearer {token}"}
    )
    assert response.status_code == 201


def test_create_answers_401_after_tokens_were_expired(corti):
    token = token_for(corti)
    assert create(corti, {"encounter": ENCOUNTER}, token=token).status_code == 201
    expired = requests.post(f"{corti.base_url}/_simulator/expire-tokens", timeout=5)
    assert expired.json() == {"expired": True}
    assert_empty_401(create(corti, {"encounter": ENCOUNTER}, token=token))
    # A new token works again.
    fresh = create(corti, {"encounter": ENCOUNTER}, token=token_for(corti))
    assert fresh.status_code == 201
    assert corti.state()["counts"] == {
        "token_requests": 2,
        "tokens_issued": 2,
        "create_requests": 3,
        "created": 2,
    }


def test_create_checks_the_token_before_the_body(corti):
    assert_empty_401(create(corti, b"not json"))


@pytest.mark.parametrize("tenant_header", ["other", "BASE", ""])
def test_create_answers_403_when_tenant_name_does_not_match_the_token(
    corti, tenant_header
):
    token = token_for(corti)
    response = requests.post(
        f"{corti.api_url}/interactions/",
        json={"encounter": ENCOUNTER},
        headers={"Authorization": f"Bearer {token}", "Tenant-Name": tenant_header},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "requestid": response.headers["X-Request-Id"],
        "status": 403,
        "type": f"{PROBLEMS}/forbidden",
        "detail": "The Tenant-Name header does not match the tenant of the token.",
    }
    assert corti.state()["interactions"] == []


def test_create_answers_403_without_a_tenant_name_header(corti):
    token = token_for(corti)
    response = requests.post(
        f"{corti.api_url}/interactions/",
        json={"encounter": ENCOUNTER},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403
    assert response.json()["type"] == f"{PROBLEMS}/forbidden"


# --- state, reset and routes -----------------------------------------------


def test_state_keeps_what_was_created(corti):
    body = {
        "assignedUserId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "encounter": {**ENCOUNTER, "title": "Knee pain"},
        "patient": {"identifier": "PAT-1", "gender": "female"},
    }
    answer = create(corti, body, token=token_for(corti)).json()
    state = corti.state()
    assert state["tenant"] == "base"
    [record] = state["interactions"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["createdAt"])
    assert record == {
        "id": answer["interactionId"],
        "assignedUserId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "encounter": {**ENCOUNTER, "title": "Knee pain"},
        "patient": {"identifier": "PAT-1", "gender": "female"},
        "createdAt": record["createdAt"],
        "updatedAt": record["createdAt"],
        "endedAt": None,
        "websocketUrl": answer["websocketUrl"],
    }


def test_state_assigns_a_user_when_none_was_given(corti):
    create(corti, {"encounter": ENCOUNTER}, token=token_for(corti))
    [record] = corti.state()["interactions"]
    assert uuid.UUID(record["assignedUserId"]).version == 4
    assert record["patient"] is None


def test_state_keeps_interactions_in_creation_order(corti):
    token = token_for(corti)
    ids = [
        create(
            corti, {"encounter": {**ENCOUNTER, "identifier": f"ENC-{n}"}}, token=token
        ).json()["interactionId"]
        for n in range(3)
    ]
    records = corti.state()["interactions"]
    assert [r["id"] for r in records] == ids
    assert [r["encounter"]["identifier"] for r in records] == [
        "ENC-0",
        "ENC-1",
        "ENC-2",
    ]


def test_reset_empties_state_and_forgets_tokens(corti):
    token = token_for(corti)
    create(corti, {"encounter": ENCOUNTER}, token=token)
    assert len(corti.state()["interactions"]) == 1

    answer = requests.post(f"{corti.base_url}/_simulator/reset", timeout=5)
    assert answer.json() == {"reset": True}
    assert corti.state() == {
        "tenant": "base",
        "interactions": [],
        "counts": {},
        "faults": [],
    }
    assert_empty_401(create(corti, {"encounter": ENCOUNTER}, token=token))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/interactions"),
        ("POST", "/v2/interactions"),
        ("DELETE", "/v2/interactions/42"),
        ("PATCH", "/v2/interactions/42"),
        ("GET", "/_simulator/reset"),
        ("GET", "/nowhere"),
    ],
)
def test_unknown_route_answers_404_problem(corti, method, path):
    response = requests.request(method, f"{corti.base_url}{path}", timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "requestid": response.headers["X-Request-Id"],
        "status": 404,
        "type": f"{PROBLEMS}/not-found",
        "detail": f"No route for {method} {path}.",
    }
    assert corti.state()["counts"] == {}


def test_health_check_answers_ok(corti):
    response = requests.get(f"{corti.base_url}/healthz", timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


# --- the management command's flags ----------------------------------------


def test_command_flags_set_tenant_and_client_credentials(clinic):
    clinic.reset()
    assert (clinic.tenant, clinic.client_id, clinic.client_secret) == (
        "clinic",
        "clinic-app",
        "s3cret",
    )
    default_credentials = token_response(
        clinic, client_id="sandbox-client", client_secret="sandbox-secret"
    )
    assert default_credentials.status_code == 401
    assert token_response(clinic, realm="base").status_code == 404

    token = token_for(clinic)
    created = create(clinic, {"encounter": ENCOUNTER}, token=token)
    assert created.status_code == 201
    assert created.json()["websocketUrl"].endswith("?tenant-name=clinic")
    wrong_tenant = create(clinic, {"encounter": ENCOUNTER}, token=token, tenant="base")
    assert wrong_tenant.status_code == 403
    state = clinic.state()
    assert state["tenant"] == "clinic"
    assert state["counts"] == {
        "token_requests": 3,
        "tokens_issued": 1,
        "create_requests": 2,
        "created": 1,
    }
