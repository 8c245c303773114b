"""Idle sign-out, and the intake form's typing kept across it.

A signed-in user idle for INTAKE_SESSION_IDLE_TIMEOUT seconds is signed out on
their next request. If that request (or a later one from the same browser)
posts the intake form, what was typed is kept in the session, never sent to
Corti, and given back on the form once the same user has signed in again.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_out
from django.http import HttpRequest
from django.utils.translation import ngettext

logger = logging.getLogger(__name__)

# Session keys. LAST_SEEN: when the user last did something (epoch seconds).
LAST_SEEN = "intake_last_seen"
# Who was signed out for being idle, so only they get their typing back.
IDLE_USER = "intake_idle_user"
DRAFT = "intake_draft"
# Form fields that are not the clinician's input.
_NOT_INPUT = {"csrfmiddlewaretoken", "_field"}
# A draft larger than any real form is not kept (the session is not a dump).
_DRAFT_MAX_CHARS = 20_000


def idle_timeout() -> int:
    return settings.INTAKE_SESSION_IDLE_TIMEOUT


def duration_phrase(seconds: int) -> str:
    """A duration in words: "15 minutes", or "90 seconds" when not whole minutes."""
    if seconds % 60:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    minutes = seconds // 60
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def idle_phrase() -> str:
    """The idle timeout in words: "15 minutes"."""
    return duration_phrase(idle_timeout())


def seconds_left(request: HttpRequest) -> float:
    """Seconds until a signed-in user is signed out for being idle."""
    last = request.session.get(LAST_SEEN)
    if last is None:
        return float(idle_timeout())
    return max(0.0, idle_timeout() - (time.time() - last))


def session_touch(request: HttpRequest) -> None:
    """Record activity: the idle clock starts again."""
    request.session[LAST_SEEN] = time.time()


def session_expire_if_idle(request: HttpRequest) -> bool:
    """Sign the user out if idle too long; True when that happened."""
    last = request.session.get(LAST_SEEN)
    if last is None or time.time() - last <= idle_timeout():
        return False
    user = request.user
    # Not django.contrib.auth.logout(): that flushes the session and gives it
    # a new key, so a request already on its way with the old cookie (the
    # form, posted as the warning ran out) would find no session and could
    # not keep the typing. Only the sign-in is removed; the next sign-in
    # gives the session a new key as always.
    user_logged_out.send(sender=user.__class__, request=request, user=user)
    for key in (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY, LAST_SEEN):
        request.session.pop(key, None)
    request.user = AnonymousUser()
    user_pk = user.pk
    request.session[IDLE_USER] = user_pk
    logger.info(
        "Signed out user %s after %d seconds without activity", user_pk, idle_timeout()
    )
    return True


def was_signed_out_idle(request: HttpRequest) -> bool:
    return request.session.get(IDLE_USER) is not None


def draft_keep(request: HttpRequest, *, key: uuid.UUID) -> bool:
    """Keep the intake form's posted input for the user signed out as idle.

    Nothing is kept when no user was signed out from this browser: then no
    one could be given it back safely. True when it was kept.
    """
    user_pk = request.session.get(IDLE_USER)
    if user_pk is None:
        return False
    data = {
        name: value
        for name, value in request.POST.items()
        if name not in _NOT_INPUT and isinstance(value, str)
    }
    if sum(len(name) + len(value) for name, value in data.items()) > _DRAFT_MAX_CHARS:
        return False
    data["submission_key"] = str(key)
    request.session[DRAFT] = {"user": user_pk, "key": str(key), "data": data}
    return True


def draft_take(request: HttpRequest, *, key: uuid.UUID) -> dict[str, Any] | None:
    """The kept input for this form, once, if the signed-in user typed it.

    A draft kept for anyone else is dropped, unseen.
    """
    draft = request.session.get(DRAFT)
    if not draft:
        return None
    if draft.get("user") != request.user.pk:
        del request.session[DRAFT]
        return None
    if draft.get("key") != str(key):
        return None
    del request.session[DRAFT]
    request.session.pop(IDLE_USER, None)
    return draft["data"]


def draft_key_for_user(request: HttpRequest) -> str | None:
    """The form key of a draft kept for the signed-in user, if any."""
    draft = request.session.get(DRAFT)
    if draft and draft.get("user") == request.user.pk:
        return draft.get("key")
    return None


def draft_pending(request: HttpRequest) -> str | None:
    """The form key of a kept draft, if there is one."""
    draft = request.session.get(DRAFT)
    return draft.get("key") if draft else None


def on_sign_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs) -> None:
    """A fresh sign-in starts the idle clock; another user's draft is dropped."""
    if request is None or not hasattr(request, "session"):
        return
    session_touch(request)
    request.session.pop(IDLE_USER, None)
    draft = request.session.get(DRAFT)
    if draft and draft.get("user") != user.pk:
        del request.session[DRAFT]
