"""Sign-in requirement that also works for htmx requests."""

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django_htmx.http import HttpResponseClientRedirect


class HtmxLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a signed-in user unless its view is marked otherwise.

    An htmx request whose session has ended gets the whole browser sent to the
    sign-in page (and back to the page it was on), instead of having the
    sign-in form swapped into a corner of the page.
    """

    def handle_no_permission(self, request, view_func) -> HttpResponse:
        htmx = getattr(request, "htmx", None)
        if htmx:
            page = htmx.current_url_abs_path or request.get_full_path()
            login = redirect_to_login(
                page,
                self.get_login_url(view_func),
                self.get_redirect_field_name(view_func),
            )
            return HttpResponseClientRedirect(login["Location"])
        return super().handle_no_permission(request, view_func)
