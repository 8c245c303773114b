"""The client's one-interaction calls (get, update, delete) against the
simulator over real HTTP: what they send, what they return, and that a change
whose answer is lost is never sent again."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from intake.corti.errors import (
    CortiDisconnectedError,
    CortiNotFoundError,
    CortiServerError,
    CortiValidationError,
)
from intake.corti.types import InteractionUpdate
from tests.support.corti import corti_create, counts, fault

BODY = {
    "encounter": {
        "identifier": "ENC-9",
        "status": "in-progress",
        "type": "emergency",
        "period": {"startedAt": "2026-03-29T08:30:00Z"},
    },
    "patient": {"identifier": "PAT-9", "name": "José Núñez"},
}


@pytest.fixture
def held(corti):
    return corti_create(corti, BODY)


def test_get_reads_the_whole_interaction(corti, held):
    got = corti.client().get_interaction(held)

    assert got.id == held
    assert got.encounter == BODY["encounter"]
    assert got.patient == BODY["patient"]
    assert got.created_at is not None and got.updated_at is not None
    assert got.ended_at is None
    assert got.raw is not None and got.raw["id"] == str(held)


def test_update_sends_only_the_change_and_returns_the_whole(corti, held):
    update = InteractionUpdate(
        encounter={
            "status": "completed",
            "period": {
                "startedAt": "2026-03-29T08:30:00Z",
                "endedAt": "2026-03-29T09:10:00Z",
            },
        }
    )

    got = corti.client().update_interaction(held, update)

    assert got.encounter["status"] == "completed"
    assert got.encounter["identifier"] == "ENC-9"
    assert got.ended_at == dt.datetime(2026, 3, 29, 9, 10, tzinfo=dt.UTC)
    assert got.patient == BODY["patient"]
    assert update.to_json() == {"encounter": update.encounter}


def test_an_empty_update_is_falsy_and_sends_nothing_extra():
    assert not InteractionUpdate()
    assert InteractionUpdate(patient={"identifier": "P", "name": None}).to_json() == {
        "patient": {"identifier": "P", "name": None}
    }
    assigned = uuid.UUID("6b0d6f8e-4a8b-4c35-9a53-2c2b1f8e0a11")
    assert InteractionUpdate(assigned_user_id=assigned).to_json() == {
        "assignedUserId": str(assigned)
    }


def test_an_update_corti_refuses_names_the_field(corti, held):
    with pytest.raises(CortiValidationError) as refused:
        corti.client().update_interaction(
            held, InteractionUpdate(encounter={"status": "finished"})
        )

    assert refused.value.problem is not None
    fields = dict(refused.value.problem.validation_errors)
    assert "encounter.status" in fields
    assert refused.value.request_id


def test_delete_then_read_is_not_found(corti, held):
    client = corti.client()

    client.delete_interaction(held)

    with pytest.raises(CortiNotFoundError) as gone:
        client.get_interaction(held)
    assert gone.value.request_id
    with pytest.raises(CortiNotFoundError):
        client.delete_interaction(held)


def test_a_lost_update_answer_is_raised_never_sent_again(corti, held):
    corti.set_faults(fault("created-drop", "update", count=1))

    with pytest.raises(CortiDisconnectedError) as lost:
        corti.client().update_interaction(
            held, InteractionUpdate(encounter={"title": "Changed"})
        )

    assert lost.value.outcome_unknown
    assert counts(corti)["update_requests"] == 1
    # Corti did change it: only a read can tell.
    assert corti.client().get_interaction(held).encounter["title"] == "Changed"


def test_a_5xx_after_a_delete_is_raised_never_sent_again(corti, held):
    corti.set_faults(fault("created-503", "delete", count=1))

    with pytest.raises(CortiServerError) as lost:
        corti.client().delete_interaction(held)

    assert lost.value.outcome_unknown
    assert counts(corti)["delete_requests"] == 1
    with pytest.raises(CortiNotFoundError):
        corti.client().get_interaction(held)


def test_a_read_is_tried_again_after_a_5xx(corti, held):
    corti.set_faults(fault("503", "get", count=1))

    assert corti.client().get_interaction(held).id == held
    assert counts(corti)["get_requests"] == 2


def test_an_answer_about_another_interaction_is_refused():
    """A misrouted or cached answer would put another patient's details on
    the record: the client refuses any answer whose id is not the one asked."""
    import responses

    from intake.corti.client import CortiClient, CortiConfig
    from intake.corti.errors import CortiResponseError

    api = "https://api.eu.corti.test/v2"
    auth = "https://auth.eu.corti.test/realms/base/protocol/openid-connect/token"
    asked, other = uuid.uuid4(), uuid.uuid4()
    client = CortiClient(
        CortiConfig(
            api_url=api,
            auth_url=auth,
            tenant_name="base",
            client_id="c",
            client_secret="s",
            retry_budget=0.0,
        )
    )
    answer = {"id": str(other), "encounter": BODY["encounter"], "patient": None}
    with responses.RequestsMock() as mocked:
        mocked.post(auth, json={"access_token": "t", "expires_in": 300})
        mocked.get(f"{api}/interactions/{asked}", json=answer)
        mocked.patch(f"{api}/interactions/{asked}", json=answer)
        with pytest.raises(CortiResponseError, match="another interaction"):
            client.get_interaction(asked)
        with pytest.raises(CortiResponseError) as lost:
            client.update_interaction(
                asked, InteractionUpdate(encounter={"title": "x"})
            )
        # Corti may have made the change: only a read can tell.
        assert lost.value.outcome_unknown
