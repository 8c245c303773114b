"""How much the cached token and the shared session save per create.

Starts the Corti simulator on 127.0.0.1 and times `create_interaction` three
ways, interleaved round by round so machine noise hits all of them alike:

- shared:  one CortiClient (cached token, one keep-alive session), as the
           dashboard runs;
- session: a new CortiClient per create (a token fetch every time);
- naive:   a new CortiClient and a new TCP connection per create.

Prints the median milliseconds per create of each and the ratios. Bounded:
ROUNDS x BATCH creates per way, loopback only; it stops by itself.

    .venv/bin/python benchmarks/client_create.py [--rounds 15] [--batch 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

from benchmarks import support  # noqa: E402

django.setup()

import requests  # noqa: E402

from intake.corti import CortiClient, CortiConfig  # noqa: E402
from intake.corti.types import (  # noqa: E402
    Encounter,
    EncounterStatus,
    EncounterType,
    InteractionCreate,
    Patient,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("intake.corti").setLevel(logging.WARNING)

    process, base = support.spawn_simulator()
    config = CortiConfig(
        api_url=f"{base}/v2",
        auth_url=f"{base}/realms/base/protocol/openid-connect/token",
        tenant_name="base",
        client_id="sandbox-client",
        client_secret="sandbox-secret",
    )
    request = InteractionCreate(
        encounter=Encounter(
            identifier="BENCH-1",
            status=EncounterStatus.IN_PROGRESS,
            type=EncounterType.CONSULTATION,
            started_at=dt.datetime.now(dt.UTC),
        ),
        patient=Patient(identifier="P-1", name="Bench Patient"),
    )
    shared = CortiClient(config)

    def run_shared() -> None:
        shared.create_interaction(request)

    def run_session() -> None:
        CortiClient(config, session=keep_alive).create_interaction(request)

    def run_naive() -> None:
        with requests.Session() as session:
            CortiClient(config, session=session).create_interaction(request)

    keep_alive = requests.Session()
    ways = {"shared": run_shared, "session": run_session, "naive": run_naive}
    per_create: dict[str, list[float]] = {name: [] for name in ways}
    try:
        for name in ways:  # warm up
            ways[name]()
        for _ in range(args.rounds):
            for name, run in ways.items():
                started = time.perf_counter()
                for _ in range(args.batch):
                    run()
                elapsed = time.perf_counter() - started
                per_create[name].append(elapsed / args.batch * 1000)
    finally:
        process.terminate()
        process.wait(timeout=10)

    total = args.rounds * args.batch
    print(f"creates per way: {total} ({args.rounds} rounds x {args.batch})")
    medians = {name: statistics.median(v) for name, v in per_create.items()}
    for name, median in medians.items():
        print(f"{name:8s} median {median:7.2f} ms/create")
    print(f"session/shared ratio {medians['session'] / medians['shared']:.2f}x")
    print(f"naive/shared ratio   {medians['naive'] / medians['shared']:.2f}x")


if __name__ == "__main__":
    main()
