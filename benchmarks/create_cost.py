"""Our own cost per create: the dashboard's time beside Corti's (issue 13).

In one process, Django's test Client makes N full creates as a clinician
does (GET the form, POST it, follow the redirect to the result page) against
a real Corti simulator process, on a fresh SQLite file (and PostgreSQL with
--database-url: its own database, bench_create_cost, created and dropped).
Interleaved with them, a bare `requests` POST of the same body straight to
the simulator. Prints, side by side: median and p95 of both, our overhead
(the difference of the medians) against the goal, and the SQL statements and
committed write transactions per create.

    .venv/bin/python benchmarks/create_cost.py [-n 200] [--profile]
    .venv/bin/python benchmarks/create_cost.py \\
        --database-url postgres://postgres@127.0.0.1:5432/postgres

Concurrency 1, loopback only; it stops by itself. The log lines (part of
the cost) go to stderr as configured: `2>/dev/null` to hide them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from benchmarks import support  # noqa: E402

GOAL_MS = 15.0
BENCH_DATABASE = "bench_create_cost"
WARM_UP = 10


@contextlib.contextmanager
def bench_database(database_url: str | None) -> Iterator[str]:
    """A DATABASE_URL of a fresh, empty database; dropped afterwards."""
    if database_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
        return
    import psycopg

    parts = urlsplit(database_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))

    def admin(sql: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql)

    admin(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
    admin(f"CREATE DATABASE {BENCH_DATABASE}")
    try:
        yield urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))
    finally:
        from django.db import connections

        connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


class Counter:
    """SQL statements, and committed transactions that wrote, on a connection.

    A write in autocommit mode is its own transaction; writes inside an
    atomic block count once, when the block commits.
    """

    WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self, connection) -> None:
        self.connection = connection
        self.statements = 0
        self.commits = 0
        self.writes: list[str] = []
        self._waiting = False
        self.trace: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        if self.trace:
            self.trace.append(sql[:150])
        if sql.lstrip().upper().startswith(self.WRITES):
            self.writes.append(sql.split(" WHERE ")[0][:90])
            if not self.connection.in_atomic_block:
                self.commits += 1
            elif not self._waiting:
                self._waiting = True
                self.connection.on_commit(self._committed)
        return execute(sql, params, many, context)

    def _committed(self) -> None:
        self._waiting = False
        self.commits += 1


# What a clinician types (the submission key, patient and encounter vary).
TYPED = {
    "encounter_status": "in-progress",
    "encounter_type": "first_consultation",
    "encounter_title": "Knee pain",
    "encounter_started_at": "2026-01-15T10:00",
    "encounter_ended_at": "2026-01-15T10:45",
    "assigned_user_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "patient_name": "Ada Lovelace",
    "patient_gender": "female",
    "patient_birth_date": "23-04-1980",
    "patient_pronouns": "she/her",
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="creates to time")
    parser.add_argument("--database-url", help="a PostgreSQL server to use too")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="create",
        choices=("create", "post"),
        help="cProfile the whole creates (or only the POST and its result page)",
    )
    parser.add_argument("--sort", default="cumulative", help="pstats order")
    parser.add_argument(
        "--writes", action="store_true", help="list one create's statements"
    )
    args = parser.parse_args()

    with bench_database(args.database_url) as url:
        os.environ["DATABASE_URL"] = url
        run(args, engine="PostgreSQL" if args.database_url else "SQLite")


def run(args: argparse.Namespace, *, engine: str) -> None:
    import django

    django.setup()

    import requests
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from intake.corti import clear_clients
    from intake.models import Interaction

    call_command("migrate", verbosity=0)
    process, base = support.spawn_simulator()
    api_url = f"{base}/v2"
    settings.CORTI_API_URL = api_url
    settings.CORTI_AUTH_URL = f"{base}/realms/base/protocol/openid-connect/token"
    settings.CORTI_TENANT_NAME = "base"
    settings.CORTI_CLIENT_ID = "sandbox-client"
    settings.CORTI_CLIENT_SECRET = "sandbox-secret"
    clear_clients()

    user = User.objects.create_user("bench", password="pw-bench-1")
    user.groups.add(Group.objects.get(name="Clinicians"))
    client = Client()
    client.force_login(user)
    bare = requests.Session()
    token = bare.post(
        settings.CORTI_AUTH_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": settings.CORTI_CLIENT_ID,
            "client_secret": settings.CORTI_CLIENT_SECRET,
        },
        timeout=(2, 5),
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Tenant-Name": "base"}
    counter = Counter(connection)

    def create(i: int) -> uuid.UUID:
        started = time.perf_counter()
        form = client.get("/interactions/new/", follow=True)
        form_ms.append((time.perf_counter() - started) * 1000)
        assert form.status_code == 200, form.status_code
        # The form's key is in its address (reading the page is the
        # browser's work, not ours).
        form_url = form.redirect_chain[-1][0]
        values = {
            **TYPED,
            "submission_key": form_url.rsplit("key=", 1)[1],
            "patient_identifier": f"BENCH-{i}",
            "encounter_identifier": f"ENC-BENCH-{i}",
        }
        if post_profile:
            post_profile.enable()
        started = time.perf_counter()
        # Form-encoded, as a browser posts this form (not multipart).
        answer = client.post(
            form_url,
            urlencode(values),
            content_type="application/x-www-form-urlencoded",
            follow=True,
        )
        post_ms.append((time.perf_counter() - started) * 1000)
        if post_profile:
            post_profile.disable()
        assert answer.status_code == 200, answer.status_code
        assert answer.redirect_chain, "the POST did not redirect"
        return uuid.UUID(answer.redirect_chain[-1][0].rstrip("/").rsplit("/", 1)[1])

    def bare_post(i: int, body: dict) -> None:
        response = bare.post(
            f"{api_url}/interactions/",
            json=body,
            headers=headers,
            timeout=(2, 5),
        )
        assert response.status_code == 201, response.text

    full_ms: list[float] = []
    bare_ms: list[float] = []
    form_ms: list[float] = []
    post_ms: list[float] = []
    profile = cProfile.Profile() if args.profile == "create" else None
    post_profile = cProfile.Profile() if args.profile == "post" else None
    try:
        for i in range(WARM_UP):
            record = Interaction.objects.get(pk=create(-1 - i))
            bare_post(i, record.request_body)
        del form_ms[:], post_ms[:]  # the warm-up is not counted
        with connection.execute_wrapper(counter):
            for i in range(args.n):
                if i == 0 and args.writes:
                    counter.trace = ["-"]
                if profile:
                    profile.enable()
                started = time.perf_counter()
                record_id = create(i)
                full_ms.append((time.perf_counter() - started) * 1000)
                if profile:
                    profile.disable()
                if i == 0 and args.writes:
                    print("statements of one create:", *counter.trace[1:], sep="\n  ")
                # The same body Corti got from the dashboard, uncounted.
                statements, commits = counter.statements, counter.commits
                body = Interaction.objects.values_list("request_body", flat=True).get(
                    pk=record_id
                )
                counter.statements, counter.commits = statements, commits
                started = time.perf_counter()
                bare_post(i, body)
                bare_ms.append((time.perf_counter() - started) * 1000)
        created = Interaction.objects.filter(outcome=Interaction.Outcome.CREATED)
        assert created.count() == args.n + WARM_UP, "a create did not settle"
    finally:
        process.terminate()
        process.wait(timeout=10)

    bare_median = statistics.median(bare_ms)
    # The measure: the POST and its redirect to the result page,
    # against a bare POST of the same body. The form's GET is shown beside it.
    overhead = statistics.median(post_ms) - bare_median
    whole = statistics.median(full_ms) - bare_median
    print(f"{engine}: {args.n} creates at concurrency 1 (after {WARM_UP} warm-up)")
    print(f"{'':34s}{'median':>9s}{'p95':>9s}")
    for name, values in (
        ("form POST + result page", post_ms),
        ("form GET (the new form)", form_ms),
        ("whole create (GET+POST+GET)", full_ms),
        ("bare POST to the simulator", bare_ms),
    ):
        p95 = percentile(values, 0.95)
        print(f"{name:34s}{statistics.median(values):9.2f}{p95:9.2f} ms")
    verdict = "met" if overhead < GOAL_MS else "NOT met"
    goal = f"goal < {GOAL_MS:.0f} ms: {verdict}"
    print(f"{'own cost (POST+result - bare)':34s}{overhead:9.2f} ms {goal:>20s}")
    print(f"{'own cost, whole create':34s}{whole:9.2f} ms")
    print(f"{'SQL statements per create':34s}{counter.statements / args.n:9.1f}")
    print(f"{'write commits per create':34s}{counter.commits / args.n:9.1f}")
    if profile or post_profile:
        top = int(os.environ.get("PROFILE_TOP", "40"))
        print(f"\nProfile ({args.sort}, top {top}):")
        pstats.Stats(profile or post_profile).strip_dirs().sort_stats(
            args.sort
        ).print_stats(top)


if __name__ == "__main__":
    main()
