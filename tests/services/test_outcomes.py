"""The state module: every change of outcome, from every state, and races.

Each transition is one conditional UPDATE: from the state it expects it wins,
from any other it changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from intake.corti.errors import CortiServerError, CortiValidationError, Problem
from intake.enums import ErrorCode
from intake.models import Interaction
from intake.services import outcomes
from tests.support.concurrency import in_threads
from tests.support.records import Outcome, stranded

pytestmark = pytest.mark.django_db

ALL = (Outcome.PENDING, Outcome.CREATED, Outcome.FAILED, Outcome.UNKNOWN)


def in_state(user, outcome: str, **fields) -> Interaction:
    """A record in `outcome`, its last attempt a moment ago."""
    record = stranded(user, age=dt.timedelta(seconds=1))
    values = {"outcome": outcome, **fields}
    if outcome == Outcome.CREATED:
        values.setdefault("interaction_id", uuid.uuid4())
    if outcome == Outcome.UNKNOWN:
        values.setdefault("answer_lost_at", timezone.now() - dt.timedelta(seconds=10))
    Interaction.objects.filter(pk=record.pk).update(**values)
    record.refresh_from_db()
    return record


def server_error() -> CortiServerError:
    return CortiServerError(Problem(status=503, detail="down", request_id="r-503"))


def invalid() -> CortiValidationError:
    return CortiValidationError(
        Problem(
            status=400,
            detail="bad",
            request_id="r-400",
            validation_errors=(("encounter.identifier", "is required"),),
        )
    )


# --- one table of transitions ------------------------------------------------


def _created(record):
    return outcomes.mark_created(
        record, interaction_id=uuid.uuid4(), websocket_url="ws://x"
    )


def _failed(record):
    return outcomes.mark_failed(record, invalid())


def _lost(record):
    return outcomes.mark_answer_lost(record, server_error(), sent_at=timezone.now())


def _resend(record):
    return outcomes.claim_resend(record)


TRANSITIONS = [
    # (change, the states it may start from, the state it leads to)
    (_created, {Outcome.PENDING, Outcome.UNKNOWN}, Outcome.CREATED),
    (_failed, {Outcome.PENDING}, Outcome.FAILED),
    (_lost, {Outcome.PENDING}, Outcome.UNKNOWN),
    (_resend, {Outcome.FAILED}, Outcome.PENDING),
]


@pytest.mark.parametrize("start", ALL)
@pytest.mark.parametrize(
    ("change", "allowed", "end"), TRANSITIONS, ids=lambda v: getattr(v, "__name__", "")
)
def test_each_transition_only_from_the_states_it_expects(
    clinician, change, allowed, end, start
):
    record = in_state(clinician, start)
    before = Interaction.objects.values().get(pk=record.pk)

    won = change(record)

    if start in allowed:
        assert record.outcome == end
        if change is not _created:
            assert won
    else:
        after = Interaction.objects.values().get(pk=record.pk)
        assert {k: v for k, v in after.items() if k != "updated_at"} == {
            k: v for k, v in before.items() if k != "updated_at"
        }
        if change is not _created:
            assert not won


def test_created_keeps_the_first_interaction_when_a_second_answer_comes(clinician):
    record = in_state(clinician, Outcome.PENDING)
    first, second = uuid.uuid4(), uuid.uuid4()
    outcomes.mark_created(record, interaction_id=first, websocket_url="ws://1")
    outcomes.mark_created(record, interaction_id=second, websocket_url="ws://2")
    assert (record.outcome, record.interaction_id) == (Outcome.CREATED, first)


def test_a_won_change_reads_back_what_other_workers_changed(clinician):
    record = in_state(clinician, Outcome.PENDING)
    # Another worker changed a column this change does not write.
    Interaction.objects.filter(pk=record.pk).update(checks_made=3)
    assert outcomes.mark_created(
        record, interaction_id=uuid.uuid4(), websocket_url="wss://x/1"
    )
    stored = Interaction.objects.get(pk=record.pk)
    for field in Interaction._meta.concrete_fields:
        assert getattr(record, field.attname) == getattr(stored, field.attname), (
            field.name
        )


def test_a_stale_copy_never_settles_inside_a_newer_lost_answers_window(
    corti, clinician
):
    """A reconcile run loads its due records at its start; meanwhile one was
    sent again and that answer was lost just now: the run must not mark it
    failed with what its old copy says (found by review of issue 13)."""
    from intake.models import CortiCall
    from intake.services import reconciliation
    from tests.support.records import lost_answer

    record = lost_answer(clinician, lost_ago=dt.timedelta(days=1))
    stale = Interaction.objects.get(pk=record.pk)
    now = timezone.now()
    Interaction.objects.filter(pk=record.pk).update(
        outcome=Outcome.UNKNOWN,
        answer_lost_at=now,
        last_attempt_at=now,
        checks_made=1,
        next_check_at=now + dt.timedelta(seconds=5),
        checking_until=None,
        error_code="disconnected",
    )
    reconciliation.interaction_settle(
        record=stale, trigger=CortiCall.Trigger.COMMAND, force=True, now=now
    )
    fresh = Interaction.objects.get(pk=record.pk)
    assert fresh.outcome == Outcome.UNKNOWN
    assert fresh.checks_made == 2


def test_a_resend_sends_what_the_record_holds_now(corti, clinician):
    """A POST read the failed record; another tab's correction to another
    patient landed before it claimed the resend: Corti gets what the record
    holds, never the older copy's patient."""
    from intake.fields import InteractionDetails
    from intake.services import interactions as service
    from tests.support.corti import corti_holds
    from tests.support.factories import typed_values
    from tests.support.records import lost_answer

    record = lost_answer(clinician)
    Interaction.objects.filter(pk=record.pk).update(
        outcome=Outcome.FAILED, may_exist_in_corti=False, error_code="server_error"
    )
    typed = service._record_values(InteractionDetails(**typed_values()))
    existing = Interaction.objects.get(pk=record.pk)
    corrected = service._record_values(
        InteractionDetails(
            **{**typed_values(), "patient_identifier": "PAT-B", "patient_name": "Bo"}
        )
    )
    Interaction.objects.filter(pk=record.pk).update(**corrected)
    service._resubmit(existing, user=clinician, values=typed)
    fresh = Interaction.objects.get(pk=record.pk)
    [sent] = corti_holds(corti)
    assert sent["patient"]["identifier"] == fresh.patient_identifier


def test_a_lost_change_reads_what_the_winner_left(clinician):
    record = in_state(clinician, Outcome.PENDING)
    winner = uuid.uuid4()
    Interaction.objects.filter(pk=record.pk).update(
        outcome=Outcome.CREATED, interaction_id=winner
    )
    assert not outcomes.mark_failed(record, server_error())
    assert (record.outcome, record.interaction_id) == (Outcome.CREATED, winner)


def test_created_refuses_an_interaction_another_record_holds(clinician):
    taken = in_state(clinician, Outcome.CREATED)
    record = in_state(clinician, Outcome.UNKNOWN)
    assert not outcomes.mark_created(
        record, interaction_id=taken.interaction_id, websocket_url="ws://x"
    )
    assert record.outcome == Outcome.UNKNOWN


def test_failed_keeps_status_request_id_and_problem(clinician):
    record = in_state(clinician, Outcome.PENDING)
    outcomes.mark_failed(record, invalid())
    assert (record.error_code, record.error_status, record.error_request_id) == (
        ErrorCode.INVALID,
        400,
        "r-400",
    )
    assert record.error_problem["validationErrors"] == [
        {"encounter.identifier": "is required"}
    ]


def test_answer_lost_holds_the_first_search_and_keeps_the_reason(clinician):
    record = in_state(clinician, Outcome.PENDING)
    sent = timezone.now() - dt.timedelta(seconds=20)
    assert outcomes.mark_answer_lost(record, server_error(), sent_at=sent)
    assert record.outcome == Outcome.UNKNOWN
    assert record.answer_lost_at == sent
    assert record.may_exist_in_corti
    assert record.checking_until > timezone.now()
    assert (record.error_code, record.error_request_id) == (
        ErrorCode.SERVER_ERROR,
        "r-503",
    )


@pytest.mark.parametrize(
    ("start", "age", "wins"),
    [
        (Outcome.PENDING, "stale", True),
        (Outcome.PENDING, "fresh", False),
        (Outcome.UNKNOWN, "stale", False),
        (Outcome.FAILED, "stale", False),
        (Outcome.CREATED, "stale", False),
    ],
)
def test_interrupted_only_for_a_pending_record_past_the_grace(
    clinician, start, age, wins
):
    record = in_state(clinician, start)
    attempt = timezone.now() - (
        outcomes.pending_grace() + dt.timedelta(seconds=5)
        if age == "stale"
        else dt.timedelta(seconds=1)
    )
    Interaction.objects.filter(pk=record.pk).update(last_attempt_at=attempt)
    record.refresh_from_db()

    assert outcomes.mark_interrupted(record) is wins
    if wins:
        assert record.outcome == Outcome.UNKNOWN
        assert record.error_code == ErrorCode.INTERRUPTED
        # The window counts from the latest moment its create can have left.
        assert record.answer_lost_at == attempt + outcomes.one_call()


# --- the search lease -------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "force", "wins"),
    [
        ({"next_check_at": None}, False, True),
        ({"next_check_at": "past"}, False, True),
        ({"next_check_at": "future"}, False, False),
        ({"next_check_at": "future"}, True, True),
        ({"checking_until": "future"}, False, False),
        ({"checking_until": "future"}, True, False),
        ({"checking_until": "past"}, False, True),
    ],
)
def test_claim_check(clinician, fields, force, wins):
    now = timezone.now()
    when = {
        "past": now - dt.timedelta(seconds=5),
        "future": now + dt.timedelta(seconds=60),
    }
    record = in_state(
        clinician,
        Outcome.UNKNOWN,
        **{k: when.get(v, v) if isinstance(v, str) else v for k, v in fields.items()},
    )
    lease = outcomes.claim_check(record, now=now, force=force)
    assert (lease is not None) is wins


@pytest.mark.parametrize("start", [Outcome.PENDING, Outcome.CREATED, Outcome.FAILED])
def test_claim_check_only_of_an_unknown_record(clinician, start):
    record = in_state(clinician, start)
    assert outcomes.claim_check(record, force=True) is None


@pytest.mark.django_db(transaction=True)
def test_two_claims_at_once_one_lease(clinician):
    record = in_state(clinician, Outcome.UNKNOWN)
    now = timezone.now()

    leases = in_threads(
        6,
        lambda i: outcomes.claim_check(
            Interaction.objects.get(pk=record.pk), now=now + dt.timedelta(0, 0, i)
        ),
    )

    assert sum(lease is not None for lease in leases) == 1


def test_not_created_only_after_the_settle_window(clinician, settings):
    settings.INTAKE_SETTLE_SECONDS = 120
    lost = timezone.now() - dt.timedelta(seconds=60)
    record = in_state(clinician, Outcome.UNKNOWN, answer_lost_at=lost)
    lease = outcomes.claim_check(record, force=True)

    with pytest.raises(ValueError, match="settle window"):
        outcomes.mark_not_created(
            record, lease=lease, now=lost + dt.timedelta(seconds=119)
        )
    assert outcomes.mark_not_created(
        record, lease=lease, now=lost + dt.timedelta(seconds=120)
    )
    assert record.outcome == Outcome.FAILED
    assert record.checking_until is None


def test_not_created_or_rescheduled_only_by_the_lease_holder(clinician, settings):
    settings.INTAKE_SETTLE_SECONDS = 0
    record = in_state(clinician, Outcome.UNKNOWN)
    stale_lease = outcomes.claim_check(record, force=True)
    # The lease ran out and another worker took the record over.
    Interaction.objects.filter(pk=record.pk).update(
        checking_until=timezone.now() - dt.timedelta(seconds=1)
    )
    record.refresh_from_db()
    fresh_lease = outcomes.claim_check(record, force=True)

    assert not outcomes.mark_not_created(record, lease=stale_lease)
    assert (
        outcomes.mark_still_unknown(record, lease=stale_lease, search_error=None)
        is None
    )
    assert record.outcome == Outcome.UNKNOWN
    assert outcomes.mark_not_created(record, lease=fresh_lease)


# --- the schedule -------------------------------------------------------------


@pytest.mark.parametrize(
    ("checks_made", "since_lost", "expected_after_lost"),
    [
        # Right after the first search: a few seconds on.
        (1, 6, 11),
        # Then once the window (120 s) is over.
        (2, 11, 120),
        # Close to the window: straight to it.
        (1, 118, 120),
        # Past the window, Corti still unsearchable: every 10 minutes.
        (3, 130, 130 + 600),
        # A day on: hourly (and flagged).
        (150, 86_400, 86_400 + 3600),
    ],
)
def test_next_check(clinician, settings, checks_made, since_lost, expected_after_lost):
    settings.INTAKE_SETTLE_SECONDS = 120
    lost = timezone.now()
    record = in_state(
        clinician, Outcome.UNKNOWN, answer_lost_at=lost, checks_made=checks_made
    )
    due = outcomes.next_check(record, lost + dt.timedelta(seconds=since_lost))
    assert due == lost + dt.timedelta(seconds=expected_after_lost)


def test_still_unknown_a_day_on_is_flagged(clinician, settings):
    settings.INTAKE_SETTLE_SECONDS = 120
    lost = timezone.now() - dt.timedelta(hours=24, seconds=1)
    record = in_state(clinician, Outcome.UNKNOWN, answer_lost_at=lost, checks_made=9)
    lease = outcomes.claim_check(record, force=True)
    now = timezone.now()

    due = outcomes.mark_still_unknown(record, lease=lease, search_error=None, now=now)

    assert due == now + outcomes.FLAGGED_RECHECK
    assert (record.outcome, record.needs_attention, record.checks_made) == (
        Outcome.UNKNOWN,
        True,
        10,
    )
    assert "administrator" in record.failure_explanation


def test_resend_aborted_says_corti_could_not_be_searched(clinician):
    record = in_state(clinician, Outcome.FAILED)
    outcomes.claim_resend(record)
    assert outcomes.mark_resend_aborted(record, server_error(), now=None)
    assert (record.outcome, record.error_code) == (
        Outcome.FAILED,
        ErrorCode.UNSEARCHABLE,
    )
    assert record.error_request_id == "r-503"
    assert "could not be searched" in record.failure_explanation


def test_error_fields_of_every_error_kind_have_one_shape():
    for error in (server_error(), invalid()):
        fields = outcomes.error_fields(error)
        assert set(fields) == set(outcomes.NO_ERROR)
    assert outcomes.error_fields(None) == outcomes.NO_ERROR
