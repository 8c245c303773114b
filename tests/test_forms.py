import datetime as dt
import uuid
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.utils import timezone

from intake.fields import PATIENT_DETAIL_NAMES
from intake.forms import IntakeForm, prefill_from_query
from intake.models import (
    ENCOUNTER_STATUS_CHOICES,
    ENCOUNTER_TYPE_CHOICES,
    GENDER_CHOICES,
)
from tests.support.pages import parse

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


def test_unparseable_time_is_rejected_without_an_example_in_another_format():
    # The browser shows the field in its own locale's format; an ISO example
    # would disagree with what the user sees.
    form = bound(encounter_started_at="yesterday at ten")

    assert not form.is_valid()
    assert form.errors["encounter_started_at"] == ["Enter a date and time."]


def test_end_before_start_is_an_error_on_the_end():
    form = bound(
        encounter_started_at="2026-01-15T10:00", encounter_ended_at="2026-01-15T09:59"
    )

    assert not form.is_valid()
    assert form.errors["encounter_ended_at"] == [
        "The end must not be before the start (2026-01-15 10:00 UTC)."
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


def test_end_before_start_message_shows_the_start_in_clinic_time(clinic_zone):
    form = bound(
        encounter_started_at="2026-07-15T10:00", encounter_ended_at="2026-07-15T09:00"
    )

    assert not form.is_valid()
    assert form.errors["encounter_ended_at"] == [
        "The end must not be before the start (2026-07-15 10:00 CEST)."
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
    clinic_now, clinic_zone
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


@pytest.mark.parametrize(
    "typed",
    ["23-04-1980", "23.04.1980", "23/04/1980", "23041980", " 23-4-1980 ", "1980-04-23"],
)
def test_birth_date_is_read_in_the_clinics_order_or_as_iso(typed):
    form = birth_form(typed)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["patient_birth_date"] == dt.date(1980, 4, 23)


@pytest.mark.parametrize(
    "typed",
    # Month first, a day that does not exist, a two-digit year, digits that
    # could be read two ways (1 December or 11 February), words.
    ["04/23/1980", "31-02-1980", "23-04-80", "1121980", "230419800", "23 April 1980"],
)
def test_malformed_birth_date_is_rejected_with_an_example_in_the_clinics_order(typed):
    form = birth_form(typed)

    assert not form.is_valid()
    assert form.errors["patient_birth_date"] == [
        "Enter the birth date as day-month-year, for example 23-04-1980."
    ]
    assert form.has_error("patient_birth_date", code="invalid")


@pytest.mark.parametrize(
    ("order", "typed", "help_text", "message"),
    [
        (
            "MDY",
            ["04/23/1980", "04-23-1980", "04231980", "1980-04-23"],
            "Month/day/year, for example 04/23/1980.",
            "Enter the birth date as month/day/year, for example 04/23/1980.",
        ),
        (
            "YMD",
            ["1980-04-23", "1980.04.23", "1980/04/23", "19800423"],
            "Year-month-day, for example 1980-04-23.",
            "Enter the birth date as year-month-day, for example 1980-04-23.",
        ),
    ],
)
def test_birth_date_order_follows_the_clinic_setting(
    settings, order, typed, help_text, message
):
    settings.INTAKE_DATE_ORDER = order

    for value in typed:
        form = birth_form(value)
        assert form.is_valid(), (value, form.errors)
        assert form.cleaned_data["patient_birth_date"] == dt.date(1980, 4, 23)
    refused = birth_form("23-04-1980")
    assert not refused.is_valid()
    assert refused.errors["patient_birth_date"] == [message]
    assert refused.fields["patient_birth_date"].help_text == help_text


def test_birth_date_help_shows_the_order_and_the_field_shows_a_date_in_it():
    form = IntakeForm(initial={"patient_birth_date": dt.date(1980, 4, 23)})

    assert form.fields["patient_birth_date"].help_text == (
        "Day-month-year, for example 23-04-1980."
    )
    assert 'value="23-04-1980"' in str(form["patient_birth_date"])


def test_birth_date_calendar_opens_about_40_years_back_within_the_limits(clinic_now):
    clinic_now(dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC))

    html = str(IntakeForm()["patient_birth_date"])

    widget = parse(html)
    button = widget.one("button")
    before_button = [e for e in widget.iter() if e.start < button.start]
    assert [e for e in before_button if e.matches("input", type="text")]
    assert not [e for e in before_button if {"min", "max"} & set(e.attrs)]
    picker = widget.one("input", type="date")
    for name, value in {
        "min": "1876-06-15",
        "max": "2026-06-15",
        "data-start": "1986-06-15",
        "data-format": "DD-MM-YYYY",
        "tabindex": "-1",
    }.items():
        assert picker.attrs[name] == value, name
    # The calendar posts nothing: only the text box has a name.
    assert html.count("name=") == 1


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
    assert field in PATIENT_DETAIL_NAMES

    form = bound(**{field: value})

    assert not form.is_valid()
    assert form.errors["patient_identifier"] == [
        "Enter the patient identifier: Corti needs it when other patient "
        "details are given."
    ]
    assert set(form.errors) == {"patient_identifier"}


def test_fields_come_in_the_clinicians_order():
    assert list(IntakeForm().fields) == [
        "submission_key",
        "encounter_identifier",
        "encounter_type",
        "encounter_status",
        "encounter_started_at",
        "encounter_title",
        "patient_identifier",
        "patient_name",
        "patient_birth_date",
        "patient_gender",
        "patient_pronouns",
        "encounter_ended_at",
        "assigned_user_id",
    ]


@pytest.mark.parametrize(
    ("form", "is_open"),
    [
        (lambda: IntakeForm(), False),
        (lambda: bound(), False),
        (lambda: bound(encounter_status="in-progress"), False),
        # An ended encounter usually has an end time.
        (lambda: bound(encounter_status="completed"), True),
        (lambda: bound(encounter_ended_at="2026-01-15T10:30"), True),
        (lambda: bound(assigned_user_id="f47ac10b-58cc-4372-a567-0e02b2c3d479"), True),
        # Errors: one of its own, and the end before the start.
        (lambda: bound(assigned_user_id="not-a-uuid"), True),
        (lambda: bound(encounter_ended_at="2026-01-15T09:00"), True),
        # A deep link (initial data) with the end time.
        (lambda: IntakeForm(initial={"encounter_ended_at": "2026-01-15T10:30"}), True),
        (lambda: IntakeForm(initial={"encounter_title": "Knee"}), False),
    ],
)
def test_more_details_group_is_open_only_when_in_use(form, is_open):
    assert form().more_details_open is is_open


def test_patient_identifier_alone_is_accepted():
    form = bound(patient_identifier="PAT-1")

    assert form.is_valid(), form.errors


# --- time zones ------------------------------------------------------------


REPEATED_HOURS = [
    # zone, wall clock typed, its first and second instant, the two answers
    (
        "Europe/Copenhagen",
        "2026-10-25T02:30",
        dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        ("02:30 CEST (first)", "02:30 CET (second)"),
    ),
    (
        "America/New_York",
        "2026-11-01T01:30",
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
        ("01:30 EDT (first)", "01:30 EST (second)"),
    ),
]


@pytest.mark.parametrize(
    ("zone", "local", "first", "second", "answers"), REPEATED_HOURS
)
@pytest.mark.parametrize("field", ["encounter_started_at", "encounter_ended_at"])
def test_repeated_fall_back_hour_without_a_choice_asks_which(
    settings, zone, local, first, second, answers, field
):
    settings.TIME_ZONE = zone
    changes = {field: local}
    if field == "encounter_ended_at":
        changes["encounter_started_at"] = local[:11] + "00:00"

    form = bound(**changes)

    assert not form.is_valid()
    date, time = local.split("T")
    assert form.errors[field] == [
        f"{time} on {date} happens twice in {zone} (the clocks go back). Choose which:"
    ]
    assert form.has_error(field, code="ambiguous")
    question = form[field].fold_question
    assert question.name == f"{field}_fold"
    assert [(c.value, c.label, c.checked) for c in question.choices] == [
        ("0", answers[0], False),
        ("1", answers[1], False),
    ]


@pytest.mark.parametrize(
    ("zone", "local", "first", "second", "answers"), REPEATED_HOURS
)
@pytest.mark.parametrize(("fold", "which"), [("0", "first"), ("1", "second")])
def test_repeated_fall_back_hour_takes_the_chosen_occurrence(
    settings, zone, local, first, second, answers, fold, which
):
    settings.TIME_ZONE = zone

    form = bound(encounter_started_at=local, encounter_started_at_fold=fold)

    assert form.is_valid(), form.errors
    # Compared in UTC: Python never finds an ambiguous local time equal to
    # a time in another zone (PEP 495).
    started = form.cleaned_data["encounter_started_at"]
    assert started == {"first": first, "second": second}[which]
    assert started.utcoffset() == dt.timedelta(0)
    # The answer stays chosen when the form is shown again.
    checked = [
        c.value for c in form["encounter_started_at"].fold_question.choices if c.checked
    ]
    assert checked == [fold]


@pytest.mark.parametrize("fold", ["", "2", "first", "0 "])
def test_a_fold_answer_other_than_0_or_1_asks_again(clinic_zone, fold):
    form = bound(
        encounter_started_at="2026-10-25T02:30", encounter_started_at_fold=fold
    )

    assert not form.is_valid()
    assert form.has_error("encounter_started_at", code="ambiguous")


def test_a_fold_answer_for_a_time_that_happens_once_changes_nothing(clinic_zone):
    form = bound(encounter_started_at="2026-10-25T03:30", encounter_started_at_fold="1")

    assert form.is_valid(), form.errors
    assert form.cleaned_data["encounter_started_at"] == dt.datetime(
        2026, 10, 25, 2, 30, tzinfo=UTC
    )
    assert form["encounter_started_at"].fold_question is None


def test_end_in_the_first_repeated_hour_is_before_a_start_in_the_second(clinic_zone):
    # 02:40 CEST is 00:40 UTC, 02:30 CET is 01:30 UTC: on the wall clock the
    # end looks later, in fact it is an hour earlier.
    form = bound(
        encounter_started_at="2026-10-25T02:30",
        encounter_started_at_fold="1",
        encounter_ended_at="2026-10-25T02:40",
        encounter_ended_at_fold="0",
    )

    assert not form.is_valid()
    assert form.errors["encounter_ended_at"] == [
        "The end must not be before the start (2026-10-25 02:30 CET)."
    ]


def test_repeated_hour_with_one_abbreviation_names_the_offsets(settings):
    # Moscow left summer time in 2014 keeping "MSK" for both offsets.
    settings.TIME_ZONE = "Europe/Moscow"

    form = bound(encounter_started_at="2014-10-26T01:30")

    assert not form.is_valid()
    labels = [c.label for c in form["encounter_started_at"].fold_question.choices]
    assert labels == [
        "01:30 MSK, UTC+04:00 (first)",
        "01:30 MSK, UTC+03:00 (second)",
    ]


def test_an_unbound_form_from_a_sent_instant_checks_its_reading(clinic_zone):
    second = dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)

    form = IntakeForm(initial={"encounter_started_at": second})

    question = form["encounter_started_at"].fold_question
    assert [c.checked for c in question.choices] == [False, True]


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
    clinic_zone, start, end, hours
):
    form = bound(encounter_started_at=start, encounter_ended_at=end)

    assert form.is_valid(), form.errors
    # In UTC: subtracting two times of one zone gives the wall-clock difference.
    start_utc = form.cleaned_data["encounter_started_at"].astimezone(UTC)
    end_utc = form.cleaned_data["encounter_ended_at"].astimezone(UTC)
    duration = end_utc - start_utc
    assert duration == dt.timedelta(hours=hours)


def test_time_help_names_the_clinic_time_zone(clinic_zone):
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
def test_prefill_shows_a_datetime_in_clinic_local_time(
    clinic_zone, given, shown, field
):
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


@pytest.mark.django_db
def test_every_form_links_its_inputs_to_their_help_and_errors(rf, clinician):
    """The shared field template gives each field an error area and a help
    text with these ids; every form's inputs name them."""
    from intake.forms import PasswordChangeForm, SignInForm

    change = PasswordChangeForm(clinician, request=rf.post("/"))
    described = change.fields["new_password1"].widget.attrs["aria-describedby"]
    assert described.split() == ["id_new_password1_helptext", "id_new_password1-errors"]
    old = change.fields["old_password"].widget.attrs["aria-describedby"]
    assert old.split() == ["id_old_password-errors"]
    sign_in = SignInForm(request=rf.post("/"))
    assert sign_in.fields["username"].widget.attrs["aria-describedby"].split() == [
        "id_username-errors",
        "login-errors",
    ]
    intake = IntakeForm()
    assert intake.fields["encounter_identifier"].widget.attrs[
        "aria-describedby"
    ].split() == ["id_encounter_identifier_helptext", "id_encounter_identifier-errors"]
