"""A create whose answer was lost settles by itself, on a page left open.

Corti (the simulator's "slow-created" fault) takes longer than the dashboard
waits: the dashboard gives up, finds nothing yet, and shows the submission as
"Checking with Corti…", with nothing to send again. Corti then creates it.
The background worker, a real `manage.py db_worker` process on the live
server's database, searches again once the settle window has passed, finds
it and records it; the open page, polling, shows "Created in Corti" with the
interaction's ID without being reloaded. Nothing was sent twice.

The live server runs in this process, so the `settings` fixture sets its
timeout and settle window; the worker process gets the same through its
environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from intake.models import CortiCall, Interaction
from tests.support.browser import sign_in, wait_for_htmx
from tests.support.processes import BASE_DIR, database_url_for_processes

pytestmark = pytest.mark.django_db(transaction=True)

DETAIL_URL = re.compile(r"/interactions/([0-9a-f-]{36})/$")
# The dashboard waits 1 s for Corti's answer; Corti creates the interaction
# after 2 s. A search that finds nothing proves absence only 4 s after the
# create was sent: longer than Corti takes, so the search that settles it
# finds the interaction instead of wrongly concluding it was never created.
READ_TIMEOUT = 1.0
CORTI_DELAY = 2.0
SETTLE_SECONDS = 4.0
# The page asks every 3 s; the worker polls its queue every 0.2 s.
SETTLED_WITHIN_MS = 20_000


@pytest.fixture
def start_worker(corti, tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Start `manage.py db_worker` on the test database (stopped afterwards)."""
    processes: list[subprocess.Popen] = []
    log = tmp_path / "worker.log"

    def start() -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url_for_processes(),
            "CORTI_API_URL": corti.api_url,
            "CORTI_AUTH_URL": corti.auth_url(),
            "INTAKE_SETTLE_SECONDS": str(SETTLE_SECONDS),
        }
        with log.open("ab") as out:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "manage.py",
                        "db_worker",
                        "--interval",
                        "0.2",
                        "--no-startup-delay",
                    ],
                    cwd=BASE_DIR,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if log.exists():
        # Shown with a failure (pytest prints captured output then).
        print(log.read_text(errors="replace"))


def test_a_lost_answer_settles_by_itself_on_the_open_page(
    page, site, corti, settings, watch, browser_clinician, start_worker
):
    settings.CORTI_TIMEOUT = READ_TIMEOUT
    settings.INTAKE_SETTLE_SECONDS = SETTLE_SECONDS
    sign_in(page, site, "nurse")
    page.locator("#id_encounter_identifier").fill("ENC-SLOW-1")
    page.locator("#id_encounter_status").select_option("in-progress")
    page.locator("#id_encounter_type").select_option("emergency")
    page.locator("#id_patient_identifier").fill("PAT-SLOW-1")
    page.locator("#id_patient_name").fill("Cleo Slowly")
    wait_for_htmx(page)
    corti.set_faults(
        {"kind": "slow-created", "endpoint": "create", "count": 1, "delay": CORTI_DELAY}
    )

    page.locator("#id_patient_name").press("Enter")
    page.wait_for_url(DETAIL_URL, timeout=10_000)

    # The answer was lost: checking, nothing to resend, a way to ask for a check.
    expect(page.get_by_role("heading", name="Checking with Corti…")).to_be_visible()
    expect(page.get_by_role("button", name="Check Corti now")).to_be_visible()
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.get_by_role("link", name="Correct and send again")).to_have_count(0)
    expect(page.locator("#interaction-id")).to_have_count(0)
    record = Interaction.objects.get()
    assert record.outcome == Interaction.Outcome.UNKNOWN
    assert record.interaction_id is None
    page.evaluate("window.__samePage = true")

    start_worker()

    result = page.get_by_role("heading", name="Created in Corti")
    expect(result).to_be_visible(timeout=SETTLED_WITHIN_MS)
    assert page.evaluate("window.__samePage === true"), "the page was reloaded"
    record.refresh_from_db()
    assert record.outcome == Interaction.Outcome.CREATED
    state = corti.state()
    [held] = state["interactions"]
    assert state["counts"]["create_requests"] == 1, "sent twice"
    assert held["encounter"]["identifier"] == "ENC-SLOW-1"
    assert str(record.interaction_id) == held["id"]
    expect(page.locator("#interaction-id")).to_have_text(held["id"])
    expect(page.locator("#websocket-url")).to_have_text(held["websocketUrl"])
    expect(page.get_by_role("heading", name="Checking with Corti…")).to_have_count(0)
    # The background worker, not a page view or a resend, found it.
    found = record.calls.get(kind=CortiCall.Kind.LOOKUP, result=CortiCall.Result.FOUND)
    assert (found.kind, found.trigger) == (CortiCall.Kind.LOOKUP, "worker")
    assert record.calls.filter(kind=CortiCall.Kind.CREATE).count() == 1
    watch.assert_clean()
