"""Sign-in requirement that also works for htmx requests, and idle sign-out."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect

from config.logs import request_log_current, request_log_end, request_log_start

from . import sessions
from .keys import uuid_or_none

request_logger = logging.getLogger("intake.requests")

REQUEST_ID_HEADER = "X-Request-ID"
#: An incoming request id is kept only if it is this: anything else (too
#: long, spaces, control characters, quotes) could garble a log line or a
#: log collector's index, so a fresh one replaces it.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# These views open or post the intake form; a post is kept when the session
# has just ended.
FORM_VIEWS = {"intake:interaction_create", "intake:interaction_validate"}


class RequestIdMiddleware:
    """Give each request an id, and log one line for it.

    The id is the caller's X-Request-ID when it is a plain token (a proxy or
    load balancer set it), else a new one; it goes back in the answer's
    X-Request-ID and on every log record made while answering (config.logs).
    The line has the method, the path (never the query string: a search
    carries patient identifiers), the status, the user's id, and the time
    spent: in all, waiting for Corti, and our own.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = (
            incoming if VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        )
        token = request_log_start(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            request_log_line(request, response, started=started)
        finally:
            request_log_end(token)
        return response


def request_log_line(
    request: HttpRequest, response: HttpResponse, *, started: float
) -> None:
    """The request's one line (its request id comes from the log context)."""
    current = request_log_current()
    duration_ms = (time.perf_counter() - started) * 1000
    corti_ms = current.corti_ms if current else 0.0
    user = getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    request_logger.info(
        "%s %s %s %.0f ms (own %.0f ms, Corti %.0f ms) request_id=%s user=%s",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        duration_ms - corti_ms,
        corti_ms,
        current.request_id if current else "-",
        user_id if user_id is not None else "-",
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round(duration_ms, 1),
            "corti_ms": round(corti_ms, 1),
            "corti_calls": current.corti_calls if current else 0,
            "own_ms": round(duration_ms - corti_ms, 1),
            "user_id": user_id,
        },
    )


class QueryNulMiddleware:
    """Drop NUL characters from query parameters.

    No search or filter has a use for one, and PostgreSQL refuses to compare
    text with it (a search for "%00" would be a server error, in the admin's
    searches too). Form posts are left alone: their fields refuse NUL with a
    message beside the field.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            cleaned = request.GET.copy()
            for name in list(cleaned):
                cleaned.setlist(
                    name, [value.replace("\x00", "") for value in cleaned.getlist(name)]
                )
            cleaned._mutable = False
            # Immutable again (the line above); django-stubs types GET as its
            # own _ImmutableQueryDict, which no QueryDict can be.
            request.GET = cleaned  # type: ignore[assignment]
        return self.get_response(request)


class IdleTimeoutMiddleware:
    """Sign out a user idle for longer than INTAKE_SESSION_IDLE_TIMEOUT, or
    signed in for longer than SESSION_COOKIE_AGE (INTAKE_SESSION_MAX_HOURS).

    Every request of a signed-in user counts as activity, except asking how
    long the session has left (the page's idle warning does that); it is
    written into the session at most once a minute. Activity
    never extends the age cap. The intake form a signed-in user opens or posts
    is noted: it is the only one whose typing is kept if they are signed out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and not (
            sessions.session_expire_if_too_old(request)
            or sessions.session_expire_if_idle(request)
        ):
            session_path = request.path_info == reverse("session")
            only_asking = request.method == "GET" and (
                session_path or is_status_poll(request)
            )
            if not only_asking:
                # "Stay signed in" always restarts the clock; any other
                # request at most once a minute (sessions.touch_interval).
                sessions.session_touch(
                    request, force=session_path and request.method == "POST"
                )
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if request.user.is_authenticated:
            key = form_key(request)
            if key is not None:
                sessions.session_form_record(request, key=key)
        return None


def is_status_poll(request: HttpRequest) -> bool:
    """A page asking by itself whether a submission has settled (htmx polling).

    Not activity: a page left open on "Checking with Corti…" must not keep an
    unattended session signed in.
    """
    if request.GET.get("poll") == "1":
        # The same question asked by a page without JavaScript (meta refresh).
        return True
    return request.headers.get("HX-Request") == "true" and "since" in request.GET


def form_key(request: HttpRequest) -> uuid.UUID | None:
    """The submission key of the intake form this request opens or posts."""
    match = request.resolver_match
    if match is None or match.view_name not in FORM_VIEWS:
        return None
    if request.method == "POST":
        return uuid_or_none(request.POST.get("submission_key")) or uuid_or_none(
            request.GET.get("key")
        )
    return uuid_or_none(request.GET.get("key"))


class NoStoreMiddleware:
    """Pages for a signed-in user are never kept by the browser or a proxy.

    They show patient data: after signing out (or an idle sign-out) the Back
    button must not bring them back from a cache on a shared computer.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        signed_in = request.user.is_authenticated
        response = self.get_response(request)
        if signed_in and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response


class HtmxLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a signed-in user unless its view is marked otherwise.

    An htmx request whose session has ended gets the whole browser sent to the
    sign-in page (and back to the page it was on), instead of having the
    sign-in form swapped into a corner of the page. A post of the intake form
    after an idle sign-out keeps what was typed and comes back to that form.
    """

    # An htmx request gets an HX-Redirect answer, not an HTTP redirect; Django
    # sends whatever response this returns, as the override's type says.
    def handle_no_permission(  # type: ignore[override]
        self, request, view_func
    ) -> HttpResponse:
        page = self._page_after_sign_in(request) or self._deep_link_kept(request)
        htmx = getattr(request, "htmx", None)
        if htmx:
            login = redirect_to_login(
                page or htmx.current_url_abs_path or request.get_full_path(),
                self.get_login_url(view_func),
                self.get_redirect_field_name(view_func),
            )
            return HttpResponseClientRedirect(login["Location"])
        if page:
            return redirect_to_login(
                page,
                self.get_login_url(view_func),
                self.get_redirect_field_name(view_func),
            )
        return super().handle_no_permission(request, view_func)

    def _deep_link_kept(self, request: HttpRequest) -> str | None:
        """An EHR deep link opened before signing in: keep its details with a
        form key, and come back to an address that holds only that key (the
        sign-in page's address never shows a patient's details)."""
        match = request.resolver_match
        if (
            request.method != "GET"
            or match is None
            or match.view_name != "intake:interaction_create"
            or not set(request.GET) - {"key"}
        ):
            return None
        key = uuid_or_none(request.GET.get("key")) or uuid.uuid4()
        sessions.prefill_keep(request, key=key, params=request.GET)
        return f"{request.path}?key={key}"

    def _page_after_sign_in(self, request: HttpRequest) -> str | None:
        """For a post of the intake form: keep the typing; the form's address."""
        if request.method != "POST":
            return None
        key = form_key(request)
        if key is None or not sessions.draft_keep(request, key=key):
            return None
        return f"{reverse('intake:interaction_create')}?key={key}"
