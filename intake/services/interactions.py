"""Writes: submitting an interaction to Corti, retrying it, logging every call.

Nothing lost and nothing duplicated:

- The record is saved (pending) before Corti is called, in its own short
  transaction, and every call to Corti runs outside any transaction, so a
  failure anywhere leaves a record with everything that was typed.
- Every rendered form carries a submission key, and every POST of that form
  reaches the same record. An atomic claim (an UPDATE that only one request
  can win) decides which request may call Corti; the others wait for its
  answer and show it.
- A create whose answer was lost is never sent again blindly: Corti is
  searched for it first (`intake.services.reconciliation`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from intake.corti import get_client
from intake.corti.errors import CortiError
from intake.corti.types import (
    Encounter,
    EncounterStatus,
    EncounterType,
    Gender,
    InteractionCreate,
    Patient,
)
from intake.models import CortiCall, Interaction

from . import calls, reconciliation

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome

#: A second POST of a form whose first POST is still talking to Corti waits
#: this long for that answer, then shows the submission as pending.
DUPLICATE_WAIT_SECONDS = 15.0
DUPLICATE_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Submission:
    """What became of one POST of the intake form."""

    record: Interaction
    #: This form had been posted before: no new call was made for this POST,
    #: and the record shows what the earlier POST achieved.
    replayed: bool
    #: The values of this POST differ from what the record holds and were not
    #: sent, because Corti turned out to hold the earlier version.
    changes_not_sent: bool = False


def interaction_submit(
    *,
    submission_key: uuid.UUID,
    submitted_by: AbstractBaseUser,
    encounter_identifier: str,
    encounter_status: str,
    encounter_type: str,
    encounter_started_at: dt.datetime,
    encounter_ended_at: dt.datetime | None = None,
    encounter_title: str = "",
    assigned_user_id: uuid.UUID | None = None,
    patient_identifier: str = "",
    patient_name: str = "",
    patient_gender: str = "",
    patient_birth_date: dt.date | None = None,
    patient_pronouns: str = "",
) -> Submission:
    """Log one POST of the intake form and create its interaction in Corti.

    The first POST of a form saves the record and calls Corti. A later POST of
    the same form (double click, reload, back button, second tab) never calls
    Corti while another is under way or after one succeeded; it shows that
    result. Only when the earlier attempt definitely failed does it try again,
    with what this POST carries.
    """
    values = _record_values(
        encounter_identifier=encounter_identifier,
        encounter_status=encounter_status,
        encounter_type=encounter_type,
        encounter_started_at=encounter_started_at,
        encounter_ended_at=encounter_ended_at,
        encounter_title=encounter_title,
        assigned_user_id=assigned_user_id,
        patient_identifier=patient_identifier,
        patient_name=patient_name,
        patient_gender=patient_gender,
        patient_birth_date=patient_birth_date,
        patient_pronouns=patient_pronouns,
    )
    try:
        with transaction.atomic():
            record = Interaction.objects.create(
                submission_key=submission_key,
                submitted_by=submitted_by,
                last_attempt_at=timezone.now(),
                **values,
            )
    except IntegrityError:
        record = Interaction.objects.filter(submission_key=submission_key).first()
        if record is None:
            raise
        return _resubmit(record, user=submitted_by, values=values)
    _send(record, user=submitted_by, trigger=CortiCall.Trigger.SUBMIT)
    return Submission(record=record, replayed=False)


def interaction_retry(*, record: Interaction, user: AbstractBaseUser) -> Interaction:
    """Try a failed submission again with what it holds; settle an unknown one.

    A record whose outcome is unknown, or left pending by a worker that died,
    is looked up in Corti instead of being sent again.
    """
    if reconciliation.is_due(record):
        return reconciliation.interaction_reconcile(
            record=record, user=user, trigger=CortiCall.Trigger.RETRY
        )
    if record.outcome == Outcome.FAILED and _claim(record):
        _send(record, user=user, trigger=CortiCall.Trigger.RETRY)
    else:
        record.refresh_from_db()
    return record


def interaction_request(record: Interaction) -> InteractionCreate:
    """The create call a record stands for."""
    return InteractionCreate(
        assigned_user_id=record.assigned_user_id,
        encounter=Encounter(
            identifier=record.encounter_identifier,
            status=EncounterStatus(record.encounter_status),
            type=EncounterType(record.encounter_type),
            started_at=record.encounter_started_at,
            ended_at=record.encounter_ended_at,
            title=record.encounter_title,
        ),
        patient=Patient(
            identifier=record.patient_identifier,
            name=record.patient_name,
            gender=Gender(record.patient_gender) if record.patient_gender else None,
            birth_date=record.patient_birth_date,
            pronouns=record.patient_pronouns,
        )
        if record.patient_identifier
        else None,
    )


# --- steps ------------------------------------------------------------------


def _record_values(**fields: Any) -> dict[str, Any]:
    """The typed fields plus what the record derives from them."""
    record = Interaction(**fields)
    return {
        **fields,
        "time_zone": settings.TIME_ZONE,
        "request_body": interaction_request(record).to_json(),
    }


def _resubmit(
    record: Interaction, *, user: AbstractBaseUser, values: dict[str, Any]
) -> Submission:
    if record.outcome == Outcome.PENDING and not reconciliation.is_due(record):
        # Another POST of this form is talking to Corti: report its answer.
        _wait_while_pending(record)
        return _replayed(record, values)
    if reconciliation.is_due(record):
        reconciliation.interaction_reconcile(
            record=record, user=user, trigger=CortiCall.Trigger.SUBMIT
        )
    if record.outcome != Outcome.FAILED:
        return _replayed(record, values)
    # The earlier attempt definitely failed: this POST is a new attempt.
    if not _claim(record):
        _wait_while_pending(record)
        return _replayed(record, values)
    if record.may_exist_in_corti and values["request_body"] != record.request_body:
        # An earlier answer was lost and the form now says something else: the
        # earlier version may still have reached Corti. Look for it before the
        # record forgets it, or the new version would make a second one.
        lookup = reconciliation.lookup(
            record, user=user, trigger=CortiCall.Trigger.SUBMIT
        )
        if lookup.match is not None or not lookup.conclusive:
            reconciliation.settle(record, lookup, error=None)
            return _replayed(record, values)
    Interaction.objects.filter(pk=record.pk, outcome=Outcome.PENDING).update(**values)
    record.refresh_from_db()
    _send(record, user=user, trigger=CortiCall.Trigger.SUBMIT)
    return Submission(record=record, replayed=False)


def _replayed(record: Interaction, values: dict[str, Any]) -> Submission:
    return Submission(
        record=record,
        replayed=True,
        changes_not_sent=values["request_body"] != record.request_body,
    )


def _claim(record: Interaction) -> bool:
    """Move a failed record to pending; True for the one request that wins."""
    now = timezone.now()
    won = Interaction.objects.filter(pk=record.pk, outcome=Outcome.FAILED).update(
        outcome=Outcome.PENDING,
        last_attempt_at=now,
        updated_at=now,
        completed_at=None,
        **calls.NO_ERROR,
    )
    record.refresh_from_db()
    return bool(won)


def _wait_while_pending(record: Interaction) -> None:
    deadline = time.monotonic() + DUPLICATE_WAIT_SECONDS
    while record.outcome == Outcome.PENDING and time.monotonic() < deadline:
        time.sleep(DUPLICATE_POLL_SECONDS)
        record.refresh_from_db()


def _send(record: Interaction, *, user: AbstractBaseUser | None, trigger: str) -> None:
    """Call Corti for a claimed (pending) record and settle it on the answer."""
    if record.may_exist_in_corti:
        # An earlier answer was lost: Corti may already hold this interaction.
        lookup = reconciliation.lookup(record, user=user, trigger=trigger)
        if lookup.match is not None or not lookup.conclusive:
            reconciliation.settle(record, lookup, error=None)
            return
    call = calls.call_start(
        record,
        kind=CortiCall.Kind.CREATE,
        trigger=trigger,
        user=user,
        request_body=record.request_body,
    )
    try:
        created = get_client().create_interaction(interaction_request(record))
    except CortiError as exc:
        if not exc.outcome_unknown:
            calls.call_finish(call, result=CortiCall.Result.FAILED, error=exc)
            calls.record_failed(record, exc)
            return
        calls.call_finish(call, result=CortiCall.Result.UNKNOWN, error=exc)
        Interaction.objects.filter(pk=record.pk).update(may_exist_in_corti=True)
        record.may_exist_in_corti = True
        logger.warning(
            "Interaction record %s: Corti's answer was lost (%s); looking it up",
            record.pk,
            type(exc).__name__,
        )
        lookup = reconciliation.lookup(record, user=user, trigger=trigger)
        reconciliation.settle(record, lookup, error=exc)
        return
    calls.call_finish(
        call, result=CortiCall.Result.CREATED, corti_id=created.interaction_id
    )
    calls.record_created(
        record,
        interaction_id=created.interaction_id,
        websocket_url=created.websocket_url,
    )
