"""Writes: the audit trail of calls to Corti, and a record's state changes.

Every change of outcome is a conditional UPDATE, so two requests (or a
request and the reconcile command) can never overwrite each other's answer.
"""

from __future__ import annotations

import logging
import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from intake.corti.errors import CortiAPIError, CortiError
from intake.models import CortiCall, Interaction

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome

#: The error fields of a record that has no error (or no longer has one).
NO_ERROR = {
    "error_code": "",
    "error_status": None,
    "error_message": "",
    "error_request_id": "",
    "error_problem": None,
}

#: Failures only an administrator can fix (credentials, tenant, permissions).
ADMINISTRATOR_PROBLEMS = frozenset({"auth", "unauthorized", "forbidden"})


def call_start(
    record: Interaction,
    *,
    kind: str,
    trigger: str,
    user: AbstractBaseUser | None,
    request_body: dict | None = None,
) -> CortiCall:
    """Log a call to Corti before it is made."""
    return CortiCall.objects.create(
        interaction=record,
        kind=kind,
        trigger=trigger,
        user=user if user is not None and user.is_authenticated else None,
        started_at=timezone.now(),
        request_body=request_body,
    )


def call_finish(
    call: CortiCall,
    *,
    result: str,
    error: CortiError | None = None,
    corti_id: uuid.UUID | None = None,
    found: dict | None = None,
) -> None:
    """Store what the call's answer was."""
    call.result = result
    call.finished_at = timezone.now()
    call.corti_id = corti_id
    if found is not None:
        call.request_body = found
    if error is not None:
        call.error_code = error.code
        call.error_status = getattr(error, "status", None)
        call.error_message = error.message
        call.request_id = getattr(error, "request_id", "") or ""
        call.problem = (
            error.problem.as_dict() if isinstance(error, CortiAPIError) else None
        )
    call.save()


def record_created(
    record: Interaction, *, interaction_id: uuid.UUID, websocket_url: str
) -> bool:
    """Mark the record created; False if that interaction is another record's."""
    now = timezone.now()
    try:
        with transaction.atomic():
            updated = (
                Interaction.objects.filter(pk=record.pk)
                .exclude(outcome=Outcome.CREATED)
                .update(
                    outcome=Outcome.CREATED,
                    interaction_id=interaction_id,
                    websocket_url=websocket_url,
                    completed_at=now,
                    updated_at=now,
                    may_exist_in_corti=False,
                    **NO_ERROR,
                )
            )
    except IntegrityError:
        logger.error(
            "Interaction record %s: Corti interaction %s already belongs to "
            "another record",
            record.pk,
            interaction_id,
        )
        record.refresh_from_db()
        return False
    record.refresh_from_db()
    if not updated and record.interaction_id != interaction_id:
        # Both answers were created in Corti; the first one recorded stays.
        logger.error(
            "Interaction record %s was already created as %s; Corti also "
            "created %s for it",
            record.pk,
            record.interaction_id,
            interaction_id,
        )
    else:
        logger.info("Interaction record %s created in Corti", record.pk)
    return True


def record_failed(
    record: Interaction, error: CortiError | None, *, code: str = "", message: str = ""
) -> None:
    """Corti did not create it: mark the (pending) record failed and retryable."""
    _record_settled(record, Outcome.FAILED, error, code=code, message=message)


def record_unknown(
    record: Interaction, error: CortiError | None, *, code: str = "", message: str = ""
) -> None:
    """Corti may or may not have created it: mark the (pending) record unknown."""
    _record_settled(record, Outcome.UNKNOWN, error, code=code, message=message)


def _record_settled(
    record: Interaction,
    outcome: str,
    error: CortiError | None,
    *,
    code: str,
    message: str,
) -> None:
    now = timezone.now()
    fields: dict = {"outcome": outcome, "completed_at": now, "updated_at": now}
    if error is not None:
        fields.update(
            error_code=error.code,
            error_status=getattr(error, "status", None),
            error_message=error.message,
            error_request_id=getattr(error, "request_id", "") or "",
            error_problem=error.problem.as_dict()
            if isinstance(error, CortiAPIError)
            else None,
        )
    elif code and not record.error_code:
        # Keep the first reason given (say, the 504 whose answer was lost).
        fields.update(error_code=code, error_message=message)
    Interaction.objects.filter(pk=record.pk, outcome=Outcome.PENDING).update(**fields)
    record.refresh_from_db()
    # Configuration problems are the administrator's: log them as errors.
    level = (
        logging.ERROR
        if record.error_code in ADMINISTRATOR_PROBLEMS
        else logging.WARNING
    )
    logger.log(
        level,
        "Interaction record %s is %s: %s (status=%s, requestid=%s)",
        record.pk,
        record.outcome,
        record.error_code or "-",
        record.error_status or "-",
        record.error_request_id or "-",
    )
