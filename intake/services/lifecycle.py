"""Writes: an interaction's life after its create, kept in step with Corti.

The one module that changes a created record's details, and the only one
that writes its change history (InteractionChange). What Corti holds is the
truth: every successful read (`interaction_refresh`, `interactions_sync`)
and every change's answer is applied to the local record field by field,
each difference kept with who made it (a user here, or "outside the
dashboard" when a read found it), when, before and after. `request_body`
is never touched: it stays what was sent when the interaction was created.

Failure rules: an error from Corti changes nothing locally, except a 404,
which marks the record "gone from Corti" (never erased). Outcomes (pending,
created, failed, unknown) are `outcomes`' alone: a record whose create is
not settled is never touched here, and an interaction that could be such a
record's is left for `reconciliation` to adopt, never imported beside it.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone

from intake.corti import get_client
from intake.corti.errors import CortiError, CortiNotFoundError
from intake.corti.types import (
    InteractionListed,
    InteractionUpdate,
    parse_rfc3339,
    to_rfc3339_utc,
)
from intake.enums import EncounterStatus
from intake.fields import (
    BY_NAME,
    DETAIL_NAMES,
    InteractionDetails,
    details_from_body,
    json_value,
    value_at,
)
from intake.models import CortiCall, Interaction, InteractionChange

from . import calls, reconciliation
from .interactions import interaction_request

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome
Kind = InteractionChange.Kind

#: The fields Corti holds, in the record's own names: the twelve details.
FOLLOWED_FIELDS = DETAIL_NAMES
#: sync_interactions reads this many interactions a page.
SYNC_PAGE_SIZE = 50
#: ... and stops after this many pages, whatever happens (a guard against a
#: listing that never ends; a clinic's Corti tenant holds far fewer).
SYNC_MAX_PAGES = 10_000
#: The username of the account imported interactions are filed under.
IMPORT_USERNAME = "corti-import"


@dataclass
class LifeResult:
    """What a read or change did, for the page to say."""

    ok: bool
    #: Corti answered 404: the record is now marked gone.
    gone: bool = False
    #: The local fields that changed (record names).
    changed: list[str] = field(default_factory=list)
    error: CortiError | None = None
    #: A change's answer was lost and a read could not confirm that Corti
    #: made it: nothing changed here; reading again later settles it.
    unsettled: bool = False
    #: The encounter had already ended: nothing was sent.
    already: bool = False


def corti_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What Corti holds (an interaction's JSON) in the record's own fields.

    Text longer than a column is cut (the whole JSON stays in corti_state);
    a start time Corti does not give is None (the caller keeps its own).
    """
    return details_from_body(data, lengths=COLUMN_LENGTHS)


#: The size of each text column the details go in.
COLUMN_LENGTHS: dict[str, int] = {
    name: length
    for name in FOLLOWED_FIELDS
    if (length := getattr(Interaction._meta.get_field(name), "max_length", None))
}


def apply_corti_state(
    record: Interaction,
    data: dict[str, Any],
    *,
    by: User | None = None,
    kind: str = Kind.CHANGED_IN_CORTI,
    mine: frozenset[str] = frozenset(),
    request_id: str = "",
    now: dt.datetime | None = None,
) -> list[str]:
    """Make the record hold what Corti holds (`data`); return what changed.

    The fields named in `mine` that changed are one change of `kind` by `by`
    (a change made here); any other difference is a change found outside
    the dashboard. Under a row lock, so two reads at once keep one history.
    """
    now = now or timezone.now()
    held = corti_fields(data)
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=record.pk)
        if _older(data, locked.corti_state):
            # Read before what the record already holds (a listing page
            # read a while ago): never put older values back.
            record.refresh_from_db()
            return []
        pending = locked.pending_change
        if pending and not mine:
            # A change sent from here whose answer was lost: a read that shows
            # it done credits it to its sender; one long after that does not
            # show it says it was not made.
            if pending.get("kind") != Kind.DELETED and _holds(
                data, pending.get("sent") or {}
            ):
                by = User.objects.filter(pk=pending.get("by") or 0).first()
                kind = pending["kind"]
                mine = frozenset(pending.get("fields") or ())
                locked.pending_change = None
            elif _settled_without(pending, now):
                locked.pending_change = None
        quiet: list[str] = []
        ours: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        theirs: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        for name in FOLLOWED_FIELDS:
            value = held[name]
            if name == "encounter_started_at" and value is None:
                continue
            old = getattr(locked, name)
            if old == value:
                continue
            if name == "assigned_user_id" and old is None and name not in mine:
                # None was sent: Corti assigns one itself. Kept, not a change.
                setattr(locked, name, value)
                quiet.append(name)
                continue
            before, after = ours if name in mine else theirs
            before[name], after[name] = json_value(old), json_value(value)
            setattr(locked, name, value)
        changed = [*ours[1], *theirs[1]]
        locked.corti_state = data
        locked.corti_read_at = now
        locked.corti_gone_at = None
        locked.save(
            update_fields=[
                *changed,
                *quiet,
                "corti_state",
                "corti_read_at",
                "corti_gone_at",
                "pending_change",
                "updated_at",
            ]
        )
        if ours[1]:
            InteractionChange.objects.create(
                interaction=locked,
                at=now,
                kind=kind,
                by=by,
                before=ours[0],
                after=ours[1],
                request_id=request_id,
            )
        if theirs[1]:
            InteractionChange.objects.create(
                interaction=locked,
                at=now,
                kind=Kind.CHANGED_IN_CORTI,
                before=theirs[0],
                after=theirs[1],
                request_id=request_id,
            )
    record.refresh_from_db()
    return changed


def _settled_without(pending: dict[str, Any], now: dt.datetime) -> bool:
    """Whether a lost change is old enough that a read not showing it proves
    it was not made (the create's rule: INTAKE_SETTLE_SECONDS)."""
    sent_at = parse_rfc3339(pending.get("at"))
    window = dt.timedelta(seconds=settings.INTAKE_SETTLE_SECONDS)
    return sent_at is None or now - sent_at >= window


def _older(data: dict[str, Any], kept: Any) -> bool:
    """Whether Corti's `data` was last changed before what `kept` shows."""
    if not isinstance(kept, dict):
        return False
    new, old = _changed_at(data), _changed_at(kept)
    return new is not None and old is not None and new < old


def _changed_at(data: dict[str, Any]) -> dt.datetime | None:
    return parse_rfc3339(data.get("updatedAt") or data.get("lastUpdated"))


def mark_gone(
    record: Interaction, *, request_id: str = "", now: dt.datetime | None = None
) -> bool:
    """Corti answered 404 for the record's interaction: mark it gone (once).

    Deleted from here (by a DELETE whose answer was lost), it is marked
    deleted by its sender instead; one deleted here stays as it is.
    """
    now = now or timezone.now()
    pending = record.pending_change or {}
    if pending.get("kind") == Kind.DELETED:
        sender = User.objects.filter(pk=pending.get("by") or 0).first()
        if sender is not None:
            _mark_deleted(record, sender, request_id=request_id)
            return False
    with transaction.atomic():
        updated = Interaction.objects.filter(
            pk=record.pk, corti_gone_at__isnull=True, deleted_at__isnull=True
        ).update(
            corti_gone_at=now, corti_read_at=now, pending_change=None, updated_at=now
        )
        if updated:
            InteractionChange.objects.create(
                interaction_id=record.pk, at=now, kind=Kind.GONE, request_id=request_id
            )
    record.refresh_from_db()
    return bool(updated)


def _followable(record: Interaction) -> bool:
    return record.outcome == Outcome.CREATED and record.interaction_id is not None


def interaction_refresh(
    *,
    record: Interaction,
    user: User | None = None,
    trigger: str = CortiCall.Trigger.REFRESH,
) -> LifeResult:
    """Read what Corti holds for the record now and keep it (never inside a
    page's GET: a button's POST, or a background task)."""
    if not refresh_allowed(record):
        return LifeResult(ok=False)
    call = calls.call_start(
        record, kind=CortiCall.Kind.READ, trigger=trigger, user=user
    )
    try:
        held = get_client().get_interaction(record.interaction_id)  # type: ignore[arg-type]
    except CortiNotFoundError as error:
        calls.call_finish(call, result=CortiCall.Result.NOT_FOUND, error=error)
        mark_gone(record, request_id=error.request_id)
        return LifeResult(ok=True, gone=True, error=error)
    except CortiError as error:
        result = (
            CortiCall.Result.UNKNOWN
            if error.outcome_unknown
            else CortiCall.Result.FAILED
        )
        calls.call_finish(call, result=result, error=error)
        return LifeResult(ok=False, error=error)
    calls.call_finish(call, result=CortiCall.Result.FOUND, corti_id=held.id)
    changed = apply_corti_state(record, held.raw or {})
    return LifeResult(ok=True, changed=changed)


def refresh_allowed(record: Interaction) -> bool:
    """Whether the record's interaction can be read from Corti (again)."""
    return _followable(record) and not record.deleted_at


def refresh_due(record: Interaction, now: dt.datetime | None = None) -> bool:
    """Whether the page should have the record read again in the background."""
    if not _followable(record) or record.corti_gone_at or record.deleted_at:
        return False
    now = now or timezone.now()
    age = dt.timedelta(seconds=settings.INTAKE_REFRESH_SECONDS)
    # Corti's answer to the create is its state then: a copy that old.
    last = record.corti_read_at or record.completed_at
    return last is None or last <= now - age


# --- importing what was made elsewhere -----------------------------------


@dataclass
class SyncSummary:
    """What `interactions_sync` did, for the command and the worker's log."""

    pages: int = 0
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    gone: int = 0
    #: Interactions that may be a submission whose answer was lost: left for
    #: reconciliation to adopt, never imported beside it.
    left_for_settling: int = 0
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def import_user() -> User:
    """The account imported interactions are filed under: it cannot sign in."""
    user, made = User.objects.get_or_create(
        username=IMPORT_USERNAME,
        defaults={"is_active": False, "first_name": "Made outside the dashboard"},
    )
    if made:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def interactions_sync(*, page_size: int = SYNC_PAGE_SIZE) -> SyncSummary:
    """Page through every interaction Corti holds (oldest first, until an
    empty page: there is no total) and bring the local log in step.

    New interactions are imported (filed under the import account, their
    request body empty); known ones take what Corti holds now; a followed
    record Corti no longer lists is read once to tell "gone" (404) from a
    listing that moved under us. Idempotent: a second run finds everything
    unchanged. Raises CortiError when a page cannot be read (nothing after
    it is touched; what was applied before it stays applied).
    """
    client = get_client()
    summary = SyncSummary()
    listed: set[uuid.UUID] = set()
    importer: User | None = None
    for index in range(1, SYNC_MAX_PAGES + 1):
        page = client.list_interactions(
            sort="createdAt", direction="asc", page_size=page_size, index=index
        )
        if not page:
            summary.complete = True
            break
        summary.pages += 1
        for item in page:
            if item.id in listed:
                # Shifted onto this page by a create made between pages.
                continue
            listed.add(item.id)
            summary.seen += 1
            record = Interaction.objects.filter(interaction_id=item.id).first()
            if record is None:
                if _may_be_unsettled(item):
                    summary.left_for_settling += 1
                    continue
                importer = importer or import_user()
                if _import(item, importer):
                    summary.new += 1
                else:
                    summary.unchanged += 1
                continue
            if not _followable(record) or record.corti_gone_at or record.deleted_at:
                # Gone (a 404 is newer than any listing) or deleted here.
                summary.unchanged += 1
                continue
            if apply_corti_state(record, item.raw or {}):
                summary.updated += 1
            else:
                summary.unchanged += 1
    if summary.complete:
        summary.gone = _mark_unlisted_gone(listed)
    return summary


def _may_be_unsettled(item: InteractionListed) -> bool:
    """Whether the interaction could be a submission of ours whose create
    answer has not arrived or was lost (pending or unknown): one Corti made
    after the oldest such submission was saved (give or take the clocks'
    difference), however it was changed since. Importing it would stand
    beside that submission: the lost-answer check adopts it instead, and a
    later sync imports whatever is left. Asked afresh for each interaction,
    so a submission made while the sync runs counts too."""
    oldest = Interaction.objects.filter(
        outcome__in=[Outcome.PENDING, Outcome.UNKNOWN], interaction_id__isnull=True
    ).aggregate(oldest=Min("created_at"))["oldest"]
    if oldest is None:
        return False
    made = item.created_at
    return made is None or made >= oldest - reconciliation.CLOCK_SKEW


def _import(item: InteractionListed, importer: User) -> bool:
    """A local record for an interaction made elsewhere; False if one exists."""
    data = item.raw or {}
    held = corti_fields(data)
    now = timezone.now()
    record = Interaction(
        submitted_by=importer,
        outcome=Outcome.CREATED,
        imported=True,
        interaction_id=item.id,
        websocket_url=item.websocket_url,
        request_body={},
        time_zone=settings.TIME_ZONE,
        completed_at=item.created_at or now,
        corti_state=data,
        corti_read_at=now,
        **{k: v for k, v in held.items() if v is not None},
    )
    if record.encounter_started_at is None:
        record.encounter_started_at = item.created_at or now
    try:
        with transaction.atomic():
            record.save(force_insert=True)
            # Filed under Corti's own creation time (created_at is auto_now_add).
            Interaction.objects.filter(pk=record.pk).update(
                created_at=item.created_at or now
            )
            InteractionChange.objects.create(
                interaction=record, at=now, kind=Kind.IMPORTED
            )
    except IntegrityError:
        # Another sync (or the reconciler) took it meanwhile.
        return False
    return True


def _mark_unlisted_gone(listed: set[uuid.UUID]) -> int:
    """Read each followed record Corti did not list; mark the 404s gone."""
    client = get_client()
    gone = 0
    followed = (
        Interaction.objects.filter(
            outcome=Outcome.CREATED,
            interaction_id__isnull=False,
            corti_gone_at__isnull=True,
            deleted_at__isnull=True,
        )
        .only("pk", "interaction_id", "outcome", "pending_change")
        .order_by("pk")
    )
    for record in followed.iterator(chunk_size=2000):
        if record.interaction_id in listed:
            continue
        try:
            client.get_interaction(record.interaction_id)  # type: ignore[arg-type]
        except CortiNotFoundError as error:
            if mark_gone(record, request_id=error.request_id):
                gone += 1
        except CortiError:
            logger.warning("sync: could not read %s back", record.interaction_id)
    return gone


# --- changes made here: end, correct, delete --------------------------------


def interaction_may_change(*, user: User, record: Interaction) -> bool:
    """Whether `user` may refresh, end and correct this interaction: their
    own (with the permission), anyone's with `change_any_interaction`, or
    anyone's when the clinic allows it (INTAKE_CLINICIANS_CHANGE_ANY)."""
    if not user.has_perm("intake.follow_interaction"):
        return False
    return (
        record.submitted_by_id == user.pk
        or user.has_perm("intake.change_any_interaction")
        or settings.INTAKE_CLINICIANS_CHANGE_ANY
    )


def interaction_may_delete(*, user: User) -> bool:
    """Only those with `delete_in_corti` (Administrators) delete in Corti."""
    return user.has_perm("intake.delete_in_corti")


def changeable(record: Interaction) -> bool:
    """Whether the record's interaction can be changed in Corti now: created,
    not gone or deleted, and no earlier change from here still unconfirmed
    (a read settles that first: nothing is sent on top of it)."""
    return (
        _followable(record)
        and not record.corti_gone_at
        and not record.deleted_at
        and not record.pending_change
    )


def interaction_end(
    *,
    record: Interaction,
    user: User,
    ended_at: dt.datetime | None = None,
) -> LifeResult:
    """End the encounter: status `completed` and `period.endedAt` now (or at
    `ended_at`, which the form checked), through one PATCH. One already
    completed is not ended again (a second press, a stale tab)."""
    if record.encounter_status == EncounterStatus.COMPLETED.value:
        return LifeResult(ok=False, already=True)
    ended = ended_at or timezone.now()
    update = InteractionUpdate(
        encounter={
            "status": EncounterStatus.COMPLETED.value,
            "period": {
                "startedAt": to_rfc3339_utc(record.encounter_started_at),
                "endedAt": to_rfc3339_utc(ended),
            },
        }
    )
    return _change(
        record,
        user,
        update,
        kind=Kind.ENDED,
        trigger=CortiCall.Trigger.END,
        mine=frozenset({"encounter_status", "encounter_ended_at"}),
    )


def correction_update(
    record: Interaction, details: InteractionDetails, edited: frozenset[str]
) -> tuple[InteractionUpdate, frozenset[str]]:
    """The PATCH for the fields the clinician changed (`edited`: what the
    form showed and what it sent differ, CorrectionForm.changed_data) that
    also differ from the record: only those, with a period's start and a
    patient's identifier beside them as Corti requires, taken from the record
    when not changed (to the second), and the names of the fields it changes.

    Changes Corti took meanwhile in fields the clinician left alone are
    never sent back."""
    changed = frozenset(
        name
        for name, value in details.as_dict().items()
        if name in edited and getattr(record, name) != value
    )
    body = interaction_request(details).to_json()
    encounter: dict[str, Any] = {}
    patient: dict[str, Any] = {}
    for name in changed:
        field = BY_NAME[name]
        value = value_at(body, field.path)
        if field.path[0] == "encounter":
            if field.path[1] == "period":
                start = (
                    value_at(body, ("encounter", "period", "startedAt"))
                    if "encounter_started_at" in changed
                    else to_rfc3339_utc(record.encounter_started_at)
                )
                period = encounter.setdefault("period", {"startedAt": start})
                period[field.path[2]] = value
            else:
                encounter[field.path[1]] = value
        elif field.path[0] == "patient":
            patient[field.path[1]] = value
    if patient:
        patient["identifier"] = (
            details.patient_identifier
            if "patient_identifier" in changed
            else record.patient_identifier
        )
    assigned = details.assigned_user_id if "assigned_user_id" in changed else None
    update = InteractionUpdate(
        encounter=encounter or None, patient=patient or None, assigned_user_id=assigned
    )
    return update, changed


def interaction_correct(
    *,
    record: Interaction,
    user: User,
    details: InteractionDetails,
    edited: frozenset[str] | None = None,
) -> LifeResult:
    """Send what the clinician changed (only that) and keep the change.
    `edited`: the fields changed on the form (all that differ when None)."""
    names = frozenset(details.as_dict()) if edited is None else edited
    update, changed = correction_update(record, details, names)
    if not update:
        return LifeResult(ok=True)
    return _change(
        record,
        user,
        update,
        kind=Kind.CORRECTED,
        trigger=CortiCall.Trigger.EDIT,
        mine=changed,
    )


def interaction_delete(*, record: Interaction, user: User) -> LifeResult:
    """Delete the interaction in Corti (with everything under it) and mark
    the record deleted; the record itself is kept.

    A lost answer is settled by reading the interaction back (a 404 then
    means it was deleted), never by sending the DELETE again.
    """
    if not changeable(record):
        return LifeResult(ok=False)
    interaction_id = record.interaction_id
    assert interaction_id is not None
    call = calls.call_start(
        record, kind=CortiCall.Kind.DELETE, trigger=CortiCall.Trigger.REMOVE, user=user
    )
    _, refused, lost = _answer_of(
        record, call, lambda: get_client().delete_interaction(interaction_id)
    )
    if refused is not None:
        return refused
    if lost is not None:
        error = lost
        held = _read_back(record, user, CortiCall.Trigger.REMOVE)
        if held is _GONE:
            _mark_deleted(record, user, request_id=error.request_id)
            return LifeResult(ok=True, error=error)
        # Not known, or Corti still has it (it may still be deleting it):
        # a later read settles it; nothing is sent again meanwhile.
        _mark_pending(record, {"kind": Kind.DELETED, "by": user.pk})
        if held is not None:
            apply_corti_state(record, held.raw or {})
        return LifeResult(ok=False, unsettled=True, error=error)
    calls.call_finish(call, result=CortiCall.Result.DELETED)
    _mark_deleted(record, user)
    return LifeResult(ok=True)


def _mark_deleted(record: Interaction, user: User, *, request_id: str = "") -> None:
    now = timezone.now()
    with transaction.atomic():
        updated = Interaction.objects.filter(
            pk=record.pk, deleted_at__isnull=True
        ).update(deleted_at=now, deleted_by=user, pending_change=None, updated_at=now)
        if updated:
            InteractionChange.objects.create(
                interaction_id=record.pk,
                at=now,
                kind=Kind.DELETED,
                by=user,
                request_id=request_id,
            )
    record.refresh_from_db()


def _mark_pending(record: Interaction, change: dict[str, Any]) -> None:
    """Keep a change whose answer was lost until a read settles it."""
    now = timezone.now()
    Interaction.objects.filter(pk=record.pk).update(
        pending_change={**change, "at": now.isoformat()}, updated_at=now
    )
    record.refresh_from_db()


def _answer_of(
    record: Interaction, call: CortiCall, send: Any
) -> tuple[Any, LifeResult | None, CortiError | None]:
    """Send a change: (Corti's answer, None, None); or (None, what to say,
    None) when Corti refused it (a 404 marks the record gone); or (None,
    None, the error) when its answer was lost and a read must settle it.
    The call log has the answer either way (the caller logs a success)."""
    try:
        return send(), None, None
    except CortiNotFoundError as error:
        calls.call_finish(call, result=CortiCall.Result.NOT_FOUND, error=error)
        mark_gone(record, request_id=error.request_id)
        return None, LifeResult(ok=False, gone=True, error=error), None
    except CortiError as error:
        if not error.outcome_unknown:
            calls.call_finish(call, result=CortiCall.Result.FAILED, error=error)
            return None, LifeResult(ok=False, error=error), None
        calls.call_finish(call, result=CortiCall.Result.UNKNOWN, error=error)
        return None, None, error


#: _read_back's answer when Corti has no such interaction (404).
_GONE: Any = object()


def _read_back(record: Interaction, user: User | None, trigger: str) -> Any:
    """What Corti holds after a change whose answer was lost: the
    interaction, _GONE (404), or None when it could not be read either."""
    call = calls.call_start(
        record, kind=CortiCall.Kind.READ, trigger=trigger, user=user
    )
    try:
        held = get_client().get_interaction(record.interaction_id)  # type: ignore[arg-type]
    except CortiNotFoundError as error:
        calls.call_finish(call, result=CortiCall.Result.NOT_FOUND, error=error)
        return _GONE
    except CortiError as error:
        calls.call_finish(call, result=CortiCall.Result.INCONCLUSIVE, error=error)
        return None
    calls.call_finish(call, result=CortiCall.Result.FOUND, corti_id=held.id)
    return held


def _change(
    record: Interaction,
    user: User,
    update: InteractionUpdate,
    *,
    kind: str,
    trigger: str,
    mine: frozenset[str],
) -> LifeResult:
    """One PATCH; what Corti answers (or, when the answer is lost, what a
    read shows) becomes the record. Nothing changes locally on an error."""
    if not changeable(record):
        return LifeResult(ok=False)
    interaction_id = record.interaction_id
    assert interaction_id is not None
    sent = update.to_json()
    call = calls.call_start(
        record,
        kind=CortiCall.Kind.UPDATE,
        trigger=trigger,
        user=user,
        request_body=sent,
    )
    answer, refused, lost = _answer_of(
        record, call, lambda: get_client().update_interaction(interaction_id, update)
    )
    if refused is not None:
        return refused
    if lost is not None:
        error = lost
        held = _read_back(record, user, trigger)
        if held is _GONE:
            mark_gone(record, request_id=error.request_id)
            return LifeResult(ok=False, gone=True, error=error)
        if held is not None and _holds(held.raw or {}, sent):
            changed = apply_corti_state(
                record, held.raw or {}, by=user, kind=kind, mine=mine
            )
            return LifeResult(ok=True, changed=changed, error=error)
        # Not known, or not shown yet (Corti may still be making it): a
        # later read settles it, crediting it to this user if it shows it.
        _mark_pending(
            record,
            {"kind": kind, "by": user.pk, "fields": sorted(mine), "sent": sent},
        )
        if held is not None:
            apply_corti_state(record, held.raw or {})
        return LifeResult(ok=False, unsettled=True, error=error)
    calls.call_finish(call, result=CortiCall.Result.CHANGED, corti_id=answer.id)
    changed = apply_corti_state(record, answer.raw or {}, by=user, kind=kind, mine=mine)
    return LifeResult(ok=True, changed=changed)


def _holds(held: Any, sent: Any) -> bool:
    """Whether Corti's interaction holds every value of a PATCH body (times
    compared as instants, text as is, a null as absent)."""
    if isinstance(sent, dict):
        held = held if isinstance(held, dict) else {}
        return all(_holds(held.get(key), value) for key, value in sent.items())
    if sent is None:
        return held in (None, "")
    if isinstance(sent, str) and isinstance(held, str) and sent != held:
        a, b = parse_rfc3339(sent), parse_rfc3339(held)
        if a is not None and b is not None:
            return a == b
        try:
            return uuid.UUID(sent) == uuid.UUID(held)
        except ValueError:
            return False
    return bool(held == sent)


def interaction_refresh_soon(*, record: Interaction) -> bool:
    """Queue a background read of a record whose copy is older than
    INTAKE_REFRESH_SECONDS, as its page asks: never inside the page's GET,
    and at most once every few seconds however often the page is opened."""
    if not refresh_due(record):
        return False
    period = max(int(settings.INTAKE_REFRESH_SECONDS), REFRESH_GATE_SECONDS)
    if not cache.add(_key("refresh", record), 1, period):
        return False
    from intake.tasks import refresh_interaction

    cache.set(_key("refreshing", record), 1, REFRESHING_SECONDS)
    refresh_interaction.enqueue(str(record.pk))
    return True


#: A page asks for a background read of one record at most this often.
REFRESH_GATE_SECONDS = 5
#: A page shows "reading it from Corti now" for at most this long (a read
#: that never ran, a worker that is down): then it stops asking.
REFRESHING_SECONDS = 60


def _key(name: str, record: Interaction) -> str:
    return f"intake:{name}:{record.pk}"


def refresh_queued(record: Interaction) -> bool:
    """Whether a background read of the record was asked for and not done."""
    return cache.get(_key("refreshing", record)) is not None


def refresh_finished(record: Interaction, *, failed: bool) -> None:
    """The background read is over (the task says): pages stop waiting, and
    a failed one is shown as such for a refresh period."""
    cache.delete(_key("refreshing", record))
    if failed:
        period = max(int(settings.INTAKE_REFRESH_SECONDS), REFRESH_GATE_SECONDS)
        cache.set(_key("refresh-failed", record), timezone.now().isoformat(), period)
    else:
        cache.delete(_key("refresh-failed", record))


def refresh_failed_at(record: Interaction) -> dt.datetime | None:
    """When the last background read of the record failed, if lately."""
    kept = cache.get(_key("refresh-failed", record))
    return dt.datetime.fromisoformat(kept) if kept else None
