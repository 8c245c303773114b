"""Settings shared by every environment; every value comes from the environment.

Variables are documented in README.md and .env.example. A `.env` file beside
manage.py is read when present; real environment variables win over it.
"""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Django core -----------------------------------------------------------

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Only for the sandbox and development; config.settings.production has no default.
SECRET_KEY = env(
    "DJANGO_SECRET_KEY",
    default="django-insecure-sandbox-only-never-use-in-production-0b7f3c9a",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    # Before intake: the roles given on migrate include axes' view permissions.
    "axes",
    "intake",
    # After intake, so intake's `db_worker` (which also keeps the sweep
    # scheduled) is the one `manage.py db_worker` runs.
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # First: a request id for every log line of the request, and its own line.
    "intake.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # A NUL in a search would be a server error on PostgreSQL: dropped.
    "intake.middleware.QueryNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Signs out a user idle for INTAKE_SESSION_IDLE_MINUTES.
    "intake.middleware.IdleTimeoutMiddleware",
    # No page shown to a signed-in user is cached (it holds patient data).
    "intake.middleware.NoStoreMiddleware",
    # Every page needs a signed-in user unless its view says otherwise.
    "intake.middleware.HtmxLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out sign-in with its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "intake.context_processors.corti_mode",
                "intake.context_processors.idle_session",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside a writer; the busy timeout waits for a lock
    # instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache -------------------------------------------------------------------
# Shared by every worker and machine: the readiness check (/readyz) signs in to
# Corti at most once per interval for all of them. Redis when REDIS_URL is set;
# otherwise a table in the database, which `manage.py createcachetable` creates
# (run it after every `migrate`).
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # A Redis that hangs must not hang /readyz with it.
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "intake_cache",
        }
    }

# --- Accounts --------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out sign-in before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    # Permissions only: a user's in one query per request (not two).
    "intake.backends.PermissionsInOneQuery",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "intake:interaction_create"
LOGOUT_REDIRECT_URL = "login"

# --- Sessions --------------------------------------------------------------
# A signed-in user idle this long is signed out; a warning with "Stay signed
# in" shows INTAKE_SESSION_WARNING_SECONDS before. What was typed on the intake
# form is kept and comes back after signing in again.
INTAKE_SESSION_IDLE_TIMEOUT = round(
    env.float("INTAKE_SESSION_IDLE_MINUTES", default=15.0) * 60
)
INTAKE_SESSION_WARNING = env.int("INTAKE_SESSION_WARNING_SECONDS", default=120)
if INTAKE_SESSION_IDLE_TIMEOUT < 60:
    raise ImproperlyConfigured("INTAKE_SESSION_IDLE_MINUTES must be at least 1.")
if not 0 < INTAKE_SESSION_WARNING < INTAKE_SESSION_IDLE_TIMEOUT:
    raise ImproperlyConfigured(
        "INTAKE_SESSION_WARNING_SECONDS must be above 0 and below the idle timeout."
    )
# The cookie ends with the browser; the server forgets a session after this
# long even when it stays in use (a working day by default).
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_AGE = round(env.float("INTAKE_SESSION_MAX_HOURS", default=12.0) * 3600)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Error pages (DEBUG) and error reports hide the Corti secret and tokens.
DEFAULT_EXCEPTION_REPORTER_FILTER = "intake.debug.SecretHidingReporterFilter"

# --- Sign-in throttling (django-axes) -------------------------------------
# After INTAKE_SIGNIN_FAILURE_LIMIT failed sign-ins for one username from one
# address, that pair is refused for INTAKE_SIGNIN_LOCKOUT_MINUTES. Attempts
# are kept in the database (admin: Axes) and logged without the password.
AXES_FAILURE_LIMIT = env.int("INTAKE_SIGNIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("INTAKE_SIGNIN_LOCKOUT_MINUTES", default=15.0) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "intake.views.signin_locked_out"
AXES_HTTP_RESPONSE_CODE = 429
# Attempts are kept without the request's query string or form data: a
# sign-in from a deep link carries patient details in its `next` address.
AXES_HANDLER = "intake.throttling.SignInRecordHandler"
# The client's address: the socket's, or the one INTAKE_TRUSTED_PROXIES proxies
# recorded, never one the client chose (not django-ipware: it takes the
# client's own left-most X-Forwarded-For entry).
AXES_CLIENT_IP_CALLABLE = "intake.client_address.client_address"
# Proxies in front that append to X-Forwarded-For. 0: clients connect directly
# and the header is theirs to forge; config.settings.production sets it from
# DJANGO_BEHIND_PROXY and DJANGO_PROXY_COUNT.
INTAKE_TRUSTED_PROXIES = 0

# --- Content Security Policy (django-csp) --------------------------------
# Nothing inline: scripts and styles come from our own static files only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "manifest-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
    # A policy governs documents; on a stylesheet, script or icon the browser
    # loads for a page it does nothing, and it cost ~330 bytes a file on every
    # page load (docs/PERFORMANCE.md, "Page weight").
    "EXCLUDE_URL_PREFIXES": ["/static/"],
}

# --- Time and language -----------------------------------------------------

LANGUAGE_CODE = "en-us"
USE_I18N = True
# Dates and times in the admin as on the app's pages (config/formats/en).
FORMAT_MODULE_PATH = ["config.formats"]
USE_TZ = True
# The clinic's time zone: forms take and pages show local time in it; Corti
# always gets UTC.
TIME_ZONE = env("INTAKE_TIME_ZONE", default="UTC")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError) as exc:
    raise ImproperlyConfigured(
        f"INTAKE_TIME_ZONE={TIME_ZONE!r} is not an IANA time zone name "
        "(for example Europe/Copenhagen or America/New_York)."
    ) from exc

# How the clinic writes a date (the birth date is typed in this order; ISO
# YYYY-MM-DD is always understood too): DMY, MDY or YMD.
INTAKE_DATE_ORDER = env("INTAKE_DATE_ORDER", default="DMY").strip().upper()
if INTAKE_DATE_ORDER not in ("DMY", "MDY", "YMD"):
    raise ImproperlyConfigured(
        f"INTAKE_DATE_ORDER={INTAKE_DATE_ORDER!r} must be DMY, MDY or YMD."
    )

# --- Static files ----------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Corti -----------------------------------------------------------------

CORTI_ENVIRONMENT = env("CORTI_ENVIRONMENT", default="eu")
if CORTI_ENVIRONMENT not in ("eu", "us"):
    raise ImproperlyConfigured(
        f"CORTI_ENVIRONMENT={CORTI_ENVIRONMENT!r}: use 'eu' or 'us'."
    )
CORTI_CLIENT_ID = env("CORTI_CLIENT_ID", default="")
# No client id means sandbox mode: the dashboard talks to the bundled simulator.
CORTI_SANDBOX = not CORTI_CLIENT_ID
CORTI_SIMULATOR_PORT = env.int("CORTI_SIMULATOR_PORT", default=8765)
# The simulator's streams websocket (recording) listens on a port of its own.
CORTI_SIMULATOR_STREAM_PORT = env.int(
    "CORTI_SIMULATOR_STREAM_PORT", default=CORTI_SIMULATOR_PORT + 1
)

if CORTI_SANDBOX:
    _simulator = f"http://127.0.0.1:{CORTI_SIMULATOR_PORT}"
    CORTI_TENANT_NAME = env("CORTI_TENANT_NAME", default="base")
    CORTI_CLIENT_ID = "sandbox-client"
    CORTI_CLIENT_SECRET = "sandbox-secret"
    CORTI_API_URL = env("CORTI_API_URL", default=f"{_simulator}/v2")
    CORTI_AUTH_URL = env(
        "CORTI_AUTH_URL",
        default=f"{_simulator}/realms/{CORTI_TENANT_NAME}"
        "/protocol/openid-connect/token",
    )
    # Where recordings stream to: the only websocket origin the page may open.
    CORTI_STREAM_ORIGIN = env(
        "CORTI_STREAM_ORIGIN", default=f"ws://127.0.0.1:{CORTI_SIMULATOR_STREAM_PORT}"
    )
    # The simulator (`manage.py corti_simulator`) and its contract validator:
    # part of the dashboard only in sandbox mode.
    INSTALLED_APPS.append("sandbox")
else:
    CORTI_TENANT_NAME = env("CORTI_TENANT_NAME", default="base")
    CORTI_CLIENT_SECRET = env("CORTI_CLIENT_SECRET", default="")
    if not CORTI_CLIENT_SECRET:
        raise ImproperlyConfigured(
            "CORTI_CLIENT_ID is set but CORTI_CLIENT_SECRET is not: set both, "
            "or neither for sandbox mode."
        )
    CORTI_API_URL = env(
        "CORTI_API_URL", default=f"https://api.{CORTI_ENVIRONMENT}.corti.app/v2"
    )
    CORTI_AUTH_URL = env(
        "CORTI_AUTH_URL",
        default=f"https://auth.{CORTI_ENVIRONMENT}.corti.app/realms/"
        f"{CORTI_TENANT_NAME}/protocol/openid-connect/token",
    )
    # Corti's streams websocket lives on the API's host (API-NOTES, "Streams").
    CORTI_STREAM_ORIGIN = env(
        "CORTI_STREAM_ORIGIN", default=f"wss://api.{CORTI_ENVIRONMENT}.corti.app"
    )

# A create whose answer was lost (timeout, dropped connection, 5xx, a cut body)
# may still be under way in Corti. A search that finds nothing proves that it
# was not created only when made at least this many seconds after the lost
# request was sent; until then the submission is "unknown" and the worker
# keeps checking (intake.services.outcomes).
INTAKE_SETTLE_SECONDS = env.float("INTAKE_SETTLE_SECONDS", default=120.0)
if INTAKE_SETTLE_SECONDS < 0:
    raise ImproperlyConfigured("INTAKE_SETTLE_SECONDS must not be negative.")

# A created interaction's page has it read from Corti again, in the
# background, when the local copy is older than this (intake.services.lifecycle).
INTAKE_REFRESH_SECONDS = env.float("INTAKE_REFRESH_SECONDS", default=60.0)
if INTAKE_REFRESH_SECONDS < 0:
    raise ImproperlyConfigured("INTAKE_REFRESH_SECONDS must not be negative.")

# Whether clinicians may end, refresh and correct interactions that others
# created (and ones made outside the dashboard), not only their own.
# Administrators always may; only Administrators delete.
INTAKE_CLINICIANS_CHANGE_ANY = env.bool("INTAKE_CLINICIANS_CHANGE_ANY", default=False)

# The worker brings the local log in step with Corti (sync_interactions:
# imports what was made elsewhere, marks what is gone) this often; 0 turns
# the periodic sync off (the command still works).
INTAKE_SYNC_MINUTES = env.float("INTAKE_SYNC_MINUTES", default=60.0)
if INTAKE_SYNC_MINUTES < 0:
    raise ImproperlyConfigured("INTAKE_SYNC_MINUTES must not be negative.")

# --- Recording a consultation (the interaction's page) ------------------------
# The primary language a recording starts with (the page offers the others).
INTAKE_RECORDING_LANGUAGE = env("INTAKE_RECORDING_LANGUAGE", default="en")
# The sentence a clinician confirms before recording: the clinic's own words.
INTAKE_RECORDING_CONSENT_TEXT = env(
    "INTAKE_RECORDING_CONSENT_TEXT",
    default="The patient was told that this consultation is recorded and "
    "transcribed by Corti, and agreed.",
).strip()
if not INTAKE_RECORDING_CONSENT_TEXT:
    raise ImproperlyConfigured("INTAKE_RECORDING_CONSENT_TEXT must not be empty.")
# Keep the final transcript and facts shown during a recording on its record.
# Off by default: patient speech is not kept by the dashboard, only by Corti.
INTAKE_RECORDING_KEEP_TRANSCRIPT = env.bool(
    "INTAKE_RECORDING_KEEP_TRANSCRIPT", default=False
)
# Seconds of audio a page keeps in memory while its connection to Corti is
# down; beyond that it says audio was lost.
INTAKE_RECORDING_BUFFER_SECONDS = env.int("INTAKE_RECORDING_BUFFER_SECONDS", default=60)
if not 5 <= INTAKE_RECORDING_BUFFER_SECONDS <= 600:
    raise ImproperlyConfigured(
        "INTAKE_RECORDING_BUFFER_SECONDS must be between 5 and 600."
    )
# A recording the page has said nothing about for this long (a closed tab, a
# crashed browser; a recording page reports every 30 s) is marked
# interrupted, and another recording of the interaction may start.
INTAKE_RECORDING_SILENT_MINUTES = env.float(
    "INTAKE_RECORDING_SILENT_MINUTES", default=2.0
)
if INTAKE_RECORDING_SILENT_MINUTES < 1:
    raise ImproperlyConfigured("INTAKE_RECORDING_SILENT_MINUTES must be at least 1.")

# --- Background work ---------------------------------------------------------
# Django's Tasks API (the django-tasks backport) with its database backend: the
# queue lives in the same database, so SQLite and PostgreSQL need nothing else.
# The worker is `python manage.py db_worker`.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}
# Seconds between sweeps for records a dead worker left unsettled.
INTAKE_SWEEP_SECONDS = env.float("INTAKE_SWEEP_SECONDS", default=60.0)
if INTAKE_SWEEP_SECONDS <= 0:
    raise ImproperlyConfigured("INTAKE_SWEEP_SECONDS must be above 0.")

# Seconds to wait for Corti to answer (read) and to accept a connection.
CORTI_TIMEOUT = env.float("CORTI_TIMEOUT", default=20.0)
CORTI_CONNECT_TIMEOUT = env.float("CORTI_CONNECT_TIMEOUT", default=5.0)
# Seconds one call may spend trying again when nothing reached Corti (refused,
# DNS, connect timeout) or when a 429 asks to wait, so a worker is never held
# for long. A create whose answer was lost is never sent again blindly.
CORTI_RETRY_BUDGET = env.float("CORTI_RETRY_BUDGET", default=10.0)
# The longest Retry-After (seconds) a 429 may ask for and still be waited out.
CORTI_RETRY_AFTER_MAX = env.float("CORTI_RETRY_AFTER_MAX", default=5.0)

# --- Logging ---------------------------------------------------------------
# Log lines never carry patient data, tokens or secrets: code logs record ids,
# statuses and Corti request ids only. Each record is one line: control
# characters a request may carry (a path, an exception message) are escaped,
# so nobody can forge a line (config.logs).
# LOG_FORMAT=json writes one JSON object a line (for a log collector) instead
# of the human "plain" lines; gunicorn's two logs follow it (config.logs).
# Every request gets an id (X-Request-ID, intake.middleware.RequestIdMiddleware)
# that each record of it carries ("request_id"), and one summary line.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain").strip().lower() or "plain"
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "config.logs.EscapingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {"()": "config.logs.json_formatter"},
    },
    "filters": {
        "startup_line_once": {"()": "config.logs.StartupLineOnce"},
        "expected_forbidden": {"()": "config.logs.ExpectedForbidden"},
        "request_id": {"()": "config.logs.RequestIdFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # Once for a start, not once for each process it starts.
        "axes.apps": {"filters": ["startup_line_once"]},
        # A refused permission or CSRF check is expected: one line, no traceback.
        "django.request": {"filters": ["expected_forbidden"]},
        "django.security.csrf": {"filters": ["expected_forbidden"]},
        # Request lines can carry patient identifiers in query strings.
        "django.server": {"level": "WARNING"},
        # urllib3 logs each request's URL at DEBUG, and a lookup's URL carries
        # the patient filter: never below INFO, whatever DJANGO_LOG_LEVEL says.
        "urllib3": {"level": "INFO"},
    },
}
