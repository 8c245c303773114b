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
from django.db import IntegrityError, transaction
from django.utils import timezone

from intake.corti import get_client
from intake.corti.errors import CortiError, CortiNotFoundError
from intake.corti.types import InteractionListed, parse_rfc3339
from intake.models import CortiCall, Interaction, InteractionChange

from . import calls, reconciliation

logger = logging.getLogger(__name__)

Outcome = Interaction.Outcome
Kind = InteractionChange.Kind

#: The fields Corti holds, in the record's own names (see `corti_fields`).
FOLLOWED_FIELDS = (
    "encounter_identifier",
    "encounter_status",
    "encounter_type",
    "encounter_title",
    "encounter_started_at",
    "encounter_ended_at",
    "patient_identifier",
    "patient_name",
    "patient_gender",
    "patient_birth_date",
    "patient_pronouns",
    "assigned_user_id",
)
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


def _max_length(name: str) -> int | None:
    return getattr(Interaction._meta.get_field(name), "max_length", None)


def _text(value: Any, name: str) -> str:
    text = "" if value is None else str(value)
    limit = _max_length(name)
    return text[:limit] if limit else text


def corti_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What Corti holds (an interaction's JSON) in the record's own fields.

    Text longer than a column is cut (the whole JSON stays in corti_state);
    a start time Corti does not give is None (the caller keeps its own).
    """
    encounter = _object(data.get("encounter"))
    period = _object(encounter.get("period"))
    patient = _object(data.get("patient"))
    born = parse_rfc3339(patient.get("birthDate"))
    if born is None and isinstance(patient.get("birthDate"), str):
        try:
            born_day: dt.date | None = dt.date.fromisoformat(patient["birthDate"][:10])
        except ValueError:
            born_day = None
    else:
        born_day = born.astimezone(dt.UTC).date() if born else None
    try:
        assigned: uuid.UUID | None = uuid.UUID(str(data.get("assignedUserId")))
    except ValueError:
        assigned = None
    return {
        "encounter_identifier": _text(
            encounter.get("identifier"), "encounter_identifier"
        ),
        "encounter_status": _text(encounter.get("status"), "encounter_status"),
        "encounter_type": _text(encounter.get("type"), "encounter_type"),
        "encounter_title": _text(encounter.get("title"), "encounter_title"),
        "encounter_started_at": parse_rfc3339(period.get("startedAt")),
        "encounter_ended_at": parse_rfc3339(period.get("endedAt")),
        "patient_identifier": _text(patient.get("identifier"), "patient_identifier"),
        "patient_name": _text(patient.get("name"), "patient_name"),
        "patient_gender": _text(patient.get("gender"), "patient_gender"),
        "patient_birth_date": born_day,
        "patient_pronouns": _text(patient.get("pronouns"), "patient_pronouns"),
        "assigned_user_id": assigned,
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _shown(value: Any) -> Any:
    """A field's value as the change history keeps it (JSON)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date | uuid.UUID):
        return str(value)
    return value


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
        ours: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        theirs: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        for name in FOLLOWED_FIELDS:
            value = held[name]
            if name == "encounter_started_at" and value is None:
                continue
            old = getattr(locked, name)
            if old == value:
                continue
            before, after = ours if name in mine else theirs
            before[name], after[name] = _shown(old), _shown(value)
            setattr(locked, name, value)
        changed = [*ours[1], *theirs[1]]
        locked.corti_state = data
        locked.corti_read_at = now
        locked.corti_gone_at = None
        locked.save(
            update_fields=[
                *changed,
                "corti_state",
                "corti_read_at",
                "corti_gone_at",
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


def mark_gone(
    record: Interaction, *, request_id: str = "", now: dt.datetime | None = None
) -> bool:
    """Corti answered 404 for the record's interaction: mark it gone (once)."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = Interaction.objects.filter(
            pk=record.pk, corti_gone_at__isnull=True
        ).update(corti_gone_at=now, corti_read_at=now, updated_at=now)
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
    if not _followable(record):
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


def refresh_due(record: Interaction, now: dt.datetime | None = None) -> bool:
    """Whether the page should have the record read again in the background."""
    if not _followable(record) or record.corti_gone_at or record.deleted_at:
        return False
    now = now or timezone.now()
    age = dt.timedelta(seconds=settings.INTAKE_REFRESH_SECONDS)
    return record.corti_read_at is None or record.corti_read_at <= now - age


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
    unsettled = list(
        Interaction.objects.filter(
            outcome__in=[Outcome.PENDING, Outcome.UNKNOWN], interaction_id__isnull=True
        )
    )
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
                if any(reconciliation.matches(r.request_body, item) for r in unsettled):
                    summary.left_for_settling += 1
                    continue
                importer = importer or import_user()
                if _import(item, importer):
                    summary.new += 1
                else:
                    summary.unchanged += 1
                continue
            if not _followable(record):
                summary.unchanged += 1
                continue
            if apply_corti_state(record, item.raw or {}):
                summary.updated += 1
            else:
                summary.unchanged += 1
    if summary.complete:
        summary.gone = _mark_unlisted_gone(listed)
    return summary


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
        )
        .only("pk", "interaction_id", "outcome")
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
