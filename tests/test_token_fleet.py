"""One Corti token for the fleet, proven with real processes and real caches.

Three "hosts" of two workers each: six Python processes, each with its own
client built from settings and four threads calling Corti, sharing only the
cache (Redis, or the database cache on one SQLite file). The simulator's tokens
live 4 s, so the client refreshes each after 2 s; the workers call during two
windows, [0, 1.2) s and [2.6, 3.8) s from a common start, the second after the
first token is due for refresh and before the second one is. Whatever the
number of processes and calls, Corti must see one token request per window.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.corti import Simulator, start_simulator
from tests.support.processes import BASE_DIR

pytestmark = pytest.mark.slow

HOSTS = 3
WORKERS_PER_HOST = 2
THREADS = 4
TOKEN_TTL = 4  # the client refreshes at half of it (2 s): see REFRESH_MARGIN
WINDOWS = [(0.0, 1.2), (2.6, 3.8)]
REDIS_URL = os.environ.get("TOKEN_FLEET_REDIS_URL", "redis://127.0.0.1:6379/13")
STARTUP_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def short_lived_tokens() -> Iterator[Simulator]:
    sim = start_simulator("--token-ttl", str(TOKEN_TTL))
    yield sim
    sim.stop()


def corti_settings(sim: Simulator) -> dict:
    return {
        "CORTI_API_URL": sim.api_url,
        "CORTI_AUTH_URL": sim.auth_url(),
        "CORTI_TENANT_NAME": sim.tenant,
        "CORTI_CLIENT_ID": sim.client_id,
        "CORTI_CLIENT_SECRET": sim.client_secret,
        "CORTI_CONNECT_TIMEOUT": 2.0,
        "CORTI_TIMEOUT": 5.0,
        "CORTI_RETRY_BUDGET": 1.0,
        "CORTI_RETRY_AFTER_MAX": 1.0,
    }


def sqlite_database(path: Path) -> dict:
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            # As config/settings/base.py: WAL and a busy timeout.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }


def start_worker(plan: dict) -> subprocess.Popen:
    env = {**os.environ, "FLEET_PLAN": json.dumps(plan)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.token_fleet"],
        cwd=BASE_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(process: subprocess.Popen, timeout: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline()), daemon=True
    )
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


def run_fleet(sim: Simulator, *, caches: dict, databases: dict) -> list[dict]:
    """Start the fleet, start its windows together, return each worker's report."""
    plan = {
        "caches": caches,
        "databases": databases,
        "corti": corti_settings(sim),
        "threads": THREADS,
        "windows": WINDOWS,
    }
    workers = [start_worker(plan) for _ in range(HOSTS * WORKERS_PER_HOST)]
    try:
        for worker in workers:
            line = read_line(worker, STARTUP_TIMEOUT)
            assert line == "ready", (line, worker.stderr.read() if line == "" else "")
        start = time.time() + 0.3
        for worker in workers:
            worker.stdin.write(f"{start}\n")
            worker.stdin.flush()
        reports = []
        for worker in workers:
            out, err = worker.communicate(timeout=15)
            assert worker.returncode == 0, err
            assert "cache cannot be used" not in err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()


def assert_one_token_per_window(sim: Simulator, reports: list[dict]) -> None:
    counts = sim.state()["counts"]
    calls = sum(r["calls"] for r in reports)
    print(f"{len(reports)} processes, {calls} calls, counts {counts}")
    assert all(r["errors"] == 0 for r in reports), reports
    assert all(r["calls"] > 0 for r in reports), reports
    assert counts.get("list_requests") == calls
    assert counts.get("token_requests") == len(WINDOWS)
    assert counts.get("tokens_issued") == len(WINDOWS)


def redis_reachable(url: str) -> str | None:
    """Why Redis cannot be used at `url`, or None when it answers."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"no Redis answers at {url} ({type(exc).__name__})"
    return None


def test_a_fleet_on_redis_fetches_one_token_per_refresh(short_lived_tokens):
    reason = redis_reachable(REDIS_URL)
    if reason:
        pytest.skip(f"{reason}; set TOKEN_FLEET_REDIS_URL (CI has Redis)")
    import redis

    short_lived_tokens.reset()
    prefix = f"token-fleet-{uuid.uuid4().hex}"
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
    databases = {"default": {"ENGINE": "django.db.backends.dummy"}}
    try:
        reports = run_fleet(short_lived_tokens, caches=caches, databases=databases)
    finally:
        server = redis.Redis.from_url(REDIS_URL)
        for key in server.scan_iter(f"{prefix}:*"):
            server.delete(key)
    assert_one_token_per_window(short_lived_tokens, reports)


def test_a_fleet_on_the_database_cache_fetches_one_token_per_refresh(
    short_lived_tokens, tmp_path
):
    short_lived_tokens.reset()
    databases = sqlite_database(tmp_path / "fleet.sqlite3")
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "intake_cache",
        }
    }
    setup = start_worker(
        {"caches": caches, "databases": databases, "corti": {}, "createcachetable": 1}
    )
    _, err = setup.communicate(timeout=STARTUP_TIMEOUT)
    assert setup.returncode == 0, err

    reports = run_fleet(short_lived_tokens, caches=caches, databases=databases)

    assert_one_token_per_window(short_lived_tokens, reports)
