"""Settle submissions whose answer from Corti was lost, now, by hand.

The background worker (`manage.py db_worker`) does this by itself; this
command is for an administrator who wants it done at once. Looks up in Corti
every record whose outcome is unknown, and every record left pending longer
than a request can take (a worker killed mid-request), then marks each
created (adopting the interaction Corti holds), failed (Corti does not have
it, and the lost request can no longer be under way there: it can be sent
again) or still unknown. Safe to run at any time and beside the worker: each
record is searched by one process at a time.
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
                "Some records are still unknown: Corti could not be searched, or "
                "their lost request may still be under way in Corti "
                "(INTAKE_SETTLE_SECONDS). The worker checks them again by itself."
            )
