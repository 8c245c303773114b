"""The interactions-create contract as the simulator and the tests enforce it."""

from __future__ import annotations

import copy

import pytest

from intake.corti.types import EncounterStatus, EncounterType, Gender
from sandbox.contract import (
    openapi,
    validate_create_request,
    validation_errors,
)

STATUS_MESSAGE = (
    "must be one of: planned, in-progress, on-hold, completed, cancelled, deleted"
)
TYPE_MESSAGE = (
    "must be one of: first_consultation, consultation, emergency, inpatient, outpatient"
)
GENDER_MESSAGE = "must be one of: male, female, unknown, other"

MINIMAL = {
    "encounter": {"identifier": "ENC-1", "status": "planned", "type": "consultation"}
}
FULL = {
    "assignedUserId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "encounter": {
        "identifier": "ENC-1",
        "status": "in-progress",
        "type": "first_consultation",
        "period": {
            "startedAt": "2026-03-29T01:30:00Z",
            "endedAt": "2026-03-29T02:15:00Z",
        },
        "title": "Knee pain",
    },
    "patient": {
        "identifier": "PAT-1",
        "name": "Alex Example",
        "gender": "other",
        "birthDate": "1980-02-29T00:00:00Z",
        "pronouns": "they/them",
    },
}


def body_with(path: str, value: object) -> dict:
    """FULL with one field (dotted path) replaced; `...` removes it."""
    body = copy.deepcopy(FULL)
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return body


def schema_enum(name: str) -> list[str]:
    return openapi()["components"]["schemas"][name]["enum"]


def test_minimal_body_is_valid():
    assert validate_create_request(MINIMAL) == []


def test_full_body_is_valid():
    assert validate_create_request(FULL) == []


def test_the_client_enums_equal_the_contract_enums():
    assert [str(v) for v in EncounterStatus] == schema_enum(
        "InteractionsEncounterStatusEnum"
    )
    assert [str(v) for v in EncounterType] == schema_enum(
        "InteractionsEncounterTypeEnum"
    )
    assert [str(v) for v in Gender] == schema_enum("InteractionsGenderEnum")


@pytest.mark.parametrize("status", [str(v) for v in EncounterStatus])
def test_every_encounter_status_is_accepted(status):
    assert validate_create_request(body_with("encounter.status", status)) == []


@pytest.mark.parametrize("type_", [str(v) for v in EncounterType])
def test_every_encounter_type_is_accepted(type_):
    assert validate_create_request(body_with("encounter.type", type_)) == []


@pytest.mark.parametrize("gender", [str(v) for v in Gender])
def test_every_gender_is_accepted(gender):
    assert validate_create_request(body_with("patient.gender", gender)) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("encounter.status", "open", STATUS_MESSAGE),
        ("encounter.status", "in_progress", STATUS_MESSAGE),
        ("encounter.status", "Planned", STATUS_MESSAGE),
        ("encounter.type", "followup", TYPE_MESSAGE),
        ("encounter.type", "first-consultation", TYPE_MESSAGE),
        ("patient.gender", "f", GENDER_MESSAGE),
        ("patient.gender", "", GENDER_MESSAGE),
    ],
)
def test_bad_enum_value_is_rejected_at_its_path(path, value, message):
    assert validate_create_request(body_with(path, value)) == [(path, message)]


@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        "f47ac10b58cc4372a5670e02b2c3d479",
        "f47ac10b-58cc-4372-a567-0e02b2c3d47",
        "",
    ],
)
def test_bad_uuid_is_rejected_at_assigned_user_id(value):
    assert validate_create_request(body_with("assignedUserId", value)) == [
        ("assignedUserId", "must be a valid uuid")
    ]


@pytest.mark.parametrize(
    "path",
    ["encounter.period.startedAt", "encounter.period.endedAt", "patient.birthDate"],
)
@pytest.mark.parametrize(
    "value",
    [
        "2026-03-29",
        "2026-03-29T01:30:00",
        "29/03/2026 01:30",
        "2026-02-30T00:00:00Z",
        "yesterday",
    ],
)
def test_bad_date_time_is_rejected_at_its_path(path, value):
    assert validate_create_request(body_with(path, value)) == [
        (path, "must be a valid date-time")
    ]


@pytest.mark.parametrize(
    "value", ["2026-03-29T03:30:00+02:00", "2026-03-29T01:30:00.250Z"]
)
def test_offset_and_fractional_date_times_are_accepted(value):
    assert validate_create_request(body_with("encounter.period.startedAt", value)) == []


def test_encounter_is_required():
    assert validate_create_request({"patient": {"identifier": "P"}}) == [
        ("encounter", "is required")
    ]


def test_encounter_identifier_status_and_type_are_required():
    assert sorted(validate_create_request({"encounter": {}})) == [
        ("encounter.identifier", "is required"),
        ("encounter.status", "is required"),
        ("encounter.type", "is required"),
    ]


@pytest.mark.parametrize(
    "path",
    [
        "encounter.identifier",
        "encounter.status",
        "encounter.type",
        "encounter.period.startedAt",
        "patient.identifier",
    ],
)
def test_each_required_field_is_named_when_missing(path):
    assert validate_create_request(body_with(path, ...)) == [(path, "is required")]


@pytest.mark.parametrize(
    "path",
    [
        "assignedUserId",
        "patient",
        "encounter.period",
        "encounter.title",
        "encounter.period.endedAt",
        "patient.name",
        "patient.gender",
        "patient.birthDate",
        "patient.pronouns",
    ],
)
def test_optional_fields_may_be_left_out(path):
    assert validate_create_request(body_with(path, ...)) == []


@pytest.mark.parametrize(
    "path",
    [
        "encounter.title",
        "encounter.period.endedAt",
        "patient.name",
        "patient.gender",
        "patient.birthDate",
        "patient.pronouns",
    ],
)
def test_nullable_fields_accept_null(path):
    assert validate_create_request(body_with(path, None)) == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("assignedUserId", "must be of type string"),
        ("encounter.identifier", "must be of type string"),
        ("encounter.period.startedAt", "must be of type string"),
        ("patient.identifier", "must be of type string"),
    ],
)
def test_non_nullable_fields_refuse_null(path, message):
    assert validate_create_request(body_with(path, None)) == [(path, message)]


def test_non_nullable_enums_refuse_null():
    errors = validate_create_request(body_with("encounter.status", None))
    assert errors == [
        ("encounter.status", "must be of type string"),
        ("encounter.status", STATUS_MESSAGE),
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("encounter.title", 5),
        ("patient.name", ["Alex"]),
        ("patient.pronouns", True),
        ("encounter.identifier", 42),
    ],
)
def test_wrong_type_is_reported_as_a_type_error(path, value):
    assert validate_create_request(body_with(path, value)) == [
        (path, "must be of type string")
    ]


@pytest.mark.parametrize("body", [None, [], "encounter", 3])
def test_a_body_that_is_not_an_object_is_rejected(body):
    assert validate_create_request(body) == [("(body)", "must be of type object")]


def test_several_errors_are_reported_in_path_order():
    body = body_with("patient.gender", "x")
    body["encounter"]["type"] = "followup"
    del body["encounter"]["identifier"]
    assert validate_create_request(body) == [
        ("encounter.identifier", "is required"),
        ("encounter.type", TYPE_MESSAGE),
        ("patient.gender", GENDER_MESSAGE),
    ]


def test_error_response_schema_requires_the_rfc9457_fields():
    assert (
        validation_errors(
            {"requestid": "r", "status": 400, "type": "t", "detail": "d"},
            "ErrorResponse",
        )
        == []
    )
    assert sorted(validation_errors({"title": "Bad"}, "ErrorResponse")) == [
        ("detail", "is required"),
        ("requestid", "is required"),
        ("status", "is required"),
        ("type", "is required"),
    ]


def test_create_response_schema_requires_uuid_and_websocket_url():
    errors = validation_errors(
        {"interactionId": "not-a-uuid"}, "InteractionsCreateResponse"
    )
    assert errors == [
        ("websocketUrl", "is required"),
        ("interactionId", "must be a valid uuid"),
    ]
