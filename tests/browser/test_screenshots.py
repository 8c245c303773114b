"""Screenshots of the main pages at desktop and phone widths, for the README.

Each test brings one page into a telling state with plausible, invented data
(no real people), saves docs/screenshots/<page>-<width>.png and checks that
the file is a PNG of the expected width written by this run. The README must
show them all, and everything it shows must exist.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    SCREENSHOTS,
    Env,
    open_more_details,
    screenshot,
    settled_at_once,
    sign_in,
    wait_for_htmx,
)
from tests.support.processes import BASE_DIR

WIDTHS = {"desktop": DESKTOP, "phone": PHONE}
README = BASE_DIR / "README.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("clinic_zone")


# --- invented, plausible data ---------------------------------------------

ENCOUNTERS = [
    {
        "encounter_identifier": "ENC-2026-0411",
        "encounter_status": "completed",
        "encounter_type": "first_consultation",
        "encounter_title": "Knee pain, first visit",
        "patient_identifier": "PAT-1042",
        "patient_name": "Jane Example",
        "patient_gender": "female",
        "patient_birth_date": dt.date(1984, 5, 12),
    },
    {
        "encounter_identifier": "ENC-2026-0412",
        "encounter_status": "completed",
        "encounter_type": "consultation",
        "encounter_title": "Follow-up: blood pressure",
        "patient_identifier": "PAT-2087",
        "patient_name": "Sam Placeholder",
        "patient_gender": "male",
    },
    {
        "encounter_identifier": "ENC-2026-0413",
        "encounter_status": "in-progress",
        "encounter_type": "emergency",
        "encounter_title": "Chest pain triage",
        "patient_identifier": "PAT-3310",
        "patient_name": "Alex Sample",
    },
    {
        "encounter_identifier": "ENC-2026-0414",
        "encounter_status": "planned",
        "encounter_type": "outpatient",
        "encounter_title": "Wound dressing change",
        "patient_identifier": "PAT-0451",
        "patient_name": "Robin Testperson",
        "patient_pronouns": "they/them",
    },
    {
        "encounter_identifier": "ENC-2026-0415",
        "encounter_status": "planned",
        "encounter_type": "inpatient",
        "encounter_title": "Ward round",
    },
]


def submit(
    env: Env,
    *,
    minutes_ago: int,
    user=None,
    fault: dict | None = None,
    key: uuid.UUID | None = None,
    **f,
):
    """A submission through the service, dated `minutes_ago` before now; `key`
    is its form's submission key (a new form's by default)."""
    from django.utils import timezone

    from intake.fields import InteractionDetails
    from intake.models import Interaction
    from intake.services.interactions import interaction_submit

    now = timezone.now().replace(second=0, microsecond=0)
    if fault:
        env.corti.set_faults(fault)
    record = interaction_submit(
        submission_key=key or uuid.uuid4(),
        submitted_by=user or env.nurse,
        details=InteractionDetails(
            encounter_started_at=now - dt.timedelta(minutes=minutes_ago + 20), **f
        ),
    ).record
    if fault:
        env.corti.set_faults()
    Interaction.objects.filter(pk=record.pk).update(
        created_at=now - dt.timedelta(minutes=minutes_ago)
    )
    return record


def seed_day(env: Env) -> None:
    """A morning's submissions, newest first in the list."""
    for i, fields in enumerate(ENCOUNTERS):
        user = env.chief if i == 2 else env.nurse
        submit(env, minutes_ago=25 + 40 * (len(ENCOUNTERS) - i), user=user, **fields)


def seed_failure(env: Env):
    settled_at_once(env)
    return submit(
        env,
        minutes_ago=5,
        fault={"kind": "503", "endpoint": "create", "count": 1},
        encounter_identifier="ENC-2026-0416",
        encounter_status="in-progress",
        encounter_type="consultation",
        encounter_title="Medication review",
        patient_identifier="PAT-5120",
        patient_name="Kim Fictional",
    )


def open_form(page: Page, env: Env) -> None:
    sign_in(page, env.site, "nurse")
    page.goto(f"{env.site}/interactions/new/")
    expect(page.get_by_role("heading", name="New interaction")).to_be_visible()


def fill_form(page: Page) -> None:
    page.get_by_label("Encounter identifier").fill("ENC-2026-0417")
    page.get_by_label("Encounter type").select_option("consultation")
    page.get_by_label("Encounter status").select_option("in-progress")
    page.get_by_label("Started at").fill("2026-03-02T10:15")
    page.get_by_label("Title").fill("Follow-up: knee pain")
    page.get_by_label("Patient identifier").fill("PAT-1042")
    page.get_by_label("Patient name").fill("Jane Example")
    page.get_by_label("Birth date").fill("12-05-1984")
    page.get_by_label("Gender").select_option("female")
    page.get_by_label("Pronouns").fill("she/her")
    open_more_details(page)
    page.get_by_label("Ended at").fill("2026-03-02T10:40")


def press_create(page: Page) -> None:
    wait_for_htmx(page)
    page.get_by_role("button", name="Create interaction").click()


# --- the pages --------------------------------------------------------------


def login(page: Page, env: Env) -> None:
    page.goto(f"{env.site}/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def form(page: Page, env: Env) -> None:
    open_form(page, env)
    wait_for_htmx(page)


def form_errors(page: Page, env: Env) -> None:
    open_form(page, env)
    page.get_by_label("Encounter identifier").fill("ENC-2026-0417")
    page.get_by_label("Encounter type").select_option("consultation")
    page.get_by_label("Started at").fill("2026-03-02T10:15")
    page.get_by_label("Patient name").fill("Jane Example")
    open_more_details(page)
    page.get_by_label("Ended at").fill("2026-03-02T09:30")
    press_create(page)
    expect(page.locator("#intake-form .alert-error")).to_contain_text(
        "Please correct the 3 fields marked below."
    )
    wait_for_htmx(page)


def failed(page: Page, env: Env) -> None:
    from intake.models import Interaction

    open_form(page, env)
    fill_form(page)
    settled_at_once(env)
    env.corti.set_faults({"kind": "503", "endpoint": "create", "count": 1})
    press_create(page)
    alert = page.locator("#intake-form .alert-error")
    expect(alert.get_by_role("heading", name="Not created in Corti")).to_be_visible()
    record = Interaction.objects.get(encounter_identifier="ENC-2026-0417")
    assert record.retryable
    expect(alert).to_contain_text(
        f"Corti request id, for support: {record.error_request_id}"
    )
    wait_for_htmx(page)


def unknown(page: Page, env: Env) -> None:
    """Corti's answer lost, and Corti could not be searched: nothing re-sent;
    the submission's page checks with Corti by itself."""
    open_form(page, env)
    fill_form(page)
    env.corti.set_faults(
        {"kind": "created-504", "endpoint": "create", "count": 1},
        {"kind": "503", "endpoint": "list"},
    )
    press_create(page)
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"))
    env.corti.set_faults()
    expect(page.get_by_role("heading", name="Checking with Corti…")).to_be_visible()
    expect(page.get_by_role("button", name="Check Corti now")).to_be_visible()
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    wait_for_htmx(page)


def reused(page: Page, env: Env) -> None:
    """A form another tab sent first: nothing sent, the typing in a new form."""
    open_form(page, env)
    key = page.locator("input[name=submission_key]").input_value()
    # The other tab, with the same form, sends another patient's encounter.
    submit(env, minutes_ago=1, key=uuid.UUID(key), **ENCOUNTERS[1])
    fill_form(page)
    press_create(page)
    expect(page.locator("#reused-notice")).to_contain_text(
        "This form was already used for ENC-2026-0412 (PAT-2087)."
    )
    expect(page).not_to_have_url(re.compile(re.escape(key)))
    wait_for_htmx(page)


def already_sent(page: Page, env: Env) -> None:
    """A sent form's address opened again: what was sent, read-only."""
    open_form(page, env)
    form_url = page.url
    fill_form(page)
    press_create(page)
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"))
    page.goto(form_url)
    expect(
        page.get_by_role("heading", name="This form was already sent")
    ).to_be_visible()
    expect(page.locator("#intake-form")).to_have_count(0)
    expect(page.locator("#start-new")).to_be_visible()


def detail(page: Page, env: Env) -> None:
    open_form(page, env)
    fill_form(page)
    press_create(page)
    page.wait_for_url(re.compile(r"/interactions/[0-9a-f-]{36}/$"))
    expect(page.get_by_text("Interaction created in Corti.")).to_be_visible()
    expect(page.locator("#websocket-url")).to_contain_text(
        "/audio-bridge/v2/interactions/"
    )
    expect(page.get_by_role("button", name="Copy URL")).to_be_visible()
    expect(page.get_by_role("heading", name="Calls to Corti")).to_be_visible()


def interaction_list(page: Page, env: Env) -> None:
    seed_day(env)
    # Everyone's: a colleague's submission is among them.
    sign_in(page, env.site, "nurse", next_path="/interactions/?by=all")
    expect(page.locator("#results tbody tr")).to_have_count(len(ENCOUNTERS))


def list_retry(page: Page, env: Env) -> None:
    seed_day(env)
    seed_failure(env)
    sign_in(page, env.site, "nurse", next_path="/interactions/?by=all")
    expect(page.locator("#results tbody tr")).to_have_count(len(ENCOUNTERS) + 1)
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_be_visible()


def idle_warning(page: Page, env: Env) -> None:
    env.settings.INTAKE_SESSION_IDLE_TIMEOUT = 10
    env.settings.INTAKE_SESSION_WARNING = 9
    open_form(page, env)
    warning = page.locator("#idle-warning")
    expect(warning).to_be_visible(timeout=5_000)
    expect(warning).to_contain_text("Still there?")
    expect(page.get_by_role("button", name="Stay signed in")).to_be_visible()


def locked_out(page: Page, env: Env) -> None:
    env.watch.expect_console_error(r"status of 429")
    page.goto(f"{env.site}/accounts/login/")
    paused = page.get_by_role("heading", name="Sign-in paused")
    for _ in range(env.settings.AXES_FAILURE_LIMIT + 1):
        page.get_by_label("Username").fill("nurse")
        page.get_by_label("Password").fill("not-" + PASSWORD)
        with page.expect_navigation():
            page.get_by_label("Password").press("Enter")
        if paused.count():
            break
    expect(paused).to_be_visible()


def admin(page: Page, env: Env) -> None:
    seed_day(env)
    seed_failure(env)
    sign_in(page, env.site, "chief", next_path="/admin/intake/interaction/")
    expect(page.locator("#result_list tbody tr")).to_have_count(len(ENCOUNTERS) + 1)


def detail_changes(page: Page, env: Env) -> None:
    """A created interaction ended here, then retitled in another tool and
    read back: what was sent beside what Corti holds, and the changes."""
    from intake.services.lifecycle import interaction_end, interaction_refresh
    from tests.support.corti import corti_item

    record = submit(env, minutes_ago=30, **ENCOUNTERS[0])
    interaction_end(record=record, user=env.nurse)
    corti_item(
        env.corti,
        "PATCH",
        record.interaction_id,
        {"encounter": {"title": "Follow-up: knee pain, right knee"}},
    )
    interaction_refresh(record=record)
    sign_in(page, env.site, "nurse", next_path=f"/interactions/{record.pk}/")
    expect(page.get_by_role("heading", name="Changes")).to_be_visible()


def my_day(page: Page, env: Env) -> None:
    seed_day(env)
    sign_in(page, env.site, "nurse", next_path="/my-day/")
    expect(page.get_by_role("heading", name="My day")).to_be_visible()
    expect(
        page.get_by_role("button", name=re.compile("^End the encounter"))
    ).not_to_have_count(0)


def _recorder_page(page: Page, env: Env, *, microphone: bool = True):
    record = submit(
        env, minutes_ago=5, **{**ENCOUNTERS[0], "encounter_status": "in-progress"}
    )
    if microphone:
        page.context.grant_permissions(["microphone"], origin=env.site)
    sign_in(page, env.site, "nurse", next_path=f"/interactions/{record.pk}/")
    expect(page.get_by_role("heading", name="Record the consultation")).to_be_visible()
    page.get_by_label(re.compile("patient")).check()
    page.get_by_label("Show while recording").select_option("facts")
    return record


def recording(page: Page, env: Env) -> None:
    _recorder_page(page, env)
    page.get_by_role("button", name="Start recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording\."), timeout=15_000
    )
    # A few sentences in, one still being heard, and facts beside them.
    expect(page.locator("#transcript li:not(.interim)")).to_have_count(
        2, timeout=15_000
    )
    expect(page.locator("#facts li")).not_to_have_count(0)
    page.locator("#recorder").scroll_into_view_if_needed()


def recording_ended(page: Page, env: Env) -> None:
    recording(page, env)
    page.get_by_role("button", name="End recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended"), timeout=15_000
    )
    # The page's list of recordings has it too.
    expect(page.locator("#recordings table")).to_contain_text("Ended")


def recording_refused(page: Page, env: Env) -> None:
    _recorder_page(page, env, microphone=False)
    page.get_by_role("button", name="Start recording").click()
    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^The microphone was refused")
    )


PAGES: dict[str, Callable[[Page, Env], None]] = {
    "login": login,
    "form": form,
    "form-errors": form_errors,
    "failed": failed,
    "unknown": unknown,
    "reused": reused,
    "already-sent": already_sent,
    "detail": detail,
    "detail-changes": detail_changes,
    "my-day": my_day,
    "recording": recording,
    "recording-ended": recording_ended,
    "recording-refused": recording_refused,
    "list": interaction_list,
    "list-retry": list_retry,
    "idle-warning": idle_warning,
    "locked-out": locked_out,
    "admin": admin,
}
SCREENSHOT_FILES = [f"{name}-{width}.png" for name in PAGES for width in WIDTHS]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path.name} has no IHDR chunk first"
    return struct.unpack(">II", head[16:24])


# It rewrites tracked files, so only `make screenshots` runs it; the two README
# checks below run in every `make test`.
@pytest.mark.screenshots
@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", list(PAGES))
def test_screenshot_is_taken_at_the_width(name, width, open_page, env):
    page = open_page(width)
    PAGES[name](page, env)
    target = SCREENSHOTS / f"{name}-{width}.png"
    target.unlink(missing_ok=True)
    started = time.time()

    path = screenshot(page, f"{name}-{width}")

    assert path == target
    assert path.is_file()
    assert path.stat().st_mtime >= started - 1, "not written by this run"
    size = png_size(path)
    viewport = WIDTHS[width]
    assert size[0] == viewport["width"], f"{path.name} is {size[0]} px wide"
    assert size[1] >= viewport["height"]


def readme_screenshots() -> list[str]:
    """The docs/screenshots/ images README.md shows, in order."""
    text = README.read_text(encoding="utf-8")
    return re.findall(r"\]\(docs/screenshots/([^)\s]+\.png)\)", text)


def test_every_screenshot_the_readme_shows_exists():
    shown = readme_screenshots()

    missing = [name for name in shown if not (SCREENSHOTS / name).is_file()]

    assert shown, "README.md shows no screenshot"
    assert missing == []


def test_readme_shows_every_screenshot_the_tests_take():
    shown = set(readme_screenshots())

    not_shown = [name for name in SCREENSHOT_FILES if name not in shown]

    assert not_shown == []
