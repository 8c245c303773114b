"""Create the demo accounts `clinician` and `admin` and print their password."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from intake.services.accounts import demo_accounts_ensure

PASSWORD_FILE = Path(settings.BASE_DIR) / ".demo-password"


class Command(BaseCommand):
    help = (
        "Create or update the demo accounts. The password is DEMO_PASSWORD, or "
        "one generated on first use and kept in .demo-password."
    )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "")
        if not password:
            password = _stored_or_new_password()
        demo_accounts_ensure(password=password)
        self.stdout.write(
            "Demo accounts:\n"
            f"  clinician / {password}   (group Clinicians)\n"
            f"  admin     / {password}   (group Administrators, Django admin)"
        )


def _stored_or_new_password() -> str:
    if PASSWORD_FILE.is_file():
        stored = PASSWORD_FILE.read_text(encoding="utf-8").strip()
        if stored:
            return stored
    password = secrets.token_urlsafe(12)
    # Readable by the owner only.
    fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    return password
