"""intake.backends.PermissionsInOneQuery: Django's answer, in one query."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from intake.backends import PermissionsInOneQuery
from tests.support.factories import make_user

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    """The user as the next request loads it (no permission cache)."""
    return User.objects.get(pk=user.pk)


def test_own_and_group_permissions_match_djangos_backend_in_one_query():
    user = make_user("mixed", password="pw-1", role="clinician")
    user.user_permissions.add(Permission.objects.get(codename="view_group"))
    # Granted both directly and through a second group: listed once.
    extra = Group.objects.create(name="Extra")
    extra.permissions.add(
        Permission.objects.get(codename="view_group"),
        Permission.objects.get(codename="change_user"),
    )
    user.groups.add(extra)

    mine = fresh(user)
    with CaptureQueriesContext(connection) as queries:
        found = PermissionsInOneQuery().get_all_permissions(mine)
        again = PermissionsInOneQuery().get_all_permissions(mine)
    assert len(queries) == 1  # and cached on the user for the request
    assert found == again == ModelBackend().get_all_permissions(fresh(user))
    assert {"auth.view_group", "auth.change_user", "intake.add_interaction"} <= found


def test_a_user_without_permissions_has_none():
    user = make_user("nobody", password="pw-1")
    assert PermissionsInOneQuery().get_all_permissions(fresh(user)) == set()


def test_a_superuser_has_every_permission():
    user = make_user("root", password="pw-1")
    user.is_superuser = True
    user.save()
    found = PermissionsInOneQuery().get_all_permissions(fresh(user))
    assert found == ModelBackend().get_all_permissions(fresh(user))
    assert len(found) == Permission.objects.count()


def test_an_inactive_user_has_none():
    user = make_user("gone", password="pw-1", role="administrator")
    user.is_active = False
    user.save()
    assert PermissionsInOneQuery().get_all_permissions(fresh(user)) == set()


def test_a_revoked_group_is_gone_on_the_next_request():
    user = make_user("moved", password="pw-1", role="clinician")
    assert fresh(user).has_perm("intake.add_interaction")
    user.groups.clear()
    assert not fresh(user).has_perm("intake.add_interaction")
