"""An interaction's life after its create (intake.services.lifecycle):
refresh and sync against the real simulator, over HTTP."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from intake.corti.errors import CortiError
from intake.models import CortiCall, Interaction, InteractionChange
from intake.selectors import interaction_list
from intake.services import lifecycle
from intake.services.lifecycle import apply_corti_state, interaction_refresh
from tests.support.corti import corti_create, corti_item, fault
from tests.support.records import calls_of, stranded, submit

pytestmark = pytest.mark.django_db

Kind = InteractionChange.Kind
R = CortiCall.Result
READ, REFRESH = CortiCall.Kind.READ, CortiCall.Trigger.REFRESH


def changes(record: Interaction) -> list[tuple[str, dict, dict, int | None]]:
    return [
        (c.kind, c.before, c.after, c.by_id)
        for c in InteractionChange.objects.filter(interaction=record)
    ]


@pytest.fixture
def created(corti, clinician) -> Interaction:
    record = submit(clinician).record
    assert record.outcome == Interaction.Outcome.CREATED
    return record


# --- refresh -----------------------------------------------------------------


def test_refresh_takes_what_was_changed_elsewhere_and_keeps_who_and_what(
    corti, created
):
    corti_item(
        corti,
        "PATCH",
        created.interaction_id,
        {
            "encounter": {"status": "completed", "title": "Knee pain, left"},
            "patient": {"identifier": "PAT-7", "name": "Ada King"},
        },
    )

    result = interaction_refresh(record=created)

    assert result.ok and not result.gone
    assert sorted(result.changed) == [
        "encounter_status",
        "encounter_title",
        "patient_name",
    ]
    created.refresh_from_db()
    assert created.encounter_status == "completed"
    assert created.patient_name == "Ada King"
    # What was sent stays as it was sent.
    assert created.request_body["patient"]["name"] == "Ada Lovelace"
    assert created.corti_state["encounter"]["title"] == "Knee pain, left"
    assert created.corti_read_at is not None
    assert changes(created) == [
        (
            Kind.CHANGED_IN_CORTI,
            {
                "encounter_status": "in-progress",
                "encounter_title": "Knee pain",
                "patient_name": "Ada Lovelace",
            },
            {
                "encounter_status": "completed",
                "encounter_title": "Knee pain, left",
                "patient_name": "Ada King",
            },
            None,
        )
    ]
    assert calls_of(created)[-1] == (READ, R.FOUND, REFRESH, None)
    # The search follows the name Corti holds now.
    assert created in interaction_list(q="king")


def test_a_refresh_that_finds_nothing_new_records_no_change(corti, created):
    first = interaction_refresh(record=created)
    read_at = Interaction.objects.get(pk=created.pk).corti_read_at
    second = interaction_refresh(record=created)

    assert first.ok and second.ok and not first.changed and not second.changed
    assert changes(created) == []
    assert Interaction.objects.get(pk=created.pk).corti_read_at > read_at


def test_gone_from_corti_is_marked_once_and_nothing_is_erased(corti, created):
    assert corti_item(corti, "DELETE", created.interaction_id).status_code == 204

    result = interaction_refresh(record=created)
    again = interaction_refresh(record=created)

    assert result.ok and result.gone and again.gone
    created.refresh_from_db()
    assert created.corti_gone_at is not None
    assert created.encounter_identifier == "ENC-42"
    assert created.outcome == Interaction.Outcome.CREATED
    assert [kind for kind, *_ in changes(created)] == [Kind.GONE]
    assert [c[1] for c in calls_of(created)[-2:]] == [R.NOT_FOUND, R.NOT_FOUND]
    assert created.calls.last().error_request_id
    assert not lifecycle.refresh_due(created)


@pytest.mark.parametrize(
    ("kind", "result"),
    [("403", R.FAILED), ("429", R.FAILED), ("409", R.FAILED), ("hang", R.UNKNOWN)],
)
def test_a_failed_read_changes_nothing_locally(corti, created, settings, kind, result):
    settings.CORTI_TIMEOUT = 0.3
    settings.CORTI_RETRY_BUDGET = 0.0
    from intake.corti import clear_clients

    clear_clients()
    corti_item(corti, "PATCH", created.interaction_id, {"encounter": {"title": "X"}})
    corti.set_faults(fault(kind, "get", count=5, delay=1.0, retry_after=30))
    before = Interaction.objects.get(pk=created.pk)

    outcome = interaction_refresh(record=created)

    assert not outcome.ok and outcome.error is not None
    after = Interaction.objects.get(pk=created.pk)
    assert after.encounter_title == before.encounter_title == "Knee pain"
    assert after.corti_read_at is None and after.corti_gone_at is None
    assert changes(created) == []
    assert calls_of(created)[-1][:2] == (READ, result)
    if kind != "hang":
        assert outcome.error.request_id == created.calls.last().error_request_id != ""


def test_a_submission_not_created_is_never_read(corti, clinician):
    record = stranded(clinician)

    before = calls_of(record)

    assert not interaction_refresh(record=record).ok
    assert calls_of(record) == before


def test_a_change_made_here_is_told_apart_from_one_made_elsewhere(
    corti, created, clinician
):
    data = corti_item(corti, "GET", created.interaction_id).json()
    data["encounter"]["status"] = "completed"
    data["patient"]["pronouns"] = "they/them"

    apply_corti_state(
        created,
        data,
        by=clinician,
        kind=Kind.ENDED,
        mine=frozenset({"encounter_status"}),
        request_id="req-1",
    )

    assert changes(created) == [
        (
            Kind.ENDED,
            {"encounter_status": "in-progress"},
            {"encounter_status": "completed"},
            clinician.pk,
        ),
        (
            Kind.CHANGED_IN_CORTI,
            {"patient_pronouns": "she/her"},
            {"patient_pronouns": "they/them"},
            None,
        ),
    ]


def test_the_change_history_is_append_only(corti, created):
    from intake.models import AppendOnly

    corti_item(corti, "PATCH", created.interaction_id, {"encounter": {"title": "Y"}})
    interaction_refresh(record=created)
    change = InteractionChange.objects.get(interaction=created)

    with pytest.raises(AppendOnly):
        change.save()
    with pytest.raises(AppendOnly):
        change.delete()
    with pytest.raises(AppendOnly):
        InteractionChange.objects.all().update(kind=Kind.ENDED)
    with pytest.raises(AppendOnly):
        InteractionChange.objects.all().delete()


# --- sync --------------------------------------------------------------------


def body(n: int, patient: str = "") -> dict:
    return {
        "encounter": {
            "identifier": f"ELSEWHERE-{n}",
            "status": "planned",
            "type": "consultation",
            "period": {"startedAt": f"2026-03-0{n % 9 + 1}T08:00:00Z"},
            "title": f"Made elsewhere {n}",
        },
        "patient": {"identifier": patient or f"EXT-{n}", "name": "Åse Ørsted"},
    }


def test_sync_imports_pages_until_an_empty_one_and_is_idempotent(
    corti, created, clinician
):
    made = [corti_create(corti, body(n)) for n in range(5)]

    summary = lifecycle.interactions_sync(page_size=2)

    assert summary.complete and summary.pages == 3
    assert (summary.seen, summary.new, summary.unchanged, summary.updated) == (
        6,
        5,
        1,
        0,
    )
    imported = Interaction.objects.filter(imported=True)
    assert {r.interaction_id for r in imported} == set(made)
    one = imported.get(interaction_id=made[2])
    assert one.encounter_identifier == "ELSEWHERE-2"
    assert one.patient_identifier == "EXT-2"
    assert one.outcome == Interaction.Outcome.CREATED
    assert one.request_body == {}
    assert one.submitted_by.username == lifecycle.IMPORT_USERNAME
    assert not one.submitted_by.is_active
    assert not one.submitted_by.has_usable_password()
    held = corti_item(corti, "GET", made[2]).json()
    assert one.created_at.isoformat().replace("+00:00", "") == held["createdAt"][:-1]
    assert [k for k, *_ in changes(one)] == [Kind.IMPORTED]
    # Lookups cover it.
    assert one in interaction_list(q="orsted")

    again = lifecycle.interactions_sync(page_size=2)
    assert (again.new, again.updated, again.unchanged, again.gone) == (0, 0, 6, 0)
    assert Interaction.objects.count() == 6


def test_sync_updates_known_records_and_marks_the_unlisted_gone(corti, clinician):
    kept = submit(clinician, encounter_identifier="KEPT").record
    lost = submit(clinician, encounter_identifier="LOST").record
    corti_item(
        corti, "PATCH", kept.interaction_id, {"encounter": {"status": "on-hold"}}
    )
    corti_item(corti, "DELETE", lost.interaction_id)

    summary = lifecycle.interactions_sync()

    assert (summary.updated, summary.gone, summary.new) == (1, 1, 0)
    kept.refresh_from_db()
    lost.refresh_from_db()
    assert kept.encounter_status == "on-hold"
    assert lost.corti_gone_at is not None and lost.encounter_identifier == "LOST"


def test_creates_between_pages_are_read_once(corti, monkeypatch):
    for n in range(3):
        corti_create(corti, body(n))
    from intake.corti.client import CortiClient

    listing = CortiClient.list_interactions
    late: list[uuid.UUID] = []

    def list_and_create(self, **kwargs):
        page = listing(self, **kwargs)
        if kwargs.get("index") == 1:
            late.append(corti_create(corti, body(7)))
        return page

    monkeypatch.setattr(CortiClient, "list_interactions", list_and_create)

    summary = lifecycle.interactions_sync(page_size=2)

    assert summary.new == 4
    assert Interaction.objects.filter(interaction_id=late[0]).count() == 1


def test_an_interaction_that_may_be_a_lost_answer_is_left_for_settling(
    corti, clinician
):
    # Made elsewhere before the dashboard's submission: imported.
    earlier = corti_create(corti, body(1))
    # A create that reached Corti, whose worker died before the answer came:
    # the record is pending, Corti holds its interaction, and someone has
    # changed it there since (so it no longer matches what was sent).
    record = stranded(clinician, created_ago=dt.timedelta(seconds=0))
    Interaction.objects.filter(pk=record.pk).update(
        created_at=timezone.now() + lifecycle.reconciliation.CLOCK_SKEW
    )
    ours = corti_create(corti, record.request_body)
    corti_item(corti, "PATCH", ours, {"encounter": {"status": "completed"}})
    # Made elsewhere after it: it could be ours too, so it waits.
    later = corti_create(corti, body(2))

    summary = lifecycle.interactions_sync()

    assert (summary.new, summary.left_for_settling) == (1, 2)
    assert Interaction.objects.filter(interaction_id=earlier, imported=True).exists()
    assert not Interaction.objects.filter(interaction_id__in=[ours, later]).exists()
    record.refresh_from_db()
    assert record.outcome == Interaction.Outcome.PENDING

    # Once settled, the next sync imports what is left (not ours: adopted).
    Interaction.objects.filter(pk=record.pk).update(
        outcome=Interaction.Outcome.CREATED, interaction_id=ours
    )
    again = lifecycle.interactions_sync()
    assert (again.new, again.left_for_settling) == (1, 0)
    assert Interaction.objects.filter(interaction_id=later, imported=True).exists()


def test_a_submission_made_while_the_sync_runs_is_never_imported_beside_it(
    corti, clinician, monkeypatch
):
    for n in range(3):
        corti_create(corti, body(n))
    from intake.corti.client import CortiClient

    listing = CortiClient.list_interactions
    made: list[Interaction] = []

    def list_then_submit(self, **kwargs):
        page = listing(self, **kwargs)
        if kwargs.get("index") == 1:
            # A clinician submits; Corti creates it, the answer is not in yet.
            record = stranded(clinician, created_ago=dt.timedelta(seconds=0))
            # Well after the three made elsewhere (beyond the clocks' slack).
            Interaction.objects.filter(pk=record.pk).update(
                created_at=timezone.now() + lifecycle.reconciliation.CLOCK_SKEW
            )
            made.append(record)
            corti_create(corti, record.request_body)
        return page

    monkeypatch.setattr(CortiClient, "list_interactions", list_then_submit)

    summary = lifecycle.interactions_sync(page_size=2)

    assert (summary.new, summary.left_for_settling) == (3, 1)
    assert Interaction.objects.count() == 4  # three imported, and ours
    assert not Interaction.objects.filter(
        imported=True, encounter_identifier=made[0].encounter_identifier
    ).exists()


def test_older_data_never_overwrites_newer(corti, created):
    data = corti_item(corti, "GET", created.interaction_id).json()
    newer = {**data, "updatedAt": "2026-12-01T10:00:00.000000Z"}
    newer["encounter"] = {**data["encounter"], "title": "Newer"}
    older = {**data, "updatedAt": "2026-12-01T09:00:00.000000Z"}
    older["encounter"] = {**data["encounter"], "title": "Older"}

    apply_corti_state(created, newer)
    assert apply_corti_state(created, older) == []

    created.refresh_from_db()
    assert created.encounter_title == "Newer"
    assert created.corti_state["encounter"]["title"] == "Newer"


def test_a_listing_never_unmarks_a_record_found_gone(corti, created):
    lifecycle.mark_gone(created)

    summary = lifecycle.interactions_sync()

    created.refresh_from_db()
    assert created.corti_gone_at is not None
    assert summary.unchanged == 1


def test_a_page_that_cannot_be_read_stops_the_sync_and_marks_nothing_gone(
    corti, clinician
):
    lost = submit(clinician).record
    corti_item(corti, "DELETE", lost.interaction_id)
    for n in range(3):
        corti_create(corti, body(n))
    corti.set_faults(fault("403", "list", count=1))

    with pytest.raises(CortiError):
        lifecycle.interactions_sync(page_size=2)

    lost.refresh_from_db()
    assert lost.corti_gone_at is None


def test_the_command_reports_its_counts(corti, clinician, capsys):
    corti_create(corti, body(1))
    submit(clinician)

    call_command("sync_interactions", "--page-size", "1")

    out = capsys.readouterr().out
    assert "Read 2 interaction(s) in 2 page(s): 1 new, 0 updated, 1 unchanged" in out


def test_the_command_names_corti_s_request_id_when_it_fails(corti):
    corti.set_faults(fault("403", "list", count=1))

    with pytest.raises(CommandError, match=r"Corti request id [0-9a-f-]{36}"):
        call_command("sync_interactions")


def test_the_command_refuses_a_page_size_corti_would(corti):
    with pytest.raises(CommandError, match="between 1 and 100"):
        call_command("sync_interactions", "--page-size", "500")


def test_a_field_from_corti_longer_than_its_column_is_cut_but_kept_whole(
    corti, created
):
    long_title = "T" * 400
    corti_item(
        corti, "PATCH", created.interaction_id, {"encounter": {"title": long_title}}
    )

    interaction_refresh(record=created)

    created.refresh_from_db()
    assert created.encounter_title == "T" * 255
    assert created.corti_state["encounter"]["title"] == long_title


def test_corti_fields_read_dates_and_ids_as_the_record_keeps_them():
    fields = lifecycle.corti_fields(
        {
            "assignedUserId": "not-a-uuid",
            "encounter": {"period": {"startedAt": "2026-03-29T01:30:00Z"}},
            "patient": {"identifier": "P", "birthDate": "1980-01-02T00:00:00Z"},
        }
    )
    assert fields["assigned_user_id"] is None
    assert fields["encounter_started_at"] == dt.datetime(
        2026, 3, 29, 1, 30, tzinfo=dt.UTC
    )
    assert fields["patient_birth_date"] == dt.date(1980, 1, 2)
    assert fields["encounter_ended_at"] is None
    assert (
        lifecycle.corti_fields({"patient": None, "encounter": "x"})[
            "patient_identifier"
        ]
        == ""
    )


# --- end, correct, delete ----------------------------------------------------

UPDATE, DELETE = CortiCall.Kind.UPDATE, CortiCall.Kind.DELETE
END, EDIT, REMOVE = (
    CortiCall.Trigger.END,
    CortiCall.Trigger.EDIT,
    CortiCall.Trigger.REMOVE,
)


def held_by_corti(sim, record) -> dict:
    return corti_item(sim, "GET", record.interaction_id).json()


def update_requests(sim) -> int:
    return sim.state()["counts"].get("update_requests", 0)


def test_end_completes_the_encounter_now_in_one_patch(corti, created, clinician):
    result = lifecycle.interaction_end(record=created, user=clinician)

    assert result.ok
    held = held_by_corti(corti, created)
    assert held["encounter"]["status"] == "completed"
    assert held["encounter"]["period"]["startedAt"] == "2026-01-15T09:00:00Z"
    created.refresh_from_db()
    assert created.encounter_status == "completed"
    ended = created.encounter_ended_at
    assert ended is not None
    assert abs((ended - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    [change] = InteractionChange.objects.filter(interaction=created)
    assert (change.kind, change.by_id) == (Kind.ENDED, clinician.pk)
    assert change.before["encounter_status"] == "in-progress"
    assert change.after["encounter_status"] == "completed"
    assert calls_of(created)[-1] == (UPDATE, R.CHANGED, END, clinician.pk)
    assert update_requests(corti) == 1


def test_end_at_a_chosen_time(corti, created, clinician):
    at = dt.datetime(2026, 1, 15, 9, 40, tzinfo=dt.UTC)

    assert lifecycle.interaction_end(record=created, user=clinician, ended_at=at).ok

    created.refresh_from_db()
    assert created.encounter_ended_at == at
    assert held_by_corti(corti, created)["encounter"]["period"]["endedAt"] == (
        "2026-01-15T09:40:00Z"
    )


@pytest.mark.parametrize("status", ["403", "409", "429"])
def test_a_refused_change_changes_nothing_and_keeps_the_request_id(
    corti, created, clinician, status
):
    corti.set_faults(fault(status, "update", count=3, retry_after=30))

    result = lifecycle.interaction_end(record=created, user=clinician)

    assert not result.ok and result.error is not None
    created.refresh_from_db()
    assert created.encounter_status == "in-progress"
    assert changes(created) == []
    assert calls_of(created)[-1][:2] == (UPDATE, R.FAILED)
    assert created.calls.last().error_request_id == result.error.request_id != ""
    assert held_by_corti(corti, created)["encounter"]["status"] == "in-progress"


def test_a_change_of_what_is_gone_marks_it_gone(corti, created, clinician):
    corti_item(corti, "DELETE", created.interaction_id)

    result = lifecycle.interaction_end(record=created, user=clinician)

    assert not result.ok and result.gone
    created.refresh_from_db()
    assert created.corti_gone_at is not None
    assert created.encounter_status == "in-progress"
    # Gone: nothing more is sent for it.
    assert not lifecycle.interaction_end(record=created, user=clinician).ok
    assert update_requests(corti) == 1


def test_a_lost_answer_after_the_change_is_confirmed_by_reading_back(
    corti, created, clinician
):
    corti.set_faults(fault("created-503", "update", count=1))

    result = lifecycle.interaction_end(record=created, user=clinician)

    assert result.ok
    assert update_requests(corti) == 1
    created.refresh_from_db()
    assert created.encounter_status == "completed"
    assert [c[:3] for c in calls_of(created)[-2:]] == [
        (UPDATE, R.UNKNOWN, END),
        (READ, R.FOUND, END),
    ]
    assert [c[0] for c in changes(created)] == [Kind.ENDED]


def test_a_lost_answer_of_a_change_not_made_changes_nothing(
    corti, created, clinician, settings
):
    corti.set_faults(fault("503", "update", count=1))

    result = lifecycle.interaction_end(record=created, user=clinician)

    # Corti does not show it (yet): not confirmed, nothing sent again, and
    # nothing else sent on top of it until a read settles it.
    assert not result.ok and result.unsettled
    assert update_requests(corti) == 1
    created.refresh_from_db()
    assert created.encounter_status == "in-progress"
    assert created.pending_change["kind"] == Kind.ENDED
    assert changes(created) == []
    assert not lifecycle.interaction_end(record=created, user=clinician).ok
    assert update_requests(corti) == 1
    # A read once the settle window has passed that still does not show it:
    # it was not made, and the interaction can be changed again.
    settings.INTAKE_SETTLE_SECONDS = 0
    assert interaction_refresh(record=created).ok
    created.refresh_from_db()
    assert created.pending_change is None
    assert changes(created) == []
    assert lifecycle.interaction_end(record=created, user=clinician).ok


def test_a_change_confirmed_by_a_later_read_is_credited_to_its_sender(
    corti, created, clinician
):
    corti.set_faults(
        fault("created-drop", "update", count=1), fault("403", "get", count=1)
    )
    assert lifecycle.interaction_end(record=created, user=clinician).unsettled

    result = interaction_refresh(record=created)

    assert result.ok
    created.refresh_from_db()
    assert created.pending_change is None
    assert [(c[0], c[3]) for c in changes(created)] == [(Kind.ENDED, clinician.pk)]


def test_a_lost_answer_that_cannot_be_read_back_is_left_unsettled(
    corti, created, clinician
):
    corti.set_faults(
        fault("created-drop", "update", count=1), fault("403", "get", count=1)
    )

    result = lifecycle.interaction_end(record=created, user=clinician)

    assert not result.ok and result.unsettled
    assert update_requests(corti) == 1
    created.refresh_from_db()
    # Corti did end it, but nothing here says so until a read does.
    assert created.encounter_status == "in-progress"
    assert changes(created) == []
    assert calls_of(created)[-1][:2] == (READ, R.INCONCLUSIVE)
    assert interaction_refresh(record=created).changed == [
        "encounter_status",
        "encounter_ended_at",
    ]


def test_a_correction_sends_only_what_changed(corti, created, clinician):
    from intake.fields import InteractionDetails

    details = InteractionDetails.of(created)
    details = InteractionDetails.from_values(
        {
            **details.as_dict(),
            "encounter_title": "Knee pain, right",
            "patient_name": "Ada King",
            "encounter_started_at": dt.datetime(2026, 1, 15, 8, 45, tzinfo=dt.UTC),
        }
    )

    result = lifecycle.interaction_correct(
        record=created, user=clinician, details=details
    )

    assert result.ok
    sent = created.calls.last().request_body
    assert sent == {
        "encounter": {
            "title": "Knee pain, right",
            "period": {
                "startedAt": "2026-01-15T08:45:00Z",
            },
        },
        "patient": {"identifier": "PAT-7", "name": "Ada King"},
    }
    created.refresh_from_db()
    assert (created.encounter_title, created.patient_name) == (
        "Knee pain, right",
        "Ada King",
    )
    [change] = InteractionChange.objects.filter(interaction=created)
    assert change.kind == Kind.CORRECTED and change.by_id == clinician.pk
    assert set(change.after) == {
        "encounter_title",
        "patient_name",
        "encounter_started_at",
    }


def test_a_correction_that_clears_a_field_sends_null(corti, created, clinician):
    from intake.fields import InteractionDetails

    details = InteractionDetails.from_values(
        {**InteractionDetails.of(created).as_dict(), "encounter_title": ""}
    )

    assert lifecycle.interaction_correct(
        record=created, user=clinician, details=details
    ).ok

    assert created.calls.last().request_body == {"encounter": {"title": None}}
    assert held_by_corti(corti, created)["encounter"]["title"] is None
    created.refresh_from_db()
    assert created.encounter_title == ""


def test_a_correction_with_nothing_changed_calls_nobody(corti, created, clinician):
    from intake.fields import InteractionDetails

    result = lifecycle.interaction_correct(
        record=created, user=clinician, details=InteractionDetails.of(created)
    )

    assert result.ok and result.changed == []
    assert update_requests(corti) == 0


def test_delete_marks_the_record_deleted_and_keeps_it(corti, created, administrator):
    result = lifecycle.interaction_delete(record=created, user=administrator)

    assert result.ok
    assert corti.state()["deleted"] == [str(created.interaction_id)]
    created.refresh_from_db()
    assert created.deleted_at is not None and created.deleted_by == administrator
    assert created.encounter_identifier == "ENC-42"
    assert [c[0] for c in changes(created)] == [Kind.DELETED]
    assert calls_of(created)[-1] == (DELETE, R.DELETED, REMOVE, administrator.pk)
    # Deleted: nothing more is sent for it.
    assert not lifecycle.interaction_end(record=created, user=administrator).ok


def test_a_lost_delete_answer_is_settled_by_reading_back(corti, created, administrator):
    corti.set_faults(fault("created-504", "delete", count=1))

    result = lifecycle.interaction_delete(record=created, user=administrator)

    assert result.ok
    assert corti.state()["counts"]["delete_requests"] == 1
    created.refresh_from_db()
    assert created.deleted_at is not None
    assert [c[:2] for c in calls_of(created)[-2:]] == [
        (DELETE, R.UNKNOWN),
        (READ, R.NOT_FOUND),
    ]


def test_a_delete_that_did_not_happen_is_said_so(
    corti, created, administrator, settings
):
    corti.set_faults(fault("503", "delete", count=1))

    result = lifecycle.interaction_delete(record=created, user=administrator)

    assert not result.ok and result.unsettled
    assert corti.state()["counts"]["delete_requests"] == 1
    created.refresh_from_db()
    assert created.deleted_at is None
    assert created.pending_change["kind"] == Kind.DELETED
    assert corti.state()["deleted"] == []
    # Still there once the window has passed: not deleted, and it can be.
    settings.INTAKE_SETTLE_SECONDS = 0
    interaction_refresh(record=created)
    created.refresh_from_db()
    assert created.pending_change is None and created.corti_gone_at is None


def test_a_lost_delete_confirmed_by_a_later_404_is_deleted_by_its_sender(
    corti, created, administrator
):
    corti.set_faults(
        fault("created-drop", "delete", count=1), fault("403", "get", count=1)
    )
    assert lifecycle.interaction_delete(record=created, user=administrator).unsettled

    interaction_refresh(record=created)

    created.refresh_from_db()
    assert created.deleted_by == administrator and created.corti_gone_at is None
    assert [(c[0], c[3]) for c in changes(created)] == [
        (Kind.DELETED, administrator.pk)
    ]


def test_a_second_end_sends_nothing(corti, created, clinician):
    assert lifecycle.interaction_end(record=created, user=clinician).ok

    again = lifecycle.interaction_end(record=created, user=clinician)

    assert again.already and not again.ok
    assert update_requests(corti) == 1
    assert [c[0] for c in changes(created)] == [Kind.ENDED]


def test_refresh_and_sync_leave_a_record_deleted_here_as_it_is(
    corti, created, administrator
):
    assert lifecycle.interaction_delete(record=created, user=administrator).ok

    assert not interaction_refresh(record=created).ok
    summary = lifecycle.interactions_sync()

    assert summary.gone == 0
    assert [c[0] for c in changes(created)] == [Kind.DELETED]


def test_who_may_change_and_delete(created, clinician, administrator, settings):
    from tests.support.factories import make_user

    other = make_user("other-clinician", password="pw-o-1", role="clinician")
    may = lifecycle.interaction_may_change

    assert may(user=clinician, record=created)
    assert not may(user=other, record=created)
    assert may(user=administrator, record=created)
    settings.INTAKE_CLINICIANS_CHANGE_ANY = True
    assert may(user=other, record=created)
    assert lifecycle.interaction_may_delete(user=administrator)
    assert not lifecycle.interaction_may_delete(user=clinician)


def test_an_assigned_user_corti_chose_is_kept_and_is_no_change(corti, clinician):
    record = submit(clinician, assigned_user_id=None).record

    result = interaction_refresh(record=record)

    assert result.ok and result.changed == []
    record.refresh_from_db()
    assert record.assigned_user_id is not None
    assert changes(record) == []
    assert not any(differs for *_, differs in record.comparison_rows())


def test_the_worker_syncs_every_so_often(corti, settings):
    from django.core.cache import cache

    from intake.tasks import sweep, sync_due
    from tests.support.tasks import queued, run_tasks

    corti_create(corti, body(1))
    assert not sync_due()  # 0: off
    settings.INTAKE_SYNC_MINUTES = 60
    cache.clear()

    sweep.call()

    assert len(queued("sync_interactions")) == 1
    assert not sync_due()  # queued once per period, however often asked
    run_tasks()
    assert Interaction.objects.filter(imported=True).count() == 1


# --- every action against every error Corti may give ---------------------------

ACTIONS = {
    "refresh": (
        "get",
        lambda record, user: interaction_refresh(record=record, user=user),
    ),
    "end": (
        "update",
        lambda record, user: lifecycle.interaction_end(record=record, user=user),
    ),
    "correct": (
        "update",
        lambda record, user: lifecycle.interaction_correct(
            record=record,
            user=user,
            details=__import__(
                "intake.fields", fromlist=["x"]
            ).InteractionDetails.from_values(
                {
                    **__import__("intake.fields", fromlist=["x"])
                    .InteractionDetails.of(record)
                    .as_dict(),
                    "encounter_title": "Corrected",
                }
            ),
        ),
    ),
    "delete": (
        "delete",
        lambda record, user: lifecycle.interaction_delete(record=record, user=user),
    ),
}


@pytest.mark.parametrize("kind", ["403", "409", "429", "500", "hang"])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_no_corti_error_changes_anything_here(
    corti, created, administrator, settings, action, kind
):
    """Each action, each error: the record and its history stay as they were
    (a lost answer is read back, and the read fails too here), the call is in
    the log with Corti's request id, and nothing is sent twice."""
    from intake.corti import clear_clients

    settings.CORTI_TIMEOUT = 0.3
    settings.CORTI_RETRY_BUDGET = 0.0
    clear_clients()
    endpoint, run = ACTIONS[action]
    before = Interaction.objects.filter(pk=created.pk).values().get()
    held_before = corti_item(corti, "GET", created.interaction_id).json()
    counts_before = dict(corti.state()["counts"])
    # The read-back after a lost answer fails as well: nothing can be known.
    corti.set_faults(
        fault(kind, endpoint, count=1, delay=1.0, retry_after=30),
        fault("403", "get", count=1),
    )

    result = run(created, administrator)

    assert not result.ok
    after = Interaction.objects.filter(pk=created.pk).values().get()
    ignored = {"updated_at", "corti_read_at", "corti_state", "pending_change"}
    # A lost answer (5xx, no answer) is kept until a read settles it.
    lost = kind in ("500", "hang") and endpoint != "get"
    assert bool(after["pending_change"]) == lost
    assert result.unsettled == lost
    assert {k: v for k, v in after.items() if k not in ignored} == {
        k: v for k, v in before.items() if k not in ignored
    }
    assert changes(created) == []
    sent = corti.state()["counts"].get(f"{endpoint}_requests", 0) - counts_before.get(
        f"{endpoint}_requests", 0
    )
    assert sent == 1
    last = (
        created.calls.exclude(kind=CortiCall.Kind.CREATE).order_by("started_at").first()
    )
    assert last is not None and last.user_id == administrator.pk
    if kind != "hang":
        assert (
            last.error_request_id and last.error_request_id == result.error.request_id
        )
    # Corti still holds what it held (the faults changed nothing there).
    corti.set_faults()
    assert corti_item(corti, "GET", created.interaction_id).json() == held_before


@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_404_on_any_action_marks_the_record_gone_and_keeps_it(
    corti, created, administrator, action
):
    endpoint, run = ACTIONS[action]
    corti.set_faults(fault("404", endpoint, count=1))

    result = run(created, administrator)

    assert result.gone
    assert not result.ok or action == "refresh"
    created.refresh_from_db()
    assert created.corti_gone_at is not None
    assert created.encounter_identifier == "ENC-42"
    assert [c[0] for c in changes(created)] == [Kind.GONE]
