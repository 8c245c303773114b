"""Idle sign-out, in a real browser, with time moved instead of waited for.

A visible warning comes before the sign-out, with a countdown and a "Stay
signed in" action. When the time runs out the page goes to the sign-in page,
which says why. A session that ends while the intake form is being filled
loses nothing: after signing in again the clinician is back on that form with
what was typed, and nothing reached Corti without a signed-in user.

The timings are the real ones. Time passes on both sides of the wire: the
page's clock is Playwright's (installed before the page loads, then paused, so
a test moves it), and the server's is the session's own record of this
browser's last request, moved back by as much. The live server runs in this
process, on this database, so the `settings` fixture's overrides apply to it.
Every wait is bounded.
"""

from __future__ import annotations

import re
from importlib import import_module

import pytest
import requests
from django.conf import settings as django_settings
from playwright.sync_api import expect

from intake import sessions
from intake.models import Interaction
from tests.support.browser import PASSWORD, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

IDLE = 15 * 60  # seconds without a request before the sign-out
WARNING = 2 * 60  # seconds before it that the warning shows
DETAIL_URL = re.compile(r"/interactions/([0-9a-f-]{36})/$")
LOGIN_URL = re.compile(r"/accounts/login/\?next=")
SIGNED_OUT_IDLE = "You were signed out after 15 minutes without activity."
KEPT_ON_SIGN_IN = (
    "What you had typed on the intake form is kept: it comes back when you "
    "sign in again."
)
RESTORED = "What you had typed is back below; nothing was sent to Corti."
ANNOUNCED = (
    "You will be signed out in {} because of inactivity. "
    "Press any key to stay signed in."
)

TYPED = {
    "id_encounter_identifier": "ENC-IDLE-1",
    "id_encounter_title": "Follow-up after fall",
    "id_encounter_status": "completed",
    "id_encounter_type": "emergency",
    "id_encounter_started_at": "2026-01-15T14:00",
    "id_encounter_ended_at": "2026-01-15T14:45",
    "id_assigned_user_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    "id_patient_identifier": "PAT-IDLE-9",
    "id_patient_name": "Grace Hopper",
    "id_patient_gender": "other",
    "id_patient_birth_date": "1966-12-09",
    "id_patient_pronouns": "they/them",
}


@pytest.fixture
def idle(settings):
    settings.INTAKE_SESSION_IDLE_TIMEOUT = IDLE
    settings.INTAKE_SESSION_WARNING = WARNING
    return settings


# --- time ------------------------------------------------------------------


def sign_in_on_the_clock(page, site: str, **kwargs) -> None:
    """Sign in with Playwright's clock in the page (running, as time does)."""
    page.clock.install()
    sign_in(page, site, "nurse", **kwargs)


def pause(page) -> None:
    """From now on the page's clock moves only when the test moves it."""
    # A moment ahead: pausing in the page's past is refused.
    page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 1)


def server_idle_for(page, seconds: int) -> None:
    """The server sees this browser's last request (and sign-in) `seconds`
    earlier than it was: as if that long had passed since, without activity."""
    name = django_settings.SESSION_COOKIE_NAME
    key = next(c["value"] for c in page.context.cookies() if c["name"] == name)
    store = import_module(django_settings.SESSION_ENGINE).SessionStore(key)
    for moment in (sessions.LAST_SEEN, sessions.SIGNED_IN_AT):
        store[moment] -= seconds
    store.save()


def idle_for(page, seconds: int) -> None:
    """`seconds` pass without activity: for the server, then for the page,
    whose clock jumps and fires what fell due (once, as after a sleep)."""
    server_idle_for(page, seconds)
    page.clock.fast_forward(seconds * 1000)


def countdown_phrase(seconds: int) -> str:
    """The countdown as the warning writes it: "1:05 minutes", "1 second"."""
    minutes, rest = divmod(seconds, 60)
    if minutes:
        return f"{minutes}:{rest:02d} minutes"
    return f"{rest} second" if rest == 1 else f"{rest} seconds"


def countdown_seconds(text: str) -> int:
    match = re.fullmatch(r"(?:(\d+):(\d\d) minutes|(\d+) seconds?)", text)
    assert match, text
    minutes, rest, seconds = match.groups()
    return int(seconds) if seconds else int(minutes) * 60 + int(rest)


# --- helpers ---------------------------------------------------------------


def creates(corti) -> int:
    return corti.state()["counts"].get("create_requests", 0)


def type_form(page) -> str:
    """Fill every field as a clinician would; the form's submission key.

    Each field is left with Tab, so live validation posts it (activity).
    """
    for field_id, value in TYPED.items():
        field = page.locator(f"#{field_id}")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
        field.press("Tab")
    # The last live validation has come back: the idle clock restarted there.
    page.wait_for_load_state("networkidle")
    return page.locator("input[name=submission_key]").input_value()


def form_values(page) -> dict[str, str]:
    return {name: page.locator(f"#{name}").input_value() for name in TYPED}


def session_state(page, site: str) -> dict:
    """The server's view of this browser's session (asking is not activity)."""
    return page.request.get(
        f"{site}/accounts/session/", headers={"Accept": "application/json"}
    ).json()


def on_sign_in_page(page) -> None:
    """Wait until the browser has settled on the sign-in page (two requests
    may race to send it there; the later navigation replaces the earlier)."""
    page.get_by_role("heading", name="Sign in").wait_for(timeout=10_000)
    page.wait_for_load_state("networkidle", timeout=10_000)
    page.get_by_role("heading", name="Sign in").wait_for(timeout=10_000)
    assert LOGIN_URL.search(page.url)


def sign_in_here(page) -> None:
    """Sign in on the sign-in page the browser is on (keeping its ?next=)."""
    page.get_by_label("Username").fill("nurse")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(re.compile(r"/interactions/new/\?key="), timeout=10_000)


def assert_restored_and_unsent(page, corti, key: str) -> None:
    assert page.url.endswith(f"/interactions/new/?key={key}")
    assert RESTORED in " ".join(page.locator(".messages").all_inner_texts())
    assert form_values(page) == TYPED
    assert creates(corti) == 0
    assert Interaction.objects.count() == 0


def submit_and_expect_one(page, corti) -> None:
    page.get_by_role("button", name="Create interaction").click()
    page.wait_for_url(DETAIL_URL, timeout=10_000)
    assert creates(corti) == 1
    record = Interaction.objects.get()
    assert record.outcome == Interaction.Outcome.CREATED
    assert record.encounter_identifier == TYPED["id_encounter_identifier"]
    assert record.patient_name == TYPED["id_patient_name"]
    assert record.submitted_by.username == "nurse"


# --- the warning -----------------------------------------------------------


def warned(page, site: str) -> int:
    """Idle until the warning is due: it shows, announced, before the
    sign-out, counting down; the seconds it shows."""
    pause(page)
    idle_for(page, IDLE - WARNING)
    warning = page.locator("#idle-warning")
    warning.wait_for(state="visible", timeout=5_000)
    assert session_state(page, site)["signed_in"] is True
    assert "signed out" in warning.inner_text()
    countdown = page.locator("#idle-countdown")
    left = countdown_seconds(countdown.inner_text())
    # The server counted the second or so since the last request too.
    assert WARNING - 10 < left <= WARNING
    # Announced, not only shown: an alert carries it to screen readers.
    announced = page.locator(
        "#idle-warning[role=alertdialog], #idle-warning [role=alert]"
    ).filter(has_text="signed out")
    expect(announced).to_have_text(ANNOUNCED.format(countdown_phrase(left)))
    return left


def still_signed_in_past_the_warning(page, site: str) -> None:
    """Longer than the warning gave passes: the page stays, the session too."""
    idle_for(page, WARNING + 1)
    assert page.locator("#idle-warning").is_hidden()
    assert "/accounts/login/" not in page.url
    assert session_state(page, site)["signed_in"] is True


def test_a_warning_counts_down_first_and_stay_signed_in_keeps_the_session(
    page, site, corti, watch, browser_clinician, idle
):
    sign_in_on_the_clock(page, site)
    assert page.locator("#idle-warning").is_hidden()

    left = warned(page, site)
    countdown = page.locator("#idle-countdown")
    page.clock.run_for(1_000)
    expect(countdown).to_have_text(countdown_phrase(left - 1))
    page.clock.run_for((left - 1 - 5) * 1_000)
    expect(countdown).to_have_text("5 seconds")
    page.clock.run_for(4_000)
    expect(countdown).to_have_text("1 second")
    stay = page.get_by_role("button", name="Stay signed in")
    assert stay.is_visible()
    stay.focus()
    page.keyboard.press("Enter")

    page.locator("#idle-warning").wait_for(state="hidden", timeout=3_000)
    still_signed_in_past_the_warning(page, site)
    page.clock.resume()
    page.reload()
    assert page.locator("#intake-form").is_visible()
    watch.assert_clean()


def test_typing_on_while_warned_keeps_the_session_and_every_keystroke(
    page, site, corti, watch, browser_clinician, idle
):
    sign_in_on_the_clock(page, site)
    title = page.locator("#id_encounter_title")
    title.focus()
    page.keyboard.type("Knee")

    warned(page, site)
    page.keyboard.type(" pain")

    # The warning took no keystroke away: they are all in the field.
    page.locator("#idle-warning").wait_for(state="hidden", timeout=3_000)
    assert title.input_value() == "Knee pain"
    assert page.evaluate("document.activeElement.id") == "id_encounter_title"
    page.wait_for_load_state("networkidle")  # the "stay" has been answered
    still_signed_in_past_the_warning(page, site)
    watch.assert_clean()


def test_left_alone_the_page_goes_to_sign_in_and_says_why(
    page, site, corti, watch, browser_clinician, idle
):
    sign_in_on_the_clock(page, site, next_path="/interactions/")
    assert page.locator("#results").is_visible()

    warned(page, site)
    idle_for(page, WARNING + 1)
    page.wait_for_url(
        re.compile(r"/accounts/login/\?next=%2Finteractions%2F$"), timeout=10_000
    )

    notice = page.locator("main .notice").inner_text()
    assert SIGNED_OUT_IDLE in notice
    assert KEPT_ON_SIGN_IN not in notice
    assert session_state(page, site)["signed_in"] is False
    # Nothing of the list stays on an unattended screen.
    assert page.locator("#results").count() == 0
    watch.assert_clean()


# --- the form's typing survives ---------------------------------------------


def test_signed_out_while_filling_the_form_brings_the_typing_back_after_sign_in(
    page, site, corti, watch, browser_clinician, idle
):
    sign_in_on_the_clock(page, site)
    key = type_form(page)

    warned(page, site)
    idle_for(page, WARNING + 1)
    page.wait_for_url(LOGIN_URL, timeout=10_000)

    notice = page.locator("main .notice").inner_text()
    assert SIGNED_OUT_IDLE in notice
    assert KEPT_ON_SIGN_IN in notice
    assert creates(corti) == 0
    assert page.locator("#intake-form").count() == 0

    page.clock.resume()
    sign_in_here(page)

    assert_restored_and_unsent(page, corti, key)
    submit_and_expect_one(page, corti)
    watch.assert_clean()


def end_session_while_warned(page, site: str) -> str:
    """Type the form, idle until the warning shows, then let the server's
    session run out before the page notices (as when the page's timers were
    held back); the form's key."""
    sign_in_on_the_clock(page, site)
    key = type_form(page)
    warned(page, site)
    # The rest of the warning passes for the server only: its session is
    # over from now on, while the page still shows the warning.
    server_idle_for(page, WARNING + 1)
    assert page.locator("#idle-warning").is_visible()
    page.clock.resume()
    return key


def test_create_pressed_while_warned_after_the_session_ended_keeps_the_typing(
    page, site, corti, watch, browser_clinician, idle
):
    key = end_session_while_warned(page, site)
    stay_posts: list[str] = []
    page.on(
        "request",
        lambda r: (
            stay_posts.append(r.url)
            if r.method == "POST" and r.url.endswith("/accounts/session/")
            else None
        ),
    )

    # The warning is ignored: the clinician presses "Create interaction".
    page.get_by_role("button", name="Create interaction").click()

    on_sign_in_page(page)
    # The press sends the form, which counts as activity: no "stay" beside it
    # to race it.
    assert stay_posts == []
    assert KEPT_ON_SIGN_IN in page.locator("main .notice").inner_text()
    assert creates(corti) == 0
    assert Interaction.objects.count() == 0

    sign_in_here(page)

    assert_restored_and_unsent(page, corti, key)
    submit_and_expect_one(page, corti)
    watch.assert_clean()


def test_a_request_that_ended_the_session_first_does_not_lose_the_form(
    page, site, corti, watch, browser_clinician, idle
):
    # Another request from this browser (another tab, a "stay" from a key
    # press) reaches the server first and ends the idle session; the form,
    # posted with the same cookie a moment later, must still be kept.
    key = end_session_while_warned(page, site)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    token = page.locator("#idle-stay-form [name=csrfmiddlewaretoken]").input_value()
    first = requests.post(
        f"{site}/accounts/session/",
        data={"csrfmiddlewaretoken": token},
        headers={"Accept": "application/json", "Referer": f"{site}/"},
        cookies=cookies,
        timeout=5,
    )
    assert first.status_code == 200
    assert first.json() == {"signed_in": False}

    page.get_by_role("button", name="Create interaction").click()

    on_sign_in_page(page)
    assert KEPT_ON_SIGN_IN in page.locator("main .notice").inner_text()
    assert creates(corti) == 0
    sign_in_here(page)

    assert_restored_and_unsent(page, corti, key)
    submit_and_expect_one(page, corti)
    watch.assert_clean()


def test_a_key_pressed_while_warned_after_the_session_ended_logs_no_error(
    page, site, corti, watch, browser_clinician, idle
):
    end_session_while_warned(page, site)

    page.keyboard.press("Shift")

    on_sign_in_page(page)
    errors = watch.unexpected_console_errors()
    watch.expect_console_error(".")  # reported by the assertion below instead
    assert errors == []


def test_create_pressed_after_an_unnoticed_expiry_keeps_the_typing(
    page, site, corti, watch, browser_clinician, idle
):
    # The server's session runs out while the page's clock stands still, as
    # when a laptop slept through the warning and its timers.
    sign_in_on_the_clock(page, site)
    key = type_form(page)
    pause(page)
    server_idle_for(page, IDLE + 1)
    assert page.locator("#idle-warning").is_hidden()
    page.clock.resume()

    page.get_by_role("button", name="Create interaction").click()

    on_sign_in_page(page)
    assert KEPT_ON_SIGN_IN in page.locator("main .notice").inner_text()
    assert creates(corti) == 0
    assert Interaction.objects.count() == 0

    sign_in_here(page)

    assert_restored_and_unsent(page, corti, key)
    submit_and_expect_one(page, corti)
    watch.assert_clean()
