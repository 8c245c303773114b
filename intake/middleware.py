"""Sign-in requirement that also works for htmx requests, and idle sign-out."""

from __future__ import annotations

import uuid

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect

from . import sessions
from .forms import uuid_or_none

# Posts of these views carry the intake form; kept when the session has ended.
FORM_VIEWS = {"intake:interaction_create", "intake:interaction_validate"}


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
            request.GET = cleaned
        return self.get_response(request)


class IdleTimeoutMiddleware:
    """Sign out a user idle for longer than INTAKE_SESSION_IDLE_TIMEOUT.

    Every request of a signed-in user counts as activity, except asking how
    long the session has left (the page's idle warning does that).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and not sessions.session_expire_if_idle(
            request
        ):
            only_asking = request.method == "GET" and request.path_info == reverse(
                "session"
            )
            if not only_asking:
                sessions.session_touch(request)
        return self.get_response(request)


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

    def handle_no_permission(self, request, view_func) -> HttpResponse:
        page = self._page_after_sign_in(request)
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

    def _page_after_sign_in(self, request: HttpRequest) -> str | None:
        """For a post of the intake form: keep the typing; the form's address."""
        match = request.resolver_match
        if (
            request.method != "POST"
            or match is None
            or match.view_name not in FORM_VIEWS
        ):
            return None
        key = uuid_or_none(request.POST.get("submission_key")) or uuid_or_none(
            request.GET.get("key")
        )
        if key is None:
            key = uuid.uuid4()
        if not sessions.draft_keep(request, key=key):
            return None
        return f"{reverse('intake:interaction_create')}?key={key}"
