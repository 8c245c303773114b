"""The Corti simulator, spoken to over real HTTP as Corti would be."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from sandbox.contract import validation_errors
from tests.support.corti import (
    get_faults,
    post_faults,
    start_simulator,
    token_for,
    token_response,
)
from tests.support.processes import BASE_DIR

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


@pytest.mark.slow  # a simulator process of its own, a 1 s wait: ~3 s
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
    # The stream server's origin (sandbox/streams.py), not the API's.
    assert body["websocketUrl"] == (
        f"{corti.stream_origin}/audio-bridge/v2/interactions/{interaction_id}"
        "/streams?tenant-name=base"
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
    expired = requests.post(
        f"{corti.base_url}/_simulator/expire-tokens", json={}, timeout=5
    )
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
        "lastUpdated": record["createdAt"],
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

    answer = requests.post(f"{corti.base_url}/_simulator/reset", json={}, timeout=5)
    assert answer.json() == {"reset": True}
    assert corti.state() == {
        "tenant": "base",
        "interactions": [],
        "deleted": [],
        "counts": {},
        "faults": [],
        "streams": {},
    }
    assert_empty_401(create(corti, {"encounter": ENCOUNTER}, token=token))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/interactions"),
        ("POST", "/v2/interactions"),
        ("DELETE", "/v2/interactions/42/notes"),
        ("PATCH", "/v2/interactions/"),
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


@pytest.mark.slow  # starts a simulator process: ~1.5 s
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


# --- GET /v2/interactions/ -------------------------------------------------

LISTED_KEYS = {
    "id",
    "assignedUserId",
    "encounter",
    "patient",
    "createdAt",
    "updatedAt",
    # In Corti's official SDK's type of a read interaction, beside updatedAt.
    "lastUpdated",
    "endedAt",
    "websocketUrl",
}


def listing(sim, params=None, *, token=None, tenant=None) -> requests.Response:
    sent = {"Tenant-Name": tenant or sim.tenant}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return requests.get(
        f"{sim.api_url}/interactions/", params=params, headers=sent, timeout=TIMEOUT
    )


def listed_ids(sim, token, params=None) -> list[str]:
    response = listing(sim, params, token=token)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["interactions"]]


def encounter(n, status="planned") -> dict:
    return {**ENCOUNTER, "identifier": f"ENC-{n}", "status": status}


def create_many(sim, token, count) -> list[str]:
    """Create `count` interactions; their ids in creation order."""
    ids = []
    for n in range(count):
        response = create(sim, {"encounter": encounter(n)}, token=token)
        assert response.status_code == 201
        ids.append(response.json()["interactionId"])
    return ids


def assert_problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["requestid"] == response.headers["X-Request-Id"]
    uuid.UUID(problem["requestid"])
    assert problem["status"] == status
    assert problem["type"].startswith(f"{PROBLEMS}/")
    assert problem["detail"]
    return problem


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token-we-issued", "Token {token}"]
)
def test_list_answers_401_with_empty_body_without_a_valid_token(corti, authorization):
    token = token_for(corti)
    create(corti, {"encounter": ENCOUNTER}, token=token)
    headers = {"Tenant-Name": "base"}
    if authorization:
        headers["Authorization"] = authorization.format(token=token)
    response = requests.get(
        f"{corti.api_url}/interactions/", headers=headers, timeout=TIMEOUT
    )
    assert_empty_401(response)
    assert corti.state()["counts"]["list_requests"] == 1


def test_list_answers_401_after_tokens_were_expired(corti):
    token = token_for(corti)
    assert listing(corti, token=token).status_code == 200
    corti.expire_tokens()
    assert_empty_401(listing(corti, token=token))


@pytest.mark.parametrize("tenant_header", ["other", "BASE", None])
def test_list_answers_403_when_tenant_name_does_not_match_the_token(
    corti, tenant_header
):
    token = token_for(corti)
    create(corti, {"encounter": ENCOUNTER}, token=token)
    headers = {"Authorization": f"Bearer {token}"}
    if tenant_header is not None:
        headers["Tenant-Name"] = tenant_header
    response = requests.get(
        f"{corti.api_url}/interactions/", headers=headers, timeout=TIMEOUT
    )
    problem = assert_problem(response, 403)
    assert problem == {
        "requestid": response.headers["X-Request-Id"],
        "status": 403,
        "type": f"{PROBLEMS}/forbidden",
        "detail": "The Tenant-Name header does not match the tenant of the token.",
    }


def test_list_shows_interactions_as_corti_lists_them(corti):
    token = token_for(corti)
    body = {
        "assignedUserId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "encounter": {**ENCOUNTER, "title": "Knee pain"},
        "patient": {"identifier": "PAT-1", "gender": "female"},
    }
    answer = create(corti, body, token=token).json()
    create(corti, {"encounter": encounter(2)}, token=token)

    response = listing(corti, token=token)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    page = response.json()
    assert set(page) == {"interactions"}
    items = page["interactions"]
    assert len(items) == 2
    for item in items:
        assert set(item) == LISTED_KEYS
    first = items[1]
    assert first == {
        "id": answer["interactionId"],
        "assignedUserId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "encounter": {**ENCOUNTER, "title": "Knee pain"},
        "patient": {"identifier": "PAT-1", "gender": "female"},
        "createdAt": first["createdAt"],
        "updatedAt": first["createdAt"],
        "lastUpdated": first["createdAt"],
        "endedAt": None,
        "websocketUrl": answer["websocketUrl"],
    }
    assert items[0]["patient"] is None
    # What the state shows is what the list shows, without bookkeeping keys.
    state = corti.state()
    assert {i["id"]: i for i in state["interactions"]} == {i["id"]: i for i in items}
    for record in state["interactions"]:
        assert not [key for key in record if key.startswith("_")]


def test_list_is_empty_before_anything_was_created(corti):
    assert listing(corti, token=token_for(corti)).json() == {"interactions": []}
    assert corti.state()["counts"]["list_requests"] == 1


def test_list_defaults_to_newest_first_ten_per_page(corti):
    token = token_for(corti)
    ids = create_many(corti, token, 12)
    newest_first = ids[::-1]
    assert listed_ids(corti, token) == newest_first[:10]
    assert listed_ids(corti, token, {"index": 2}) == newest_first[10:]
    explicit = {"direction": "desc", "sort": "createdAt"}
    assert listed_ids(corti, token, explicit) == newest_first[:10]


def test_list_sorts_ascending_on_request(corti):
    token = token_for(corti)
    ids = create_many(corti, token, 3)
    assert listed_ids(corti, token, {"direction": "asc"}) == ids


SORT_CASES = [
    # (assignedUserId, patient identifier, gender) in creation order; each
    # key sorts them differently.
    ("c0000000-0000-4000-8000-000000000000", "P-3", "female"),
    ("a0000000-0000-4000-8000-000000000000", "P-1", "unknown"),
    ("d0000000-0000-4000-8000-000000000000", "P-4", "male"),
    ("b0000000-0000-4000-8000-000000000000", "P-2", "other"),
]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize(
    "sort",
    ["id", "assignedUserId", "patient", "createdAt", "endedAt", "updatedAt"],
)
def test_list_sorts_by_each_allowed_key(corti, sort, direction):
    token = token_for(corti)
    created = []
    for n, (user, patient, gender) in enumerate(SORT_CASES):
        body = {
            "assignedUserId": user,
            "encounter": encounter(n),
            # The identifier is not the first key: sorting must use it.
            "patient": {"gender": gender, "identifier": patient},
        }
        response = create(corti, body, token=token)
        created.append((response.json()["interactionId"], user, patient))
    creation_order = [c[0] for c in created]
    expected_asc = {
        "id": sorted(creation_order),
        "assignedUserId": [c[0] for c in sorted(created, key=lambda c: c[1])],
        "patient": [c[0] for c in sorted(created, key=lambda c: c[2])],
        "createdAt": creation_order,
        "updatedAt": creation_order,
        # Nobody has ended: ties keep creation order.
        "endedAt": creation_order,
    }[sort]
    expected = expected_asc if direction == "asc" else expected_asc[::-1]
    params = {"sort": sort, "direction": direction}
    assert listed_ids(corti, token, params) == expected


def test_list_pages_with_page_size_and_index(corti):
    token = token_for(corti)
    newest_first = create_many(corti, token, 5)[::-1]
    pages = [
        listed_ids(corti, token, {"pageSize": 2, "index": index})
        for index in (1, 2, 3, 4)
    ]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:], []]
    assert listed_ids(corti, token, {"pageSize": 1, "index": 5}) == newest_first[4:]
    assert listed_ids(corti, token, {"pageSize": 100}) == newest_first
    assert listed_ids(corti, token, {"index": 2}) == []
    assert listed_ids(corti, token, {"pageSize": 3, "index": 999}) == []


def test_list_filters_by_patient_identifier(corti):
    token = token_for(corti)
    ids = []
    for n, patient in enumerate(["P-1", "P-2", "P-1", None]):
        body = {"encounter": encounter(n)}
        if patient:
            body["patient"] = {"identifier": patient, "gender": "other"}
        ids.append(create(corti, body, token=token).json()["interactionId"])
    assert listed_ids(corti, token, {"patient": "P-1"}) == [ids[2], ids[0]]
    assert listed_ids(corti, token, {"patient": "P-2"}) == [ids[1]]
    assert listed_ids(corti, token, {"patient": "P-9"}) == []
    assert listed_ids(corti, token, {"patient": "p-1"}) == []


def test_list_filters_by_repeated_encounter_status(corti):
    token = token_for(corti)
    ids = []
    for n, status in enumerate(["planned", "in-progress", "completed", "planned"]):
        body = {"encounter": encounter(n, status)}
        ids.append(create(corti, body, token=token).json()["interactionId"])
    assert listed_ids(corti, token, {"encounterStatus": "planned"}) == [
        ids[3],
        ids[0],
    ]
    both = {"encounterStatus": ["in-progress", "completed"], "direction": "asc"}
    assert listed_ids(corti, token, both) == [ids[1], ids[2]]
    assert listed_ids(corti, token, {"encounterStatus": "cancelled"}) == []
    combined = {"encounterStatus": ["planned", "completed"], "pageSize": 2}
    assert listed_ids(corti, token, combined) == [ids[3], ids[2]]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"sort": "title"}, "sort"),
        ({"sort": "createdat"}, "sort"),
        ({"direction": "up"}, "direction"),
        ({"direction": "ASC"}, "direction"),
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "101"}, "pageSize"),
        ({"pageSize": "x"}, "pageSize"),
        ({"pageSize": "-1"}, "pageSize"),
        ({"index": "0"}, "index"),
        ({"index": "x"}, "index"),
        ({"encounterStatus": "open"}, "encounterStatus"),
        ({"encounterStatus": ["planned", "open"]}, "encounterStatus"),
    ],
)
def test_list_answers_400_problem_for_invalid_query_parameters(corti, params, name):
    token = token_for(corti)
    create(corti, {"encounter": ENCOUNTER}, token=token)
    response = listing(corti, params, token=token)
    problem = assert_problem(response, 400)
    assert problem["type"] == f"{PROBLEMS}/bad-request"
    assert problem["detail"] == "The query parameters are not valid."
    assert [list(error) for error in problem["validationErrors"]] == [[name]]
    assert validation_errors(problem, "ErrorResponse") == []


def test_list_names_every_invalid_query_parameter(corti):
    params = {"sort": "x", "direction": "x", "pageSize": "0", "index": "0"}
    response = listing(corti, params, token=token_for(corti))
    problem = assert_problem(response, 400)
    assert [list(e) for e in problem["validationErrors"]] == [
        ["sort"],
        ["direction"],
        ["pageSize"],
        ["index"],
    ]


# --- the fault switch: control ----------------------------------------------


def fault_json(kind, **overrides) -> dict:
    return {
        "kind": kind,
        "endpoint": "create",
        "rate": 1.0,
        "count": None,
        "delay": 2.0,
        "retry_after": 1.0,
        "validation_errors": None,
        **overrides,
    }


def attempt(sim, token, body=None) -> int | str:
    """Create once: the status, or "dropped" for a connection closed unanswered."""
    try:
        return create(sim, body or {"encounter": ENCOUNTER}, token=token).status_code
    except requests.ConnectionError:
        return "dropped"


def test_faults_can_be_set_read_and_cleared(corti):
    assert get_faults(corti) == []
    rules = [
        {"kind": "503", "count": 2},
        {"kind": "slow", "endpoint": "list", "rate": 0.25, "delay": 0.5},
    ]
    answer = post_faults(corti, {"faults": rules, "seed": 7})
    expected = [
        fault_json("503", count=2),
        fault_json("slow", endpoint="list", rate=0.25, delay=0.5),
    ]
    assert (answer.status_code, answer.json()) == (200, expected)
    assert get_faults(corti) == expected
    assert corti.state()["faults"] == expected

    cleared = requests.delete(f"{corti.base_url}/_simulator/faults", timeout=5)
    assert (cleared.status_code, cleared.json()) == (200, [])
    assert get_faults(corti) == []
    assert attempt(corti, token_for(corti)) == 201


def test_faults_accept_a_bare_list(corti):
    answer = post_faults(corti, [{"kind": "504", "endpoint": "any"}])
    assert answer.status_code == 200
    assert get_faults(corti) == [fault_json("504", endpoint="any")]


def test_faults_route_refuses_other_methods(corti):
    response = requests.patch(f"{corti.base_url}/_simulator/faults", timeout=5)
    problem = assert_problem(response, 405)
    assert problem["detail"] == "Use GET, POST or DELETE."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"kind": "418"}], "unknown fault '418'"),
        ([{"kind": "created-429"}], "unknown fault 'created-429'"),
        ([{"kind": "503", "endpoint": "remove"}], "unknown endpoint 'remove'"),
        ([{"kind": "503", "rate": 1.5}], "rate must be between 0 and 1"),
        ([{"kind": "503", "rate": -0.1}], "rate must be between 0 and 1"),
        ([{"kind": "503", "count": -1}], "count must not be negative"),
        ([{"kind": "slow", "delay": -1}], "delay must be between 0 and 60"),
        ([{"kind": "503", "colour": "red"}], "unknown fault fields: colour"),
        ([{"endpoint": "create"}], "kind"),
        (["503"], "each fault is a JSON object"),
        ({"faults": [], "seed": "3"}, "seed must be an integer"),
        ({"faults": [], "seed": 1.5}, "seed must be an integer"),
        ({"faults": {"kind": "503"}}, '{"faults": [...], "seed": N}'),
        ({"seed": 3}, '{"faults": [...], "seed": N}'),
        ("503", '{"faults": [...], "seed": N}'),
    ],
)
def test_faults_answer_400_problem_for_an_invalid_body(corti, body, message):
    before = [{"kind": "502", "count": 1}]
    assert post_faults(corti, before).status_code == 200
    response = post_faults(corti, body)
    problem = assert_problem(response, 400)
    assert message in problem["detail"]
    # The rules in force do not change.
    assert get_faults(corti) == [fault_json("502", count=1)]


@pytest.mark.parametrize("body", [b"not json", b"", b"\xff\xfe"])
def test_faults_answer_400_problem_for_a_body_that_is_not_json(corti, body):
    response = requests.post(
        f"{corti.base_url}/_simulator/faults",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert_problem(response, 400)
    assert get_faults(corti) == []


# --- the fault switch: each kind on the create endpoint ----------------------

STATUS_FAULTS = {
    "400": "bad-request",
    "403": "forbidden",
    "429": "too-many-requests",
    "500": "internal-server-error",
    "502": "bad-gateway",
    "503": "service-unavailable",
    "504": "gateway-timeout",
}


@pytest.mark.parametrize("kind", sorted(STATUS_FAULTS))
def test_status_fault_answers_that_status_and_creates_nothing(corti, kind):
    token = token_for(corti)
    assert post_faults(corti, [{"kind": kind}]).status_code == 200
    response = create(corti, {"encounter": ENCOUNTER}, token=token)
    problem = assert_problem(response, int(kind))
    assert problem["type"] == f"{PROBLEMS}/{STATUS_FAULTS[kind]}"
    assert validation_errors(problem, "ErrorResponse") == []
    if kind == "400":
        assert problem["validationErrors"] == [
            {"encounter.identifier": "Rejected by the fault switch."}
        ]
    else:
        assert "validationErrors" not in problem
    if kind == "429":
        assert response.headers["Retry-After"] == "1"
    else:
        assert "Retry-After" not in response.headers
    state = corti.state()
    assert state["interactions"] == []
    assert state["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "create_requests": 1,
        "faults": 1,
        f"fault:create:{kind}": 1,
    }


def test_400_fault_carries_custom_validation_errors(corti):
    errors = [{"patient.identifier": "is required"}, {"encounter.type": "nope"}]
    post_faults(corti, [{"kind": "400", "validation_errors": errors}])
    response = create(corti, {"encounter": ENCOUNTER}, token=token_for(corti))
    problem = assert_problem(response, 400)
    assert problem["validationErrors"] == errors
    assert corti.state()["interactions"] == []


def test_401_fault_answers_an_empty_body_with_www_authenticate(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "401"}])
    response = create(corti, {"encounter": ENCOUNTER}, token=token)
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    uuid.UUID(response.headers["X-Request-Id"])
    assert corti.state()["interactions"] == []


@pytest.mark.parametrize(
    ("retry_after", "header"), [(7, "7"), (2.5, "2.5"), (0, "0"), (None, None)]
)
def test_429_fault_sends_retry_after_from_the_rule(corti, retry_after, header):
    token = token_for(corti)
    post_faults(corti, [{"kind": "429", "retry_after": retry_after}])
    response = create(corti, {"encounter": ENCOUNTER}, token=token)
    assert_problem(response, 429)
    assert response.headers.get("Retry-After") == header


@pytest.mark.slow  # waits out a delay: ~0.3 s
def test_slow_fault_answers_201_after_the_delay_and_creates(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "slow", "delay": 0.3}])
    started = time.monotonic()
    response = create(corti, {"encounter": ENCOUNTER}, token=token)
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert elapsed >= 0.3
    [record] = corti.state()["interactions"]
    assert record["id"] == response.json()["interactionId"]
    assert corti.state()["counts"]["fault:create:slow"] == 1


@pytest.mark.slow  # waits out three delays: ~0.5 s
def test_a_slow_rule_on_any_endpoint_delays_every_answer_by_the_same_time(corti):
    """A fixed Corti answer delay, as benchmarks/create_latency.py sets it."""
    post_faults(
        corti, [{"kind": "slow", "endpoint": "any", "rate": 1.0, "delay": 0.15}]
    )

    def timed(call):
        started = time.monotonic()
        answer = call()
        return answer, time.monotonic() - started

    token, token_seconds = timed(lambda: token_for(corti))
    created, create_seconds = timed(
        lambda: create(corti, {"encounter": ENCOUNTER}, token=token)
    )
    listed, list_seconds = timed(
        lambda: requests.get(
            f"{corti.api_url}/interactions/",
            headers={"Authorization": f"Bearer {token}", "Tenant-Name": corti.tenant},
            timeout=TIMEOUT,
        )
    )
    assert (created.status_code, listed.status_code) == (201, 200)
    assert all(0.15 <= s < 1.0 for s in (token_seconds, create_seconds, list_seconds))
    assert len(corti.state()["interactions"]) == 1
    counts = corti.state()["counts"]
    fired = [counts.get(f"fault:{name}:slow") for name in ("token", "create", "list")]
    assert fired == [1, 1, 1]


@pytest.mark.slow  # waits out a delay: ~1 s
def test_slow_created_fault_creates_only_after_the_delay_then_answers_201(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "slow-created", "delay": 0.6}])
    started = time.monotonic()
    # A client that gives up before the delay, as the dashboard does.
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{corti.api_url}/interactions/",
            json={"encounter": ENCOUNTER},
            headers={"Authorization": f"Bearer {token}", "Tenant-Name": corti.tenant},
            timeout=(2, 0.2),
        )
    # Given up, and nothing exists yet: a search now finds nothing.
    assert corti.state()["interactions"] == []
    time.sleep(max(0.0, 0.6 - (time.monotonic() - started)) + 0.3)
    [record] = corti.state()["interactions"]
    assert record["encounter"]["identifier"] == ENCOUNTER["identifier"]
    assert corti.state()["counts"]["fault:create:slow-created"] == 1
    # A patient client gets the 201 after the delay.
    post_faults(corti, [{"kind": "slow-created", "delay": 0.3}])
    started = time.monotonic()
    response = create(corti, {"encounter": ENCOUNTER}, token=token)
    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3


@pytest.mark.slow  # waits out a hang: ~0.3 s
def test_hang_fault_waits_then_closes_without_answer_and_creates_nothing(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "hang", "delay": 0.3}])
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        create(corti, {"encounter": ENCOUNTER}, token=token)
    assert time.monotonic() - started >= 0.3
    state = corti.state()
    assert state["interactions"] == []
    assert state["counts"]["fault:create:hang"] == 1
    assert "created" not in state["counts"]


def test_drop_fault_closes_at_once_and_creates_nothing(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "drop", "delay": 5}])
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        create(corti, {"encounter": ENCOUNTER}, token=token)
    assert time.monotonic() - started < 1.0
    assert corti.state()["interactions"] == []


def test_created_drop_fault_creates_then_closes_without_answer(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "created-drop"}])
    with pytest.raises(requests.ConnectionError):
        create(corti, {"encounter": ENCOUNTER}, token=token)
    [record] = corti.state()["interactions"]
    assert record["encounter"] == ENCOUNTER
    assert corti.state()["counts"]["created"] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_created_status_fault_creates_then_answers_that_status(corti, status):
    token = token_for(corti)
    post_faults(corti, [{"kind": f"created-{status}"}])
    response = create(corti, {"encounter": ENCOUNTER}, token=token)
    problem = assert_problem(response, status)
    assert "interactionId" not in problem
    state = corti.state()
    [record] = state["interactions"]
    assert record["encounter"] == ENCOUNTER
    assert state["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "faults": 1,
        f"fault:create:created-{status}": 1,
        "create_requests": 1,
        "created": 1,
    }


# --- the fault switch: how often, which rule, which endpoint -----------------


def test_count_fires_exactly_that_many_times(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "503", "count": 2}])
    assert [attempt(corti, token) for _ in range(4)] == [503, 503, 201, 201]
    assert get_faults(corti) == [fault_json("503", count=0)]
    counts = corti.state()["counts"]
    assert (counts["faults"], counts["fault:create:503"], counts["created"]) == (
        2,
        2,
        2,
    )


def test_count_zero_never_fires(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "503", "count": 0}])
    assert [attempt(corti, token) for _ in range(2)] == [201, 201]
    assert "faults" not in corti.state()["counts"]


def fault_pattern(sim, token, *, seed, rate=0.5, tries=50) -> list[bool]:
    body = {"faults": [{"kind": "503", "rate": rate}], "seed": seed}
    assert post_faults(sim, body).status_code == 200
    outcomes = [attempt(sim, token) for _ in range(tries)]
    assert set(outcomes) <= {201, 503}
    return [outcome == 503 for outcome in outcomes]


def test_rate_with_a_seed_repeats_the_same_sequence(corti):
    token = token_for(corti)
    first = fault_pattern(corti, token, seed=42)
    again = fault_pattern(corti, token, seed=42)
    other = fault_pattern(corti, token, seed=43)
    assert first == again
    assert other != first
    assert 15 <= sum(first) <= 35
    assert 15 <= sum(other) <= 35
    counts = corti.state()["counts"]
    assert counts["fault:create:503"] == 2 * sum(first) + sum(other)
    assert counts["created"] == 150 - counts["faults"]


@pytest.mark.parametrize(("rate", "fired"), [(0.0, 0), (1.0, 20)])
def test_rate_zero_never_fires_and_one_always_fires(corti, rate, fired):
    token = token_for(corti)
    assert sum(fault_pattern(corti, token, seed=1, rate=rate, tries=20)) == fired


def test_rate_and_count_combine(corti):
    token = token_for(corti)
    post_faults(
        corti, {"faults": [{"kind": "503", "rate": 0.5, "count": 3}], "seed": 5}
    )
    outcomes = [attempt(corti, token) for _ in range(40)]
    assert outcomes.count(503) == 3
    assert outcomes[-10:] == [201] * 10


def test_first_matching_rule_wins(corti):
    token = token_for(corti)
    post_faults(
        corti,
        [
            {"kind": "500", "endpoint": "list"},
            {"kind": "503", "count": 1},
            {"kind": "502", "count": 2},
            {"kind": "504"},
        ],
    )
    assert [attempt(corti, token) for _ in range(5)] == [503, 502, 502, 504, 504]
    assert listing(corti, token=token).status_code == 500


def test_list_fault_hits_only_the_list_endpoint(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "503", "endpoint": "list"}])
    assert attempt(corti, token) == 201
    assert token_response(corti).status_code == 200
    response = listing(corti, token=token)
    assert_problem(response, 503)
    counts = corti.state()["counts"]
    assert counts["fault:list:503"] == counts["faults"] == 1
    assert counts["list_requests"] == 1


def test_token_fault_hits_only_the_token_endpoint(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "503", "endpoint": "token", "count": 1}])
    assert attempt(corti, token) == 201
    assert listing(corti, token=token).status_code == 200
    assert_problem(token_response(corti), 503)
    assert token_response(corti).status_code == 200
    counts = corti.state()["counts"]
    assert counts["fault:token:503"] == counts["faults"] == 1
    # Three token requests (the fault's among them); two were answered.
    assert counts["token_requests"] == 3
    assert counts["tokens_issued"] == 2


@pytest.mark.parametrize(("kind", "status"), [("403", 403), ("429", 429)])
def test_token_endpoint_client_error_fault_answers_an_oauth_error(corti, kind, status):
    post_faults(corti, [{"kind": kind, "endpoint": "token"}])
    response = token_response(corti)
    assert response.status_code == status
    assert response.json()["error"] == "fault"
    assert response.json()["error_description"]


def test_any_fault_hits_every_api_endpoint_but_not_the_controls(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "502", "endpoint": "any", "count": 3}])
    assert_problem(token_response(corti), 502)
    assert attempt(corti, token) == 502
    assert_problem(listing(corti, token=token), 502)
    assert requests.get(f"{corti.base_url}/healthz", timeout=5).status_code == 200
    counts = corti.state()["counts"]
    assert counts["faults"] == 3
    assert counts["fault:token:502"] == 1
    assert counts["fault:create:502"] == 1
    assert counts["fault:list:502"] == 1
    assert attempt(corti, token) == 201


@pytest.mark.parametrize("endpoint", ["list", "token"])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_created_status_fault_elsewhere_is_the_plain_status(corti, endpoint, status):
    token = token_for(corti)
    post_faults(corti, [{"kind": f"created-{status}", "endpoint": endpoint}])
    if endpoint == "list":
        response = listing(corti, token=token)
    else:
        response = token_response(corti)
    assert_problem(response, status)
    state = corti.state()
    assert state["interactions"] == []
    assert state["counts"][f"fault:{endpoint}:created-{status}"] == 1


@pytest.mark.parametrize("endpoint", ["list", "token"])
def test_created_drop_fault_elsewhere_is_a_plain_drop(corti, endpoint):
    token = token_for(corti)
    post_faults(corti, [{"kind": "created-drop", "endpoint": endpoint}])
    with pytest.raises(requests.ConnectionError):
        if endpoint == "list":
            listing(corti, token=token)
        else:
            token_response(corti)
    counts = corti.state()["counts"]
    assert counts[f"fault:{endpoint}:created-drop"] == 1
    # Every request is counted; only the first token request got a token.
    assert counts["token_requests"] == (2 if endpoint == "token" else 1)
    assert counts["tokens_issued"] == 1
    assert counts.get("list_requests", 0) == (1 if endpoint == "list" else 0)


@pytest.mark.parametrize("kind", ["created-504", "created-drop"])
def test_created_fault_is_kept_when_the_token_is_bad(corti, kind):
    post_faults(corti, [{"kind": kind, "count": 1}])
    assert_empty_401(create(corti, {"encounter": ENCOUNTER}, token="not-ours"))
    assert_empty_401(create(corti, {"encounter": ENCOUNTER}))
    assert get_faults(corti) == [fault_json(kind, count=1)]
    assert corti.state()["counts"] == {"create_requests": 2}

    outcome = attempt(corti, token_for(corti))
    assert outcome == (504 if kind == "created-504" else "dropped")
    assert get_faults(corti) == [fault_json(kind, count=0)]
    assert attempt(corti, token_for(corti)) == 201
    state = corti.state()
    assert len(state["interactions"]) == 2
    assert state["counts"]["faults"] == 1
    assert state["counts"][f"fault:create:{kind}"] == 1


def test_created_fault_is_kept_for_a_wrong_tenant_or_a_bad_body(corti):
    token = token_for(corti)
    post_faults(corti, [{"kind": "created-503", "count": 1}])
    forbidden = create(corti, {"encounter": ENCOUNTER}, token=token, tenant="other")
    assert forbidden.status_code == 403
    rejected = create(corti, {"encounter": {"identifier": "x"}}, token=token)
    assert rejected.status_code == 400
    assert "validationErrors" in rejected.json()
    assert "faults" not in corti.state()["counts"]
    assert attempt(corti, token) == 503
    assert attempt(corti, token) == 201


def test_state_counts_requests_faults_and_creations(corti):
    token = token_for(corti)
    post_faults(
        corti,
        [
            {"kind": "503", "count": 1},
            {"kind": "created-502", "count": 1},
            {"kind": "500", "endpoint": "list", "count": 1},
        ],
    )
    assert [attempt(corti, token) for _ in range(3)] == [503, 502, 201]
    assert [listing(corti, token=token).status_code for _ in range(2)] == [500, 200]
    assert corti.state()["counts"] == {
        "token_requests": 1,
        "tokens_issued": 1,
        "faults": 3,
        "fault:create:503": 1,
        "fault:create:created-502": 1,
        "fault:list:500": 1,
        # Every request is counted, the faulted ones too.
        "create_requests": 3,
        "created": 2,
        "list_requests": 2,
    }


# --- the management command's fault flags ------------------------------------


@pytest.fixture(scope="module")
def failing():
    """A simulator started with every create failing."""
    sim = start_simulator("--fault", "create:503:1", "--fault-seed", "3")
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def tuned():
    """A simulator with CLI faults using a custom delay and Retry-After."""
    sim = start_simulator(
        "--fault",
        "create:slow",
        "--fault",
        "list:429",
        "--fault-delay",
        "0.3",
        "--fault-retry-after",
        "7",
    )
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def dice():
    """A simulator whose creates fail half the time, with seeded dice."""
    sim = start_simulator("--fault", "create:503:0.5", "--fault-seed", "3")
    yield sim
    sim.stop()


@pytest.mark.slow  # starts a simulator process: ~1.5 s
def test_command_fault_flag_makes_creates_fail_from_the_start(failing):
    failing.reset()
    assert get_faults(failing) == [fault_json("503")]
    token = token_for(failing)
    assert_problem(create(failing, {"encounter": ENCOUNTER}, token=token), 503)
    assert listing(failing, token=token).json() == {"interactions": []}
    assert failing.state()["interactions"] == []


@pytest.mark.slow  # starts a simulator process: ~1.5 s
def test_reset_restores_the_command_line_faults(failing):
    failing.reset()
    requests.delete(f"{failing.base_url}/_simulator/faults", timeout=5)
    token = token_for(failing)
    assert attempt(failing, token) == 201
    post_faults(failing, [{"kind": "502", "count": 1}])
    failing.reset()
    assert get_faults(failing) == [fault_json("503")]
    assert failing.state()["interactions"] == []
    assert attempt(failing, token_for(failing)) == 503


@pytest.mark.slow  # starts a simulator process: ~1.5 s
def test_command_fault_delay_and_retry_after_apply_to_its_faults(tuned):
    tuned.reset()
    assert get_faults(tuned) == [
        fault_json("slow", delay=0.3, retry_after=7.0),
        fault_json("429", endpoint="list", delay=0.3, retry_after=7.0),
    ]
    token = token_for(tuned)
    started = time.monotonic()
    assert attempt(tuned, token) == 201
    assert time.monotonic() - started >= 0.3
    response = listing(tuned, token=token)
    assert_problem(response, 429)
    assert response.headers["Retry-After"] == "7"


@pytest.mark.slow  # starts a simulator process: ~1.5 s
def test_reset_rolls_the_seeded_dice_back_to_the_start(dice):
    dice.reset()
    token = token_for(dice)
    first = [attempt(dice, token) for _ in range(30)]
    assert set(first) == {201, 503}
    dice.reset()
    token = token_for(dice)
    assert [attempt(dice, token) for _ in range(30)] == first
    # Dice seeded over HTTP are replaced by the command's seed on reset too.
    post_faults(dice, {"faults": [{"kind": "503", "rate": 0.5}], "seed": 99})
    dice.reset()
    token = token_for(dice)
    assert [attempt(dice, token) for _ in range(30)] == first


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nonsense", "write ENDPOINT:KIND[:RATE]"),
        ("create:teapot", "unknown fault 'teapot'"),
        ("remove:503", "unknown endpoint 'remove'"),
        ("create:503:2", "rate must be between 0 and 1"),
    ],
)
@pytest.mark.slow  # a Python process per case: ~6 s
def test_command_refuses_an_invalid_fault_flag(value, message):
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "corti_simulator",
            "--fault",
            value,
            "--port",
            "0",
        ],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "listening on" not in result.stdout
    assert "argument --fault" in result.stderr
    assert message in result.stderr


# --- bugs found while writing these tests, now fixed -------------------------


def test_token_endpoint_429_fault_sends_retry_after(corti):
    post_faults(corti, [{"kind": "429", "endpoint": "token", "retry_after": 7}])
    response = token_response(corti)
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == "7"


@pytest.mark.parametrize(
    "rule",
    [
        # Accepted, then every create dies in the handler (a dropped connection).
        {"kind": "429", "retry_after": "soon"},
        # Accepted, then fires forever: 1.5, 0.5, -0.5, ... never reaches 0.
        {"kind": "503", "count": 1.5},
        # Accepted, then answers "validationErrors": "oops", not a list of objects.
        {"kind": "400", "validation_errors": "oops"},
        {"kind": "400", "validation_errors": ["oops"]},
    ],
)
def test_faults_answer_400_for_fields_of_the_wrong_type(corti, rule):
    response = post_faults(corti, [rule])
    assert_problem(response, 400)
    assert get_faults(corti) == []


def test_faults_answer_400_for_an_unknown_top_level_field(corti):
    response = post_faults(corti, {"faults": [{"kind": "503", "rate": 0.5}], "sede": 3})
    problem = assert_problem(response, 400)
    assert "sede" in problem["detail"]


# --- the control endpoints: for programs on this machine only -----------------

#: Every control request, as the tests and benchmarks send it.
CONTROLS = [
    ("GET", "/_simulator/state"),
    ("GET", "/_simulator/faults"),
    ("POST", "/_simulator/faults"),
    ("DELETE", "/_simulator/faults"),
    ("POST", "/_simulator/reset"),
    ("POST", "/_simulator/expire-tokens"),
]
#: A rule that would show if a refused request had set it.
TRAP = {"faults": [{"kind": "503", "endpoint": "any"}]}


def control(sim, method, path, *, headers=None, **kwargs) -> requests.Response:
    if method == "POST" and "data" not in kwargs:
        kwargs["json"] = TRAP if path.endswith("/faults") else {}
    return requests.request(
        method, f"{sim.base_url}{path}", headers=headers, timeout=5, **kwargs
    )


def port_of(sim) -> int:
    return urlsplit(sim.base_url).port


def test_control_endpoints_answer_every_loopback_name_of_their_port(corti):
    port = port_of(corti)
    for name in ("127.0.0.1", "localhost", "[::1]", "LOCALHOST"):
        for method, path in CONTROLS:
            response = control(corti, method, path, headers={"Host": f"{name}:{port}"})
            assert response.status_code == 200, (name, method, path, response.text)


@pytest.mark.parametrize(
    "host",
    [
        "rebound.example:{port}",
        "localhost.rebound.example:{port}",
        "127.0.0.1:{other}",
        "127.0.0.1",
        "localhost",
        "10.0.0.7:{port}",
        "",
    ],
)
@pytest.mark.parametrize(("method", "path"), CONTROLS)
@pytest.mark.slow  # 42 requests, each on a new connection: ~1 s
def test_control_endpoints_refuse_a_host_that_is_not_theirs(corti, host, method, path):
    post_faults(corti, [{"kind": "502", "count": 1}])
    port = port_of(corti)
    before = corti.state()

    # DNS rebinding: a page on another name reaches 127.0.0.1 with its own Host.
    response = control(
        corti, method, path, headers={"Host": host.format(port=port, other=port + 1)}
    )

    problem = assert_problem(response, 403)
    assert "127.0.0.1, localhost or [::1]" in problem["detail"]
    assert "interactions" not in response.json()
    assert corti.state() == before


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://127.0.0.1:{other}",
        "https://127.0.0.1:{port}",
    ],
)
@pytest.mark.parametrize(("method", "path"), CONTROLS)
def test_control_endpoints_refuse_requests_from_web_pages(corti, origin, method, path):
    post_faults(corti, [{"kind": "502", "count": 1}])
    port = port_of(corti)
    before = corti.state()

    response = control(
        corti,
        method,
        path,
        headers={"Origin": origin.format(port=port, other=port + 1)},
    )

    problem = assert_problem(response, 403)
    assert (
        problem["detail"] == "The simulator's controls refuse requests from web pages."
    )
    assert corti.state() == before


def test_control_endpoints_serve_their_own_origin(corti):
    origin = f"http://localhost:{port_of(corti)}"
    for method, path in CONTROLS:
        response = control(corti, method, path, headers={"Origin": origin})
        assert response.status_code == 200, (method, path, response.text)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
    ],
)
@pytest.mark.parametrize(
    "path", ["/_simulator/faults", "/_simulator/reset", "/_simulator/expire-tokens"]
)
def test_control_posts_must_be_json(corti, content_type, path):
    token = token_for(corti)
    post_faults(corti, [{"kind": "502", "count": 1}])
    before = corti.state()
    headers = {} if content_type is None else {"Content-Type": content_type}

    # What a cross-site form can send, without the Origin header some send.
    response = requests.post(
        f"{corti.base_url}{path}",
        data=json.dumps(TRAP).encode(),
        headers=headers,
        timeout=5,
    )

    problem = assert_problem(response, 415)
    assert problem["detail"] == "Send control requests as application/json."
    assert corti.state() == before
    assert attempt(corti, token) == 502  # the token still works, the rule holds


def test_control_posts_accept_json_with_a_charset(corti):
    response = requests.post(
        f"{corti.base_url}/_simulator/faults",
        data=json.dumps(TRAP).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=5,
    )
    assert response.status_code == 200
    assert get_faults(corti) == [fault_json("503", endpoint="any")]


def test_delete_without_a_body_clears_faults_as_the_benchmarks_do(corti):
    post_faults(corti, [{"kind": "502"}])
    response = requests.delete(f"{corti.base_url}/_simulator/faults", timeout=5)
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    "host", ["rebind.attacker.example:8412", "corti.example", "127.0.0.2", ""]
)
def test_no_route_answers_a_host_that_is_not_this_machine(corti, host):
    """DNS rebinding: the sandbox's client credentials are public, so even the
    API would hand a rebound page every sandbox patient."""
    headers = {"Host": host}
    token = requests.post(
        corti.auth_url(),
        data={
            "grant_type": "client_credentials",
            "client_id": corti.client_id,
            "client_secret": corti.client_secret,
        },
        headers=headers,
        timeout=TIMEOUT,
    )
    assert token.status_code == 403
    real_token = token_for(corti)
    listed = requests.get(
        f"{corti.api_url}/interactions/",
        headers={
            **headers,
            "Authorization": f"Bearer {real_token}",
            "Tenant-Name": corti.tenant,
        },
        timeout=TIMEOUT,
    )
    assert listed.status_code == 403
    assert "interactions" not in listed.json()
    created = create(corti, {"encounter": ENCOUNTER}, token=real_token, headers=headers)
    assert created.status_code == 403
    assert corti.state()["interactions"] == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_every_route_answers_this_machine_by_name_or_address(corti, host):
    port = urlsplit(corti.base_url).port
    headers = {"Host": f"{host}:{port}"}
    token = requests.post(
        corti.auth_url(),
        data={
            "grant_type": "client_credentials",
            "client_id": corti.client_id,
            "client_secret": corti.client_secret,
        },
        headers=headers,
        timeout=TIMEOUT,
    )
    assert token.status_code == 200
    created = create(
        corti,
        {"encounter": ENCOUNTER},
        token=token.json()["access_token"],
        headers=headers,
    )
    assert created.status_code == 201
    assert requests.get(f"{corti.base_url}/healthz", headers=headers, timeout=5).ok


# Refused before anything is bound; 192.0.2.10 is a documentation address.
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "intake.example"])  # noqa: S104
@pytest.mark.slow  # a Python process per case: ~12 s
def test_command_refuses_to_listen_beyond_loopback(host):
    result = subprocess.run(
        [sys.executable, "manage.py", "corti_simulator", "--host", host, "--port", "0"],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "listening on" not in result.stdout
    assert f"--host: {host!r} is not a loopback address" in result.stderr
    assert "127.0.0.1, localhost or ::1 only" in result.stderr


@pytest.mark.parametrize("host", ["localhost", "::1"])
@pytest.mark.slow  # a simulator process per case: ~8 s
def test_command_listens_on_a_loopback_name(host):
    sim = start_simulator("--host", host)
    try:
        assert urlsplit(sim.base_url).hostname in ("127.0.0.1", "::1")
        sim.reset()
        assert sim.state()["interactions"] == []
    finally:
        sim.stop()
