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

from intake.corti import clear_clients
from intake.models import UNKNOWN_EXPLANATION, CortiCall, Interaction
from intake.services.interactions import interaction_retry
from tests.services.support import (
    Outcome,
    calls_of,
    corti_create,
    corti_holds,
    create_attempts,
    fault,
    in_threads,
    pointing_at_a_closed_port,
    set_faults,
    submit,
    typed_values,
    wait_until,
)
from tests.services.test_interactions import assert_typed_values_kept

pytestmark = pytest.mark.django_db

CREATE, LOOKUP = CortiCall.Kind.CREATE, CortiCall.Kind.LOOKUP
R = CortiCall.Result
SUBMIT, RETRY = CortiCall.Trigger.SUBMIT, CortiCall.Trigger.RETRY


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

    again = submit(clinician, key, encounter_title="Changed on a second tab")

    assert first.replayed is False
    assert again.replayed is True
    assert again.record.pk == first.record.pk
    record = Interaction.objects.get()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == first.record.interaction_id
    # The replay shows what the first POST achieved; its values change nothing.
    assert record.encounter_title == "Knee pain"
    assert record.request_body["encounter"]["title"] == "Knee pain"
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
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

    assert again.replayed is False
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
@pytest.mark.parametrize("first_in_flight", [True, False], ids=["in-flight", "racing"])
def test_same_key_posted_many_times_at_once_creates_one_interaction(
    corti, clinician, first_in_flight
):
    set_faults(corti, fault("slow", delay=1.0, count=1))
    key = uuid.uuid4()
    posts = 8

    def post(index: int):
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
    assert all(s.record.outcome == Outcome.CREATED for s in submissions)
    assert {s.record.interaction_id for s in submissions} == {record.interaction_id}
    assert [s.replayed for s in submissions].count(False) == 1
    if first_in_flight:
        assert first[0].replayed is False
        assert record.encounter_title == "Knee pain"
    [held] = corti_holds(corti)
    assert record.interaction_id == uuid.UUID(held["id"])
    assert held["encounter"] == record.request_body["encounter"]
    state = corti.state()
    assert create_attempts(state) == 1
    assert state["counts"].get("list_requests", 0) == 0
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]


@pytest.mark.django_db(transaction=True)
def test_different_forms_posted_at_once_each_create_one_interaction(corti, clinician):
    count = 16

    results = in_threads(
        count, lambda i: submit(clinician, encounter_identifier=f"ENC-{i}")
    )

    assert [s.replayed for s in results] == [False] * count
    assert Interaction.objects.count() == count
    # The simulator's listen backlog (socketserver's default of 5) makes it
    # reset a few connections of a burst before reading them. The dashboard
    # must then treat the create as lost, find nothing, and allow a retry.
    reset = list(Interaction.objects.exclude(outcome=Outcome.CREATED))
    for record in reset:
        assert record.outcome == Outcome.FAILED
        assert record.error_code == "disconnected"
        assert record.may_exist_in_corti is True
        assert calls_of(record) == [
            (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
            (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
        ]
        interaction_retry(record=record, user=clinician)
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


def test_same_key_on_an_unknown_record_looks_it_up_instead_of_sending(corti, clinician):
    key = uuid.uuid4()
    set_faults(corti, fault("created-504", count=1), fault("503", "list"))
    first = submit(clinician, key)
    first.record.refresh_from_db()
    assert first.record.outcome == Outcome.UNKNOWN
    set_faults(corti)

    again = submit(clinician, key, encounter_title="Typed again")

    assert again.replayed is True
    record = Interaction.objects.get()
    assert again.record.pk == record.pk
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.may_exist_in_corti is False
    assert record.encounter_title == "Knee pain"
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.INCONCLUSIVE, SUBMIT, clinician.pk),
        (LOOKUP, R.FOUND, SUBMIT, clinician.pk),
    ]
    assert create_attempts(corti.state()) == 1


def test_same_key_on_an_unknown_record_sends_nothing_while_corti_is_unsearchable(
    corti, clinician
):
    key = uuid.uuid4()
    set_faults(corti, fault("created-504", count=1), fault("503", "list"))
    submit(clinician, key)

    again = submit(clinician, key, encounter_title="Typed again")

    assert again.replayed is True
    record = Interaction.objects.get()
    assert again.record.pk == record.pk
    assert record.outcome == Outcome.UNKNOWN
    assert record.interaction_id is None
    assert record.encounter_title == "Knee pain"
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.INCONCLUSIVE, SUBMIT, clinician.pk),
        (LOOKUP, R.INCONCLUSIVE, SUBMIT, clinician.pk),
    ]
    assert create_attempts(corti.state()) == 1
    assert len(corti_holds(corti)) == 1


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
    assert call.request_id == record.error_request_id
    assert call.problem == record.error_problem
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
    assert only_call(record).request_id == record.error_request_id
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
    assert only_call(record).request_id == record.error_request_id
    assert corti_holds(corti) == []
    assert create_attempts(corti.state()) == 1


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
    assert only_call(record).request_id == record.error_request_id
    assert corti_holds(corti) == []
    assert create_attempts(corti.state()) == 1


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
def test_lost_answer_of_a_create_that_did_not_happen_is_failed_and_retryable(
    corti, clinician, settings, kind, code, status
):
    if kind == "hang":
        read_timeout(settings)
        set_faults(corti, fault("hang", count=1, delay=1.0))
    else:
        set_faults(corti, fault(kind, count=1))

    record = submit(clinician).record

    assert_failed(record, code=code, status=status, has_request_id=status is not None)
    assert record.may_exist_in_corti is True
    assert record.retryable is True
    assert "checked Corti" in record.failure_explanation
    assert_typed_values_kept(record)
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
    ]
    call = only_call(record)
    assert call.request_id == record.error_request_id
    assert call.error_code == code
    state = corti.state()
    assert create_attempts(state) == 1
    assert state["counts"]["list_requests"] == 1
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
        assert create_call.request_id == ""
    else:
        assert create_call.error_code == "server_error"
        assert create_call.error_status == int(kind.removeprefix("created-"))
        request_id_of(create_call.request_id)
    assert only_call(record, LOOKUP).corti_id == record.interaction_id
    assert create_attempts(corti.state()) == 1


def test_slow_create_past_the_read_timeout_is_never_duplicated_by_a_retry(
    corti, clinician, settings
):
    read_timeout(settings)
    set_faults(corti, fault("slow", count=1, delay=1.0))

    record = submit(clinician).record

    record.refresh_from_db()
    assert record.outcome in (Outcome.CREATED, Outcome.FAILED)
    assert calls_of(record)[0] == (CREATE, R.UNKNOWN, SUBMIT, clinician.pk)
    assert only_call(record).error_code == "timeout"
    # Let the slow create land (and its late answer go unheard) first.
    assert wait_until(lambda: corti_holds(corti))
    time.sleep(0.6)

    record = interaction_retry(record=record, user=clinician)

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert [c for c in calls_of(record) if c[0] == CREATE] == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk)
    ]
    assert create_attempts(corti.state()) == 1


def test_create_landing_after_the_lookup_is_adopted_by_a_retry(
    corti, clinician, settings
):
    read_timeout(settings)
    set_faults(corti, fault("hang", count=1, delay=1.0))
    record = submit(clinician).record
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.may_exist_in_corti is True
    # Corti acts on the lost create only now, after the lookup found nothing.
    landed = corti_create(corti, record.request_body)

    record = interaction_retry(record=record, user=clinician)

    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == landed
    assert record.may_exist_in_corti is False
    assert len(corti_holds(corti)) == 1
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
        (LOOKUP, R.FOUND, RETRY, clinician.pk),
    ]


def test_lookup_failing_too_leaves_the_record_unknown_until_a_retry_finds_it(
    corti, clinician
):
    set_faults(corti, fault("created-504", count=1), fault("503", "list", count=1000))

    record = submit(clinician).record

    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == "server_error"
    assert record.error_status == 504
    request_id_of(record.error_request_id)
    assert record.may_exist_in_corti is True
    assert record.interaction_id is None
    assert record.retryable is False
    assert record.failure_explanation == str(UNKNOWN_EXPLANATION)
    assert "could not yet confirm" in record.failure_explanation
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.INCONCLUSIVE, SUBMIT, clinician.pk),
    ]
    lookup_call = only_call(record, LOOKUP)
    assert (lookup_call.error_code, lookup_call.error_status) == ("server_error", 503)
    assert len(corti_holds(corti)) == 1

    set_faults(corti)
    record = interaction_retry(record=record, user=clinician)

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.may_exist_in_corti is False
    assert calls_of(record)[2:] == [(LOOKUP, R.FOUND, RETRY, clinician.pk)]
    assert create_attempts(corti.state()) == 1


# --- interaction_retry ---------------------------------------------------------


def test_retry_of_a_failed_record_creates_it(corti, clinician, administrator):
    set_faults(corti, fault("403", count=1))
    record = submit(clinician).record

    record = interaction_retry(record=record, user=administrator)

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


def test_retry_after_a_lost_answer_looks_corti_up_before_creating(corti, clinician):
    set_faults(corti, fault("504", count=1))
    record = submit(clinician).record
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.may_exist_in_corti is True

    record = interaction_retry(record=record, user=clinician)

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert record.may_exist_in_corti is False
    assert calls_of(record) == [
        (CREATE, R.UNKNOWN, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, SUBMIT, clinician.pk),
        (LOOKUP, R.NOT_FOUND, RETRY, clinician.pk),
        (CREATE, R.CREATED, RETRY, clinician.pk),
    ]
    assert create_attempts(corti.state()) == 2


def test_retry_of_a_created_record_makes_no_call(corti, clinician):
    record = submit(clinician).record
    before = corti.state()["counts"]

    again = interaction_retry(record=record, user=clinician)

    assert again.outcome == Outcome.CREATED
    assert again.interaction_id == record.interaction_id
    assert corti.state()["counts"] == before
    assert calls_of(record) == [(CREATE, R.CREATED, SUBMIT, clinician.pk)]
    assert len(corti_holds(corti)) == 1


def test_retry_of_an_unknown_record_only_looks_it_up(corti, clinician):
    set_faults(corti, fault("504", count=1), fault("503", "list", count=1000))
    record = submit(clinician).record
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    set_faults(corti)

    record = interaction_retry(record=record, user=clinician)

    # Corti does not hold it: now (and only now) it is safe to send again.
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.retryable is True
    assert record.error_code == "server_error"
    assert calls_of(record)[2:] == [(LOOKUP, R.NOT_FOUND, RETRY, clinician.pk)]
    assert create_attempts(corti.state()) == 1
    assert corti_holds(corti) == []

    record = interaction_retry(record=record, user=clinician)

    record.refresh_from_db()
    [held] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(held["id"])
    assert create_attempts(corti.state()) == 2


@pytest.mark.django_db(transaction=True)
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

    assert {r.outcome for r in results} <= {Outcome.PENDING, Outcome.CREATED}
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


def test_resubmitting_edited_values_after_a_lost_answer_creates_no_second_one(
    corti, clinician, settings
):
    key = uuid.uuid4()
    read_timeout(settings)
    set_faults(corti, fault("hang", count=1, delay=1.0))
    record = submit(clinician, key).record
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.may_exist_in_corti is True
    # The lost create lands after the lookup that found nothing.
    landed = corti_create(corti, record.request_body)

    # The clinician reopens the form, corrects the title and sends it again.
    submit(clinician, key, encounter_title="Left knee pain")

    held = corti_holds(corti)
    assert len(held) == 1, "two Corti interactions for one form"
    assert uuid.UUID(held[0]["id"]) == landed
