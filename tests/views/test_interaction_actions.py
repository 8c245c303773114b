"""Refresh, end, correct and delete from the interaction's page, over real
HTTP against the simulator (issue 15): what each press does in Corti, what
the page says, and that an error changes nothing here."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from intake.models import CortiCall, Interaction, InteractionChange
from tests.support.corti import fault
from tests.support.pages import page
from tests.support.records import submit
from tests.support.tasks import queued, run_tasks

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def created(corti, clinician) -> Interaction:
    record = submit(clinician).record
    assert record.is_created
    return record


def url(record: Interaction, action: str) -> str:
    return f"/interactions/{record.pk}/{action}/"


def corti_holds(sim, record) -> dict:
    [held] = [
        i for i in sim.state()["interactions"] if i["id"] == str(record.interaction_id)
    ]
    return held


def followed(client: Client, response) -> str:
    assert response.status_code == 303, response.status_code
    return page(client.get(response["Location"]))


# --- End ---------------------------------------------------------------------


def test_end_now_with_one_press(corti, clinician_client, created):
    html = followed(clinician_client, clinician_client.post(url(created, "end")))

    assert "Encounter ended in Corti at" in html
    assert corti_holds(corti, created)["encounter"]["status"] == "completed"
    created.refresh_from_db()
    assert created.encounter_status == "completed"
    assert "Changes</h2>" in html and "Ended" in html
    # Ended: the page offers no second End.
    assert "End the encounter</button>" not in html


@pytest.mark.usefixtures("clinic_zone")
def test_end_at_a_time_picked_on_the_clinic_clock(corti, clinician_client, created):
    response = clinician_client.post(
        url(created, "end"), {"ended_at": "2026-01-15T10:40"}
    )

    followed(clinician_client, response)
    created.refresh_from_db()
    # 10:40 in Copenhagen (CET) is 09:40 UTC.
    assert created.encounter_ended_at == dt.datetime(2026, 1, 15, 9, 40, tzinfo=UTC)
    assert corti_holds(corti, created)["encounter"]["period"]["endedAt"] == (
        "2026-01-15T09:40:00Z"
    )


@pytest.mark.usefixtures("clinic_zone")
@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("2026-01-15T09:59", "must not be before the start"),
        ("2999-01-01T10:00", "cannot be in the future"),
        ("2026-03-29T02:30", "does not exist in Europe/Copenhagen"),
        ("2026-10-25T02:30", "happens twice in Europe/Copenhagen"),
        ("soon", "Enter a date and time."),
    ],
)
def test_a_bad_end_time_is_named_beside_the_field_and_nothing_is_sent(
    corti, clinician_client, created, typed, message
):
    response = clinician_client.post(url(created, "end"), {"ended_at": typed})

    assert response.status_code == 400
    html = page(response)
    assert message in html
    assert 'id="id_ended_at-errors"' in html
    assert f'value="{typed}"' in html  # what was typed stays
    assert corti.state()["counts"].get("update_requests", 0) == 0
    created.refresh_from_db()
    assert created.encounter_status == "in-progress"


@pytest.mark.usefixtures("clinic_zone")
def test_a_repeated_hour_is_ended_at_the_one_chosen(corti, clinician_client, created):
    response = clinician_client.post(
        url(created, "end"), {"ended_at": "2026-10-25T02:30", "ended_at_fold": "1"}
    )

    followed(clinician_client, response)
    created.refresh_from_db()
    # The second 02:30 (CET, after the clocks went back) is 01:30 UTC.
    assert created.encounter_ended_at == dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("status", ["403", "409", "429", "500"])
def test_corti_refusing_the_end_changes_nothing_and_says_why(
    corti, clinician_client, created, status
):
    corti.set_faults(fault(status, "update", count=5, retry_after=30))

    html = followed(clinician_client, clinician_client.post(url(created, "end")))

    assert "Nothing was changed." in html or "nothing changed here" in html
    call = created.calls.filter(kind=CortiCall.Kind.UPDATE).get()
    assert call.error_request_id and call.error_request_id in html
    created.refresh_from_db()
    assert created.encounter_status == "in-progress"
    assert not InteractionChange.objects.filter(interaction=created).exists()


def test_a_clinician_may_not_end_another_clinicians_unless_the_clinic_allows(
    corti, client, created, other_clinician, settings
):
    client.force_login(other_clinician)

    assert client.post(url(created, "end")).status_code == 403
    assert "End the encounter</button>" not in page(
        client.get(created.get_absolute_url())
    )
    settings.INTAKE_CLINICIANS_CHANGE_ANY = True
    assert client.post(url(created, "end")).status_code == 303
    assert corti_holds(corti, created)["encounter"]["status"] == "completed"


# --- Refresh -----------------------------------------------------------------


def test_refresh_shows_what_changed_outside(corti, clinician_client, created):
    from tests.support.corti import corti_item

    corti_item(
        corti,
        "PATCH",
        created.interaction_id,
        {"encounter": {"title": "Changed in another tool"}},
    )

    html = followed(clinician_client, clinician_client.post(url(created, "refresh")))

    assert "1 detail(s) had changed since the last read (Title)" in html
    assert "Changed in another tool" in html
    assert "badge-changed" in html
    assert "outside the dashboard" in html


def test_refresh_of_a_deleted_interaction_marks_it_gone(
    corti, clinician_client, created
):
    corti.set_faults(fault("404", "get", count=1))

    html = followed(clinician_client, clinician_client.post(url(created, "refresh")))

    assert "Corti no longer has this interaction" in html
    assert "Gone from Corti" in html
    # Nothing more can be changed; the record is kept.
    assert "Correct details" not in html
    assert Interaction.objects.filter(pk=created.pk).exists()


def make_stale(record: Interaction) -> None:
    """Created (and last read) longer ago than INTAKE_REFRESH_SECONDS."""
    from django.utils import timezone

    Interaction.objects.filter(pk=record.pk).update(
        completed_at=timezone.now() - dt.timedelta(minutes=2)
    )


def test_a_page_opened_right_after_the_create_reads_nothing(
    corti, clinician_client, created
):
    html = page(clinician_client.get(created.get_absolute_url()))

    assert queued("refresh_interaction", created) == []
    assert 'hx-trigger="every 3s"' not in html


def test_opening_a_stale_page_reads_corti_in_the_background_never_in_the_get(
    corti, clinician_client, created
):
    make_stale(created)
    reads = corti.state()["counts"].get("get_requests", 0)

    html = page(clinician_client.get(created.get_absolute_url()))

    assert corti.state()["counts"].get("get_requests", 0) == reads
    assert len(queued("refresh_interaction", created)) == 1
    assert "Reading it from Corti now" in html
    assert 'hx-trigger="every 3s"' in html
    # A second opening queues nothing more.
    clinician_client.get(created.get_absolute_url())
    assert len(queued("refresh_interaction", created)) == 1

    run_tasks()

    created.refresh_from_db()
    assert created.corti_read_at is not None
    html = page(clinician_client.get(created.get_absolute_url()))
    assert "Reading it from Corti now" not in html
    assert "Last read from Corti" in html


# --- Correct -----------------------------------------------------------------


def correction(record: Interaction, **changes: str) -> dict[str, str]:
    data = {
        "encounter_identifier": record.encounter_identifier,
        "encounter_status": record.encounter_status,
        "encounter_type": record.encounter_type,
        "encounter_title": record.encounter_title,
        "encounter_started_at": "2026-01-15T09:00",
        "encounter_ended_at": "2026-01-15T09:45",
        "assigned_user_id": str(record.assigned_user_id or ""),
        "patient_identifier": record.patient_identifier,
        "patient_name": record.patient_name,
        "patient_gender": record.patient_gender,
        "patient_birth_date": record.patient_birth_date.isoformat()
        if record.patient_birth_date
        else "",
        "patient_pronouns": record.patient_pronouns,
    }
    data.update(changes)
    return data


def test_the_correction_form_shows_what_corti_holds(clinician_client, created):
    html = page(clinician_client.get(url(created, "edit")))

    assert 'value="ENC-42"' in html
    assert 'value="Ada Lovelace"' in html
    assert "Save the correction in Corti" in html


def test_a_correction_sends_only_the_changed_detail(corti, clinician_client, created):
    response = clinician_client.post(
        url(created, "edit"), correction(created, encounter_title="Knee pain, right")
    )

    html = followed(clinician_client, response)
    assert "Corrected in Corti: Title." in html
    assert created.calls.filter(kind=CortiCall.Kind.UPDATE).get().request_body == {
        "encounter": {"title": "Knee pain, right"}
    }
    assert corti_holds(corti, created)["encounter"]["title"] == "Knee pain, right"


def test_a_correction_with_nothing_changed_sends_nothing(
    corti, clinician_client, created
):
    html = followed(
        clinician_client,
        clinician_client.post(url(created, "edit"), correction(created)),
    )

    assert "Nothing was changed" in html
    assert corti.state()["counts"].get("update_requests", 0) == 0


def test_a_correction_corti_refuses_shows_its_message_beside_the_field(
    corti, clinician_client, created
):
    corti.set_faults(
        fault(
            "400",
            "update",
            count=1,
            validation_errors=[{"encounter.title": "Too long for Corti."}],
        )
    )

    response = clinician_client.post(
        url(created, "edit"), correction(created, encounter_title="Another title")
    )

    assert response.status_code == 400
    html = page(response)
    assert "Too long for Corti." in html
    assert 'value="Another title"' in html  # what was typed stays
    created.refresh_from_db()
    assert created.encounter_title == "Knee pain"


def test_a_patient_cannot_be_removed_only_corrected(corti, clinician_client, created):
    response = clinician_client.post(
        url(created, "edit"),
        correction(
            created,
            patient_identifier="",
            patient_name="",
            patient_gender="",
            patient_birth_date="",
            patient_pronouns="",
        ),
    )

    assert response.status_code == 400
    assert "correct the identifier instead of removing it" in page(response)
    assert corti.state()["counts"].get("update_requests", 0) == 0


# --- Delete ------------------------------------------------------------------


def test_delete_asks_first_naming_the_encounter_and_patient(admin_client_, created):
    html = page(admin_client_.get(url(created, "delete")))

    assert "ENC-42" in html and "PAT-7" in html
    assert "Corti deletes everything under this interaction" in html
    assert "recordings, transcripts, facts and documents" in html


def test_delete_keeps_the_record_marked_deleted(
    corti, admin_client_, administrator, created
):
    html = followed(admin_client_, admin_client_.post(url(created, "delete")))

    assert "Deleted in Corti, with its recordings" in html
    assert f"by {administrator.get_username()}" in html
    assert "No longer usable: Corti no longer has this interaction" in html
    assert 'data-copy-target="websocket-url"' not in html
    assert corti.state()["deleted"] == [str(created.interaction_id)]
    created.refresh_from_db()
    assert created.deleted_by == administrator
    assert "Delete in Corti" not in html


def test_clinicians_never_delete(corti, clinician_client, created):
    assert clinician_client.get(url(created, "delete")).status_code == 403
    assert clinician_client.post(url(created, "delete")).status_code == 403
    assert "Delete in Corti" not in page(
        clinician_client.get(created.get_absolute_url())
    )
    assert corti.state()["deleted"] == []


def opened_form(client, record) -> dict[str, str]:
    """The correction form's fields as the page rendered them."""
    from tests.support.pages import form_values

    return form_values(page(client.get(url(record, "edit"))))


def test_a_change_made_in_corti_while_the_form_is_open_is_never_sent_back(
    corti, clinician_client, created
):
    from intake.services.lifecycle import interaction_refresh
    from tests.support.corti import corti_item

    typed = opened_form(clinician_client, created)
    # Meanwhile another tool renames the patient, and a refresh reads it.
    corti_item(
        corti,
        "PATCH",
        created.interaction_id,
        {"patient": {"identifier": "PAT-7", "name": "Changed Elsewhere"}},
    )
    interaction_refresh(record=created)
    typed["encounter_title"] = "Only this"

    response = clinician_client.post(url(created, "edit"), typed)

    assert "Corrected in Corti: Title." in followed(clinician_client, response)
    sent = created.calls.filter(kind=CortiCall.Kind.UPDATE).get().request_body
    assert sent == {"encounter": {"title": "Only this"}}
    assert corti_holds(corti, created)["patient"]["name"] == "Changed Elsewhere"


def test_times_shown_to_the_minute_are_not_sent_unless_changed(
    corti, clinician_client, created, clinician
):
    from intake.services.lifecycle import interaction_end

    # Ended now: an end time with seconds, which the form shows to the minute.
    assert interaction_end(record=created, user=clinician).ok
    typed = opened_form(clinician_client, created)
    typed["encounter_title"] = "New title"

    followed(clinician_client, clinician_client.post(url(created, "edit"), typed))

    sent = created.calls.filter(kind=CortiCall.Kind.UPDATE).last().request_body
    assert sent == {"encounter": {"title": "New title"}}


def test_changing_only_the_end_keeps_the_start_to_the_second(
    corti, clinician_client, created
):
    Interaction.objects.filter(pk=created.pk).update(
        encounter_started_at=dt.datetime(2026, 1, 15, 9, 0, 17, tzinfo=UTC)
    )
    typed = opened_form(clinician_client, created)
    typed["encounter_ended_at"] = "2026-01-15T09:50"

    followed(clinician_client, clinician_client.post(url(created, "edit"), typed))

    sent = created.calls.filter(kind=CortiCall.Kind.UPDATE).get().request_body
    assert sent == {
        "encounter": {
            "period": {
                "startedAt": "2026-01-15T09:00:17Z",
                "endedAt": "2026-01-15T09:50:00Z",
            }
        }
    }


def test_the_assigned_user_cannot_be_removed_only_changed(
    corti, clinician_client, created
):
    typed = opened_form(clinician_client, created)
    typed["assigned_user_id"] = ""

    response = clinician_client.post(url(created, "edit"), typed)

    assert response.status_code == 400
    assert "Corti always keeps an assigned user" in page(response)
    assert corti.state()["counts"].get("update_requests", 0) == 0


def test_a_refused_correction_keeps_what_was_typed(corti, clinician_client, created):
    corti.set_faults(fault("409", "update", count=1))
    typed = opened_form(clinician_client, created)
    typed["encounter_title"] = "Typed, kept"

    response = clinician_client.post(url(created, "edit"), typed)

    assert response.status_code == 409
    html = page(response)
    assert 'value="Typed, kept"' in html
    assert "Nothing was changed." in html


def test_a_planned_encounter_cannot_end_before_it_starts(
    corti, clinician, clinician_client
):
    from django.utils import timezone

    record = submit(
        clinician,
        encounter_status="planned",
        encounter_started_at=timezone.now() + dt.timedelta(hours=3),
        encounter_ended_at=None,
    ).record

    response = clinician_client.post(url(record, "end"))

    assert response.status_code == 400
    assert "cannot end before it starts" in page(response)
    assert corti.state()["counts"].get("update_requests", 0) == 0


def test_a_failed_background_read_stops_the_page_asking(
    corti, clinician_client, created
):
    make_stale(created)
    corti.set_faults(fault("403", "get", count=1))
    html = page(clinician_client.get(created.get_absolute_url()))
    assert "Reading it from Corti now" in html and "&amp;r=1" in html
    since = created.updated_at

    run_tasks()

    from django.utils import dateformat

    poll = clinician_client.get(
        created.get_absolute_url(),
        {"since": dateformat.format(since, "U.u"), "r": "1"},
        headers={"HX-Request": "true"},
    )
    # Not 204: the live part comes back without asking again, and says so.
    assert poll.status_code == 200
    html = page(poll)
    assert 'hx-trigger="every 3s"' not in html
    assert "Could not read it from Corti at" in html
    assert "Reading it from Corti now" not in html


def test_an_unconfirmed_change_is_shown_and_blocks_another(
    corti, clinician_client, created
):
    corti.set_faults(
        fault("created-drop", "update", count=1), fault("403", "get", count=1)
    )
    followed(clinician_client, clinician_client.post(url(created, "end")))

    html = page(clinician_client.get(created.get_absolute_url()))

    assert "A change is not confirmed yet" in html
    assert "Ending the encounter, sent" in html
    assert "End the encounter</button>" not in html
    assert "Refresh from Corti" in html
    assert clinician_client.post(url(created, "end")).status_code == 303
    assert corti.state()["counts"]["update_requests"] == 1
