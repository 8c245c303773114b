"""The background worker as a real process: `manage.py db_worker`.

It is intake's own command (django-tasks-db's worker that also keeps the
sweep queued), run here in a separate process against the test database,
settling a lost answer through the queue as production would.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from intake import tasks
from intake.models import Interaction
from intake.services import reconciliation
from tests.support.corti import corti_create
from tests.support.processes import BASE_DIR, database_url_for_processes
from tests.support.records import Outcome, lost_answer
from tests.support.tasks import queued

# Real `manage.py db_worker` processes: ~5 s.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def run_worker(corti, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for_processes(),
        "CORTI_API_URL": corti.api_url,
        "CORTI_AUTH_URL": corti.auth_url(),
        "INTAKE_SETTLE_SECONDS": "0",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_real_worker_process_settles_a_lost_answer(corti, clinician):
    record = lost_answer(clinician)
    corti_create(corti, record.request_body)
    reconciliation.schedule_settle(record)
    missing = lost_answer(clinician, encounter_identifier="ENC-NOT-IN-CORTI")
    reconciliation.schedule_settle(missing)

    done = run_worker(corti, "--batch")

    assert done.returncode == 0, done.stderr
    record.refresh_from_db()
    missing.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    # The worker process ran with INTAKE_SETTLE_SECONDS=0: absence is proven.
    assert missing.outcome == Outcome.FAILED
    assert queued("settle_interaction") == []


def test_the_worker_queues_the_sweep_when_it_starts(corti):
    assert queued("sweep") == []

    done = run_worker(corti, "--batch")

    assert done.returncode == 0, done.stderr
    assert "Queued the periodic sweep." in done.stdout
    # Queued for later, not run: one waits.
    [sweep] = queued("sweep")
    assert sweep.task_path == tasks.sweep.module_path
    # A second worker does not queue another.
    again = run_worker(corti, "--batch")
    assert "Queued the periodic sweep." not in again.stdout
    assert len(queued("sweep")) == 1
    assert Interaction.objects.count() == 0
