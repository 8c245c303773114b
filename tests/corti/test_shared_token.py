"""One Corti token for the fleet: shared through Django's cache, over real HTTP.

Two `CortiClient` instances stand in for two processes: each has its own
in-process lock and token copy, and they meet only in the cache. The proof
with real processes and real caches is tests/test_shared_token_processes.py.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache

from intake.corti.client import CortiClient
from tests.support.caches import SwitchableCache

SWITCHABLE_CACHE = {
    "default": {"BACKEND": "tests.support.caches.SwitchableCache"},
}


class FakeTime:
    """Monotonic time that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def switchable_cache(settings):
    """The default cache is a locmem cache that fails while `broken`."""
    settings.CACHES = SWITCHABLE_CACHE
    SwitchableCache.broken = False
    yield SwitchableCache
    SwitchableCache.broken = False


def token_requests(sim) -> int:
    return sim.state()["counts"].get("token_requests", 0)


def shared_value(client: CortiClient) -> str | None:
    data = cache.get(client._shared.key)
    return data["value"] if data else None


def test_a_token_fetched_by_one_client_is_used_by_another(corti):
    first, second = corti.client(), corti.client()

    token = first.access_token()

    assert second.access_token() == token
    assert shared_value(first) == token
    assert token_requests(corti) == 1
    assert second.list_interactions() == []
    assert token_requests(corti) == 1


def test_the_cache_entry_expires_with_the_token(corti):
    client = corti.client()
    client.access_token()

    # locmem keeps each key's expiry time; the simulator's tokens last 300 s.
    expires = cache._expire_info[cache.make_and_validate_key(client._shared.key)]
    assert 298 <= expires - time.time() <= 301
    assert shared_value(client) == client.access_token()


def test_the_key_names_the_configuration_never_the_secret(corti):
    key = corti.client()._shared.key
    assert corti.client_secret not in key
    assert key == corti.client(client_secret="another-secret")._shared.key
    others = {
        corti.client(tenant_name="other")._shared.key,
        corti.client(client_id="other")._shared.key,
        corti.client(auth_url=corti.auth_url("other"))._shared.key,
    }
    assert key not in others
    assert len(others) == 3


def test_clients_that_refresh_together_fetch_one_token(corti):
    # The sign-in answers slowly, so every client asks while one fetch is under
    # way: each has its own in-process lock, only the cache's lock holds them.
    corti.set_faults({"kind": "slow", "endpoint": "token", "delay": 0.5})
    clients = [corti.client() for _ in range(4)]
    barrier = threading.Barrier(8, timeout=10)

    def fetch(n: int) -> str:
        barrier.wait()
        return clients[n % 4].access_token()

    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(fetch, range(8)))

    assert len(tokens) == 1
    assert token_requests(corti) == 1


def test_a_token_corti_refused_is_replaced_and_never_served_again(corti):
    first, second = corti.client(), corti.client()
    refused = first.access_token()
    assert second.access_token() == refused
    corti.expire_tokens()

    # The 401 makes `first` replace the token, in the cache too ...
    assert first.list_interactions() == []
    replaced = shared_value(first)
    assert replaced not in (None, refused)
    # ... and `second`, meeting its own 401, takes the new one from the cache.
    assert second.list_interactions() == []
    assert second.access_token() == replaced
    assert token_requests(corti) == 2

    # Told the cached token was refused, a client never hands it out again.
    third = corti.client()
    assert third.access_token(stale=replaced) not in (refused, replaced)
    assert token_requests(corti) == 3


def test_a_dead_lock_holder_is_waited_for_a_bounded_time_then_bypassed(corti, caplog):
    fake = FakeTime()
    client = CortiClient(corti.config(), clock=fake.clock, sleep=fake.sleep)
    # A process took the refresh lock and died: nobody will share a token.
    cache.add(client._shared.lock_key, "dead-process", timeout=60)

    with caplog.at_level(logging.WARNING, logger="intake.corti"):
        token = client.access_token()

    bound = client._lock_seconds()
    assert bound == 2.0 + 5.0 + 1.0  # connect + read timeout + margin
    assert bound <= sum(fake.sleeps) < bound + 0.1
    assert token_requests(corti) == 1
    assert shared_value(client) == token
    assert "No Corti token was shared within 8 s" in caplog.text
    assert token not in caplog.text


def test_a_waiter_takes_over_when_the_holder_fails(corti):
    fake = FakeTime()
    client = CortiClient(corti.config(), clock=fake.clock, sleep=fake.sleep)
    # The holder gives up (its sign-in failed) after a few polls: the waiter
    # takes the free lock and signs in itself, long before the bound.
    cache.add(client._shared.lock_key, "failing-process", timeout=60)
    polls = 0

    def sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            cache.delete(client._shared.lock_key)
        fake.sleep(seconds)

    client._sleep = sleep
    client.access_token()

    assert polls == 3
    assert token_requests(corti) == 1
    assert cache.get(client._shared.lock_key) is None  # released after the fetch


def test_a_failing_cache_falls_back_to_a_token_per_process_logged_once(
    corti, switchable_cache, caplog
):
    first = corti.client()
    first.access_token()
    switchable_cache.broken = True

    with caplog.at_level(logging.INFO, logger="intake.corti"):
        # Creates go on: this client keeps, and refreshes, its own token.
        for _ in range(3):
            assert first.list_interactions() == []
        corti.expire_tokens()
        assert first.list_interactions() == []
        assert first.has_usable_token()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings if "cache" in r.getMessage()] == [
        "The cache cannot be used for the Corti token (CacheDown); this process "
        "signs in on its own until it can",
    ]
    assert "cache-password" not in caplog.text
    assert first.access_token() not in caplog.text
    assert token_requests(corti) == 2

    # The cache comes back, empty (Redis restarted): said once, and the next
    # token is shared again.
    switchable_cache.broken = False
    cache.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="intake.corti"):
        token = corti.client().access_token()
        assert first.access_token(stale=first.access_token()) == token
        assert corti.client().access_token() == token
    assert [r.getMessage() for r in caplog.records] == [
        "The cache works again; the Corti token is shared again",
    ]
    assert token_requests(corti) == 3


@pytest.mark.django_db
def test_a_missing_cache_table_falls_back_to_a_token_per_process(
    corti, settings, caplog
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "no_such_cache_table",
        }
    }
    client = corti.client()

    with caplog.at_level(logging.WARNING, logger="intake.corti"):
        assert client.list_interactions() == []
        assert client.has_usable_token()

    assert token_requests(corti) == 1
    [warning] = [r for r in caplog.records if "cache cannot" in r.getMessage()]
    # SQLite says OperationalError for a missing table, PostgreSQL
    # ProgrammingError (UndefinedTable): either way, named by type alone.
    assert re.search(r"\((OperationalError|ProgrammingError)\)", warning.getMessage())


def test_has_usable_token_sees_the_shared_token(corti):
    corti.client().access_token()
    assert corti.client().has_usable_token()


def test_check_sign_in_shares_its_token(corti):
    checker = corti.client()
    checker.check_sign_in(timeout=1.0)

    assert corti.client().access_token() == checker.access_token()
    assert token_requests(corti) == 1
