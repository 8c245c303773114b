"""Writes: submitting an interaction to Corti, and sending a failed one again.

Nothing lost, nothing duplicated, and never one patient's interaction shown
for another's form:

- The record is saved (pending) before Corti is called, in one short
  transaction with the log of that call, and every call to Corti runs
  outside any transaction, so a failure anywhere leaves a record with
  everything that was typed. The call's answer and the record's outcome are
  then committed together.
- Every rendered form carries a submission key, and every POST of that form
  reaches the same record. A POST of the same details again (double click,
  reload, second tab) never calls Corti while another is under way or after
  one succeeded; it shows that result.
- A POST of a used key with OTHER details is never merged into the record:
  nothing is sent, and the details come back in a fresh form (new key) with
  the reason. Only the submitter (or an Administrator) may correct and send
  again a submission that failed, and only on its own record.
- A create whose answer was lost is never sent again blindly: Corti is
  searched for it first (`reconciliation`), and every outcome changes in
  `outcomes`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from intake.corti import get_client
from intake.corti.errors import CortiError
from intake.corti.types import Encounter, InteractionCreate, Patient
from intake.enums import EncounterStatus, EncounterType, ErrorCode, Gender
from intake.fields import InteractionDetails
from intake.models import CortiCall, Interaction, InteractionEvent
from intake.selectors import interaction_duplicate_of

from . import calls, outcomes, reconciliation

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome

#: A second POST of a form whose first POST is still talking to Corti waits
#: this long for that answer, then shows the submission as pending.
DUPLICATE_WAIT_SECONDS = 15.0
#: Two interactions for one patient whose encounters start this close look
#: like one encounter created twice: the form asks before creating the second.
LIKELY_DUPLICATE_WINDOW = dt.timedelta(hours=1)
DUPLICATE_POLL_SECONDS = 0.1


class Refusal(StrEnum):
    """Why a POST of a used form was not sent."""

    #: The form was already used for other details.
    OTHER_DETAILS = "other_details"
    #: It failed for another user; only they or an Administrator may resend.
    NOT_YOURS = "not_yours"
    #: A correction found that Corti had created the earlier version.
    CORTI_HAD_IT = "corti_had_it"
    #: Corti refused these very details before; sending them again cannot help.
    INVALID_UNCHANGED = "invalid_unchanged"


class RetryResult(StrEnum):
    """What pressing Retry (or "Check Corti again") did."""

    SENT = "sent"
    #: A search before sending again found the earlier attempt in Corti.
    FOUND = "found"
    CHECKING = "checking"
    NOT_ALLOWED = "not_allowed"
    INVALID = "invalid"
    NOTHING_TO_DO = "nothing_to_do"


@dataclass(frozen=True)
class Submission:
    """What became of one POST of the intake form."""

    record: Interaction
    #: This form had been posted before: no new call was made for this POST,
    #: and the record shows what the earlier POST achieved.
    replayed: bool
    #: Set when this POST's details were not sent. Except for
    #: INVALID_UNCHANGED, they belong in a fresh form with a new key.
    refused: Refusal | None = None
    #: A failed submission of this form was sent again by this POST, with
    #: other details (`corrected`) or the same.
    resent: bool = False
    corrected: bool = False


def interaction_likely_duplicate(
    *, submission_key: uuid.UUID, details: InteractionDetails
) -> Interaction | None:
    """A created interaction this new submission probably repeats, if any.

    Never for a form already sent (its POST reaches its own record).
    """
    return interaction_duplicate_of(
        encounter_identifier=details.encounter_identifier,
        patient_identifier=details.patient_identifier,
        started_at=details.encounter_started_at,
        window=LIKELY_DUPLICATE_WINDOW,
        unless_key=submission_key,
    )


def interaction_may_resend(*, user: User, record: Interaction) -> bool:
    """Whether `user` may correct or send again this (failed) submission."""
    return record.submitted_by_id == user.pk or user.has_perm(
        "intake.resend_any_interaction"
    )


def interaction_submit(
    *,
    submission_key: uuid.UUID,
    submitted_by: User,
    details: InteractionDetails,
) -> Submission:
    """Log one POST of the intake form and create its interaction in Corti.

    The first POST of a form saves the record and calls Corti. A later POST of
    the same form (double click, reload, back button, second tab) never calls
    Corti while another is under way or after one succeeded; it shows that
    result. Only when the earlier attempt definitely failed does it try again,
    with what this POST carries.
    """
    values = _record_values(details)
    try:
        # The record and the log of the call about to be made: one commit.
        with transaction.atomic():
            record = Interaction.objects.create(
                submission_key=submission_key,
                submitted_by=submitted_by,
                last_attempt_at=timezone.now(),
                **values,
            )
            call = _call_start(
                record, user=submitted_by, trigger=CortiCall.Trigger.SUBMIT
            )
    except IntegrityError:
        existing = Interaction.objects.filter(submission_key=submission_key).first()
        if existing is None:
            raise
        return _resubmit(existing, user=submitted_by, values=values)
    _send(record, user=submitted_by, trigger=CortiCall.Trigger.SUBMIT, call=call)
    return Submission(record=record, replayed=False)


def interaction_retry(
    *, record: Interaction, user: User
) -> tuple[Interaction, RetryResult]:
    """Send a failed submission again with what it holds; check an unknown one.

    A record whose outcome is unknown, or left pending by a request that
    died, is searched for in Corti by the background worker, never sent
    again. Only the submitter or an Administrator may resend, and never
    unchanged details Corti refused.
    """
    record.refresh_from_db()
    if record.outcome == Outcome.UNKNOWN:
        reconciliation.interaction_check_now(record=record)
        return record, RetryResult.CHECKING
    if outcomes.is_stale_pending(record):
        reconciliation.interaction_nudge(record=record)
        return record, RetryResult.CHECKING
    if record.outcome != Outcome.FAILED:
        return record, RetryResult.NOTHING_TO_DO
    if not interaction_may_resend(user=user, record=record):
        return record, RetryResult.NOT_ALLOWED
    if _refused_as_invalid(record):
        return record, RetryResult.INVALID
    if not outcomes.claim_resend(record):
        return record, RetryResult.NOTHING_TO_DO
    sent = _resend_claimed(record, user=user, trigger=CortiCall.Trigger.RETRY)
    return record, RetryResult.SENT if sent else RetryResult.FOUND


def interaction_request(details: InteractionDetails) -> InteractionCreate:
    """The create call that details (a record's, a form's) stand for."""
    return InteractionCreate(
        assigned_user_id=details.assigned_user_id,
        encounter=Encounter(
            identifier=details.encounter_identifier,
            status=EncounterStatus(details.encounter_status),
            type=EncounterType(details.encounter_type),
            started_at=details.encounter_started_at,
            ended_at=details.encounter_ended_at,
            title=details.encounter_title,
        ),
        patient=Patient(
            identifier=details.patient_identifier,
            name=details.patient_name,
            gender=Gender(details.patient_gender) if details.patient_gender else None,
            birth_date=details.patient_birth_date,
            pronouns=details.patient_pronouns,
        )
        if details.has_patient
        else None,
    )


# --- steps ------------------------------------------------------------------


def _record_values(details: InteractionDetails) -> dict[str, Any]:
    """The record's fields for these details, with what it derives from them."""
    return {
        **details.as_dict(),
        "time_zone": settings.TIME_ZONE,
        "request_body": interaction_request(details).to_json(),
    }


def _resubmit(record: Interaction, *, user: User, values: dict[str, Any]) -> Submission:
    """A POST of a form whose key already has a record."""
    if record.outcome == Outcome.PENDING and not outcomes.is_stale_pending(record):
        if values["request_body"] != record.request_body:
            return _refuse(record, user=user, values=values, why=Refusal.OTHER_DETAILS)
        # Another POST of this form is talking to Corti: report its answer.
        _wait_while_pending(record)
        return _replay(record, user=user, values=values)
    if record.outcome != Outcome.FAILED:
        if outcomes.is_stale_pending(record):
            reconciliation.interaction_nudge(record=record)
        return _replay(record, user=user, values=values)
    if not interaction_may_resend(user=user, record=record):
        return _refuse(record, user=user, values=values, why=Refusal.NOT_YOURS)
    same = values["request_body"] == record.request_body
    if same and _refused_as_invalid(record):
        return Submission(
            record=record, replayed=True, refused=Refusal.INVALID_UNCHANGED
        )
    if not outcomes.claim_resend(record):
        # Another request is sending it again right now: its answer, if it
        # sends what this POST holds; else this POST's details go back.
        _wait_while_pending(record)
        return _replay(record, user=user, values=values)
    held_since = record.last_attempt_at
    if record.may_exist_in_corti and not _absent_before_resend(
        record, user=user, trigger=CortiCall.Trigger.SUBMIT
    ):
        if record.outcome == Outcome.CREATED and not same:
            # The earlier version was in Corti after all: that is the truth
            # this record shows; the new details go to a fresh form.
            return _refuse(record, user=user, values=values, why=Refusal.CORTI_HAD_IT)
        return Submission(record=record, replayed=record.outcome == Outcome.CREATED)
    if not same and not outcomes.correct_pending(record, values, held_since):
        # This request no longer holds the record (it took too long and was
        # taken over): never send or drop the correction; it goes back.
        return _refuse(record, user=user, values=values, why=Refusal.OTHER_DETAILS)
    _send(record, user=user, trigger=CortiCall.Trigger.SUBMIT, held_since=held_since)
    return Submission(record=record, replayed=False, resent=True, corrected=not same)


def _replay(record: Interaction, *, user: User, values: dict[str, Any]) -> Submission:
    """This POST made no call: show the record, if it holds these details.

    Compared with what the record holds now (another tab may have corrected
    it meanwhile); other details are never shown as this POST's result.
    """
    record.refresh_from_db()
    if values["request_body"] != record.request_body:
        return _refuse(record, user=user, values=values, why=Refusal.OTHER_DETAILS)
    return Submission(record=record, replayed=True)


def _refused_as_invalid(record: Interaction) -> bool:
    """Corti answered 400 to exactly the details this record holds."""
    refused = record.calls.filter(
        kind=CortiCall.Kind.CREATE, error_code=ErrorCode.INVALID
    ).values_list("request_body", flat=True)
    return record.error_code == ErrorCode.INVALID or any(
        body == record.request_body for body in refused
    )


def _refuse(
    record: Interaction,
    *,
    user: User,
    values: dict[str, Any],
    why: Refusal,
) -> Submission:
    """Keep a trace, on the record, of details that were not sent with its form."""
    InteractionEvent.objects.create(
        interaction=record,
        at=timezone.now(),
        kind=InteractionEvent.Kind.REUSED_FORM_REFUSED,
        user=user,
        detail={
            "reason": str(why),
            "encounter_identifier": values["encounter_identifier"],
            "patient_identifier": values["patient_identifier"],
        },
    )
    logger.info(
        "Interaction record %s: a POST of its form by user %s was not sent (%s)",
        record.pk,
        user.pk,
        why,
    )
    return Submission(record=record, replayed=True, refused=why)


def _resend_claimed(record: Interaction, *, user: User | None, trigger: str) -> bool:
    """Send a record this request claimed (failed -> pending) again.

    False when nothing was sent: a search first found the earlier attempt in
    Corti, or could not be made.
    """
    held_since = record.last_attempt_at
    if record.may_exist_in_corti and not _absent_before_resend(
        record, user=user, trigger=trigger
    ):
        return False
    return _send(record, user=user, trigger=trigger, held_since=held_since)


def _absent_before_resend(
    record: Interaction, *, user: User | None, trigger: str
) -> bool:
    """Search Corti before resending a record an earlier answer of which was lost.

    True when Corti does not hold it, so it may be sent. Otherwise the record
    is settled: adopted when found, failed (nothing sent) when Corti could not
    be searched.
    """
    result = reconciliation.lookup(record, user=user, trigger=trigger)
    if result.match is not None and outcomes.mark_created(
        record,
        interaction_id=result.match.id,
        websocket_url=result.match.websocket_url,
    ):
        return False
    if not result.conclusive or result.match is not None:
        outcomes.mark_resend_aborted(record, result.error, now=None)
        return False
    return True


def _wait_while_pending(record: Interaction) -> None:
    deadline = time.monotonic() + DUPLICATE_WAIT_SECONDS
    while record.outcome == Outcome.PENDING and time.monotonic() < deadline:
        time.sleep(DUPLICATE_POLL_SECONDS)
        record.refresh_from_db()


def _send(
    record: Interaction,
    *,
    user: User | None,
    trigger: str,
    held_since: dt.datetime | None = None,
    call: CortiCall | None = None,
) -> bool:
    """Call Corti for a pending record this request holds; settle it on the answer.

    A resend first renews its hold (`held_since`, when it claimed the record):
    if the record was taken over meanwhile, nothing is sent (False). A first
    submission passes the `call` it logged with its record.
    """
    if held_since is not None and not outcomes.renew_hold(record, held_since):
        logger.warning(
            "Interaction record %s: taken over while a resend was being "
            "prepared; nothing sent",
            record.pk,
        )
        return False
    if call is None:
        call = _call_start(record, user=user, trigger=trigger)
    try:
        created = get_client().create_interaction(interaction_request(record.details))
    except CortiError as exc:
        if not exc.outcome_unknown:
            # The call's log and the record's outcome: one commit.
            with transaction.atomic():
                calls.call_finish(call, result=CortiCall.Result.FAILED, error=exc)
                outcomes.mark_failed(record, exc)
            return True
        logger.warning(
            "Interaction record %s: Corti's answer was lost (%s); looking it up",
            record.pk,
            type(exc).__name__,
        )
        with transaction.atomic():
            calls.call_finish(call, result=CortiCall.Result.UNKNOWN, error=exc)
            # The request left after the call began (a token fetch, waits):
            # the window counts from now, when the answer was found lost.
            lost = outcomes.mark_answer_lost(record, exc, sent_at=timezone.now())
        if not lost:
            return True
        # Search at once (Corti may have created it and failed to say so);
        # finding nothing now proves nothing, so the record stays unknown and
        # the worker searches again (reconciliation.settle).
        searched_at = timezone.now()
        lease = record.checking_until
        assert lease is not None
        result = reconciliation.lookup(record, user=user, trigger=trigger)
        reconciliation.settle(record, result, lease=lease, now=searched_at)
        return True
    with transaction.atomic():
        calls.call_finish(
            call, result=CortiCall.Result.CREATED, corti_id=created.interaction_id
        )
        outcomes.mark_created(
            record,
            interaction_id=created.interaction_id,
            websocket_url=created.websocket_url,
        )
    return True


def _call_start(record: Interaction, *, user: User | None, trigger: str) -> CortiCall:
    """Log the create about to be sent for this record."""
    return calls.call_start(
        record,
        kind=CortiCall.Kind.CREATE,
        trigger=trigger,
        user=user,
        request_body=record.request_body,
    )
