"""Settle submissions whose answer from Corti was lost.

Looks up in Corti every record whose outcome is unknown, and every record left
pending longer than a request can take (a worker killed mid-request), then
marks each created (adopting the interaction Corti holds), failed (Corti does
not have it; it can be retried) or still unknown. Safe to run at any time and
from several places at once: each record is claimed by one process.
Run it from cron every few minutes in production.
"""

from django.core.management.base import BaseCommand, CommandError

from intake.services.reconciliation import interactions_reconcile_due


class Command(BaseCommand):
    help = (
        "Look up in Corti the submissions whose outcome is unknown or that were "
        "left pending, and settle each one."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="Settle at most this many records this run (oldest first).",
        )

    def handle(self, *args, **options):
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        summary = interactions_reconcile_due(limit=limit)
        self.stdout.write(
            f"Checked {summary.checked}: {summary.created} created in Corti, "
            f"{summary.failed} not in Corti (can be retried), "
            f"{summary.unknown} still unknown, "
            f"{summary.skipped} taken by another process."
        )
        if summary.unknown:
            self.stderr.write(
                "Some records are still unknown: Corti could not be searched. "
                "Run this command again later."
            )
