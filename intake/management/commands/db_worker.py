"""`manage.py db_worker`: django-tasks-db's worker, keeping the sweep scheduled.

The same command and options as django_tasks_db's (see `--help`). On start it
queues the periodic sweep (intake.tasks.sweep) if none is waiting, so
stranded submissions settle and expired sessions go with no cron. Several
workers, on one host or many, are safe: a task is claimed by one worker
only, and every change a task makes to a record is conditional.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import connections
from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from intake.tasks import sweep_schedule

logger = logging.getLogger(__name__)


def keep_the_sweep_queued(stop: threading.Event, interval: float) -> None:
    """Every `interval` seconds, queue the sweep if none waits.

    The sweep queues its own next run, but a worker killed in the middle of
    one leaves no next run; while any worker runs, this starts the chain again.
    """
    while not stop.wait(interval):
        try:
            sweep_schedule()
        except Exception:
            logger.exception("Could not check that the sweep is queued")
        finally:
            connections.close_all()


class Command(DBWorkerCommand):
    help = (
        "Run the background worker (django-tasks database backend); keeps the "
        "periodic sweep of lost answers and expired sessions scheduled."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if sweep_schedule():
            self.stdout.write("Queued the periodic sweep.")
        stop = threading.Event()
        watchdog = threading.Thread(
            target=keep_the_sweep_queued,
            args=(stop, settings.INTAKE_SWEEP_SECONDS),
            name="sweep-watchdog",
            daemon=True,
        )
        if not options.get("batch"):
            watchdog.start()
        try:
            super().handle(*args, **options)
        finally:
            stop.set()
