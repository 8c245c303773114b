"""`manage.py db_worker`: django-tasks-db's worker, keeping the sweep scheduled.

The same command and options as django_tasks_db's (see `--help`). On start it
queues the periodic sweep (intake.tasks.sweep) if none is waiting, so
stranded submissions settle and expired sessions go with no cron. Several
workers, on one host or many, are safe: a task is claimed by one worker
only, and every change a task makes to a record is conditional.
"""

from __future__ import annotations

from typing import Any

from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from intake.tasks import sweep_schedule


class Command(DBWorkerCommand):
    help = (
        "Run the background worker (django-tasks database backend); keeps the "
        "periodic sweep of lost answers and expired sessions scheduled."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if sweep_schedule():
            self.stdout.write("Queued the periodic sweep.")
        super().handle(*args, **options)
