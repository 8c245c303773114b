"""The one module that changes an interaction's outcome.

    pending --created--> created
    pending --definite error--> failed          (nothing was created)
    pending --answer lost--> unknown            (Corti may be creating it)
    pending --worker died--> unknown            (interrupted, found by the sweep)
    unknown --found in Corti--> created         (at any time)
    unknown --not found, after the settle window--> failed
    unknown --not found yet / search failed--> unknown, next check scheduled
    failed  --resend claimed--> pending

Each change is one conditional UPDATE on the state it expects, so two
requests, or two workers settling one record, can never overwrite each
other: the loser's UPDATE matches no row. Every function refreshes the
record it was given and says whether its change won.

The policy lives here too: how long a pending call may run before it counts
as stranded, how long after a lost request a search that finds nothing
proves anything (INTAKE_SETTLE_SECONDS), and when to search again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from intake.corti.errors import CortiError
from intake.enums import ErrorCode
from intake.models import SEARCHED_FIELDS, Interaction
from intake.search import search_text

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome

#: The error fields of a record (or call) that has no error.
NO_ERROR: dict[str, Any] = {
    "error_code": "",
    "error_status": None,
    "error_message": "",
    "error_request_id": "",
    "error_problem": None,
}

#: Failures only an administrator can fix (credentials, tenant, permissions).
ADMINISTRATOR_PROBLEMS = frozenset(
    {ErrorCode.AUTH, ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN}
)

#: A search of Corti reads at most this many pages (reconciliation.search).
LOOKUP_MAX_PAGES = 10
#: After the search made right after a lost answer, the next one comes soon:
#: Corti may just have been slow.
FIRST_RECHECK = dt.timedelta(seconds=5)
#: Once the settle window has passed and Corti still cannot be searched.
LATER_RECHECK = dt.timedelta(minutes=10)
#: Past this, a record still unknown is flagged for an administrator (and
#: checked hourly, so it still settles by itself when Corti is back).
ATTENTION_AFTER = dt.timedelta(hours=24)
FLAGGED_RECHECK = dt.timedelta(hours=1)


# --- policy -------------------------------------------------------------------


def settle_window() -> dt.timedelta:
    """How long after a lost request a search that finds nothing proves it."""
    return dt.timedelta(seconds=settings.INTAKE_SETTLE_SECONDS)


def pending_grace() -> dt.timedelta:
    """How long a pending record may be in flight before it counts as stranded.

    Longer than one request can hold it: from its claim (or the renewal just
    before its create), a create and then a search of up to LOOKUP_MAX_PAGES
    pages, each call within its retry budget, connect and read timeouts, plus
    a margin.
    """
    return (1 + LOOKUP_MAX_PAGES) * one_call() + dt.timedelta(seconds=10)


def one_call() -> dt.timedelta:
    """The longest one call to Corti can take: its budget and both timeouts."""
    return dt.timedelta(
        seconds=settings.CORTI_RETRY_BUDGET
        + settings.CORTI_CONNECT_TIMEOUT
        + settings.CORTI_TIMEOUT
    )


def check_lease() -> dt.timedelta:
    """How long one search may hold a record before another may take it over.

    A search pages through Corti (at most LOOKUP_MAX_PAGES pages, each within
    the client's timeouts and budget: the pending grace covers that); a
    worker that died holding a record frees it then.
    """
    return pending_grace()


def proven_absent_at(record: Interaction) -> dt.datetime:
    """From when a search that finds nothing proves Corti did not create it."""
    return _lost_at(record) + settle_window()


def stale_pending(now: dt.datetime) -> Q:
    """Pending records whose request must have ended (its worker died)."""
    cutoff = now - pending_grace()
    return Q(outcome=Outcome.PENDING) & (
        Q(last_attempt_at__lt=cutoff)
        | Q(last_attempt_at__isnull=True, created_at__lt=cutoff)
    )


def check_due(now: dt.datetime) -> Q:
    """Unknown records whose next search is due and that nobody is searching."""
    return (
        Q(outcome=Outcome.UNKNOWN)
        & (Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        & (Q(checking_until__isnull=True) | Q(checking_until__lt=now))
    )


def is_stale_pending(record: Interaction, now: dt.datetime | None = None) -> bool:
    if record.outcome != Outcome.PENDING:
        return False
    since = record.last_attempt_at or record.created_at
    return since is not None and since < (now or timezone.now()) - pending_grace()


def is_check_due(record: Interaction, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        record.outcome == Outcome.UNKNOWN
        and (record.next_check_at is None or record.next_check_at <= now)
        and (record.checking_until is None or record.checking_until < now)
    )


def next_check(record: Interaction, now: dt.datetime) -> dt.datetime:
    """When to search Corti again for a record that is still unknown.

    A few seconds after the first search, then once the settle window has
    passed, then every 10 minutes; hourly once flagged.
    """
    window_end = proven_absent_at(record)
    if record.checks_made <= 1 and now + FIRST_RECHECK < window_end:
        return now + FIRST_RECHECK
    if now < window_end:
        # The first moment a search can prove absence.
        return window_end
    if now >= _lost_at(record) + ATTENTION_AFTER:
        return now + FLAGGED_RECHECK
    return now + LATER_RECHECK


def error_fields(error: CortiError | None) -> dict[str, Any]:
    """A client error as the error fields of a record or of a call."""
    if error is None:
        return dict(NO_ERROR)
    return {
        "error_code": error.code,
        "error_status": error.status,
        "error_message": error.message,
        "error_request_id": error.request_id or "",
        "error_problem": error.problem.as_dict() if error.problem else None,
    }


# --- transitions --------------------------------------------------------------


def mark_created(
    record: Interaction,
    *,
    interaction_id: uuid.UUID,
    websocket_url: str,
    now: dt.datetime | None = None,
) -> bool:
    """pending or unknown -> created. False if the interaction is another's.

    Adopting what Corti holds is right whenever it is found, so this does not
    depend on who is searching.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            won = _update(
                record,
                Q(outcome__in=[Outcome.PENDING, Outcome.UNKNOWN]),
                outcome=Outcome.CREATED,
                interaction_id=interaction_id,
                websocket_url=websocket_url,
                completed_at=now,
                may_exist_in_corti=False,
                next_check_at=None,
                checking_until=None,
                needs_attention=False,
                **NO_ERROR,
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
    if not won and record.interaction_id != interaction_id:
        # Both answers were created in Corti; the first one recorded stays.
        logger.error(
            "Interaction record %s is %s; Corti also created %s for it",
            record.pk,
            record.outcome,
            interaction_id,
        )
        return True
    if won:
        logger.info("Interaction record %s created in Corti", record.pk)
    return True


def mark_failed(
    record: Interaction, error: CortiError, *, now: dt.datetime | None = None
) -> bool:
    """pending -> failed: Corti answered with an error, so nothing was created."""
    return _settled(
        record,
        Q(outcome=Outcome.PENDING),
        Outcome.FAILED,
        now=now,
        **error_fields(error),
    )


def mark_answer_lost(
    record: Interaction,
    error: CortiError,
    *,
    sent_at: dt.datetime,
    now: dt.datetime | None = None,
) -> bool:
    """pending -> unknown: the create's answer was lost; Corti may hold it.

    The caller holds the search lease, so it searches at once.
    """
    now = now or timezone.now()
    return _lost(
        record,
        Q(outcome=Outcome.PENDING),
        sent_at=sent_at,
        now=now,
        searching=True,
        **error_fields(error),
    )


def mark_interrupted(record: Interaction, *, now: dt.datetime | None = None) -> bool:
    """stale pending -> unknown: the request that was calling Corti died.

    Its create, if it left at all, left within one call's time of the last
    attempt (claim or renewal): the settle window counts from then.
    """
    now = now or timezone.now()
    since = record.last_attempt_at or record.created_at
    return _lost(
        record,
        stale_pending(now),
        sent_at=min(now, since + one_call()),
        now=now,
        searching=False,
        **{
            **NO_ERROR,
            "error_code": ErrorCode.INTERRUPTED,
            "error_message": "No answer from Corti was recorded (the dashboard "
            "stopped while the request was under way).",
        },
    )


def claim_check(
    record: Interaction, *, now: dt.datetime | None = None, force: bool = False
) -> dt.datetime | None:
    """Take the search lease of an unknown record; its expiry, or None if lost.

    Without `force` only a record whose next search is due can be taken; with
    it (a person asked, or the manual command) any unknown record nobody is
    searching.
    """
    now = now or timezone.now()
    condition = check_due(now)
    if force:
        condition = Q(outcome=Outcome.UNKNOWN) & (
            Q(checking_until__isnull=True) | Q(checking_until__lt=now)
        )
    lease = now + check_lease()
    return lease if _update(record, condition, checking_until=lease) else None


def mark_not_created(
    record: Interaction, *, lease: dt.datetime, now: dt.datetime | None = None
) -> bool:
    """unknown -> failed: a search made after the settle window found nothing."""
    now = now or timezone.now()
    if now < proven_absent_at(record):
        raise ValueError("absence is not proven before the settle window ends")
    fields: dict[str, Any] = {}
    if not record.error_code:
        fields.update(
            error_code=ErrorCode.INTERRUPTED,
            error_message="No answer from Corti was recorded; Corti does not have it.",
        )
    return _settled(
        record,
        Q(outcome=Outcome.UNKNOWN, checking_until=lease),
        Outcome.FAILED,
        now=now,
        last_checked_at=now,
        checks_made=record.checks_made + 1,
        next_check_at=None,
        checking_until=None,
        needs_attention=False,
        **fields,
    )


def mark_still_unknown(
    record: Interaction,
    *,
    lease: dt.datetime,
    search_error: CortiError | None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """unknown -> unknown: not found yet, or Corti could not be searched.

    Schedules the next search; flags the record for an administrator once it
    has been unknown for a day. Returns when the next search is due (None if
    another worker holds the record now).
    """
    now = now or timezone.now()
    record.checks_made += 1
    due = next_check(record, now)
    flag = now >= _lost_at(record) + ATTENTION_AFTER
    fields: dict[str, Any] = {}
    if not record.error_code and search_error is not None:
        # Keep the lost answer's reason when there is one; else why searching
        # failed (the call log keeps both).
        fields.update(error_fields(search_error))
    won = _update(
        record,
        Q(outcome=Outcome.UNKNOWN, checking_until=lease),
        last_checked_at=now,
        checks_made=record.checks_made,
        next_check_at=due,
        checking_until=None,
        needs_attention=flag,
        **fields,
    )
    if not won:
        return None
    logger.warning(
        "Interaction record %s is still unknown after %s searches; next at %s%s",
        record.pk,
        record.checks_made,
        due.isoformat(timespec="seconds"),
        " (flagged for an administrator)" if flag else "",
    )
    return due


def claim_resend(record: Interaction, *, now: dt.datetime | None = None) -> bool:
    """failed -> pending, for the one request that wins the right to send."""
    now = now or timezone.now()
    return _update(
        record,
        Q(outcome=Outcome.FAILED),
        outcome=Outcome.PENDING,
        last_attempt_at=now,
        completed_at=None,
        **NO_ERROR,
    )


def correct_pending(
    record: Interaction, values: dict[str, Any], held_since: dt.datetime | None
) -> bool:
    """Store a correction's values on a record this request holds (pending).

    Held: still pending since this request claimed it (`held_since`).
    """
    return _update(
        record,
        Q(outcome=Outcome.PENDING, last_attempt_at=held_since),
        **values,
    )


def renew_hold(record: Interaction, held_since: dt.datetime | None) -> bool:
    """Just before a create is sent: still held? Then its clock starts again.

    A resend's search may take a while; the stranded-record grace then counts
    from the create, so the sweep never takes over a record being sent.
    """
    return _update(
        record,
        Q(outcome=Outcome.PENDING, last_attempt_at=held_since),
        last_attempt_at=timezone.now(),
    )


def mark_resend_aborted(
    record: Interaction, search_error: CortiError | None, *, now: dt.datetime | None
) -> bool:
    """pending -> failed: Corti could not be searched before a resend."""
    fields = error_fields(search_error)
    fields.update(
        error_code=ErrorCode.UNSEARCHABLE,
        error_message="Corti could not be searched before sending again, so "
        "nothing was sent.",
    )
    return _settled(
        record, Q(outcome=Outcome.PENDING), Outcome.FAILED, now=now, **fields
    )


# --- plumbing -----------------------------------------------------------------


def _lost_at(record: Interaction) -> dt.datetime:
    return record.answer_lost_at or record.last_attempt_at or record.created_at


def _lost(
    record: Interaction,
    condition: Q,
    *,
    sent_at: dt.datetime,
    now: dt.datetime,
    searching: bool,
    **error: Any,
) -> bool:
    """-> unknown, from the moment `sent_at` its create may have reached Corti.

    With `searching`, the caller takes the search lease and searches at once.
    """
    return _settled(
        record,
        condition,
        Outcome.UNKNOWN,
        now=now,
        may_exist_in_corti=True,
        answer_lost_at=sent_at,
        checks_made=0,
        next_check_at=now,
        checking_until=now + check_lease() if searching else None,
        needs_attention=False,
        **error,
    )


def _update(record: Interaction, condition: Q, **fields: Any) -> bool:
    """One conditional UPDATE of the record; refreshes it; True if it won.

    Won or lost, the record is read back whole: a copy loaded earlier (a
    reconcile run's, a resend's) may hold columns another worker or tab has
    changed since (a later lost answer, corrected details), and what follows
    (the settle window, the body sent to Corti) must see those.
    """
    fields.setdefault("updated_at", timezone.now())
    if SEARCHED_FIELDS & fields.keys():
        # A correction of the details: the history's search must find the
        # record by what it holds now, never by what it held before.
        fields["search_text"] = search_text(
            **{
                name: fields.get(name, getattr(record, name))
                for name in SEARCHED_FIELDS
            }
        )
    won = Interaction.objects.filter(condition, pk=record.pk).update(**fields) > 0
    record.refresh_from_db()
    return won


def _settled(
    record: Interaction,
    condition: Q,
    outcome: str,
    *,
    now: dt.datetime | None,
    **fields: Any,
) -> bool:
    now = now or timezone.now()
    won = _update(record, condition, outcome=outcome, completed_at=now, **fields)
    if won:
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
    return won
