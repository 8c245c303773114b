"""Years of history: the list's pages and searches against what came before.

Seeds a scratch database (SQLite, or PostgreSQL with --database-url: a new
database beside the one named, dropped at the end) with N submissions spread
as a clinic's are: over 3 years, 200 users, a patient seen about five times,
names in several scripts (Danish, German, Spanish, Arabic, Japanese, plain
ASCII). Then, in one process, side by side, the median and p95 of:

- the list as it works now: keyset pages, a count that stops at 1,000, the
  folded search (selectors.interaction_list / interaction_page);
- the list as it worked before: `icontains` on three columns, COUNT(*) and
  OFFSET pages (Django's Paginator);
- Django's admin changelist for the same model and the same search, as a
  signed-in superuser (its own COUNT, search_fields and pages);

for the first page, a page deep in the history, a patient identifier, a
name fragment, the same name typed without accents, the first 8 characters
of an interaction ID, a page halfway down the list sorted by patient
identifier and a 30-day window; then the administrators'
overview page (its charts over 30 and 90 days), and the export of every row
(throughput, and the peak memory of a process that does only that). Goals
printed beside the figures (issue 14): each lookup at least 10 times faster
than the admin changelist, and under 50 ms median on PostgreSQL; the
overview under 200 ms; the export's peak under 150 MB.

    .venv/bin/python benchmarks/history.py [--rows 100000]
    .venv/bin/python benchmarks/history.py --rows 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/postgres

Loopback only; it stops by itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from benchmarks import support  # noqa: E402

USERS = 200
YEARS = 3
BATCH = 5000
GOAL_FACTOR = 10
GOAL_MS_POSTGRES = 50.0
GOAL_CHART_MS = 200.0
GOAL_EXPORT_MB = 150.0
NAMES = [
    "Søren Ødegård",
    "Åse Ørsted",
    "Jürgen Groß",
    "Müller Weiß",
    "José Núñez",
    "María Peña",
    "مُحَمَّد الفَارِس",
    "فاطمة الزهراء",
    "山田 太郎",
    "佐藤 花子",
    "Ada Lovelace",
    "Grace Hopper",
]


# Mostly created, now and then failed or waiting on Corti's answer.
OUTCOMES = ["created"] * 18 + ["failed", "unknown"]
STATUSES = ["completed"] * 6 + ["planned", "in-progress", "on-hold", "cancelled"]
TYPES = ["consultation", "first_consultation", "emergency", "outpatient", "inpatient"]


def seed(rows: int, *, rng: random.Random) -> None:
    from django.contrib.auth.models import User

    from intake.models import Interaction

    users = User.objects.bulk_create(
        [User(username=f"history-{n:03d}") for n in range(USERS)]
    )
    now = dt.datetime.now(dt.UTC)
    span = YEARS * 365 * 24 * 3600
    patients = max(rows // 5, 1)
    started = time.perf_counter()
    # The seeded submissions keep their own submission times (created_at
    # is auto_now_add: it would set them all to now).
    created_at: Any = Interaction._meta.get_field("created_at")
    created_at.auto_now_add = False
    batch: list[Interaction] = []
    # Spread evenly over the years, newest last (as they arrive), with jitter.
    for n in range(rows):
        at = now - dt.timedelta(seconds=span * (1 - n / rows) + rng.random())
        patient = rng.randrange(patients)
        batch.append(
            Interaction(
                submitted_by=users[rng.randrange(USERS)],
                outcome=OUTCOMES[n % len(OUTCOMES)],
                encounter_identifier=f"ENC-{n:07d}",
                encounter_status=STATUSES[rng.randrange(len(STATUSES))],
                encounter_type=TYPES[patient % len(TYPES)],
                encounter_title="Kontrol" if n % 7 == 0 else "",
                encounter_started_at=at,
                patient_identifier=f"PAT-{patient:06d}",
                patient_name=f"{NAMES[patient % len(NAMES)]} {patient}",
                time_zone="Europe/Copenhagen",
                interaction_id=uuid.UUID(int=rng.getrandbits(128)),
                created_at=at,
            )
        )
        if len(batch) == BATCH:
            Interaction.objects.bulk_create(batch)
            batch = []
    if batch:
        Interaction.objects.bulk_create(batch)
    created_at.auto_now_add = True
    print(f"Seeded {rows:,} submissions in {time.perf_counter() - started:.0f} s")


def timed(one: Callable[[], object], repeats: int) -> tuple[float, float]:
    one()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        one()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def run(args: argparse.Namespace) -> bool:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.paginator import Paginator
    from django.db import connection
    from django.db.models import Q
    from django.test import Client

    from intake.models import Interaction
    from intake.selectors import (
        COUNT_LIMIT,
        DEFAULT_SORT,
        SORTS,
        HistoryCursor,
        count_up_to,
        interaction_list,
        interaction_page,
    )

    call_command("migrate", verbosity=0)
    # One line per request would bury the figures.
    logging.getLogger("intake.requests").setLevel(logging.WARNING)
    # The admin reads its date filters as naive dates: it warns, and works.
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    rng = random.Random(14)
    seed(args.rows, rng=rng)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE intake_interaction")
    admin_user = User.objects.create_superuser("history-admin", password="pw-h-1")
    admin = Client()
    admin.force_login(admin_user)

    def now_list(
        q: str = "",
        older: HistoryCursor | None = None,
        sort: str = DEFAULT_SORT,
        **filters: Any,
    ) -> list[Interaction]:
        found = interaction_list(q=q, **filters)
        page = interaction_page(found, size=25, sort=SORTS[sort], older_than=older)
        count_up_to(found, COUNT_LIMIT)
        return page.rows

    def before_list(
        q: str = "", page: int = 1, order: str = "-created_at", **filters: Any
    ) -> list[Interaction]:
        found = Interaction.objects.select_related("submitted_by").order_by(
            order, "-created_at", "-pk"
        )
        if q:
            found = found.filter(
                Q(encounter_identifier__icontains=q)
                | Q(patient_identifier__icontains=q)
                | Q(patient_name__icontains=q)
            )
        if filters:
            found = found.filter(**filters)
        return list(Paginator(found, 25).get_page(page).object_list)

    def changelist(**params: str) -> Callable[[], object]:
        def get() -> object:
            response = admin.get("/admin/intake/interaction/", params)
            assert response.status_code == 200, response.status_code
            return response

        return get

    deep_at = args.rows - 100
    deep_row = Interaction.objects.order_by("-created_at", "-pk")[deep_at]
    deep = HistoryCursor.of(deep_row)
    # Sorted by patient identifier, halfway down (the admin's 7th column).
    middle = args.rows // 2
    by_patient = Interaction.objects.order_by(*SORTS["patient"].order_by())
    middle_cursor = HistoryCursor.of(by_patient[middle])
    sample = Interaction.objects.order_by("?").first() if args.rows < 200_000 else None
    sample = sample or Interaction.objects.order_by("-created_at")[args.rows // 3]
    patient = sample.patient_identifier
    name_part = sample.patient_name.split()[0][1:5]  # "ürge" of "Jürgen"
    unaccented = {"Søren": "soren", "Åse": "ase", "Jürgen": "jurgen"}.get(
        sample.patient_name.split()[0], name_part.lower()
    )
    id_prefix = str(sample.interaction_id)[:8]
    until = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)
    since = until - dt.timedelta(days=30)
    window: dict[str, Any] = {"created_at__gte": since, "created_at__lt": until}
    now_window: dict[str, Any] = {"submitted_from": since, "submitted_before": until}

    lookups = [
        ("first page", now_list, before_list, changelist()),
        (
            f"page {deep_at // 25:,} (deep)",
            lambda: now_list(older=deep),
            lambda: before_list(page=deep_at // 25),
            changelist(p=str(deep_at // 100)),
        ),
        (
            f"patient identifier {patient}",
            lambda: now_list(patient),
            lambda: before_list(patient),
            changelist(q=patient),
        ),
        (
            f"name fragment {name_part!r}",
            lambda: now_list(name_part),
            lambda: before_list(name_part),
            changelist(q=name_part),
        ),
        (
            f"without accents {unaccented!r}",
            lambda: now_list(unaccented),
            lambda: before_list(unaccented),
            changelist(q=unaccented),
        ),
        (
            f"interaction ID {id_prefix}",
            lambda: now_list(id_prefix),
            lambda: before_list(id_prefix),
            changelist(q=id_prefix),
        ),
        (
            f"by patient, page {middle // 25:,}",
            lambda: now_list(older=middle_cursor, sort="patient"),
            lambda: before_list(page=middle // 25, order="patient_identifier"),
            changelist(o="7", p=str(middle // 100)),
        ),
        (
            "a 30-day window",
            lambda: now_list(**now_window),
            lambda: before_list(**window),
            changelist(
                created_at__gte=str(window["created_at__gte"].date()),
                created_at__lt=str(until.date()),
            ),
        ),
    ]
    print(
        f"\n{connection.vendor}, {args.rows:,} submissions; median / p95 ms of "
        f"{args.repeats} runs; found = rows on the page"
    )
    head = f"{'':34s}{'now':>16s}{'before':>16s}{'admin':>16s}  found now/before"
    print(head)
    met = True
    if "lookups" not in args.parts:
        lookups = []
        print("(lookups not asked for: --parts)")
    for name, now_one, before_one, admin_one in lookups:
        figures = [timed(one, args.repeats) for one in (now_one, before_one, admin_one)]
        cells = "".join(f"{m:9.1f} /{p:5.0f}" for m, p in figures)
        found = f"{len(now_one())}/{len(before_one())}"
        ratio = figures[2][0] / figures[0][0]
        ok = ratio >= GOAL_FACTOR
        if connection.vendor == "postgresql":
            ok = ok and figures[0][0] < GOAL_MS_POSTGRES
        met = met and ok
        print(f"{name:34s}{cells}  {found:>9s}  admin/now {ratio:5.1f}x")
    goal = f"each lookup >= {GOAL_FACTOR}x faster than the admin changelist"
    if connection.vendor == "postgresql":
        goal += f" and under {GOAL_MS_POSTGRES:.0f} ms median"
    if lookups:
        print(f"\nGoal: {goal}: {'met' if met else 'NOT met'}")

    # The administrators' overview: three charts over 30 or 90 days.
    for days in (30, 90) if "overview" in args.parts else ():

        def overview(days: int = days) -> object:
            response = admin.get("/overview/", {"days": str(days)})
            assert response.status_code == 200, response.status_code
            return response

        median, p95 = timed(overview, args.repeats)
        ok = median < GOAL_CHART_MS
        met = met and ok
        print(
            f"overview page, last {days} days: {median:.1f} / {p95:.0f} ms "
            f"(goal < {GOAL_CHART_MS:.0f} ms: {'met' if ok else 'NOT met'})"
        )
    if "export" not in args.parts:
        return met
    # The export of every row, in a process of its own: its peak memory
    # is the export's (and Django's), not the seeding's.
    connection.close()
    child = subprocess.run(
        [sys.executable, __file__, "--export-child"],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if child.returncode != 0:
        print(f"export: the measuring process failed:\n{child.stderr[-3000:]}")
        return False
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    ok = figures["peak_mb"] < GOAL_EXPORT_MB and figures["rows"] == args.rows
    met = met and ok
    print(
        f"export of {figures['rows']:,} rows ({figures['mb']:.0f} MB of CSV): "
        f"{figures['seconds']:.1f} s, {figures['rows'] / figures['seconds']:,.0f} "
        f"rows/s; peak memory of its process {figures['peak_mb']:.0f} MB "
        f"(Django alone {figures['start_mb']:.0f} MB; goal < {GOAL_EXPORT_MB:.0f} "
        f"MB: {'met' if ok else 'NOT met'})"
    )
    return met


def export_child() -> None:
    """Stream the whole history's CSV as the administrator and print what it
    took (one JSON line): rows, megabytes, seconds, peak resident memory."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.http import StreamingHttpResponse
    from django.test import Client

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    logging.getLogger("intake.requests").setLevel(logging.WARNING)
    client = Client()
    client.force_login(User.objects.get(username="history-admin"))
    start_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    response = client.get("/interactions/export.csv", {"by": "all"})
    assert response.status_code == 200, response.status_code
    assert isinstance(response, StreamingHttpResponse)
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "rows": lines - 1,
        "mb": size / 1e6,
        "seconds": seconds,
        "peak_mb": peak_mb,
        "start_mb": start_mb,
    }
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--database-url", default="", help="a PostgreSQL server")
    parser.add_argument(
        "--parts",
        type=lambda text: set(text.split(",")),
        default={"lookups", "overview", "export"},
        help="which of lookups,overview,export to measure (default: all)",
    )
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child()
        return
    with tempfile.TemporaryDirectory(prefix="corti-intake-history-") as folder:
        url, drop = support.scratch_database(args.database_url, Path(folder))
        os.environ["DATABASE_URL"] = url
        try:
            run(args)
        finally:
            if drop is not None:
                from django.db import connections

                connections.close_all()
                drop()


if __name__ == "__main__":
    main()
