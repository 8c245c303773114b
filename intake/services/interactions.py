"""Writes: submitting an interaction to Corti and logging it locally."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from intake.corti import get_client
from intake.corti.errors import CortiAPIError, CortiError
from intake.corti.types import (
    Encounter,
    EncounterStatus,
    EncounterType,
    Gender,
    InteractionCreate,
    Patient,
)
from intake.models import Interaction

logger = logging.getLogger(__name__)


def interaction_create(
    *,
    submitted_by: AbstractBaseUser,
    encounter_identifier: str,
    encounter_status: str,
    encounter_type: str,
    encounter_started_at: dt.datetime,
    encounter_ended_at: dt.datetime | None = None,
    encounter_title: str = "",
    assigned_user_id: uuid.UUID | None = None,
    patient_identifier: str = "",
    patient_name: str = "",
    patient_gender: str = "",
    patient_birth_date: dt.date | None = None,
    patient_pronouns: str = "",
) -> Interaction:
    """Log the submission, create it in Corti, and record the answer.

    The record is saved (pending) before Corti is called and updated after,
    and the call runs outside any database transaction, so a failure anywhere
    leaves a record with everything that was typed.
    """
    request = InteractionCreate(
        assigned_user_id=assigned_user_id,
        encounter=Encounter(
            identifier=encounter_identifier,
            status=EncounterStatus(encounter_status),
            type=EncounterType(encounter_type),
            started_at=encounter_started_at,
            ended_at=encounter_ended_at,
            title=encounter_title,
        ),
        patient=Patient(
            identifier=patient_identifier,
            name=patient_name,
            gender=Gender(patient_gender) if patient_gender else None,
            birth_date=patient_birth_date,
            pronouns=patient_pronouns,
        )
        if patient_identifier
        else None,
    )
    record = Interaction.objects.create(
        submitted_by=submitted_by,
        assigned_user_id=assigned_user_id,
        encounter_identifier=encounter_identifier,
        encounter_status=encounter_status,
        encounter_type=encounter_type,
        encounter_title=encounter_title,
        encounter_started_at=encounter_started_at,
        encounter_ended_at=encounter_ended_at,
        patient_identifier=patient_identifier,
        patient_name=patient_name,
        patient_gender=patient_gender,
        patient_birth_date=patient_birth_date,
        patient_pronouns=patient_pronouns,
        time_zone=settings.TIME_ZONE,
        request_body=request.to_json(),
    )
    interaction_send(record=record, request=request)
    return record


def interaction_send(*, record: Interaction, request: InteractionCreate) -> None:
    """Call Corti for a saved record and store the answer on it."""
    try:
        created = get_client().create_interaction(request)
    except CortiError as exc:
        _record_failure(record, exc)
        return
    record.outcome = Interaction.Outcome.CREATED
    record.interaction_id = created.interaction_id
    record.websocket_url = created.websocket_url
    record.completed_at = timezone.now()
    record.save(
        update_fields=[
            "outcome",
            "interaction_id",
            "websocket_url",
            "completed_at",
            "updated_at",
        ]
    )
    logger.info("Interaction record %s created in Corti", record.pk)


def _record_failure(record: Interaction, exc: CortiError) -> None:
    record.outcome = Interaction.Outcome.FAILED
    record.error_code = exc.code
    record.error_status = getattr(exc, "status", None)
    record.error_message = exc.message
    record.error_request_id = getattr(exc, "request_id", "") or ""
    record.error_problem = (
        exc.problem.as_dict() if isinstance(exc, CortiAPIError) else None
    )
    record.completed_at = timezone.now()
    record.save(
        update_fields=[
            "outcome",
            "error_code",
            "error_status",
            "error_message",
            "error_request_id",
            "error_problem",
            "completed_at",
            "updated_at",
        ]
    )
    logger.warning(
        "Interaction record %s failed: %s (status=%s, requestid=%s)",
        record.pk,
        type(exc).__name__,
        record.error_status or "-",
        record.error_request_id or "-",
    )
