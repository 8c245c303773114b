"""Recording from the interaction's page in Chromium with its fake microphone
(issue 16): the consent gate, a recording driven by the keyboard alone, the
transcript and facts as they arrive, pause and resume, the end, a socket
dropped mid-recording, a refused microphone and refused settings; axe in
each state. What reached Corti is read from the simulator's own count."""

from __future__ import annotations

import contextlib
import itertools
import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from intake.models import AccessEntry, Interaction, Recording
from tests.support.browser import (
    DESKTOP,
    axe_violations,
    new_context,
    signed_in,
    tab_to_named,
)
from tests.support.corti import fault
from tests.support.records import submit

pytestmark = pytest.mark.usefixtures("clinic_zone")


@pytest.fixture
def mic_context(playwright_browser, env):
    """A desktop context whose user allowed the microphone for the site."""
    ctx = new_context(playwright_browser, viewport=DESKTOP, watch=env.watch)
    ctx.grant_permissions(["microphone"], origin=env.site)
    yield ctx
    ctx.close()
    env.watch.assert_clean()


@pytest.fixture
def no_mic_context(playwright_browser, env):
    """A context whose user refused the microphone (never granted)."""
    ctx = new_context(playwright_browser, viewport=DESKTOP, watch=env.watch)
    yield ctx
    ctx.close()
    env.watch.assert_clean()


def created(env) -> Interaction:
    record = submit(env.nurse).record
    assert record.is_created
    return record


def opened(context, env, record, *, own_clock: bool = False):
    """The interaction's page for its submitter; with `own_clock`, on a clock
    the test moves (page.clock), so a heartbeat need not be waited for."""
    page = context.new_page()
    if own_clock:
        page.clock.install()
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/{record.pk}/")
    expect(page.get_by_role("heading", name="Record the consultation")).to_be_visible()
    return page


def status(page) -> str:
    return page.locator("#recorder-state").inner_text()


def assert_accessible(page) -> None:
    found = axe_violations(page)
    assert not found, found


def streams_of(env, record) -> dict:
    return env.corti.streams().get(str(record.interaction_id), {})


def closed(record, timeout: float = 5.0) -> Recording:
    """The record's recording once the page's report closed it (the report
    is sent as the page says so, not before)."""
    deadline = time.monotonic() + timeout
    while True:
        kept = Recording.objects.get(interaction=record)
        if not kept.is_open:
            return kept
        assert time.monotonic() < deadline, f"still {kept.state} after {timeout} s"
        time.sleep(0.1)


def focused_text(page) -> str:
    return page.evaluate("document.activeElement.innerText.trim()")


def test_record_with_the_keyboard_only(mic_context, env):
    record = created(env)
    page = opened(mic_context, env, record)
    assert_accessible(page)

    # The consent first: Start without it says so beside the checkbox.
    tab_to_named(page, "Start recording")
    page.keyboard.press("Enter")
    consent_error = page.locator("#recording-consent-errors")
    expect(consent_error).to_have_text(
        "Confirm that the patient agreed before recording."
    )
    assert page.evaluate("document.activeElement.id") == "recording-consent"
    assert not Recording.objects.exists()
    assert_accessible(page)

    page.keyboard.press("Space")  # the consent box has focus
    tab_to_named(page, "Show while recording")
    page.keyboard.press("ArrowDown")  # Transcript and facts
    tab_to_named(page, "Start recording")
    start_pressed = time.monotonic()
    page.keyboard.press("Enter")

    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording\."), timeout=15_000
    )
    # The page's list of recordings has it, under way, without a reload.
    recordings = page.locator("#recordings table")
    expect(recordings).to_contain_text("Recording")
    # Focus moved to Pause, which the keyboard presses next.
    assert focused_text(page) == "Pause"
    expect(page.locator("#recorder-device-name")).not_to_be_empty()
    started = time.monotonic()
    # Final segments, each with its speaker and time, and facts beside them.
    expect(page.locator("#transcript li:not(.interim)").first).to_be_visible(
        timeout=10_000
    )
    expect(page.locator("#facts li").first).to_be_visible(timeout=5_000)
    first = page.locator("#transcript li").first
    expect(first.locator(".speaker")).to_have_text(re.compile(r"^Speaker \d$"))
    expect(first.locator(".when")).to_have_text(re.compile("^0:00\u20130:0\\d$"))
    level = page.evaluate("document.getElementById('recorder-level').value")
    assert level > 0, "the level meter shows the fake microphone's beep"
    assert_accessible(page)
    time.sleep(max(0.0, 5.0 - (time.monotonic() - started)))

    pause_pressed = time.monotonic()
    page.keyboard.press("Enter")  # Pause
    expect(page.locator("#recorder-state")).to_have_text(re.compile("^Paused"))
    paused_seen = time.monotonic()
    assert focused_text(page) == "Resume"
    assert_accessible(page)
    # Slices recorded before the pause may still be on their way (a loaded
    # machine): count from a moment after it.
    time.sleep(0.5)
    sent_when_paused = streams_of(env, record)["audio_bytes"]
    time.sleep(1.5)
    assert streams_of(env, record)["audio_bytes"] - sent_when_paused < 2_000
    resume_pressed = time.monotonic()
    page.keyboard.press("Enter")  # Resume
    expect(page.locator("#recorder-state")).to_have_text(re.compile(r"^Recording\."))
    resumed_seen = time.monotonic()
    time.sleep(1.0)
    tab_to_named(page, "End recording")
    end_pressed = time.monotonic()
    page.keyboard.press("Enter")

    ended = re.compile(r"^Recording ended: (\d+):(\d\d) recorded")
    expect(page.locator("#recorder-state")).to_have_text(ended, timeout=15_000)
    ended_seen = time.monotonic()
    # How long it recorded, pause excluded, bounded by what this test saw
    # rather than by how fast axe, the waits and the Tabs ran meanwhile (on a
    # loaded machine they alone can take seconds): at least from "Recording."
    # seen to Pause pressed plus from resumed to End pressed, at most from
    # Start pressed to "Paused" seen plus from Resume pressed to ended.
    least = (pause_pressed - started) + (end_pressed - resumed_seen)
    most = (paused_seen - start_pressed) + (ended_seen - resume_pressed)
    assert least >= 6.0  # 5 s, then 1 s after resuming
    minutes, seconds = ended.match(status(page)).groups()
    assert round(least) - 1 <= int(minutes) * 60 + int(seconds) <= round(most) + 1
    assert focused_text(page) == "Start recording"
    # The list says so too, without a reload, and the swap left focus alone.
    expect(recordings.locator("tbody tr")).to_have_count(1)
    expect(recordings).to_contain_text("Ended")
    expect(recordings).to_contain_text(re.compile(r"\b\d+ s\b"))
    listed = int(re.search(r"\b(\d+) s\b", recordings.inner_text())[1])
    assert round(least) - 1 <= listed <= round(most) + 1
    assert focused_text(page) == "Start recording"
    assert_accessible(page)

    stream = streams_of(env, record)
    [socket] = stream["sockets"]
    assert socket["valid_webm"] and socket["codec"] == "A_OPUS"
    assert socket["ended"] is True
    assert socket["mode"] == "facts"
    kept = closed(record)
    assert kept.state == "ended" and kept.failure == ""
    # About the length recorded (pause excluded), as Corti counted it.
    assert least - 1.0 <= kept.seconds_recorded <= most + 1.0
    assert abs(socket["audio_ms"] / 1000 - kept.seconds_recorded) < 1.0
    assert kept.started_by == env.nurse and kept.consent_at is not None
    # The page was not left behind: its list of recordings has this one.
    page.reload()
    expect(page.get_by_role("heading", name="Recordings")).to_be_visible()


def test_a_dropped_socket_reconnects_and_loses_nothing_buffered(mic_context, env):
    record = created(env)
    env.corti.set_faults(fault("drop", "stream", delay=2.0, count=1))
    page = opened(mic_context, env, record)
    press_start(page)
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording\."), timeout=15_000
    )

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^Reconnected to Corti"), timeout=20_000
    )
    time.sleep(3.0)
    page.get_by_role("button", name="End recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended"), timeout=15_000
    )

    stream = streams_of(env, record)
    assert stream["connections"] == 2
    assert [s["valid_webm"] for s in stream["sockets"]] == [True, True]
    assert stream["sockets"][1]["ended"] is True
    kept = closed(record)
    assert (kept.state, kept.reconnects, kept.tokens_issued) == ("ended", 1, 2)
    # At most the one slice in flight when the socket dropped (a new socket
    # needs a whole stream of its own), and it is counted.
    assert kept.seconds_lost <= 0.5
    # What Corti got over both sockets is what was recorded, less at most the
    # one slice in flight when the first socket dropped.
    assert abs(stream["audio_ms"] / 1000 - kept.seconds_recorded) < 1.0
    purposes = [
        e.detail["purpose"]
        for e in AccessEntry.objects.filter(
            action=AccessEntry.Action.STREAM_TOKEN, interaction=record
        ).order_by("at", "id")
    ]
    assert purposes == ["record", "reconnect"]


def test_a_refused_microphone_says_so_and_keeps_nothing(no_mic_context, env):
    record = created(env)
    page = opened(no_mic_context, env, record)
    press_start(page)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^The microphone was refused\.")
    )
    expect(page.get_by_role("button", name="Start recording")).to_be_enabled()
    assert not Recording.objects.exists()
    assert env.corti.state()["counts"].get("stream_tokens_issued", 0) == 0
    assert_accessible(page)


def test_refused_settings_are_shown_in_words(mic_context, env):
    record = created(env)
    env.corti.set_faults(fault("config-denied", "stream", count=1))
    page = opened(mic_context, env, record)
    press_start(page)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^Corti refused the recording settings \(.+\)\. Nothing was")
    )
    kept = closed(record)
    assert (kept.state, kept.failure) == ("failed", "config_denied")
    assert streams_of(env, record)["audio_bytes"] == 0
    expect(page.locator("#recordings table")).to_contain_text(
        "Corti refused the recording settings"
    )
    assert_accessible(page)


def press_start(page) -> None:
    """Confirm the patient's consent and press Start recording."""
    page.get_by_label(re.compile("patient")).check()
    page.get_by_role("button", name="Start recording").click()


def started_recording(context, env, record, *, own_clock: bool = False):
    page = opened(context, env, record, own_clock=own_clock)
    press_start(page)
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording\."), timeout=15_000
    )
    return page


def test_a_closed_tab_leaves_the_recording_interrupted_not_open(mic_context, env):
    record = created(env)
    page = started_recording(mic_context, env, record)
    time.sleep(1.0)
    # Leaving asks first; staying keeps the recording going.
    asked = []

    def stay(dialog):
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.evaluate("document.body.click()")  # a gesture: the browser may ask
    page.get_by_role("link", name="All interactions").click()
    page.wait_for_timeout(500)
    assert asked == ["beforeunload"]
    assert "/interactions/" in page.url and status(page).startswith("Recording.")

    page.close()

    kept = closed(record)
    assert (kept.state, kept.failure) == ("interrupted", "page_closed")
    assert kept.seconds_recorded is not None and kept.seconds_recorded > 0.5


def test_a_browser_without_opus_recording_is_told_so(mic_context, env):
    record = created(env)
    mic_context.add_init_script(script="delete window.MediaRecorder;")
    page = opened(mic_context, env, record)

    expect(page.locator("#recorder-unsupported")).to_have_text(
        re.compile(r"^This browser cannot record for Corti")
    )
    expect(page.get_by_role("button", name="Start recording")).to_be_disabled()
    assert_accessible(page)


def test_a_long_outage_keeps_the_newest_sound_and_says_what_was_lost(mic_context, env):
    env.settings.INTAKE_RECORDING_BUFFER_SECONDS = 5
    record = created(env)
    # The socket drops after 1 s; the next three cannot even be opened, so
    # the fourth comes after 0.5 + 1 + 2 + 4 s of backoff: more than the 5 s
    # of sound a page keeps.
    env.corti.set_faults(
        fault("drop", "stream", delay=1.0, count=1),
        fault("500", "stream", count=3),
    )
    for _ in range(3):
        env.watch.expect_console_error("Unexpected response code: 500")
    page = started_recording(mic_context, env, record)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^Reconnected to Corti; the .* were sent\..*could not be kept"),
        timeout=30_000,
    )
    page.get_by_role("button", name="End recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended"), timeout=15_000
    )
    kept = closed(record)
    assert kept.state == "ended"
    # One full buffer dropped (about 5 s), the newest sound kept.
    assert 5.0 <= kept.seconds_lost <= 6.5
    assert kept.reconnects == 1
    stream = streams_of(env, record)
    assert [s["valid_webm"] for s in stream["sockets"]] == [True, True]


@pytest.fixture
def short_tokens(env, settings):
    """A simulator whose tokens live 6 s, with the dashboard pointed at it."""
    from intake.corti import clear_clients
    from tests.support.corti import start_simulator

    sim = start_simulator("--token-ttl", "6")
    settings.CORTI_API_URL = sim.api_url
    settings.CORTI_AUTH_URL = sim.auth_url()
    settings.CORTI_STREAM_ORIGIN = sim.stream_origin
    clear_clients()
    try:
        yield sim
    finally:
        clear_clients()
        sim.stop()


def test_the_token_is_replaced_before_it_expires(mic_context, env, short_tokens):
    record = created(env)
    # Dropped after the first token expired: the new socket needs a new one.
    short_tokens.set_faults(fault("drop", "stream", delay=7.0, count=1))
    page = started_recording(mic_context, env, record)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^Reconnected to Corti"), timeout=20_000
    )
    page.get_by_role("button", name="End recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended"), timeout=15_000
    )
    entries = list(
        AccessEntry.objects.filter(
            action=AccessEntry.Action.STREAM_TOKEN, interaction=record
        ).order_by("at", "id")
    )
    purposes = [e.detail["purpose"] for e in entries]
    assert purposes[0] == "record" and purposes[-1] == "reconnect"
    assert purposes.count("renew") >= 2
    # Each token was replaced while it still had time left.
    for held, replacement in itertools.pairwise(entries):
        assert (replacement.at - held.at).total_seconds() < held.detail["expires_in"]
    stream = short_tokens.streams()[str(record.interaction_id)]
    assert stream["connections"] == 2
    assert closed(record).state == "ended"


def test_end_during_an_outage_delivers_what_was_kept_then_ends(mic_context, env):
    record = created(env)
    env.corti.set_faults(fault("drop", "stream", delay=1.5, count=1))
    page = started_recording(mic_context, env, record)
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^The connection to Corti dropped"), timeout=10_000
    )

    page.get_by_role("button", name="End recording").click()

    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended: .* Corti confirmed the end"), timeout=20_000
    )
    kept = closed(record)
    assert (kept.state, kept.failure) == ("ended", "")
    assert kept.seconds_lost <= 0.5  # the slice in flight at the drop
    stream = streams_of(env, record)
    assert stream["connections"] == 2
    second = stream["sockets"][1]
    assert second["valid_webm"] and second["ended"] is True
    # The sound kept while disconnected reached Corti on the second socket.
    assert abs(stream["audio_ms"] / 1000 - kept.seconds_recorded) < 1.0


def test_signed_out_meanwhile_says_so_and_records_nothing(mic_context, env):
    record = created(env)
    page = opened(mic_context, env, record)
    # The session ended meanwhile (signed out in another tab, the timeout).
    mic_context.clear_cookies(name=env.settings.SESSION_COOKIE_NAME)
    press_start(page)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^This page's session has ended .+ Reload the page")
    )
    expect(page.get_by_role("button", name="Start recording")).to_be_enabled()
    assert not Recording.objects.exists()


def test_signed_out_while_recording_stops_at_the_next_word_to_the_dashboard(
    mic_context, env
):
    record = created(env)
    page = started_recording(mic_context, env, record, own_clock=True)
    expect(page.locator("#recordings table")).to_contain_text("Recording")
    # Someone signed out on this computer (another tab): the next word the
    # page says to the dashboard is refused, and the recording stops there,
    # not minutes later at the next token.
    mic_context.clear_cookies(name=env.settings.SESSION_COOKIE_NAME)
    page.clock.fast_forward(31_000)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^The recording was stopped after .+ This page's session has ended")
    )
    expect(page.get_by_role("button", name="Start recording")).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    # The page closed Corti's socket: nothing more of this room goes out.
    deadline = time.monotonic() + 5
    while streams_of(env, record)["sockets"][-1]["closed_by"] is None:
        assert time.monotonic() < deadline, "the stream socket stayed open"
        time.sleep(0.1)
    assert streams_of(env, record)["sockets"][-1]["closed_by"] == "client"
    assert "/accounts/login/" not in page.url


def test_a_page_back_after_the_dashboard_closed_its_recording_stops(mic_context, env):
    from django.utils import timezone

    record = created(env)
    page = started_recording(mic_context, env, record, own_clock=True)
    expect(page.locator("#recordings table")).to_contain_text("Recording")
    # The dashboard did not hear from the page for a while (its network was
    # down) and the worker closed the recording.
    Recording.objects.filter(interaction=record).update(
        state=Recording.State.INTERRUPTED,
        failure="page_closed",
        finished_at=timezone.now(),
    )
    # The next heartbeat is refused (409), which the browser logs.
    env.watch.expect_console_error(r"status of 409 .*/recording/")
    page.clock.fast_forward(31_000)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^The recording was stopped after .+ already closed this")
    )
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    # Its last word gives the length; the reason stays the dashboard's.
    deadline = time.monotonic() + 5
    while not (kept := Recording.objects.get(interaction=record)).seconds_recorded:
        assert time.monotonic() < deadline, "the page's last word never came"
        time.sleep(0.1)
    assert (kept.state, kept.failure) == ("interrupted", "page_closed")
    assert kept.seconds_recorded > 0


def test_a_sign_out_in_another_tab_stops_the_recording_at_once(mic_context, env):
    record = created(env)
    page = started_recording(mic_context, env, record)
    # Another tab of this browser opens a page (the recording asks whether
    # its session still holds: it does), then signs out straight away: the
    # sign-in page opens there, and the second ask is not lost to the first.
    other = mic_context.new_page()
    other.goto(f"{env.site}/my-day/")
    expect(other.get_by_role("heading", level=1)).to_be_visible()
    other.get_by_role("button", name="Sign out").click()
    other.wait_for_url(re.compile("/accounts/login/"))

    # Well before the next heartbeat (30 s).
    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(
            r"^The recording was stopped after .+ This page's session has ended"
        ),
        timeout=5_000,
    )
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    # The record said so as the sign-out happened.
    kept = closed(record)
    assert (kept.state, kept.failure) == ("interrupted", "signed_out")


def test_the_list_of_recordings_shows_the_last_word_when_answers_cross(
    mic_context, env
):
    record = created(env)
    page = opened(mic_context, env, record)
    held = []

    def hold_the_first(route):
        # The list asked again when Corti accepted: the dashboard answers
        # ("Recording"), the answer reaches the page only after the end.
        if not held:
            held.append((route, route.fetch()))
        else:
            route.continue_()

    page.route(re.compile(r".*[?&]part=recordings"), hold_the_first)
    # The newer ask replaces the held one, which htmx reports as given up.
    env.watch.expect_console_error(r"^htmx:(afterRequest|sendAbort), ")
    press_start(page)
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording\."), timeout=15_000
    )
    deadline = time.monotonic() + 5
    while not held:
        assert time.monotonic() < deadline, "the list was not asked again"
        page.wait_for_timeout(100)
    page.get_by_role("button", name="End recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended"), timeout=15_000
    )
    expect(page.locator("#recordings table")).to_contain_text("Ended")

    route, answer = held[0]
    # The page may have given that ask up: then there is nothing to deliver.
    with contextlib.suppress(PlaywrightError):
        route.fulfill(response=answer)
    page.wait_for_timeout(1_000)
    expect(page.locator("#recordings table")).to_contain_text("Ended")
    expect(page.locator("#recordings table")).not_to_contain_text("Recording ")


def test_no_microphone_at_all_says_so(mic_context, env):
    record = created(env)
    mic_context.add_init_script(
        script="if (navigator.mediaDevices) navigator.mediaDevices.getUserMedia ="
        " () => Promise.reject("
        "new DOMException('Requested device not found', 'NotFoundError'));"
    )
    page = opened(mic_context, env, record)
    press_start(page)

    expect(page.locator("#recorder-alert")).to_have_text(
        re.compile(r"^No microphone was found\.")
    )
    assert not Recording.objects.exists()


def test_the_clinic_may_keep_what_was_shown(mic_context, env):
    env.settings.INTAKE_RECORDING_KEEP_TRANSCRIPT = True
    record = created(env)
    page = started_recording(mic_context, env, record)
    expect(page.locator("#transcript li:not(.interim)").first).to_be_visible(
        timeout=10_000
    )
    shown = page.locator("#transcript li:not(.interim) .words").all_inner_texts()
    page.get_by_role("button", name="End recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended"), timeout=15_000
    )

    kept = closed(record)
    texts = [segment["text"] for segment in kept.transcript["segments"]]
    assert texts[: len(shown)] == shown
    assert all(
        segment["participant"].startswith("Speaker")
        for segment in kept.transcript["segments"]
    )


def test_the_recorder_works_when_corti_answers_while_the_page_is_open(mic_context, env):
    # Created in Corti, but the page first sees it still waiting for the
    # answer; the answer is then recorded, and the page's poll swaps it in.
    record = created(env)
    answered = {
        "outcome": record.outcome,
        "interaction_id": record.interaction_id,
        "websocket_url": record.websocket_url,
    }
    Interaction.objects.filter(pk=record.pk).update(
        outcome="pending", interaction_id=None, websocket_url=""
    )
    page = mic_context.new_page()
    signed_in(page, env, env.nurse)
    page.goto(f"{env.site}/interactions/{record.pk}/")
    expect(
        page.get_by_role("heading", name=re.compile("Waiting for Corti"))
    ).to_be_visible()
    expect(page.locator("#recorder")).to_have_count(0)

    from django.utils import timezone

    Interaction.objects.filter(pk=record.pk).update(
        **answered, updated_at=timezone.now()
    )
    expect(page.get_by_role("heading", name="Record the consultation")).to_be_visible(
        timeout=10_000
    )
    press_start(page)

    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording\."), timeout=15_000
    )
    page.wait_for_timeout(1500)  # some sound to send
    page.get_by_role("button", name="End recording").click()
    expect(page.locator("#recorder-state")).to_have_text(
        re.compile(r"^Recording ended"), timeout=15_000
    )
    assert closed(record).state == "ended"
    socket = streams_of(env, record)["sockets"][0]
    assert socket["valid_webm"], socket
