"""Settling records whose answer from Corti was lost, against the real simulator."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from django.utils import timezone

from intake.corti.types import InteractionListed
from intake.enums import ErrorCode
from intake.models import CortiCall, Interaction
from intake.services import outcomes, reconciliation
from intake.services.interactions import (
    RetryResult,
    interaction_request,
    interaction_retry,
)
from intake.services.outcomes import pending_grace
from intake.services.reconciliation import (
    Lookup,
    interaction_nudge,
    interaction_settle,
    matches,
    search,
)
from tests.support.concurrency import in_threads
from tests.support.corti import (
    corti_create,
    corti_holds,
    create_attempts,
    fault,
    list_requests,
    set_faults,
)
from tests.support.factories import ASSIGNED, typed_values
from tests.support.records import Outcome, calls_of, settle_at, stranded, submit
from tests.support.tasks import queued

CREATE, LOOKUP = CortiCall.Kind.CREATE, CortiCall.Kind.LOOKUP
R = CortiCall.Result
SUBMIT, WORKER, RETRY = (
    CortiCall.Trigger.SUBMIT,
    CortiCall.Trigger.WORKER,
    CortiCall.Trigger.RETRY,
)
#: The create call a killed worker left behind, logged but never answered.
ORPHANED = (CREATE, R.STARTED, SUBMIT)


def without_user(rows):
    return [row[:3] for row in rows]


def settle(record: Interaction, **kwargs) -> bool:
    """One settle on the real clock, as the background worker runs it."""
    return interaction_settle(record=record, trigger=WORKER, **kwargs)


# --- which records a check is due for -------------------------------------------


def _age(record: Interaction, **fields) -> None:
    Interaction.objects.filter(pk=record.pk).update(**fields)
    record.refresh_from_db()


def _grace_ago(extra: float) -> dt.datetime:
    return timezone.now() - pending_grace() - dt.timedelta(seconds=extra)


def _in(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


DUE_CASES: list[tuple[str, Callable[[Interaction], None], bool]] = [
    ("fresh-pending", lambda r: _age(r, last_attempt_at=timezone.now()), False),
    ("pending-within-grace", lambda r: _age(r, last_attempt_at=_grace_ago(-5)), False),
    ("pending-past-grace", lambda r: _age(r, last_attempt_at=_grace_ago(5)), True),
    (
        "pending-no-attempt-old",
        lambda r: _age(r, last_attempt_at=None, created_at=_grace_ago(5)),
        True,
    ),
    (
        "pending-no-attempt-new",
        lambda r: _age(r, last_attempt_at=None, created_at=timezone.now()),
        False,
    ),
    ("unknown", lambda r: _age(r, outcome=Outcome.UNKNOWN), True),
    (
        "unknown-check-due",
        lambda r: _age(r, outcome=Outcome.UNKNOWN, next_check_at=_in(-1)),
        True,
    ),
    (
        "unknown-check-later",
        lambda r: _age(r, outcome=Outcome.UNKNOWN, next_check_at=_in(60)),
        False,
    ),
    (
        "unknown-being-checked",
        lambda r: _age(r, outcome=Outcome.UNKNOWN, checking_until=_in(60)),
        False,
    ),
    (
        "unknown-check-abandoned",
        lambda r: _age(r, outcome=Outcome.UNKNOWN, checking_until=_in(-1)),
        True,
    ),
    ("failed-old", lambda r: _age(r, outcome=Outcome.FAILED), False),
    ("created-old", lambda r: _age(r, outcome=Outcome.CREATED), False),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "due"), [c[1:] for c in DUE_CASES], ids=[c[0] for c in DUE_CASES]
)
def test_a_check_is_queued_only_when_due(clinician, change, due):
    record = stranded(clinician)
    change(record)
    now = timezone.now()

    assert (
        outcomes.is_stale_pending(record, now) or outcomes.is_check_due(record, now)
    ) is due
    due_now = Interaction.objects.filter(
        outcomes.stale_pending(now) | outcomes.check_due(now)
    )
    assert (record in due_now) is due
    # A page view of it queues a check exactly then, and never calls Corti.
    assert interaction_nudge(record=record) is due
    assert len(queued("settle_interaction", record)) == int(due)
    assert without_user(calls_of(record)) == [ORPHANED]


@pytest.mark.django_db
def test_page_views_queue_one_check_however_often_they_come(clinician):
    record = stranded(clinician)

    nudged = [interaction_nudge(record=record) for _ in range(5)]

    assert nudged == [True, False, False, False, False]
    assert len(queued("settle_interaction", record)) == 1


# --- stale and fresh pending records -------------------------------------------


@pytest.mark.django_db
def test_fresh_pending_record_is_left_alone(corti, clinician):
    record = stranded(clinician, age=dt.timedelta(seconds=1))
    before = record.last_attempt_at

    assert settle(record) is False
    assert settle(record, force=True) is False

    record.refresh_from_db()
    assert record.outcome == Outcome.PENDING
    assert record.last_attempt_at == before
    assert without_user(calls_of(record)) == [ORPHANED]
    assert list_requests(corti) == 0
    assert corti_holds(corti) == []


@pytest.mark.django_db
def test_stale_pending_record_held_by_corti_is_adopted(corti, clinician):
    record = stranded(clinician)
    landed = corti_create(corti, record.request_body)

    assert settle(record) is True

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == landed
    assert record.websocket_url == held["websocketUrl"]
    assert record.may_exist_in_corti is False
    assert record.completed_at is not None
    assert record.error_code == ""
    assert calls_of(record) == [
        (*ORPHANED, clinician.pk),
        (LOOKUP, R.FOUND, WORKER, None),
    ]
    [found] = CortiCall.objects.filter(interaction=record, kind=LOOKUP)
    assert found.corti_id == landed
    assert found.request_body["id"] == str(landed)
    assert list_requests(corti) == 1
    assert create_attempts(corti.state()) == 1
    assert queued("settle_interaction", record) == []


@pytest.mark.django_db
def test_stale_pending_record_after_a_created_drop_is_adopted(corti, clinician):
    """The worker died while Corti created it and the connection dropped."""
    set_faults(corti, fault("created-drop", count=1))
    record = submit(clinician).record
    [held] = corti_holds(corti)
    # Put it back as the dead worker left it: pending, no answer recorded.
    Interaction.objects.filter(pk=record.pk).update(
        outcome=Outcome.PENDING,
        interaction_id=None,
        websocket_url="",
        completed_at=None,
        may_exist_in_corti=False,
        answer_lost_at=None,
        last_attempt_at=timezone.now() - pending_grace() - dt.timedelta(seconds=5),
    )
    record.refresh_from_db()

    interaction_settle(record=record, trigger=CortiCall.Trigger.COMMAND)

    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert calls_of(record)[-1] == (LOOKUP, R.FOUND, CortiCall.Trigger.COMMAND, None)
    assert len(corti_holds(corti)) == 1
    assert create_attempts(corti.state()) == 1


@pytest.mark.django_db
def test_stale_pending_record_not_in_corti_is_interrupted_then_failed(
    corti, clinician, settings
):
    record = stranded(clinician)

    assert settle(record) is True

    # Its create may have been sent at its last attempt, under the settle
    # window ago: not found proves nothing yet.
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == ErrorCode.INTERRUPTED
    assert record.answer_lost_at == record.last_attempt_at + outcomes.one_call()
    assert timezone.now() < record.next_check_at <= outcomes.proven_absent_at(record)
    assert len(queued("settle_interaction", record)) == 1
    assert calls_of(record) == [
        (*ORPHANED, clinician.pk),
        (LOOKUP, R.NOT_FOUND, WORKER, None),
    ]

    assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)

    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == ErrorCode.INTERRUPTED
    assert "dashboard stopped" in record.error_message
    assert "could no longer be in progress" in record.failure_explanation
    assert record.error_request_id == ""
    assert record.interaction_id is None
    assert record.retryable is True
    assert record.may_exist_in_corti is True
    assert without_user(calls_of(record))[-1] == (LOOKUP, R.NOT_FOUND, WORKER)
    assert corti_holds(corti) == []
    assert create_attempts(corti.state()) == 0

    # Now it is known not to exist: a retry looks once more, then sends it, once.
    record, result = interaction_retry(record=record, user=clinician)

    assert result == RetryResult.SENT
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert calls_of(record)[-2:] == [
        (LOOKUP, R.NOT_FOUND, RETRY, clinician.pk),
        (CREATE, R.CREATED, RETRY, clinician.pk),
    ]


@pytest.mark.django_db
@pytest.mark.slow  # searches answered 503 wait out the retries' backoff
def test_stale_pending_record_with_corti_unsearchable_becomes_unknown(corti, clinician):
    set_faults(corti, fault("503", "list"))
    record = stranded(clinician)

    assert settle(record) is True

    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    # The record keeps why its answer is missing; the search keeps its own error.
    assert record.error_code == ErrorCode.INTERRUPTED
    assert record.interaction_id is None
    [lookup] = CortiCall.objects.filter(interaction=record, kind=LOOKUP)
    assert (lookup.result, lookup.error_code, lookup.error_status) == (
        R.INCONCLUSIVE,
        ErrorCode.SERVER_ERROR,
        503,
    )
    assert uuid.UUID(lookup.error_request_id)
    assert record.next_check_at > timezone.now()
    assert len(queued("settle_interaction", record)) == 1
    assert without_user(calls_of(record)) == [
        ORPHANED,
        (LOOKUP, R.INCONCLUSIVE, WORKER),
    ]
    assert create_attempts(corti.state()) == 0
    assert corti_holds(corti) == []


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", [Outcome.CREATED, Outcome.FAILED])
def test_settle_of_a_settled_record_makes_no_call(corti, clinician, outcome):
    record = stranded(clinician)
    Interaction.objects.filter(pk=record.pk).update(outcome=outcome)
    record.refresh_from_db()

    assert settle(record, force=True) is False

    record.refresh_from_db()
    assert record.outcome == outcome
    assert without_user(calls_of(record)) == [ORPHANED]
    assert list_requests(corti) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_settles_of_one_record_look_it_up_once(corti, clinician):
    record = stranded(clinician)
    landed = corti_create(corti, record.request_body)

    # Six workers that each read the record while it was due.
    copies = [Interaction.objects.get(pk=record.pk) for _ in range(6)]
    assert all(outcomes.is_stale_pending(c) for c in copies)

    searched = in_threads(6, lambda i: settle(copies[i]))

    assert sorted(searched) == [False] * 5 + [True]
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == landed
    assert without_user(calls_of(record)) == [ORPHANED, (LOOKUP, R.FOUND, WORKER)]
    assert list_requests(corti) == 1
    assert len(corti_holds(corti)) == 1


@pytest.mark.django_db
def test_record_without_patient_or_assigned_user_is_found(corti, clinician):
    record = stranded(
        clinician,
        assigned_user_id=None,
        patient_identifier="",
        patient_name="",
        patient_gender="",
        patient_birth_date=None,
        patient_pronouns="",
    )
    assert set(record.request_body) == {"encounter"}
    landed = corti_create(corti, record.request_body)
    # Corti assigns a user of its own; that is no mismatch.
    [held] = corti_holds(corti)
    assert held["assignedUserId"]

    settle(record)

    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == landed


# --- one interaction, one record --------------------------------------------------


@pytest.mark.django_db
def test_interaction_adopted_by_another_record_is_not_adopted_twice(
    corti, clinician, settings
):
    first = submit(clinician).record
    # The same form typed twice: a second record, stranded, with the same body.
    second = stranded(clinician)
    assert second.request_body == first.request_body

    assert settle_at(second, settings.INTAKE_SETTLE_SECONDS)

    first.refresh_from_db()
    second.refresh_from_db()
    [held] = corti_holds(corti)
    assert first.interaction_id == uuid.UUID(held["id"])
    assert second.outcome == Outcome.FAILED
    assert second.error_code == ErrorCode.INTERRUPTED
    assert second.interaction_id is None
    assert without_user(calls_of(second))[-1] == (LOOKUP, R.NOT_FOUND, WORKER)


@pytest.mark.django_db
def test_two_identical_records_each_adopt_their_own_interaction(corti, clinician):
    first = submit(clinician).record
    second = stranded(clinician)
    landed = corti_create(corti, second.request_body)

    settle(second)

    first.refresh_from_db()
    second.refresh_from_db()
    assert second.outcome == Outcome.CREATED
    assert second.interaction_id == landed
    assert first.interaction_id != landed
    assert len(corti_holds(corti)) == 2


# --- search ---------------------------------------------------------------------


def _other(body: dict, index: int) -> dict:
    other = copy.deepcopy(body)
    other["encounter"]["identifier"] = f"ENC-OTHER-{index}"
    return other


@pytest.mark.django_db
def test_search_pages_through_to_the_match(corti, clinician, monkeypatch):
    monkeypatch.setattr(reconciliation, "LOOKUP_PAGE_SIZE", 2)
    record = stranded(clinician)
    landed = corti_create(corti, record.request_body)
    for index in range(4):
        corti_create(corti, _other(record.request_body, index))

    settle(record)

    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == landed
    # Newest first, two a page: the match is the fifth, on page three.
    assert list_requests(corti) == 3
    assert len(corti_holds(corti)) == 5


@pytest.mark.django_db
def test_search_runs_out_of_pages_inconclusively(corti, clinician, monkeypatch):
    monkeypatch.setattr(reconciliation, "LOOKUP_PAGE_SIZE", 2)
    monkeypatch.setattr(reconciliation, "LOOKUP_MAX_PAGES", 2)
    record = stranded(clinician)
    corti_create(corti, record.request_body)
    for index in range(4):
        corti_create(corti, _other(record.request_body, index))

    assert search(record) == Lookup(match=None, conclusive=False)
    assert list_requests(corti) == 2

    # Even long after the settle window: a search that could not see every
    # interaction that might be this one proves nothing.
    assert settle_at(record, 3600)

    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == ErrorCode.INTERRUPTED
    assert record.interaction_id is None
    assert without_user(calls_of(record))[-1] == (LOOKUP, R.INCONCLUSIVE, WORKER)
    assert len(queued("settle_interaction", record)) == 1
    assert create_attempts(corti.state()) == 5


@pytest.mark.django_db
def test_search_of_a_listing_without_it_is_conclusive(corti, clinician, monkeypatch):
    monkeypatch.setattr(reconciliation, "LOOKUP_PAGE_SIZE", 2)
    record = stranded(clinician)
    for index in range(3):
        corti_create(corti, _other(record.request_body, index))

    assert search(record) == Lookup(match=None, conclusive=True)
    # Two full-or-partial pages, then the empty one that ends the listing.
    assert list_requests(corti) == 3


@pytest.mark.django_db
def test_search_stops_at_interactions_older_than_the_record_minus_clock_skew(
    corti, clinician, monkeypatch
):
    monkeypatch.setattr(reconciliation, "LOOKUP_PAGE_SIZE", 1)
    body = interaction_request(Interaction(**typed_values()).details).to_json()
    older = corti_create(corti, body)
    for index in range(3):
        corti_create(corti, _other(body, index))
    # Submitted after all of them (but within the clock skew).
    record = stranded(
        clinician, age=dt.timedelta(0), created_ago=dt.timedelta(seconds=0)
    )
    assert record.created_at > parse_created(corti, older)
    assert record.request_body == body

    # Corti's clock may lag ours: within CLOCK_SKEW it still counts.
    found = search(record)
    assert found.match is not None
    assert found.match.id == older
    assert list_requests(corti) == 4

    monkeypatch.setattr(reconciliation, "CLOCK_SKEW", dt.timedelta(0))
    assert search(record) == Lookup(match=None, conclusive=True)
    # It stopped at the first interaction older than the record.
    assert list_requests(corti) == 5


def parse_created(corti, interaction_id: uuid.UUID) -> dt.datetime:
    [held] = [h for h in corti_holds(corti) if h["id"] == str(interaction_id)]
    return dt.datetime.fromisoformat(held["createdAt"].replace("Z", "+00:00"))


# --- matches ---------------------------------------------------------------------

SENT = interaction_request(Interaction(**typed_values()).details).to_json()
MINIMAL = {
    "encounter": {
        "identifier": "ENC-1",
        "status": "planned",
        "type": "consultation",
        "period": {"startedAt": "2026-03-29T01:30:00Z"},
    }
}


def listed(sent: dict, change: Callable[[dict], None] | None = None):
    data = {
        "id": str(uuid.uuid4()),
        "assignedUserId": sent.get("assignedUserId") or str(uuid.uuid4()),
        "encounter": copy.deepcopy(sent["encounter"]),
        "patient": copy.deepcopy(sent.get("patient")),
        "createdAt": "2026-01-15T09:00:05.123456Z",
        "updatedAt": "2026-01-15T09:00:05.123456Z",
        "endedAt": None,
        "websocketUrl": "wss://example/streams",
    }
    if change is not None:
        change(data)
    return InteractionListed.from_json(data)


def _set(path: str, value):
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        target = data
        for name in parents:
            target = target[name]
        if value is _DROP:
            del target[last]
        else:
            target[last] = value

    return change


_DROP = object()

MATCH_CASES = [
    ("identical", None, True),
    ("identifier", _set("encounter.identifier", "ENC-43"), False),
    ("identifier-case", _set("encounter.identifier", "enc-42"), False),
    ("identifier-missing", _set("encounter.identifier", _DROP), False),
    ("status", _set("encounter.status", "completed"), False),
    ("type", _set("encounter.type", "emergency"), False),
    ("title", _set("encounter.title", "Hip pain"), False),
    ("title-missing", _set("encounter.title", _DROP), False),
    ("startedAt", _set("encounter.period.startedAt", "2026-01-15T09:00:01Z"), False),
    (
        "startedAt-offset",
        _set("encounter.period.startedAt", "2026-01-15T09:00:00+00:00"),
        True,
    ),
    (
        "startedAt-millis",
        _set("encounter.period.startedAt", "2026-01-15T09:00:00.000Z"),
        True,
    ),
    (
        "startedAt-other-zone",
        _set("encounter.period.startedAt", "2026-01-15T10:00:00+01:00"),
        True,
    ),
    (
        "startedAt-naive",
        _set("encounter.period.startedAt", "2026-01-15T09:00:00"),
        False,
    ),
    ("endedAt", _set("encounter.period.endedAt", "2026-01-15T09:46:00Z"), False),
    ("endedAt-missing", _set("encounter.period.endedAt", _DROP), False),
    (
        "endedAt-millis",
        _set("encounter.period.endedAt", "2026-01-15T09:45:00.000+00:00"),
        True,
    ),
    ("patient-identifier", _set("patient.identifier", "PAT-8"), False),
    ("patient-name", _set("patient.name", "Ada King"), False),
    ("patient-gender", _set("patient.gender", "other"), False),
    ("patient-pronouns", _set("patient.pronouns", "they/them"), False),
    ("patient-pronouns-missing", _set("patient.pronouns", _DROP), False),
    ("patient-birthDate", _set("patient.birthDate", "1980-04-24T00:00:00Z"), False),
    (
        "patient-birthDate-format",
        _set("patient.birthDate", "1980-04-23T00:00:00.000+00:00"),
        True,
    ),
    ("patient-missing", _set("patient", None), False),
    ("assigned-upper", _set("assignedUserId", str(ASSIGNED).upper()), True),
    ("assigned-other", _set("assignedUserId", str(uuid.uuid4())), False),
    ("assigned-missing", _set("assignedUserId", _DROP), False),
    ("fields-corti-adds", _set("encounter.id", "abc"), True),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [c[1:] for c in MATCH_CASES],
    ids=[c[0] for c in MATCH_CASES],
)
def test_matches(change, expected):
    assert matches(SENT, listed(SENT, change)) is expected


MINIMAL_CASES = [
    ("identical", None, True),
    ("corti-assigned-user", _set("assignedUserId", str(uuid.uuid4())), True),
    ("title-added", _set("encounter.title", "Knee pain"), False),
    ("endedAt-added", _set("encounter.period.endedAt", "2026-03-29T02:00:00Z"), False),
    ("patient-added", _set("patient", {"identifier": "PAT-7"}), False),
]


@pytest.mark.parametrize(
    ("change", "expected"),
    [c[1:] for c in MINIMAL_CASES],
    ids=[c[0] for c in MINIMAL_CASES],
)
def test_matches_a_minimal_body(change, expected):
    assert matches(MINIMAL, listed(MINIMAL, change)) is expected
