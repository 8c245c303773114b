from django.conf import settings


def corti_mode(request):
    """Whether the dashboard talks to Corti or the local simulator."""
    return {
        "corti_sandbox": settings.CORTI_SANDBOX,
        "corti_tenant": settings.CORTI_TENANT_NAME,
        "clinic_time_zone": settings.TIME_ZONE,
    }
