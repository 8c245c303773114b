"""Writes: the call log, one row per call made to Corti for a submission.

It records calls only; a record's outcome changes in `outcomes`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from intake.corti.errors import CortiError
from intake.models import CortiCall, Interaction

from .outcomes import error_fields


def call_start(
    record: Interaction,
    *,
    kind: str,
    trigger: str,
    user: User | None,
    request_body: dict[str, Any] | None = None,
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
    found: dict[str, Any] | None = None,
) -> None:
    """Store what the call's answer was."""
    call.result = result
    call.finished_at = timezone.now()
    call.corti_id = corti_id
    changed = ["result", "finished_at", "corti_id"]
    if found is not None:
        call.request_body = found
        changed.append("request_body")
    if error is not None:
        for name, value in error_fields(error).items():
            setattr(call, name, value)
            changed.append(name)
    # Only what the answer changed (the request body can be large).
    call.save(update_fields=changed)
