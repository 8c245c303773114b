"""`/readyz`: can submissions reach Corti? Answered fast, costing Corti little.

Corti is the simulator process, over real HTTP. The dashboard runs in-process
(Django's test client, or `live_server` for probes in parallel); several
worker processes sharing one check are in tests/test_gunicorn.py.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import requests
from django.core.management import call_command
from django.db import connections
from django.test import Client

from intake.corti import clear_clients, get_client
from intake.models import Interaction
from intake.services import readiness
from tests.support.concurrency import probe_in_parallel, timed_get, wait_for
from tests.support.corti import counts, point_corti_at_a_closed_port
from tests.support.factories import TYPED

pytestmark = pytest.mark.django_db

NEW = "/interactions/new/"
#: Parallel probes, as a crowd of load balancers (or anyone) sends them.
PROBES = 200
#: Seconds within which /readyz answers, whatever Corti does.
ANSWER_WITHIN = 1.0
#: Probes in flight at once: fewer than the live server's listen queue (10), as
#: a refused SYN waits a second before trying again, which would time the
#: test harness.
AT_ONCE = 8


@pytest.fixture
def live(live_server, monkeypatch):
    """The live server, its request threads closing their database connections.

    It starts a thread per request; with CONN_MAX_AGE each would keep its own
    connection open, and a crowd of probes would exhaust PostgreSQL's.
    """
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)
    return live_server


@pytest.fixture
def every_probe_checks(monkeypatch):
    """No interval: each probe starts a sign-in check of its own."""
    monkeypatch.setattr(readiness, "CHECK_INTERVAL", 0.0)


@pytest.fixture
def database_cache(settings):
    """The database cache, as production has it without REDIS_URL."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "intake_test_cache",
        }
    }
    call_command("createcachetable", verbosity=0)
    from django.core.cache import cache

    cache.clear()
    return cache


@pytest.fixture
def redis_cache(settings):
    """Django's Redis cache, as production has it with REDIS_URL (CI runs Redis)."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis answers at {url}; set TEST_REDIS_URL")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"readyz-test-{os.getpid()}",
        }
    }
    from django.core.cache import cache

    cache.clear()
    yield cache
    cache.clear()


# --- what it answers -------------------------------------------------------


def test_readyz_is_ok_when_corti_signs_in(corti, client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "corti": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert counts(corti)["tokens_issued"] == 1


@pytest.mark.parametrize("how", ["token endpoint answers 503", "closed port"])
def test_readyz_is_unavailable_when_corti_cannot_be_reached(
    corti, client, settings, how
):
    if how == "closed port":
        point_corti_at_a_closed_port(settings)
    else:
        corti.set_faults({"kind": "503", "endpoint": "token"})

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["corti"] == "unreachable"
    assert body["corti_detail"]
    assert corti.client_secret not in response.content.decode()


def test_readyz_is_degraded_while_a_held_token_still_works(
    corti, client, every_probe_checks
):
    assert client.get("/readyz").status_code == 200  # this worker holds a token
    corti.set_faults({"kind": "503", "endpoint": "token"})

    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["corti"] == "unreachable"
    assert body["corti_detail"] == "Corti's sign-in service answered 503."
    # And a submission still goes through with the held token.
    assert get_client().has_usable_token()


def test_readyz_reports_refused_credentials_without_showing_the_secret(
    corti, client, settings
):
    settings.CORTI_CLIENT_SECRET = "wrong-secret-do-not-show"
    clear_clients()

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["corti"] == "auth"
    assert "CORTI_CLIENT_SECRET" in body["corti_detail"]
    text = response.content.decode()
    assert "wrong-secret-do-not-show" not in text
    assert corti.client_secret not in text


def test_readyz_never_shows_credentials_written_into_the_sign_in_address(
    corti, client, settings, caplog
):
    point_corti_at_a_closed_port(settings, userinfo="clinic-proxy:url-secret-42@")

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["corti"] == "unreachable"
    host = settings.CORTI_AUTH_URL.split("@", 1)[1].split("/", 1)[0]
    assert body["corti_detail"] == f"Could not connect to {host}: nothing was sent."
    for text in (response.content.decode(), caplog.text):
        assert "url-secret-42" not in text
        assert "clinic-proxy" not in text


@pytest.mark.django_db(transaction=True)
def test_readyz_says_so_when_its_cache_cannot_be_used(corti, client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "no_such_cache_table",
        }
    }

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "ok",
        "corti": "cache_error",
        "corti_detail": "The readiness cache cannot be used: run manage.py "
        "createcachetable, or check REDIS_URL.",
    }
    assert counts(corti) == {}


# --- what it costs Corti ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # 300 probes, a 1 s wait: ~2 s
def test_parallel_probes_sign_in_to_corti_once_per_interval(corti, live):
    answers = probe_in_parallel(f"{live.url}/readyz", PROBES, at_once=AT_ONCE)

    seen = {r.json()["corti"] for _, r in answers}
    # Those that asked before the one check finished hear "checking".
    assert seen <= {"ok", "checking"}
    assert "ok" in seen
    assert counts(corti)["token_requests"] == 1
    assert counts(corti)["tokens_issued"] == 1
    again = requests.get(f"{live.url}/readyz", timeout=5)
    assert again.json()["corti"] == "ok"
    assert counts(corti)["token_requests"] == 1


@pytest.mark.slow  # waits out the interval: ~1 s
def test_a_new_check_starts_once_the_interval_has_passed(corti, client, monkeypatch):
    monkeypatch.setattr(readiness, "CHECK_INTERVAL", 1.0)
    assert client.get("/readyz").json()["corti"] == "ok"
    for _ in range(5):
        client.get("/readyz")
    assert counts(corti)["token_requests"] == 1

    time.sleep(1.05)
    corti.set_faults({"kind": "503", "endpoint": "token"})

    assert client.get("/readyz").json()["corti"] == "unreachable"
    for _ in range(5):
        assert client.get("/readyz").json()["corti"] == "unreachable"
    assert counts(corti)["token_requests"] == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # 300 probes: ~2 s
def test_probes_share_one_check_through_the_database_cache(corti, live, database_cache):
    answers = probe_in_parallel(f"{live.url}/readyz", PROBES, at_once=AT_ONCE)

    assert {r.json()["corti"] for _, r in answers} <= {"ok", "checking"}
    assert counts(corti)["token_requests"] == 1
    # The result is in the shared table, for every worker to read.
    assert readiness.corti_sign_in_status().ok
    assert counts(corti)["token_requests"] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # 300 probes: ~2 s
def test_probes_share_one_check_through_redis(corti, live, redis_cache):
    answers = probe_in_parallel(f"{live.url}/readyz", PROBES, at_once=AT_ONCE)

    assert {r.json()["corti"] for _, r in answers} <= {"ok", "checking"}
    assert counts(corti)["token_requests"] == 1
    assert readiness.corti_sign_in_status().ok


# --- a hanging sign-in service ----------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # waits out a hanging sign-in: ~1 s
def test_a_hanging_sign_in_service_never_slows_a_probe(corti, live, monkeypatch):
    monkeypatch.setattr(readiness, "CHECK_TIMEOUT", 1.0)
    corti.set_faults({"kind": "hang", "endpoint": "token", "delay": 5})

    probes = probe_in_parallel(f"{live.url}/readyz", 50, at_once=AT_ONCE)
    health = [timed_get(f"{live.url}/healthz") for _ in range(3)]

    assert max(seconds for seconds, _ in [*probes, *health]) < ANSWER_WITHIN
    assert {(r.status_code, r.json()["corti"]) for _, r in probes} == {
        (503, "checking")
    }
    assert {r.status_code for _, r in health} == {200}
    assert counts(corti)["token_requests"] == 1

    # The check gives up after its own timeout; then every probe says why.
    def answered() -> dict:
        body = requests.get(f"{live.url}/readyz", timeout=5).json()
        return body if body["corti"] != "checking" else {}

    assert wait_for(answered, timeout=4) == {
        "status": "unavailable",
        "database": "ok",
        "corti": "unreachable",
        "corti_detail": "Corti's sign-in service did not answer in time.",
    }
    assert counts(corti)["token_requests"] == 1


@pytest.mark.slow  # waits out a hanging sign-in: ~1 s
def test_a_submission_never_waits_for_a_hanging_readiness_check(
    corti, clinician_client, monkeypatch
):
    monkeypatch.setattr(readiness, "CHECK_TIMEOUT", 1.0)
    # The readiness check's sign-in hangs; the submission's own goes through.
    corti.set_faults({"kind": "hang", "endpoint": "token", "delay": 5, "count": 1})
    probe = threading.Thread(target=_probe_readyz)
    probe.start()
    wait_for(lambda: counts(corti).get("token_requests") == 1)
    key = str(uuid.uuid4())

    started = time.monotonic()
    response = clinician_client.post(NEW, {**TYPED, "submission_key": key})
    elapsed = time.monotonic() - started

    assert response.status_code == 303, response.content[:500]
    assert Interaction.objects.get(submission_key=key).interaction_id is not None
    assert elapsed < 2.0, elapsed
    assert counts(corti)["created"] == 1
    probe.join(10)
    assert not probe.is_alive()
    # Let the hanging check time out before the next test empties the cache.
    wait_for(
        lambda: readiness.corti_sign_in_status().code != "checking",
        timeout=readiness.CHECK_TIMEOUT + 6,
    )


def _probe_readyz() -> None:
    try:
        Client().get("/readyz")
    finally:
        connections.close_all()
