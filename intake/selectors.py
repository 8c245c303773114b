"""Reads: looking submissions up."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from intake.models import CortiCall, Interaction, InteractionEvent

Outcome = Interaction.Outcome


def interaction_list(
    *,
    q: str = "",
    encounter_status: str = "",
    encounter_type: str = "",
    outcome: str = "",
) -> QuerySet[Interaction]:
    """Submissions newest first, narrowed by a search text and filters.

    `q` matches a Corti interaction ID exactly, or part of an encounter
    identifier, a patient identifier or a patient name.
    """
    queryset = Interaction.objects.select_related("submitted_by").order_by(
        "-created_at"
    )
    q = q.strip()
    if q:
        match = (
            Q(encounter_identifier__icontains=q)
            | Q(patient_identifier__icontains=q)
            | Q(patient_name__icontains=q)
        )
        with contextlib.suppress(ValueError):
            key = uuid.UUID(q)
            match |= Q(interaction_id=key) | Q(pk=key)
        queryset = queryset.filter(match)
    if encounter_status:
        queryset = queryset.filter(encounter_status=encounter_status)
    if encounter_type:
        queryset = queryset.filter(encounter_type=encounter_type)
    if outcome:
        queryset = queryset.filter(outcome=outcome)
    return queryset


def interaction_get(*, record_id: uuid.UUID) -> Interaction:
    """One submission, by its local id or its Corti interaction ID; 404 if none."""
    return get_object_or_404(
        Interaction.objects.select_related("submitted_by"),
        Q(pk=record_id) | Q(interaction_id=record_id),
    )


def interaction_by_submission_key(*, key: uuid.UUID) -> Interaction | None:
    """The submission a rendered form created, if it was sent."""
    return Interaction.objects.filter(submission_key=key).first()


def interaction_duplicate_of(
    *,
    encounter_identifier: str,
    patient_identifier: str,
    started_at: dt.datetime,
    window: dt.timedelta,
) -> Interaction | None:
    """The newest created interaction this one may duplicate, if any.

    The same encounter identifier; else the same patient with an encounter
    started within `window` of this one. Both look-ups use an index.
    """
    created = Interaction.objects.filter(outcome=Outcome.CREATED).select_related(
        "submitted_by"
    )
    same = (
        created.filter(encounter_identifier=encounter_identifier)
        .order_by("-created_at")
        .first()
    )
    if same is not None or not patient_identifier:
        return same
    return (
        created.filter(
            patient_identifier=patient_identifier,
            encounter_started_at__gt=started_at - window,
            encounter_started_at__lt=started_at + window,
        )
        .order_by("-created_at")
        .first()
    )


def interaction_calls(*, record: Interaction) -> QuerySet[CortiCall]:
    """Every call to Corti made for a submission, oldest first."""
    return record.calls.select_related("user").order_by("started_at", "id")


def interaction_events(*, record: Interaction) -> QuerySet[InteractionEvent]:
    """What else happened to a submission (refused reuses, flags), oldest first."""
    return record.events.select_related("user").order_by("at", "id")
