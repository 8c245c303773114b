"""A correction or resend never sends the wrong details, and never drops any.

Regression tests for the defects an adversarial review of the reused-form
and settling work found: a resend taken over while it searched Corti, the
settle window counted from before the request left, a second tab's details
shown as the result of another's correction, and a refused body resent after
an aborted correction.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connections

from intake.corti import clear_clients
from intake.enums import ErrorCode
from intake.models import CortiCall, Interaction, InteractionEvent
from intake.services import outcomes, reconciliation
from intake.services.interactions import Refusal, RetryResult, interaction_retry
from tests.support.corti import corti_holds, create_attempts, fault, set_faults
from tests.support.records import Outcome, settle_at, submit

pytestmark = pytest.mark.django_db

CORRECTED = {"encounter_identifier": "ENC-R2", "patient_identifier": "PAT-OTHER"}


@pytest.fixture
def failed_lost(corti, clinician, settings):
    settings.INTAKE_SETTLE_SECONDS = 120
    set_faults(corti, fault("504", count=1))
    record = submit(clinician, encounter_identifier="ENC-R1").record
    assert record.outcome == Outcome.UNKNOWN
    assert settle_at(record, 121)
    record.refresh_from_db()
    assert (record.outcome, record.may_exist_in_corti) == (Outcome.FAILED, True)
    return record


def test_a_resend_taken_over_while_it_searched_sends_nothing_and_drops_nothing(
    corti, clinician, failed_lost, monkeypatch
):
    """The sweep takes the record over while the resend searches Corti."""
    real_lookup = reconciliation.lookup

    def slow_lookup(record, **kwargs):
        result = real_lookup(record, **kwargs)
        # As if the search had outlasted the grace and the sweep ran.
        Interaction.objects.filter(pk=record.pk).update(
            last_attempt_at=record.last_attempt_at - outcomes.pending_grace()
        )
        assert outcomes.mark_interrupted(
            Interaction.objects.get(pk=record.pk), now=None
        )
        return result

    monkeypatch.setattr(reconciliation, "lookup", slow_lookup)

    submission = submit(clinician, failed_lost.submission_key, **CORRECTED)

    assert submission.refused == Refusal.OTHER_DETAILS
    record = submission.record
    record.refresh_from_db()
    # Neither the old details nor the correction were sent.
    assert create_attempts(corti.state()) == 1
    assert record.encounter_identifier == "ENC-R1"
    assert record.outcome == Outcome.UNKNOWN
    [event] = InteractionEvent.objects.filter(interaction=record)
    assert event.detail["encounter_identifier"] == "ENC-R2"


def test_a_resend_renews_its_hold_just_before_the_create(corti, clinician, failed_lost):
    before = failed_lost.last_attempt_at

    record, result = interaction_retry(record=failed_lost, user=clinician)

    assert result == RetryResult.SENT
    create = record.calls.filter(kind=CortiCall.Kind.CREATE).last()
    # Renewed after the search, right before the create began.
    assert before < record.last_attempt_at <= create.started_at


@pytest.mark.slow  # a 1 s sign-in, a 1.2 s create: ~2 s
def test_the_settle_window_counts_from_when_the_answer_was_lost(
    corti, clinician, settings
):
    """A slow sign-in delays the create; the window must not start before it."""
    settings.CORTI_TIMEOUT = 0.5
    clear_clients()
    set_faults(
        corti,
        fault("slow", endpoint="token", delay=1.0, count=1),
        fault("slow-created", delay=1.2, count=1),
    )

    record = submit(clinician).record

    create = record.calls.get(kind=CortiCall.Kind.CREATE)
    assert record.outcome == Outcome.UNKNOWN
    assert record.answer_lost_at >= create.finished_at
    # At least the first sign-in try (timed out) and the create's own timeout.
    assert record.answer_lost_at - create.started_at >= dt.timedelta(seconds=1.0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # a 1 s search: ~1.5 s
def test_a_second_tab_is_never_shown_another_tabs_correction_as_its_result(
    corti, clinician, settings
):
    settings.INTAKE_SETTLE_SECONDS = 0
    set_faults(corti, fault("504", count=1))
    record = submit(clinician, encounter_identifier="ENC-T1").record
    # With no window, the search right after the 504 proved it absent.
    assert (record.outcome, record.may_exist_in_corti) == (Outcome.FAILED, True)
    # Tab A's correction searches Corti slowly first.
    set_faults(corti, fault("slow", endpoint="list", delay=1.0, count=1))
    results: dict[str, object] = {}

    def tab_a() -> None:
        try:
            results["a"] = submit(
                clinician, record.submission_key, encounter_identifier="ENC-T2"
            )
        finally:
            connections.close_all()

    thread = threading.Thread(target=tab_a)
    thread.start()
    time.sleep(0.4)
    # Tab B posts the original details while A holds the record.
    results["b"] = submit(
        clinician, record.submission_key, encounter_identifier="ENC-T1"
    )
    thread.join(timeout=30)

    a, b = results["a"], results["b"]
    assert a.refused is None and a.record.outcome == Outcome.CREATED
    assert b.refused == Refusal.OTHER_DETAILS
    record.refresh_from_db()
    assert record.encounter_identifier == "ENC-T2"
    assert [i["encounter"]["identifier"] for i in corti_holds(corti)] == ["ENC-T2"]
    [event] = InteractionEvent.objects.filter(interaction=record)
    assert event.detail["encounter_identifier"] == "ENC-T1"


@pytest.mark.slow  # searches answered 503 wait out the retries' backoff
def test_a_refused_body_is_not_resent_after_an_aborted_correction(
    corti, clinician, failed_lost
):
    # A correction Corti refuses (400).
    set_faults(corti, fault("400", count=1))
    refused = submit(clinician, failed_lost.submission_key, encounter_identifier="I2")
    record = refused.record
    assert record.error_code == ErrorCode.INVALID
    # The lookup before the next correction fails: nothing sent, the body
    # stays the refused one, the error is now "unsearchable".
    Interaction.objects.filter(pk=record.pk).update(may_exist_in_corti=True)
    set_faults(corti, fault("503", endpoint="list"))
    aborted = submit(clinician, record.submission_key, encounter_identifier="I3")
    record = aborted.record
    assert (record.error_code, record.encounter_identifier) == (
        ErrorCode.UNSEARCHABLE,
        "I2",
    )
    set_faults(corti)
    attempts = create_attempts(corti.state())

    record, result = interaction_retry(record=record, user=clinician)
    again = submit(clinician, record.submission_key, encounter_identifier="I2")

    assert result == RetryResult.INVALID
    assert again.refused == Refusal.INVALID_UNCHANGED
    assert create_attempts(corti.state()) == attempts
