from django.conf import settings

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
    }
