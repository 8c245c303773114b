"""The background task queue (django-tasks-db), run in the test's process."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

from django.utils import timezone

from intake.models import Interaction


def queued(task_name: str, record: Interaction | None = None) -> list[Any]:
    """Tasks waiting in the queue (due or not), oldest first."""
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.filter(
        status=TaskResultStatus.READY, task_path=f"intake.tasks.{task_name}"
    ).order_by("enqueued_at")
    return [
        row
        for row in rows
        if record is None or row.args_kwargs["args"][:1] == [str(record.pk)]
    ]


def run_tasks(*, due_only: bool = True) -> int:
    """Run queued tasks in this process with django-tasks-db's own worker.

    `due_only=False` first makes every queued task due (as if time had
    passed). Returns how many ran.
    """
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    if not due_only:
        DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(
            run_after=timezone.now() - dt.timedelta(seconds=1)
        )
    before = DBTaskResult.objects.exclude(status=TaskResultStatus.READY).count()
    # The worker closes "old" connections between tasks; in a test that would
    # close the test's own connection (and its transaction).
    with mock.patch(
        "django_tasks_db.management.commands.db_worker.close_old_connections"
    ):
        _worker().run()
    failed = DBTaskResult.objects.filter(status=TaskResultStatus.FAILED)
    assert not failed.exists(), [row.traceback for row in failed]
    return DBTaskResult.objects.exclude(status=TaskResultStatus.READY).count() - before


def _worker():
    from django_tasks_db.management.commands.db_worker import Worker

    return Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=1000,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
