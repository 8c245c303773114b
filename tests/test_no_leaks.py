"""No leaks: patient data, access tokens and the client secret stay out of logs.

Requirement: no patient field value, access token or client secret in any log
line (captured through a full create, a failure and a retry); the client
secret never appears in a page, an error or the admin.

The dashboard runs with the project's own logging configuration (urllib3 is
held at INFO on purpose: its DEBUG lines carry the lookup's patient filter).
The root logger is lowered to DEBUG, so every other logger emits everything it
has, and two collectors listen on the root: pytest's `caplog` and a handler of
this module's own. Corti is a simulator process started with a client secret
of its own, so the secret a leak would show is one no other test uses.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
import traceback
import uuid
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.core import serializers
from django.core.cache import cache
from django.test import Client
from django.views.debug import technical_500_response

from intake import sessions
from intake.corti import CortiConfig, clear_clients, get_client
from intake.corti.errors import (
    CortiAuthError,
    CortiConnectionError,
    CortiError,
    CortiForbiddenError,
    CortiRateLimitError,
    CortiServerError,
    CortiTimeoutError,
    CortiUnauthorizedError,
    CortiValidationError,
)
from intake.corti.types import (
    Encounter,
    EncounterStatus,
    EncounterType,
    InteractionCreate,
    Patient,
)
from intake.models import CortiCall, Interaction
from tests.support.corti import start_simulator
from tests.support.pages import page, post_form
from tests.support.processes import closed_port
from tests.support.tasks import run_tasks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clinic_zone")]

NEW = "/interactions/new/"
LIST = "/interactions/"
EXPORT = "/interactions/export.csv"

#: The client secret the simulator accepts, and one it refuses.
SECRET = "Sekr3t-Wombat-7Qx9-do-not-show"
WRONG_SECRET = "Wr0ng-Pelican-4Kd2-do-not-show"

#: Patient and encounter values no page template, log format or fixture holds.
TYPED = {
    "encounter_identifier": "ENC-Quokka-58213",
    "encounter_status": "in-progress",
    "encounter_type": "first_consultation",
    "encounter_title": "Xylophone tendon review 77",
    "encounter_started_at": "2026-01-15T10:00",
    "encounter_ended_at": "2026-01-15T10:45",
    "assigned_user_id": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    "patient_identifier": "PID-Narwhal-90417",
    "patient_name": "Philippa Quenby-Ostrowska",
    "patient_gender": "female",
    "patient_birth_date": "1957-08-19",
    "patient_pronouns": "ze/zir-unusual",
}
PATIENT_FIELDS = (
    "encounter_identifier",
    "encounter_title",
    "assigned_user_id",
    "patient_identifier",
    "patient_name",
    "patient_birth_date",
    "patient_pronouns",
)


def patient_needles() -> set[str]:
    """Every patient value, as typed and as a URL or a JSON body would carry it."""
    needles: set[str] = set()
    for name in PATIENT_FIELDS:
        value = TYPED[name]
        needles |= {value, quote(value), quote_plus(value)}
    needles |= set(TYPED["patient_name"].split())  # first name, surname
    needles.add(uuid.UUID(TYPED["assigned_user_id"]).hex)
    needles.add(TYPED["patient_birth_date"].replace("-", ""))
    return needles


@pytest.fixture(scope="module")
def secret_simulator():
    """A simulator of its own, accepting only SECRET."""
    sim = start_simulator("--client-secret", SECRET)
    yield sim
    sim.stop()


@pytest.fixture
def corti(secret_simulator, settings):
    """The simulator, emptied, with the dashboard's settings pointing at it."""
    secret_simulator.reset()
    settings.CORTI_API_URL = secret_simulator.api_url
    settings.CORTI_AUTH_URL = secret_simulator.auth_url()
    settings.CORTI_TENANT_NAME = secret_simulator.tenant
    settings.CORTI_CLIENT_ID = secret_simulator.client_id
    settings.CORTI_CLIENT_SECRET = SECRET
    clear_clients()
    yield secret_simulator
    clear_clients()


class Collector(logging.Handler):
    """Keeps every record that reaches the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs(caplog):
    """Root at DEBUG, the configured loggers as configured; two collectors."""
    caplog.set_level(logging.DEBUG)
    collector = Collector()
    root = logging.getLogger()
    root.addHandler(collector)
    yield collector
    root.removeHandler(collector)


def texts_of(record: logging.LogRecord) -> list[str]:
    """Everything a log line (or a handler formatting it) can show."""
    plain = django_settings.LOGGING["formatters"]["plain"]["format"]
    texts = [
        record.getMessage(),
        str(record.msg),
        repr(record.args),
        record.exc_text or "",
        record.stack_info or "",
        logging.Formatter(plain).format(record),
    ]
    if record.exc_info and record.exc_info[1] is not None:
        texts.append("".join(traceback.format_exception(*record.exc_info)))
        texts.append(repr(record.exc_info[1]))
    return texts


def leaks_in(records, needles) -> list[tuple[str, str, str]]:
    """(logger, needle, message) for each record that shows a needle."""
    found = []
    for record in records:
        for text in texts_of(record):
            for needle in needles:
                if needle and needle in text:
                    found.append((record.name, needle, record.getMessage()))
    return found


def form_key(client: Client) -> str:
    location = client.get(NEW)["Location"]
    return parse_qs(urlsplit(location).query)["key"][0]


def send_form(client: Client):
    """Open the form and send TYPED; the answer and the record."""
    key = form_key(client)
    # Each one deliberately another interaction for the same patient.
    response = post_form(client, key, {**TYPED, "confirm_duplicate": "1"})
    return response, Interaction.objects.get(submission_key=key)


# --- logs --------------------------------------------------------------------


@pytest.mark.slow  # every kind of call and page, logged: ~3 s
def test_no_patient_value_token_or_secret_in_any_log_line(
    corti,
    logs,
    caplog,
    clinician_client,
    clinician,
    admin_browser,
    settings,
    monkeypatch,
):
    # The project's configuration is in force: urllib3 stays at INFO.
    assert logging.getLogger("urllib3").getEffectiveLevel() == logging.INFO
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger("intake").getEffectiveLevel() == logging.DEBUG
    start = len(logs.records)
    tokens: set[str] = set()

    def keep_token() -> None:
        tokens.add(get_client().access_token())

    # 1. A full create.
    created, record = send_form(clinician_client)
    assert created.status_code == 303
    assert record.outcome == Interaction.Outcome.CREATED
    keep_token()
    page(clinician_client.get(created["Location"]))

    # 2. Failures: a lost 503 answer (looked up with the patient filter, not
    # found, so unknown), a 400 whose messages echo the patient, an answer
    # lost after Corti created it (looked up and found), a refused token.
    corti.set_faults({"kind": "503", "endpoint": "create", "count": 1})
    failed_response, failed = send_form(clinician_client)
    assert failed_response.status_code == 303
    assert failed.outcome == Interaction.Outcome.UNKNOWN
    assert failed.calls.filter(kind=CortiCall.Kind.LOOKUP).exists()
    page(clinician_client.get(failed_response["Location"]))

    corti.set_faults(
        {
            "kind": "400",
            "endpoint": "create",
            "count": 1,
            "validation_errors": [
                {"patient.name": f"{TYPED['patient_name']} is not a valid name"},
                {"encounter.identifier": f"{TYPED['encounter_identifier']} is taken"},
                {"patient": f"{TYPED['patient_identifier']} born 1957-08-19"},
            ],
        }
    )
    rejected_response, rejected = send_form(clinician_client)
    assert rejected.error_code == "invalid"
    assert TYPED["patient_name"] in page(rejected_response)

    corti.set_faults({"kind": "created-504", "endpoint": "create", "count": 1})
    found_response, found = send_form(clinician_client)
    assert found_response.status_code == 303
    assert found.outcome == Interaction.Outcome.CREATED
    assert found.calls.filter(
        kind=CortiCall.Kind.LOOKUP, result=CortiCall.Result.FOUND
    ).exists()
    keep_token()

    corti.set_faults({"kind": "401", "endpoint": "create", "count": 1})
    refreshed_response, _ = send_form(clinician_client)
    assert refreshed_response.status_code == 303
    keep_token()

    # 3. "Check Corti now" on the unknown one, searched by the background
    # worker once the settle window is over (not found: failed); then Retry.
    settings.INTAKE_SETTLE_SECONDS = 0
    checked = clinician_client.post(f"/interactions/{failed.pk}/retry/")
    assert checked.status_code == 303
    assert run_tasks() >= 1
    failed.refresh_from_db()
    assert failed.outcome == Interaction.Outcome.FAILED
    retried = clinician_client.post(f"/interactions/{failed.pk}/retry/")
    assert retried.status_code == 303
    failed.refresh_from_db()
    assert failed.outcome == Interaction.Outcome.CREATED
    keep_token()
    page(clinician_client.get(f"/interactions/{failed.pk}/"))

    # 4. The list searched by patient name and identifier.
    for q in (TYPED["patient_name"], TYPED["patient_identifier"]):
        listed = page(clinician_client.get(LIST, {"q": q}))
        assert f"/interactions/{record.pk}/" in listed

    # 5. The CSV export, filtered by the patient's name; refused to a clinician.
    exported = admin_browser.get(EXPORT, {"q": TYPED["patient_name"]})
    assert TYPED["patient_name"] in page(exported)
    assert clinician_client.get(EXPORT, {"q": TYPED["patient_name"]}).status_code == (
        403
    )

    # 6. The form posted after an idle sign-out: kept, not sent, given back.
    key = str(uuid.uuid4())
    # Only the form the clinician had open when signed out is kept.
    assert clinician_client.get(NEW, {"key": key}).status_code == 200
    session = clinician_client.session
    # Just ran out: the page hands its typing over as the session ends.
    session[sessions.LAST_SEEN] = time.time() - settings.INTAKE_SESSION_IDLE_TIMEOUT - 5
    session.save()
    idle = clinician_client.post(f"{NEW}?key={key}", {**TYPED, "submission_key": key})
    assert idle.status_code == 302
    assert idle["Location"].startswith("/accounts/login/")
    clinician_client.force_login(clinician)
    assert TYPED["patient_name"] in page(clinician_client.get(NEW, {"key": key}))
    assert not Interaction.objects.filter(submission_key=key).exists()

    # 7. Wrong credentials, at the form and at the readiness check.
    settings.CORTI_CLIENT_SECRET = WRONG_SECRET
    clear_clients()
    cache.clear()  # the token shared so far would still work: sign in again
    auth_response, auth_failed = send_form(clinician_client)
    assert auth_failed.error_code == "auth"
    assert "could not sign in to Corti" in page(auth_response)
    assert clinician_client.get("/readyz").status_code == 503
    settings.CORTI_CLIENT_SECRET = SECRET
    clear_clients()

    # 8. A sign-in address that cannot be used: refused before sending.
    settings.CORTI_AUTH_URL = "corti-auth.invalid/no-scheme/token"
    clear_clients()
    _, misconfigured = send_form(clinician_client)
    assert misconfigured.error_code == "misconfigured"
    settings.CORTI_AUTH_URL = corti.auth_url()
    clear_clients()

    # 9. An unexpected crash while fetching a token: a 500, logged with its
    # traceback.
    with monkeypatch.context() as patch:
        patch.setattr(requests.Session, "request", crash_on_token_request)
        clinician_client.raise_request_exception = False
        broken, _ = send_form(clinician_client)
    assert broken.status_code == 500
    clear_clients()

    # The scenario did what it claims: Corti was searched with the patient
    # filter, tokens were fetched and refreshed.
    counts = corti.state()["counts"]
    assert counts["list_requests"] >= 2
    assert counts["tokens_issued"] >= 2
    assert len(tokens) >= 2

    # Both collectors saw every record, from every logger that spoke.
    records = logs.records[start:]
    assert [id(r) for r in caplog.get_records("call")] == [id(r) for r in records]
    names = {r.name for r in records}
    assert {
        "intake.corti.client",
        "intake.services.interactions",
        "intake.services.outcomes",
        "intake.services.reconciliation",
        "intake.views",
        "intake.sessions",
        "django.request",
    } <= names, names
    assert any(r.exc_info for r in records), "the 500 was logged with a traceback"
    assert not any(
        r.name.startswith("urllib3") and r.levelno < logging.INFO for r in records
    )

    needles = patient_needles() | tokens | {SECRET, WRONG_SECRET}
    assert leaks_in(records, needles) == []


def test_urllib3_is_held_at_info_whatever_the_log_level():
    # Its DEBUG lines carry each URL, and a lookup's URL the patient filter.
    assert django_settings.LOGGING["loggers"]["urllib3"]["level"] == "INFO"
    assert django_settings.LOGGING["loggers"]["django.server"]["level"] == "WARNING"


def test_sql_debug_logging_carries_no_patient_value(
    corti, logs, clinician_client, settings
):
    # A development setup: DEBUG on, DJANGO_LOG_LEVEL=DEBUG (root at DEBUG).
    # SQL with its parameters goes to django.db.backends at DEBUG, and Django
    # holds its "django" loggers at INFO.
    settings.DEBUG = True
    assert logging.getLogger("django.db.backends").getEffectiveLevel() > logging.DEBUG

    response, record = send_form(clinician_client)

    assert response.status_code == 303
    assert record.outcome == Interaction.Outcome.CREATED
    assert leaks_in(logs.records, patient_needles()) == []


# --- the client secret: never in a page, an error or the admin ---------------


@pytest.mark.slow  # every page as both roles: ~3 s
def test_client_secret_is_in_no_page_a_clinician_or_administrator_can_open(
    corti, clinician_client, admin_browser, settings
):
    # A failure with the wrong secret, then a create and a failure with the
    # right one: every page that shows them, as both roles.
    settings.CORTI_CLIENT_SECRET = WRONG_SECRET
    clear_clients()
    cache.clear()  # the token shared so far would still work: sign in again
    auth_page, auth_failed = send_form(clinician_client)
    assert auth_failed.error_code == "auth"
    assert "CORTI_CLIENT_SECRET" in page(auth_page)  # the name, not the value
    auth_readyz = clinician_client.get("/readyz")
    settings.CORTI_CLIENT_SECRET = SECRET
    clear_clients()
    _, created = send_form(clinician_client)
    corti.set_faults({"kind": "503", "endpoint": "create", "count": 1})
    _, unknown = send_form(clinician_client)
    corti.set_faults({"kind": "403", "endpoint": "create", "count": 1})
    failed_page, failed = send_form(clinician_client)
    assert created.outcome == Interaction.Outcome.CREATED
    assert unknown.outcome == Interaction.Outcome.UNKNOWN
    assert failed.outcome == Interaction.Outcome.FAILED

    pages = {
        "auth failure page": page(auth_page),
        "readyz, wrong secret": page(auth_readyz),
        "readyz": page(clinician_client.get("/readyz")),
        "failure page": page(failed_page),
    }
    for who, browser in (("clinician", clinician_client), ("admin", admin_browser)):
        urls = [
            f"{NEW}?key={uuid.uuid4()}",
            LIST,
            f"{LIST}?q={TYPED['patient_identifier']}",
            "/admin/",
            "/admin/intake/",
            "/admin/intake/interaction/",
            "/admin/intake/corticall/",
        ]
        for record in (auth_failed, created, unknown, failed):
            urls += [
                record.get_absolute_url(),
                f"{NEW}?key={record.submission_key}",
                f"/admin/intake/interaction/{record.pk}/change/",
                f"/admin/intake/interaction/{record.pk}/history/",
            ]
            urls += [
                f"/admin/intake/corticall/{call.pk}/change/"
                for call in record.calls.all()
            ]
        for url in urls:
            response = browser.get(url, follow=True)
            assert response.status_code < 500, url
            pages[f"{who} {url}"] = page(response)
    # The administrator really saw the admin pages that list the calls.
    assert (
        "Interaction" in pages[f"admin /admin/intake/interaction/{failed.pk}/change/"]
    )

    for name, html in pages.items():
        assert SECRET not in html, name
        assert WRONG_SECRET not in html, name


def test_client_secret_is_in_no_stored_error_or_call_log(
    corti, clinician_client, settings
):
    settings.CORTI_CLIENT_SECRET = WRONG_SECRET
    clear_clients()
    cache.clear()  # the token shared so far would still work: sign in again
    send_form(clinician_client)
    settings.CORTI_CLIENT_SECRET = SECRET
    clear_clients()
    corti.set_faults({"kind": "created-503", "endpoint": "create", "count": 1})
    send_form(clinician_client)

    stored = serializers.serialize(
        "json", [*Interaction.objects.all(), *CortiCall.objects.all()]
    )

    assert CortiCall.objects.filter(error_code="auth").exists()
    assert SECRET not in stored
    assert WRONG_SECRET not in stored


def debug_page_of(view, request):
    """Django's DEBUG error page for what `view` raises (no test frame in it)."""
    try:
        view(request)
    except Exception:
        return technical_500_response(request, *sys.exc_info())
    raise AssertionError("the view did not raise")


def test_debug_error_page_of_a_view_hides_the_client_secret(corti, rf, settings):
    settings.DEBUG = True

    def view_like(request):
        config = CortiConfig.from_settings()
        client = get_client()
        token = client._token
        raise RuntimeError(f"{type(token).__name__} broke for {config.tenant_name}")

    get_client().access_token()

    response = debug_page_of(view_like, rf.get("/interactions/"))

    html = response.content.decode()
    assert response.status_code == 500
    assert "CORTI_CLIENT_SECRET" in html  # the settings are listed
    assert "view_like" in html  # with the frame's variables
    assert SECRET not in html


_REAL_REQUEST = requests.Session.request


def crash_on_token_request(self, method, url, **kwargs):
    """requests.Session.request that fails unexpectedly when signing in."""
    if "openid-connect/token" in url:
        raise RuntimeError("unexpected failure inside the HTTP library")
    return _REAL_REQUEST(self, method, url, **kwargs)


def test_unusable_sign_in_address_fails_clearly_without_the_secret(
    corti, clinician_client, settings
):
    settings.DEBUG = True
    settings.CORTI_AUTH_URL = "corti-auth.invalid/no-scheme/token"
    clear_clients()

    response, _ = send_form(clinician_client)

    assert response.status_code == 200
    html = page(response)
    assert "CORTI_AUTH_URL" in html  # the clinician is told what to check
    assert SECRET not in html
    record = Interaction.objects.get()
    assert record.outcome == Interaction.Outcome.FAILED
    assert record.error_code == "misconfigured"
    assert corti.state()["counts"].get("create_requests", 0) == 0


def test_debug_error_page_of_a_crash_during_sign_in_hides_the_secret(
    corti, clinician_client, settings, monkeypatch
):
    settings.DEBUG = True
    clear_clients()
    clinician_client.raise_request_exception = False
    monkeypatch.setattr(requests.Session, "request", crash_on_token_request)

    response, _ = send_form(clinician_client)

    assert response.status_code == 500
    html = page(response)
    assert "Traceback" in html  # Django's technical 500 page
    assert "crash_on_token_request" in html  # with the frames that held it
    assert SECRET not in html


# --- reprs -------------------------------------------------------------------


def minimal_request() -> InteractionCreate:
    return InteractionCreate(
        encounter=Encounter(
            identifier=TYPED["encounter_identifier"],
            status=EncounterStatus.PLANNED,
            type=EncounterType.CONSULTATION,
            started_at=dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC),
        ),
        patient=Patient(identifier=TYPED["patient_identifier"]),
    )


def raised_by(call) -> CortiError:
    with pytest.raises(CortiError) as info:
        call()
    return info.value


@pytest.mark.slow  # a hang past a read timeout: ~0.6 s
def test_config_client_token_and_errors_never_show_the_secret_or_token(corti):
    client = corti.client(client_secret=SECRET, read_timeout=0.3, retry_budget=0.0)
    token = client.access_token()
    cache.clear()  # the shared token would serve the wrong secret's client too
    errors: list[CortiError] = [
        raised_by(corti.client(client_secret=WRONG_SECRET).access_token),
        raised_by(
            corti.client(
                client_secret=SECRET,
                auth_url=f"http://127.0.0.1:{closed_port()}/token",
                retry_budget=0.0,
            ).access_token
        ),
    ]
    for fault in (
        {"kind": "400"},
        {"kind": "401", "count": 2},
        {"kind": "403"},
        {"kind": "429", "retry_after": 30},
        {"kind": "503"},
        {"kind": "hang", "delay": 0.6},
    ):
        corti.set_faults({"endpoint": "create", "count": 1, **fault})
        errors.append(raised_by(lambda: client.create_interaction(minimal_request())))
    corti.set_faults()
    tokens = {token, client.access_token()}

    assert [type(e) for e in errors] == [
        CortiAuthError,
        CortiConnectionError,
        CortiValidationError,
        CortiUnauthorizedError,
        CortiForbiddenError,
        CortiRateLimitError,
        CortiServerError,
        CortiTimeoutError,
    ]
    shown = [
        repr(client.config),
        str(client.config),
        repr(CortiConfig.from_settings()),
        str(CortiConfig.from_settings()),
        repr(client),
        str(client),
        repr(client._token),
        str(client._token),
    ]
    for error in errors:
        shown += [repr(error), str(error), error.message, repr(error.args)]
        shown.append(repr(vars(error)))
    for text in shown:
        assert SECRET not in text
        assert WRONG_SECRET not in text
        assert not any(t in text for t in tokens)
