"""What the page says after a POST, as tables: one accurate sentence per case.

The views look a sentence up here instead of deciding it in a ladder of
conditions; each sentence says no more than the record shows.
"""

from __future__ import annotations

from django.contrib import messages
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .models import Interaction
from .services.interactions import RetryResult

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
