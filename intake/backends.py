"""Permissions read in one query per request (sign-in stays Django's)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.http import HttpRequest


def _permissions_sql(*, everything: bool) -> str:
    """The user's own and group permissions as (app_label, codename) rows.

    Plain SQL: the same question through the ORM (two OR-ed joins and a
    DISTINCT) costs about a millisecond of query building per request.
    """
    permission = connection.ops.quote_name(Permission._meta.db_table)
    content_type = connection.ops.quote_name(ContentType._meta.db_table)
    # Table names from the models' own metadata, quoted; the user id is a
    # parameter.
    select = (
        f"SELECT ct.app_label, p.codename FROM {permission} p "  # noqa: S608
        f"JOIN {content_type} ct ON ct.id = p.content_type_id"
    )
    if everything:
        return select
    own = connection.ops.quote_name(User.user_permissions.through._meta.db_table)
    groups = connection.ops.quote_name(User.groups.through._meta.db_table)
    granted = connection.ops.quote_name(Group.permissions.through._meta.db_table)
    return (
        f"{select} WHERE p.id IN ("  # noqa: S608
        f"SELECT up.permission_id FROM {own} up WHERE up.user_id = %s "
        f"UNION SELECT gp.permission_id FROM {granted} gp "
        f"JOIN {groups} ug ON ug.group_id = gp.group_id WHERE ug.user_id = %s)"
    )


class PermissionsInOneQuery(ModelBackend):
    """A user's own and group permissions in one query, not Django's two.

    Every page checks permissions (the view's, the menu's); they are read once
    per request and cached on the user, in the attribute Django's ModelBackend
    reads too, so that backend (listed after this one; it still signs users
    in and holds their sessions) asks nothing more.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Passwords are Django's ModelBackend's, checked once.
        return None

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            everything = user_obj.is_superuser
            params = () if everything else (user_obj.pk, user_obj.pk)
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(everything=everything), params)
                rows = cursor.fetchall()
            user_obj._perm_cache = {
                f"{app_label}.{codename}" for app_label, codename in rows
            }
        return user_obj._perm_cache
