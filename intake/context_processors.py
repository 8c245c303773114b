from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .sessions import idle_phrase


def corti_mode(request):
    """Whether the dashboard talks to Corti or the local simulator."""
    return {
        "corti_sandbox": settings.CORTI_SANDBOX,
        "corti_tenant": settings.CORTI_TENANT_NAME,
        "clinic_time_zone": settings.TIME_ZONE,
    }


def idle_session(request):
    """The idle sign-out's timing, for the page's warning."""
    return {
        "idle_timeout": settings.INTAKE_SESSION_IDLE_TIMEOUT,
        "idle_warning": settings.INTAKE_SESSION_WARNING,
        "idle_duration": idle_phrase(),
        "idle_countdown": _countdown_words(),
    }


def _countdown_words() -> dict[str, str]:
    """The warning's countdown in words, its numbers left as placeholders
    that the page's script fills in as it counts down.

    The seconds are sessions.duration_phrase's own messages, so one
    translation serves both.
    """
    return {
        "second_one": ngettext("%(n)d second", "%(n)d seconds", 1),
        "second_other": ngettext("%(n)d second", "%(n)d seconds", 2),
        "minutes": _("%(m)d:%(ss)s minutes"),
    }
