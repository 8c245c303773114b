"""Writes: roles and the demo accounts."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission, User

CLINICIANS = "Clinicians"
ADMINISTRATORS = "Administrators"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    CLINICIANS: [
        "intake.add_interaction",
        "intake.view_interaction",
        # Refresh, end and correct their own created interactions (others'
        # too where INTAKE_CLINICIANS_CHANGE_ANY allows it).
        "intake.follow_interaction",
    ],
    # Administrators review everything in the Django admin, read-only; only a
    # superuser manages accounts, so no one can grant themselves more.
    ADMINISTRATORS: [
        "intake.add_interaction",
        "intake.view_interaction",
        "intake.export_interaction",
        # Correct or send again a failed submission someone else made.
        "intake.resend_any_interaction",
        # Refresh, end and correct anyone's interaction; delete it in Corti.
        "intake.follow_interaction",
        "intake.change_any_interaction",
        "intake.delete_in_corti",
        # Set a clinician's Corti user ID (each user sets their own).
        "intake.change_any_profile",
        # The call log, shown with each interaction in the admin.
        "intake.view_corticall",
        # The other events of a submission (refused reuses of its form, flags).
        "intake.view_interactionevent",
        # Each change of a created interaction: who, when, before and after.
        "intake.view_interactionchange",
        # Each recording: who started it, the consent they confirmed, how it ended.
        "intake.view_recording",
        # The access trail: who viewed, searched, exported, signed in.
        "intake.view_accessentry",
        # The overview: submissions per day, by type, outcome and user.
        "intake.view_overview",
        "auth.view_user",
        "auth.view_group",
        # The sign-in record kept by django-axes: attempts, lockouts, sign-ins.
        "axes.view_accessattempt",
        "axes.view_accessfailurelog",
        "axes.view_accesslog",
    ],
}


def roles_ensure() -> dict[str, Group]:
    """Create the role groups and give each exactly its permissions."""
    groups = {}
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = [
            Permission.objects.get(content_type__app_label=label, codename=codename)
            for label, codename in (c.split(".", 1) for c in codenames)
        ]
        group.permissions.set(permissions)
        groups[name] = group
    return groups


def demo_accounts_ensure(*, password: str) -> dict[str, AbstractUser]:
    """Create or update `clinician` and `admin` with the given password."""
    groups = roles_ensure()
    user_model = get_user_model()
    accounts: dict[str, AbstractUser] = {}
    for username, role, staff in (
        ("clinician", CLINICIANS, False),
        ("admin", ADMINISTRATORS, True),
    ):
        user, _ = user_model.objects.get_or_create(username=username)
        user.is_active = True
        user.is_staff = staff
        user.set_password(password)
        user.save()
        user.groups.add(groups[role])
        accounts[username] = user
    return accounts


def profile_set_corti_user_id(*, user: User, corti_user_id: uuid.UUID | None) -> None:
    """Keep `user`'s Corti user ID (None forgets it)."""
    from intake.models import Profile

    Profile.objects.update_or_create(
        user=user, defaults={"corti_user_id": corti_user_id}
    )
