import datetime as dt
import uuid
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.utils import timezone

from intake.forms import PATIENT_DETAIL_FIELDS, IntakeForm, prefill_from_query
from intake.models import (
    ENCOUNTER_STATUS_CHOICES,
    ENCOUNTER_TYPE_CHOICES,
    GENDER_CHOICES,
)

UTC = dt.UTC

VALID = {
    "submission_key": "7d3f1c2a-5b6e-4f80-9a1b-2c3d4e5f6a7b",
    "encounter_identifier": "ENC-1",
    "encounter_status": "planned",
    "encounter_type": "consultation",
    "encounter_started_at": "2026-01-15T10:00",
}


def bound(**changes: str) -> IntakeForm:
    data = {**VALID, **changes}
    return IntakeForm(data={k: v for k, v in data.items() if v is not None})


@pytest.fixture
def clinic_now(monkeypatch):
    """Set the clock the form reads 'today' from."""

    def set_now(value: dt.datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: value)

    return set_now


@pytest.fixture
def copenhagen(settings):
    settings.TIME_ZONE = "Europe/Copenhagen"


@pytest.fixture
def new_york(settings):
    settings.TIME_ZONE = "America/New_York"


def test_minimal_valid_form_is_accepted():
    form = bound()

    assert form.is_valid(), form.errors
    assert form.cleaned_data["encounter_identifier"] == "ENC-1"


@pytest.mark.parametrize("value", [value for value, _ in ENCOUNTER_STATUS_CHOICES])
def test_every_encounter_status_is_accepted(value):
    form = bound(encounter_status=value)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["encounter_status"] == value


@pytest.mark.parametrize("value", [value for value, _ in ENCOUNTER_TYPE_CHOICES])
def test_every_encounter_type_is_accepted(value):
    form = bound(encounter_type=value)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["encounter_type"] == value


@pytest.mark.parametrize("value", [value for value, _ in GENDER_CHOICES])
def test_every_patient_gender_is_accepted(value):
    form = bound(patient_identifier="PAT-1", patient_gender=value)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["patient_gender"] == value


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("encounter_status", "finished", "Choose one of the listed statuses."),
        ("encounter_status", "Planned", "Choose one of the listed statuses."),
        ("encounter_type", "home_visit", "Choose one of the listed types."),
        ("patient_gender", "f", "Choose one of the listed genders."),
    ],
)
def test_unknown_choice_is_rejected_with_the_forms_message(field, value, message):
    form = bound(patient_identifier="PAT-1", **{field: value})

    assert not form.is_valid()
    assert form.errors[field] == [message]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("encounter_identifier", "Enter the encounter identifier."),
        ("encounter_status", "Choose the encounter status."),
        ("encounter_type", "Choose the encounter type."),
        ("encounter_started_at", "Enter when the encounter started."),
    ],
)
@pytest.mark.parametrize("missing", ["", None])
def test_required_field_missing_is_an_error(field, message, missing):
    form = bound(**{field: missing})

    assert not form.is_valid()
    assert form.errors[field] == [message]
    assert set(form.errors) == {field}


def test_whitespace_only_encounter_identifier_counts_as_missing():
    form = bound(encounter_identifier="   ")

    assert not form.is_valid()
    assert form.errors["encounter_identifier"] == ["Enter the encounter identifier."]


def test_only_the_four_required_fields_are_required():
    required = {
        name
        for name, f in IntakeForm.base_fields.items()
        if f.required and not f.widget.is_hidden
    }

    assert required == {
        "encounter_identifier",
        "encounter_status",
        "encounter_type",
        "encounter_started_at",
    }


def test_invalid_assigned_user_id_is_rejected():
    form = bound(assigned_user_id="not-a-uuid")

    assert not form.is_valid()
    assert form.errors["assigned_user_id"] == [
        "Enter a valid UUID, like f47ac10b-58cc-4372-a567-0e02b2c3d479."
    ]


def test_valid_assigned_user_id_is_cleaned_to_a_uuid():
    value = "f47ac10b-58cc-4372-a567-0e02b2c3d479"

    form = bound(assigned_user_id=value)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["assigned_user_id"] == uuid.UUID(value)


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("encounter_identifier", 255),
        ("encounter_title", 255),
        ("patient_identifier", 255),
        ("patient_name", 255),
        ("patient_pronouns", 64),
    ],
)
def test_text_at_the_length_limit_is_accepted_and_one_more_is_rejected(field, limit):
    extra = {"patient_identifier": "PAT-1"} if field != "patient_identifier" else {}

    at_limit = bound(**extra, **{field: "x" * limit})
    too_long = bound(**extra, **{field: "x" * (limit + 1)})

    assert at_limit.is_valid(), at_limit.errors
    assert not too_long.is_valid()
    assert too_long.errors[field] == [
        f"Ensure this value has at most {limit} characters (it has {limit + 1})."
    ]


@pytest.mark.parametrize(
    "field",
    [
        "encounter_identifier",
        "encounter_title",
        "patient_identifier",
        "patient_name",
        "patient_pronouns",
    ],
)
def test_nul_character_in_text_is_rejected(field):
    extra = {"patient_identifier": "PAT-1"} if field != "patient_identifier" else {}

    form = bound(**extra, **{field: "ab\x00cd"})

    assert not form.is_valid()
    assert form.errors[field] == ["Null characters are not allowed."]


def test_nul_character_in_a_time_is_rejected():
    form = bound(encounter_started_at="2026-01-15T10:00\x00")

    assert not form.is_valid()
    assert "encounter_started_at" in form.errors


def test_unparseable_time_is_rejected_with_an_example():
    form = bound(encounter_started_at="yesterday at ten")

    assert not form.is_valid()
    assert form.errors["encounter_started_at"] == [
        "Enter a date and time, for example 2026-03-29 14:30."
    ]


def test_end_before_start_is_an_error_on_the_end():
    form = bound(
        encounter_started_at="2026-01-15T10:00", encounter_ended_at="2026-01-15T09:59"
    )

    assert not form.is_valid()
    assert form.errors["encounter_ended_at"] == [
        "The end must not be before the start (2026-01-15 10:00)."
    ]
    assert form.has_error("encounter_ended_at", code="end_before_start")
    assert "encounter_started_at" not in form.errors


def test_end_equal_to_start_is_accepted():
    form = bound(
        encounter_started_at="2026-01-15T10:00", encounter_ended_at="2026-01-15T10:00"
    )

    assert form.is_valid(), form.errors
    assert form.cleaned_data["encounter_ended_at"] == dt.datetime(
        2026, 1, 15, 10, 0, tzinfo=UTC
    )


def test_end_before_start_message_shows_the_start_in_clinic_time(copenhagen):
    form = bound(
        encounter_started_at="2026-07-15T10:00", encounter_ended_at="2026-07-15T09:00"
    )

    assert not form.is_valid()
    assert form.errors["encounter_ended_at"] == [
        "The end must not be before the start (2026-07-15 10:00)."
    ]


def birth_form(value: str) -> IntakeForm:
    return bound(patient_identifier="PAT-1", patient_birth_date=value)


def test_birth_date_today_is_accepted(clinic_now):
    clinic_now(dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC))

    form = birth_form("2026-06-01")

    assert form.is_valid(), form.errors
    assert form.cleaned_data["patient_birth_date"] == dt.date(2026, 6, 1)


def test_birth_date_in_the_future_is_rejected(clinic_now):
    clinic_now(dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC))

    form = birth_form("2026-06-02")

    assert not form.is_valid()
    assert form.errors["patient_birth_date"] == [
        "The birth date cannot be in the future."
    ]


def test_birth_date_uses_the_clinics_today_when_it_is_already_tomorrow(
    clinic_now, copenhagen
):
    # 23:30 UTC on 1 June is 01:30 on 2 June in Copenhagen.
    clinic_now(dt.datetime(2026, 6, 1, 23, 30, tzinfo=UTC))

    assert birth_form("2026-06-02").is_valid()
    assert not birth_form("2026-06-03").is_valid()


def test_birth_date_uses_the_clinics_today_when_it_is_still_yesterday(
    clinic_now, new_york
):
    # 02:00 UTC on 1 June is 22:00 on 31 May in New York.
    clinic_now(dt.datetime(2026, 6, 1, 2, 0, tzinfo=UTC))

    assert birth_form("2026-05-31").is_valid()
    form = birth_form("2026-06-01")
    assert not form.is_valid()
    assert form.has_error("patient_birth_date", code="birth_in_future")


def test_birth_date_exactly_150_years_ago_is_accepted(clinic_now):
    clinic_now(dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC))

    form = birth_form("1876-06-15")

    assert form.is_valid(), form.errors


@pytest.mark.parametrize("value", ["1876-06-14", "1876-01-01", "1800-06-15"])
def test_birth_date_more_than_150_years_ago_is_rejected(clinic_now, value):
    clinic_now(dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC))

    form = birth_form(value)

    assert not form.is_valid()
    assert form.errors["patient_birth_date"] == [
        "The birth date cannot be more than 150 years ago."
    ]


def test_birth_date_limits_are_offered_to_the_browser(clinic_now):
    clinic_now(dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC))

    attrs = IntakeForm().fields["patient_birth_date"].widget.attrs

    assert attrs["max"] == "2026-06-15"
    assert attrs["min"] == "1876-06-15"


def test_form_works_on_29_february(clinic_now):
    # 150 years before 2028-02-29 has no 29 February.
    clinic_now(dt.datetime(2028, 2, 29, 12, 0, tzinfo=UTC))

    form = birth_form("1878-02-28")

    assert form.is_valid(), form.errors
    assert form.fields["patient_birth_date"].widget.attrs["min"] == "1878-02-28"
    assert not birth_form("1878-02-27").is_valid()


def test_malformed_birth_date_is_rejected_with_an_example():
    form = birth_form("23/04/1980")

    assert not form.is_valid()
    assert form.errors["patient_birth_date"] == [
        "Enter a date, for example 1980-04-23."
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("patient_name", "Ada Lovelace"),
        ("patient_gender", "female"),
        ("patient_birth_date", "1980-04-23"),
        ("patient_pronouns", "she/her"),
    ],
)
def test_patient_detail_without_patient_identifier_is_an_error_on_the_identifier(
    field, value
):
    assert field in PATIENT_DETAIL_FIELDS

    form = bound(**{field: value})

    assert not form.is_valid()
    assert form.errors["patient_identifier"] == [
        "Enter the patient identifier: Corti needs it when other patient "
        "details are given."
    ]
    assert set(form.errors) == {"patient_identifier"}


def test_patient_identifier_alone_is_accepted():
    form = bound(patient_identifier="PAT-1")

    assert form.is_valid(), form.errors


# --- time zones ------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        ("Europe/Copenhagen", "2026-01-15T10:00", dt.datetime(2026, 1, 15, 9, 0)),
        ("Europe/Copenhagen", "2026-07-15T10:00", dt.datetime(2026, 7, 15, 8, 0)),
        ("America/New_York", "2026-01-15T10:00", dt.datetime(2026, 1, 15, 15, 0)),
        ("America/New_York", "2026-07-15T10:00", dt.datetime(2026, 7, 15, 14, 0)),
        ("UTC", "2026-07-15T10:00", dt.datetime(2026, 7, 15, 10, 0)),
    ],
)
def test_clinic_time_is_converted_to_the_right_utc_instant(settings, zone, local, utc):
    settings.TIME_ZONE = zone

    form = bound(encounter_started_at=local)

    assert form.is_valid(), form.errors
    started = form.cleaned_data["encounter_started_at"]
    assert started.astimezone(UTC) == utc.replace(tzinfo=UTC)
    assert started.utcoffset() is not None


def test_time_with_seconds_is_accepted(copenhagen):
    form = bound(encounter_started_at="2026-01-15T10:00:30")

    assert form.is_valid(), form.errors
    assert form.cleaned_data["encounter_started_at"] == dt.datetime(
        2026, 1, 15, 9, 0, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("zone", "local", "shown"),
    [
        ("Europe/Copenhagen", "2026-03-29T02:30", "2026-03-29 02:30"),
        ("America/New_York", "2026-03-08T02:30", "2026-03-08 02:30"),
    ],
)
@pytest.mark.parametrize("field", ["encounter_started_at", "encounter_ended_at"])
def test_time_skipped_by_spring_forward_is_rejected(
    settings, zone, local, shown, field
):
    settings.TIME_ZONE = zone
    changes = {field: local}
    if field == "encounter_ended_at":
        changes["encounter_started_at"] = local[:11] + "00:00"

    form = bound(**changes)

    assert not form.is_valid()
    assert form.errors[field] == [
        f"{shown} does not exist in {zone}: the clocks skip that hour. "
        "Enter a time outside the change."
    ]


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        ("Europe/Copenhagen", "2026-10-25T02:30", dt.datetime(2026, 10, 25, 0, 30)),
        ("America/New_York", "2026-11-01T01:30", dt.datetime(2026, 11, 1, 5, 30)),
    ],
)
def test_repeated_fall_back_hour_is_taken_as_its_first_occurrence(
    settings, zone, local, utc
):
    settings.TIME_ZONE = zone

    form = bound(encounter_started_at=local)

    assert form.is_valid(), form.errors
    # Compared in UTC: Python never finds an ambiguous local time equal to
    # a time in another zone (PEP 495).
    started = form.cleaned_data["encounter_started_at"].astimezone(UTC)
    assert started == utc.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        # Clocks go forward at 02:00: two wall-clock hours are one real hour.
        ("2026-03-29T01:30", "2026-03-29T03:30", 1),
        # Clocks go back at 03:00: two wall-clock hours are three real hours.
        ("2026-10-25T01:30", "2026-10-25T03:30", 3),
    ],
)
def test_interval_across_a_dst_change_keeps_its_real_duration(
    copenhagen, start, end, hours
):
    form = bound(encounter_started_at=start, encounter_ended_at=end)

    assert form.is_valid(), form.errors
    # In UTC: subtracting two times of one zone gives the wall-clock difference.
    start_utc = form.cleaned_data["encounter_started_at"].astimezone(UTC)
    end_utc = form.cleaned_data["encounter_ended_at"].astimezone(UTC)
    duration = end_utc - start_utc
    assert duration == dt.timedelta(hours=hours)


def test_time_help_names_the_clinic_time_zone(copenhagen):
    form = IntakeForm()

    assert "Europe/Copenhagen" in form.fields["encounter_started_at"].help_text
    assert "Europe/Copenhagen" in form.fields["encounter_ended_at"].help_text


# --- prefill ---------------------------------------------------------------


def test_prefill_keeps_known_fields_and_ignores_unknown_ones():
    params = QueryDict(
        "encounter_identifier=ENC-9&patient_identifier=PAT-9"
        "&encounter_status=planned&unknown=zzz&csrfmiddlewaretoken=abc&_field=x"
    )

    initial = prefill_from_query(params)

    assert initial == {
        "encounter_identifier": "ENC-9",
        "patient_identifier": "PAT-9",
        "encounter_status": "planned",
    }


def test_prefill_skips_empty_values():
    initial = prefill_from_query(QueryDict("encounter_identifier=&patient_name=Ada"))

    assert initial == {"patient_name": "Ada"}


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("2026-06-01T08:00:00Z", "2026-06-01T10:00"),
        ("2026-06-01T08:00:00+00:00", "2026-06-01T10:00"),
        ("2026-06-01T12:00:00+04:00", "2026-06-01T10:00"),
        ("2026-01-15T08:00Z", "2026-01-15T09:00"),
        # No offset: already clinic time.
        ("2026-06-01T08:00", "2026-06-01T08:00"),
    ],
)
@pytest.mark.parametrize("field", ["encounter_started_at", "encounter_ended_at"])
def test_prefill_shows_a_datetime_in_clinic_local_time(copenhagen, given, shown, field):
    initial = prefill_from_query(QueryDict(urlencode({field: given})))

    assert initial == {field: shown}


def test_prefill_keeps_an_unreadable_datetime_as_given():
    initial = prefill_from_query({"encounter_started_at": "next tuesday"})

    assert initial == {"encounter_started_at": "next tuesday"}


# --- Corti's validation errors ---------------------------------------------


def corti_errors(items: list[dict[str, str]]) -> IntakeForm:
    form = bound()
    assert form.is_valid(), form.errors
    form.add_corti_errors(items)
    return form


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("encounter.identifier", "encounter_identifier"),
        ("encounter.status", "encounter_status"),
        ("encounter.type", "encounter_type"),
        ("encounter.title", "encounter_title"),
        ("encounter.period.startedAt", "encounter_started_at"),
        ("encounter.period.endedAt", "encounter_ended_at"),
        ("encounter.period", "encounter_started_at"),
        ("encounter", "encounter_identifier"),
        ("patient.identifier", "patient_identifier"),
        ("patient.name", "patient_name"),
        ("patient.gender", "patient_gender"),
        ("patient.birthDate", "patient_birth_date"),
        ("patient.pronouns", "patient_pronouns"),
        ("patient", "patient_identifier"),
        ("assignedUserId", "assigned_user_id"),
        ("$.encounter.identifier", "encounter_identifier"),
        ("Encounter.Period.StartedAt", "encounter_started_at"),
        ("encounter_period_started_at", "encounter_started_at"),
    ],
)
def test_corti_error_path_is_shown_beside_its_field(path, field):
    form = corti_errors([{path: "is not acceptable"}])

    assert form.errors == {field: ["Corti: is not acceptable"]}


@pytest.mark.parametrize("path", ["(body)", "encounter.location", "facts.0.text"])
def test_corti_error_with_an_unknown_path_is_a_non_field_error(path):
    form = corti_errors([{path: "is wrong"}])

    assert form.non_field_errors() == [f"Corti: {path} is wrong"]
    assert list(form.errors) == ["__all__"]


def test_several_corti_errors_each_go_to_their_place():
    form = corti_errors(
        [
            {"encounter.identifier": "is required"},
            {"patient.birthDate": "must be a valid date-time"},
            {"assignedUserId": "must be a valid uuid", "weird": "huh"},
        ]
    )

    assert form.errors["encounter_identifier"] == ["Corti: is required"]
    assert form.errors["patient_birth_date"] == ["Corti: must be a valid date-time"]
    assert form.errors["assigned_user_id"] == ["Corti: must be a valid uuid"]
    assert form.non_field_errors() == ["Corti: weird huh"]
