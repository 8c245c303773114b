"""The typed request values: datetime formatting and the JSON they produce."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from intake.corti.types import (
    Encounter,
    EncounterStatus,
    EncounterType,
    Gender,
    InteractionCreate,
    Patient,
    to_rfc3339_utc,
)

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        # Summer time, CEST = UTC+2.
        (dt.datetime(2026, 7, 1, 14, 30, tzinfo=COPENHAGEN), "2026-07-01T12:30:00Z"),
        # Winter time, CET = UTC+1.
        (dt.datetime(2026, 1, 15, 14, 30, tzinfo=COPENHAGEN), "2026-01-15T13:30:00Z"),
        # First instant of summer time: 02:00 CET became 03:00 CEST.
        (dt.datetime(2026, 3, 29, 3, 30, tzinfo=COPENHAGEN), "2026-03-29T01:30:00Z"),
        # The repeated hour in October: fold picks the first or the second 02:30.
        (
            dt.datetime(2026, 10, 25, 2, 30, tzinfo=COPENHAGEN, fold=0),
            "2026-10-25T00:30:00Z",
        ),
        (
            dt.datetime(2026, 10, 25, 2, 30, tzinfo=COPENHAGEN, fold=1),
            "2026-10-25T01:30:00Z",
        ),
        # The local date differs from the UTC date just after midnight.
        (dt.datetime(2026, 1, 1, 0, 15, tzinfo=COPENHAGEN), "2025-12-31T23:15:00Z"),
    ],
)
def test_aware_copenhagen_time_is_converted_to_utc_z_time(local, expected):
    assert to_rfc3339_utc(local) == expected


def test_other_fixed_offsets_are_converted_to_utc():
    new_york_winter = dt.timezone(dt.timedelta(hours=-5))
    value = dt.datetime(2026, 2, 1, 22, 45, 10, tzinfo=new_york_winter)
    assert to_rfc3339_utc(value) == "2026-02-02T03:45:10Z"


def test_utc_time_is_kept_and_fractions_of_a_second_are_dropped():
    value = dt.datetime(2026, 3, 29, 1, 30, 5, 999_999, tzinfo=dt.UTC)
    assert to_rfc3339_utc(value) == "2026-03-29T01:30:05Z"


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        to_rfc3339_utc(dt.datetime(2026, 3, 29, 1, 30))


def test_encounter_with_naive_start_cannot_be_serialised():
    encounter = Encounter(
        identifier="ENC-1",
        status=EncounterStatus.PLANNED,
        type=EncounterType.CONSULTATION,
        started_at=dt.datetime(2026, 3, 29, 1, 30),
    )
    with pytest.raises(ValueError, match="naive datetime"):
        encounter.to_json()


@pytest.mark.parametrize(
    ("birth_date", "expected"),
    [
        (dt.date(1980, 2, 29), "1980-02-29T00:00:00Z"),
        (dt.date(2001, 12, 31), "2001-12-31T00:00:00Z"),
        (dt.date(1900, 1, 1), "1900-01-01T00:00:00Z"),
    ],
)
def test_birth_date_is_midnight_utc_of_the_date(birth_date, expected):
    patient = Patient(identifier="PAT-1", birth_date=birth_date)
    assert patient.to_json() == {"identifier": "PAT-1", "birthDate": expected}


def test_encounter_json_omits_empty_title_and_end():
    encounter = Encounter(
        identifier="ENC-1",
        status=EncounterStatus.ON_HOLD,
        type=EncounterType.EMERGENCY,
        started_at=dt.datetime(2026, 7, 1, 9, 0, tzinfo=COPENHAGEN),
        ended_at=None,
        title="",
    )
    assert encounter.to_json() == {
        "identifier": "ENC-1",
        "status": "on-hold",
        "type": "emergency",
        "period": {"startedAt": "2026-07-01T07:00:00Z"},
    }


def test_encounter_json_carries_every_field_when_set():
    encounter = Encounter(
        identifier="ENC-2",
        status=EncounterStatus.COMPLETED,
        type=EncounterType.FIRST_CONSULTATION,
        started_at=dt.datetime(2026, 1, 15, 9, 0, tzinfo=COPENHAGEN),
        ended_at=dt.datetime(2026, 1, 15, 9, 40, tzinfo=COPENHAGEN),
        title="Follow-up",
    )
    assert encounter.to_json() == {
        "identifier": "ENC-2",
        "status": "completed",
        "type": "first_consultation",
        "period": {
            "startedAt": "2026-01-15T08:00:00Z",
            "endedAt": "2026-01-15T08:40:00Z",
        },
        "title": "Follow-up",
    }


def test_empty_encounter_identifier_is_left_out_of_the_json():
    encounter = Encounter(
        identifier="",
        status=EncounterStatus.PLANNED,
        type=EncounterType.INPATIENT,
        started_at=dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC),
    )
    assert encounter.to_json() == {
        "status": "planned",
        "type": "inpatient",
        "period": {"startedAt": "2026-01-15T09:00:00Z"},
    }


def test_patient_json_omits_empty_optionals():
    patient = Patient(
        identifier="PAT-1", name="", gender=None, birth_date=None, pronouns=""
    )
    assert patient.to_json() == {"identifier": "PAT-1"}


def test_patient_json_carries_every_field_when_set():
    patient = Patient(
        identifier="PAT-2",
        name="Alex Example",
        gender=Gender.UNKNOWN,
        birth_date=dt.date(1975, 6, 2),
        pronouns="they/them",
    )
    assert patient.to_json() == {
        "identifier": "PAT-2",
        "name": "Alex Example",
        "gender": "unknown",
        "birthDate": "1975-06-02T00:00:00Z",
        "pronouns": "they/them",
    }


def test_interaction_json_omits_missing_patient_and_assigned_user():
    body = InteractionCreate(
        encounter=Encounter(
            identifier="ENC-3",
            status=EncounterStatus.IN_PROGRESS,
            type=EncounterType.OUTPATIENT,
            started_at=dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
        )
    ).to_json()
    assert body == {
        "encounter": {
            "identifier": "ENC-3",
            "status": "in-progress",
            "type": "outpatient",
            "period": {"startedAt": "2026-03-29T01:30:00Z"},
        }
    }


def test_interaction_json_carries_assigned_user_as_string_uuid():
    user = uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479")
    body = InteractionCreate(
        assigned_user_id=user,
        encounter=Encounter(
            identifier="ENC-4",
            status=EncounterStatus.CANCELLED,
            type=EncounterType.CONSULTATION,
            started_at=dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
        ),
        patient=Patient(identifier="PAT-4", gender=Gender.FEMALE),
    ).to_json()
    assert body == {
        "assignedUserId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "encounter": {
            "identifier": "ENC-4",
            "status": "cancelled",
            "type": "consultation",
            "period": {"startedAt": "2026-03-29T01:30:00Z"},
        },
        "patient": {"identifier": "PAT-4", "gender": "female"},
    }


def test_enum_values_are_the_wire_strings():
    assert [str(s) for s in EncounterStatus] == [
        "planned",
        "in-progress",
        "on-hold",
        "completed",
        "cancelled",
        "deleted",
    ]
    assert [str(t) for t in EncounterType] == [
        "first_consultation",
        "consultation",
        "emergency",
        "inpatient",
        "outpatient",
    ]
    assert [str(g) for g in Gender] == ["male", "female", "unknown", "other"]
