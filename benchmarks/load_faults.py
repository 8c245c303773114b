"""Nothing lost, nothing duplicated: the dashboard under load while Corti fails.

Starts the Corti simulator with about a fifth of its create answers faulted
(created-but-504, created-but-dropped, 500/503/504, dropped connections,
429, answers slower than the read timeout, and "slow then created": Corti
creates the interaction only after the dashboard gave up waiting and searched)
and some lookups failing too, starts the dashboard under gunicorn on
127.0.0.1 against a scratch database, with its background worker
(`manage.py db_worker`), signs clinicians in, and sends SUBMISSIONS form
submissions at CONCURRENCY, as a browser does: GET the form (its submission
key), then POST it. Some forms are posted twice at the same moment (double
click, two tabs) and some again after the answer (back button and resubmit).

Then it waits, with the faults still on, until the worker has settled every
lost answer by itself (INTAKE_SETTLE_SECONDS is short here), and checks:
lost 0, duplicates 0, server errors 0, interactions in Corti whose record is
not created 0, records left unknown or pending 0. Last, with the faults off,
staff press Retry on every failed submission and every one is created.

Bounded: SUBMISSIONS forms, loopback only, and a time limit after which no
new submission starts; every process it started is stopped at the end.

    .venv/bin/python benchmarks/load_faults.py                 # SQLite
    .venv/bin/python benchmarks/load_faults.py \\
        --database-url postgres://postgres@127.0.0.1:5432/test  # PostgreSQL

With a PostgreSQL URL it creates a scratch database beside the one named and
drops it at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import support

PASSWORD = "load-test-" + secrets.token_hex(8)

#: (kind, probability) per create answer; the first rule that fires wins, so
#: together they fault about 20% of create answers.
CREATE_FAULTS = [
    ("created-504", 0.04),
    ("created-drop", 0.03),
    ("500", 0.02),
    ("503", 0.02),
    ("504", 0.02),
    ("drop", 0.02),
    ("429", 0.03),
    ("slow", 0.015),
    ("slow-created", 0.02),
]
#: Lookups after a lost answer fail this often, leaving some outcomes unknown.
LIST_FAULTS = [("503", 0.1)]


@dataclass
class Result:
    number: int
    key: str = ""
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    error: str = ""


def main() -> None:
    args = parse_args()
    deadline = time.monotonic() + args.time_limit
    with support.scratch_run("corti-intake-load-", args.database_url) as run:
        sim_port = support.free_port()
        env = support.base_env(
            run.database_url,
            sim_port,
            read_timeout=args.read_timeout,
            settle_seconds=args.settle_seconds,
        )
        sim_url = support.start_simulator(
            run.processes,
            sim_port,
            env=env,
            workdir=run.workdir,
            flags=[
                "--fault-delay",
                str(args.slow_seconds),
                "--fault-retry-after",
                "0.2",
                "--fault-seed",
                str(args.seed),
                *fault_flags(args.fault_scale),
            ],
        )
        support.prepare_dashboard(env, PASSWORD)
        worker = support.start_worker(
            run.processes, "0.2", env=env, workdir=run.workdir
        )
        base = support.start_dashboard(
            run.processes,
            env=env,
            workdir=run.workdir,
            WEB_CONCURRENCY=str(args.workers),
            GUNICORN_THREADS=str(args.threads),
        )

        print(
            f"Dashboard {base} ({args.workers} workers x {args.threads} threads), "
            f"simulator {sim_url}, database {support.describe(run.database_url)}"
        )
        print(
            f"Sending {args.submissions} submissions at concurrency "
            f"{args.concurrency}; about {fault_share(args.fault_scale):.0%} of "
            "create answers faulted."
        )
        started = time.monotonic()
        results = run_load(base, args, deadline)
        elapsed = time.monotonic() - started
        report_load(results, elapsed)

        corti_before = simulator_state(sim_url)
        print_figures("After the load", results, corti_before, local_records(env))

        # The worker settles every lost answer by itself, faults still on.
        settled_in = wait_settled(env, worker, args.settle_seconds)
        problems = print_figures(
            f"Settled by the worker ({settled_in:.0f} s after the load)",
            results,
            simulator_state(sim_url),
            local_records(env),
            settled=True,
        )

        # Recovery, as staff would do it, with Corti healthy again.
        requests.delete(f"{sim_url}/_simulator/faults", timeout=5)
        out = support.manage(env, "reconcile_interactions", capture=True)
        print(f"reconcile_interactions: {out.strip()}")
        retried = retry_failed(base, env, args)
        print(f"Retried {retried} failed submissions through the Retry button.")
        records = local_records(env)
        problems += print_figures(
            "After recovery", results, simulator_state(sim_url), records, settled=True
        )
        if any(r["outcome"] != "created" for r in records):
            problems.append("after recovery, not every submission is created")
        print(f"Faults the simulator fired: {faults_fired(corti_before)}")
    if problems:
        print("\nFAILED: " + "; ".join(problems))
        if args.check:
            raise SystemExit(1)
    else:
        print("\nOK: nothing lost, nothing duplicated, no server error.")


# --- load ---------------------------------------------------------------------


def run_load(base: str, args: argparse.Namespace, deadline: float) -> list[Result]:
    rng = random.Random(args.seed)
    plan = [
        (n, rng.random() < args.double_post, rng.random() < args.resubmit)
        for n in range(args.submissions)
    ]
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = clinician(base)
        return local.session

    def one(item: tuple[int, bool, bool]) -> Result:
        number, double, resubmit = item
        result = Result(number=number)
        if time.monotonic() > deadline:
            result.error = "not sent: time limit"
            return result
        try:
            submit(base, session(), result, double=double, resubmit=resubmit)
        except requests.RequestException as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        return result

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        return list(pool.map(one, plan))


def submit(
    base: str,
    http: requests.Session,
    result: Result,
    *,
    double: bool,
    resubmit: bool,
) -> None:
    page = http.get(f"{base}/interactions/new/", timeout=30)
    result.statuses.append(page.status_code)
    key = support.KEY_RE.search(page.text)
    csrf = support.CSRF_RE.search(page.text)
    if page.status_code != 200 or not key or not csrf:
        result.error = f"form not served ({page.status_code})"
        return
    result.key = key.group(1)
    data = {
        "csrfmiddlewaretoken": csrf.group(1),
        "submission_key": result.key,
        "encounter_identifier": f"LOAD-{result.key[:8]}-{result.number}",
        "encounter_status": "in-progress",
        "encounter_type": "consultation",
        "encounter_title": f"Load test {result.number}",
        "encounter_started_at": "2026-11-24T09:00",
        # One patient per form: a second encounter of one patient within the
        # hour would (rightly) be asked about before it is created.
        "patient_identifier": f"PAT-{result.key[:8]}-{result.number}",
        "patient_name": "Load Test",
        "patient_birth_date": "1980-04-23",
    }

    def post() -> None:
        started = time.monotonic()
        answer = http.post(
            f"{base}/interactions/new/",
            data=data,
            headers={"Referer": f"{base}/interactions/new/"},
            allow_redirects=False,
            timeout=60,
        )
        result.seconds.append(time.monotonic() - started)
        result.statuses.append(answer.status_code)

    if double:
        # Double click / second tab: the same form posted twice at once.
        twin = threading.Thread(target=post)
        twin.start()
        post()
        twin.join()
    else:
        post()
    if resubmit:
        post()  # back button, then submit the same form again


def clinician(base: str) -> requests.Session:
    """The demo clinician, signed in."""
    return support.sign_in(base, "clinician", PASSWORD, failure="could not sign in")


def retry_failed(base: str, env: dict[str, str], args: argparse.Namespace) -> int:
    failed = [r for r in local_records(env) if r["outcome"] == "failed"]
    http = clinician(base)
    for record in failed:
        page = http.get(f"{base}/interactions/{record['id']}/", timeout=30)
        csrf = support.CSRF_RE.search(page.text)
        http.post(
            f"{base}/interactions/{record['id']}/retry/",
            data={"csrfmiddlewaretoken": csrf.group(1) if csrf else ""},
            headers={"Referer": f"{base}/interactions/{record['id']}/"},
            allow_redirects=False,
            timeout=60,
        )
    return len(failed)


# --- figures ------------------------------------------------------------------


def report_load(results: list[Result], elapsed: float) -> None:
    posts = [s for r in results for s in r.seconds]
    median, p95 = statistics.median(posts), support.quantile(posts, 0.95)
    print(
        f"Load took {elapsed:.1f} s: {len(results) / elapsed:.1f} submissions/s, "
        f"{len(posts)} POSTs; POST latency median {median * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(posts) * 1000:.0f} ms"
    )
    answers = collections.Counter(s for r in results for s in r.statuses[1:])
    print(f"POST answers by HTTP status: {dict(sorted(answers.items()))}")
    errors = [r for r in results if r.error]
    for r in errors[:5]:
        print(f"  submission {r.number}: {r.error}")


def wait_settled(env: dict, worker: subprocess.Popen, settle_seconds: float) -> float:
    """Wait until no record is pending or unknown; how long it took.

    Bounded: a lost answer settles within the settle window plus the worker's
    next check; the limit leaves room for many of them in a row.
    """
    started = time.monotonic()
    limit = 4 * settle_seconds + 120
    while time.monotonic() - started < limit:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}")
        open_ = [r for r in local_records(env) if r["outcome"] in OPEN_OUTCOMES]
        if not open_:
            break
        time.sleep(1)
    return time.monotonic() - started


OPEN_OUTCOMES = ("pending", "unknown")


def print_figures(
    title: str,
    results: list[Result],
    corti: dict,
    records: list[dict],
    *,
    settled: bool = False,
) -> list[str]:
    """Print the figures; return what breaks the goal (empty when none).

    Before the worker has settled every lost answer, an interaction can be in
    Corti while its record is still unknown: only counted once `settled`.
    """
    sent = [r for r in results if r.key]
    by_key = {r["submission_key"]: r for r in records}
    created = corti["interactions"]
    per_encounter = collections.Counter(i["encounter"]["identifier"] for i in created)
    duplicates = sum(n - 1 for n in per_encounter.values() if n > 1)
    linked = {
        r["interaction_id"]
        for r in records
        if r["interaction_id"] and r["outcome"] == "created"
    }
    orphans = [i for i in created if i["id"] not in linked]
    still_open = [r for r in records if r["outcome"] in OPEN_OUTCOMES]
    lost = [r for r in sent if r.key not in by_key]
    server_errors = sum(1 for r in results for s in r.statuses if s >= 500)
    outcomes = collections.Counter(r["outcome"] for r in records)
    print(f"\n{title}:")
    rows = [
        ("submissions sent", len(sent)),
        ("local records", len(records)),
        ("  by outcome", dict(sorted(outcomes.items()))),
        ("created in Corti", len(created)),
        ("duplicates in Corti", duplicates),
        ("in Corti, record not created", len(orphans)),
        ("left pending or unknown", len(still_open)),
        ("lost submissions", len(lost)),
        ("HTTP 500 pages", server_errors),
    ]
    for label, value in rows:
        print(f"  {label:<30} {value}")
    failed = [r for r in results if r.error]
    checks = [
        ("duplicates in Corti", duplicates),
        ("lost submissions", len(lost)),
        ("HTTP 500 pages", server_errors),
        ("submissions not sent", len(failed)),
    ]
    if settled:
        checks += [
            ("in Corti, record not created", len(orphans)),
            ("left pending or unknown", len(still_open)),
        ]
    return [f"{title.lower()}: {label} {value}" for label, value in checks if value]


def local_records(env: dict[str, str]) -> list[dict]:
    out = support.manage(
        env,
        "shell",
        "-c",
        "import json; from intake.models import Interaction; "
        "print(json.dumps([{k: None if v is None else str(v) for k, v in r.items()}"
        " for r in Interaction.objects.values("
        "'id', 'submission_key', 'outcome', 'interaction_id')]))",
        capture=True,
    )
    return json.loads(out.strip().splitlines()[-1])


def simulator_state(sim_url: str) -> dict:
    return requests.get(f"{sim_url}/_simulator/state", timeout=30).json()


def faults_fired(state: dict) -> dict[str, int]:
    return {
        k.removeprefix("fault:"): v
        for k, v in sorted(state["counts"].items())
        if k.startswith("fault:")
    }


def fault_share(scale: float) -> float:
    clean = 1.0
    for _, rate in CREATE_FAULTS:
        clean *= 1 - min(1.0, rate * scale)
    return 1 - clean


def fault_flags(scale: float) -> list[str]:
    flags = []
    for endpoint, faults in (("create", CREATE_FAULTS), ("list", LIST_FAULTS)):
        for kind, rate in faults:
            flags += ["--fault", f"{endpoint}:{kind}:{min(1.0, rate * scale):g}"]
    return flags


# --- arguments ----------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--double-post",
        type=float,
        default=0.1,
        help="Share of forms posted twice at once (default: %(default)s).",
    )
    parser.add_argument(
        "--resubmit",
        type=float,
        default=0.05,
        help="Share of forms posted again after the answer (default: %(default)s).",
    )
    parser.add_argument(
        "--fault-scale",
        type=float,
        default=1.0,
        help="Multiply every fault rate (default: %(default)s, about 20%%).",
    )
    parser.add_argument("--database-url", default="", help="Default: a SQLite file.")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=1.0,
        help="CORTI_TIMEOUT for the dashboard (default: %(default)s s).",
    )
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=1.5,
        help="How late a slow answer comes (default: %(default)s s).",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=5.0,
        help="INTAKE_SETTLE_SECONDS for the dashboard (default: %(default)s s).",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--check",
        action="store_true",
        help="Exit 1 unless nothing was lost or duplicated and no page was a 500.",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=900,
        help="No new submission starts after this many seconds (default: %(default)s).",
    )
    args = parser.parse_args()
    if not 1 <= args.submissions <= 100_000 or not 1 <= args.concurrency <= 256:
        parser.error("keep --submissions within 1-100000 and --concurrency 1-256")
    return args


if __name__ == "__main__":
    main()
