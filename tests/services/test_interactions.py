import datetime as dt
import uuid

import pytest

from intake.corti import clear_clients
from intake.fields import InteractionDetails
from intake.models import Interaction
from intake.services.interactions import interaction_submit
from tests.support.factories import ASSIGNED, typed_values
from tests.support.processes import closed_port
from tests.support.records import assert_typed_values_kept

pytestmark = pytest.mark.django_db


def interaction_create(**values) -> Interaction:
    """One POST of a freshly rendered form."""
    submitted_by = values.pop("submitted_by")
    return interaction_submit(
        submission_key=uuid.uuid4(),
        submitted_by=submitted_by,
        details=InteractionDetails(**values),
    ).record


UTC = dt.UTC


def test_created_interaction_is_recorded_with_what_corti_answered(
    corti, clinician, clinic_zone
):
    record = interaction_create(submitted_by=clinician, **typed_values())

    state = corti.state()
    assert state["counts"]["created"] == 1
    [created] = state["interactions"]
    record.refresh_from_db()
    assert record.outcome == Interaction.Outcome.CREATED
    assert record.interaction_id == uuid.UUID(created["id"])
    assert record.websocket_url == created["websocketUrl"]
    assert record.submitted_by == clinician
    assert record.time_zone == "Europe/Copenhagen"
    assert record.completed_at is not None
    assert record.error_code == ""
    assert record.error_problem is None


def test_request_body_logged_is_the_body_corti_received(corti, clinician):
    record = interaction_create(submitted_by=clinician, **typed_values())

    [created] = corti.state()["interactions"]
    received = {key: created[key] for key in ("assignedUserId", "encounter", "patient")}
    record.refresh_from_db()
    assert record.request_body == received
    assert record.request_body == {
        "assignedUserId": str(ASSIGNED),
        "encounter": {
            "identifier": "ENC-42",
            "status": "in-progress",
            "type": "first_consultation",
            "period": {
                "startedAt": "2026-01-15T09:00:00Z",
                "endedAt": "2026-01-15T09:45:00Z",
            },
            "title": "Knee pain",
        },
        "patient": {
            "identifier": "PAT-7",
            "name": "Ada Lovelace",
            "gender": "female",
            "birthDate": "1980-04-23T00:00:00Z",
            "pronouns": "she/her",
        },
    }


def test_every_typed_value_is_kept_on_a_created_record(corti, clinician):
    record = interaction_create(submitted_by=clinician, **typed_values())

    assert_typed_values_kept(record)


def test_minimal_interaction_sends_only_the_encounter(corti, clinician):
    record = interaction_create(
        submitted_by=clinician,
        encounter_identifier="ENC-1",
        encounter_status="planned",
        encounter_type="consultation",
        encounter_started_at=dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    )

    assert record.outcome == Interaction.Outcome.CREATED
    assert record.request_body == {
        "encounter": {
            "identifier": "ENC-1",
            "status": "planned",
            "type": "consultation",
            "period": {"startedAt": "2026-03-29T01:30:00Z"},
        }
    }
    [created] = corti.state()["interactions"]
    assert created["encounter"] == record.request_body["encounter"]
    assert created["patient"] is None


def test_times_reach_corti_in_utc_across_a_dst_change(corti, clinician, clinic_zone):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Copenhagen")
    values = typed_values()
    # 01:30 CET to 03:30 CEST: one real hour.
    values["encounter_started_at"] = dt.datetime(2026, 3, 29, 1, 30, tzinfo=zone)
    values["encounter_ended_at"] = dt.datetime(2026, 3, 29, 3, 30, tzinfo=zone)

    interaction_create(submitted_by=clinician, **values)

    [created] = corti.state()["interactions"]
    assert created["encounter"]["period"] == {
        "startedAt": "2026-03-29T00:30:00Z",
        "endedAt": "2026-03-29T01:30:00Z",
    }


def test_wrong_tenant_is_recorded_as_forbidden_with_corti_details(
    corti, clinician, settings
):
    settings.CORTI_TENANT_NAME = "other"
    clear_clients()

    record = interaction_create(submitted_by=clinician, **typed_values())

    record.refresh_from_db()
    assert record.outcome == Interaction.Outcome.FAILED
    assert record.error_code == "forbidden"
    assert record.error_status == 403
    assert record.interaction_id is None
    assert record.websocket_url == ""
    assert record.completed_at is not None
    # The simulator names every answer with a fresh UUID request id.
    assert uuid.UUID(record.error_request_id)
    problem = record.error_problem
    assert problem["requestid"] == record.error_request_id
    assert problem["status"] == 403
    assert problem["detail"] == (
        "The Tenant-Name header does not match the tenant of the token."
    )
    assert problem["type"].endswith("/forbidden")
    assert "403" in record.error_message
    assert corti.state()["counts"].get("created", 0) == 0
    assert_typed_values_kept(record)


@pytest.mark.slow  # a closed port, retried within the retry budget: ~0.5 s
def test_unreachable_corti_is_recorded_as_unreachable(clinician, settings):
    port = closed_port()
    settings.CORTI_API_URL = f"http://127.0.0.1:{port}/v2"
    settings.CORTI_AUTH_URL = (
        f"http://127.0.0.1:{port}/realms/base/protocol/openid-connect/token"
    )
    clear_clients()
    try:
        record = interaction_create(submitted_by=clinician, **typed_values())
    finally:
        clear_clients()

    record.refresh_from_db()
    assert record.outcome == Interaction.Outcome.FAILED
    assert record.error_code == "unreachable"
    assert record.error_status is None
    assert record.error_problem is None
    assert "nothing was sent" in record.error_message
    assert_typed_values_kept(record)


def test_wrong_client_secret_is_recorded_as_an_auth_failure(corti, clinician, settings):
    settings.CORTI_CLIENT_SECRET = "not-the-secret"
    clear_clients()

    record = interaction_create(submitted_by=clinician, **typed_values())

    record.refresh_from_db()
    assert record.outcome == Interaction.Outcome.FAILED
    assert record.error_code == "auth"
    assert record.error_status == 401
    assert "invalid_client" in record.error_message
    state = corti.state()
    assert state["counts"].get("create_requests", 0) == 0
    assert state["counts"].get("tokens_issued", 0) == 0
    assert_typed_values_kept(record)
