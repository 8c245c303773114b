"""A created interaction's page after its life moved on: changes found in
Corti, gone from Corti, made outside the dashboard (issue 15)."""

from __future__ import annotations

import datetime as dt

import pytest

from intake.fields import InteractionDetails
from intake.models import InteractionChange
from intake.services import lifecycle
from intake.services.interactions import interaction_request
from tests.support.factories import make_interaction

pytestmark = pytest.mark.django_db


def corti_json(record, **encounter) -> dict:
    return {
        "id": str(record.interaction_id),
        "encounter": {
            "identifier": record.encounter_identifier,
            "status": record.encounter_status,
            "type": record.encounter_type,
            "period": {"startedAt": "2026-01-15T09:00:00Z"},
            **encounter,
        },
        "patient": {"identifier": "PAT-1", "name": "Ada Lovelace"},
    }


def page(client, record) -> str:
    response = client.get(record.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


def test_an_unchanged_record_says_what_was_submitted(clinician_client, clinician):
    record = make_interaction(clinician, patient_identifier="PAT-1")

    html = page(clinician_client, record)

    assert "What was submitted" in html
    assert "Changes</h2>" not in html
    assert "Gone from Corti" not in html


@pytest.mark.usefixtures("clinic_zone")
def test_changes_found_in_corti_are_shown_with_before_and_after(
    clinician_client, clinician
):
    record = make_interaction(
        clinician,
        patient_identifier="PAT-1",
        patient_name="Ada Lovelace",
        encounter_status="in-progress",
    )
    record.request_body = interaction_request(InteractionDetails.of(record)).to_json()
    record.save(update_fields=["request_body"])
    lifecycle.apply_corti_state(
        record,
        corti_json(
            record,
            status="completed",
            period={
                "startedAt": "2026-01-15T09:00:00Z",
                "endedAt": "2026-01-15T09:40:00Z",
            },
        ),
        by=clinician,
        kind=InteractionChange.Kind.ENDED,
        mine=frozenset({"encounter_status", "encounter_ended_at"}),
    )

    html = page(clinician_client, record)

    assert "What was sent, and what Corti holds now" in html
    assert "Last read from Corti" in html
    assert "In Corti now</th>" in html
    assert html.count('class="badge badge-changed"') == 2
    assert "Changes</h2>" in html
    assert "Ended" in html and clinician.get_username() in html
    assert "In progress (in-progress)" in html and "Completed (completed)" in html
    # Times in the clinic's zone, with its name.
    assert "2026-01-15 10:40 CET" in html
    # What was sent at first stays on the page.
    assert "The JSON sent to Corti when it was submitted" in html


def test_a_record_gone_from_corti_says_so_and_keeps_its_details(
    clinician_client, clinician
):
    record = make_interaction(clinician, encounter_identifier="ENC-GONE")
    lifecycle.mark_gone(record, request_id="req-9")

    html = page(clinician_client, record)

    assert "Gone from Corti" in html
    assert "This record is kept" in html
    # Its websocket URL is shown for the record, not offered for copying.
    assert "No longer usable: Corti no longer has this interaction" in html
    assert 'data-copy-target="websocket-url"' not in html
    assert 'data-copy-target="interaction-id"' in html
    assert "ENC-GONE" in html
    assert "outside the dashboard" in html
    # Nothing changed: the page says so, and does not call it Corti's now.
    assert "Last known in Corti" in html
    assert "In Corti now" not in html
    assert "badge-changed" not in html


def test_an_imported_record_says_it_was_made_elsewhere(admin_client_, administrator):
    importer = lifecycle.import_user()
    record = make_interaction(importer, imported=True, request_body={})
    InteractionChange.objects.create(
        interaction=record,
        kind=InteractionChange.Kind.IMPORTED,
        at=dt.datetime(2026, 1, 15, tzinfo=dt.UTC),
    )

    html = page(admin_client_, record)

    assert "Made outside the dashboard; nothing was sent from here." in html
    assert "outside the dashboard</dd>" in html
    assert "The JSON sent to Corti" not in html
    assert "Imported from Corti" in html
    assert "no field changed" in html
