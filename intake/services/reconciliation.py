"""Writes: settling submissions whose answer from Corti was lost.

Corti documents no idempotency key, so after a read timeout, a dropped
connection, a 5xx or a cut body the create may or may not have happened, and
may even still be under way in Corti. Instead of sending it again, the
dashboard looks for it with `GET /interactions/` (filtered by patient
identifier where there is one, newest first) and matches on the encounter
identifier and every other field that was sent:

- found, at any time: the record adopts that interaction (created);
- not found by a search made INTAKE_SETTLE_SECONDS or more after the lost
  request was sent: Corti did not create it (failed, safe to send again);
- not found sooner, or Corti could not be searched: still unknown. The next
  search is scheduled as a background task (`intake.tasks`) at growing
  delays; a day on, the record is flagged for an administrator.

Outcomes change only through `outcomes`. A record left pending by a request
that died is found by the sweep (`interactions_sweep`), and
`manage.py reconcile_interactions` settles everything due by hand.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from intake.corti import get_client
from intake.corti.errors import CortiError
from intake.corti.types import InteractionListed, parse_rfc3339
from intake.fields import DETAIL_FIELDS, Kind, value_at
from intake.models import CortiCall, Interaction, InteractionEvent

from . import calls, outcomes

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome

LOOKUP_PAGE_SIZE = 50
LOOKUP_MAX_PAGES = outcomes.LOOKUP_MAX_PAGES
#: Corti's clock and ours may differ; look this far before the submission.
CLOCK_SKEW = dt.timedelta(minutes=5)
#: A record whose search is this overdue lost its task (a worker died, or
#: none ran): the sweep queues another.
SWEEP_SLACK = dt.timedelta(seconds=60)
#: Records the sweep handles at most per run; the next run takes the rest.
SWEEP_LIMIT = 500
#: A page view asks for a check of one record at most this often.
PAGE_NUDGE_SECONDS = 10


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


@dataclass
class SweepSummary:
    interrupted: int = 0
    queued: int = 0


def interaction_settle(
    *,
    record: Interaction,
    trigger: str,
    user: User | None = None,
    force: bool = False,
    now: dt.datetime | None = None,
) -> bool:
    """Search Corti for an unknown (or stranded) record and settle it.

    Only when its next search is due (any time with `force`), and only by the
    one caller that takes its lease; False when this caller did not search.
    """
    now = now or timezone.now()
    if outcomes.is_stale_pending(record, now):
        outcomes.mark_interrupted(record, now=now)
    lease = outcomes.claim_check(record, now=now, force=force)
    if lease is None:
        return False
    result = lookup(record, user=user, trigger=trigger)
    settle(record, result, lease=lease, now=now)
    return True


def settle(
    record: Interaction,
    result: Lookup,
    *,
    lease: dt.datetime,
    now: dt.datetime | None = None,
) -> None:
    """Apply a search to an unknown record whose lease this caller holds.

    `now` is when the search began: only a search that began after the
    settle window can prove that Corti did not create it.
    """
    now = now or timezone.now()
    if result.match is not None:
        if outcomes.mark_created(
            record,
            interaction_id=result.match.id,
            websocket_url=result.match.websocket_url,
            now=now,
        ):
            logger.info("Interaction record %s adopted from Corti", record.pk)
            return
        result = Lookup(match=None, conclusive=False)
    if result.conclusive and now >= outcomes.proven_absent_at(record):
        outcomes.mark_not_created(record, lease=lease, now=now)
        return
    was_flagged = record.needs_attention
    due = outcomes.mark_still_unknown(
        record, lease=lease, search_error=result.error, now=now
    )
    if due is None:
        return
    if record.needs_attention and not was_flagged:
        InteractionEvent.objects.create(
            interaction=record, at=now, kind=InteractionEvent.Kind.FLAGGED
        )
        logger.error(
            "Interaction record %s: Corti's answer was lost a day ago and it is "
            "still not known whether Corti created it; flagged for an "
            "administrator",
            record.pk,
        )
    schedule_settle(record, at=due)


def schedule_settle(record: Interaction, *, at: dt.datetime | None = None) -> None:
    """Queue a background search for the record.

    Callers run in autocommit (the outcome it follows is already committed),
    so the task can never see an older state than the one that asked for it.
    """
    from intake.tasks import settle_interaction

    settle_interaction.using(run_after=at).enqueue(str(record.pk))


def interaction_nudge(*, record: Interaction, now: dt.datetime | None = None) -> bool:
    """Queue a search for a record whose check is due, as a page view asks.

    Never searches in the caller's request, and queues at most one task per
    record every few seconds however often the page is opened.
    """
    now = now or timezone.now()
    if not (
        outcomes.is_check_due(record, now) or outcomes.is_stale_pending(record, now)
    ):
        return False
    if not cache.add(f"intake:settle-nudge:{record.pk}", 1, PAGE_NUDGE_SECONDS):
        return False
    schedule_settle(record)
    return True


def interaction_check_now(*, record: Interaction) -> bool:
    """Queue a search now, as someone pressed "Check Corti again"."""
    if record.outcome != Outcome.UNKNOWN:
        return False
    if not cache.add(f"intake:settle-now:{record.pk}", 1, PAGE_NUDGE_SECONDS):
        return False
    from intake.tasks import settle_interaction

    settle_interaction.enqueue(str(record.pk), force=True)
    return True


def interactions_sweep(*, now: dt.datetime | None = None) -> SweepSummary:
    """Find what a dead worker or request left unsettled, and queue its search.

    Pending records older than any request can run become unknown; unknown
    records whose search is overdue get a task. Safe on many workers at once:
    every change is conditional, and a duplicate task finds nothing due.
    """
    now = now or timezone.now()
    summary = SweepSummary()
    for record in Interaction.objects.filter(outcomes.stale_pending(now)).order_by(
        "created_at"
    )[:SWEEP_LIMIT]:
        if outcomes.mark_interrupted(record, now=now):
            summary.interrupted += 1
            schedule_settle(record)
            summary.queued += 1
    overdue = Interaction.objects.filter(outcomes.check_due(now - SWEEP_SLACK))
    for record in overdue.order_by("next_check_at")[:SWEEP_LIMIT]:
        schedule_settle(record)
        summary.queued += 1
    return summary


def interactions_reconcile_due(
    *, limit: int | None = None, now: dt.datetime | None = None
) -> ReconcileSummary:
    """Settle every unknown or stranded record now (`reconcile_interactions`).

    The settle window still holds: a record whose lost request may still be
    under way in Corti stays unknown, with its next search scheduled.
    """
    given_now = now
    now = now or timezone.now()
    summary = ReconcileSummary()
    due = Interaction.objects.filter(
        outcomes.stale_pending(now) | Q(outcome=Outcome.UNKNOWN)
    ).order_by("created_at")
    for record in due[:limit] if limit else due:
        # Each record's own moment: a run can take minutes.
        searched = interaction_settle(
            record=record,
            trigger=CortiCall.Trigger.COMMAND,
            force=True,
            now=timezone.now() if given_now is None else now,
        )
        summary.add(record.outcome if searched else "")
    return summary


def lookup(record: Interaction, *, user: User | None, trigger: str) -> Lookup:
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
    """True when Corti's interaction holds exactly what was sent.

    Every detail (intake.fields) is compared at its JSON path: times as
    instants, the assigned user only when one was sent.
    """
    held = {
        "encounter": listed.encounter,
        "patient": listed.patient,
        "assignedUserId": listed.assigned_user_id,
    }
    return all(
        _same(field.kind, value_at(sent, field.path), value_at(held, field.path))
        for field in DETAIL_FIELDS
    )


def _same(kind: Kind, sent: Any, held: Any) -> bool:
    if kind == Kind.INSTANT:
        return _same_instant(sent, held)
    if kind == Kind.UUID:
        return not sent or _same_uuid(sent, held)
    return (held or "") == (sent or "")


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
