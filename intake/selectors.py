"""Reads: looking submissions up."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import connections
from django.db.models import Case, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from intake import search, search_index
from intake.models import (
    SORTED_COLUMNS,
    CortiCall,
    Interaction,
    InteractionChange,
    InteractionEvent,
    Recording,
)

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
            words = search.words(q)
            for word in words:
                match &= Q(search_text__contains=word)
            # SQLite's trigram index narrows the rows first; each row's own
            # text is still checked above.
            if match:
                vendor = connections[queryset.db].vendor
                match &= search_index.matches(words, vendor=vendor)
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
    #: Cursors (HistoryCursor.text) for the pages before and after this one
    #: in the list's order ("newer" and "older" in the default order).
    newer: str | None
    older: str | None


@dataclass(frozen=True)
class HistorySort:
    """One order of the history: a column (or none: submission time alone),
    then submission time and the record id, so every row has one place.

    Each order is an index range (Interaction.Meta.indexes) read forwards or
    backwards: a column A to Z lists each value's rows newest first, and its
    reverse, Z to A, is exactly that list backwards (oldest first in each).
    """

    #: In the address: ?sort=<key>.
    key: str
    #: The model field sorted by first; None for submission time alone.
    column: str | None
    descending: bool
    #: How the table's caption says it ("newest first").
    words: str

    def fields(self) -> list[tuple[str, bool]]:
        """(field, descending) from first to last."""
        ties = not self.descending if self.column else self.descending
        first = [(self.column, self.descending)] if self.column else []
        return [*first, ("created_at", ties), ("pk", ties)]

    def order_by(self, *, reverse: bool = False) -> list[str]:
        return [
            f"-{name}" if descending != reverse else name
            for name, descending in self.fields()
        ]


DEFAULT_SORT = "newest"
#: How a sorted column is named in the table's caption, where not its key.
_COLUMN_NOUNS = {
    "encounter": "encounter identifier",
    "patient": "patient identifier",
}
#: The history's orders, by their key in the address. Columns sort by the
#: stored value, which for status, type and outcome is also their English
#: names' alphabetical order.
SORTS: dict[str, HistorySort] = {
    sort.key: sort
    for sort in (
        HistorySort("newest", None, True, "newest first"),
        HistorySort("oldest", None, False, "oldest first"),
        *(
            HistorySort(sort_key, column, descending, f"by {noun}, {way}")
            for key, column in SORTED_COLUMNS.items()
            for noun in [_COLUMN_NOUNS.get(key, key)]
            for sort_key, descending, way in (
                (key, False, "A to Z"),
                (f"-{key}", True, "Z to A"),
            )
        ),
    )
}


@dataclass(frozen=True)
class HistoryCursor:
    """A row's place in the history: (created_at, pk).

    In an order by a column the row's column value is not in the address
    (it can be a patient identifier): the view keeps it in the session
    (`value`), else it is read again by the row's id (HistoryCursor.values).
    """

    created_at: dt.datetime
    pk: uuid.UUID
    #: The row's value of the sorted column when its page was shown (kept
    #: by the view, never in the address); None: read the row again.
    value: str | None = None

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

    def values(self, sort: HistorySort) -> dict[str, object] | None:
        """The row's values of `sort`'s fields; None when the row is gone.

        A column's value as the page showed it when the view kept it, so a
        row changed since (a refresh from Corti, say) does not move the page
        boundary; else as the row holds it now.
        """
        if sort.column is None:
            return {"created_at": self.created_at, "pk": self.pk}
        if self.value is not None:
            return {
                sort.column: self.value,
                "created_at": self.created_at,
                "pk": self.pk,
            }
        rows = Interaction.objects.filter(pk=self.pk).order_by()
        found = list(rows.values(sort.column, "created_at", "pk")[:1])
        return found[0] if found else None


def _beyond(sort: HistorySort, values: dict[str, object], *, reverse: bool) -> Q:
    """The rows after `values` in `sort` (before them when `reverse`).

    The leading bound starts the index range at the cursor; the OR only
    sorts out the rows that share its first values.
    """
    fields = sort.fields()
    after = Q()
    same = Q()
    for name, descending in fields:
        way = "lt" if descending != reverse else "gt"
        step = same & Q(**{f"{name}__{way}": values[name]})
        after = after | step if after else step
        same &= Q(**{name: values[name]})
    first, descending = fields[0]
    way = "lte" if descending != reverse else "gte"
    return Q(**{f"{first}__{way}": values[first]}) & after


def interaction_page(
    queryset: QuerySet[Interaction],
    *,
    size: int,
    sort: HistorySort = SORTS[DEFAULT_SORT],
    older_than: HistoryCursor | None = None,
    newer_than: HistoryCursor | None = None,
) -> HistoryPage:
    """`size` rows of `queryset` in `sort`'s order after (`older_than`) or
    before (`newer_than`) a cursor, by keyset.

    No OFFSET and no count: each page is an index range from its cursor, so
    page 10,000 costs what page 1 does, and rows added meanwhile never make a
    row repeat or vanish between pages. A cursor whose row is gone (or
    unreadable) gives the first page.
    """
    if newer_than is not None:
        values = newer_than.values(sort)
        if values is None:
            return interaction_page(queryset, size=size, sort=sort)
        before = queryset.filter(_beyond(sort, values, reverse=True)).order_by(
            *sort.order_by(reverse=True)
        )
        rows = list(before[: size + 1])
        if not rows:
            # Nothing before the cursor: the start of the list.
            return interaction_page(queryset, size=size, sort=sort)
        more = len(rows) > size
        rows = rows[:size][::-1]
        # Fewer than a page before it (rows left the filter meanwhile, say):
        # those alone, the start of the list, so none repeats from the page
        # the reader came from.
        return HistoryPage(
            rows=rows,
            newer=HistoryCursor.of(rows[0]).text if more else None,
            older=HistoryCursor.of(rows[-1]).text,
        )
    if older_than is not None:
        values = older_than.values(sort)
        if values is None:
            return interaction_page(queryset, size=size, sort=sort)
        queryset = queryset.filter(_beyond(sort, values, reverse=False))
    rows = list(queryset.order_by(*sort.order_by())[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    newer_start = None
    if older_than is not None:
        # Rows before this page: from its first row (or, on a page left
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


def interaction_changes(*, record: Interaction) -> QuerySet[InteractionChange]:
    """A created interaction's changes (who, when, before and after), oldest first."""
    return InteractionChange.objects.filter(interaction=record).select_related("by")


def interaction_recordings(*, record: Interaction) -> QuerySet[Recording]:
    """A created interaction's recordings (who, consent, length), oldest first."""
    return record.recordings.select_related("started_by").order_by("started_at", "id")


def interaction_events(*, record: Interaction) -> QuerySet[InteractionEvent]:
    """What else happened to a submission (refused reuses, flags), oldest first."""
    return record.events.select_related("user").order_by("at", "id")


def users_by_name() -> QuerySet[User]:
    """Every user, by username (the history's "Submitted by" for admins)."""
    return User.objects.order_by("username").only("pk", "username")


def submissions_per_day(
    *, first_day: dt.date, days: int, by: str | tuple[str, ...]
) -> Any:
    """Submissions per clinic day from `first_day` for `days` days, counted
    by `by` ("encounter_type", "outcome", or a tuple of such fields: then a
    dict of one such count per field, from one pass over the rows).

    One grouped query over the days' range of the overview's covering index
    (interaction_overview_idx). On SQLite the day is not worked out per row
    (Django's time zone functions are Python there, called once a row): rows
    are counted per UTC hour from the stored text, and each hour goes to its
    clinic day here; exact whenever the clinic's offset is whole hours, as it
    is in the clinic zones of Europe and the Americas. Other zones take the
    per-row way.
    """
    from django.db import connection
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from intake.clinic_time import clinic_day_start, clinic_time_zone

    fields = (by,) if isinstance(by, str) else tuple(by)
    if not set(fields) <= OVERVIEW_FIELDS:
        raise ValueError(f"not an overview field: {fields}")
    zone = clinic_time_zone()
    start = clinic_day_start(first_day)
    end = clinic_day_start(first_day + dt.timedelta(days=days))
    # Submissions made here: not interactions imported from elsewhere.
    window = Interaction.objects.filter(
        created_at__gte=start, created_at__lt=end, imported=False
    )
    counted: dict[str, dict[dt.date, dict[str, int]]] = {
        name: {first_day + dt.timedelta(days=i): {} for i in range(days)}
        for name in fields
    }

    def add(day: dt.date, row: dict[str, Any]) -> None:
        for name in fields:
            per_day = counted[name].setdefault(day, {})
            key = row[name] if isinstance(row[name], str) else str(row[name])
            per_day[key] = per_day.get(key, 0) + row["n"]

    if connection.vendor == "sqlite" and _whole_hour_offsets(zone, first_day, days):
        # Each hour's day worked out once (a few thousand hours, many rows).
        days_of: dict[str, dt.date] = {}
        for row in _sqlite_hours(start, end, fields):
            day = days_of.get(row["hour"])
            if day is None:
                hour = row["hour"]  # "2026-03-29 01": Django's stored text
                at = dt.datetime(
                    int(hour[0:4]),
                    int(hour[5:7]),
                    int(hour[8:10]),
                    int(hour[11:13]),
                    tzinfo=dt.UTC,
                )
                day = at.astimezone(zone).date()
                days_of[hour] = day
            add(day, row)
    else:
        rows = (
            window.annotate(day=TruncDate("created_at", tzinfo=zone))
            .values("day", *fields)
            .annotate(n=Count("*"))
            .order_by()
        )
        for row in rows:
            add(row["day"], row)
    return counted[fields[0]] if isinstance(by, str) else counted


#: What the overview counts by (columns of interaction_overview_idx).
OVERVIEW_FIELDS = frozenset({"encounter_type", "outcome"})


def _sqlite_hours(
    start: dt.datetime, end: dt.datetime, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Rows per UTC hour (and `fields`) of submissions made here from `start`
    to `end`, read from the overview's covering index alone (SQLite's planner
    would otherwise take the history index and read every row's page)."""
    from django.db import connection

    columns = ", ".join(f'"{name}"' for name in fields)
    sql = (
        f"SELECT substr(created_at, 1, 13) AS hour, {columns}, COUNT(*) "  # noqa: S608
        "FROM intake_interaction INDEXED BY interaction_overview_idx "
        "WHERE created_at >= %s AND created_at < %s AND imported = 0 "
        f"GROUP BY 1, {', '.join(str(i + 2) for i in range(len(fields)))}"
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(sql, [adapt(start), adapt(end)])
        return [
            {"hour": row[0], **dict(zip(fields, row[1:-1], strict=True)), "n": row[-1]}
            for row in cursor.fetchall()
        ]


def _whole_hour_offsets(zone: dt.tzinfo, first_day: dt.date, days: int) -> bool:
    """Whether `zone` is a whole number of hours from UTC all through the
    days (and so every clinic day starts on a UTC hour)."""
    from intake.clinic_time import clinic_day_start

    for i in range(days + 1):
        offset = clinic_day_start(first_day + dt.timedelta(days=i)).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
    return True


def submissions_per_user(*, first_day: dt.date, days: int) -> dict[str, int]:
    """Submissions per submitting user (username) over those clinic days."""
    from django.db.models import Count

    from intake.clinic_time import clinic_day_start

    start = clinic_day_start(first_day)
    end = clinic_day_start(first_day + dt.timedelta(days=days))
    # Grouped by id over the covering index, the names looked up after.
    rows = (
        Interaction.objects.filter(
            created_at__gte=start, created_at__lt=end, imported=False
        )
        .values("submitted_by_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    counts = {row["submitted_by_id"]: row["n"] for row in rows}
    names = dict(User.objects.filter(pk__in=counts).values_list("pk", "username"))
    return {names[pk]: n for pk, n in counts.items() if pk in names}


def profile_corti_user_id(*, user: Any) -> uuid.UUID | None:
    """The Corti user ID `user` keeps in their profile, if any."""
    from intake.models import Profile

    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Profile.objects.filter(user=user)
        .values_list("corti_user_id", flat=True)
        .first()
    )


def people_with_profiles() -> list[tuple[User, uuid.UUID | None]]:
    """Every active user by name, with the Corti user ID they keep."""
    from intake.models import Profile

    kept = dict(Profile.objects.values_list("user_id", "corti_user_id"))
    return [
        (person, kept.get(person.pk))
        for person in User.objects.filter(is_active=True).order_by("username")
    ]


def my_day(*, user: User, day: dt.date) -> list[Interaction]:
    """`user`'s submissions of one clinic day: planned and in progress
    first, then the rest; newest first within each."""
    from django.db.models import IntegerField

    from intake.clinic_time import clinic_day_start

    open_first = Case(
        When(encounter_status__in=["planned", "in-progress"], then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return list(
        Interaction.objects.filter(
            submitted_by=user,
            created_at__gte=clinic_day_start(day),
            created_at__lt=clinic_day_start(day + dt.timedelta(days=1)),
        )
        .select_related("submitted_by")
        .order_by(open_first, "-created_at", "-pk")
    )
