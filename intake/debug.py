"""Error reports and error pages never show secrets, even with DEBUG on."""

from django.views.debug import SafeExceptionReporterFilter


class SecretHidingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, active with DEBUG too.

    Django shows every variable on its DEBUG error page. DEBUG may be switched
    on to chase a problem where the Corti client secret and tokens are real,
    so the variables of code marked with @sensitive_variables (the Corti
    client's sign-in and calls, and all they call) stay hidden there as well.
    """

    def is_active(self, request) -> bool:
        return True
