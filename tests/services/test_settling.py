"""Lost answers settle by themselves, and "not created" only when proven.

Against the real simulator: a create whose answer was lost stays unknown
until a search made INTAKE_SETTLE_SECONDS after the lost request finds
nothing (failed), or any search finds it (created). Background tasks run in
this process with django-tasks-db's own worker; the clock of a settle is
injected where the test needs the window to have passed.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from intake import tasks
from intake.corti import clear_clients
from intake.enums import ErrorCode
from intake.models import CortiCall, Interaction, InteractionEvent
from intake.services import outcomes, reconciliation
from intake.services.interactions import RetryResult, interaction_retry
from tests.support.concurrency import in_threads
from tests.support.corti import (
    corti_create,
    corti_holds,
    create_attempts,
    fault,
    set_faults,
)
from tests.support.records import (
    Outcome,
    calls_of,
    lost_answer,
    settle_at,
    stranded,
    submit,
)
from tests.support.tasks import queued, run_tasks

pytestmark = pytest.mark.django_db

CREATE, LOOKUP = CortiCall.Kind.CREATE, CortiCall.Kind.LOOKUP
R = CortiCall.Result
WORKER = CortiCall.Trigger.WORKER


@pytest.fixture
def short_timeout(settings):
    settings.CORTI_TIMEOUT = 0.5
    clear_clients()


def lookups(record: Interaction) -> list[tuple[str, str]]:
    return [c[:2] for c in calls_of(record) if c[0] == LOOKUP]


# --- the lost answer ----------------------------------------------------------


@pytest.mark.slow  # Corti creates 1.5 s late: ~2 s
def test_slow_then_created_is_unknown_at_first_then_adopted(
    corti, clinician, short_timeout, settings
):
    """Defect 2: Corti creates it after the dashboard gave up and searched."""
    settings.INTAKE_SETTLE_SECONDS = 120
    set_faults(corti, fault("slow-created", delay=1.5, count=1))

    record = submit(clinician).record

    # The search right after the timeout found nothing: that proves nothing.
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == ErrorCode.TIMEOUT
    assert corti_holds(corti) == []
    assert [c[:2] for c in calls_of(record)] == [
        (CREATE, R.UNKNOWN),
        (LOOKUP, R.NOT_FOUND),
    ]
    assert record.next_check_at is not None
    assert len(queued("settle_interaction", record)) == 1
    # Corti finishes its work a moment later.
    time.sleep(1.3)
    assert len(corti_holds(corti)) == 1

    # Even a search long after the window: it is found, never failed.
    assert settle_at(record, 200)
    record.refresh_from_db()
    [created] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert str(record.interaction_id) == created["id"]
    assert create_attempts(corti.state()) == 1


def test_not_found_before_the_window_stays_unknown_and_is_checked_again(
    corti, clinician, settings
):
    settings.INTAKE_SETTLE_SECONDS = 120
    set_faults(corti, fault("504", count=1))

    record = submit(clinician).record

    assert record.outcome == Outcome.UNKNOWN
    assert "checking with Corti" in record.failure_explanation
    for seconds in (6, 60, 119):
        assert settle_at(record, seconds)
        record.refresh_from_db()
        assert record.outcome == Outcome.UNKNOWN, seconds
        assert record.next_check_at > record.answer_lost_at + dt.timedelta(
            seconds=seconds
        )
    assert record.checks_made == 4
    assert corti_holds(corti) == []


def test_not_found_after_the_window_is_failed_and_safe_to_send_again(
    corti, clinician, settings
):
    settings.INTAKE_SETTLE_SECONDS = 120
    set_faults(corti, fault("504", count=1))
    record = submit(clinician).record

    assert settle_at(record, 120)

    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.retryable
    # The first reason is kept: the 504 whose answer was lost.
    assert (record.error_code, record.error_status) == (ErrorCode.SERVER_ERROR, 504)
    assert "could no longer be in progress" in record.failure_explanation
    assert corti_holds(corti) == []


def test_found_at_any_time_is_adopted(corti, clinician, settings):
    settings.INTAKE_SETTLE_SECONDS = 120
    record = lost_answer(clinician)
    corti_create(corti, record.request_body)

    assert settle_at(record, 3 * 86_400)

    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED


def test_created_then_lost_is_adopted_by_the_first_search(corti, clinician):
    set_faults(corti, fault("created-504", count=1))

    record = submit(clinician).record

    assert record.outcome == Outcome.CREATED
    assert len(corti_holds(corti)) == 1
    assert queued("settle_interaction", record) == []


@pytest.mark.slow  # searches answered 503 wait out the retries' backoff
def test_unsearchable_stays_unknown_then_is_flagged_a_day_on(
    corti, clinician, settings
):
    settings.INTAKE_SETTLE_SECONDS = 120
    record = lost_answer(clinician)
    set_faults(corti, fault("503", endpoint="list"))

    assert settle_at(record, 200)
    record.refresh_from_db()
    assert (record.outcome, record.needs_attention) == (Outcome.UNKNOWN, False)
    assert settle_at(record, 86_400 + 1)
    record.refresh_from_db()
    assert (record.outcome, record.needs_attention) == (Outcome.UNKNOWN, True)
    [event] = InteractionEvent.objects.filter(interaction=record)
    assert event.kind == InteractionEvent.Kind.FLAGGED

    # Corti is back: the hourly check still settles it.
    set_faults(corti)
    assert settle_at(record, 86_400 + 3600 + 2)
    record.refresh_from_db()
    assert (record.outcome, record.needs_attention) == (Outcome.FAILED, False)


def test_settle_before_its_check_is_due_does_nothing(corti, clinician):
    record = lost_answer(clinician)
    Interaction.objects.filter(pk=record.pk).update(
        next_check_at=timezone.now() + dt.timedelta(minutes=5)
    )
    record.refresh_from_db()

    assert not reconciliation.interaction_settle(record=record, trigger=WORKER)

    assert lookups(record) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # a search answered 0.5 s late
def test_two_settles_racing_for_one_record_search_once(corti, clinician, settings):
    settings.INTAKE_SETTLE_SECONDS = 0
    record = lost_answer(clinician)
    set_faults(corti, fault("slow", endpoint="list", delay=0.5, count=1))

    searched = in_threads(
        2,
        lambda i: reconciliation.interaction_settle(
            record=Interaction.objects.get(pk=record.pk), trigger=WORKER
        ),
    )

    assert sorted(searched) == [False, True]
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert lookups(record) == [(LOOKUP, R.NOT_FOUND)]


def test_neither_retry_nor_resend_while_unknown(corti, clinician):
    record = lost_answer(clinician)

    record, result = interaction_retry(record=record, user=clinician)
    again = submit(clinician, record.submission_key)

    assert result == RetryResult.CHECKING
    assert again.replayed
    assert create_attempts(corti.state()) == 0
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN


def test_failed_record_that_may_exist_is_looked_up_before_a_resend(
    corti, clinician, settings
):
    settings.INTAKE_SETTLE_SECONDS = 0
    record = lost_answer(clinician)
    assert settle_at(record, 1)
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    # Corti created it after all, much later than anyone could expect.
    corti_create(corti, record.request_body)

    record, result = interaction_retry(record=record, user=clinician)

    assert result == RetryResult.FOUND
    assert record.outcome == Outcome.CREATED
    assert len(corti_holds(corti)) == 1


# --- tasks --------------------------------------------------------------------


@pytest.mark.slow  # sleeps out a 0.5 s settle window
def test_lost_answer_settles_through_the_queued_tasks(corti, clinician, settings):
    settings.INTAKE_SETTLE_SECONDS = 0.5
    set_faults(corti, fault("504", count=1))
    record = submit(clinician).record
    assert record.outcome == Outcome.UNKNOWN
    [task] = queued("settle_interaction", record)
    assert task.run_after >= timezone.now()

    time.sleep(0.6)
    run_tasks(due_only=False)

    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert [c[:3] for c in calls_of(record)][-1] == (LOOKUP, R.NOT_FOUND, WORKER)
    assert queued("settle_interaction", record) == []


def test_sweep_finds_a_stranded_record_and_queues_its_search(corti, clinician):
    record = stranded(clinician)
    corti_create(corti, record.request_body)

    result = tasks.sweep.call()

    assert result["interrupted"] == 1
    record.refresh_from_db()
    assert (record.outcome, record.error_code) == (
        Outcome.UNKNOWN,
        ErrorCode.INTERRUPTED,
    )
    run_tasks()
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED


def test_sweep_queues_a_search_a_dead_worker_left_overdue(corti, clinician):
    record = lost_answer(clinician)
    Interaction.objects.filter(pk=record.pk).update(
        next_check_at=timezone.now() - dt.timedelta(minutes=5)
    )

    tasks.sweep.call()

    assert len(queued("settle_interaction", record)) == 1


def test_sweep_leaves_records_whose_search_is_not_overdue(corti, clinician):
    record = lost_answer(clinician)
    Interaction.objects.filter(pk=record.pk).update(
        next_check_at=timezone.now() + dt.timedelta(minutes=5)
    )

    assert tasks.sweep.call()["queued"] == 0


def test_sweep_keeps_one_next_sweep_queued(db):
    assert tasks.sweep_schedule()
    assert not tasks.sweep_schedule()
    tasks.sweep.call()
    assert len(queued("sweep")) == 1


def test_sweep_deletes_expired_sessions(db):
    store = SessionStore()
    store["draft"] = {"patient_name": "Ada"}
    store.set_expiry(-10)
    store.create()
    live = SessionStore()
    live.create()

    assert tasks.sweep.call()["expired_sessions"] == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [
        live.session_key
    ]


def test_sweep_forgets_finished_tasks_after_a_week(corti, clinician):
    from django_tasks_db.models import DBTaskResult

    record = lost_answer(clinician)
    reconciliation.schedule_settle(record)
    reconciliation.schedule_settle(record)
    run_tasks()
    old, recent = DBTaskResult.objects.finished().order_by("enqueued_at")
    DBTaskResult.objects.filter(pk=old.pk).update(
        finished_at=timezone.now() - tasks.FINISHED_TASKS_KEPT - dt.timedelta(1)
    )

    assert tasks.sweep.call()["finished_tasks_pruned"] == 1
    assert list(DBTaskResult.objects.finished()) == [recent]


def test_settle_task_of_a_record_gone_or_settled_does_nothing(corti, clinician):
    record = lost_answer(clinician)
    corti_create(corti, record.request_body)
    tasks.settle_interaction.call(str(record.pk), force=True)
    assert tasks.settle_interaction.call(str(record.pk)) == "not due"
    assert tasks.settle_interaction.call("00000000-0000-0000-0000-000000000000") == (
        "missing"
    )
    assert lookups(record) == [(LOOKUP, R.FOUND)]


def test_outcome_policy_lives_in_one_module():
    assert outcomes.settle_window() == dt.timedelta(seconds=120)


def test_a_sweep_that_fails_still_queues_the_next(db, monkeypatch):
    from django.db import OperationalError

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(reconciliation, "interactions_sweep", locked)

    with pytest.raises(OperationalError):
        tasks.sweep.call()

    assert len(queued("sweep")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_queues_the_sweep_again_when_the_chain_broke():
    """A worker killed mid-sweep leaves none queued; another worker restarts it."""
    import threading

    from intake.management.commands.db_worker import keep_the_sweep_queued

    assert queued("sweep") == []
    stop = threading.Event()
    watchdog = threading.Thread(target=keep_the_sweep_queued, args=(stop, 0.05))
    watchdog.start()
    try:
        deadline = time.monotonic() + 5
        while not queued("sweep") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        watchdog.join(timeout=5)
    assert len(queued("sweep")) == 1
