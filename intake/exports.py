"""The interaction log as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from django.conf import settings

from .fields import DETAIL_FIELDS, TIME_NAMES
from .models import AccessEntry, Interaction

COLUMNS: list[tuple[str, object]] = [
    ("id", "Local ID"),
    ("created_at", "Submitted at"),
    ("submitted_by", "Submitted by"),
    ("outcome", "Outcome"),
    ("interaction_id", "Corti interaction ID"),
    ("websocket_url", "Websocket URL"),
    # The twelve details, as the form labels them (intake.fields).
    *((field.name, field.label) for field in DETAIL_FIELDS),
    ("time_zone", "Time zone"),
    ("error_code", "Error kind"),
    ("error_status", "Error HTTP status"),
    ("error_request_id", "Corti request id"),
    # Its life since: made elsewhere and imported, gone, deleted (and by whom).
    ("imported", "Made outside the dashboard"),
    ("corti_gone_at", "Gone from Corti at"),
    ("deleted_at", "Deleted in Corti at"),
    ("deleted_by", "Deleted by"),
]
# A cell starting with one of these is a formula to Excel, LibreOffice and
# Google Sheets ("=HYPERLINK(...)", "@SUM(...)"); a leading apostrophe makes
# it plain text (OWASP's advice for CSV injection). Decided on the text as a
# spreadsheet may read it: compatibility forms folded (NFKC: a full-width
# U+FF1D is "="), and invisible characters and spaces in front ignored (a
# zero-width space or a byte order mark before "=" hides nothing).
_FORMULA_START = ("=", "+", "-", "@")
_CONTROL_START = ("\t", "\r", "\n")
_TIMES = {"created_at", "corti_gone_at", "deleted_at", *TIME_NAMES}


class _Echo:
    """A file-like object whose write() returns the line, for streaming."""

    def write(self, value: str) -> str:
        return value


def cell(value: object) -> str:
    """One value as CSV text: never a formula, no NUL."""
    text = "" if value is None else str(value)
    text = text.replace("\x00", "")
    if text.startswith(_CONTROL_START) or _as_read(text).startswith(_FORMULA_START):
        text = "'" + text
    return text


def _as_read(text: str) -> str:
    """`text` folded (NFKC), without the invisible characters and spaces in front."""
    folded = unicodedata.normalize("NFKC", text)
    start = 0
    while start < len(folded) and _invisible(folded[start]):
        start += 1
    return folded[start:]


# Shown as nothing though not format or control characters: Unicode's default
# ignorables of other categories (combining grapheme joiner, Hangul and
# Khmer fillers, variation selectors, Mongolian free variation selectors)
# and the blank braille pattern.
_BLANK = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
) | frozenset(chr(c) for c in range(0xFE00, 0xFE10))


def _invisible(char: str) -> bool:
    return (
        char.isspace() or unicodedata.category(char) in ("Cf", "Cc") or char in _BLANK
    )


def _value(
    record: Interaction, name: str, zone: ZoneInfo, names: dict[int, str]
) -> object:
    if name == "submitted_by":
        return record.submitted_by.get_username()
    if name == "imported":
        return "yes" if record.imported else ""
    if name == "deleted_by":
        return _username(record.deleted_by_id, names)
    value = getattr(record, name)
    if name in _TIMES and value is not None:
        # Clinic time with its UTC offset: unambiguous in a spreadsheet.
        return value.astimezone(zone).isoformat(timespec="seconds")
    return value


def interactions_csv(records: Iterable[Interaction]) -> Iterator[str]:
    """CSV lines (header first) for the given records, one at a time."""
    writer = csv.writer(_Echo())
    zone = ZoneInfo(settings.TIME_ZONE)
    # A byte order mark so spreadsheet programs read the file as UTF-8.
    yield "\ufeff" + writer.writerow([str(title) for _, title in COLUMNS])
    # Who deleted: few people, each read once (no join on every row).
    names: dict[int, str] = {}
    for record in records:
        yield writer.writerow(
            [cell(_value(record, name, zone, names)) for name, _ in COLUMNS]
        )


def _username(user_id: int | None, names: dict[int, str]) -> str:
    if user_id is None:
        return ""
    if user_id not in names:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).first()
        names[user_id] = user.get_username() if user else str(user_id)
    return names[user_id]


#: The access trail's columns in its CSV export.
ACCESS_COLUMNS = (
    ("at", "When"),
    ("action", "Action"),
    ("username", "User"),
    ("address", "From address"),
    ("patient_identifier", "Patient identifier"),
    ("interaction", "Submission"),
    ("detail", "Detail"),
)


def access_csv(entries: Iterable[AccessEntry]) -> Iterator[str]:
    """CSV lines (header first) of access entries, one at a time."""
    import json

    writer = csv.writer(_Echo())
    zone = ZoneInfo(settings.TIME_ZONE)
    yield "\ufeff" + writer.writerow([title for _, title in ACCESS_COLUMNS])
    for entry in entries:
        yield writer.writerow(
            [
                cell(entry.at.astimezone(zone).isoformat(timespec="seconds")),
                cell(entry.get_action_display()),
                cell(entry.username),
                cell(entry.address or ""),
                cell(entry.patient_identifier),
                cell(str(entry.interaction_id or "")),
                cell(json.dumps(entry.detail, ensure_ascii=False, sort_keys=True)),
            ]
        )
