"""Test settings: fast hashing, no .env surprises, sandbox Corti."""

from .base import *  # noqa: F403

SECRET_KEY = "test-only-secret-key-not-for-production-use-9f1c2e7a4b"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Tests point the client at their own simulator process (see tests/conftest.py).
CORTI_SANDBOX = True
if "sandbox" not in INSTALLED_APPS:  # noqa: F405
    INSTALLED_APPS.append("sandbox")  # noqa: F405
CORTI_TENANT_NAME = "base"
CORTI_CLIENT_ID = "sandbox-client"
CORTI_CLIENT_SECRET = "sandbox-secret"
CORTI_TIMEOUT = 5.0
CORTI_CONNECT_TIMEOUT = 2.0
CORTI_RETRY_BUDGET = 1.0
CORTI_RETRY_AFTER_MAX = 1.0
# One process's memory (tests/test_gunicorn.py runs workers on the database
# cache, as production does); the `corti` fixture empties it.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# No periodic sync with Corti unless a test asks for one (it reads every
# interaction the simulator holds; tests/services/test_lifecycle.py).
INTAKE_SYNC_MINUTES = 0
# Serve static files from the source folders; no collectstatic before tests.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not shared-cache memory: concurrency tests then meet SQLite's real
    # locking (WAL, busy timeout), as the dashboard does in production. One
    # file per test process, so two runs on one machine never share it.
    import os
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(
            tempfile.gettempdir(), f"corti-intake-test-{os.getpid()}.sqlite3"
        )
    }
