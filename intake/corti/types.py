"""Typed request and response values of the Corti interactions API."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from intake.enums import EncounterStatus, EncounterType, Gender

__all__ = [
    "Encounter",
    "EncounterStatus",
    "EncounterType",
    "Gender",
    "InteractionCreate",
    "InteractionCreated",
    "InteractionListed",
    "InteractionUpdate",
    "Patient",
    "parse_rfc3339",
    "to_rfc3339_utc",
]


def to_rfc3339_utc(value: dt.datetime) -> str:
    """Format an aware datetime as UTC RFC 3339, e.g. 2026-03-29T01:30:00Z."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: Corti needs an aware datetime")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _drop_empty(mapping: dict[str, Any]) -> dict[str, Any]:
    # Optional fields that are empty are left out, never sent as "" or null.
    return {k: v for k, v in mapping.items() if v not in (None, "", {}, [])}


@dataclass(frozen=True, kw_only=True)
class Encounter:
    identifier: str
    status: EncounterStatus
    type: EncounterType
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        period = _drop_empty(
            {
                "startedAt": to_rfc3339_utc(self.started_at),
                "endedAt": to_rfc3339_utc(self.ended_at) if self.ended_at else None,
            }
        )
        return _drop_empty(
            {
                "identifier": self.identifier,
                "status": str(self.status),
                "type": str(self.type),
                "period": period,
                "title": self.title,
            }
        )


@dataclass(frozen=True, kw_only=True)
class Patient:
    identifier: str
    name: str = ""
    gender: Gender | None = None
    birth_date: dt.date | None = None
    pronouns: str = ""

    def to_json(self) -> dict[str, Any]:
        birth = None
        if self.birth_date:
            # The contract types birthDate as date-time: midnight UTC of the date.
            birth = f"{self.birth_date.isoformat()}T00:00:00Z"
        return _drop_empty(
            {
                "identifier": self.identifier,
                "name": self.name,
                "gender": str(self.gender) if self.gender else None,
                "birthDate": birth,
                "pronouns": self.pronouns,
            }
        )


@dataclass(frozen=True, kw_only=True)
class InteractionCreate:
    """The body of POST /interactions/."""

    encounter: Encounter
    patient: Patient | None = None
    assigned_user_id: uuid.UUID | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_empty(
            {
                "assignedUserId": str(self.assigned_user_id)
                if self.assigned_user_id
                else None,
                "encounter": self.encounter.to_json(),
                "patient": self.patient.to_json() if self.patient else None,
            }
        )


@dataclass(frozen=True, kw_only=True)
class InteractionCreated:
    """The answer to POST /interactions/."""

    interaction_id: uuid.UUID
    websocket_url: str
    request_id: str = ""


def parse_rfc3339(value: Any) -> dt.datetime | None:
    """Read an RFC 3339 time as Corti writes it (Z or an offset); None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


@dataclass(frozen=True, kw_only=True)
class InteractionListed:
    """One interaction as Corti shows it: listed (`GET /interactions/`), read
    (`GET /interactions/{id}`) or in the answer to a `PATCH`.

    `encounter` and `patient` stay as Corti sent them (JSON objects): they are
    compared with what was sent, never re-sent.
    """

    id: uuid.UUID
    websocket_url: str
    created_at: dt.datetime | None
    encounter: dict[str, Any]
    patient: dict[str, Any] | None
    assigned_user_id: str = ""
    updated_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    #: The whole object as it came (unknown fields kept, as Corti's change
    #: policy asks of clients).
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> InteractionListed:
        """Raise ValueError when `data` is not a listed interaction."""
        if not isinstance(data, dict):
            raise ValueError("a listed interaction is not a JSON object")
        encounter = data.get("encounter")
        patient = data.get("patient")
        if not isinstance(encounter, dict):
            raise ValueError("a listed interaction has no encounter object")
        return cls(
            id=uuid.UUID(str(data.get("id") or data.get("interactionId"))),
            websocket_url=str(data.get("websocketUrl") or ""),
            created_at=parse_rfc3339(data.get("createdAt")),
            encounter=encounter,
            patient=patient if isinstance(patient, dict) else None,
            assigned_user_id=str(data.get("assignedUserId") or ""),
            updated_at=parse_rfc3339(data.get("updatedAt") or data.get("lastUpdated")),
            ended_at=parse_rfc3339(data.get("endedAt")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class InteractionUpdate:
    """The body of `PATCH /interactions/{id}`: only what changes.

    `encounter` and `patient` hold the changed fields in the API's own names
    (a period always with its `startedAt`, a patient always with its
    `identifier`: Corti requires them beside any change of theirs). `None`
    in them clears a field; `assigned_user_id` is sent only when given.
    """

    encounter: dict[str, Any] | None = None
    patient: dict[str, Any] | None = None
    assigned_user_id: uuid.UUID | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.assigned_user_id is not None:
            body["assignedUserId"] = str(self.assigned_user_id)
        if self.encounter:
            body["encounter"] = self.encounter
        if self.patient:
            body["patient"] = self.patient
        return body

    def __bool__(self) -> bool:
        return bool(self.to_json())
