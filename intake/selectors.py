"""Reads: looking submissions up."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Case, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from intake import search
from intake.models import CortiCall, Interaction, InteractionEvent

Outcome = Interaction.Outcome
# interaction_duplicate_of's rank of a row that only looks like one.
NOT_A_DUPLICATE = 3


def interaction_list(
    *,
    q: str = "",
    encounter_status: str = "",
    encounter_type: str = "",
    outcome: str = "",
    submitted_from: dt.datetime | None = None,
    submitted_before: dt.datetime | None = None,
    submitted_by: int | None = None,
    ids_only: bool = False,
) -> QuerySet[Interaction]:
    """Submissions newest first, narrowed by a search text and filters.

    `submitted_from` (inclusive) and `submitted_before` (exclusive) are
    instants (a clinic day's bounds: intake.clinic_time.clinic_day_start);
    `submitted_by` a user's id.

    `q` matches when each of its words (folded: intake.search) is part of a
    submission's identifiers, patient name or title; or when it is the start
    (8+ hex characters) of a Corti interaction ID or a local record id.
    `ids_only`: `q` is searched as the start (4+ hex characters) of an ID
    only, never as text (see intake.search.TEXT_AND_ID_PREFIX).
    """
    queryset = Interaction.objects.select_related("submitted_by").order_by(
        "-created_at", "-pk"
    )
    q = q.strip()
    if q:
        match = Q()
        if not ids_only:
            for word in search.words(q):
                match &= Q(search_text__contains=word)
        shortest = search.MIN_ID_PREFIX if ids_only else search.TEXT_AND_ID_PREFIX
        ids = search.id_prefix_range(q, shortest=shortest)
        if ids is not None:
            low, high = ids
            for field in ("interaction_id", "pk"):
                within = Q(**{f"{field}__gte": low})
                if high is not None:
                    within &= Q(**{f"{field}__lt": high})
                match = match | within if match else within
        # A search of spaces and marks alone matches everything, as no search;
        # an ID search of what is no ID prefix matches nothing.
        if match:
            queryset = queryset.filter(match)
        elif ids_only:
            queryset = queryset.none()
    if encounter_status:
        queryset = queryset.filter(encounter_status=encounter_status)
    if encounter_type:
        queryset = queryset.filter(encounter_type=encounter_type)
    if outcome:
        queryset = queryset.filter(outcome=outcome)
    if submitted_from is not None:
        queryset = queryset.filter(created_at__gte=submitted_from)
    if submitted_before is not None:
        queryset = queryset.filter(created_at__lt=submitted_before)
    if submitted_by is not None:
        queryset = queryset.filter(submitted_by_id=submitted_by)
    return queryset


#: Counted at most: beyond it a list says "more than", without counting on.
COUNT_LIMIT = 1000


def count_up_to(queryset: QuerySet[Interaction], limit: int = COUNT_LIMIT) -> int:
    """How many rows `queryset` has, reading at most limit + 1 of them."""
    return queryset.order_by()[: limit + 1].count()


@dataclass(frozen=True)
class HistoryPage:
    """One page of the history, and where the pages beside it start."""

    rows: list[Interaction]
    #: Cursors (HistoryCursor.text) for the pages of newer and older rows.
    newer: str | None
    older: str | None


@dataclass(frozen=True)
class HistoryCursor:
    """A row's place in the newest-first order: (created_at, pk)."""

    created_at: dt.datetime
    pk: uuid.UUID

    @property
    def text(self) -> str:
        stamp = int(self.created_at.timestamp() * 1_000_000)
        return f"{stamp}.{self.pk.hex}"

    @classmethod
    def of(cls, row: Interaction) -> HistoryCursor:
        return cls(row.created_at, row.pk)

    @classmethod
    def parse(cls, text: str | None) -> HistoryCursor | None:
        """None for anything that is not a cursor this module wrote."""
        stamp, _, pk = (text or "").partition(".")
        try:
            micros = int(stamp)
            at = dt.datetime.fromtimestamp(micros // 1_000_000, tz=dt.UTC)
            return cls(at.replace(microsecond=micros % 1_000_000), uuid.UUID(hex=pk))
        except (ValueError, OverflowError, OSError):
            return None


def interaction_page(
    queryset: QuerySet[Interaction],
    *,
    size: int,
    older_than: HistoryCursor | None = None,
    newer_than: HistoryCursor | None = None,
) -> HistoryPage:
    """`size` rows of `queryset` (newest first) after a cursor, by keyset.

    No OFFSET and no count: each page is an index range from its cursor, so
    page 10,000 costs what page 1 does, and rows added meanwhile never make a
    row repeat or vanish between pages.
    """
    if newer_than is not None:
        # The leading bound starts the index range at the cursor; the OR
        # only sorts out the rows of the cursor's own instant.
        newer = queryset.filter(
            Q(created_at__gte=newer_than.created_at),
            Q(created_at__gt=newer_than.created_at) | Q(pk__gt=newer_than.pk),
        ).order_by("created_at", "pk")
        rows = list(newer[: size + 1])
        if len(rows) <= size:
            # Back at the newest rows: the first page, full.
            return interaction_page(queryset, size=size)
        rows = rows[:size][::-1]
        return HistoryPage(
            rows=rows,
            newer=HistoryCursor.of(rows[0]).text,
            older=HistoryCursor.of(rows[-1]).text,
        )
    if older_than is not None:
        queryset = queryset.filter(
            Q(created_at__lte=older_than.created_at),
            Q(created_at__lt=older_than.created_at) | Q(pk__lt=older_than.pk),
        )
    rows = list(queryset.order_by("-created_at", "-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    newer_start = None
    if older_than is not None:
        # Rows newer than this page: from its first row (or, on a page left
        # empty, from the cursor it was asked with).
        newer_start = HistoryCursor.of(rows[0]) if rows else older_than
    return HistoryPage(
        rows=rows,
        newer=newer_start.text if newer_start else None,
        older=HistoryCursor.of(rows[-1]).text if more else None,
    )


def interaction_get(*, record_id: uuid.UUID) -> Interaction:
    """One submission, by its local id or its Corti interaction ID; 404 if none."""
    return get_object_or_404(
        Interaction.objects.select_related("submitted_by"),
        Q(pk=record_id) | Q(interaction_id=record_id),
    )


def interaction_by_submission_key(*, key: uuid.UUID) -> Interaction | None:
    """The submission a rendered form created, if it was sent."""
    return Interaction.objects.filter(submission_key=key).first()


def interaction_duplicate_of(
    *,
    encounter_identifier: str,
    patient_identifier: str,
    started_at: dt.datetime,
    window: dt.timedelta,
    unless_key: uuid.UUID | None = None,
) -> Interaction | None:
    """The newest created interaction this one may duplicate, if any.

    The same encounter identifier; else the same patient with an encounter
    started within `window` of this one. None when a submission with the key
    `unless_key` exists (a form already sent reaches its own record). One
    query: each of its OR-ed terms uses an index (the key's, the encounter
    identifier's, the patient identifier's), and the rank orders the few
    rows found.
    """
    # Each OR-ed term is one indexed column (not "outcome AND ...", which
    # SQLite would answer from the outcome index, a walk over every created
    # row); the rank says which term a row met, and whether it was created.
    created = Q(outcome=Outcome.CREATED)
    same_encounter = Q(encounter_identifier=encounter_identifier)
    match = same_encounter
    ranks = [When(created & same_encounter, then=Value(1))]
    if patient_identifier:
        nearby = Q(
            patient_identifier=patient_identifier,
            encounter_started_at__gt=started_at - window,
            encounter_started_at__lt=started_at + window,
        )
        match |= nearby
        ranks.append(When(created & nearby, then=Value(2)))
    if unless_key is not None:
        match |= Q(submission_key=unless_key)
        ranks.insert(0, When(submission_key=unless_key, then=Value(0)))
    # Two columns, not the whole row: usually nothing is found, and the
    # whole record (a second query) is read only for a duplicate to show.
    found = (
        Interaction.objects.filter(match)
        .annotate(rank=Case(*ranks, default=Value(NOT_A_DUPLICATE)))
        .order_by("rank", "-created_at")
        .values_list("pk", "rank")
        .first()
    )
    if found is None or found[1] in (0, NOT_A_DUPLICATE):
        return None
    return Interaction.objects.select_related("submitted_by").get(pk=found[0])


def interaction_calls(*, record: Interaction) -> QuerySet[CortiCall]:
    """Every call to Corti made for a submission, oldest first."""
    return record.calls.select_related("user").order_by("started_at", "id")


def interaction_events(*, record: Interaction) -> QuerySet[InteractionEvent]:
    """What else happened to a submission (refused reuses, flags), oldest first."""
    return record.events.select_related("user").order_by("at", "id")


def users_by_name() -> QuerySet[User]:
    """Every user, by username (the history's "Submitted by" for admins)."""
    return User.objects.order_by("username").only("pk", "username")


def submissions_per_day(
    *, first_day: dt.date, days: int, by: str
) -> dict[dt.date, dict[str, int]]:
    """Submissions per clinic day from `first_day` for `days` days, counted
    by `by` ("encounter_type", "outcome" or "submitted_by__username").

    One grouped query over the history index's range of those days.
    """
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from intake.clinic_time import clinic_day_start, clinic_time_zone

    start = clinic_day_start(first_day)
    end = clinic_day_start(first_day + dt.timedelta(days=days))
    rows = (
        Interaction.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=clinic_time_zone()))
        .values("day", by)
        .annotate(n=Count("pk"))
        .order_by()
    )
    counted: dict[dt.date, dict[str, int]] = {
        first_day + dt.timedelta(days=i): {} for i in range(days)
    }
    for row in rows:
        counted.setdefault(row["day"], {})[str(row[by])] = row["n"]
    return counted
