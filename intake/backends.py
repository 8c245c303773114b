"""Permissions read in one query per request (sign-in stays Django's)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.http import HttpRequest


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
            permissions = Permission.objects.all()
            if not user_obj.is_superuser:
                permissions = permissions.filter(
                    Q(user=user_obj) | Q(group__user=user_obj)
                )
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in permissions.values_list(
                    "content_type__app_label", "codename"
                ).distinct()
            }
        return user_obj._perm_cache
