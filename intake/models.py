"""The local log: one record per submission to Corti."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from intake.corti.types import EncounterStatus, EncounterType, Gender

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

# The answer was lost and Corti was then searched: it had not created it.
_CHECKED_NOT_CREATED = _(
    "Corti's answer never came. The dashboard then checked Corti, which had not "
    "created the interaction. Your input is kept and it is safe to send it again."
)
UNKNOWN_EXPLANATION = _(
    "Corti's answer never came, and the dashboard could not yet confirm whether "
    "the interaction was created. Your input is kept and nothing will be sent "
    "again until that is known: the dashboard checks again when this "
    "submission is opened or submitted again."
)
FAILURE_EXPLANATIONS = {
    "invalid": _(
        "Corti did not accept some of the details. Correct the fields marked "
        "below and submit again."
    ),
    "unreachable": _(
        "Corti cannot be reached right now, so nothing was sent. Your input is "
        "kept; try again in a moment."
    ),
    "auth": _(
        "Corti cannot be reached right now: the dashboard could not sign in to "
        "Corti, so nothing was sent. Your input is kept; ask an administrator to "
        "check CORTI_CLIENT_ID, CORTI_CLIENT_SECRET and CORTI_TENANT_NAME."
    ),
    "misconfigured": _(
        "The dashboard's Corti settings cannot be used (the address or tenant "
        "is not valid), so nothing was sent. Your input is kept; ask an "
        "administrator to check CORTI_API_URL, CORTI_AUTH_URL and "
        "CORTI_TENANT_NAME."
    ),
    "unauthorized": _(
        "Corti did not accept the dashboard's access token. Your input is kept; "
        "ask an administrator to check the Corti client settings."
    ),
    "forbidden": _(
        "Corti refused this tenant or client. Your input is kept; ask an "
        "administrator to check CORTI_TENANT_NAME and the API client's "
        "permissions in the Corti console."
    ),
    "rate_limited": _(
        "Corti is limiting requests right now. Your input is kept; try again in "
        "a minute."
    ),
    "timeout": _CHECKED_NOT_CREATED,
    "disconnected": _CHECKED_NOT_CREATED,
    "server_error": _CHECKED_NOT_CREATED,
    "bad_response": _CHECKED_NOT_CREATED,
    "interrupted": _(
        "The dashboard stopped before Corti's answer was recorded. It then "
        "checked Corti, which does not have the interaction. Your input is kept "
        "and it is safe to send it again."
    ),
    "": _(
        "Corti answered with an error. Your input is kept; tell an "
        "administrator, quoting the request id below."
    ),
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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
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
        _("submission key"), unique=True, default=uuid.uuid4, editable=False
    )
    # When the latest call to Corti for this record began.
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    # Some answer was lost, so Corti may hold it: look before sending again.
    may_exist_in_corti = models.BooleanField(default=False)

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

    class Meta:
        ordering = ["-created_at"]
        permissions = [("export_interaction", _("Can export interactions (CSV)"))]
        indexes = [
            models.Index(fields=["-created_at"], name="interaction_created_idx"),
            models.Index(
                fields=["encounter_identifier"], name="interaction_encounter_idx"
            ),
            models.Index(fields=["patient_identifier"], name="interaction_patient_idx"),
            models.Index(
                fields=["outcome", "-created_at"], name="interaction_outcome_idx"
            ),
        ]

    def __str__(self) -> str:
        # No patient data: this string shows up in the admin and in logs.
        return f"Interaction {self.interaction_id or self.pk} ({self.outcome})"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("intake:interaction_detail", kwargs={"key": self.pk})

    @property
    def failure_explanation(self) -> str:
        """What a failed submission means for the clinician, in one sentence."""
        if self.outcome == self.Outcome.UNKNOWN:
            return str(UNKNOWN_EXPLANATION)
        return str(FAILURE_EXPLANATIONS.get(self.error_code, FAILURE_EXPLANATIONS[""]))

    @property
    def retryable(self) -> bool:
        """Failed with nothing created in Corti, and not rejected for its content."""
        return self.outcome == self.Outcome.FAILED and self.error_code != "invalid"


class CortiCall(models.Model):
    """One call to Corti made for a submission: the audit trail of its attempts."""

    class Kind(models.TextChoices):
        CREATE = "create", _("Create")
        LOOKUP = "lookup", _("Lookup")

    class Trigger(models.TextChoices):
        SUBMIT = "submit", _("Form submitted")
        RETRY = "retry", _("Retry")
        OPENED = "opened", _("Submission opened")
        COMMAND = "command", _("reconcile_interactions")

    class Result(models.TextChoices):
        STARTED = "started", _("No answer recorded")
        CREATED = "created", _("Created")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Answer lost")
        FOUND = "found", _("Found in Corti")
        NOT_FOUND = "not_found", _("Not in Corti")
        INCONCLUSIVE = "inconclusive", _("Could not tell")

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
    request_id = models.CharField(_("Corti request id"), max_length=128, blank=True)
    problem = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [
            models.Index(fields=["interaction", "started_at"], name="corticall_idx"),
        ]

    def __str__(self) -> str:
        when = f"{self.started_at:%Y-%m-%d %H:%M:%S}"
        return f"{self.get_kind_display()} {when} ({self.result})"
