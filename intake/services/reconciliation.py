"""Writes: settling submissions whose answer from Corti was lost.

Corti documents no idempotency key, so after a read timeout, a dropped
connection or a 5xx the create may or may not have happened. Instead of
sending it again, the dashboard looks for it with `GET /interactions/`
(filtered by patient identifier where there is one, newest first) and
matches on the encounter identifier and every other field that was sent:

- found: the record adopts that interaction (created);
- the listing reached interactions older than the submission, or its end,
  without a match: Corti did not create it (failed, safe to retry);
- the lookup itself failed or ran out of pages: still unknown; nothing is
  sent until a later lookup settles it.

A record left pending by a worker that died is settled the same way, by
`manage.py reconcile_interactions` and when someone opens it.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from intake.corti import get_client
from intake.corti.errors import CortiError
from intake.corti.types import InteractionListed, parse_rfc3339
from intake.models import CortiCall, Interaction
from intake.selectors import due_filter, interactions_due, pending_grace

from . import calls

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome

LOOKUP_PAGE_SIZE = 50
LOOKUP_MAX_PAGES = 10
#: Corti's clock and ours may differ; look this far before the submission.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Lookup:
    """What a search of Corti for one record found."""

    match: InteractionListed | None
    #: True when every interaction that could be this one was seen.
    conclusive: bool
    error: CortiError | None = field(default=None, compare=False)


@dataclass
class ReconcileSummary:
    checked: int = 0
    created: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0

    def add(self, outcome: str) -> None:
        self.checked += 1
        if outcome == Outcome.CREATED:
            self.created += 1
        elif outcome == Outcome.FAILED:
            self.failed += 1
        elif outcome == Outcome.UNKNOWN:
            self.unknown += 1
        else:
            self.skipped += 1


def is_due(record: Interaction) -> bool:
    if record.outcome == Outcome.UNKNOWN:
        return True
    if record.outcome != Outcome.PENDING:
        return False
    since = record.last_attempt_at or record.created_at
    return since is not None and since < timezone.now() - pending_grace()


def interaction_reconcile(
    *, record: Interaction, user: AbstractBaseUser | None, trigger: str
) -> Interaction:
    """Look a record that is due up in Corti and settle it. One caller wins."""
    _reconcile(record, user=user, trigger=trigger)
    return record


def _reconcile(
    record: Interaction, *, user: AbstractBaseUser | None, trigger: str
) -> bool:
    """Settle a due record; False when it was not due (or another caller won)."""
    now = timezone.now()
    claimed = (
        Interaction.objects.filter(due_filter(now), pk=record.pk).update(
            outcome=Outcome.PENDING, last_attempt_at=now, updated_at=now
        )
        > 0
    )
    record.refresh_from_db()
    if claimed:
        settle(record, lookup(record, user=user, trigger=trigger), error=None)
    return claimed


def interactions_reconcile_due(
    *, limit: int | None = None, now: dt.datetime | None = None
) -> ReconcileSummary:
    """Settle every record that is due (`manage.py reconcile_interactions`)."""
    summary = ReconcileSummary()
    for record in interactions_due(now=now, limit=limit):
        claimed = _reconcile(record, user=None, trigger=CortiCall.Trigger.COMMAND)
        # Not claimed: another process settled or is settling it.
        summary.add(record.outcome if claimed else "")
    return summary


def lookup(
    record: Interaction, *, user: AbstractBaseUser | None, trigger: str
) -> Lookup:
    """Search Corti for the record's interaction; log the search as a call."""
    call = calls.call_start(
        record, kind=CortiCall.Kind.LOOKUP, trigger=trigger, user=user
    )
    try:
        result = search(record)
    except CortiError as exc:
        calls.call_finish(call, result=CortiCall.Result.INCONCLUSIVE, error=exc)
        return Lookup(match=None, conclusive=False, error=exc)
    if result.match is not None:
        calls.call_finish(
            call,
            result=CortiCall.Result.FOUND,
            corti_id=result.match.id,
            found=_listed_json(result.match),
        )
    else:
        calls.call_finish(
            call,
            result=CortiCall.Result.NOT_FOUND
            if result.conclusive
            else CortiCall.Result.INCONCLUSIVE,
        )
    return result


def settle(record: Interaction, result: Lookup, *, error: CortiError | None) -> None:
    """Apply a lookup to a pending record; `error` is the lost answer, if any."""
    if result.match is not None:
        if calls.record_created(
            record,
            interaction_id=result.match.id,
            websocket_url=result.match.websocket_url,
        ):
            logger.info("Interaction record %s adopted from Corti", record.pk)
            return
        result = Lookup(match=None, conclusive=False)
    if result.conclusive:
        calls.record_failed(
            record,
            error,
            code="interrupted",
            message="No answer from Corti was recorded; Corti does not have it.",
        )
    else:
        # Keep the reason of the lost answer, if the record has one, over the
        # reason the lookup failed (which the call log keeps).
        calls.record_unknown(
            record,
            error or (None if record.error_code else result.error),
            code="interrupted",
            message="No answer from Corti was recorded, and Corti could not be "
            "searched.",
        )


def search(record: Interaction) -> Lookup:
    """Page through Corti's interactions, newest first, for this record's."""
    client = get_client()
    since = _sent_since(record) - CLOCK_SKEW
    for index in range(1, LOOKUP_MAX_PAGES + 1):
        page = client.list_interactions(
            patient=record.patient_identifier,
            sort="createdAt",
            direction="desc",
            page_size=LOOKUP_PAGE_SIZE,
            index=index,
        )
        if not page:
            return Lookup(match=None, conclusive=True)
        for item in page:
            if item.created_at is not None and item.created_at < since:
                return Lookup(match=None, conclusive=True)
            if matches(record.request_body, item) and not _adopted(item.id, record):
                return Lookup(match=item, conclusive=True)
    return Lookup(match=None, conclusive=False)


def _sent_since(record: Interaction) -> dt.datetime:
    """When the earliest create whose answer never came was sent.

    Corti cannot have created this record's interaction before then.
    """
    first = (
        record.calls.filter(
            kind=CortiCall.Kind.CREATE,
            result__in=[CortiCall.Result.UNKNOWN, CortiCall.Result.STARTED],
        )
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return first or record.last_attempt_at or record.created_at


def matches(sent: dict[str, Any], listed: InteractionListed) -> bool:
    """True when Corti's interaction holds exactly what was sent."""
    encounter = sent.get("encounter") or {}
    got = listed.encounter
    for key in ("identifier", "status", "type", "title"):
        if (got.get(key) or "") != (encounter.get(key) or ""):
            return False
    period, got_period = encounter.get("period") or {}, got.get("period") or {}
    for key in ("startedAt", "endedAt"):
        if not _same_instant(period.get(key), got_period.get(key)):
            return False
    patient, got_patient = sent.get("patient") or {}, listed.patient or {}
    for key in ("identifier", "name", "gender", "pronouns"):
        if (got_patient.get(key) or "") != (patient.get(key) or ""):
            return False
    if not _same_instant(patient.get("birthDate"), got_patient.get("birthDate")):
        return False
    assigned = sent.get("assignedUserId")
    return not assigned or _same_uuid(assigned, listed.assigned_user_id)


def _same_instant(a: Any, b: Any) -> bool:
    if not a and not b:
        return True
    first, second = parse_rfc3339(a), parse_rfc3339(b)
    return first is not None and first == second


def _same_uuid(a: str, b: str) -> bool:
    try:
        return uuid.UUID(str(a)) == uuid.UUID(str(b))
    except ValueError:
        return False


def _adopted(interaction_id: uuid.UUID, record: Interaction) -> bool:
    """True when another local record already stands for this interaction."""
    return (
        Interaction.objects.filter(interaction_id=interaction_id)
        .exclude(pk=record.pk)
        .exists()
    )


def _listed_json(item: InteractionListed) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "createdAt": item.created_at.isoformat() if item.created_at else None,
        "encounter": item.encounter,
        "patient": item.patient,
        "websocketUrl": item.websocket_url,
    }
