"""Input validation for the intake form; field names mirror the API's."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.forms import PasswordChangeForm as DjangoPasswordChangeForm
from django.core.exceptions import ValidationError
from django.forms.boundfield import BoundField
from django.forms.fields import BaseTemporalField
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrPromise

from .clinic_time import (
    clinic_day_start,
    clinic_time_is_ambiguous,
    clinic_time_text,
    clinic_time_zone,
    clinic_wall_clock_folds,
)
from .fields import (
    CORTI_FIELD_PATHS,
    DETAIL_FIELDS,
    DETAIL_NAMES,
    FORM_FIELDS,
    PATIENT_DETAIL_NAMES,
    RARELY_USED_NAMES,
    TIME_NAMES,
    InteractionDetails,
    Section,
    json_value,
)
from .keys import uuid_or_none
from .models import (
    ENCOUNTER_STATUS_CHOICES,
    ENCOUNTER_TYPE_CHOICES,
    GENDER_CHOICES,
    Interaction,
)
from .search import id_prefix_range, words
from .selectors import DEFAULT_SORT, SORTS, HistorySort
from .throttling import password_verify

# <input type="datetime-local"> sends minutes, or seconds when a step allows.
LOCAL_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
LOCAL_DATETIME_WIDGET_FORMAT = "%Y-%m-%dT%H:%M"
OLDEST_BIRTH_YEARS = 150

ENDED_STATUSES = ("completed",)


def oldest_birth_date(today: dt.date) -> dt.date:
    """The earliest accepted birth date: OLDEST_BIRTH_YEARS before today."""
    try:
        return today.replace(year=today.year - OLDEST_BIRTH_YEARS)
    except ValueError:
        # 29 February, and that year has none.
        return today.replace(year=today.year - OLDEST_BIRTH_YEARS, day=28)


# A birth date the picker opens at when none is typed yet: a typical adult's.
PICKER_START_YEARS = 40
ISO_DATE_FORMAT = "%Y-%m-%d"
EXAMPLE_DATE = dt.date(1980, 4, 23)


@dataclass(frozen=True)
class DateOrder:
    """How the clinic writes a date (settings.INTAKE_DATE_ORDER)."""

    parts: tuple[str, str, str]  # strftime codes, in the clinic's order
    separator: str  # the one dates are shown with
    words: StrPromise  # lazy: in the user's language when shown

    @property
    def shown(self) -> str:
        return self.separator.join(self.parts)

    @property
    def input_formats(self) -> list[str]:
        # Any of - . / between the parts, or none (8 digits); and always ISO.
        formats = [sep.join(self.parts) for sep in ("-", ".", "/", "")]
        return [*formats, ISO_DATE_FORMAT]


DATE_ORDERS = {
    "DMY": DateOrder(("%d", "%m", "%Y"), "-", _("day-month-year")),
    "MDY": DateOrder(("%m", "%d", "%Y"), "/", _("month/day/year")),
    "YMD": DateOrder(("%Y", "%m", "%d"), "-", _("year-month-day")),
}


def clinic_date_order() -> DateOrder:
    return DATE_ORDERS[getattr(settings, "INTAKE_DATE_ORDER", "DMY")]


def picker_start(today: dt.date) -> dt.date:
    """Where the birth date's calendar opens: PICKER_START_YEARS ago."""
    try:
        return today.replace(year=today.year - PICKER_START_YEARS)
    except ValueError:
        return today.replace(year=today.year - PICKER_START_YEARS, day=28)


class BirthDateInput(forms.TextInput):
    """A text box for the date typed in the clinic's order, and (with
    JavaScript) a button opening the browser's calendar.

    The calendar is a date input of its own without a name: a native date
    input takes the browser's order and one Tab per part, which is slower to
    type into than one box. Its limits (`min`, `max`, `data-start`) are given
    as this widget's attrs and moved to it.
    """

    template_name = "intake/widgets/birth_date.html"
    PICKER_ATTRS = ("min", "max", "data-start")

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        defaults = {"autocomplete": "off", "spellcheck": "false", "maxlength": "10"}
        super().__init__(attrs={**defaults, **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, dt.date):
            return value.strftime(clinic_date_order().shown)
        return super().format_value(value)

    def get_context(self, name: str, value: Any, attrs: Any) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        text_attrs = context["widget"]["attrs"]
        context["widget"]["picker"] = {
            key: text_attrs.pop(key) for key in self.PICKER_ATTRS if key in text_attrs
        }
        order = clinic_date_order()
        # For the script: the calendar's pick, written the clinic's way.
        context["widget"]["picker"]["data-format"] = (
            order.shown.replace("%d", "DD").replace("%m", "MM").replace("%Y", "YYYY")
        )
        return context


class BirthDateField(forms.DateField):
    """A date typed in the clinic's order (any of - . / or none between the
    parts) or as ISO YYYY-MM-DD."""

    widget = BirthDateInput

    # A property where Django's fields keep a plain attribute: the formats are
    # read when used, as settings never are at import time.
    @property
    def input_formats(self) -> list[str]:  # type: ignore[override]
        return clinic_date_order().input_formats

    def to_python(self, value: Any) -> dt.date | None:
        if isinstance(value, str):
            value = value.strip()
            # Without separators only all 8 digits are unambiguous: 1121980
            # could be 1 December or 11 February.
            if value.isdigit() and len(value) != 8:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class ClinicDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            attrs={"step": "60", **(attrs or {})}, format=LOCAL_DATETIME_WIDGET_FORMAT
        )

    def format_value(self, value: Any) -> str | None:
        # Aware values (from initial data) are shown as clinic wall-clock time.
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(clinic_time_zone()).replace(tzinfo=None)
        return super().format_value(value)


FOLD_SUFFIX = "_fold"


@dataclass(frozen=True)
class FoldChoice:
    value: str
    label: str
    checked: bool


@dataclass(frozen=True)
class FoldQuestion:
    """Which of the two readings of a repeated wall-clock time is meant."""

    name: str
    legend: str
    choices: tuple[FoldChoice, ...]
    #: The time asked about, as the input sends it.
    wall_clock: str


def fold_choice_labels(naive: dt.datetime) -> tuple[str, str]:
    """ "02:30 CEST (first)", "02:30 CET (second)"; the UTC offset too when
    both readings share one abbreviation."""
    first, second = clinic_wall_clock_folds(naive)
    names = [first.strftime("%H:%M %Z"), second.strftime("%H:%M %Z")]
    if names[0] == names[1]:
        names = [
            f"{when.strftime('%H:%M %Z')}, UTC{when.isoformat()[-6:]}"
            for when in (first, second)
        ]
    return _("%(time)s (first)") % {"time": names[0]}, _("%(time)s (second)") % {
        "time": names[1]
    }


class ClinicDateTimeBoundField(BoundField):
    field: ClinicDateTimeField  # only that field makes these (get_bound_field)
    asks_fold = True

    @property
    def fold_question_is_shown(self) -> bool:
        """Whether the page already shows this field's question as answered:
        then live validation leaves the buttons alone."""
        question = self.fold_question
        data = self.form.data
        return (
            question is not None
            and data.get(question.name + "_for") == question.wall_clock
            and data.get(question.name) in ("0", "1")
        )

    @property
    def fold_question(self) -> FoldQuestion | None:
        """The question beside a repeated time, with the answer given so far."""
        naive, chosen = self._wall_clock_and_fold()
        if naive is None or not clinic_time_is_ambiguous(naive):
            return None
        labels = fold_choice_labels(naive)
        return FoldQuestion(
            name=self.html_name + FOLD_SUFFIX,
            legend=_("%(label)s: which %(time)s?")
            % {"label": self.label, "time": naive.strftime("%H:%M")},
            choices=tuple(
                FoldChoice(value=value, label=label, checked=chosen == value)
                for value, label in zip(("0", "1"), labels, strict=True)
            ),
            wall_clock=naive.strftime(LOCAL_DATETIME_WIDGET_FORMAT),
        )

    def _wall_clock_and_fold(self) -> tuple[dt.datetime | None, str | None]:
        if self.form.is_bound:
            try:
                naive = self.field.wall_clock(self.data)
            except ValidationError:
                return None, None
            return naive, self.form.data.get(self.html_name + FOLD_SUFFIX)
        # The initial value as given: value() makes it naive, losing its fold.
        value = self.initial
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            local = value.astimezone(clinic_time_zone())
            return local.replace(tzinfo=None), str(local.fold)
        try:
            naive = self.field.wall_clock(value)
        except ValidationError:
            return None, None
        # A kept draft's initial data holds the answer as typed.
        return naive, self.form.initial.get(self.name + FOLD_SUFFIX)


class ClinicDateTimeField(forms.DateTimeField):
    """A wall-clock time in the clinic's time zone, cleaned to an aware datetime.

    A time that does not exist there (skipped when clocks go forward) is an
    error. A time that happens twice (when clocks go back) needs `fold_choice`
    ("0" the first, "1" the second; the form reads it from `<name>_fold`),
    else the form asks which: picking one silently is wrong half the time.
    """

    widget = ClinicDateTimeInput
    input_formats = LOCAL_DATETIME_FORMATS
    # The input shows the browser's own date format, so no example is given
    # in ours; a different format in the message would only mislead.
    default_error_messages = {
        "invalid": _("Enter a date and time."),
        "nonexistent": _(
            "%(value)s does not exist in %(zone)s: the clocks skip that hour. "
            "Enter a time outside the change."
        ),
        "ambiguous": _(
            "%(time)s on %(date)s happens twice in %(zone)s (the clocks go back). "
            "Choose which:"
        ),
    }
    fold_choice: str | None = None

    def get_bound_field(self, form: Any, field_name: str) -> BoundField:
        return ClinicDateTimeBoundField(form, self, field_name)

    def wall_clock(self, value: Any) -> dt.datetime | None:
        """The naive clinic wall-clock time typed, or None when empty."""
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
        return BaseTemporalField.to_python(self, str(value).strip())

    def to_python(self, value: Any) -> dt.datetime | None:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value
        naive = self.wall_clock(value)
        if naive is None:
            return None
        zone = clinic_time_zone()
        first, second = clinic_wall_clock_folds(naive)
        try:
            round_trip = first.astimezone(dt.UTC).astimezone(zone)
        except OverflowError:
            # The very first or last hours of the calendar have no UTC time.
            raise ValidationError(
                self.error_messages["invalid"], code="invalid"
            ) from None
        # A skipped wall-clock time does not survive a round trip through UTC.
        if round_trip.replace(tzinfo=None) != naive:
            raise ValidationError(
                self.error_messages["nonexistent"],
                code="nonexistent",
                params={"value": naive.strftime("%Y-%m-%d %H:%M"), "zone": zone.key},
            )
        chosen = first
        if first.utcoffset() != second.utcoffset():
            if self.fold_choice not in ("0", "1"):
                raise ValidationError(
                    self.error_messages["ambiguous"],
                    code="ambiguous",
                    params={
                        "time": naive.strftime("%H:%M"),
                        "date": naive.strftime("%Y-%m-%d"),
                        "zone": zone.key,
                    },
                )
            chosen = second if self.fold_choice == "1" else first
        # In UTC: Python compares and subtracts two times of one zone by their
        # wall clocks, fold ignored (PEP 495), which would misorder the
        # repeated hour.
        return chosen.astimezone(dt.UTC)


def describe_fields(form: forms.BaseForm, *also: str) -> None:
    """Link each visible input to its help and to its error area (the ids the
    shared field template, templates/partials/field.html, gives them), and to
    any form-wide area named in `also`."""
    for name, field in form.fields.items():
        if field.widget.is_hidden:
            continue
        auto_id = form[name].auto_id
        described = [f"{auto_id}_helptext"] if field.help_text else []
        field.widget.attrs["aria-describedby"] = " ".join(
            [*described, f"{auto_id}-errors", *also]
        )


class IntakeForm(forms.Form):
    """One Corti interaction: the encounter and, optionally, the patient."""

    error_messages = {
        "end_before_start": _("The end must not be before the start (%(start)s)."),
        "birth_in_future": _("The birth date cannot be in the future."),
        "birth_too_old": _("The birth date cannot be more than %(years)s years ago."),
        "patient_identifier_required": _(
            "Enter the patient identifier: Corti needs it when other patient "
            "details are given."
        ),
        "key_renewed": _(
            "This form had lost its submission key (it may come from an old "
            "page), so nothing was sent. Check the details and submit again."
        ),
    }

    # intake.fields gives the order (the clinician's) and the labels; last,
    # in a group closed unless in use, what a typical intake never touches.
    field_order = [
        "submission_key",
        *(field.name for field in FORM_FIELDS if not field.rarely_used),
        *RARELY_USED_NAMES,
    ]

    # One per rendered form: every POST of it reaches the same local record,
    # so a double click, a reload or a second tab cannot create twice.
    submission_key = forms.UUIDField(widget=forms.HiddenInput)

    assigned_user_id = forms.UUIDField(
        required=False,
        help_text=_("Optional. The Corti user ID of the responsible clinician."),
        error_messages={
            "invalid": _(
                "Enter a valid UUID, like f47ac10b-58cc-4372-a567-0e02b2c3d479."
            )
        },
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "maxlength": 36}
        ),
    )
    encounter_identifier = forms.CharField(
        max_length=255,
        help_text=_("The encounter's identifier in your EHR."),
        error_messages={"required": _("Enter the encounter identifier.")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    encounter_status = forms.ChoiceField(
        choices=[("", _("Choose a status…")), *ENCOUNTER_STATUS_CHOICES],
        error_messages={
            "required": _("Choose the encounter status."),
            "invalid_choice": _("Choose one of the listed statuses."),
        },
    )
    encounter_type = forms.ChoiceField(
        choices=[("", _("Choose a type…")), *ENCOUNTER_TYPE_CHOICES],
        error_messages={
            "required": _("Choose the encounter type."),
            "invalid_choice": _("Choose one of the listed types."),
        },
    )
    encounter_title = forms.CharField(
        max_length=255,
        required=False,
        help_text=_("Optional. A readable name for the interaction."),
    )
    encounter_started_at = ClinicDateTimeField(
        error_messages={"required": _("Enter when the encounter started.")},
    )
    encounter_ended_at = ClinicDateTimeField(required=False)
    patient_identifier = forms.CharField(
        max_length=255,
        required=False,
        help_text=_("Needed when any patient detail is given."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    patient_name = forms.CharField(
        max_length=255,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    patient_gender = forms.ChoiceField(
        choices=[("", _("Not given")), *GENDER_CHOICES],
        required=False,
        error_messages={"invalid_choice": _("Choose one of the listed genders.")},
    )
    # Its help text and "invalid" message name the clinic's order (__init__).
    patient_birth_date = BirthDateField(required=False)
    patient_pronouns = forms.CharField(
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_renewed = False
        if self.is_bound and uuid_or_none(self.data.get("submission_key")) is None:
            # Keep what was typed; give the form a key of its own to post.
            # The data is a QueryDict or a dict (both copy); django-stubs types
            # it as a read-only Mapping.
            data = self.data.copy()  # type: ignore[attr-defined]
            data["submission_key"] = str(uuid.uuid4())
            self.data = data
            self.key_renewed = True
        elif not self.is_bound:
            self.initial.setdefault("submission_key", uuid.uuid4())
        for name, field in self.fields.items():
            if self.is_bound and isinstance(field, ClinicDateTimeField):
                field.fold_choice = self.data.get(self.add_prefix(name) + FOLD_SUFFIX)
        # The clinic's zone is named beside every time field.
        zone = {"zone": settings.TIME_ZONE}
        self.fields["encounter_started_at"].help_text = (
            _("Clinic time, %(zone)s. Sent to Corti in UTC.") % zone
        )
        self.fields["encounter_ended_at"].help_text = (
            _("Optional. Clinic time, %(zone)s. Not before the start.") % zone
        )
        order = clinic_date_order()
        example = EXAMPLE_DATE.strftime(order.shown)
        birth_field = self.fields["patient_birth_date"]
        birth_field.help_text = _("%(words)s, for example %(example)s.") % {
            "words": capfirst(order.words),
            "example": example,
        }
        birth_field.error_messages["invalid"] = _(
            "Enter the birth date as %(words)s, for example %(example)s."
        ) % {"words": order.words, "example": example}
        describe_fields(self)
        today = timezone.localdate()
        birth = self.fields["patient_birth_date"].widget.attrs
        birth["max"] = today.isoformat()
        birth["min"] = oldest_birth_date(today).isoformat()
        birth["data-start"] = picker_start(today).isoformat()

    ended_statuses = ENDED_STATUSES

    #: The user's own Corti user ID (their profile), set as the assigned
    #: user of a new form: a value the group may keep closed over.
    assigned_default: uuid.UUID | None = None

    @property
    def more_details_open(self) -> bool:
        """Whether the group of rarely used fields is shown open."""
        if any(self[name].errors for name in RARELY_USED_NAMES):
            return True
        default = str(self.assigned_default or "")
        if any(
            self[name].value() not in (None, "")
            and not (name == "assigned_user_id" and str(self[name].value()) == default)
            for name in RARELY_USED_NAMES
        ):
            return True
        return self["encounter_status"].value() in ENDED_STATUSES

    @property
    def encounter_fields(self) -> list[BoundField]:
        """The encounter's fields a typical intake fills, in order."""
        return self._shown(Section.ENCOUNTER)

    @property
    def patient_fields(self) -> list[BoundField]:
        return self._shown(Section.PATIENT)

    @property
    def more_fields(self) -> list[BoundField]:
        """The rarely used fields, in the "More details" group."""
        return [self[name] for name in RARELY_USED_NAMES]

    def _shown(self, section: Section) -> list[BoundField]:
        return [
            self[f.name]
            for f in FORM_FIELDS
            if f.section == section and not f.rarely_used
        ]

    @property
    def details(self) -> InteractionDetails:
        """The cleaned details, for the services (after is_valid())."""
        return InteractionDetails.from_values(self.cleaned_data)

    def clean_patient_birth_date(self) -> dt.date | None:
        value = self.cleaned_data["patient_birth_date"]
        if value is None:
            return None
        today = timezone.localdate()
        if value > today:
            raise ValidationError(
                self.error_messages["birth_in_future"], code="birth_in_future"
            )
        if value < oldest_birth_date(today):
            raise ValidationError(
                self.error_messages["birth_too_old"],
                code="birth_too_old",
                params={"years": OLDEST_BIRTH_YEARS},
            )
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.key_renewed:
            self.add_error(
                None,
                ValidationError(self.error_messages["key_renewed"], code="key_renewed"),
            )
        start = data.get("encounter_started_at")
        end = data.get("encounter_ended_at")
        if start and end and end < start:
            self.add_error(
                "encounter_ended_at",
                ValidationError(
                    self.error_messages["end_before_start"],
                    code="end_before_start",
                    params={"start": clinic_time_text(start)},
                ),
            )
        # A refused identifier already has its own message.
        if (
            not data.get("patient_identifier")
            and "patient_identifier" not in self.errors
            and any(data.get(name) for name in PATIENT_DETAIL_NAMES)
        ):
            self.add_error(
                "patient_identifier",
                ValidationError(
                    self.error_messages["patient_identifier_required"],
                    code="patient_identifier_required",
                ),
            )
        return data

    @property
    def field_error_count(self) -> int:
        """How many fields are marked (errors above the form not counted)."""
        return sum(1 for name in self.errors if name != "__all__")

    def add_corti_errors(self, validation_errors: list[dict[str, str]]) -> None:
        """Show Corti's validationErrors beside the fields they name."""
        for item in validation_errors:
            for path, message in item.items():
                key = re.sub(r"[^a-z0-9]", "", path.lower().removeprefix("$."))
                field = CORTI_FIELD_PATHS.get(key)
                if field is None:
                    self.add_error(
                        None,
                        _("Corti: %(path)s %(message)s")
                        % {
                            "path": path,
                            "message": message,
                        },
                    )
                else:
                    self.add_error(
                        field, _("Corti: %(message)s") % {"message": message}
                    )


# Labels are declared with the fields (intake.fields), once.
for _detail in DETAIL_FIELDS:
    IntakeForm.base_fields[_detail.name].label = _detail.label
del _detail


def prefill_from_query(params: Any) -> dict[str, str]:
    """Initial form values from a deep link's query string (unknown keys ignored).

    Date-times with an offset or a Z are shown in the clinic's time zone.
    """
    initial: dict[str, str] = {}
    # Never the submission key: a link must never reuse someone's submission.
    for name in DETAIL_NAMES:
        value = params.get(name)
        if value is None or value == "":
            continue
        value = str(value)[:1000]
        if name in TIME_NAMES:
            value = _local_datetime_text(value)
        initial[name] = value
    return initial


def initial_from_record(record: Any) -> dict[str, Any]:
    """Initial form values from a logged submission, to correct and send again.

    The form carries the record's submission key, so sending it updates that
    record instead of starting another.
    """
    return {"submission_key": record.submission_key, **record.details.as_dict()}


def form_for_record(record: Any) -> IntakeForm:
    """A bound form holding a logged submission, so its errors can be shown."""
    initial = initial_from_record(record)
    fields = IntakeForm.base_fields
    data: dict[str, str] = {}
    for name, value in initial.items():
        if value is None or value == "":
            continue
        shown = fields[name].widget.format_value(value)
        if isinstance(shown, list):  # select widgets format to a list
            shown = shown[0] if shown else ""
        data[name] = str(shown if shown is not None else value)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            # A repeated hour keeps the reading that was sent.
            data[name + FOLD_SUFFIX] = str(value.astimezone(clinic_time_zone()).fold)
    form = IntakeForm(data=data)
    form.is_valid()
    return form


def _local_datetime_text(value: str) -> str:
    from django.utils.dateparse import parse_datetime

    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        return value
    if parsed is None:
        return value
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(clinic_time_zone()).replace(tzinfo=None)
        except OverflowError:
            # Off the edge of the calendar: shown as given, refused on submit.
            return value
    return parsed.strftime(LOCAL_DATETIME_WIDGET_FORMAT)


class SignInForm(AuthenticationForm):
    """Django's sign-in form, each input linked to its error messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        describe_fields(self, "login-errors")
        if self.is_bound:
            # After a failed try, focus goes to the first problem instead.
            for field in self.fields.values():
                field.widget.attrs.pop("autofocus", None)


class PasswordChangeForm(DjangoPasswordChangeForm):
    """Django's password change; wrong current passwords are throttled like
    failed sign-ins (intake.throttling.password_verify)."""

    def __init__(self, user: Any, *args: Any, request: Any, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)
        describe_fields(self)

    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        if not password_verify(
            request=self.request, user=self.user, password=old_password
        ):
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


#: "Submitted by" in the history's filters: the signed-in user, or anyone.
MINE, ANYONE = "mine", "all"
#: The days the history's date filters accept.
HISTORY_FIRST_DAY = dt.date(1900, 1, 1)
HISTORY_LAST_DAY = dt.date(2999, 12, 31)
OUTCOME_CHOICES = Interaction.Outcome.choices


class HistoryFilterForm(forms.Form):
    """The history's search box and filters, read from the page's address.

    Each filter is applied only when it is valid; one that is not keeps its
    message beside its field. "Submitted by" defaults to the user's own
    submissions for clinicians, and to everyone's for administrators (staff,
    who may also pick one user) and for those who only read.
    """

    q = forms.CharField(required=False, max_length=255, strip=True)
    status = forms.ChoiceField(required=False, choices=ENCOUNTER_STATUS_CHOICES)
    type = forms.ChoiceField(required=False, choices=ENCOUNTER_TYPE_CHOICES)
    outcome = forms.ChoiceField(required=False, choices=OUTCOME_CHOICES)
    submitted_from = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": _("Enter a date as 2026-11-30.")},
    )
    submitted_to = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": _("Enter a date as 2026-11-30.")},
    )
    by = forms.CharField(required=False)
    # Set by the table's column headers, never typed: a hand-edited address
    # with an order this list does not know says so above the table.
    sort = forms.ChoiceField(
        required=False,
        choices=[(key, sort.words) for key, sort in SORTS.items()],
        error_messages={
            "invalid_choice": _(
                "The list has no order “%(value)s”: it is shown newest first."
            )
        },
    )

    def __init__(self, data: Any, *, user: Any, submitters: Any = ()) -> None:
        super().__init__(data)
        self.user = user
        # Those who submit start from their own; administrators and readers
        # (who submit nothing) from everyone's.
        submits = user.has_perm("intake.add_interaction")
        self.default_by = MINE if submits and not user.is_staff else ANYONE
        self.submitters = list(submitters) if user.is_staff else []

    def clean_q(self) -> str:
        # A NUL cannot be stored or searched (the middleware drops it too).
        return str(self.cleaned_data["q"]).replace("\x00", "")

    def clean_submitted_from(self) -> dt.date | None:
        return self._history_day(self.cleaned_data["submitted_from"])

    def clean_submitted_to(self) -> dt.date | None:
        return self._history_day(self.cleaned_data["submitted_to"])

    @staticmethod
    def _history_day(day: dt.date | None) -> dt.date | None:
        # Far outside the history, a day's bounds would not fit a timestamp.
        if day is not None and not (HISTORY_FIRST_DAY <= day <= HISTORY_LAST_DAY):
            raise ValidationError(
                _("Enter a day between %(first)s and %(last)s."),
                code="out_of_range",
                params={"first": HISTORY_FIRST_DAY, "last": HISTORY_LAST_DAY},
            )
        return day

    def clean_by(self) -> str:
        value = self.cleaned_data["by"] or self.default_by
        if value in (MINE, ANYONE):
            return str(value)
        # A user's id: plain digits that fit the column (not "²", not 10**30).
        if self.user.is_staff and re.fullmatch(r"[0-9]{1,18}", value):
            return str(value)
        raise ValidationError(
            _("Choose yourself or anyone.")
            if not self.user.is_staff
            else _("Choose yourself, anyone or one user from the list."),
            code="invalid",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("submitted_from"), cleaned.get("submitted_to")
        if start and end and end < start:
            self.add_error(
                "submitted_to", _("The last day is before the first: swap them.")
            )
        return cleaned

    def selection(self) -> dict[str, Any]:
        """The selector's arguments (intake.selectors.interaction_list) for
        the filters that are valid."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        by = data.get("by", self.default_by)
        submitted_by = None
        if by == MINE:
            submitted_by = self.user.pk
        elif by not in (ANYONE, None):
            submitted_by = int(by)
        start, end = data.get("submitted_from"), data.get("submitted_to")
        return {
            "q": data.get("q", ""),
            "encounter_status": data.get("status", ""),
            "encounter_type": data.get("type", ""),
            "outcome": data.get("outcome", ""),
            "submitted_from": clinic_day_start(start) if start else None,
            "submitted_before": (
                clinic_day_start(end + dt.timedelta(days=1)) if end else None
            ),
            "submitted_by": submitted_by,
        }

    def order(self) -> HistorySort:
        """The list's order: the one asked for, or newest first."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return SORTS[data.get("sort") or DEFAULT_SORT]

    def narrowed(self) -> bool:
        """Whether anything other than the defaults is asked for."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        asked = ("status", "type", "outcome", "submitted_from", "submitted_to")
        searched = bool(words(data.get("q", "")) or id_prefix_range(data.get("q", "")))
        return (
            searched
            or any(data.get(name) for name in asked)
            or data.get("by", self.default_by) != self.default_by
        )


class EndForm(forms.Form):
    """When an encounter ended: now (left empty), or a time on the clinic's
    clocks, not before its start and not in the future (DST-safe, as the
    intake form: a skipped time is refused, a repeated one asks which)."""

    error_messages = {
        "before_start": _("The end must not be before the start (%(start)s)."),
        "future": _("The end cannot be in the future: leave it empty for now."),
        "starts_later": _(
            "It starts at %(start)s, later than now: it cannot end before it "
            "starts. Correct its start first, or end it once it has started."
        ),
    }
    #: A clock a little ahead of the server's is not "the future".
    FUTURE_SLACK = dt.timedelta(minutes=2)

    ended_at = ClinicDateTimeField(required=False, label=_("Ended at"))

    def __init__(self, *args: Any, started_at: dt.datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started_at = started_at
        field = self.fields["ended_at"]
        assert isinstance(field, ClinicDateTimeField)
        if self.is_bound:
            field.fold_choice = self.data.get(self.add_prefix("ended_at") + FOLD_SUFFIX)
        field.help_text = _(
            "Optional: leave empty for now. Clinic time, %(zone)s; not before "
            "the start (%(start)s)."
        ) % {"zone": settings.TIME_ZONE, "start": clinic_time_text(started_at)}
        describe_fields(self)

    def clean_ended_at(self) -> dt.datetime | None:
        ended: dt.datetime | None = self.cleaned_data.get("ended_at")
        if ended is None and timezone.now() < self.started_at:
            # "Now" is before a planned start: say so, send nothing.
            raise ValidationError(
                self.error_messages["starts_later"],
                code="starts_later",
                params={"start": clinic_time_text(self.started_at)},
            )
        if ended is None:
            return None
        if ended < self.started_at:
            raise ValidationError(
                self.error_messages["before_start"],
                code="before_start",
                params={"start": clinic_time_text(self.started_at)},
            )
        if ended > timezone.now() + self.FUTURE_SLACK:
            raise ValidationError(self.error_messages["future"], code="future")
        return ended


def shown_details(details: InteractionDetails) -> str:
    """The details a correction form shows, as its hidden `shown` field
    carries them (JSON): what the clinician's changes are measured against."""
    return json.dumps(
        {name: json_value(value) for name, value in details.as_dict().items()}
    )


class CorrectionForm(IntakeForm):
    """The intake form for correcting a created interaction: the same fields
    and rules, without a submission key. A patient identifier once given can
    be corrected but not removed (Corti keeps a patient once it has one)."""

    error_messages = {
        **IntakeForm.error_messages,
        "patient_kept": _(
            "Corti keeps the patient once given: correct the identifier "
            "instead of removing it."
        ),
        "assigned_kept": _(
            "Corti always keeps an assigned user (it picks one when none is "
            "given): enter another user's ID instead of removing it."
        ),
    }

    def __init__(
        self, *args: Any, had_patient: bool, had_assigned: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.key_renewed = False
        del self.fields["submission_key"]
        self.had_patient = had_patient
        self.had_assigned = had_assigned

    # What the form showed (shown_details): only fields the clinician changed
    # from it are sent, never a value Corti took while the form was open.
    shown = forms.CharField(required=False, widget=forms.HiddenInput)

    def edited(self) -> frozenset[str]:
        """The details the clinician changed from what the form showed (to the
        minute for times, as the form shows them); all of them when the form
        does not say what it showed."""
        try:
            shown = json.loads(self.cleaned_data.get("shown") or "")
        except ValueError:
            shown = None
        names = list(DETAIL_NAMES)
        if not isinstance(shown, dict):
            return frozenset(names)
        edited = set()
        for name in names:
            now = self.cleaned_data.get(name)
            before = shown.get(name)
            if isinstance(now, dt.datetime):
                try:
                    then = dt.datetime.fromisoformat(str(before))
                except ValueError:
                    edited.add(name)
                    continue
                if then.replace(second=0, microsecond=0) != now.replace(
                    second=0, microsecond=0
                ):
                    edited.add(name)
            elif ("" if now is None else str(now)) != (
                "" if before is None else str(before)
            ):
                edited.add(name)
        return frozenset(edited)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if (
            self.had_patient
            and not data.get("patient_identifier")
            and "patient_identifier" not in self.errors
        ):
            self.add_error(
                "patient_identifier",
                ValidationError(
                    self.error_messages["patient_kept"], code="patient_kept"
                ),
            )
        if (
            self.had_assigned
            and not data.get("assigned_user_id")
            and "assigned_user_id" not in self.errors
        ):
            self.add_error(
                "assigned_user_id",
                ValidationError(
                    self.error_messages["assigned_kept"], code="assigned_kept"
                ),
            )
        return data


class ProfileForm(forms.Form):
    """A user's Corti user ID: the intake form's assigned user by default."""

    corti_user_id = forms.UUIDField(
        required=False,
        label=_("Corti user ID"),
        help_text=_(
            "Optional. The user's ID in Corti, as the Corti console shows it; "
            "new intake forms assign interactions to it."
        ),
        error_messages={
            "invalid": _(
                "Enter a valid UUID, like f47ac10b-58cc-4372-a567-0e02b2c3d479."
            )
        },
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "maxlength": 36}
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        describe_fields(self)
