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
CORTI_TENANT_NAME = "base"
CORTI_CLIENT_ID = "sandbox-client"
CORTI_CLIENT_SECRET = "sandbox-secret"
CORTI_TIMEOUT = 5.0
CORTI_CONNECT_TIMEOUT = 2.0
# Serve static files from the source folders; no collectstatic before tests.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
