"""The twelve details of an interaction, declared once.

A clinician gives them on the intake form; the record keeps them; the
service sends them to Corti; matching compares them with what Corti holds;
the export, the admin and the pages show them. Each of those reads this
module instead of listing the fields again: add a detail here (and to the
model, the form field and the client's request type) and every list follows.

Imports nothing of ours but the shared enums, so models, forms, services and
admin can all use it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrPromise


class Kind(StrEnum):
    """How a detail's value is compared with what Corti holds."""

    TEXT = "text"
    #: A point in time (RFC 3339 in the body): equal when the instants are.
    INSTANT = "instant"
    #: A UUID: equal whatever the letter case; not sent means "anyone".
    UUID = "uuid"


class Section(StrEnum):
    ENCOUNTER = "encounter"
    PATIENT = "patient"


@dataclass(frozen=True)
class DetailField:
    """One detail: its name everywhere (form, model, service), its label,
    and where it sits in Corti's interaction."""

    name: str
    label: StrPromise
    #: The JSON path in the create body and in Corti's interaction.
    path: tuple[str, ...]
    section: Section
    kind: Kind = Kind.TEXT
    #: Where the form shows it (1 first).
    form_position: int = 0
    #: Shown on the form in the closed "More details" group.
    rarely_used: bool = False
    #: A choice whose code (as sent) the pages show beside its label.
    show_code: bool = False

    @property
    def corti_key(self) -> str:
        """The path as Corti's validation errors name it, folded:
        `encounter.period.startedAt` -> `encounterperiodstartedat`."""
        return "".join(self.path).lower()


ENCOUNTER, PATIENT = Section.ENCOUNTER, Section.PATIENT

#: In the order of Corti's body (and of the record's page, the admin and the
#: CSV export's columns). `form_position` is the clinician's order on the
#: form: the encounter as it is known first, then the patient as the EHR
#: shows them, then (closed) what a typical intake never touches.
DETAIL_FIELDS: tuple[DetailField, ...] = (
    DetailField(
        "encounter_identifier",
        _("Encounter identifier"),
        ("encounter", "identifier"),
        ENCOUNTER,
        form_position=1,
    ),
    DetailField(
        "encounter_status",
        _("Encounter status"),
        ("encounter", "status"),
        ENCOUNTER,
        form_position=3,
        show_code=True,
    ),
    DetailField(
        "encounter_type",
        _("Encounter type"),
        ("encounter", "type"),
        ENCOUNTER,
        form_position=2,
        show_code=True,
    ),
    DetailField(
        "encounter_title",
        _("Title"),
        ("encounter", "title"),
        ENCOUNTER,
        form_position=5,
    ),
    DetailField(
        "encounter_started_at",
        _("Started at"),
        ("encounter", "period", "startedAt"),
        ENCOUNTER,
        Kind.INSTANT,
        form_position=4,
    ),
    # A typical intake leaves these two alone: the encounter is usually
    # still going on, and the assigned user is seldom known.
    DetailField(
        "encounter_ended_at",
        _("Ended at"),
        ("encounter", "period", "endedAt"),
        ENCOUNTER,
        Kind.INSTANT,
        form_position=11,
        rarely_used=True,
    ),
    DetailField(
        "assigned_user_id",
        _("Assigned user ID"),
        ("assignedUserId",),
        ENCOUNTER,
        Kind.UUID,
        form_position=12,
        rarely_used=True,
    ),
    DetailField(
        "patient_identifier",
        _("Patient identifier"),
        ("patient", "identifier"),
        PATIENT,
        form_position=6,
    ),
    DetailField(
        "patient_name", _("Patient name"), ("patient", "name"), PATIENT, form_position=7
    ),
    DetailField(
        "patient_gender", _("Gender"), ("patient", "gender"), PATIENT, form_position=9
    ),
    DetailField(
        "patient_birth_date",
        _("Birth date"),
        ("patient", "birthDate"),
        PATIENT,
        Kind.INSTANT,
        form_position=8,
    ),
    DetailField(
        "patient_pronouns",
        _("Pronouns"),
        ("patient", "pronouns"),
        PATIENT,
        form_position=10,
    ),
)
DETAIL_NAMES: tuple[str, ...] = tuple(field.name for field in DETAIL_FIELDS)
BY_NAME: dict[str, DetailField] = {field.name: field for field in DETAIL_FIELDS}
#: The form's order.
FORM_FIELDS: tuple[DetailField, ...] = tuple(
    sorted(DETAIL_FIELDS, key=lambda field: field.form_position)
)

#: Details that need a patient identifier beside them.
PATIENT_DETAIL_NAMES: tuple[str, ...] = tuple(
    f.name for f in DETAIL_FIELDS if f.section == PATIENT and f.path[-1] != "identifier"
)
RARELY_USED_NAMES: tuple[str, ...] = tuple(
    f.name for f in DETAIL_FIELDS if f.rarely_used
)
TIME_NAMES: tuple[str, ...] = tuple(
    f.name for f in DETAIL_FIELDS if f.kind == Kind.INSTANT and f.section == ENCOUNTER
)


def section_names(section: Section) -> tuple[str, ...]:
    """The names of one section's details, in order."""
    return tuple(field.name for field in DETAIL_FIELDS if field.section == section)


#: Corti's validation errors name a field by its JSON path; some name only
#: the object or the period, which the form shows at its first field.
CORTI_FIELD_PATHS: dict[str, str] = {
    **{field.corti_key: field.name for field in DETAIL_FIELDS},
    "encounter": "encounter_identifier",
    "encounterperiod": "encounter_started_at",
    "patient": "patient_identifier",
}


@dataclass(frozen=True, kw_only=True)
class InteractionDetails:
    """What a clinician gave for one interaction, typed as the form cleans it."""

    encounter_identifier: str
    encounter_status: str
    encounter_type: str
    encounter_title: str = ""
    encounter_started_at: dt.datetime
    encounter_ended_at: dt.datetime | None = None
    assigned_user_id: uuid.UUID | None = None
    patient_identifier: str = ""
    patient_name: str = ""
    patient_gender: str = ""
    patient_birth_date: dt.date | None = None
    patient_pronouns: str = ""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> InteractionDetails:
        """The details among `values` (a form's cleaned data, say); the rest
        is ignored."""
        return cls(**{name: values[name] for name in DETAIL_NAMES if name in values})

    @classmethod
    def of(cls, obj: Any) -> InteractionDetails:
        """The details an object holds as attributes (a record)."""
        return cls(**{name: getattr(obj, name) for name in DETAIL_NAMES})

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in DETAIL_NAMES}

    @property
    def has_patient(self) -> bool:
        return bool(self.patient_identifier)


def value_at(body: Mapping[str, Any] | None, path: tuple[str, ...]) -> Any:
    """The value at a JSON path of a body (None when any step is missing)."""
    node: Any = body
    for step in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


def details_from_body(
    body: Mapping[str, Any] | None, *, lengths: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """The twelve details found in an interaction's JSON (a create body, or
    an interaction as Corti shows it), typed as a record keeps them.

    Text is cut to `lengths` (a column's size) where given; a time, date or
    UUID that cannot be read is None, as is anything missing.
    """
    found: dict[str, Any] = {}
    for field in DETAIL_FIELDS:
        value = value_at(body, field.path)
        if field.kind == Kind.TEXT:
            text = "" if value is None else str(value)
            limit = (lengths or {}).get(field.name)
            found[field.name] = text[:limit] if limit else text
        elif field.kind == Kind.UUID:
            try:
                found[field.name] = uuid.UUID(str(value)) if value else None
            except ValueError:
                found[field.name] = None
        else:
            instant = _instant(value)
            if field.name.endswith("_date"):
                # A date travels as midnight UTC of that date.
                day = instant.astimezone(dt.UTC).date() if instant else None
                if day is None and isinstance(value, str):
                    try:
                        day = dt.date.fromisoformat(value[:10])
                    except ValueError:
                        day = None
                found[field.name] = day
            else:
                found[field.name] = instant
    return found


def json_value(value: Any) -> Any:
    """A detail's value as JSON keeps it: times in UTC (ISO 8601), dates and
    UUIDs as text, the rest as is (the change history, the correction form's
    record of what it showed)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date | uuid.UUID):
        return str(value)
    return value


def _instant(value: Any) -> dt.datetime | None:
    """An RFC 3339 time (Z or an offset) as an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


if tuple(f.name for f in dataclasses.fields(InteractionDetails)) != DETAIL_NAMES:
    raise RuntimeError("InteractionDetails and DETAIL_FIELDS list other fields")
if sorted(f.form_position for f in DETAIL_FIELDS) != list(range(1, 13)):
    raise RuntimeError("each detail needs its own form_position, 1 to 12")
