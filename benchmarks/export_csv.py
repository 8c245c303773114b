"""Years of history: the CSV export and the idle sign-out's cost per request.

Fills a scratch database with ROWS submissions (a clinic's years), then, in
one process and interleaved round by round:

- exports them all through the real view (`/interactions/export.csv`, test
  client, every middleware) as it streams, against building the same CSV from
  a fully loaded list: time and peak Python memory (tracemalloc);
- opens the list page with a search, the way administrators look things up;
- opens the list page with the idle sign-out middleware in place and without
  it, to show what keeping the idle clock costs a request.

Prints medians and ratios. Bounded: ROWS rows, ROUNDS rounds, no network.

    .venv/bin/python benchmarks/export_csv.py                  # SQLite
    .venv/bin/python benchmarks/export_csv.py \\
        --database-url postgres://postgres@127.0.0.1:5432/test  # PostgreSQL

With a PostgreSQL URL it creates a scratch database beside the one named and
drops it at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import support  # noqa: E402

IDLE_MIDDLEWARE = "intake.middleware.IdleTimeoutMiddleware"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200, help="per round")
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def setup_django(database_url: str) -> None:
    # whitenoise warns that collectstatic has not run; nothing here needs it.
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ["DJANGO_LOG_LEVEL"] = "ERROR"
    os.environ.pop("CORTI_CLIENT_ID", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(rows: int):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from intake.models import Interaction

    user = get_user_model().objects.create_user(
        "bench-admin", password=secrets.token_urlsafe(16), is_staff=True
    )
    user.groups.add(Group.objects.get(name="Administrators"))
    start = dt.datetime(2021, 1, 4, 8, 0, tzinfo=dt.UTC)
    batch = []
    for n in range(rows):
        started = start + dt.timedelta(minutes=25 * n)
        batch.append(
            Interaction(
                submitted_by=user,
                outcome="created",
                encounter_identifier=f"ENC-{n:07d}",
                encounter_status="completed",
                encounter_type="consultation",
                encounter_title=f"Follow-up visit {n}",
                encounter_started_at=started,
                encounter_ended_at=started + dt.timedelta(minutes=20),
                patient_identifier=f"PAT-{n % 9000:05d}",
                patient_name=f"Example Patient {n % 9000}",
                patient_gender="unknown",
                time_zone="Europe/Copenhagen",
                interaction_id=uuid.uuid4(),
                websocket_url="wss://example.invalid/audio-bridge/v2/x",
                request_body={"encounter": {"identifier": f"ENC-{n:07d}"}},
            )
        )
        if len(batch) == 5000:
            Interaction.objects.bulk_create(batch)
            batch = []
    Interaction.objects.bulk_create(batch)
    return user


def timed(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def peak_mib(work) -> float:
    """Peak Python allocations during one call (tracemalloc; slows it down)."""
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="corti-export-"))
    database_url, drop = support.scratch_database(args.database_url, workdir)
    try:
        setup_django(database_url)
        run(args, database_url)
    finally:
        from django.db import connections

        connections.close_all()
        if drop:
            drop()


def run(args: argparse.Namespace, database_url: str) -> None:
    from django.test import Client
    from django.test.utils import override_settings

    from intake.exports import interactions_csv
    from intake.selectors import interaction_list

    # No collectstatic here: plain static URLs.
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
            },
        }
    ).enable()
    print(
        f"Database: {support.describe(database_url)}; filling {args.rows:,} submissions"
    )
    began = time.perf_counter()
    user = fill(args.rows)
    print(f"  filled in {time.perf_counter() - began:.1f} s")
    client = Client()
    client.force_login(user)

    def streamed() -> None:
        from django.http import StreamingHttpResponse

        response = client.get("/interactions/export.csv")
        assert response.status_code == 200
        assert isinstance(response, StreamingHttpResponse)
        lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
        assert lines == args.rows + 1, lines

    def loaded() -> None:
        records = list(interaction_list())
        text = "".join(interactions_csv(records))
        assert text.count("\n") == args.rows + 1

    def searches() -> None:
        for n in range(args.requests // 10):
            response = client.get("/interactions/", {"q": f"Example Patient {n}7"})
            assert response.status_code == 200

    def pages() -> None:
        for _ in range(args.requests):
            assert client.get("/interactions/").status_code == 200

    from django.conf import settings

    without_idle = [m for m in settings.MIDDLEWARE if m != IDLE_MIDDLEWARE]
    figures: dict[str, list[float]] = {
        "export, streamed": [],
        "export, loaded first": [],
        "search": [],
        "list, idle clock": [],
        "list, no idle clock": [],
    }
    for number in range(1, args.rounds + 1):
        figures["export, streamed"].append(timed(streamed))
        figures["export, loaded first"].append(timed(loaded))
        figures["search"].append(timed(searches))
        figures["list, idle clock"].append(timed(pages))
        with override_settings(MIDDLEWARE=without_idle):
            figures["list, no idle clock"].append(timed(pages))
        print(f"  round {number}/{args.rounds} done")
    streamed_mb, loaded_mb = peak_mib(streamed), peak_mib(loaded)

    def median(name: str) -> float:
        return statistics.median(figures[name])

    rows = args.rows
    streamed_s, loaded_s = median("export, streamed"), median("export, loaded first")
    print()
    print(f"Export of {rows:,} submissions (median of {args.rounds} rounds):")
    print(
        f"  streamed by the view: {streamed_s:.2f} s "
        f"({rows / streamed_s:,.0f} rows/s), peak {streamed_mb:.1f} MiB"
    )
    print(
        f"  loaded into a list first: {loaded_s:.2f} s, peak {loaded_mb:.1f} MiB "
        f"({loaded_mb / streamed_mb:.1f}x the memory)"
    )
    searches_n = args.requests // 10
    print(
        f"List search by patient name over {rows:,}: "
        f"{median('search') / searches_n * 1000:.1f} ms per page"
    )
    with_idle = median("list, idle clock") / args.requests * 1000
    no_idle = median("list, no idle clock") / args.requests * 1000
    print(
        f"List page (signed in): {with_idle:.2f} ms with the idle clock, "
        f"{no_idle:.2f} ms without ({with_idle / no_idle:.2f}x)"
    )


if __name__ == "__main__":
    main()
