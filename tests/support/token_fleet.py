"""One worker of a fleet sharing the Corti token, in a process of its own.

`python -m tests.support.token_fleet` with the test's plan as JSON in the
environment (FLEET_PLAN): the cache to share, the simulator to sign in at. It
builds its client from settings (`get_client`), prints "ready", reads the start
time (wall clock) from stdin, then its threads call Corti during each window
and it prints what it did as one JSON line. No token is ever printed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def configure(plan: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="token-fleet-test-only",
        INSTALLED_APPS=[],
        USE_TZ=True,
        DATABASES=plan["databases"],
        CACHES=plan["caches"],
        **plan["corti"],
    )
    django.setup()


def run(plan: dict[str, Any]) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connections

    from intake.corti import get_client
    from intake.corti.errors import CortiError

    if plan.get("createcachetable"):
        call_command("createcachetable", verbosity=0)
        return {}
    client = get_client()
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    calls = errors = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal calls, errors
        for opens, closes in plan["windows"]:
            while time.time() < start + opens:
                time.sleep(0.005)
            while time.time() < start + closes:
                try:
                    client.list_interactions(page_size=1)
                    done, failed = 1, 0
                except CortiError:
                    done, failed = 0, 1
                with lock:
                    calls += done
                    errors += failed
        connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(plan["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"calls": calls, "errors": errors}


def main() -> None:
    plan = json.loads(os.environ["FLEET_PLAN"])
    configure(plan)
    print(json.dumps(run(plan)), flush=True)


if __name__ == "__main__":
    main()
