"""What the page says after a POST, as tables: one accurate sentence per case.

The views look a sentence up here instead of deciding it in a ladder of
conditions; each sentence says no more than the record shows.
"""

from __future__ import annotations

from django.contrib import messages
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .clinic_time import clinic_time_text
from .enums import ErrorCode
from .fields import DETAIL_FIELDS
from .models import Interaction
from .services.interactions import RetryResult
from .services.lifecycle import LifeResult

Outcome = Interaction.Outcome
Notice = tuple[int, Promise]

#: After a valid POST of the form that reached its record, by the record's
#: outcome; `REPLAYED` when this POST made no call and the record was created.
ANSWER_NOTICES: dict[str, Notice] = {
    Outcome.PENDING: (
        messages.INFO,
        _(
            "This form was already sent and Corti has not answered yet. "
            "Nothing was sent twice; this page shows the answer when it comes."
        ),
    ),
    Outcome.UNKNOWN: (
        messages.WARNING,
        _(
            "Corti's answer was lost. The dashboard is checking with Corti "
            "whether the interaction was created; this page updates by itself. "
            "Nothing will be sent again meanwhile."
        ),
    ),
    Outcome.CREATED: (messages.SUCCESS, _("Interaction created in Corti.")),
    # The form shows a failed record's details and errors instead; should a
    # caller reach here, the page says what is true.
    Outcome.FAILED: (messages.ERROR, _("Not created in Corti: %(why)s")),
}
REPLAYED: Notice = (
    messages.INFO,
    _(
        "This form was already sent: this is the interaction it created. "
        "Nothing was sent to Corti again."
    ),
)

#: After Retry or "Check Corti now": by what the press did, whatever the
#: outcome (None), or by both, or by the outcome alone (result None).
RETRY_NOTICES: dict[tuple[RetryResult | None, str | None], Notice] = {
    (RetryResult.CHECKING, None): (
        messages.INFO,
        _(
            "Checking with Corti whether it created the interaction; this page "
            "updates by itself. Nothing is sent again meanwhile."
        ),
    ),
    (RetryResult.NOT_ALLOWED, None): (
        messages.ERROR,
        _(
            "Only %(user)s, who submitted it, or an administrator can send this "
            "submission again. Nothing was sent."
        ),
    ),
    (RetryResult.INVALID, None): (
        messages.ERROR,
        _(
            "Corti refused these details, so sending them unchanged cannot "
            "work. Nothing was sent; use “Correct and send again”."
        ),
    ),
    (RetryResult.NOTHING_TO_DO, Outcome.CREATED): (
        messages.INFO,
        _("This submission was already created."),
    ),
    (RetryResult.FOUND, Outcome.CREATED): (
        messages.INFO,
        _(
            "Corti had created this interaction from the earlier attempt "
            "after all. Nothing was sent again."
        ),
    ),
    (None, Outcome.CREATED): (messages.SUCCESS, _("Interaction created in Corti.")),
    (None, Outcome.PENDING): (
        messages.INFO,
        _("This submission is already being sent."),
    ),
    (None, Outcome.UNKNOWN): (
        messages.WARNING,
        _(
            "Corti's answer was lost again. The dashboard is checking with Corti "
            "whether it created the interaction; this page updates by itself."
        ),
    ),
    (None, Outcome.FAILED): (messages.ERROR, _("Not created in Corti: %(why)s")),
}


def answer_notice(record: Interaction, *, replayed: bool) -> tuple[int, str]:
    """What the result page says after a POST that reached the record."""
    if replayed and record.is_created:
        level, text = REPLAYED
    else:
        level, text = ANSWER_NOTICES[record.outcome]
    return level, str(text) % {"why": record.failure_explanation}


def retry_notice(record: Interaction, result: RetryResult) -> tuple[int, str]:
    """What the submission's page says after Retry or "Check Corti now"."""
    for key in ((result, None), (result, record.outcome), (None, record.outcome)):
        if key in RETRY_NOTICES:
            level, text = RETRY_NOTICES[key]
            return level, str(text) % {
                "user": record.submitted_by.get_username(),
                "why": record.failure_explanation,
            }
    raise LookupError(f"no notice for {result} on a {record.outcome} record")


#: Why a change or a read of a created interaction did not happen, by the
#: kind of error (intake.enums.ErrorCode); "" for any other.
LIFE_FAILURES: dict[str, Promise] = {
    ErrorCode.UNREACHABLE: _("Corti cannot be reached right now."),
    ErrorCode.AUTH: _(
        "The dashboard could not sign in to Corti: ask an administrator to "
        "check the Corti settings."
    ),
    ErrorCode.MISCONFIGURED: _(
        "The dashboard's Corti settings cannot be used: ask an administrator "
        "to check them."
    ),
    ErrorCode.UNAUTHORIZED: _(
        "Corti did not accept the dashboard's access token: ask an "
        "administrator to check the Corti settings."
    ),
    ErrorCode.FORBIDDEN: _(
        "Corti refused it (403): this tenant or API client may not do that."
    ),
    ErrorCode.RATE_LIMITED: _(
        "Corti is limiting requests right now: try again in a minute."
    ),
    ErrorCode.INVALID: _("Corti did not accept the change: %(fields)s."),
    ErrorCode.TIMEOUT: _("Corti did not answer in time."),
    ErrorCode.DISCONNECTED: _("The connection to Corti dropped."),
    ErrorCode.SERVER_ERROR: _("Corti answered with a server error."),
    "": _("Corti answered with an error (%(status)s)."),
}

#: What the page says after each action (refresh, end, correct, delete),
#: by what happened.
LIFE_NOTICES: dict[tuple[str, str], Notice] = {
    ("refresh", "changed"): (
        messages.SUCCESS,
        _(
            "Read from Corti: %(count)s detail(s) had changed since the last "
            "read (%(fields)s); this page shows them now, with who changed "
            "them under Changes."
        ),
    ),
    ("refresh", "same"): (
        messages.SUCCESS,
        _("Read from Corti: nothing has changed."),
    ),
    ("end", "done"): (messages.SUCCESS, _("Encounter ended in Corti at %(ended)s.")),
    ("correct", "done"): (
        messages.SUCCESS,
        _("Corrected in Corti: %(fields)s."),
    ),
    ("correct", "same"): (
        messages.INFO,
        _("Nothing was changed: the details are as Corti holds them."),
    ),
    ("delete", "done"): (
        messages.SUCCESS,
        _(
            "Deleted in Corti, with its recordings, transcripts, facts and "
            "documents. This record is kept, marked deleted."
        ),
    ),
    ("any", "gone"): (
        messages.WARNING,
        _(
            "Corti no longer has this interaction: it was deleted outside the "
            "dashboard. Nothing was changed; this record is kept, marked gone."
        ),
    ),
    ("any", "unsettled"): (
        messages.WARNING,
        _(
            "Corti's answer was lost, and reading the interaction back could "
            "not confirm the change: Corti may still be making it. Nothing was "
            "sent again and nothing changed here; press Refresh in a moment to "
            "see what Corti holds. %(why)s"
        ),
    ),
    ("end", "already"): (
        messages.INFO,
        _("This encounter had already ended (%(ended)s); nothing was sent."),
    ),
    ("any", "failed"): (
        messages.ERROR,
        _("Nothing was changed. %(why)s%(request)s"),
    ),
    ("refresh", "failed"): (
        messages.ERROR,
        _(
            "Could not read from Corti; this page shows the last copy. "
            "%(why)s%(request)s"
        ),
    ),
    ("any", "closed"): (
        messages.ERROR,
        _(
            "Nothing was sent: this interaction cannot be changed now. It is "
            "not in Corti (deleted, or gone), was never created there, or an "
            "earlier change's answer was lost and is not settled yet (press "
            "Refresh from Corti)."
        ),
    ),
}


def life_notice(
    action: str, result: LifeResult, record: Interaction
) -> tuple[int, str]:
    """What the page says after a refresh, end, correction or delete."""
    error = result.error
    why = ""
    request = ""
    if error is not None:
        fields = ", ".join(
            f"{path}: {message}"
            for path, message in (
                error.problem.validation_errors if error.problem else ()
            )
        )
        why = str(LIFE_FAILURES.get(error.code, LIFE_FAILURES[""])) % {
            "fields": fields or error.message,
            "status": error.status or "no status",
        }
        if error.request_id:
            request = " " + str(_("Corti request id: %(id)s.")) % {
                "id": error.request_id
            }
    if result.already:
        case = "already"
    elif result.gone:
        case = "gone"
    elif result.unsettled:
        case = "unsettled"
    elif not result.ok and error is None:
        case = "closed"
    elif not result.ok:
        case = "failed"
    elif action in ("refresh", "correct") and not result.changed:
        case = "same"
    elif action == "refresh":
        case = "changed"
    else:
        case = "done"
    level, text = LIFE_NOTICES.get((action, case)) or LIFE_NOTICES[("any", case)]
    labels = {f.name: str(f.label) for f in DETAIL_FIELDS}
    ended = record.encounter_ended_at
    return level, str(text) % {
        "count": len(result.changed),
        "fields": ", ".join(labels.get(n, n) for n in result.changed),
        "ended": clinic_time_text(ended) if ended else "",
        "why": why,
        "request": request,
    }
