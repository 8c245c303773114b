"""Production settings for tests that run the dashboard under gunicorn.

Everything comes from config.settings.production and the environment the test
sets (the logs, the database cache shared by the workers), except static files:
served from the source folders, so no collectstatic writes into the work tree.
"""

from config.settings.production import *  # noqa: F403

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
