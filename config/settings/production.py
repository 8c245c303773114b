"""Production: HTTPS only, a real secret key, no debug.

Select with DJANGO_SETTINGS_MODULE=config.settings.production.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import CORTI_SANDBOX, env

DEBUG = False

# Without Corti credentials the base settings fall back to the bundled
# simulator: in production only when asked for by name, never by a variable
# that went missing.
if CORTI_SANDBOX and not env.bool("CORTI_SANDBOX", default=False):
    raise ImproperlyConfigured(
        "CORTI_CLIENT_ID and CORTI_CLIENT_SECRET are not set: production needs "
        "Corti credentials. To run on the bundled simulator instead (a "
        "demonstration, no real Corti), set CORTI_SANDBOX=true."
    )
if not CORTI_SANDBOX and env.bool("CORTI_SANDBOX", default=False):
    raise ImproperlyConfigured(
        "CORTI_SANDBOX=true and CORTI_CLIENT_ID are both set: unset one "
        "(sandbox mode never uses real credentials)."
    )
# No default: the server refuses to start without a real key.
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto and appends to
# X-Forwarded-For, trust both (HTTPS detection, and the address sign-in
# throttling counts failures against: the entry DJANGO_PROXY_COUNT from the
# right, see intake.client_address).
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    INTAKE_TRUSTED_PROXIES = env.int("DJANGO_PROXY_COUNT", default=1)
    if INTAKE_TRUSTED_PROXIES < 1:
        raise ImproperlyConfigured(
            "DJANGO_PROXY_COUNT must be at least 1 with DJANGO_BEHIND_PROXY=true."
        )
