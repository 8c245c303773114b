"""Reads: looking submissions up."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

from django.db.models import Case, Q, QuerySet, Value, When
from django.shortcuts import get_object_or_404

from intake.models import CortiCall, Interaction, InteractionEvent

Outcome = Interaction.Outcome
# interaction_duplicate_of's rank of a row that only looks like one.
NOT_A_DUPLICATE = 3


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
    unless_key: uuid.UUID | None = None,
) -> Interaction | None:
    """The newest created interaction this one may duplicate, if any.

    The same encounter identifier; else the same patient with an encounter
    started within `window` of this one. None when a submission with the key
    `unless_key` exists (a form already sent reaches its own record). One
    query: each of its OR-ed terms uses an index (the key's, the encounter
    identifier's, the patient identifier's), and the rank orders the few
    rows found.
    """
    # Each OR-ed term is one indexed column (not "outcome AND ...", which
    # SQLite would answer from the outcome index, a walk over every created
    # row); the rank says which term a row met, and whether it was created.
    created = Q(outcome=Outcome.CREATED)
    same_encounter = Q(encounter_identifier=encounter_identifier)
    match = same_encounter
    ranks = [When(created & same_encounter, then=Value(1))]
    if patient_identifier:
        nearby = Q(
            patient_identifier=patient_identifier,
            encounter_started_at__gt=started_at - window,
            encounter_started_at__lt=started_at + window,
        )
        match |= nearby
        ranks.append(When(created & nearby, then=Value(2)))
    if unless_key is not None:
        match |= Q(submission_key=unless_key)
        ranks.insert(0, When(submission_key=unless_key, then=Value(0)))
    # Two columns, not the whole row: usually nothing is found, and the
    # whole record (a second query) is read only for a duplicate to show.
    found = (
        Interaction.objects.filter(match)
        .annotate(rank=Case(*ranks, default=Value(NOT_A_DUPLICATE)))
        .order_by("rank", "-created_at")
        .values_list("pk", "rank")
        .first()
    )
    if found is None or found[1] in (0, NOT_A_DUPLICATE):
        return None
    return Interaction.objects.select_related("submitted_by").get(pk=found[0])


def interaction_calls(*, record: Interaction) -> QuerySet[CortiCall]:
    """Every call to Corti made for a submission, oldest first."""
    return record.calls.select_related("user").order_by("started_at", "id")


def interaction_events(*, record: Interaction) -> QuerySet[InteractionEvent]:
    """What else happened to a submission (refused reuses, flags), oldest first."""
    return record.events.select_related("user").order_by("at", "id")
