"""Idle sign-out, its warning, the session's age cap, and the intake form's
typing kept across a sign-out.

A signed-in user idle for INTAKE_SESSION_IDLE_MINUTES, or signed in for longer
than INTAKE_SESSION_MAX_HOURS however busy, is signed out on their next
request. What they were typing on the intake form they had open is never sent
to Corti without a signed-in user: it is kept, and given back (once, to them
only, saying when they were signed out) on that form after they sign in again.
Nothing posted to the form later, or to another form, is kept.

Time is moved by setting the session's `intake_last_seen` back, or by patching
`intake.sessions.time.time`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from unittest import mock
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from intake.models import Interaction
from intake.sessions import (
    DRAFT,
    DRAFT_GRACE_SECONDS,
    LAST_SEEN,
    SIGNED_IN_AT,
    SIGNED_OUT,
    draft_take,
)
from tests.support.corti import create_requests
from tests.support.pages import HTMX, form_values, page, parse
from tests.support.processes import BASE_DIR

pytestmark = pytest.mark.django_db

NEW = "/interactions/new/"
VALIDATE = "/interactions/new/validate/"
LIST = "/interactions/"
LOGIN = "/accounts/login/"
SESSION = "/accounts/session/"
TIMEOUT = 15 * 60
IDLE_NOTICE = "You were signed out after 15 minutes without activity."
DRAFT_KEPT_NOTICE = "What you had typed on the intake form is kept"
RESTORED_NOTICE = "What you had typed is back below; nothing was sent to Corti."

# What the clinician had typed when the session ran out (the key is per test).
TYPED = {
    "encounter_identifier": "ENC-IDLE-7",
    "encounter_status": "in-progress",
    "encounter_type": "first_consultation",
    "encounter_title": "Shoulder pain after a fall",
    "encounter_started_at": "2026-01-15T10:00",
    "encounter_ended_at": "2026-01-15T10:45",
    "assigned_user_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "patient_identifier": "PAT-IDLE-3",
    "patient_name": "Grace Hopper",
    "patient_gender": "female",
    "patient_birth_date": "1956-12-09",
    "patient_pronouns": "she/her",
}


# --- helpers ---------------------------------------------------------------


def idle_for(client: Client, seconds: float) -> None:
    """Pretend the signed-in user of `client` did nothing for `seconds`."""
    session = client.session
    session[LAST_SEEN] = session.get(LAST_SEEN, time.time()) - seconds
    session.save()


def sign_in_notice(html: str) -> str:
    """The sign-in page's note on why the user is there ("" when none)."""
    notice = parse(html).find("p", class_="notice", role="status")
    return notice.inner_html if notice else ""


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def open_form(client: Client) -> tuple[str, str]:
    """Open a new intake form; its address and its submission key."""
    response = client.get(NEW, follow=True)
    assert response.status_code == 200
    key = form_values(page(response))["submission_key"]
    assert str(uuid.UUID(key)) == key
    return f"{NEW}?key={key}", key


def typed(key: str) -> dict[str, str]:
    return {"submission_key": key, **TYPED}


def sign_in(client: Client, username: str, password: str, next_url: str):
    """Sign in through the sign-in form, as a browser does."""
    return client.post(
        LOGIN, {"username": username, "password": password, "next": next_url}
    )


def at(moment: float):
    """Run what follows as if the clock said `moment` (epoch seconds)."""
    return mock.patch("intake.sessions.time.time", return_value=moment)


def login_redirect(next_url: str) -> str:
    return f"{LOGIN}?next={quote(next_url)}"


def kept_draft(user, key: uuid.UUID) -> dict:
    """A draft as the sign-out keeps it, in the session."""
    return {
        "user": user.pk,
        "key": str(key),
        "signed_out_at": time.time(),
        "why": "idle",
        "data": typed(str(key)),
    }


def assert_typing_restored(html: str, key: str) -> None:
    values = form_values(html)
    assert {name: values.get(name) for name in typed(key)} == typed(key)


def assert_typing_not_shown(html: str) -> None:
    values = form_values(html)
    for name in ("encounter_identifier", "encounter_title", "patient_name"):
        assert values.get(name) == "", name
    assert TYPED["patient_name"] not in html
    assert RESTORED_NOTICE not in html


# --- settings ----------------------------------------------------------------


def test_idle_timeout_is_15_minutes_with_a_two_minute_warning_by_default(settings):
    assert settings.INTAKE_SESSION_IDLE_TIMEOUT == 900
    assert settings.INTAKE_SESSION_WARNING == 120


def _settings_in_subprocess(**env_vars: str) -> subprocess.CompletedProcess:
    if (BASE_DIR / ".env").is_file() and "INTAKE_SESSION" in (
        BASE_DIR / ".env"
    ).read_text():
        pytest.skip(".env sets the session variables")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("INTAKE_", "DJANGO_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", **env_vars)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from django.conf import settings; "
            "print(json.dumps([settings.INTAKE_SESSION_IDLE_TIMEOUT, "
            "settings.INTAKE_SESSION_WARNING]))",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_timeouts_without_any_environment_variable():
    result = _settings_in_subprocess()

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [900, 120]


def test_idle_minutes_and_warning_seconds_come_from_the_environment():
    result = _settings_in_subprocess(
        INTAKE_SESSION_IDLE_MINUTES="30", INTAKE_SESSION_WARNING_SECONDS="300"
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [1800, 300]


@pytest.mark.parametrize(
    ("env_vars", "named"),
    [
        ({"INTAKE_SESSION_IDLE_MINUTES": "0.5"}, "INTAKE_SESSION_IDLE_MINUTES"),
        ({"INTAKE_SESSION_IDLE_MINUTES": "0"}, "INTAKE_SESSION_IDLE_MINUTES"),
        ({"INTAKE_SESSION_IDLE_MINUTES": "-5"}, "INTAKE_SESSION_IDLE_MINUTES"),
        (
            {"INTAKE_SESSION_WARNING_SECONDS": "900"},
            "INTAKE_SESSION_WARNING_SECONDS",
        ),
        (
            {
                "INTAKE_SESSION_IDLE_MINUTES": "2",
                "INTAKE_SESSION_WARNING_SECONDS": "150",
            },
            "INTAKE_SESSION_WARNING_SECONDS",
        ),
        (
            {"INTAKE_SESSION_WARNING_SECONDS": "0"},
            "INTAKE_SESSION_WARNING_SECONDS",
        ),
    ],
)
@pytest.mark.slow  # a Python process per case: ~2 s
def test_bad_idle_settings_refuse_to_start(env_vars, named):
    result = _settings_in_subprocess(**env_vars)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


# --- the page's warning ------------------------------------------------------


def test_signed_in_pages_carry_the_idle_timing_for_the_warning(clinician_client):
    html = page(clinician_client.get(LIST))

    assert 'data-idle-timeout="900"' in html
    assert 'data-idle-warning="120"' in html
    assert f'data-session-url="{SESSION}"' in html
    assert f'data-login-url="{LOGIN}"' in html
    assert f'data-draft-url="{VALIDATE}"' in html


def test_idle_timing_follows_the_settings(clinician_client, settings):
    settings.INTAKE_SESSION_IDLE_TIMEOUT = 600
    settings.INTAKE_SESSION_WARNING = 90

    html = page(clinician_client.get(LIST))

    assert 'data-idle-timeout="600"' in html
    assert 'data-idle-warning="90"' in html


def test_signed_in_pages_have_a_hidden_warning_with_stay_signed_in(clinician_client):
    html = page(clinician_client.get(LIST))

    warning = parse(html).one("div", id="idle-warning")
    dialog = warning.outer_html
    assert "hidden" in warning.attrs
    assert "signed out" in dialog
    assert f'<form id="idle-stay-form" method="post" action="{SESSION}">' in dialog
    assert 'name="csrfmiddlewaretoken"' in dialog
    assert ">Stay signed in</button>" in dialog


def test_sign_in_page_has_no_idle_warning_for_anonymous_visitors(client):
    html = page(client.get(LOGIN))

    assert "data-idle-timeout" not in html
    assert 'id="idle-warning"' not in html
    assert "Stay signed in" not in html


# --- asking and extending ----------------------------------------------------


def test_session_endpoint_reports_seconds_left(clinician_client):
    idle_for(clinician_client, 100)

    response = clinician_client.get(SESSION)

    assert response.status_code == 200
    state = response.json()
    assert state["signed_in"] is True
    assert state["warning"] == 120
    assert 795 <= state["expires_in"] <= 800


def test_asking_how_long_is_left_does_not_extend_the_session(clinician_client):
    idle_for(clinician_client, 100)
    before = clinician_client.session[LAST_SEEN]

    for _ in range(3):
        clinician_client.get(SESSION)

    assert clinician_client.session[LAST_SEEN] == before
    assert clinician_client.get(SESSION).json()["expires_in"] <= 800


def test_asking_does_not_keep_an_idle_session_alive(clinician_client):
    idle_for(clinician_client, TIMEOUT - 60)
    clinician_client.get(SESSION)
    idle_for(clinician_client, 61)

    response = clinician_client.get(LIST)

    assert response.status_code == 302
    assert response["Location"] == login_redirect(LIST)


def test_stay_signed_in_post_extends_the_session(clinician_client):
    idle_for(clinician_client, TIMEOUT - 60)

    response = clinician_client.post(SESSION)

    assert response.status_code == 200
    assert response.json()["signed_in"] is True
    assert response.json()["expires_in"] >= TIMEOUT - 2
    idle_for(clinician_client, TIMEOUT - 60)
    assert clinician_client.get(LIST).status_code == 200


def test_stay_signed_in_needs_the_csrf_token(clinician):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clinician)

    assert browser.post(SESSION).status_code == 403


def test_any_other_request_counts_as_activity(clinician_client):
    idle_for(clinician_client, TIMEOUT - 60)
    assert clinician_client.get(LIST).status_code == 200

    idle_for(clinician_client, TIMEOUT - 60)
    assert clinician_client.get(LIST).status_code == 200

    assert signed_in_user_id(clinician_client) is not None
    assert clinician_client.get(SESSION).json()["expires_in"] >= TIMEOUT - 2


def test_session_endpoint_for_anonymous_says_signed_out(client):
    assert client.get(SESSION).json() == {"signed_in": False}
    # "No" is an answer, not an error: the page's question logs nothing.
    response = client.post(SESSION)
    assert response.status_code == 200
    assert response.json() == {"signed_in": False}


def test_session_endpoint_after_the_timeout_says_signed_out(clinician_client):
    idle_for(clinician_client, TIMEOUT + 1)

    assert clinician_client.get(SESSION).json() == {"signed_in": False}
    assert signed_in_user_id(clinician_client) is None


def test_stay_signed_in_after_the_timeout_cannot_revive_the_session(
    clinician_client,
):
    idle_for(clinician_client, TIMEOUT + 1)

    response = clinician_client.post(SESSION)

    assert response.json() == {"signed_in": False}
    assert clinician_client.get(LIST).status_code == 302


# --- idle sign-out -----------------------------------------------------------


def test_idle_session_is_signed_out_on_next_request(clinician_client):
    idle_for(clinician_client, TIMEOUT + 1)

    response = clinician_client.get(LIST)

    assert response.status_code == 302
    assert response["Location"] == login_redirect(LIST)
    assert signed_in_user_id(clinician_client) is None


def test_session_used_within_the_timeout_stays_signed_in(clinician_client):
    idle_for(clinician_client, TIMEOUT - 5)

    assert clinician_client.get(LIST).status_code == 200
    assert signed_in_user_id(clinician_client) is not None


def test_idle_clock_follows_the_wall_clock(clinician_client):
    now = time.time()
    with mock.patch("intake.sessions.time.time", return_value=now + TIMEOUT - 30):
        assert clinician_client.get(LIST).status_code == 200
    with mock.patch("intake.sessions.time.time", return_value=now + 2 * TIMEOUT):
        response = clinician_client.get(LIST)

    assert response.status_code == 302
    assert signed_in_user_id(clinician_client) is None


def test_idle_timeout_setting_is_honoured(clinician_client, settings):
    settings.INTAKE_SESSION_IDLE_TIMEOUT = 120
    settings.INTAKE_SESSION_WARNING = 30
    idle_for(clinician_client, 121)

    assert clinician_client.get(LIST).status_code == 302


def test_sign_in_page_says_the_user_was_signed_out_for_inactivity(clinician_client):
    idle_for(clinician_client, TIMEOUT + 1)

    response = clinician_client.get(LIST, follow=True)

    assert response.redirect_chain == [(login_redirect(LIST), 302)]
    notice = sign_in_notice(page(response))
    assert IDLE_NOTICE in notice
    assert DRAFT_KEPT_NOTICE not in notice


def test_plain_sign_in_page_does_not_mention_inactivity(client):
    assert sign_in_notice(page(client.get(LOGIN))) == ""


def test_signing_in_again_after_idle_sign_out_returns_to_the_page(
    clinician_client,
):
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.get(LIST)

    response = sign_in(clinician_client, "clin", "pw-clinician-1", LIST)

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert clinician_client.get(LIST).status_code == 200
    assert SIGNED_OUT not in clinician_client.session
    assert sign_in_notice(page(clinician_client.get(LOGIN))) == ""


# --- the intake form's typing is kept ---------------------------------------


def test_form_posted_after_idle_timeout_sends_nothing_and_keeps_the_typing(
    corti, clinician_client
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)

    response = clinician_client.post(address, typed(key))

    assert response.status_code == 302
    assert response["Location"] == login_redirect(address)
    assert create_requests(corti) == 0
    assert Interaction.objects.count() == 0
    assert signed_in_user_id(clinician_client) is None

    login_page = page(clinician_client.get(response["Location"]))
    assert IDLE_NOTICE in sign_in_notice(login_page)
    assert DRAFT_KEPT_NOTICE in sign_in_notice(login_page)
    assert f'name="next" value="{address}"' in login_page

    signed_in = sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert signed_in.status_code == 302
    assert signed_in["Location"] == address

    restored = clinician_client.get(address)
    assert restored.status_code == 200
    assert_typing_restored(page(restored), key)
    assert RESTORED_NOTICE in page(restored)
    assert create_requests(corti) == 0
    assert Interaction.objects.count() == 0


def test_htmx_form_post_after_idle_timeout_sends_nothing_and_keeps_the_typing(
    corti, clinician_client
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)

    response = clinician_client.post(
        address,
        typed(key),
        headers={**HTMX, "HX-Current-URL": f"http://testserver{address}"},
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == login_redirect(address)
    assert b"<form" not in response.content
    assert create_requests(corti) == 0
    assert Interaction.objects.count() == 0

    signed_in = sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert signed_in["Location"] == address
    restored = clinician_client.get(address)
    assert_typing_restored(page(restored), key)
    assert RESTORED_NOTICE in page(restored)
    assert create_requests(corti) == 0


def test_live_validation_after_idle_timeout_keeps_the_typing(corti, clinician_client):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)

    response = clinician_client.post(
        VALIDATE,
        {**typed(key), "_field": "encounter_title"},
        headers={**HTMX, "HX-Current-URL": f"http://testserver{address}"},
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == login_redirect(address)
    assert create_requests(corti) == 0

    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    restored = clinician_client.get(address)
    assert_typing_restored(page(restored), key)
    assert RESTORED_NOTICE in page(restored)
    # The bookkeeping field of live validation is not part of the draft.
    assert "_field" not in form_values(page(restored))
    assert Interaction.objects.count() == 0


def test_live_validation_after_idle_timeout_leads_back_to_the_form_not_itself(
    corti, clinician_client
):
    """Without HX-Current-URL, the form's own address is still where to return."""
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)

    response = clinician_client.post(VALIDATE, typed(key), headers=HTMX)

    assert response["HX-Redirect"] == login_redirect(address)
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert_typing_restored(page(clinician_client.get(address)), key)


def test_signed_out_warning_keeps_the_typing_through_live_validation(
    corti, clinician_client
):
    """The page's "Sign in again": the session was already ended by asking."""
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    assert clinician_client.get(SESSION).json() == {"signed_in": False}

    response = clinician_client.post(
        VALIDATE,
        typed(key),
        headers={**HTMX, "HX-Current-URL": f"http://testserver{address}"},
    )

    assert response["HX-Redirect"] == login_redirect(address)
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert_typing_restored(page(clinician_client.get(address)), key)
    assert create_requests(corti) == 0


def test_form_posted_on_a_later_request_after_idle_sign_out_keeps_the_typing(
    corti, clinician_client
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.get(LIST)

    response = clinician_client.post(address, typed(key))

    assert response["Location"] == login_redirect(address)
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert_typing_restored(page(clinician_client.get(address)), key)
    assert create_requests(corti) == 0


def test_restored_form_submitted_creates_exactly_one_interaction(
    corti, clinician_client, clinician
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    restored = form_values(page(clinician_client.get(address)))

    response = clinician_client.post(address, restored)

    assert response.status_code == 303
    record = Interaction.objects.get()
    assert str(record.submission_key) == key
    assert record.submitted_by == clinician
    assert record.outcome == Interaction.Outcome.CREATED
    assert record.patient_name == TYPED["patient_name"]
    assert corti.state()["counts"]["created"] == 1
    assert create_requests(corti) == 1


def test_draft_is_given_back_only_once(corti, clinician_client):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert_typing_restored(page(clinician_client.get(address)), key)

    again = clinician_client.get(address)

    assert again.status_code == 200
    assert_typing_not_shown(page(again))
    assert DRAFT not in clinician_client.session


def test_another_user_signing_in_does_not_get_the_draft(
    corti, clinician_client, other_clinician
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))
    assert DRAFT in clinician_client.session

    signed_in = sign_in(clinician_client, "clin2", "pw-clinician-2", address)

    assert signed_in.status_code == 302
    assert signed_in_user_id(clinician_client) == str(other_clinician.pk)
    assert DRAFT not in clinician_client.session
    response = clinician_client.get(address)
    assert response.status_code == 200
    assert_typing_not_shown(page(response))
    assert create_requests(corti) == 0


def test_draft_dropped_for_another_user_is_gone_for_its_author_too(
    corti, clinician_client, other_clinician
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))
    sign_in(clinician_client, "clin2", "pw-clinician-2", address)
    clinician_client.post("/accounts/logout/")

    sign_in(clinician_client, "clin", "pw-clinician-1", address)

    assert_typing_not_shown(page(clinician_client.get(address)))


def test_draft_is_not_shown_to_another_user_even_if_signed_in_another_way(
    corti, clinician_client, other_clinician
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))

    clinician_client.force_login(other_clinician)

    assert_typing_not_shown(page(clinician_client.get(address)))
    assert DRAFT not in clinician_client.session


def test_draft_is_never_handed_to_another_signed_in_user(
    rf, clinician, other_clinician
):
    """draft_take checks the user itself, whatever the sign-in did."""
    key = uuid.uuid4()
    request = rf.get(f"{NEW}?key={key}")
    request.session = SessionStore()
    request.session[DRAFT] = kept_draft(clinician, key)
    request.user = other_clinician

    assert draft_take(request, key=key) is None
    assert DRAFT not in request.session
    request.user = clinician
    assert draft_take(request, key=key) is None


def test_draft_is_handed_only_to_its_author_and_only_for_its_form(rf, clinician):
    key = uuid.uuid4()
    request = rf.get(f"{NEW}?key={key}")
    request.session = SessionStore()
    request.session[DRAFT] = kept_draft(clinician, key)
    request.user = clinician

    assert draft_take(request, key=uuid.uuid4()) is None
    assert draft_take(request, key=key) == typed(str(key))
    assert draft_take(request, key=key) is None


def test_a_draft_kept_on_earlier_terms_is_not_handed_out(rf, clinician):
    """One kept before drafts were tied to a form and a moment: its origin is
    not known, so it is dropped, not shown."""
    key = uuid.uuid4()
    request = rf.get(f"{NEW}?key={key}")
    request.session = SessionStore()
    request.session[DRAFT] = {
        "user": clinician.pk,
        "key": str(key),
        "data": typed(str(key)),
    }
    request.user = clinician

    assert draft_take(request, key=key) is None
    assert DRAFT not in request.session


def test_form_post_without_a_previously_signed_in_user_keeps_nothing(
    corti, client, clinician
):
    key = str(uuid.uuid4())
    address = f"{NEW}?key={key}"

    response = client.post(address, typed(key))

    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=")
    assert DRAFT not in client.session
    assert DRAFT_KEPT_NOTICE not in page(client.get(response["Location"]))
    sign_in(client, "clin", "pw-clinician-1", address)
    assert_typing_not_shown(page(client.get(address)))
    assert create_requests(corti) == 0
    assert Interaction.objects.count() == 0


def test_htmx_post_without_a_previously_signed_in_user_keeps_nothing(
    corti, client, clinician
):
    key = str(uuid.uuid4())

    response = client.post(VALIDATE, typed(key), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(f"{LOGIN}?next=")
    assert DRAFT not in client.session
    assert create_requests(corti) == 0


def test_user_who_signed_out_themselves_leaves_no_draft_behind(corti, clinician_client):
    address, key = open_form(clinician_client)
    clinician_client.post("/accounts/logout/")

    clinician_client.post(address, typed(key))

    assert DRAFT not in clinician_client.session
    assert create_requests(corti) == 0


def test_a_mistyped_password_on_the_way_back_keeps_the_draft(corti, clinician_client):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))

    refused = sign_in(clinician_client, "clin", "not-the-password", address)
    assert refused.status_code == 200
    assert f'name="next" value="{address}"' in page(refused)
    assert DRAFT_KEPT_NOTICE in sign_in_notice(page(refused))
    signed_in = sign_in(clinician_client, "clin", "pw-clinician-1", address)

    assert signed_in["Location"] == address
    assert_typing_restored(page(clinician_client.get(address)), key)


def test_signing_in_without_a_next_address_still_leads_back_to_the_kept_form(
    corti, clinician_client
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))

    assert DRAFT_KEPT_NOTICE in sign_in_notice(page(clinician_client.get(LOGIN)))
    signed_in = sign_in(clinician_client, "clin", "pw-clinician-1", "")
    response = clinician_client.get(signed_in["Location"], follow=True)

    assert_typing_restored(page(response), key)


def test_a_form_posted_with_the_cookie_of_a_session_just_ended_is_still_kept(
    corti, clinician_client
):
    # Another request (a "stay" from a key press, another tab) ended the idle
    # session a moment before the form, sent with the same cookie, arrived.
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    cookie = clinician_client.cookies["sessionid"].value
    assert clinician_client.post(SESSION).json() == {"signed_in": False}
    clinician_client.cookies["sessionid"] = cookie

    response = clinician_client.post(address, typed(key))

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={quote(address, safe='/')}"
    assert corti.state()["counts"].get("create_requests", 0) == 0
    signed_in = sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert signed_in["Location"] == address
    assert_typing_restored(page(clinician_client.get(address)), key)


# --- the session's age cap ---------------------------------------------------
CAP = 10 * 60
CAP_NOTICE = (
    "You were signed out: a session lasts at most 10 minutes from signing in, "
    "however busy. Sign in again to go on."
)


@pytest.fixture
def short_cap(settings):
    settings.SESSION_COOKIE_AGE = CAP
    return settings


def test_a_session_lasts_at_most_12_hours_by_default(settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600


def test_a_busy_session_still_ends_at_its_cap(clinician_client, short_cap):
    signed_in = clinician_client.session[SIGNED_IN_AT]
    # A page every minute and "Stay signed in": never idle.
    for minute in range(1, 11):
        with at(signed_in + minute * 60 - 1):
            assert clinician_client.get(LIST).status_code == 200
            assert clinician_client.post(SESSION).json()["signed_in"] is True

    with at(signed_in + CAP + 1):
        response = clinician_client.get(LIST)

    assert response.status_code == 302
    assert response["Location"] == login_redirect(LIST)
    assert signed_in_user_id(clinician_client) is None
    notice = sign_in_notice(page(clinician_client.get(response["Location"])))
    assert notice == CAP_NOTICE


def test_asking_how_long_is_left_past_the_cap_ends_the_session(
    clinician_client, short_cap
):
    """The page's own question signs out too, so it leaves for sign-in."""
    signed_in = clinician_client.session[SIGNED_IN_AT]

    with at(signed_in + CAP + 1):
        state = clinician_client.get(SESSION).json()

    assert state == {"signed_in": False}
    assert signed_in_user_id(clinician_client) is None


def test_the_cap_counts_from_signing_in_again(clinician_client, short_cap):
    again = clinician_client.session[SIGNED_IN_AT] + CAP + 1
    with at(again):
        assert clinician_client.get(LIST).status_code == 302
        signed_in = sign_in(clinician_client, "clin", "pw-clinician-1", LIST)
        assert signed_in["Location"] == LIST

    with at(again + CAP - 60):
        assert clinician_client.get(LIST).status_code == 200
    with at(again + CAP + 1):
        assert clinician_client.get(LIST).status_code == 302


def test_a_session_signed_in_before_the_cap_counts_from_its_next_request(
    clinician_client, short_cap
):
    session = clinician_client.session
    del session[SIGNED_IN_AT]
    session.save()
    first = time.time()

    with at(first):
        assert clinician_client.get(LIST).status_code == 200
    with at(first + CAP - 1):
        assert clinician_client.get(LIST).status_code == 200
    with at(first + CAP + 1):
        assert clinician_client.get(LIST).status_code == 302


def test_a_form_posted_at_the_cap_keeps_the_typing_and_says_why(
    corti, clinician_client, short_cap
):
    address, key = open_form(clinician_client)
    ended = clinician_client.session[SIGNED_IN_AT] + CAP + 1

    with at(ended):
        response = clinician_client.post(address, typed(key))
        notice = sign_in_notice(page(clinician_client.get(response["Location"])))
        sign_in(clinician_client, "clin", "pw-clinician-1", address)
        restored = page(clinician_client.get(address))

    assert response["Location"] == login_redirect(address)
    assert CAP_NOTICE in notice
    assert DRAFT_KEPT_NOTICE in notice
    assert IDLE_NOTICE not in notice
    assert_typing_restored(restored, key)
    # Signed out as of when the cap was reached, not when the post came.
    assert f"{clock(ended - 1)}: a session lasts at most 10 minutes. " in restored
    assert RESTORED_NOTICE in restored
    assert "without activity" not in restored
    assert create_requests(corti) == 0


# --- nothing planted: only the form the user had open, as they were signed out


# Someone else at the browser, typing another patient into the form's address.
PLANTED = {
    **TYPED,
    "patient_name": "Mallory Planted",
    "patient_identifier": "PAT-PLANTED-1",
    "encounter_title": "Not what the clinician typed",
}


def planted(key: str) -> dict[str, str]:
    return {"submission_key": key, **PLANTED}


def clock(moment: float, zone: str = "UTC") -> str:
    """The moment as every page shows one: date, time and the zone's name."""
    return dt.datetime.fromtimestamp(moment, ZoneInfo(zone)).strftime(
        "%Y-%m-%d %H:%M %Z"
    )


def signed_out_and_left(client: Client) -> None:
    """The idle clock runs out while the page is open; the page notices (and,
    without a form, posts nothing). The clinician has walked away."""
    idle_for(client, TIMEOUT + 1)
    assert client.get(SESSION).json() == {"signed_in": False}


def assert_nothing_planted(html: str) -> None:
    assert PLANTED["patient_name"] not in html
    assert PLANTED["patient_identifier"] not in html
    assert RESTORED_NOTICE not in html


def test_a_form_posted_long_after_the_sign_out_is_not_kept(corti, clinician_client):
    address, key = open_form(clinician_client)
    signed_out_and_left(clinician_client)

    with at(time.time() + DRAFT_GRACE_SECONDS + 1):
        response = clinician_client.post(address, planted(key))

    assert response.status_code == 302
    assert response["Location"] == login_redirect(address)
    assert DRAFT not in clinician_client.session
    notice = sign_in_notice(page(clinician_client.get(response["Location"])))
    assert DRAFT_KEPT_NOTICE not in notice
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    shown = clinician_client.get(address)
    assert shown.status_code == 200
    assert_nothing_planted(page(shown))
    assert form_values(page(shown))["patient_name"] == ""
    assert create_requests(corti) == 0
    assert Interaction.objects.count() == 0


def test_a_later_post_does_not_replace_what_the_user_typed(corti, clinician_client):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))

    with at(time.time() + DRAFT_GRACE_SECONDS + 1):
        clinician_client.post(address, planted(key))

    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    restored = page(clinician_client.get(address))
    assert_typing_restored(restored, key)
    assert PLANTED["patient_name"] not in restored
    assert PLANTED["patient_identifier"] not in restored
    assert create_requests(corti) == 0


def test_a_form_the_user_did_not_have_open_is_not_kept(corti, clinician_client):
    open_form(clinician_client)
    signed_out_and_left(clinician_client)
    other_key = str(uuid.uuid4())
    other_address = f"{NEW}?key={other_key}"

    response = clinician_client.post(other_address, planted(other_key))

    assert response["Location"] == login_redirect(other_address)
    assert DRAFT not in clinician_client.session
    sign_in(clinician_client, "clin", "pw-clinician-1", other_address)
    assert_nothing_planted(page(clinician_client.get(other_address)))
    assert_nothing_planted(page(clinician_client.get(NEW, follow=True)))
    assert create_requests(corti) == 0


def test_nothing_is_kept_when_no_form_was_open(corti, clinician_client):
    assert clinician_client.get(LIST).status_code == 200
    signed_out_and_left(clinician_client)
    key = str(uuid.uuid4())

    clinician_client.post(f"{NEW}?key={key}", planted(key))
    clinician_client.post(VALIDATE, planted(key), headers=HTMX)

    assert DRAFT not in clinician_client.session
    sign_in(clinician_client, "clin", "pw-clinician-1", "")
    assert_nothing_planted(page(clinician_client.get(NEW, follow=True)))


def test_a_post_from_another_browser_is_not_kept_for_the_user(corti, clinician_client):
    address, key = open_form(clinician_client)
    signed_out_and_left(clinician_client)
    stranger = Client()

    response = stranger.post(address, planted(key))

    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=")
    assert DRAFT not in stranger.session
    assert DRAFT not in clinician_client.session
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert_nothing_planted(page(clinician_client.get(address)))
    assert create_requests(corti) == 0


def test_the_form_last_typed_in_is_the_one_kept(corti, clinician_client):
    first_address, first_key = open_form(clinician_client)
    second_address, second_key = open_form(clinician_client)  # another tab
    # Back in the first tab, typing (live validation posts the form).
    clinician_client.post(
        VALIDATE, {**typed(first_key), "_field": "encounter_title"}, headers=HTMX
    )
    idle_for(clinician_client, TIMEOUT + 1)

    clinician_client.post(second_address, planted(second_key))
    assert DRAFT not in clinician_client.session
    response = clinician_client.post(first_address, typed(first_key))

    assert response["Location"] == login_redirect(first_address)
    sign_in(clinician_client, "clin", "pw-clinician-1", first_address)
    assert_typing_restored(page(clinician_client.get(first_address)), first_key)


def test_a_form_posted_within_the_grace_after_the_sign_out_is_kept(
    corti, clinician_client
):
    """A tab in the background learns late that the session is over."""
    address, key = open_form(clinician_client)
    signed_out_and_left(clinician_client)

    with at(time.time() + DRAFT_GRACE_SECONDS - 5):
        response = clinician_client.post(address, typed(key))

    assert response["Location"] == login_redirect(address)
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    assert_typing_restored(page(clinician_client.get(address)), key)


def test_the_restored_form_says_when_its_typist_was_signed_out(
    corti, clinician_client, settings
):
    settings.TIME_ZONE = "Pacific/Chatham"  # +12:45 or +13:45: no UTC look-alike
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    moment = time.time()
    # Signed out as of when the session ran out, a moment before the post.
    ran_out = clinician_client.session[LAST_SEEN] + TIMEOUT

    with at(moment):
        clinician_client.post(address, typed(key))
    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    html = page(clinician_client.get(address))

    assert_typing_restored(html, key)
    assert (
        f"You were signed out at {clock(ran_out, 'Pacific/Chatham')} after 15 "
        f"minutes without activity. {RESTORED_NOTICE}"
    ) in html


def test_a_draft_cannot_be_planted_by_whoever_next_uses_the_browser(
    corti, clinician_client
):
    """Idle for an hour; the next person's request signs the user out and
    then posts the form: the sign-out counts from when the session ran out,
    so that post is long past the grace."""
    address, key = open_form(clinician_client)
    idle_for(clinician_client, 3600)
    clinician_client.get("/interactions/")  # anyone's request signs them out

    planted = {**typed(key), "patient_name": "Planted Patient"}
    assert clinician_client.post(address, planted).status_code == 302

    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    html = page(clinician_client.get(address))
    assert "Planted Patient" not in html
    assert RESTORED_NOTICE not in html


def test_a_later_post_never_replaces_the_draft_the_page_handed_over(
    corti, clinician_client
):
    address, key = open_form(clinician_client)
    idle_for(clinician_client, TIMEOUT + 1)
    clinician_client.post(address, typed(key))  # the page's own, as it ended
    clinician_client.post(address, {**typed(key), "patient_name": "Planted Patient"})

    sign_in(clinician_client, "clin", "pw-clinician-1", address)
    html = page(clinician_client.get(address))
    assert_typing_restored(html, key)
    assert "Planted Patient" not in html
