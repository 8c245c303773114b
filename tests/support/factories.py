"""Users in each role, interaction records, and what a clinician types.

Plain functions: each test says what differs from the defaults, and nothing
else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from tests.support.clock import CLINIC_ZONE, UTC

#: The assigned user of TYPED, as the form hands it over.
ASSIGNED = uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479")

#: Every field of the intake form, filled in as a clinician types it.
TYPED = {
    "submission_key": "5f0c7a52-3a3e-4d7b-8c11-0a9e6f1b2c3d",
    "encounter_identifier": "ENC-42",
    "encounter_status": "in-progress",
    "encounter_type": "first_consultation",
    "encounter_title": "Knee pain",
    "encounter_started_at": "2026-01-15T10:00",
    "encounter_ended_at": "2026-01-15T10:45",
    "assigned_user_id": str(ASSIGNED),
    "patient_identifier": "PAT-7",
    "patient_name": "Ada Lovelace",
    "patient_gender": "female",
    # As typed: in the clinic's order (INTAKE_DATE_ORDER, DMY by default).
    "patient_birth_date": "23-04-1980",
    "patient_pronouns": "she/her",
}


def typed_values() -> dict[str, Any]:
    """Everything a clinician can type, cleaned, as the form hands it over."""
    return {
        "assigned_user_id": ASSIGNED,
        "encounter_identifier": "ENC-42",
        "encounter_status": "in-progress",
        "encounter_type": "first_consultation",
        "encounter_title": "Knee pain",
        "encounter_started_at": dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
        "encounter_ended_at": dt.datetime(2026, 1, 15, 9, 45, tzinfo=UTC),
        "patient_identifier": "PAT-7",
        "patient_name": "Ada Lovelace",
        "patient_gender": "female",
        "patient_birth_date": dt.date(1980, 4, 23),
        "patient_pronouns": "she/her",
    }


# --- users -------------------------------------------------------------------

#: A role's group, and whether its users reach the admin.
ROLES = {"clinician": ("Clinicians", False), "administrator": ("Administrators", True)}


def make_user(
    username: str,
    *,
    password: str,
    role: str | None = None,
    permissions: Iterable[str] = (),
):
    """A user in `role` ("clinician", "administrator" or None for no role),
    with any extra intake permissions (codenames) of their own."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    group, is_staff = ROLES[role] if role else (None, False)
    user = get_user_model().objects.create_user(
        username, password=password, **({"is_staff": True} if is_staff else {})
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    codenames = list(permissions)
    if codenames:
        user.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="intake", codename__in=codenames
            )
        )
    return user


# --- interaction records -------------------------------------------------------


def build_interaction(user, **overrides):
    """An Interaction row as the log holds one, not saved yet (for bulk_create).

    By default Corti created it (an id of its own); any outcome can be given,
    with the fields that go with it.
    """
    from intake.models import Interaction

    outcome = overrides.get("outcome", Interaction.Outcome.CREATED)
    created = outcome == Interaction.Outcome.CREATED
    values = {
        "encounter_identifier": "ENC-0",
        "encounter_status": "planned",
        "encounter_type": "consultation",
        "encounter_started_at": dt.datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
        "time_zone": CLINIC_ZONE,
        "outcome": outcome,
        "interaction_id": uuid.uuid4() if created else None,
        **overrides,
    }
    return Interaction(submitted_by=user, **values)


def make_interaction(user, *, created_at: dt.datetime | None = None, **overrides):
    """build_interaction's record, saved; `created_at` backdates its submission."""
    from intake.models import Interaction

    record = build_interaction(user, **overrides)
    record.save(force_insert=True)
    if created_at is not None:
        Interaction.objects.filter(pk=record.pk).update(created_at=created_at)
        record.refresh_from_db()
    return record
