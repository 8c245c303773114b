"""Background work, on Django's Tasks API (the django-tasks backport).

The database backend keeps the queue in the dashboard's own database; the
worker is `python manage.py db_worker` (intake's own, which also keeps the
sweep scheduled). Every task is safe to run twice, or on two workers at once:
the services it calls change a record only by conditional UPDATEs.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.utils import timezone
from django_tasks import task

from intake.models import CortiCall, Interaction
from intake.services import reconciliation, recording

logger = logging.getLogger(__name__)

#: Finished tasks are kept this long (to see what the worker did), then pruned.
FINISHED_TASKS_KEPT = dt.timedelta(days=7)


@task()
def settle_interaction(record_id: str, force: bool = False) -> str:
    """Search Corti for one unknown submission, if its search is due."""
    record = Interaction.objects.filter(pk=record_id).first()
    if record is None:
        return "missing"
    searched = reconciliation.interaction_settle(
        record=record, trigger=CortiCall.Trigger.WORKER, force=force
    )
    return record.outcome if searched else "not due"


@task()
def refresh_interaction(record_id: str) -> str:
    """Read one created interaction from Corti again (its page was opened)."""
    from intake.services import lifecycle

    record = Interaction.objects.filter(pk=record_id).first()
    if record is None:
        return "missing"
    failed = True
    try:
        if not lifecycle.refresh_due(record):
            failed = False
            return "fresh"
        result = lifecycle.interaction_refresh(
            record=record, trigger=CortiCall.Trigger.OPENED
        )
        failed = not result.ok
        if result.gone:
            return "gone"
        return "read" if result.ok else "failed"
    finally:
        lifecycle.refresh_finished(record, failed=failed)


@task()
def sync_interactions() -> dict[str, object]:
    """What `manage.py sync_interactions` does, on the worker (every
    INTAKE_SYNC_MINUTES, queued by the sweep)."""
    from intake.services import lifecycle

    summary = lifecycle.interactions_sync()
    logger.info(
        "Sync: %s new, %s updated, %s unchanged, %s gone, %s left for settling",
        summary.new,
        summary.updated,
        summary.unchanged,
        summary.gone,
        summary.left_for_settling,
    )
    return summary.as_dict()


def sync_due() -> bool:
    """Queue a sync when the last was queued INTAKE_SYNC_MINUTES ago or more
    (0: never); True if queued. One marker in the shared cache, so several
    workers queue one sync between them."""
    minutes = settings.INTAKE_SYNC_MINUTES
    if not minutes or not cache.add("intake:sync-queued", 1, int(minutes * 60)):
        return False
    sync_interactions.enqueue()
    return True


@task()
def sweep() -> dict[str, int]:
    """Catch what a dead worker or request left behind, then run again later.

    Queues a search for every stranded or overdue submission and, when one
    is due, a sync with Corti (sync_interactions); deletes expired sessions
    (a kept draft of the intake form lives in one), marks interrupted the
    recordings whose page went quiet, and forgets finished tasks after a
    week (they hold record ids only).
    """
    from django_tasks_db.models import DBTaskResult

    try:
        sync_due()
        summary = reconciliation.interactions_sweep()
        now = timezone.now()
        # A recording whose page went quiet (closed tab) is never left open.
        silent = recording.recordings_close_silent(now=now)
        expired, _ = Session.objects.filter(expire_date__lt=now).delete()
        pruned, _ = (
            DBTaskResult.objects.finished()
            .filter(finished_at__lt=now - FINISHED_TASKS_KEPT)
            .delete()
        )
    finally:
        # Whatever happened to this run, the next one is queued.
        sweep_schedule(after=dt.timedelta(seconds=settings.INTAKE_SWEEP_SECONDS))
    if summary.interrupted or summary.queued:
        logger.info(
            "Sweep: %s stranded, %s searches queued",
            summary.interrupted,
            summary.queued,
        )
    return {
        "interrupted": summary.interrupted,
        "queued": summary.queued,
        "recordings_interrupted": silent,
        "expired_sessions": expired,
        "finished_tasks_pruned": pruned,
    }


def sweep_schedule(*, after: dt.timedelta = dt.timedelta(0)) -> bool:
    """Queue the next sweep unless one is already waiting; True if queued.

    Several workers starting at once may each queue one; each run then queues
    the next only when no other is waiting, so the chains fold into one.
    """
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    # Queued, due or not yet. One left RUNNING by a worker that died does not
    # count, so a restarted worker starts the chain again.
    if DBTaskResult.objects.filter(
        task_path=sweep.module_path, status=TaskResultStatus.READY
    ).exists():
        return False
    sweep.using(run_after=timezone.now() + after).enqueue()
    return True
