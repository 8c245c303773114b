"""Bring the local log in step with every interaction Corti holds.

Pages through `GET /interactions/` (oldest first, until an empty page: Corti
gives no total), imports what was made outside the dashboard so lookups
cover it, takes Corti's current state for what the dashboard knows, and
marks "gone from Corti" what Corti no longer has. Safe to run at any time,
as often as wanted: a second run finds everything unchanged.
"""

from django.core.management.base import BaseCommand, CommandError

from intake.corti.errors import CortiError
from intake.services.lifecycle import SYNC_PAGE_SIZE, interactions_sync


class Command(BaseCommand):
    help = (
        "Import the interactions made outside the dashboard and bring every "
        "local record in step with what Corti holds."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--page-size",
            type=int,
            default=SYNC_PAGE_SIZE,
            help=f"Interactions read per page (1-100, default {SYNC_PAGE_SIZE}).",
        )

    def handle(self, *args, page_size: int = SYNC_PAGE_SIZE, **options):
        if not 1 <= page_size <= 100:
            raise CommandError("--page-size must be between 1 and 100.")
        try:
            summary = interactions_sync(page_size=page_size)
        except CortiError as error:
            request_id = (
                f" (Corti request id {error.request_id})" if error.request_id else ""
            )
            raise CommandError(
                f"Corti's list could not be read: {error}{request_id}. What was "
                "read before it is kept; run the command again."
            ) from error
        self.stdout.write(
            f"Read {summary.seen} interaction(s) in {summary.pages} page(s): "
            f"{summary.new} new, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.gone} gone from Corti"
            + (
                f", {summary.left_for_settling} left for the lost-answer check"
                if summary.left_for_settling
                else ""
            )
            + "."
        )
        if not summary.complete:
            self.stdout.write(
                "The listing did not end within the page limit; nothing was "
                "marked gone. Run the command again."
            )
