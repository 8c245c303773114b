"""Times as people read them: the clinic's wall clock, named by its zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings

# One format on every page: date, 24-hour time, the zone's abbreviation at
# that instant (CET or CEST, so a repeated hour still reads right). Records
# of what the dashboard did (submitted, calls, checks, events) add seconds:
# several can fall in one minute.
CLINIC_TIME_FORMAT = "%Y-%m-%d %H:%M %Z"
CLINIC_TIME_SECONDS_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def clinic_time_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def clinic_time_text(value: dt.datetime, *, seconds: bool = False) -> str:
    """An aware datetime as "2026-11-30 10:02 CET" in the clinic's zone."""
    local = value.astimezone(clinic_time_zone())
    return local.strftime(CLINIC_TIME_SECONDS_FORMAT if seconds else CLINIC_TIME_FORMAT)


def clinic_day_start(day: dt.date) -> dt.datetime:
    """The first instant of `day` on the clinic's clocks, as an aware datetime.

    Midnight's first reading (fold 0): where the clocks go back over midnight
    it is the earlier of the two; where they skip it, the pre-change offset
    puts it at the instant the day's clocks begin (01:00 on the new offset).
    """
    return dt.datetime.combine(day, dt.time(0), tzinfo=clinic_time_zone())


def clinic_wall_clock_folds(naive: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The two readings of a wall-clock time, first (fold 0) and second (fold 1).

    They are one instant except in the repeated hour when the clocks go back.
    """
    zone = clinic_time_zone()
    return naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)


def clinic_time_is_ambiguous(naive: dt.datetime) -> bool:
    """Whether the clinic's clocks show `naive` twice (the clocks go back)."""
    first, second = clinic_wall_clock_folds(naive)
    if first.utcoffset() == second.utcoffset():
        return False
    # The two readings differ in the skipped hour too, where neither exists.
    try:
        back = first.astimezone(dt.UTC).astimezone(clinic_time_zone())
    except OverflowError:
        return False
    return back.replace(tzinfo=None) == naive
