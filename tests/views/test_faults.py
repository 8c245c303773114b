"""Every way Corti can fail, as the clinician meets it through the dashboard.

The dashboard runs in-process (Django's test client, or `live_server` for the
concurrent cases); Corti is the simulator process, reached over real HTTP,
with its fault switch set per test. Each test checks three things: the local
record's final state, how many interactions Corti holds (never two for one
submission), and what the clinician sees.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from intake.corti import clear_clients
from intake.enums import ErrorCode
from intake.models import UNKNOWN_EXPLANATION, CortiCall, Interaction
from tests.support.corti import (
    clear_faults,
    corti_holds,
    counts,
    create_requests,
    point_corti_at_a_closed_port,
    set_faults,
)
from tests.support.factories import TYPED, make_interaction, make_user
from tests.support.pages import (
    HTMX,
    explanation,
    field_errors,
    form_values,
    listed,
    non_field_errors,
    page,
    parse,
    typed_values_in,
)
from tests.support.records import backdate_loss, settle_at
from tests.support.tasks import queued, run_tasks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clinic_zone")]

NEW = "/interactions/new/"
LIST = "/interactions/"
Outcome = Interaction.Outcome
ALREADY_SENT = (
    "This form was already sent: this is the interaction it created. "
    "Nothing was sent to Corti again."
)
LOST = (
    "Corti's answer was lost. The dashboard is checking with Corti whether the "
    "interaction was created; this page updates by itself. Nothing will be sent "
    "again meanwhile."
)
CHECKING = (
    "Checking with Corti whether it created the interaction; this page updates "
    "by itself. Nothing is sent again meanwhile."
)
#: The detail page of a settling record asks again every few seconds.
POLLING = 'hx-trigger="every 3s"'
KEY_RENEWED = (
    "This form had lost its submission key (it may come from an old page), so "
    "nothing was sent. Check the details and submit again."
)


# --- helpers ---------------------------------------------------------------


def new_form(**changes: str) -> dict[str, str]:
    """A freshly rendered form, filled in: its own submission key."""
    return {**TYPED, "submission_key": str(uuid.uuid4()), **changes}


def detail_url(record: Interaction) -> str:
    return f"/interactions/{record.pk}/"


RETRY_ACTION = re.compile(r"/interactions/([0-9a-f-]{36})/retry/")
CORRECT_HREF = re.compile(r"/interactions/new/\?key=([0-9a-f-]{36})")


def retry_buttons(html: str) -> dict[str, str]:
    """The retry forms on a page: record id -> the label of its button."""
    buttons = {}
    for form in parse(html).find_all("form", action=True):
        match = RETRY_ACTION.fullmatch(form.attrs["action"] or "")
        button = form.find("button")
        if match and button:
            buttons[match.group(1)] = button.raw_text
    return buttons


def correct_links(html: str) -> list[str]:
    """The submission keys the "Correct and send again" links reopen."""
    return [
        match.group(1)
        for link in parse(html).find_all("a", href=True)
        if (match := CORRECT_HREF.fullmatch(link.attrs["href"] or ""))
        and link.raw_text == "Correct and send again"
    ]


def call_rows(html: str) -> list[list[str]]:
    """The "Calls to Corti" table, one list of cell texts per row."""
    document = parse(html)
    heading = document.find(id="calls-heading")
    table = heading and document.find_after(heading, "tbody")
    assert table, "no Calls to Corti table"
    return [[cell.text for cell in row.find_all("td")] for row in table.find_all("tr")]


def assert_form_kept(response, typed: dict[str, str]) -> str:
    """The form came back, with every typed value, and nothing was redirected."""
    assert response.status_code == 200
    assert not response.has_header("Location")
    assert "HX-Redirect" not in response
    html = page(response)
    assert typed_values_in(html) == typed
    return html


def assert_not_created_page(html: str, record: Interaction, code: str) -> None:
    """The failure alert: the explanation, the request id, the log link."""
    assert "Not created in Corti" in html
    assert explanation(code) in html
    if record.error_request_id:
        assert f"<code>{record.error_request_id}</code>" in html
    assert f'href="{detail_url(record)}"' in html


# --- Corti answers with an error: nothing was created ----------------------


def test_400_marks_the_named_field_and_keeps_every_typed_value(corti, clinician_client):
    set_faults(corti, {"kind": "400", "endpoint": "create", "count": 1})
    typed = new_form()

    response = clinician_client.post(NEW, typed)

    html = assert_form_kept(response, typed)
    record = Interaction.objects.get()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == "invalid"
    assert record.error_status == 400
    assert record.error_request_id
    assert record.error_problem["requestid"] == record.error_request_id
    assert not record.retryable
    assert corti_holds(corti) == []
    assert_not_created_page(html, record, "invalid")
    assert field_errors(html, "encounter_identifier") == [
        "Corti: Rejected by the fault switch."
    ]
    assert non_field_errors(html) == []
    # Rejected for its content: correct it, do not send it again as it was.
    detail = page(clinician_client.get(detail_url(record)))
    assert retry_buttons(detail) == {}
    assert correct_links(detail) == [str(record.submission_key)]


def test_400_validation_errors_go_beside_their_fields_and_unknown_paths_above(
    corti, clinician_client
):
    set_faults(
        corti,
        {
            "kind": "400",
            "endpoint": "create",
            "count": 1,
            "validation_errors": [
                {"patient.birthDate": "is implausible"},
                {"encounter.period.endedAt": "is too late"},
                {"$.assignedUserId": "is not a user of this tenant"},
                {"encounter.location": "is unknown"},
            ],
        },
    )
    typed = new_form()

    response = clinician_client.post(NEW, typed)

    html = assert_form_kept(response, typed)
    assert field_errors(html, "patient_birth_date") == ["Corti: is implausible"]
    assert field_errors(html, "encounter_ended_at") == ["Corti: is too late"]
    assert field_errors(html, "assigned_user_id") == [
        "Corti: is not a user of this tenant"
    ]
    assert field_errors(html, "encounter_identifier") == []
    assert non_field_errors(html) == ["Corti: encounter.location is unknown"]
    record = Interaction.objects.get()
    assert record.error_code == "invalid"
    assert record.error_problem["validationErrors"][3] == {
        "encounter.location": "is unknown"
    }
    assert_not_created_page(html, record, "invalid")
    assert corti_holds(corti) == []


#: Error answers the client asks again about, the way Corti means: with a new
#: token, or after a short Retry-After. (rule, tokens Corti issued)
ASKED_AGAIN = [
    pytest.param(
        {"kind": "401", "endpoint": "create", "count": 1},
        2,
        id="401-once-fetches-a-new-token",
    ),
    pytest.param(
        {"kind": "429", "endpoint": "create", "count": 1, "retry_after": 0.3},
        1,
        id="429-with-a-short-retry-after-is-waited-out",
    ),
]


@pytest.mark.parametrize(("rule", "tokens"), ASKED_AGAIN)
def test_an_error_answer_asked_again_creates(corti, clinician_client, rule, tokens):
    set_faults(corti, rule)

    response = clinician_client.post(NEW, new_form())

    record = Interaction.objects.get()
    assert response.status_code == 303
    assert response["Location"] == detail_url(record)
    assert record.outcome == Outcome.CREATED
    [created] = corti_holds(corti)
    assert uuid.UUID(created["id"]) == record.interaction_id
    assert create_requests(corti) == 2
    assert counts(corti)["tokens_issued"] == tokens


#: Error answers that fail the submission; none blames a field. (rule, error
#: code and status, create requests Corti saw, what the page tells to do)
FAILED_BY_AN_ERROR = [
    pytest.param(
        {"kind": "401", "endpoint": "create", "count": 2},
        "unauthorized",
        401,
        2,
        "ask an administrator",
        id="401-twice-is-unauthorized-and-sends-to-an-administrator",
    ),
    pytest.param(
        {"kind": "403", "endpoint": "create", "count": 1},
        "forbidden",
        403,
        1,
        "CORTI_TENANT_NAME",
        id="403-names-the-tenant-setting",
    ),
    pytest.param(
        {"kind": "429", "endpoint": "create", "count": 1, "retry_after": 30},
        "rate_limited",
        429,
        1,
        "try again in a minute",
        id="429-with-a-long-retry-after-is-rate-limited",
    ),
]


@pytest.mark.parametrize(
    ("rule", "code", "status", "attempts", "advice"), FAILED_BY_AN_ERROR
)
def test_an_error_answer_fails_and_keeps_every_typed_value(
    corti, clinician_client, rule, code, status, attempts, advice
):
    set_faults(corti, rule)
    typed = new_form()

    response = clinician_client.post(NEW, typed)

    html = assert_form_kept(response, typed)
    record = Interaction.objects.get()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == code
    assert record.error_status == status
    # Even an empty 401 names the request: the X-Request-Id header.
    assert record.error_request_id
    assert record.retryable
    assert corti_holds(corti) == []
    assert create_requests(corti) == attempts
    assert_not_created_page(html, record, code)
    assert advice in html
    # Not the clinician's fault: no field is blamed.
    assert "Correct the fields" not in html
    assert all(
        field_errors(html, name) == [] for name in TYPED if name != "submission_key"
    )


@pytest.mark.parametrize("how", ["token endpoint answers 503", "closed port"])
@pytest.mark.slow  # Corti unreachable, retried within the retry budget: ~1 s
def test_corti_unreachable_keeps_the_input_and_sends_nothing(
    corti, clinician_client, settings, how
):
    if how == "closed port":
        point_corti_at_a_closed_port(settings)
    else:
        set_faults(corti, {"kind": "503", "endpoint": "token"})
    typed = new_form()

    response = clinician_client.post(NEW, typed)

    html = assert_form_kept(response, typed)
    record = Interaction.objects.get()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == "unreachable"
    assert not record.may_exist_in_corti
    assert record.retryable
    assert_not_created_page(html, record, "unreachable")
    assert "Corti cannot be reached right now" in html
    assert create_requests(corti) == 0
    assert corti_holds(corti) == []


def test_wrong_client_secret_explains_the_sign_in_failure(
    corti, clinician_client, settings
):
    settings.CORTI_CLIENT_SECRET = "not-the-secret"
    clear_clients()
    typed = new_form()

    response = clinician_client.post(NEW, typed)

    html = assert_form_kept(response, typed)
    record = Interaction.objects.get()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == "auth"
    assert record.error_status == 401
    assert_not_created_page(html, record, "auth")
    assert "could not sign in to Corti" in html
    assert "not-the-secret" not in html
    assert create_requests(corti) == 0


# --- the answer was lost, and Corti had not created it ----------------------


def assert_checking_page(html: str, record: Interaction) -> None:
    """The detail page of an unknown record: no verdict, no resend, polling."""
    assert "Checking with Corti" in html
    assert escape(str(UNKNOWN_EXPLANATION)) in html
    assert escape(record.failure_explanation) in html
    assert "Not created in Corti" not in html
    assert retry_buttons(html) == {str(record.pk): "Check Corti now"}
    assert correct_links(html) == []
    assert POLLING in html


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("500", "server_error", 500),
        ("502", "server_error", 502),
        ("503", "server_error", 503),
        ("504", "server_error", 504),
        ("drop", "disconnected", None),
    ],
)
def test_lost_answer_not_found_at_once_is_checking_then_failed_after_the_window(
    corti, clinician_client, settings, kind, code, status
):
    set_faults(corti, {"kind": kind, "endpoint": "create", "count": 1})
    typed = new_form()

    response = clinician_client.post(NEW, typed, follow=True)

    record = Interaction.objects.get()
    assert response.redirect_chain == [(detail_url(record), 303)]
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == code
    assert record.error_status == status
    assert bool(record.error_request_id) is (status is not None)
    assert record.may_exist_in_corti
    assert not record.retryable
    # Corti was asked, once, and found nothing; that proves nothing yet.
    assert corti_holds(corti) == []
    assert create_requests(corti) == 1
    assert counts(corti)["list_requests"] >= 1
    assert [(c.kind, c.result) for c in record.calls.order_by("started_at", "id")] == [
        (CortiCall.Kind.CREATE, CortiCall.Result.UNKNOWN),
        (CortiCall.Kind.LOOKUP, CortiCall.Result.NOT_FOUND),
    ]
    html = page(response)
    assert escape(LOST) in html
    assert_checking_page(html, record)

    # A search once the settle window has passed proves it: safe to send again.
    assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)

    detail = page(clinician_client.get(detail_url(record)))
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.retryable
    assert "Not created in Corti" in detail
    assert explanation(code) in detail
    assert "could no longer be in progress there" in detail
    assert POLLING not in detail
    assert retry_buttons(detail) == {str(record.pk): "Retry"}
    assert correct_links(detail) == [str(record.submission_key)]
    assert corti_holds(corti) == []


@pytest.mark.slow  # a create that hangs past the read timeout: ~0.5 s
def test_read_timeout_is_checking_until_the_window_has_passed(
    corti, clinician_client, settings
):
    settings.CORTI_TIMEOUT = 0.5
    clear_clients()
    set_faults(corti, {"kind": "hang", "endpoint": "create", "count": 1, "delay": 1})
    typed = new_form()

    response = clinician_client.post(NEW, typed)

    record = Interaction.objects.get()
    assert response.status_code == 303
    assert response["Location"] == detail_url(record)
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == "timeout"
    assert record.may_exist_in_corti
    assert record.calls.filter(
        kind=CortiCall.Kind.LOOKUP, result=CortiCall.Result.NOT_FOUND
    ).exists()
    assert_checking_page(page(clinician_client.get(detail_url(record))), record)

    assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)

    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.retryable
    assert corti_holds(corti) == []
    # Corrected at its form address: the failure, with every typed value.
    html = page(clinician_client.get(form_address(record)))
    assert typed_values_in(html) == typed
    assert_not_created_page(html, record, "timeout")


# --- the answer was lost, but Corti had created it --------------------------


@pytest.mark.parametrize(
    "kind", ["created-500", "created-502", "created-503", "created-504"]
)
def test_created_then_error_answer_lands_on_the_created_interaction(
    corti, clinician_client, kind
):
    set_faults(corti, {"kind": kind, "endpoint": "create", "count": 1})

    response = clinician_client.post(NEW, new_form())

    record = Interaction.objects.get()
    assert response.status_code == 303
    assert response["Location"] == detail_url(record)
    [created] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(created["id"])
    assert record.websocket_url == created["websocketUrl"]
    assert create_requests(corti) == 1
    lost = record.calls.get(kind=CortiCall.Kind.CREATE)
    assert lost.result == CortiCall.Result.UNKNOWN
    assert lost.error_status == int(kind.removeprefix("created-"))
    assert lost.error_request_id
    detail = page(clinician_client.get(response["Location"]))
    assert "Interaction created in Corti." in detail
    assert str(record.interaction_id) in detail
    assert f"<code>{lost.error_request_id}</code>" in detail
    assert "Found in Corti" in detail
    assert POLLING not in detail


@pytest.mark.parametrize("kind", ["created-drop", "slow"])
def test_answer_lost_on_the_wire_still_lands_on_the_created_interaction(
    corti, clinician_client, settings, kind
):
    # "slow" creates at once and answers after the read timeout.
    settings.CORTI_TIMEOUT = 0.5
    clear_clients()
    set_faults(corti, {"kind": kind, "endpoint": "create", "count": 1, "delay": 1})

    response = clinician_client.post(NEW, new_form())

    record = Interaction.objects.get()
    assert response.status_code == 303
    assert response["Location"] == detail_url(record)
    [created] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(created["id"])
    assert create_requests(corti) == 1


def test_lost_answer_that_cannot_be_looked_up_is_unknown_and_never_sent_twice(
    corti, clinician_client
):
    set_faults(
        corti,
        {"kind": "created-504", "endpoint": "create", "count": 1},
        {"kind": "403", "endpoint": "list"},
    )
    typed = new_form()

    first = clinician_client.post(NEW, typed, follow=True)

    record = Interaction.objects.get()
    assert first.redirect_chain == [(detail_url(record), 303)]
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == "server_error"
    assert record.error_status == 504
    assert record.error_request_id
    html = page(first)
    assert escape(LOST) in html
    assert_checking_page(html, record)
    assert f"<code>{record.error_request_id}</code>" in html
    assert len(corti_holds(corti)) == 1

    # Sent again, while Corti cannot be searched and once it can: nothing is
    # sent, nothing is searched; the page says what is known.
    for searchable in (False, True):
        if searchable:
            clear_faults(corti)
        before = counts(corti)
        again = clinician_client.post(NEW, typed, follow=True)

        assert again.redirect_chain == [(detail_url(record), 303)]
        assert escape(LOST) in page(again)
        assert counts(corti) == before

    # "Check Corti now": the worker finds what Corti created.
    checked = clinician_client.post(retry_url(record), follow=True)
    assert CHECKING in page(checked)
    run_tasks()

    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    [created] = corti_holds(corti)
    assert record.interaction_id == uuid.UUID(created["id"])
    settled = clinician_client.post(NEW, typed, follow=True)
    assert settled.redirect_chain == [(detail_url(record), 303)]
    assert ALREADY_SENT in page(settled)
    assert create_requests(corti) == 1
    assert Interaction.objects.count() == 1


# --- one click, one interaction ---------------------------------------------


def test_same_form_posted_twice_creates_once_and_says_so(corti, clinician_client):
    typed = new_form()

    first = clinician_client.post(NEW, typed, follow=True)
    second = clinician_client.post(NEW, typed, follow=True)

    record = Interaction.objects.get()
    assert first.redirect_chain == [(detail_url(record), 303)]
    assert "Interaction created in Corti." in page(first)
    assert second.redirect_chain == [(detail_url(record), 303)]
    assert ALREADY_SENT in page(second)
    assert "Interaction created in Corti." not in page(second)
    assert len(corti_holds(corti)) == 1
    assert create_requests(corti) == 1


def test_same_form_posted_twice_over_htmx_redirects_both_to_the_one_interaction(
    corti, clinician_client
):
    typed = new_form()

    first = clinician_client.post(NEW, typed, headers=HTMX)
    second = clinician_client.post(NEW, typed, headers=HTMX)

    record = Interaction.objects.get()
    for response in (first, second):
        assert response.status_code == 200
        assert response["HX-Redirect"] == detail_url(record)
    assert len(corti_holds(corti)) == 1


def test_same_form_in_a_second_tab_of_another_session_creates_once(
    corti, client, clinician
):
    other_tab = Client()
    client.force_login(clinician)
    other_tab.force_login(clinician)
    assert client.session.session_key != other_tab.session.session_key
    typed = new_form()

    first = client.post(NEW, typed)
    second = other_tab.post(NEW, typed, follow=True)

    record = Interaction.objects.get()
    assert first["Location"] == detail_url(record)
    assert second.redirect_chain == [(detail_url(record), 303)]
    assert ALREADY_SENT in page(second)
    assert len(corti_holds(corti)) == 1


@pytest.mark.slow  # a closed port, retried within the retry budget: ~0.5 s
def test_form_sent_again_after_a_failure_creates_on_the_same_record(
    corti, clinician_client, settings
):
    point_corti_at_a_closed_port(settings)
    typed = new_form()
    failed = clinician_client.post(NEW, typed)
    assert_form_kept(failed, typed)
    record = Interaction.objects.get()
    assert record.outcome == Outcome.FAILED
    # The re-rendered form carries the same key, so sending it reaches this record.
    assert form_values(page(failed))["submission_key"] == str(record.submission_key)

    settings.CORTI_API_URL = corti.api_url
    settings.CORTI_AUTH_URL = corti.auth_url()
    clear_clients()
    response = clinician_client.post(NEW, form_values(page(failed)), follow=True)

    assert response.redirect_chain == [(detail_url(record), 303)]
    assert "Interaction created in Corti." in page(response)
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.error_code == ""
    assert str(record.submission_key) == typed["submission_key"]
    assert Interaction.objects.count() == 1
    [created] = corti_holds(corti)
    assert record.interaction_id == uuid.UUID(created["id"])


def flashed_by(answer: requests.Response) -> list[str]:
    """The messages an answer stored for the next page (the messages cookie)."""
    value = answer.cookies.get("messages")
    if not value:
        return []
    return [str(m) for m in CookieStorage(HttpRequest())._decode(value)]


def signed_in_browser(
    live_server, user
) -> tuple[requests.cookies.RequestsCookieJar, str]:
    """A browser of its own: a session cookie, a CSRF cookie and its token."""
    session = Client()
    session.force_login(user)
    browser = requests.Session()
    browser.cookies.set("sessionid", session.cookies["sessionid"].value)
    form = browser.get(f"{live_server.url}{NEW}", timeout=10)
    assert form.status_code == 200
    return browser.cookies, form_values(form.text)["csrfmiddlewaretoken"]


#: Enough simultaneous posts that a check-then-insert race would show.
POSTS_AT_ONCE = 10


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sessions", [1, 2], ids=["one-session", "two-tabs"])
@pytest.mark.slow  # threads, a slow Corti: ~3 s
def test_concurrent_posts_of_one_form_create_once(
    corti, live_server, clinician, sessions
):
    set_faults(corti, {"kind": "slow", "endpoint": "create", "delay": 1.0})
    browsers = [signed_in_browser(live_server, clinician) for _ in range(sessions)]
    # Posts of one form at once: clicks, reloads, and a second tab if two.
    posts = [browsers[i % sessions] for i in range(POSTS_AT_ONCE)]
    typed = new_form()
    start = threading.Barrier(len(posts), timeout=10)
    answers: list = [None] * len(posts)

    def post(index: int) -> None:
        cookies, csrf_token = posts[index]
        start.wait()
        try:
            answers[index] = requests.post(
                f"{live_server.url}{NEW}",
                data={**typed, "csrfmiddlewaretoken": csrf_token},
                cookies=cookies,
                allow_redirects=False,
                timeout=30,
            )
        except requests.RequestException as exc:
            answers[index] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    record = Interaction.objects.get()
    assert record.outcome == Outcome.CREATED
    for answer in answers:
        assert isinstance(answer, requests.Response), answer
        assert answer.status_code == 303, answer.text[:500]
        assert answer.headers["Location"] == detail_url(record)
    # One post created it; the others waited for its answer and say so.
    assert sorted(flashed_by(answer) for answer in answers) == [
        ["Interaction created in Corti."],
        *[[ALREADY_SENT]] * (POSTS_AT_ONCE - 1),
    ]
    assert len(corti_holds(corti)) == 1
    assert create_requests(corti) == 1


# --- the submission key ----------------------------------------------------


@pytest.mark.parametrize(
    "key", [None, "", "not-a-uuid", "5f0c7a52-3a3e-4d7b-8c11"], ids=repr
)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_form_without_a_valid_key_gets_a_new_one_and_sends_nothing(
    corti, clinician_client, key, htmx
):
    typed = new_form()
    posted = {**typed, "submission_key": key}
    if key is None:
        del posted["submission_key"]

    response = clinician_client.post(NEW, posted, headers=HTMX if htmx else {})

    assert response.status_code == 200
    html = page(response)
    shown = typed_values_in(html)
    renewed = uuid.UUID(shown.pop("submission_key"))
    assert str(renewed) != key
    assert shown == {k: v for k, v in typed.items() if k != "submission_key"}
    assert non_field_errors(html) == [KEY_RENEWED]
    assert Interaction.objects.count() == 0
    assert counts(corti) == {}

    # The renewed form goes through.
    assert clinician_client.post(NEW, form_values(html)).status_code == 303
    assert Interaction.objects.get().submission_key == renewed


# --- retry -----------------------------------------------------------------


def failed_record(corti, client, kind: str = "503", **fault) -> Interaction:
    """A failed submission; after a lost answer (5xx), once the window passed."""
    set_faults(corti, {"kind": kind, "endpoint": "create", "count": 1, **fault})
    client.post(NEW, new_form())
    record = Interaction.objects.get()
    if kind.startswith("5"):
        assert record.outcome == Outcome.UNKNOWN
        assert settle_at(record, django_settings.INTAKE_SETTLE_SECONDS)
        record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    return record


def retry_url(record: Interaction) -> str:
    return f"/interactions/{record.pk}/retry/"


def test_retry_of_a_failed_record_creates_it(corti, clinician_client):
    record = failed_record(corti, clinician_client)

    response = clinician_client.post(retry_url(record), follow=True)

    assert response.redirect_chain == [(detail_url(record), 303)]
    html = page(response)
    assert "Interaction created in Corti." in html
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.error_code == ""
    [created] = corti_holds(corti)
    assert record.interaction_id == uuid.UUID(created["id"])
    assert str(record.interaction_id) in html
    assert Interaction.objects.count() == 1
    assert record.calls.filter(
        kind=CortiCall.Kind.CREATE,
        trigger=CortiCall.Trigger.RETRY,
        result=CortiCall.Result.CREATED,
    ).exists()


def test_retry_over_htmx_answers_with_a_client_redirect(corti, clinician_client):
    record = failed_record(corti, clinician_client)

    response = clinician_client.post(retry_url(record), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == detail_url(record)
    assert len(corti_holds(corti)) == 1


def test_retry_that_fails_again_says_why(corti, clinician_client):
    record = failed_record(corti, clinician_client)
    set_faults(
        corti, {"kind": "429", "endpoint": "create", "count": 1, "retry_after": 30}
    )

    response = clinician_client.post(retry_url(record), follow=True)

    assert response.redirect_chain == [(detail_url(record), 303)]
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == "rate_limited"
    assert "Not created in Corti: " + explanation("rate_limited") in page(response)
    assert corti_holds(corti) == []


def test_retry_of_a_created_record_sends_nothing(corti, clinician_client):
    clinician_client.post(NEW, new_form())
    record = Interaction.objects.get()
    before = counts(corti)

    response = clinician_client.post(retry_url(record), follow=True)

    assert response.redirect_chain == [(detail_url(record), 303)]
    assert "This submission was already created." in page(response)
    assert counts(corti) == before
    assert len(corti_holds(corti)) == 1


def test_retry_only_answers_post(corti, clinician_client):
    record = failed_record(corti, clinician_client)
    before = counts(corti)

    assert clinician_client.get(retry_url(record)).status_code == 405
    assert counts(corti) == before
    assert Interaction.objects.get().outcome == Outcome.FAILED


@pytest.fixture
def viewer():
    """May read the log, may not submit."""
    return make_user("viewer", password="pw-viewer-1", permissions=["view_interaction"])


#: Who may not retry, and the answer they get: (who, status, sent to).
MAY_NOT_RETRY = [
    pytest.param(
        "anonymous", 302, "/accounts/login/?next={retry}", id="signed-out-signs-in"
    ),
    pytest.param("viewer", 403, None, id="viewer-without-the-permission-to-submit"),
    pytest.param("no_role_user", 403, None, id="user-without-a-role"),
]


@pytest.mark.parametrize(("who", "status", "location"), MAY_NOT_RETRY)
def test_retry_needs_a_signed_in_user_who_may_submit(
    corti, client, clinician, request, who, status, location
):
    record = make_interaction(
        clinician, outcome=Outcome.FAILED, interaction_id=None, error_code="timeout"
    )
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))

    response = client.post(retry_url(record))

    assert response.status_code == status
    if location:
        assert response["Location"] == location.format(retry=retry_url(record))
    assert counts(corti) == {}
    assert Interaction.objects.get().outcome == Outcome.FAILED


@pytest.fixture
def mixed_records(clinician):
    def failed(code: str, **fields) -> Interaction:
        return make_interaction(
            clinician,
            outcome=Outcome.FAILED,
            interaction_id=None,
            error_code=code,
            **fields,
        )

    return {
        "retryable": failed("server_error", encounter_identifier="ENC-RETRY"),
        "invalid": failed("invalid", encounter_identifier="ENC-INVALID"),
        "created": make_interaction(clinician, encounter_identifier="ENC-CREATED"),
        "pending": make_interaction(
            clinician,
            outcome=Outcome.PENDING,
            interaction_id=None,
            last_attempt_at=timezone.now(),
        ),
    }


def test_list_shows_retry_only_for_retryable_failures(
    corti, clinician_client, mixed_records
):
    html = page(clinician_client.get(LIST))

    assert retry_buttons(html) == {str(mixed_records["retryable"].pk): "Retry"}
    assert "Retry the submission of" in html
    assert "encounter ENC-RETRY" in html


#: What the detail page of each of mixed_records offers: (record, a Retry
#: button, a "Correct and send again" link).
DETAIL_OFFERS = [
    pytest.param("retryable", True, True, id="retryable-failure-both"),
    pytest.param("invalid", False, True, id="rejected-failure-correct-only"),
    pytest.param("created", False, False, id="created-neither"),
    pytest.param("pending", False, False, id="pending-neither"),
]


@pytest.mark.parametrize(("name", "retry", "correct"), DETAIL_OFFERS)
def test_detail_shows_retry_only_for_retryable_failures(
    corti, clinician_client, mixed_records, name, retry, correct
):
    record = mixed_records[name]

    html = page(clinician_client.get(detail_url(record)))

    assert retry_buttons(html) == ({str(record.pk): "Retry"} if retry else {})
    assert correct_links(html) == ([str(record.submission_key)] if correct else [])
    assert counts(corti) == {}


def test_who_may_not_submit_sees_no_retry_and_no_correct_link(
    corti, client, viewer, mixed_records
):
    client.force_login(viewer)

    listing = page(client.get(LIST))
    detail = page(client.get(detail_url(mixed_records["retryable"])))

    assert str(mixed_records["retryable"].pk) in listing
    assert retry_buttons(listing) == {}
    assert "Not created in Corti" in detail
    assert retry_buttons(detail) == {}
    assert correct_links(detail) == []


# --- correct and send again -------------------------------------------------


def form_address(record: Interaction) -> str:
    return f"{NEW}?key={record.submission_key}"


#: A failed submission reopened by its "Correct and send again" link: (the
#: fault, the error code, Corti's messages beside encounter_identifier).
REOPENED = [
    pytest.param(
        {"kind": "429", "retry_after": 30}, "rate_limited", [], id="rate-limited"
    ),
    pytest.param(
        {"kind": "400"},
        "invalid",
        ["Corti: Rejected by the fault switch."],
        id="rejected-shows-corti-messages-by-the-fields",
    ),
]


@pytest.mark.parametrize(("fault", "code", "beside_identifier"), REOPENED)
def test_correct_link_opens_the_form_with_the_record_and_its_key(
    corti, clinician_client, fault, code, beside_identifier
):
    record = failed_record(corti, clinician_client, **fault)
    detail = page(clinician_client.get(detail_url(record)))
    assert correct_links(detail) == [str(record.submission_key)]
    clinician_client.raise_request_exception = False

    response = clinician_client.get(form_address(record))

    assert response.status_code == 200
    html = page(response)
    assert typed_values_in(html) == {
        **TYPED,
        "submission_key": str(record.submission_key),
    }
    assert f'action="{form_address(record)}"' in html
    assert field_errors(html, "encounter_identifier") == beside_identifier
    assert_not_created_page(html, record, code)
    assert create_requests(corti) == 1


def test_submitting_the_corrected_form_updates_that_record(corti, clinician_client):
    record = failed_record(corti, clinician_client, kind="429", retry_after=30)
    html = page(clinician_client.get(form_address(record)))
    corrected = {
        **form_values(html),
        "encounter_identifier": "ENC-43",
        "encounter_title": "Knee pain, corrected",
        "patient_name": "",
    }

    response = clinician_client.post(form_address(record), corrected, follow=True)

    assert response.redirect_chain == [(detail_url(record), 303)]
    assert "Interaction created in Corti." in page(response)
    assert Interaction.objects.count() == 1
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert str(record.submission_key) == corrected["submission_key"]
    assert record.encounter_identifier == "ENC-43"
    assert record.encounter_title == "Knee pain, corrected"
    assert record.patient_name == ""
    assert record.request_body["encounter"]["identifier"] == "ENC-43"
    assert "name" not in record.request_body["patient"]
    [created] = corti_holds(corti)
    assert created["encounter"]["identifier"] == "ENC-43"
    assert record.interaction_id == uuid.UUID(created["id"])


def test_correcting_a_rejected_form_in_place_updates_that_record(
    corti, clinician_client
):
    set_faults(corti, {"kind": "400", "endpoint": "create", "count": 1})
    rejected = clinician_client.post(NEW, new_form())
    record = Interaction.objects.get()
    corrected = {**form_values(page(rejected)), "encounter_identifier": "ENC-43"}

    response = clinician_client.post(NEW, corrected)

    assert response.status_code == 303
    assert response["Location"] == detail_url(record)
    assert Interaction.objects.count() == 1
    record.refresh_from_db()
    assert record.outcome == Outcome.CREATED
    assert record.encounter_identifier == "ENC-43"
    assert record.error_problem is None
    [created] = corti_holds(corti)
    assert created["encounter"]["identifier"] == "ENC-43"


def test_form_address_of_a_created_submission_shows_it_and_sends_nothing(
    corti, clinician_client
):
    typed = new_form()
    clinician_client.post(NEW, typed)
    record = Interaction.objects.get()

    response = clinician_client.get(form_address(record))

    assert response.status_code == 200
    html = page(response)
    assert "This form was already sent" in html
    assert str(record.interaction_id) in html
    assert f'href="{detail_url(record)}"' in html
    # Read-only: what was sent, no form to edit or send.
    assert 'id="intake-form"' not in html
    assert "submission_key" not in form_values(html)
    assert escape(TYPED["patient_name"]) in html
    assert correct_links(html) == []
    # The old page's form sent again (the back button) sends nothing.
    again = clinician_client.post(form_address(record), typed)
    assert again.status_code == 303
    assert again["Location"] == detail_url(record)
    assert create_requests(corti) == 1


def test_form_address_of_a_pending_submission_says_it_is_being_sent(
    corti, clinician_client, clinician
):
    record = make_interaction(
        clinician,
        outcome=Outcome.PENDING,
        interaction_id=None,
        last_attempt_at=timezone.now(),
    )

    html = page(clinician_client.get(form_address(record)))

    assert "This form was already sent" in html
    assert "Corti has not answered yet" in html
    assert 'id="intake-form"' not in html
    assert f'href="{detail_url(record)}"' in html
    assert counts(corti) == {}


@pytest.mark.parametrize("key", ["garbage", "", "12345"])
def test_form_address_with_a_malformed_key_gets_a_fresh_one(clinician_client, key):
    response = clinician_client.get(NEW, {"key": key})

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == NEW
    [fresh] = parse_qs(location.query)["key"]
    assert str(uuid.UUID(fresh)) == fresh


def test_form_address_with_an_unsent_key_is_an_empty_form_with_that_key(
    clinician_client,
):
    key = str(uuid.uuid4())

    response = clinician_client.get(NEW, {"key": key})

    assert response.status_code == 200
    values = form_values(page(response))
    assert values["submission_key"] == key
    assert values["encounter_identifier"] == ""
    assert 'class="error"' not in page(response)


# --- the detail page never calls Corti; the worker settles what is open ------


def make_stale(record: Interaction) -> None:
    Interaction.objects.filter(pk=record.pk).update(
        outcome=Outcome.PENDING,
        interaction_id=None,
        websocket_url="",
        completed_at=None,
        last_attempt_at=timezone.now() - dt.timedelta(days=1),
    )


def test_opening_a_stale_pending_record_queues_a_check_that_adopts_it(
    corti, clinician_client
):
    clinician_client.post(NEW, new_form())
    record = Interaction.objects.get()
    make_stale(record)
    before = counts(corti)

    response = clinician_client.get(detail_url(record))

    # The page view calls nobody: it queues a check and keeps asking.
    assert response.status_code == 200
    assert counts(corti) == before
    record.refresh_from_db()
    assert record.outcome == Outcome.PENDING
    assert len(queued("settle_interaction", record)) == 1
    html = page(response)
    assert "Waiting for Corti's answer" in html
    assert POLLING in html

    run_tasks()

    record.refresh_from_db()
    [created] = corti_holds(corti)
    assert record.outcome == Outcome.CREATED
    assert record.interaction_id == uuid.UUID(created["id"])
    html = page(clinician_client.get(detail_url(record)))
    assert "Created in Corti" in html
    assert created["id"] in html
    assert 'http-equiv="refresh"' not in html
    assert POLLING not in html
    lookup = record.calls.get(kind=CortiCall.Kind.LOOKUP)
    assert lookup.trigger == CortiCall.Trigger.WORKER
    assert lookup.result == CortiCall.Result.FOUND
    assert lookup.user is None


def test_a_stale_pending_record_corti_lacks_is_failed_interrupted(
    corti, clinician_client, clinician
):
    # Its last attempt was a day ago: far beyond the settle window.
    record = make_interaction(
        clinician,
        outcome=Outcome.PENDING,
        interaction_id=None,
        last_attempt_at=timezone.now() - dt.timedelta(days=1),
    )

    response = clinician_client.get(detail_url(record))

    assert response.status_code == 200
    assert counts(corti) == {}
    run_tasks()

    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == "interrupted"
    assert record.retryable
    html = page(clinician_client.get(detail_url(record)))
    assert "Not created in Corti" in html
    assert retry_buttons(html) == {str(record.pk): "Retry"}
    assert corti_holds(corti) == []
    assert create_requests(corti) == 0


def test_interrupted_record_is_explained_as_checked_not_created(
    corti, clinician_client, clinician
):
    record = make_interaction(
        clinician,
        outcome=Outcome.PENDING,
        interaction_id=None,
        last_attempt_at=timezone.now() - dt.timedelta(days=1),
    )
    clinician_client.get(detail_url(record))
    run_tasks()

    html = page(clinician_client.get(detail_url(record)))

    record.refresh_from_db()
    assert record.error_code == "interrupted"
    assert record.error_request_id == ""
    assert "quoting the request id" not in html
    assert explanation("interrupted") in html
    assert "could no longer be in progress there" in html


def test_a_failed_lookup_keeps_the_reason_and_request_id_of_the_lost_answer(
    corti, clinician_client, settings
):
    set_faults(
        corti,
        {"kind": "504", "endpoint": "create", "count": 1},
        {"kind": "403", "endpoint": "list", "count": 2},
    )
    clinician_client.post(NEW, new_form())
    record = Interaction.objects.get()
    assert record.outcome == Outcome.UNKNOWN
    assert record.error_code == "server_error"
    lost_request_id = record.error_request_id
    assert lost_request_id

    # Checked while Corti still cannot be searched, then once it can (and the
    # settle window is over).
    assert settle_at(record, 6)
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert settle_at(record, settings.INTAKE_SETTLE_SECONDS)
    html = page(clinician_client.get(detail_url(record)))

    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert corti_holds(corti) == []
    assert record.error_code == "server_error"
    assert record.error_status == 504
    assert record.error_request_id == lost_request_id
    assert explanation("server_error") in html
    assert "CORTI_TENANT_NAME" not in html


def test_check_corti_again_that_still_cannot_tell_does_not_say_not_created(
    corti, clinician_client
):
    set_faults(
        corti,
        {"kind": "created-504", "endpoint": "create", "count": 1},
        {"kind": "403", "endpoint": "list"},
    )
    clinician_client.post(NEW, new_form())
    record = Interaction.objects.get()
    assert record.outcome == Outcome.UNKNOWN

    response = clinician_client.post(retry_url(record), follow=True)
    run_tasks()

    assert response.redirect_chain == [(detail_url(record), 303)]
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert len(corti_holds(corti)) == 1
    assert create_requests(corti) == 1
    flashed = [
        item.inner_html
        for item in parse(page(response)).find_all("li")
        if (item.attrs.get("class") or "").startswith("message ")
    ]
    assert escape(CHECKING) in flashed
    assert not any("Not created in Corti" in message for message in flashed)
    # The worker's search could not tell either: still checking.
    assert record.calls.last().result == CortiCall.Result.INCONCLUSIVE
    assert_checking_page(page(clinician_client.get(detail_url(record))), record)


def test_a_fresh_pending_record_waits_and_refreshes(corti, clinician_client, clinician):
    record = make_interaction(
        clinician,
        outcome=Outcome.PENDING,
        interaction_id=None,
        last_attempt_at=timezone.now(),
    )

    response = clinician_client.get(detail_url(record))

    html = page(response)
    assert response.status_code == 200
    assert "Waiting for Corti's answer" in html
    # Without JavaScript the page asks again (not counted as activity).
    refresh = parse(html).one("meta", http_equiv="refresh")
    assert re.fullmatch(r"\d+; url=[^\"]+poll=1", refresh.attrs["content"] or "")
    assert POLLING in html
    assert retry_buttons(html) == {}
    assert counts(corti) == {}
    assert queued("settle_interaction", record) == []
    record.refresh_from_db()
    assert record.outcome == Outcome.PENDING


def test_an_unknown_record_offers_to_check_corti_again(
    corti, clinician_client, clinician
):
    record = make_interaction(
        clinician,
        outcome=Outcome.UNKNOWN,
        interaction_id=None,
        error_code="timeout",
        error_message="No answer in time.",
    )
    # Lost an hour ago: a search that finds nothing now proves it.
    backdate_loss(record, 3600)
    set_faults(corti, {"kind": "403", "endpoint": "list"})

    response = clinician_client.get(detail_url(record))

    html = page(response)
    assert counts(corti) == {}
    assert_checking_page(html, record)
    # The page view queued a check (it was due); the worker runs it.
    assert len(queued("settle_interaction", record)) == 1
    run_tasks()
    html = page(clinician_client.get(detail_url(record)))
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert_checking_page(html, record)
    [lookup] = record.calls.all()
    assert lookup.result == CortiCall.Result.INCONCLUSIVE
    assert lookup.error_request_id
    assert f"<code>{lookup.error_request_id}</code>" in html

    # Checked again once Corti can be searched: it does not have it.
    clear_faults(corti)
    checked = clinician_client.post(retry_url(record), follow=True)

    assert checked.redirect_chain == [(detail_url(record), 303)]
    assert CHECKING in page(checked)
    run_tasks()
    record.refresh_from_db()
    assert record.outcome == Outcome.FAILED
    assert record.error_code == ErrorCode.TIMEOUT
    assert corti_holds(corti) == []
    assert create_requests(corti) == 0


def test_an_unknown_record_checked_within_the_window_stays_unknown(
    corti, clinician_client, clinician
):
    record = make_interaction(
        clinician,
        outcome=Outcome.UNKNOWN,
        interaction_id=None,
        error_code="timeout",
        answer_lost_at=timezone.now() - dt.timedelta(seconds=30),
    )

    clinician_client.post(retry_url(record))
    run_tasks()

    # Not found, but the lost create may still be under way in Corti.
    record.refresh_from_db()
    assert record.outcome == Outcome.UNKNOWN
    assert record.calls.get().result == CortiCall.Result.NOT_FOUND
    assert_checking_page(page(clinician_client.get(detail_url(record))), record)


def test_calls_table_lists_every_call_with_its_request_id(corti, clinician_client):
    record = failed_record(corti, clinician_client, kind="502")
    set_faults(
        corti, {"kind": "429", "endpoint": "create", "count": 1, "retry_after": 30}
    )
    clinician_client.post(retry_url(record))

    html = page(clinician_client.get(detail_url(record)))

    calls = list(record.calls.order_by("started_at", "id"))
    assert [(c.kind, c.trigger, c.result, c.error_status) for c in calls] == [
        ("create", "submit", "unknown", 502),
        ("lookup", "submit", "not_found", None),
        ("lookup", "worker", "not_found", None),
        ("lookup", "retry", "not_found", None),
        ("create", "retry", "failed", 429),
    ]
    rows = call_rows(html)
    assert [row[1:4] for row in rows] == [
        ["Create", "Form submitted", "clin"],
        ["Lookup", "Form submitted", "clin"],
        ["Lookup", "Background check", "system"],
        ["Lookup", "Retry", "clin"],
        ["Create", "Retry", "clin"],
    ]
    assert rows[0][4].startswith("Answer lost (502)")
    assert rows[4][4].startswith("Failed (429)")
    assert [row[5] for row in rows] == [
        calls[0].error_request_id,
        "none",
        "none",
        "none",
        calls[4].error_request_id,
    ]
    assert calls[0].error_request_id != calls[4].error_request_id


def test_a_corrected_submission_is_found_by_what_it_holds_now(corti, clinician_client):
    """The history's search follows a correction (found by review, issue 14):
    the old patient's name never lists the corrected record."""
    record = failed_record(corti, clinician_client, kind="429", retry_after=30)
    old_name = Interaction.objects.get(pk=record.pk).patient_name
    assert old_name
    html = page(clinician_client.get(form_address(record)))
    clinician_client.post(
        form_address(record),
        {**form_values(html), "patient_name": "Zelda Quist"},
        follow=True,
    )
    record.refresh_from_db()
    assert record.patient_name == "Zelda Quist"

    def found(q: str) -> list[uuid.UUID]:
        return listed(clinician_client.get("/interactions/", {"q": q}))

    assert found("quist") == [record.pk]
    assert found(old_name.split()[-1]) == []
    # The access trail keeps the correction, with the patient as corrected.
    from intake.models import AccessEntry

    [entry] = AccessEntry.objects.filter(action=AccessEntry.Action.CORRECTED)
    assert (entry.interaction_id, entry.user.username) == (record.pk, "clin")
