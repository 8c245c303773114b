"""The local log: one record per submission to Corti."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrPromise

from intake.clinic_time import clinic_time_text
from intake.enums import EncounterStatus, EncounterType, ErrorCode, Gender
from intake.fields import (
    DETAIL_FIELDS,
    DetailField,
    InteractionDetails,
    Kind,
    details_from_body,
)
from intake.search import search_text

ENCOUNTER_STATUS_CHOICES = [
    (EncounterStatus.PLANNED.value, _("Planned")),
    (EncounterStatus.IN_PROGRESS.value, _("In progress")),
    (EncounterStatus.ON_HOLD.value, _("On hold")),
    (EncounterStatus.COMPLETED.value, _("Completed")),
    (EncounterStatus.CANCELLED.value, _("Cancelled")),
    (EncounterStatus.DELETED.value, _("Deleted (entered in error)")),
]
ENCOUNTER_TYPE_CHOICES = [
    (EncounterType.FIRST_CONSULTATION.value, _("First consultation")),
    (EncounterType.CONSULTATION.value, _("Consultation (follow-up)")),
    (EncounterType.EMERGENCY.value, _("Emergency")),
    (EncounterType.INPATIENT.value, _("Inpatient")),
    (EncounterType.OUTPATIENT.value, _("Outpatient")),
]
GENDER_CHOICES = [
    (Gender.FEMALE.value, _("Female")),
    (Gender.MALE.value, _("Male")),
    (Gender.OTHER.value, _("Other")),
    (Gender.UNKNOWN.value, _("Unknown")),
]

# What became of Corti's answer, when it did not say whether it created the
# interaction: one accurate sentence per kind. Keyed by str: a record keeps
# its error_code as the plain string.
LOST_ANSWER: dict[str, StrPromise] = {
    ErrorCode.TIMEOUT: _("Corti did not answer in time."),
    ErrorCode.DISCONNECTED: _(
        "The connection to Corti dropped before its answer arrived."
    ),
    ErrorCode.SERVER_ERROR: _(
        "Corti answered with a server error, which does not say whether it "
        "created the interaction."
    ),
    ErrorCode.BAD_RESPONSE: _("Corti's answer was cut off or could not be read."),
    ErrorCode.INTERRUPTED: _(
        "The dashboard stopped before Corti's answer was recorded."
    ),
}
_CHECKED_NOT_CREATED = _(
    "The dashboard then checked Corti, after the request could no longer be in "
    "progress there, and Corti had not created the interaction. Your input is "
    "kept and it is safe to send it again."
)
UNKNOWN_EXPLANATION = _(
    "The dashboard is checking with Corti whether the interaction was created. "
    "Nothing will be sent again until that is known; this page updates by "
    "itself."
)
NEEDS_ATTENTION_EXPLANATION = _(
    "Corti could not be searched for a day since, so it is still not known "
    "whether the interaction was created. An administrator has been alerted; "
    "the dashboard keeps checking, and nothing will be sent again until it is "
    "known."
)
FAILURE_EXPLANATIONS = {
    ErrorCode.INVALID: _(
        "Corti did not accept some of the details. Correct the fields marked "
        "below and submit again."
    ),
    ErrorCode.UNREACHABLE: _(
        "Corti cannot be reached right now, so nothing was sent. Your input is "
        "kept; try again in a moment."
    ),
    ErrorCode.AUTH: _(
        "Corti cannot be reached right now: the dashboard could not sign in to "
        "Corti, so nothing was sent. Your input is kept; ask an administrator to "
        "check CORTI_CLIENT_ID, CORTI_CLIENT_SECRET and CORTI_TENANT_NAME."
    ),
    ErrorCode.MISCONFIGURED: _(
        "The dashboard's Corti settings cannot be used (the address or tenant "
        "is not valid), so nothing was sent. Your input is kept; ask an "
        "administrator to check CORTI_API_URL, CORTI_AUTH_URL and "
        "CORTI_TENANT_NAME."
    ),
    ErrorCode.UNAUTHORIZED: _(
        "Corti did not accept the dashboard's access token. Your input is kept; "
        "ask an administrator to check the Corti client settings."
    ),
    ErrorCode.FORBIDDEN: _(
        "Corti refused this tenant or client. Your input is kept; ask an "
        "administrator to check CORTI_TENANT_NAME and the API client's "
        "permissions in the Corti console."
    ),
    ErrorCode.RATE_LIMITED: _(
        "Corti is limiting requests right now. Your input is kept; try again in "
        "a minute."
    ),
    ErrorCode.UNSEARCHABLE: _(
        "An earlier attempt's answer was lost, and Corti could not be searched "
        "just now to make sure that attempt did not create it, so nothing was "
        "sent. Your input is kept; try again in a moment."
    ),
    "": _(
        "Corti answered with an error. Your input is kept; tell an "
        "administrator, quoting the request id below."
    ),
}


#: The fields Interaction.search_text is made of.
SEARCHED_FIELDS = frozenset(
    {"patient_identifier", "encounter_identifier", "patient_name", "encounter_title"}
)


class InteractionQuerySet(models.QuerySet["Interaction"]):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(): the search text is filled here too.
        objs = list(objs)
        for obj in objs:
            obj.fill_search_text()
        return super().bulk_create(objs, *args, **kwargs)


#: The history's columns that sort it (intake.selectors.SORTS), by their key
#: in its address; each has an index of its own (Interaction.Meta.indexes).
SORTED_COLUMNS: dict[str, str] = {
    "encounter": "encounter_identifier",
    "patient": "patient_identifier",
    "status": "encounter_status",
    "type": "encounter_type",
    "outcome": "outcome",
}


class Interaction(models.Model):
    """What a clinician submitted, who and when, and what Corti answered."""

    class Outcome(models.TextChoices):
        # Saved; a call to Corti is under way (or its worker died).
        PENDING = "pending", _("Pending")
        CREATED = "created", _("Created")
        # Corti did not create it: safe to retry.
        FAILED = "failed", _("Failed")
        # Corti's answer was lost and a lookup could not settle it yet.
        UNKNOWN = "unknown", _("Unknown")

    id = models.UUIDField(
        _("local record id"), primary_key=True, default=uuid.uuid4, editable=False
    )
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)
    # PROTECT: a user who submitted interactions cannot be deleted, only
    # deactivated, so "who created what" stays answerable.
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="interactions",
    )
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.PENDING
    )
    # One per rendered form: every POST of that form reaches this record.
    submission_key = models.UUIDField(
        _("form key (one per intake form)"),
        unique=True,
        default=uuid.uuid4,
        editable=False,
    )
    # When the latest call to Corti for this record began.
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    # Some answer was lost, so Corti may hold it: look before sending again.
    may_exist_in_corti = models.BooleanField(
        _("an earlier answer was lost"), default=False
    )
    # Settling a lost answer (intake.services.outcomes): when the create whose
    # answer was lost was sent, when Corti is to be searched next, how often
    # it was, and whether a search is under way (a lease, so two workers
    # never search for one record at once).
    answer_lost_at = models.DateTimeField(
        _("lost answer's request sent at"), null=True, blank=True
    )
    next_check_at = models.DateTimeField(_("next check at"), null=True, blank=True)
    last_checked_at = models.DateTimeField(_("last checked at"), null=True, blank=True)
    checks_made = models.PositiveIntegerField(_("checks made"), default=0)
    checking_until = models.DateTimeField(null=True, blank=True, editable=False)
    # Still unknown a day after the answer was lost: an administrator looks.
    needs_attention = models.BooleanField(_("needs an administrator"), default=False)

    # What was sent, field by field, as the clinician gave it.
    assigned_user_id = models.UUIDField(_("assigned user ID"), null=True, blank=True)
    encounter_identifier = models.CharField(_("encounter identifier"), max_length=255)
    encounter_status = models.CharField(
        _("encounter status"), max_length=32, choices=ENCOUNTER_STATUS_CHOICES
    )
    encounter_type = models.CharField(
        _("encounter type"), max_length=32, choices=ENCOUNTER_TYPE_CHOICES
    )
    encounter_title = models.CharField(_("title"), max_length=255, blank=True)
    encounter_started_at = models.DateTimeField(_("started at"))
    encounter_ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    patient_identifier = models.CharField(
        _("patient identifier"), max_length=255, blank=True
    )
    patient_name = models.CharField(_("patient name"), max_length=255, blank=True)
    patient_gender = models.CharField(
        _("gender"), max_length=16, choices=GENDER_CHOICES, blank=True
    )
    patient_birth_date = models.DateField(_("birth date"), null=True, blank=True)
    patient_pronouns = models.CharField(_("pronouns"), max_length=64, blank=True)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        help_text=_("The clinic time zone the times were entered in."),
    )
    # The exact JSON body sent to Corti.
    request_body = models.JSONField(_("request body"), default=dict)

    # Corti's answer.
    interaction_id = models.UUIDField(
        _("Corti interaction ID"), null=True, blank=True, unique=True
    )
    websocket_url = models.TextField(_("websocket URL"), blank=True)
    completed_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    error_status = models.PositiveSmallIntegerField(
        _("error HTTP status"), null=True, blank=True
    )
    error_message = models.TextField(_("error"), blank=True)
    error_request_id = models.CharField(
        _("Corti request id"), max_length=128, blank=True
    )
    error_problem = models.JSONField(_("problem details"), null=True, blank=True)
    # The client's name for the kind of failure (intake.corti.errors).
    error_code = models.CharField(_("error kind"), max_length=32, blank=True)
    # Its life after the create (intake.services.lifecycle): what Corti held
    # when last read (GET one, the list, or a change's answer), and when.
    corti_state = models.JSONField(
        _("what Corti holds"), null=True, blank=True, editable=False
    )
    corti_read_at = models.DateTimeField(
        _("last read from Corti"), null=True, blank=True
    )
    # Corti answered 404: gone there (deleted elsewhere). Never erased here.
    corti_gone_at = models.DateTimeField(
        _("gone from Corti since"), null=True, blank=True
    )
    # Deleted in Corti from this dashboard, and by whom.
    deleted_at = models.DateTimeField(_("deleted in Corti at"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("deleted by"),
    )
    # A change sent from here whose answer was lost and that no read has
    # confirmed yet: {"kind", "by" (user id), "at", "fields", "sent"}. The
    # next read that shows it done credits it to its sender; until it is
    # settled no other change is sent (intake.services.lifecycle).
    pending_change = models.JSONField(
        _("unconfirmed change"), null=True, blank=True, editable=False
    )
    # Made outside the dashboard and brought in by sync_interactions: nothing
    # was sent from here (its request body is empty).
    imported = models.BooleanField(_("made outside the dashboard"), default=False)
    # What the history's search box matches (intake.search): identifiers,
    # patient name and title, folded. Kept by save() and bulk_create; on
    # PostgreSQL a trigram index answers "part of it" (migration 0005).
    search_text = models.TextField(
        _("search text"), blank=True, default="", editable=False
    )

    objects = InteractionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("export_interaction", _("Can export interactions (CSV)")),
            (
                "resend_any_interaction",
                _("Can correct and send again anyone's failed submission"),
            ),
            ("view_overview", _("Can see the administrators' overview (charts)")),
            (
                "follow_interaction",
                _("Can refresh, end and correct own created interactions"),
            ),
            (
                "change_any_interaction",
                _("Can refresh, end and correct anyone's created interactions"),
            ),
            ("delete_in_corti", _("Can delete interactions in Corti")),
        ]
        indexes = [
            # The history's order and its pages' cursors (selectors.HistoryCursor).
            models.Index(fields=["-created_at", "-id"], name="interaction_history_idx"),
            models.Index(
                fields=["submitted_by", "-created_at", "-id"],
                name="interaction_submitter_idx",
            ),
            # The history's other orders (selectors.SORTS), each read forwards
            # or backwards; they also serve a filter on their first column.
            *(
                models.Index(
                    fields=[column, "-created_at", "-id"],
                    name=f"interaction_{key}_idx",
                )
                for key, column in SORTED_COLUMNS.items()
            ),
            # The overview's counts per day (intake.selectors): a range of
            # days read from the index alone.
            models.Index(
                fields=[
                    "created_at",
                    "imported",
                    "encounter_type",
                    "outcome",
                    "submitted_by",
                ],
                name="interaction_overview_idx",
            ),
            # The sweep's question: which unknown records are overdue a check.
            models.Index(
                fields=["outcome", "next_check_at"], name="interaction_settle_idx"
            ),
        ]

    def __str__(self) -> str:
        # No patient data: this string shows up in the admin and in logs.
        return f"Interaction {self.interaction_id or self.pk} ({self.outcome})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.fill_search_text()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and SEARCHED_FIELDS & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "search_text"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("intake:interaction_detail", kwargs={"record_id": self.pk})

    def fill_search_text(self) -> None:
        self.search_text = search_text(
            patient_identifier=self.patient_identifier,
            encounter_identifier=self.encounter_identifier,
            patient_name=self.patient_name,
            encounter_title=self.encounter_title,
        )

    @property
    def details(self) -> InteractionDetails:
        """The twelve details the record holds: as the clinician gave them,
        or, once a created interaction is followed, as Corti holds them."""
        return InteractionDetails.of(self)

    @cached_property
    def sent(self) -> Interaction:
        """The details as they were sent when it was created (from its
        request body), whatever Corti holds now; itself when nothing was sent
        from here (imported) or the body holds no details."""
        if not self.request_body:
            return self
        details = details_from_body(self.request_body)
        if details["encounter_started_at"] is None:
            return self
        return Interaction(
            pk=self.pk,
            interaction_id=self.interaction_id,
            submitted_by_id=self.submitted_by_id,
            created_at=self.created_at,
            **details,
        )

    def sent_rows(self) -> list[DetailRow]:
        """The details as sent, as the pages show them."""
        return [_detail_row(self.sent, field) for field in DETAIL_FIELDS]

    def comparison_rows(self) -> list[tuple[str, str, str, bool]]:
        """(label, as sent, as Corti holds it now, whether they differ) for
        each detail: what was sent when it was created (its request body)
        beside the record, which follows Corti (intake.services.lifecycle)."""
        sent = self.sent
        rows = []
        for field in DETAIL_FIELDS:
            before = _detail_row(sent, field)
            now = _detail_row(self, field)
            sent_value = getattr(sent, field.name)
            # An assigned user not sent is Corti's to choose: no difference.
            differs = sent_value != getattr(self, field.name) and not (
                field.kind == Kind.UUID and sent_value is None
            )
            rows.append(
                (
                    str(field.label),
                    _row_text(before) if self.request_body else "",
                    _row_text(now),
                    differs and bool(self.request_body),
                )
            )
        return rows

    @property
    def failure_explanation(self) -> str:
        """What a failed or unknown submission means for the clinician."""
        lost = LOST_ANSWER.get(self.error_code)
        if self.outcome == self.Outcome.UNKNOWN:
            then = (
                NEEDS_ATTENTION_EXPLANATION
                if self.needs_attention
                else (UNKNOWN_EXPLANATION)
            )
            return f"{lost or LOST_ANSWER[ErrorCode.INTERRUPTED]} {then}"
        if lost is not None:
            return f"{lost} {_CHECKED_NOT_CREATED}"
        return str(FAILURE_EXPLANATIONS.get(self.error_code, FAILURE_EXPLANATIONS[""]))

    @property
    def is_created(self) -> bool:
        return self.outcome == self.Outcome.CREATED

    @property
    def is_failed(self) -> bool:
        return self.outcome == self.Outcome.FAILED

    @property
    def is_unknown(self) -> bool:
        return self.outcome == self.Outcome.UNKNOWN

    @property
    def is_pending(self) -> bool:
        return self.outcome == self.Outcome.PENDING

    @property
    def is_settling(self) -> bool:
        """Pending or unknown: the page keeps asking until it settles."""
        return self.outcome in (self.Outcome.PENDING, self.Outcome.UNKNOWN)

    @property
    def retryable(self) -> bool:
        """Failed with nothing created in Corti, and not rejected for its content."""
        return self.is_failed and self.error_code != ErrorCode.INVALID


@dataclass(frozen=True)
class DetailRow:
    """One detail of a record, as a page shows it: a label, the value as
    text ("" when not given) and, for a choice, the code that was sent."""

    name: str
    label: str
    text: str
    code: str = ""


def _row_text(row: DetailRow) -> str:
    if not row.text:
        return "—"
    return f"{row.text} ({row.code})" if row.code else row.text


def _detail_row(record: Interaction, field: DetailField) -> DetailRow:
    value = getattr(record, field.name)
    label = str(field.label)
    if value in (None, ""):
        return DetailRow(field.name, label, "")
    display = getattr(record, f"get_{field.name}_display", None)
    if display is not None:
        code = str(value) if field.show_code else ""
        return DetailRow(field.name, label, str(display()), code)
    if isinstance(value, dt.datetime):
        return DetailRow(field.name, label, clinic_time_text(value))
    if isinstance(value, dt.date):
        return DetailRow(field.name, label, value.isoformat())
    return DetailRow(field.name, label, str(value))


def _change_text(field: DetailField, value: Any) -> str:
    """A value kept in the change history (JSON) as the pages show it."""
    if value in (None, ""):
        return "—"
    model_field = Interaction._meta.get_field(field.name)
    choices = dict(getattr(model_field, "flatchoices", None) or ())
    if value in choices:
        return f"{choices[value]} ({value})"
    if isinstance(model_field, models.DateTimeField):
        try:
            return clinic_time_text(dt.datetime.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    return str(value)


class CortiCall(models.Model):
    """One call to Corti made for a submission: the audit trail of its attempts."""

    class Kind(models.TextChoices):
        CREATE = "create", _("Create")
        LOOKUP = "lookup", _("Lookup")
        READ = "read", _("Read")
        UPDATE = "update", _("Update")
        DELETE = "delete", _("Delete")

    class Trigger(models.TextChoices):
        SUBMIT = "submit", _("Form submitted")
        RETRY = "retry", _("Retry")
        OPENED = "opened", _("Submission opened")
        COMMAND = "command", _("reconcile_interactions")
        REFRESH = "refresh", _("Refreshed")
        END = "end", _("Ended")
        EDIT = "edit", _("Corrected")
        REMOVE = "remove", _("Deleted")
        SYNC = "sync", _("sync_interactions")
        WORKER = "worker", _("Background check")

    class Result(models.TextChoices):
        STARTED = "started", _("No answer recorded")
        CREATED = "created", _("Created")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Answer lost")
        FOUND = "found", _("Found in Corti")
        NOT_FOUND = "not_found", _("Not in Corti")
        INCONCLUSIVE = "inconclusive", _("Could not tell")
        CHANGED = "changed", _("Changed")
        DELETED = "deleted", _("Deleted")

    interaction = models.ForeignKey(
        Interaction, on_delete=models.PROTECT, related_name="calls"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    # Null when the reconcile command made the call.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    result = models.CharField(
        max_length=16, choices=Result.choices, default=Result.STARTED
    )
    # For a create: the exact body sent. For a found lookup: what Corti listed.
    request_body = models.JSONField(null=True, blank=True)
    corti_id = models.UUIDField(_("Corti interaction ID"), null=True, blank=True)
    error_code = models.CharField(_("error kind"), max_length=32, blank=True)
    error_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    error_request_id = models.CharField(
        _("Corti request id"), max_length=128, blank=True
    )
    error_problem = models.JSONField(_("problem details"), null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [
            models.Index(fields=["interaction", "started_at"], name="corticall_idx"),
            # The admin's list of every call: newest first, found by the ids
            # an operator has in hand (a Corti request id, an interaction ID).
            models.Index(fields=["-started_at", "-id"], name="corticall_started_idx"),
            models.Index(fields=["error_request_id"], name="corticall_request_idx"),
            models.Index(fields=["corti_id"], name="corticall_corti_idx"),
        ]

    def __str__(self) -> str:
        when = clinic_time_text(self.started_at, seconds=True)
        return f"{self.get_kind_display()} {when} ({self.result})"


class InteractionEvent(models.Model):
    """Something that happened to a submission other than a call to Corti.

    Append-only, shown with the submission: who tried to reuse its form for
    other data, when it was flagged for an administrator.
    """

    class Kind(models.TextChoices):
        REUSED_FORM_REFUSED = (
            "reused_form_refused",
            _("Form sent again with other details; not sent"),
        )
        FLAGGED = "flagged", _("Flagged for an administrator")

    interaction = models.ForeignKey(
        Interaction, on_delete=models.PROTECT, related_name="events"
    )
    at = models.DateTimeField(_("at"))
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Null when the background worker acted.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # For a refused reuse: the encounter and patient identifiers that were
    # typed, so a reviewer can find the entry the clinician sent instead.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["interaction", "at"], name="event_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {clinic_time_text(self.at, seconds=True)}"


class AppendOnly(Exception):
    """An access entry was about to be changed or removed: never allowed."""


class InteractionChangeQuerySet(models.QuerySet["InteractionChange"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnly("an interaction's changes are never changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("an interaction's changes are never removed")


class InteractionChange(models.Model):
    """One change of a created interaction: who, when, before and after.

    Written by intake.services.lifecycle whenever what Corti holds changes
    the local record: a clinician ended or corrected it here, an
    administrator deleted it, or a read (refresh, sync) found it changed or
    gone in Corti. `before` and `after` name the record's own fields (only
    those that changed). Append-only, shown on the submission's page.
    """

    class Kind(models.TextChoices):
        ENDED = "ended", _("Ended")
        CORRECTED = "corrected", _("Corrected")
        DELETED = "deleted", _("Deleted in Corti")
        CHANGED_IN_CORTI = "changed_in_corti", _("Changed outside the dashboard")
        GONE = "gone", _("Gone from Corti")
        IMPORTED = "imported", _("Imported from Corti")

    interaction = models.ForeignKey(
        Interaction, on_delete=models.PROTECT, related_name="changes"
    )
    at = models.DateTimeField(_("when"), default=timezone.now)
    kind = models.CharField(_("what"), max_length=32, choices=Kind.choices)
    # Null when a read (refresh, sync) found the change.
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    # Corti's request id of the call that made or found the change.
    request_id = models.CharField(_("Corti request id"), max_length=128, blank=True)

    objects = InteractionChangeQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["interaction", "at"], name="change_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {clinic_time_text(self.at, seconds=True)}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("an interaction's changes are never changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnly("an interaction's changes are never removed")

    def rows(self) -> list[tuple[str, str, str]]:
        """(label, before, after) of each field it changed, as pages show them."""
        return [
            (
                str(field.label),
                _change_text(field, self.before.get(field.name)),
                _change_text(field, self.after.get(field.name)),
            )
            for field in DETAIL_FIELDS
            if field.name in self.before or field.name in self.after
        ]


class AccessEntryQuerySet(models.QuerySet["AccessEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnly("access entries are never changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("access entries are never removed")


class AccessEntry(models.Model):
    """Who did what with the history, when and from where: append-only.

    Written by intake.services.audit; never changed or removed by the app
    (save() of a stored entry, delete() and bulk update/delete refuse), by the
    admin (read-only), or on PostgreSQL by anyone (a trigger refuses UPDATE
    and DELETE, migration 0007). A search keeps what kind of term it was,
    never the term; a view keeps the patient identifier of what was seen.
    """

    class Action(models.TextChoices):
        VIEWED = "viewed", _("Viewed a submission")
        SEARCHED = "searched", _("Searched the history")
        EXPORTED = "exported", _("Exported the history")
        RETRIED = "retried", _("Sent a failed submission again")
        CORRECTED = "corrected", _("Corrected a failed submission and sent it")
        SIGNED_IN = "signed_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Failed to sign in")
        STREAM_TOKEN = "stream_token", _("Was given a recording token")

    at = models.DateTimeField(_("when"), auto_now_add=True)
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    # Null for a failed sign-in of a username that does not exist.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    # The username as typed, for failed sign-ins (kept as typed: it is how
    # a guessing attack shows).
    username = models.CharField(_("username"), max_length=150, blank=True)
    address = models.GenericIPAddressField(_("from address"), null=True, blank=True)
    interaction = models.ForeignKey(
        Interaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("submission"),
    )
    # The patient identifier of the submission seen, retried or corrected,
    # as it was then: "who looked at this patient" without a join.
    patient_identifier = models.CharField(
        _("patient identifier"), max_length=255, blank=True
    )
    # What kind of search or export (never its words), result counts.
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    objects = AccessEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("access entry")
        verbose_name_plural = _("access trail entries")
        indexes = [
            models.Index(fields=["-at"], name="access_at_idx"),
            models.Index(fields=["user", "-at"], name="access_user_idx"),
            models.Index(
                fields=["patient_identifier", "-at"], name="access_patient_idx"
            ),
            models.Index(fields=["action", "-at"], name="access_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {clinic_time_text(self.at, seconds=True)}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("access entries are never changed")
        # Always an INSERT: a new object given a stored entry's id fails
        # instead of overwriting it.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnly("access entries are never removed")


class Profile(models.Model):
    """What the dashboard keeps about a user beyond Django's account: their
    Corti user ID, which the intake form's assigned user defaults to."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="intake_profile",
        verbose_name=_("user"),
    )
    corti_user_id = models.UUIDField(_("Corti user ID"), null=True, blank=True)
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)

    class Meta:
        verbose_name = _("profile")
        permissions = [("change_any_profile", _("Can set anyone's Corti user ID"))]

    def __str__(self) -> str:
        return f"Profile of user {self.user_id}"


class Recording(models.Model):
    """One recording of a consultation, streamed from a browser to Corti.

    Written by intake.services.recording: made when the clinician confirms
    the patient's consent and presses Start (who, when, the wording they
    confirmed), then closed by what the page reports (ended, failed) or, when
    the page goes quiet, by the worker (interrupted). The audio goes from the
    browser to Corti only; what the transcript said is kept here only when
    the clinic turns that on (INTAKE_RECORDING_KEEP_TRANSCRIPT).
    """

    class State(models.TextChoices):
        STARTING = "starting", _("Starting")
        RECORDING = "recording", _("Recording")
        ENDED = "ended", _("Ended")
        FAILED = "failed", _("Did not record")
        INTERRUPTED = "interrupted", _("Interrupted")

    #: States after which nothing about the recording changes.
    CLOSED = frozenset({State.ENDED, State.FAILED, State.INTERRUPTED})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    interaction = models.ForeignKey(
        Interaction, on_delete=models.PROTECT, related_name="recordings"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("started by"),
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    consent_at = models.DateTimeField(_("patient's consent confirmed at"))
    consent_wording = models.TextField(_("consent wording confirmed"))
    language = models.CharField(_("primary language"), max_length=16)
    mode = models.CharField(_("mode"), max_length=16)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.STARTING
    )
    accepted_at = models.DateTimeField(_("Corti accepted at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    #: The last time the page said anything (a report or a token).
    last_seen_at = models.DateTimeField(_("last heard from the page"))
    seconds_recorded = models.FloatField(_("seconds recorded"), null=True, blank=True)
    seconds_lost = models.FloatField(_("seconds of audio lost"), default=0.0)
    reconnects = models.PositiveIntegerField(_("reconnections"), default=0)
    tokens_issued = models.PositiveIntegerField(_("tokens issued"), default=0)
    failure = models.CharField(_("why it stopped"), max_length=32, blank=True)
    #: SHA-256 of the starter's session key: its sign-out closes the
    #: recording (never the key itself, which would sign anyone in).
    session_hash = models.CharField(
        _("session"), max_length=64, blank=True, default="", editable=False
    )
    #: Final transcript segments and facts, only with
    #: INTAKE_RECORDING_KEEP_TRANSCRIPT (default off: patient speech is not kept).
    transcript = models.JSONField(_("transcript"), null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        verbose_name = _("recording")
        indexes = [
            models.Index(fields=["interaction", "started_at"], name="recording_idx"),
            # The worker's look for recordings whose page went quiet.
            models.Index(fields=["state", "last_seen_at"], name="recording_open_idx"),
        ]
        constraints = [
            # One recording of a consultation under way at a time: two tabs
            # pressing Start at once cannot both stream into it.
            models.UniqueConstraint(
                fields=["interaction"],
                condition=models.Q(state__in=["starting", "recording"]),
                name="one_open_recording",
            )
        ]

    def __str__(self) -> str:
        when = clinic_time_text(self.started_at, seconds=True)
        return f"Recording {when} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state not in self.CLOSED

    @property
    def failure_text(self) -> str:
        return str(RECORDING_FAILURES.get(self.failure, self.failure))


#: Why a recording stopped (Recording.failure), as pages say it.
RECORDING_FAILURES: dict[str, StrPromise] = {
    "config_denied": _("Corti refused the recording settings"),
    "config_timeout": _("Corti did not accept the settings in time"),
    "socket_failed": _("Could not connect to Corti"),
    "reconnect_failed": _("The connection dropped and could not be made again"),
    "microphone_lost": _("The microphone stopped"),
    "ended_without_answer": _("Corti did not confirm the end"),
    "page_closed": _("The page was closed or went quiet"),
    "token_failed": _("No recording token could be had"),
    "started_again": _("Started again before Corti accepted it"),
    "signed_out": _("Signed out while recording"),
    "not_allowed": _("The account was no longer allowed to record it"),
    "left_corti": _("The interaction left Corti while recording"),
    "error": _("An error on the page"),
}
