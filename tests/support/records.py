"""Interaction records as the services leave them, built through the
services themselves (and the simulator, over real HTTP, where they call it)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone

from intake.fields import InteractionDetails
from intake.models import CortiCall, Interaction
from intake.services import calls
from intake.services.interactions import interaction_request, interaction_submit
from intake.services.outcomes import pending_grace
from tests.support.factories import typed_values

Outcome = Interaction.Outcome


def submit(user, key: uuid.UUID | None = None, **overrides: Any):
    """One POST of the form with `key` (a fresh one by default)."""
    return interaction_submit(
        submission_key=key or uuid.uuid4(),
        submitted_by=user,
        details=InteractionDetails(**{**typed_values(), **overrides}),
    )


def calls_of(record: Interaction) -> list[tuple[str, str, str, int | None]]:
    """(kind, result, trigger, user id) of each call logged, oldest first."""
    return [
        (call.kind, call.result, call.trigger, call.user_id)
        for call in CortiCall.objects.filter(interaction=record).order_by(
            "started_at", "id"
        )
    ]


def stranded(
    user,
    *,
    age: dt.timedelta | None = None,
    created_ago: dt.timedelta = dt.timedelta(minutes=1),
    **overrides: Any,
) -> Interaction:
    """A record left pending by a worker killed while its create was in flight.

    `age` is how long ago its last attempt began: past the grace by default.
    """
    record = Interaction(submitted_by=user, time_zone="UTC")
    for name, value in {**typed_values(), **overrides}.items():
        setattr(record, name, value)
    record.request_body = interaction_request(record.details).to_json()
    record.last_attempt_at = timezone.now()
    record.save()
    calls.call_start(
        record,
        kind=CortiCall.Kind.CREATE,
        trigger=CortiCall.Trigger.SUBMIT,
        user=user,
        request_body=record.request_body,
    )
    if age is None:
        age = pending_grace() + dt.timedelta(seconds=5)
    now = timezone.now()
    Interaction.objects.filter(pk=record.pk).update(
        last_attempt_at=now - age, created_at=now - max(age, created_ago)
    )
    record.refresh_from_db()
    return record


def lost_answer(
    user, *, lost_ago: dt.timedelta = dt.timedelta(seconds=30), **overrides: Any
) -> Interaction:
    """A record whose create's answer was lost `lost_ago`, now unknown.

    No create reached the simulator; whether Corti holds it is up to the test.
    """
    from intake.services import outcomes

    record = stranded(user, age=dt.timedelta(seconds=1), **overrides)
    outcomes.mark_answer_lost(
        record,
        _timeout_error(),
        sent_at=timezone.now() - lost_ago,
    )
    # The first search, right after the loss, is over: nobody holds it.
    Interaction.objects.filter(pk=record.pk).update(
        checking_until=None, checks_made=1, next_check_at=timezone.now()
    )
    record.refresh_from_db()
    return record


def _timeout_error():
    from intake.corti.errors import CortiTimeoutError

    return CortiTimeoutError("Corti did not answer within 5 s.")


# --- the settle window -------------------------------------------------------


def settle_at(
    record: Interaction,
    seconds_after_loss: float,
    *,
    trigger: str = CortiCall.Trigger.WORKER,
) -> bool:
    """Run one forced settle as if `seconds_after_loss` had passed since the
    lost request was sent (for a stranded record: since the latest moment its
    create can have left, one call's time after its last attempt).

    True when this settle searched Corti.
    """
    from intake.services import reconciliation
    from intake.services.outcomes import one_call

    record.refresh_from_db()
    lost = record.answer_lost_at or (
        # A stranded record's create left at the latest one call after it.
        (record.last_attempt_at or record.created_at) + one_call()
    )
    return reconciliation.interaction_settle(
        record=record,
        trigger=trigger,
        force=True,
        now=lost + dt.timedelta(seconds=seconds_after_loss),
    )


def backdate_loss(record: Interaction, seconds: float) -> None:
    """Move the record's lost request (and its attempt) `seconds` into the past.

    For checks that run on the real clock (tasks, the command): with `seconds`
    beyond INTAKE_SETTLE_SECONDS a search that finds nothing proves it.
    """
    record.refresh_from_db()
    ago = dt.timedelta(seconds=seconds)
    fields: dict[str, Any] = {
        name: getattr(record, name) - ago
        for name in ("answer_lost_at", "last_attempt_at", "created_at")
        if getattr(record, name) is not None
    }
    Interaction.objects.filter(pk=record.pk).update(**fields)
    record.refresh_from_db()


def assert_typed_values_kept(record: Interaction) -> None:
    """The record holds every value of factories.typed_values()."""
    record.refresh_from_db()
    for name, value in typed_values().items():
        assert getattr(record, name) == value, name
