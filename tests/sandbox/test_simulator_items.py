"""The simulator's one-interaction endpoints: GET, PATCH and DELETE
/interactions/{id}, over real HTTP, with the same fault switch as create."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.corti import corti_create, fault, token_for

TIMEOUT = (2.0, 5.0)
BODY = {
    "assignedUserId": "6b0d6f8e-4a8b-4c35-9a53-2c2b1f8e0a11",
    "encounter": {
        "identifier": "ENC-7",
        "status": "in-progress",
        "type": "consultation",
        "period": {"startedAt": "2026-03-29T08:30:00Z"},
        "title": "Knee",
    },
    "patient": {"identifier": "PAT-7", "name": "Søren Ødegård", "gender": "male"},
}


@pytest.fixture
def sim(simulator):
    simulator.reset()
    yield simulator
    simulator.reset()


def call(sim, method: str, interaction_id, *, body=None, token=None):
    headers = {
        "Authorization": f"Bearer {token or token_for(sim)}",
        "Tenant-Name": sim.tenant,
    }
    return requests.request(
        method,
        f"{sim.api_url}/interactions/{interaction_id}",
        json=body,
        headers=headers,
        timeout=TIMEOUT,
    )


def test_get_answers_the_whole_interaction(sim):
    interaction_id = corti_create(sim, BODY)

    response = call(sim, "GET", interaction_id)

    assert response.status_code == 200
    data = response.json()
    assert data["id"] == str(interaction_id)
    assert data["encounter"] == BODY["encounter"]
    assert data["patient"] == BODY["patient"]
    assert data["assignedUserId"] == BODY["assignedUserId"]
    assert data["endedAt"] is None
    assert {"createdAt", "updatedAt", "lastUpdated", "websocketUrl"} <= set(data)


def test_patch_changes_only_what_it_names_and_answers_the_whole(sim):
    interaction_id = corti_create(sim, BODY)
    before = call(sim, "GET", interaction_id).json()

    response = call(
        sim,
        "PATCH",
        interaction_id,
        body={
            "encounter": {
                "status": "completed",
                "period": {
                    "startedAt": "2026-03-29T08:30:00Z",
                    "endedAt": "2026-03-29T09:00:00Z",
                },
                "title": None,
            },
            "patient": {"identifier": "PAT-7", "name": "Søren Ødegaard"},
        },
    )

    assert response.status_code == 200
    after = response.json()
    assert after["encounter"] == {
        **BODY["encounter"],
        "status": "completed",
        "period": {
            "startedAt": "2026-03-29T08:30:00Z",
            "endedAt": "2026-03-29T09:00:00Z",
        },
        "title": None,
    }
    assert after["patient"] == {**BODY["patient"], "name": "Søren Ødegaard"}
    assert after["endedAt"] == "2026-03-29T09:00:00Z"
    assert after["updatedAt"] > before["updatedAt"]
    assert after["createdAt"] == before["createdAt"]
    assert call(sim, "GET", interaction_id).json() == after


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"colour": "red"}, "colour", "is not a known field"),
        ({"encounter": {"mood": 1}}, "encounter.mood", "is not a known field"),
        ({"encounter": {"status": "done"}}, "encounter.status", "must be one of"),
        ({"encounter": {"type": 3}}, "encounter.type", "must be one of"),
        ({"encounter": {"title": 5}}, "encounter.title", "must be of type string"),
        (
            {"encounter": {"period": {"endedAt": "2026-03-29T09:00:00Z"}}},
            "encounter.period.startedAt",
            "is required",
        ),
        (
            {"encounter": {"period": {"startedAt": "yesterday"}}},
            "encounter.period.startedAt",
            "must be a valid date-time",
        ),
        ({"patient": {"name": "X"}}, "patient.identifier", "is required"),
        ({"patient": {"identifier": "P", "gender": "m"}}, "patient.gender", "must be"),
        ({"assignedUserId": "me"}, "assignedUserId", "must be a valid uuid"),
        ([], "(body)", "must be of type object"),
    ],
)
def test_patch_refuses_what_corti_refuses_and_changes_nothing(
    sim, body, field, message
):
    interaction_id = corti_create(sim, BODY)
    before = call(sim, "GET", interaction_id).json()

    response = call(sim, "PATCH", interaction_id, body=body)

    assert response.status_code == 400
    problem = response.json()
    assert problem["requestid"] == response.headers["X-Request-Id"]
    errors = {k: v for item in problem["validationErrors"] for k, v in item.items()}
    assert errors[field].startswith(message), errors
    assert call(sim, "GET", interaction_id).json() == before


def test_delete_answers_204_then_every_call_is_404(sim):
    interaction_id = corti_create(sim, BODY)

    response = call(sim, "DELETE", interaction_id)

    assert response.status_code == 204
    assert response.content == b""
    for method in ("GET", "PATCH", "DELETE"):
        gone = call(sim, method, interaction_id, body={"encounter": {"title": "x"}})
        assert gone.status_code == 404, method
        assert gone.json()["requestid"]
    assert sim.state()["deleted"] == [str(interaction_id)]
    assert sim.state()["interactions"] == []


def test_an_unknown_or_malformed_id(sim):
    assert call(sim, "GET", uuid.uuid4()).status_code == 404
    bad = call(sim, "GET", "not-a-uuid")
    assert bad.status_code == 400
    assert bad.json()["validationErrors"] == [{"id": "must be a valid uuid"}]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_missing_or_expired_token_is_an_empty_401(sim, method):
    interaction_id = corti_create(sim, BODY)

    response = call(sim, method, interaction_id, token="nope", body={})

    assert response.status_code == 401
    assert response.content == b""


def test_another_tenant_is_refused(sim):
    interaction_id = corti_create(sim, BODY)
    response = requests.get(
        f"{sim.api_url}/interactions/{interaction_id}",
        headers={"Authorization": f"Bearer {token_for(sim)}", "Tenant-Name": "other"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("endpoint", "method", "status"),
    [
        ("get", "GET", 404),
        ("get", "GET", 429),
        ("update", "PATCH", 409),
        ("update", "PATCH", 503),
        ("delete", "DELETE", 403),
        ("delete", "DELETE", 500),
    ],
)
def test_faults_answer_and_change_nothing(sim, endpoint, method, status):
    interaction_id = corti_create(sim, BODY)
    before = call(sim, "GET", interaction_id).json()
    sim.set_faults(fault(str(status), endpoint, count=1))

    response = call(sim, method, interaction_id, body={"encounter": {"title": "New"}})

    assert response.status_code == status
    assert response.json()["requestid"]
    assert call(sim, "GET", interaction_id).json() == before


def test_a_lost_patch_answer_after_the_change(sim):
    interaction_id = corti_create(sim, BODY)
    sim.set_faults(fault("created-drop", "update", count=1))

    with pytest.raises(requests.ConnectionError):
        call(sim, "PATCH", interaction_id, body={"encounter": {"title": "New"}})

    assert call(sim, "GET", interaction_id).json()["encounter"]["title"] == "New"


def test_a_5xx_after_the_delete(sim):
    interaction_id = corti_create(sim, BODY)
    sim.set_faults(fault("created-504", "delete", count=1))

    assert call(sim, "DELETE", interaction_id).status_code == 504
    assert call(sim, "GET", interaction_id).status_code == 404


def test_a_slow_read(sim):
    interaction_id = corti_create(sim, BODY)
    sim.set_faults(fault("hang", "get", count=1, delay=0.3))

    with pytest.raises(requests.ConnectionError):
        call(sim, "GET", interaction_id)
    assert call(sim, "GET", interaction_id).status_code == 200
