"""Helpers shared by the submission, reconciliation and command tests.

Everything here talks to the real simulator over HTTP (the `corti` fixture).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any
from unittest import mock

import requests
from django.db import connections
from django.utils import timezone

from intake.corti import clear_clients
from intake.models import CortiCall, Interaction
from intake.services import calls
from intake.services.interactions import interaction_request, interaction_submit
from intake.services.outcomes import pending_grace
from tests.services.test_interactions import closed_port, typed_values

__all__ = [
    "Outcome",
    "calls_of",
    "closed_port",
    "corti_create",
    "corti_holds",
    "create_attempts",
    "fault",
    "in_threads",
    "pointing_at_a_closed_port",
    "set_faults",
    "stranded",
    "submit",
    "typed_values",
    "wait_until",
]

Outcome = Interaction.Outcome
HTTP_TIMEOUT = (2.0, 5.0)


# --- the simulator ---------------------------------------------------------


def fault(kind: str, endpoint: str = "create", **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "endpoint": endpoint, **fields}


def set_faults(corti, *faults: dict[str, Any]) -> None:
    """Replace the simulator's fault rules (an empty call removes them all)."""
    corti.set_faults(*faults)


def create_attempts(state: dict) -> int:
    """POSTs that reached the create endpoint, those a fault answered included."""
    return state["counts"].get("create_requests", 0)


def corti_holds(corti) -> list[dict[str, Any]]:
    """What the simulator created; both of its counts must agree."""
    state = corti.state()
    assert state["counts"].get("created", 0) == len(state["interactions"])
    return state["interactions"]


def corti_create(corti, body: dict[str, Any]) -> uuid.UUID:
    """Create an interaction straight in the simulator, as Corti would have."""
    token = requests.post(
        corti.auth_url(),
        data={
            "grant_type": "client_credentials",
            "client_id": corti.client_id,
            "client_secret": corti.client_secret,
        },
        timeout=HTTP_TIMEOUT,
    ).json()["access_token"]
    response = requests.post(
        f"{corti.api_url}/interactions/",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Tenant-Name": corti.tenant},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["interactionId"])


@contextmanager
def pointing_at_a_closed_port(settings):
    """Corti refuses every connection while this lasts."""
    saved = settings.CORTI_API_URL, settings.CORTI_AUTH_URL
    port = closed_port()
    settings.CORTI_API_URL = f"http://127.0.0.1:{port}/v2"
    settings.CORTI_AUTH_URL = (
        f"http://127.0.0.1:{port}/realms/base/protocol/openid-connect/token"
    )
    clear_clients()
    try:
        yield
    finally:
        settings.CORTI_API_URL, settings.CORTI_AUTH_URL = saved
        clear_clients()


# --- records ---------------------------------------------------------------


def submit(user, key: uuid.UUID | None = None, **overrides: Any):
    """One POST of the form with `key` (a fresh one by default)."""
    return interaction_submit(
        submission_key=key or uuid.uuid4(),
        submitted_by=user,
        **{**typed_values(), **overrides},
    )


def calls_of(record: Interaction) -> list[tuple[str, str, str, int | None]]:
    """(kind, result, trigger, user id) of each call logged, oldest first."""
    return [
        (call.kind, call.result, call.trigger, call.user_id)
        for call in CortiCall.objects.filter(interaction=record).order_by(
            "started_at", "id"
        )
    ]


def stranded(
    user,
    *,
    age: dt.timedelta | None = None,
    created_ago: dt.timedelta = dt.timedelta(minutes=1),
    **overrides: Any,
) -> Interaction:
    """A record left pending by a worker killed while its create was in flight.

    `age` is how long ago its last attempt began: past the grace by default.
    """
    record = Interaction(submitted_by=user, time_zone="UTC")
    for name, value in {**typed_values(), **overrides}.items():
        setattr(record, name, value)
    record.request_body = interaction_request(record).to_json()
    record.last_attempt_at = timezone.now()
    record.save()
    calls.call_start(
        record,
        kind=CortiCall.Kind.CREATE,
        trigger=CortiCall.Trigger.SUBMIT,
        user=user,
        request_body=record.request_body,
    )
    if age is None:
        age = pending_grace() + dt.timedelta(seconds=5)
    now = timezone.now()
    Interaction.objects.filter(pk=record.pk).update(
        last_attempt_at=now - age, created_at=now - max(age, created_ago)
    )
    record.refresh_from_db()
    return record


# --- threads ---------------------------------------------------------------


def in_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run `target(i)` in `count` threads released together; their results.

    Each thread uses (and closes) its own database connection.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target(index)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


# --- background tasks ------------------------------------------------------


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


def lost_answer(
    user, *, lost_ago: dt.timedelta = dt.timedelta(seconds=30), **overrides: Any
) -> Interaction:
    """A record whose create's answer was lost `lost_ago`, now unknown.

    No create reached the simulator; whether Corti holds it is up to the test.
    """
    from intake.services import outcomes

    record = stranded(user, age=dt.timedelta(seconds=1), **overrides)
    outcomes.mark_answer_lost(
        record,
        _timeout_error(),
        sent_at=timezone.now() - lost_ago,
    )
    # The first search, right after the loss, is over: nobody holds it.
    Interaction.objects.filter(pk=record.pk).update(
        checking_until=None, checks_made=1, next_check_at=timezone.now()
    )
    record.refresh_from_db()
    return record


def _timeout_error():
    from intake.corti.errors import CortiTimeoutError

    return CortiTimeoutError("Corti did not answer within 5 s.")


# --- the settle window -------------------------------------------------------


def settle_at(
    record: Interaction,
    seconds_after_loss: float,
    *,
    trigger: str = CortiCall.Trigger.WORKER,
) -> bool:
    """Run one forced settle as if `seconds_after_loss` had passed since the
    lost request was sent (for a stranded record: since the latest moment its
    create can have left, one call's time after its last attempt).

    True when this settle searched Corti.
    """
    from intake.services import reconciliation
    from intake.services.outcomes import one_call

    record.refresh_from_db()
    lost = record.answer_lost_at or (
        # A stranded record's create left at the latest one call after it.
        (record.last_attempt_at or record.created_at) + one_call()
    )
    return reconciliation.interaction_settle(
        record=record,
        trigger=trigger,
        force=True,
        now=lost + dt.timedelta(seconds=seconds_after_loss),
    )


def backdate_loss(record: Interaction, seconds: float) -> None:
    """Move the record's lost request (and its attempt) `seconds` into the past.

    For checks that run on the real clock (tasks, the command): with `seconds`
    beyond INTAKE_SETTLE_SECONDS a search that finds nothing proves it.
    """
    record.refresh_from_db()
    ago = dt.timedelta(seconds=seconds)
    fields: dict[str, Any] = {
        name: getattr(record, name) - ago
        for name in ("answer_lost_at", "last_attempt_at", "created_at")
        if getattr(record, name) is not None
    }
    Interaction.objects.filter(pk=record.pk).update(**fields)
    record.refresh_from_db()


def database_url_for_processes() -> str:
    """The test database as a DATABASE_URL, for a process the test starts."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"
