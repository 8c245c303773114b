"""Idle sign-out, the session's age cap, and the form's typing kept across them.

A signed-in user idle for INTAKE_SESSION_IDLE_TIMEOUT seconds, or signed in
for longer than SESSION_COOKIE_AGE (INTAKE_SESSION_MAX_HOURS) however busy, is
signed out on their next request. If the intake form they last had open is
posted as that happens (or moments later, from a request already on its way),
what was typed is kept in the session, never sent to Corti, and given back on
that form once the same user has signed in again.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_out
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .clinic_time import clinic_time_text

logger = logging.getLogger(__name__)

# Session keys. LAST_SEEN: when the user last did something (epoch seconds).
LAST_SEEN = "intake_last_seen"
# When this sign-in began (epoch seconds): the age cap counts from it, not from
# the last request, which would push it on forever.
SIGNED_IN_AT = "intake_signed_in_at"
# The key of the intake form the signed-in user last opened or posted: the one
# form whose typing may be kept if they are signed out.
OPEN_FORM = "intake_open_form"
# Who the dashboard signed out, when, why, and which form they had open, so
# only they get their typing back and only for that form.
SIGNED_OUT = "intake_signed_out"
DRAFT = "intake_draft"
# A deep link's prefill, by form key: read from the address once, then the
# address holds only the key (patient details stay out of browser history).
PREFILL = "intake_prefill"
# Prefills kept at most (the newest), so a session never grows without bound.
_PREFILL_MAX = 20
_PREFILL_MAX_PARAMS = 40
# Why the dashboard signed someone out.
IDLE = "idle"
MAX_AGE = "max_age"
# Form fields that are not the clinician's input.
_NOT_INPUT = {"csrfmiddlewaretoken", "_field"}
# A draft larger than any real form is not kept (the session is not a dump).
_DRAFT_MAX_CHARS = 20_000
# How long after the sign-out the form may still arrive with the same cookie:
# the page posts it as it learns the session is over, and a tab in the
# background may have its timers held back by the browser for up to a minute.
# Later than that, whoever posts it is not known to be the one who typed.
DRAFT_GRACE_SECONDS = 120
# Activity is written into the session at most once a minute (touch_interval).
TOUCH_INTERVAL = 60.0


def idle_timeout() -> int:
    return settings.INTAKE_SESSION_IDLE_TIMEOUT


def max_age() -> int:
    """The longest a sign-in lasts, in seconds, however busy the user is."""
    return settings.SESSION_COOKIE_AGE


def duration_phrase(seconds: int) -> str:
    """A duration in words: "15 minutes", "12 hours", or "90 seconds"."""
    if seconds % 60:
        return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
    minutes = seconds // 60
    if minutes and not minutes % 60:
        hours = minutes // 60
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def idle_phrase() -> str:
    """The idle timeout in words: "15 minutes"."""
    return duration_phrase(idle_timeout())


def max_age_phrase() -> str:
    """The session's age cap in words: "12 hours"."""
    return duration_phrase(max_age())


def time_phrase(timestamp: float) -> str:
    """A moment as every page shows one: "2026-01-15 10:42 CET"."""
    return clinic_time_text(dt.datetime.fromtimestamp(timestamp, tz=dt.UTC))


def touch_interval() -> float:
    """How stale the stored idle clock may be: at most a minute.

    A session write is a database write, so activity is written at most this
    often (a fifteenth of the idle timeout, so a short one still works).
    """
    return min(TOUCH_INTERVAL, idle_timeout() / 15)


def seconds_left(request: HttpRequest) -> float:
    """Seconds until a signed-in user is signed out for being idle."""
    last = request.session.get(LAST_SEEN)
    if last is None:
        return float(idle_timeout())
    return max(0.0, idle_timeout() - (time.time() - last))


def session_touch(request: HttpRequest, *, force: bool = False) -> None:
    """Record activity: the idle clock starts again.

    Written only when the stored time is touch_interval() old or more (or
    `force`: "Stay signed in", a sign-in). Every check (the sign-out, the
    seconds left the page's warning counts down) reads the stored time, so
    server and page agree; a user is signed out at most touch_interval()
    before a full idle timeout after their last request, never after it.
    """
    now = time.time()
    last = request.session.get(LAST_SEEN)
    if force or last is None or now - last >= touch_interval():
        request.session[LAST_SEEN] = now


def session_form_record(request: HttpRequest, *, key: uuid.UUID) -> None:
    """Note the intake form the signed-in user has open (opened or posted)."""
    # Setting a session key marks the session for a write, even to its value.
    if request.session.get(OPEN_FORM) != str(key):
        request.session[OPEN_FORM] = str(key)


def session_expire_if_idle(request: HttpRequest) -> bool:
    """Sign the user out if idle too long; True when that happened."""
    last = request.session.get(LAST_SEEN)
    if last is None or time.time() - last <= idle_timeout():
        return False
    # Signed out as of when the session ran out, not when someone next used
    # the browser: the grace for a kept draft counts from then.
    user_pk = _sign_out(request, why=IDLE, at=last + idle_timeout())
    logger.info(
        "Signed out user %s after %d seconds without activity", user_pk, idle_timeout()
    )
    return True


def session_expire_if_too_old(request: HttpRequest) -> bool:
    """Sign the user out once signed in longer than the cap; True when so."""
    started = request.session.get(SIGNED_IN_AT)
    if started is None:
        # Signed in before the cap was enforced: it counts from now.
        request.session[SIGNED_IN_AT] = time.time()
        return False
    if time.time() - started <= max_age():
        return False
    user_pk = _sign_out(request, why=MAX_AGE, at=started + max_age())
    logger.info(
        "Signed out user %s: signed in for longer than %d seconds", user_pk, max_age()
    )
    return True


def _sign_out(request: HttpRequest, *, why: str, at: float) -> Any:
    """Sign the user out as of `at` (when the session ran out), keeping the
    session; their pk."""
    user = request.user
    # Not django.contrib.auth.logout(): that flushes the session and gives it
    # a new key, so a request already on its way with the old cookie (the
    # form, posted as the warning ran out) would find no session and could
    # not keep the typing. Only the sign-in is removed; the next sign-in
    # gives the session a new key as always.
    user_logged_out.send(sender=user.__class__, request=request, user=user)
    for key in (
        SESSION_KEY,
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        LAST_SEEN,
        SIGNED_IN_AT,
    ):
        request.session.pop(key, None)
    request.user = AnonymousUser()
    request.session[SIGNED_OUT] = {
        "user": user.pk,
        "at": min(at, time.time()),
        "why": why,
        "form": request.session.pop(OPEN_FORM, None),
    }
    return user.pk


def was_signed_out_idle(request: HttpRequest) -> bool:
    return _signed_out(request).get("why") == IDLE


def was_signed_out_at_max_age(request: HttpRequest) -> bool:
    return _signed_out(request).get("why") == MAX_AGE


def _signed_out(request: HttpRequest) -> dict[str, Any]:
    return request.session.get(SIGNED_OUT) or {}


def draft_keep(request: HttpRequest, *, key: uuid.UUID) -> bool:
    """Keep the intake form's posted input for the user just signed out.

    Only for the form that user had open, and only as the sign-out happens or
    within DRAFT_GRACE_SECONDS of it: anything else may have been typed by
    someone else at the browser since. True when it was kept.
    """
    signed_out = _signed_out(request)
    if not signed_out or signed_out.get("form") != str(key):
        return False
    if time.time() - signed_out["at"] > DRAFT_GRACE_SECONDS:
        return False
    kept = request.session.get(DRAFT)
    if kept and kept.get("key") == str(key):
        # The first post is the page's own, as its session ended; a later one
        # is someone else at the browser.
        return False
    data = {
        name: value
        for name, value in request.POST.items()
        if name not in _NOT_INPUT and isinstance(value, str)
    }
    if sum(len(name) + len(value) for name, value in data.items()) > _DRAFT_MAX_CHARS:
        return False
    data["submission_key"] = str(key)
    request.session[DRAFT] = {
        "user": signed_out["user"],
        "key": str(key),
        "signed_out_at": signed_out["at"],
        "why": signed_out["why"],
        "data": data,
    }
    return True


class Draft(dict[str, Any]):
    """The kept input (the form's initial data), and when and why its typist
    was signed out, to tell them where it came from."""

    def __init__(self, data: dict[str, Any], *, signed_out_at: float, why: str):
        super().__init__(data)
        self.signed_out_at = signed_out_at
        self.why = why


def draft_restored_message(draft: Draft) -> str:
    """What the form says when it shows a kept draft: whose, from when."""
    when = time_phrase(draft.signed_out_at)
    if draft.why == MAX_AGE:
        why = _("You were signed out at %(time)s: a session lasts at most %(max)s.") % {
            "time": when,
            "max": max_age_phrase(),
        }
    else:
        why = _("You were signed out at %(time)s after %(idle)s without activity.") % {
            "time": when,
            "idle": idle_phrase(),
        }
    back = _(
        "What you had typed is back below; nothing was sent to Corti. Check it "
        "and create the interaction."
    )
    return f"{why} {back}"


def draft_take(request: HttpRequest, *, key: uuid.UUID) -> Draft | None:
    """The kept input for this form, once, if the signed-in user typed it.

    A draft kept for anyone else is dropped, unseen.
    """
    draft = request.session.get(DRAFT)
    if not draft:
        return None
    # Without the moment of its sign-out it was kept by an earlier version,
    # on weaker terms: where it came from is not known.
    if draft.get("user") != request.user.pk or "signed_out_at" not in draft:
        del request.session[DRAFT]
        return None
    if draft.get("key") != str(key):
        return None
    del request.session[DRAFT]
    request.session.pop(SIGNED_OUT, None)
    return Draft(
        draft["data"], signed_out_at=draft["signed_out_at"], why=draft.get("why", IDLE)
    )


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
    """A fresh sign-in starts both clocks; another user's draft is dropped."""
    if request is None or not hasattr(request, "session"):
        return
    session_touch(request, force=True)
    request.session[SIGNED_IN_AT] = time.time()
    request.session.pop(SIGNED_OUT, None)
    request.session.pop(OPEN_FORM, None)
    draft = request.session.get(DRAFT)
    if draft and draft.get("user") != user.pk:
        del request.session[DRAFT]


def prefill_keep(request: HttpRequest, *, key: uuid.UUID, params: Any) -> None:
    """Keep a deep link's parameters for the form `key` (this session only).

    Kept as given (the form reads them when it shows); the address then holds
    only the key.
    """
    data = {
        str(name)[:64]: str(params.get(name))[:1000]
        for name in list(params)[:_PREFILL_MAX_PARAMS]
        if name != "key"
    }
    if not data:
        return
    kept = dict(request.session.get(PREFILL) or {})
    kept.pop(str(key), None)
    kept[str(key)] = data
    request.session[PREFILL] = dict(list(kept.items())[-_PREFILL_MAX:])


def prefill_for(request: HttpRequest, *, key: uuid.UUID) -> dict[str, str]:
    """The deep link's parameters kept for the form `key` ({} when none)."""
    return dict((request.session.get(PREFILL) or {}).get(str(key)) or {})
