"""Shared fixtures: a Corti simulator process, users in each role."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.corti import clear_clients
from tests.support.clock import CLINIC_ZONE
from tests.support.corti import start_simulator
from tests.support.factories import make_user

BROWSER_TESTS = Path(__file__).resolve().parent / "browser"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/browser/ `browser`, before `-m` selects."""
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def simulator():
    """One simulator process for the whole run."""
    sim = start_simulator()
    yield sim
    sim.stop()


@pytest.fixture
def corti(simulator, settings):
    """The simulator, emptied, with the dashboard's settings pointing at it.

    The cache is emptied too: it holds what the readiness check last found.
    """
    from django.core.cache import cache

    simulator.reset()
    cache.clear()
    settings.CORTI_API_URL = simulator.api_url
    settings.CORTI_AUTH_URL = simulator.auth_url()
    settings.CORTI_TENANT_NAME = simulator.tenant
    settings.CORTI_CLIENT_ID = simulator.client_id
    settings.CORTI_CLIENT_SECRET = simulator.client_secret
    settings.CORTI_STREAM_ORIGIN = simulator.stream_origin
    clear_clients()
    yield simulator
    clear_clients()


@pytest.fixture
def clinician(db):
    return make_user("clin", role="clinician", password="pw-clinician-1")


@pytest.fixture
def other_clinician(db):
    return make_user("clin2", role="clinician", password="pw-clinician-2")


@pytest.fixture
def administrator(db):
    return make_user("boss", role="administrator", password="pw-administrator-1")


@pytest.fixture
def no_role_user(db):
    return make_user("norole", password="pw-norole-1")


@pytest.fixture
def clinician_client(client, clinician):
    client.force_login(clinician)
    return client


@pytest.fixture
def admin_client_(client, administrator):
    client.force_login(administrator)
    return client


@pytest.fixture
def admin_browser(administrator):
    """A browser of its own, signed in as the administrator."""
    from django.test import Client

    browser = Client()
    browser.force_login(administrator)
    return browser


@pytest.fixture
def clinic_zone(settings) -> str:
    """The clinic in CLINIC_ZONE, a zone with summer time."""
    settings.TIME_ZONE = CLINIC_ZONE
    return CLINIC_ZONE


@pytest.fixture(scope="session", autouse=True)
def _test_database_droppable(django_db_setup, django_db_blocker):
    """At the end, end any session still open on the PostgreSQL test database.

    Processes and threads the tests start (the worker, gunicorn, a live
    server's request threads) connect to it; one left connected would stop
    pytest-django from dropping it, and the run would end in an error.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
