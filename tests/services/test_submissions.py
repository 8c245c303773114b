"""Submitting and retrying, against the real simulator: nothing lost, nothing twice.

Each test checks the record's final state, the calls logged for it, and how
many interactions the simulator holds: never two for one submission.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connections
from django.utils import timezone

from intake.corti import clear_clients
from intake.enums import ErrorCode
from intake.models import UNKNOWN_EXPLANATION, CortiCall, Interaction, InteractionEvent
from intake.services.interactions import Refusal, RetryResult, interaction_retry
from tests.support.concurrency import in_threads, wait_until
from tests.support.corti import (
    corti_create,
    corti_holds,
    create_attempts,
    fault,
    pointing_at_a_closed_port,
    set_faults,
)
from tests.support.factories import typed_values
from tests.support.records import (
    Outcome,
    assert_typed_values_kept,
    backdate_loss,
    calls_of,
    settle_at,
    submit,
)
from tests.support.tasks import queued, run_tasks

pytestmark = pytest.mark.django_db

CREATE, LOOKUP = CortiCall.Kind.CREATE, CortiCall.Kind.LOOKUP
R = CortiCall.Result
SUBMIT, RETRY = CortiCall.Trigger.SUBMIT, CortiCall.Trigger.RETRY
WORKER = CortiCall.Trigger.WORKER


def request_id_of(value: str) -> uuid.UUID:
    """The simulator names every answer with a fresh UUID."""
    return uuid.UUID(value)


def only_call(record: Interaction, kind: str = CREATE) -> CortiCall:
    [call] = CortiCall.objects.filter(interaction=record, kind=kind)
    return call


def assert_failed(
    record: Interaction, *, code: str, status: int | None, has_request_id: bool
) -> None:
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == code
    assert record.error_status == status
    if has_request_id:
        request_id_of(record.error_request_id)
    else:
        assert record.error_request_id == ""
    assert record.interaction_id is None
    assert record.websocket_url == ""
    assert record.completed_at is not None


def read_timeout(settings, seconds: float = 0.5) -> None:
    settings.CORTI_TIMEOUT = seconds
    clear_clients()


# --- the first POST ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # a create answered 1 s late: ~1 s
def test_first_post_is_saved_pending_before_corti_is_called(corti, clinician):
    set_faults(corti, fault("slow", delay=1.0, count=1))
    key = uuid.uuid4()
    done: list = []

    def post() -> None:
        try:
            done.append(submit(clinician, key))
        finally:
            connections.close_all()

    thread = threading.Thread(target=post)
    thread.start()
    try:
        call = wait_until(
            lambda: CortiCall.objects.filter(interaction__submission_key=key).first()
        )
        in_flight = Interaction.objects.get(submission_key=key)
        assert thread.is_alive(), "read while Corti had not answered"
        assert in_flight.outcome == Outcome.PENDING
        assert in_flight.last_attempt_at is not None
        assert in_flight.interaction_id is None
        assert in_flight.completed_at is None
        assert in_flight.may_exist_in_corti is False
        for name, value in typed_values().items():
            assert getattr(in_flight, name) == value, name
        assert (call.kind, call.result, call.trigger) == (CREATE, R.STARTED, SUBMIT)
        assert call.user == clinician
        assert call.request_body == in_flight.request_body
    finally:
        thread.join(timeout=10)

    [submission] = done
    assert submission.replayed is False
    record = Interaction.objects.get(submission_key=key)
    assert submission.record.pk == record.pk
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.request_body == {
        k: held[k] for k in ("assignedUserId", "encounter", "patient")
    }
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    assert only_call(record).corti_id == record.interaction_id
    assert create_attempts(corti.state()) == 1


def test_first_post_ends_created_with_one_create_call(corti, clinician):
    submission = submit(clinician)

    record = submission.record
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert submission.replayed is False
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.websocket_url == held["websocketUrl"]
    assert record.may_exist_in_corti is False
    assert record.last_attempt_at is not None
    assert record.error_code == ""
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    call = only_call(record)
    assert call.request_body == record.request_body
    assert call.finished_at is not None
    state = corti.state()
    assert create_attempts(state) == 1
    assert state["counts"].get("list_requests", 0) == 0


# --- the same form posted again ------------------------------------------------


def test_same_key_after_success_is_replayed_without_a_new_call(corti, clinician):
    key = uuid.uuid4()
    first = submit(clinician, key)

    again = submit(clinician, key)
    other = submit(clinician, key, encounter_title="Changed on a second tab")

    assert first.replayed is False
    assert (again.replayed, again.refused) == (True, None)
    # Other details on a used form are never sent, nor merged into its record.
    assert (other.replayed, other.refused) == (True, Refusal.OTHER_DETAILS)
    assert again.record.pk == other.record.pk == first.record.pk
    record = Interaction.objects.get()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == first.record.interaction_id
    assert record.encounter_title == "Knee pain"
    assert record.request_body["encounter"]["title"] == "Knee pain"
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    [event] = InteractionEvent.objects.filter(interaction=record)
    assert event.kind == InteractionEvent.Kind.REUSED_FORM_REFUSED
    assert event.user == clinician
    state = corti.state()
    assert state["counts"]["create_requests"] == 1
    assert state["counts"].get("list_requests", 0) == 0
    assert len(corti_holds(corti)) == 1


@pytest.mark.parametrize(
    ("failure", "code"),
    [("400", "invalid"), ("403", "forbidden"), ("unreachable", "unreachable")],
)
def test_same_key_after_a_definite_failure_is_a_new_attempt_on_the_same_record(
    corti, clinician, settings, failure, code
):
    key = uuid.uuid4()
    if failure == "unreachable":
        with pointing_at_a_closed_port(settings):
            first = submit(clinician, key)
    else:
        set_faults(corti, fault(failure, count=1))
        first = submit(clinician, key)
    failed = first.record
    failed.refresh_from_db()
    assert failed.outcome == Outcome.FAILED
    assert failed.error_code == code
    assert failed.may_exist_in_corti is False

    again = submit(
        clinician, key, encounter_title="Left knee pain", patient_pronouns="they/them"
    )

    assert (again.replayed, again.refused) == (False, None)
    assert again.record.pk == failed.pk
    assert Interaction.objects.count() == 1
    record = Interaction.objects.get()
    assert record.outcome == Outcome.CREATED
    assert record.encounter_title == "Left knee pain"
    assert record.patient_pronouns == "they/them"
    assert record.request_body["encounter"]["title"] == "Left knee pain"
    assert record.request_body["patient"]["pronouns"] == "they/them"
    assert record.error_code == ""
    assert record.error_status is None
    assert record.error_request_id == ""
    assert record.error_problem is None
    [held] = corti_holds(corti)
    assert record.interaction_id == uuid.UUID(held["id"])
    assert held["encounter"] == record.request_body["encounter"]
    assert held["patient"] == record.request_body["patient"]
    assert calls_of(record) == [
        (CREATE, R.FAILED, SUBMIT, clinician.pk),
        (CREATE, R.CREATED, SUBMIT, clinician.pk),
    ]
    first_call, second_call = record.calls.order_by("started_at", "id")
    assert first_call.request_body["encounter"]["title"] == "Knee pain"
    assert second_call.request_body == record.request_body
    assert create_attempts(corti.state()) == (1 if failure == "unreachable" else 2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("details", ["same", "other"])
@pytest.mark.parametrize("first_in_flight", [True, False], ids=["in-flight", "racing"])
@pytest.mark.slow  # threads racing, a slow Corti: ~5 s
def test_same_key_posted_many_times_at_once_creates_one_interaction(
    corti, clinician, first_in_flight, details
):
    set_faults(corti, fault("slow", delay=1.0, count=1))
    key = uuid.uuid4()
    posts = 8

    def post(index: int):
        if details == "same":
            # Clicks, reloads and a second tab: the same form, the same details.
            return submit(clinician, key)
        return submit(clinician, key, encounter_title=f"Post {index}")

    first: list = []
    thread = None
    if first_in_flight:

        def post_first() -> None:
            try:
                first.append(submit(clinician, key))
            finally:
                connections.close_all()

        thread = threading.Thread(target=post_first)
        thread.start()
        assert wait_until(
            lambda: CortiCall.objects.filter(interaction__submission_key=key).exists()
        )
    try:
        others = in_threads(posts, post)
    finally:
        if thread is not None:
            thread.join(timeout=20)
    submissions = first + others

    assert Interaction.objects.count() == 1
    record = Interaction.objects.get(submission_key=key)
    assert record.outcome == Outcome.CREATED
    assert {s.record.pk for s in submissions} == {record.pk}
    assert [s.replayed for s in submissions].count(False) == 1
    if first_in_flight:
        assert first[0].replayed is False
        assert record.encounter_title == "Knee pain"
    refused = [s for s in submissions if s.refused is not None]
    if details == "same":
        # Each later POST waited for the first one's answer and shows it.
        assert refused == []
        assert all(s.record.outcome == Outcome.CREATED for s in submissions)
        assert {s.record.interaction_id for s in submissions} == {record.interaction_id}
        assert record.encounter_title == "Knee pain"
    else:
        # Every POST whose details differ from the one sent is refused at once,
        # and the attempt is kept on the record.
        assert len(refused) == len(submissions) - 1
        assert {s.refused for s in refused} == {Refusal.OTHER_DETAILS}
        assert record.events.count() == len(refused)
        if not first_in_flight:
            assert record.encounter_title.startswith("Post ")
    [held] = corti_holds(corti)
    assert record.interaction_id == uuid.UUID(held["id"])
    assert held["encounter"] == record.request_body["encounter"]
    state = corti.state()
    assert create_attempts(state) == 1
    assert state["counts"].get("list_requests", 0) == 0
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]


@pytest.mark.django_db(transaction=True)
def test_different_forms_posted_at_once_each_create_one_interaction(
    corti, clinician, settings
):
    count = 16

    results = in_threads(
        count, lambda i: submit(clinician, encounter_identifier=f"ENC-{i}")
    )

    assert [s.replayed for s in results] == [False] * count
    assert Interaction.objects.count() == count
    # The simulator's listen backlog (socketserver's default of 5) makes it
    # reset a few connections of a burst before reading them. The dashboard
    # must then treat the create as lost: unknown until a search made after
    # the settle window finds nothing; then a retry may send it.
    reset = list(Interaction.objects.exclude(outcome=Outcome.CREATED))
    for record in reset:
        assert record.outcome == Outcome.UNKNOWN
        assert record.error_code == ErrorCode.DISCONNECTED
        assert record.may_exist_in_corti is True
        assert calls_of(record) == [
            (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
            (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
        ]
        assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)
        record.refresh_from_db()
        assert record.outcome == Outcome.FAILED
        _, result = interaction_retry(record=record, user=clinician)
        assert result == RetryResult.SENT
    records = list(Interaction.objects.all())
    assert {r.outcome for r in records} == {Outcome.CREATED}
    held = corti_holds(corti)
    assert len(held) == count
    assert {uuid.UUID(h["id"]) for h in held} == {r.interaction_id for r in records}
    by_id = {uuid.UUID(h["id"]): h for h in held}
    for record in records:
        assert (
            by_id[record.interaction_id]["encounter"]["identifier"]
            == record.encounter_identifier
        )
        if record not in reset:
            assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    # Every create that reached Corti created one interaction.
    assert create_attempts(corti.state()) == count


@pytest.mark.slow  # searches answered 503 wait out the retries' backoff
def test_same_key_on_an_unknown_record_neither_sends_nor_searches(corti, clinician):
    key = uuid.uuid4()
    set_faults(corti, fault("created-504", count=1), fault("503", "list"))
    first = submit(clinician, key)
    assert first.record.outcome == Outcome.UNKNOWN
    # Corti could be searched now; a POST still leaves that to the worker.
    set_faults(corti)
    before = corti.state()["counts"]

    same = submit(clinician, key)
    other = submit(clinician, key, encounter_title="Typed again")

    assert (same.replayed, same.refused) == (True, None)
    assert (other.replayed, other.refused) == (True, Refusal.OTHER_DETAILS)
    record = Interaction.objects.get()
    assert same.record.pk == other.record.pk == record.pk
    assert record.outcome == Outcome.UNKNOWN
    assert record.interaction_id is None
    assert record.encounter_title == "Knee pain"
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.INCONCLUSIVE, SUBMIT, clinician.pk),
    ]
    assert corti.state()["counts"] == before
    assert create_attempts(corti.state()) == 1
    assert len(corti_holds(corti)) == 1


@pytest.mark.slow  # searches answered 503 wait out the retries' backoff
def test_unknown_record_is_settled_by_its_background_check_not_by_a_post(
    corti, clinician
):
    key = uuid.uuid4()
    set_faults(corti, fault("created-504", count=1), fault("503", "list"))
    record = submit(clinician, key).record
    assert record.outcome == Outcome.UNKNOWN
    [task] = queued("settle_interaction", record)
    assert task.run_after == record.next_check_at
    set_faults(corti)

    # The next check comes due (a few seconds on) and the worker runs it.
    Interaction.objects.filter(pk=record.pk).update(next_check_at=timezone.now())
    run_tasks(due_only=False)

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.INCONCLUSIVE, SUBMIT, clinician.pk),
        (LOOKUP, R.FOUND, WORKER, None),
    ]
    assert queued("settle_interaction", record) == []
    # The form sent again now shows what Corti created.
    again = submit(clinician, key)
    assert (again.replayed, again.record.outcome) == (True, Outcome.CREATED)
    assert create_attempts(corti.state()) == 1


# --- each answer Corti can give ------------------------------------------------


def test_validation_error_is_failed_invalid_with_the_problem_kept(corti, clinician):
    problems = [{"encounter.identifier": "is already in use"}]
    set_faults(corti, fault("400", count=1, validation_errors=problems))

    record = submit(clinician).record

    assert_failed(record, code="invalid", status=400, has_request_id=True)
    assert record.error_problem["validationErrors"] == problems
    assert record.error_problem["requestid"] == record.error_request_id
    assert record.retryable is False
    assert record.may_exist_in_corti is False
    assert_typed_values_kept(record)
    assert calls_of(record) == [(CREATE, R.FAILED, SUBMIT, clinician.pk)]
    call = only_call(record)
    assert call.error_request_id == record.error_request_id
    assert call.error_problem == record.error_problem
    assert (call.error_code, call.error_status) == ("invalid", 400)
    assert corti_holds(corti) == []
    assert create_attempts(corti.state()) == 1


def test_401_once_fetches_a_new_token_and_creates(corti, clinician):
    set_faults(corti, fault("401", count=1))

    record = submit(clinician).record

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    state = corti.state()
    assert create_attempts(state) == 2
    assert state["counts"]["tokens_issued"] == 2


def test_401_twice_is_failed_unauthorized(corti, clinician):
    set_faults(corti, fault("401", count=2))

    record = submit(clinician).record

    assert_failed(record, code="unauthorized", status=401, has_request_id=True)
    assert record.retryable is True
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [(CREATE, R.FAILED, SUBMIT, clinician.pk)]
    assert only_call(record).error_request_id == record.error_request_id
    assert corti_holds(corti) == []
    assert create_attempts(corti.state()) == 2


def test_403_is_failed_forbidden(corti, clinician):
    set_faults(corti, fault("403", count=1))

    record = submit(clinician).record

    assert_failed(record, code="forbidden", status=403, has_request_id=True)
    assert record.error_problem["status"] == 403
    assert record.retryable is True
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [(CREATE, R.FAILED, SUBMIT, clinician.pk)]
    assert only_call(record).error_request_id == record.error_request_id
    assert corti_holds(corti) == []
    assert create_attempts(corti.state()) == 1


@pytest.mark.slow  # waits out a Retry-After: ~0.3 s
def test_429_with_a_short_retry_after_is_waited_out(corti, clinician):
    set_faults(corti, fault("429", count=1, retry_after=0.3))
    started = time.monotonic()

    record = submit(clinician).record

    assert time.monotonic() - started >= 0.3
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    assert create_attempts(corti.state()) == 2


def test_429_asking_for_longer_than_the_bound_is_failed_rate_limited(corti, clinician):
    set_faults(corti, fault("429", count=1, retry_after=5))

    record = submit(clinician).record

    assert_failed(record, code="rate_limited", status=429, has_request_id=True)
    assert record.retryable is True
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [(CREATE, R.FAILED, SUBMIT, clinician.pk)]
    assert only_call(record).error_request_id == record.error_request_id
    assert corti_holds(corti) == []
    assert create_attempts(corti.state()) == 1


@pytest.mark.slow  # a closed port, retried within the retry budget: ~0.5 s
def test_connection_refused_is_failed_unreachable_without_a_create(
    corti, clinician, settings
):
    with pointing_at_a_closed_port(settings):
        record = submit(clinician).record

    assert_failed(record, code="unreachable", status=None, has_request_id=False)
    assert record.retryable is True
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [(CREATE, R.FAILED, SUBMIT, clinician.pk)]
    state = corti.state()
    assert create_attempts(state) == 0
    assert state["counts"].get("token_requests", 0) == 0
    assert corti_holds(corti) == []


@pytest.mark.slow  # a sign-in answered 503 waits out the retries' backoff
def test_token_endpoint_down_is_failed_unreachable(corti, clinician):
    set_faults(corti, fault("503", "token"))

    record = submit(clinician).record

    assert_failed(record, code="unreachable", status=None, has_request_id=False)
    assert record.retryable is True
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [(CREATE, R.FAILED, SUBMIT, clinician.pk)]
    state = corti.state()
    assert state["counts"]["fault:token:503"] >= 1
    assert state["counts"].get("tokens_issued", 0) == 0
    assert create_attempts(state) == 0
    assert corti_holds(corti) == []


def test_wrong_client_secret_is_failed_auth(corti, clinician, settings):
    settings.CORTI_CLIENT_SECRET = "not-the-secret"
    clear_clients()

    record = submit(clinician).record

    assert_failed(record, code="auth", status=401, has_request_id=False)
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [(CREATE, R.FAILED, SUBMIT, clinician.pk)]
    assert only_call(record).error_code == "auth"
    state = corti.state()
    assert create_attempts(state) == 0
    assert corti_holds(corti) == []


LOST_NOT_CREATED = [
    ("500", "server_error", 500),
    ("502", "server_error", 502),
    ("503", "server_error", 503),
    ("504", "server_error", 504),
    ("drop", "disconnected", None),
    ("hang", "timeout", None),
]


@pytest.mark.parametrize(("kind", "code", "status"), LOST_NOT_CREATED)
def test_lost_answer_of_a_create_that_did_not_happen_is_unknown_until_proven(
    corti, clinician, settings, kind, code, status
):
    if kind == "hang":
        read_timeout(settings)
        set_faults(corti, fault("hang", count=1, delay=1.0))
    else:
        set_faults(corti, fault(kind, count=1))
    window = settings.INTAKE_SETTLE_SECONDS

    record = submit(clinician).record

    # The search right after the loss found nothing: that proves nothing yet.
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert (record.error_code, record.error_status) == (code, status)
    assert bool(record.error_request_id) is (status is not None)
    assert record.may_exist_in_corti is True
    assert record.retryable is False
    assert str(UNKNOWN_EXPLANATION) in record.failure_explanation
    assert_typed_values_kept(record)
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
    ]
    call = only_call(record)
    assert call.error_request_id == record.error_request_id
    assert call.error_code == code
    assert len(queued("settle_interaction", record)) == 1
    # Nor does one made just before the settle window ends.
    assert settle_at(record, window - 1)
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN

    # One made once the window has passed does: failed, safe to send again.
    assert settle_at(record, window)

    assert_failed(record, code=code, status=status, has_request_id=status is not None)
    assert record.may_exist_in_corti is True
    assert record.retryable is True
    assert "checked Corti" in record.failure_explanation
    assert_typed_values_kept(record)
    assert calls_of(record)[2:] == [
        (LOOKUP, R.NOT_FOUND, WORKER, None),
        (LOOKUP, R.NOT_FOUND, WORKER, None),
    ]
    state = corti.state()
    assert create_attempts(state) == 1
    assert state["counts"]["list_requests"] == 3
    assert corti_holds(corti) == []


@pytest.mark.parametrize(
    "kind", ["created-500", "created-502", "created-503", "created-504", "created-drop"]
)
def test_lost_answer_of_a_create_that_happened_is_adopted(corti, clinician, kind):
    set_faults(corti, fault(kind, count=1))

    record = submit(clinician).record

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.websocket_url == held["websocketUrl"]
    assert record.may_exist_in_corti is False
    assert record.error_code == ""
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.FOUND, SUBMIT, clinician.pk),
    ]
    create_call = only_call(record)
    if kind == "created-drop":
        assert create_call.error_code == "disconnected"
        assert create_call.error_request_id == ""
    else:
        assert create_call.error_code == "server_error"
        assert create_call.error_status == int(kind.removeprefix("created-"))
        request_id_of(create_call.error_request_id)
    assert only_call(record, LOOKUP).corti_id == record.interaction_id
    assert queued("settle_interaction", record) == []
    assert create_attempts(corti.state()) == 1


@pytest.mark.slow  # a create answered 1 s late: ~1 s
def test_slow_create_past_the_read_timeout_is_never_duplicated_by_a_retry(
    corti, clinician, settings
):
    read_timeout(settings)
    set_faults(corti, fault("slow", count=1, delay=1.0))

    record = submit(clinician).record

    record.refresh_from_db()
    # Never failed: the settle window is far from over.
    assert record.outcome in (Outcome.CREATED, Outcome.UNKNOWN)
    assert calls_of(record)[0] == (CREATE, R.UNKNOWN, SUBMIT, clinician.pk)
    assert only_call(record).error_code == ErrorCode.TIMEOUT
    # Let the slow create land (and its late answer go unheard) first.
    assert wait_until(lambda: corti_holds(corti))
    time.sleep(0.6)

    record, result = interaction_retry(record=record, user=clinician)

    # Retry of an unknown record only asks the worker to search.
    if result == RetryResult.CHECKING:
        run_tasks()
    else:
        assert result == RetryResult.NOTHING_TO_DO
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert [c for c in calls_of(record) if c[0] == CREATE] == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk)
    ]
    assert create_attempts(corti.state()) == 1


@pytest.mark.slow  # a create that hangs past the read timeout: ~0.5 s
def test_create_landing_after_the_settle_window_is_adopted_by_a_retry(
    corti, clinician, settings
):
    read_timeout(settings)
    set_faults(corti, fault("hang", count=1, delay=1.0))
    record = submit(clinician).record
    assert record.outcome == Outcome.UNKNOWN
    assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.may_exist_in_corti is True
    # Corti acts on the lost create only now, later than anyone could expect.
    landed = corti_create(corti, record.request_body)
    before = create_attempts(corti.state())

    record, result = interaction_retry(record=record, user=clinician)

    assert result == RetryResult.FOUND
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == landed
    assert record.may_exist_in_corti is False
    assert len(corti_holds(corti)) == 1
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, WORKER, None),
        (LOOKUP, R.FOUND, RETRY, clinician.pk),
    ]
    assert create_attempts(corti.state()) == before


@pytest.mark.slow  # searches answered 503 wait out the retries' backoff
def test_lookup_failing_too_leaves_the_record_unknown_until_a_check_finds_it(
    corti, clinician
):
    set_faults(corti, fault("created-504", count=1), fault("503", "list", count=1000))

    record = submit(clinician).record

    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == ErrorCode.SERVER_ERROR
    assert record.error_status == 504
    request_id_of(record.error_request_id)
    assert record.may_exist_in_corti is True
    assert record.interaction_id is None
    assert record.retryable is False
    assert str(UNKNOWN_EXPLANATION) in record.failure_explanation
    assert "checking with Corti" in record.failure_explanation
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.INCONCLUSIVE, SUBMIT, clinician.pk),
    ]
    lookup_call = only_call(record, LOOKUP)
    assert (lookup_call.error_code, lookup_call.error_status) == ("server_error", 503)
    assert len(corti_holds(corti)) == 1

    set_faults(corti)
    record, result = interaction_retry(record=record, user=clinician)

    # Pressing the button sends nothing: it queues a search ("Check Corti now").
    assert result == RetryResult.CHECKING
    assert record.outcome == Outcome.UNKNOWN
    assert len(calls_of(record)) == 2
    run_tasks()
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.may_exist_in_corti is False
    assert calls_of(record)[2:] == [(LOOKUP, R.FOUND, WORKER, None)]
    assert create_attempts(corti.state()) == 1


# --- interaction_retry ---------------------------------------------------------


def test_retry_of_a_failed_record_creates_it(corti, clinician, administrator):
    set_faults(corti, fault("403", count=1))
    record = submit(clinician).record

    record, result = interaction_retry(record=record, user=administrator)

    assert result == RetryResult.SENT
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.error_code == ""
    assert record.error_request_id == ""
    assert record.submitted_by == clinician
    assert calls_of(record) == [
        (CREATE, R.FAILED, SUBMIT, clinician.pk),
        (CREATE, R.CREATED, RETRY, administrator.pk),
    ]
    assert create_attempts(corti.state()) == 2


def test_retry_after_a_lost_answer_looks_corti_up_before_creating(
    corti, clinician, settings
):
    set_faults(corti, fault("504", count=1))
    record = submit(clinician).record
    assert record.outcome == Outcome.UNKNOWN
    assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.may_exist_in_corti is True

    record, result = interaction_retry(record=record, user=clinician)

    assert result == RetryResult.SENT
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, WORKER, None),
        (LOOKUP, R.NOT_FOUND, RETRY, clinician.pk),
        (CREATE, R.CREATED, RETRY, clinician.pk),
    ]
    assert create_attempts(corti.state()) == 2


def test_retry_of_a_created_record_makes_no_call(corti, clinician):
    record = submit(clinician).record
    before = corti.state()["counts"]

    again, result = interaction_retry(record=record, user=clinician)

    assert result == RetryResult.NOTHING_TO_DO
    assert again.outcome == Outcome.CREATED
    assert again.interaction_id == record.interaction_id
    assert corti.state()["counts"] == before
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    assert len(corti_holds(corti)) == 1


@pytest.mark.slow  # searches answered 503 wait out the retries' backoff
def test_retry_of_an_unknown_record_only_looks_it_up(corti, clinician, settings):
    set_faults(corti, fault("504", count=1), fault("503", "list", count=1000))
    record = submit(clinician).record
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    set_faults(corti)
    # Pressed once the settle window is over.
    backdate_loss(record, settings.INTAKE_SETTLE_SECONDS + 1)
    before = corti.state()["counts"]

    record, result = interaction_retry(record=record, user=clinician)

    assert result == RetryResult.CHECKING
    assert corti.state()["counts"] == before
    run_tasks()
    # Corti does not hold it: now (and only now) it is safe to send again.
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.retryable is True
    assert record.error_code == ErrorCode.SERVER_ERROR
    assert calls_of(record)[2:] == [(LOOKUP, R.NOT_FOUND, WORKER, None)]
    assert create_attempts(corti.state()) == 1
    assert corti_holds(corti) == []

    record, result = interaction_retry(record=record, user=clinician)

    assert result == RetryResult.SENT
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert create_attempts(corti.state()) == 2


def test_retry_of_an_unknown_record_within_the_window_leaves_it_unknown(
    corti, clinician
):
    set_faults(corti, fault("504", count=1))
    record = submit(clinician).record
    assert record.outcome == Outcome.UNKNOWN

    record, result = interaction_retry(record=record, user=clinician)
    run_tasks()

    assert result == RetryResult.CHECKING
    record.refresh_from_db()
    # Not found, but the lost create may still be under way in Corti.
    assert record.outcome == Outcome.UNKNOWN
    assert calls_of(record)[2:] == [(LOOKUP, R.NOT_FOUND, WORKER, None)]
    assert create_attempts(corti.state()) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # a create answered 0.5 s late
def test_concurrent_retries_of_a_failed_record_create_it_once(corti, clinician):
    set_faults(corti, fault("403", count=1))
    record = submit(clinician).record
    set_faults(corti, fault("slow", count=1, delay=0.5))

    # Eight Retry clicks, each of which read the record while it was failed.
    copies = [Interaction.objects.get(pk=record.pk) for _ in range(8)]
    assert {c.outcome for c in copies} == {Outcome.FAILED}

    results = in_threads(
        8, lambda i: interaction_retry(record=copies[i], user=clinician)
    )

    # One click won the right to send; the others saw it being sent, or sent.
    assert sorted(result for _, result in results) == sorted(
        [RetryResult.SENT] + [RetryResult.NOTHING_TO_DO] * 7
    )
    assert {r.outcome for r, _ in results} <= {Outcome.PENDING, Outcome.CREATED}
    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert calls_of(record) == [
        (CREATE, R.FAILED, SUBMIT, clinician.pk),
        (CREATE, R.CREATED, RETRY, clinician.pk),
    ]
    assert create_attempts(corti.state()) == 2


# --- a bug ---------------------------------------------------------------------


@pytest.mark.slow  # a create that hangs past the read timeout: ~0.5 s
def test_resubmitting_edited_values_after_a_lost_answer_creates_no_second_one(
    corti, clinician, settings
):
    key = uuid.uuid4()
    read_timeout(settings)
    set_faults(corti, fault("hang", count=1, delay=1.0))
    record = submit(clinician, key).record
    assert record.outcome == Outcome.UNKNOWN
    # The lost create lands after the search that found nothing.
    landed = corti_create(corti, record.request_body)
    before = corti.state()["counts"]

    # The clinician reopens the form, corrects the title and sends it again.
    edited = submit(clinician, key, encounter_title="Left knee pain")

    # While unknown, nothing is sent: the edit comes back to a fresh form.
    assert edited.refused == Refusal.OTHER_DETAILS
    assert corti.state()["counts"] == before
    held = corti_holds(corti)
    assert len(held) == 1, "two Corti interactions for one form"
    assert uuid.UUID(held[0]["id"]) == landed


def test_correcting_a_failed_record_that_corti_had_created_after_all_sends_nothing(
    corti, clinician, settings
):
    key = uuid.uuid4()
    set_faults(corti, fault("504", count=1))
    record = submit(clinician, key).record
    assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    # Corti creates the earlier version later than anyone could expect.
    landed = corti_create(corti, record.request_body)
    before = create_attempts(corti.state())

    edited = submit(clinician, key, encounter_title="Left knee pain")

    # Searched before sending: the earlier version is what the record shows,
    # and the correction goes back to a fresh form.
    assert (edited.replayed, edited.refused) == (True, Refusal.CORTI_HAD_IT)
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == landed
    assert record.encounter_title == "Knee pain"
    [event] = InteractionEvent.objects.filter(interaction=record)
    assert event.detail["reason"] == Refusal.CORTI_HAD_IT
    assert calls_of(record)[-1] == (LOOKUP, R.FOUND, SUBMIT, clinician.pk)
    assert create_attempts(corti.state()) == before
    assert len(corti_holds(corti)) == 1
