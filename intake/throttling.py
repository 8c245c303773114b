"""Sign-in throttling (django-axes): what its records hold, and the one check
of a password outside signing in (changing it), counted the same way.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.utils import reset
from django.contrib.auth import authenticate
from django.http import HttpRequest, QueryDict

from .client_address import client_address


class SignInRecordHandler(AxesDatabaseHandler):
    """django-axes' database records, without the request's query or form.

    axes copies both into each attempt (get_data, post_data), shown in the
    admin. A sign-in reached from a deep link carries
    `next=/interactions/new/?patient_name=...`, so that would put patient
    details into a table no one treats as a health record. The username,
    the one input the record needs, has a column of its own.
    """

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        # axes reads the two from the request; the view still needs them
        # afterwards (the form shown again keeps its `next`).
        query, form = request.GET, request.POST
        request.GET, request.POST = QueryDict(), QueryDict()
        try:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        finally:
            request.GET, request.POST = query, form


def password_verify(*, request: HttpRequest, user: Any, password: str) -> bool:
    """Whether `password` is `user`'s, counted by the sign-in throttle.

    A signed-in session must not be a way round the throttle to guess the
    password (for example at the password change). So the check goes through
    authenticate(), as signing in does: django-axes refuses it while this
    username is paused from this address, counts a wrong password with failed
    sign-ins (AXES_FAILURE_LIMIT, AXES_COOLOFF_TIME), and its middleware
    answers the request with the paused page once the limit is reached. A
    right one clears the count, as a successful sign-in does.
    """
    username = user.get_username()
    checked = authenticate(request, username=username, password=password)
    if checked is None or checked.pk != user.pk:
        return False
    reset(ip=client_address(request), username=username)
    return True
