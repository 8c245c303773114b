"""Recording from the interaction's page (issue 16), over real HTTP against
the simulator: who gets a stream token, what it can do, what is kept (the
consent, the trail) and what never is (the token, the patient's speech)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from websockets.sync.client import connect

from intake import tasks
from intake.models import RECORDING_FAILURES, AccessEntry, Interaction, Recording
from intake.services import recording as recording_service
from tests.support.corti import fault
from tests.support.factories import make_interaction
from tests.support.pages import page, parse
from tests.support.records import submit

pytestmark = pytest.mark.django_db

START = {"consent": "on", "language": "da", "mode": "facts"}


@pytest.fixture
def created(corti, clinician) -> Interaction:
    record = submit(clinician).record
    assert record.is_created
    return record


def start_url(record: Interaction) -> str:
    return f"/interactions/{record.pk}/recording/"


FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}


def start(client: Client, record: Interaction, **data):
    return client.post(start_url(record), {**START, **data}, **FETCH)


def token_of(url: str) -> str:
    [value] = parse_qs(urlsplit(url).query)["token"]
    scheme, _, token = value.partition(" ")
    assert scheme == "Bearer"
    return token


def stream_tokens(sim) -> int:
    return sim.state()["counts"].get("stream_tokens_issued", 0)


def trail(record: Interaction) -> list[dict]:
    return [
        {"user": e.user.username, **e.detail}
        for e in AccessEntry.objects.filter(
            interaction=record, action=AccessEntry.Action.STREAM_TOKEN
        ).order_by("at", "id")
    ]


def config_answer(url: str, configuration: dict) -> str:
    """Open the socket as the page does, send the config, return the answer."""
    with connect(url, open_timeout=5, close_timeout=2) as socket:
        socket.send(json.dumps(configuration))
        return json.loads(socket.recv(timeout=5))["type"]


# --- Starting: consent, the token, the trail ---------------------------------


def test_start_mints_a_stream_token_for_this_interaction_and_keeps_the_consent(
    corti, clinician_client, clinician, created, settings
):
    settings.INTAKE_RECORDING_CONSENT_TEXT = "Patient agreed to recording."
    response = start(clinician_client, created)

    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    grant = response.json()
    url = grant["url"]
    # The interaction's own websocket URL, the token appended as Corti wants.
    assert url.startswith(created.websocket_url + "&token=Bearer%20")
    assert 290 <= grant["expires_in"] <= 300
    assert grant["configuration"]["type"] == "config"
    configuration = grant["configuration"]["configuration"]
    assert configuration["transcription"]["primaryLanguage"] == "da"
    assert configuration["mode"]["type"] == "facts"
    assert {p["role"] for p in configuration["transcription"]["participants"]} == {
        "doctor",
        "patient",
    }
    [kept] = Recording.objects.filter(interaction=created)
    assert str(kept.pk) == grant["recording"]
    assert kept.started_by == clinician
    assert kept.consent_wording == "Patient agreed to recording."
    assert abs((timezone.now() - kept.consent_at).total_seconds()) < 30
    assert (kept.state, kept.language, kept.mode) == ("starting", "da", "facts")
    assert kept.tokens_issued == 1
    assert trail(created) == [
        {
            "user": clinician.username,
            "purpose": "record",
            "recording": str(kept.pk),
            "expires_in": grant["expires_in"],
        }
    ]
    assert stream_tokens(corti) == 1
    # The token opens this interaction's stream socket ...
    assert config_answer(url, grant["configuration"]) == "CONFIG_ACCEPTED"
    # ... and nothing else: Corti's API refuses it.
    answer = requests.get(
        f"{corti.api_url}/interactions/",
        headers={
            "Authorization": f"Bearer {token_of(url)}",
            "Tenant-Name": corti.tenant,
        },
        timeout=5,
    )
    assert answer.status_code == 403


def test_without_consent_nothing_is_minted_or_kept(corti, clinician_client, created):
    response = start(clinician_client, created, consent="")

    assert response.status_code == 400
    assert response.json() == {
        "error": "Confirm that the patient agreed before recording.",
        "code": "consent",
    }
    assert not Recording.objects.exists()
    assert trail(created) == []
    assert stream_tokens(corti) == 0


@pytest.mark.parametrize(
    ("data", "code"),
    [({"language": "klingon"}, "language"), ({"mode": "dictation"}, "mode")],
)
def test_a_choice_corti_does_not_know_is_refused_beside_its_field(
    corti, clinician_client, created, data, code
):
    response = start(clinician_client, created, **data)

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Recording.objects.exists()
    assert stream_tokens(corti) == 0


def test_the_stream_token_is_never_logged_stored_or_cached(
    corti, clinician_client, created, caplog
):
    caplog.set_level(logging.DEBUG)
    grant = start(clinician_client, created).json()
    renewed = clinician_client.post(
        f"/interactions/{created.pk}/recording/{grant['recording']}/token/",
        {"purpose": "renew"},
        **FETCH,
    ).json()
    copied = clinician_client.post(f"/interactions/{created.pk}/stream-url/")
    tokens = {token_of(grant["url"]), token_of(renewed["url"])}
    copied_html = page(copied)
    tokens.add(token_of(parse(copied_html).one("code", id="stream-url-value").text))
    assert len(tokens) == 3

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    # Every table's every text column, as the database holds it.
    with connection.cursor() as cursor:
        stored = []
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (own tables)
            stored.extend(str(row) for row in cursor.fetchall())
    cached = str(getattr(cache, "_cache", {}))
    for token in tokens:
        assert token not in logged
        assert token not in "\n".join(stored)
        assert token not in cached
    assert "Fetched a Corti access token (scope openid streams)" in logged


# --- Who may --------------------------------------------------------------------


def test_another_clinician_gets_no_token(corti, created, other_clinician):
    client = Client()
    client.force_login(other_clinician)

    response = start(client, created)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert stream_tokens(corti) == 0
    assert not Recording.objects.exists()
    # Nor a page with a recorder on it.
    html = page(client.get(created.get_absolute_url()))
    assert 'id="recorder"' not in html


def test_the_clinic_may_let_any_clinician_record(
    corti, created, other_clinician, settings
):
    settings.INTAKE_CLINICIANS_CHANGE_ANY = True
    client = Client()
    client.force_login(other_clinician)

    assert start(client, created).status_code == 201


def test_an_administrator_may_record(corti, created, admin_client_):
    assert start(admin_client_, created).status_code == 201


@pytest.mark.parametrize("how", ["deleted", "gone", "failed"])
def test_what_is_not_in_corti_cannot_be_recorded(
    corti, clinician_client, clinician, created, how
):
    if how == "failed":
        created = submit(clinician, encounter_identifier="ENC-FAIL").record
        Interaction.objects.filter(pk=created.pk).update(
            outcome=Interaction.Outcome.FAILED, websocket_url="", interaction_id=None
        )
    else:
        field = {"deleted": "deleted_at", "gone": "corti_gone_at"}[how]
        Interaction.objects.filter(pk=created.pk).update(**{field: timezone.now()})

    response = start(clinician_client, created)

    assert response.status_code == 409
    assert "cannot be recorded" in response.json()["error"]
    assert stream_tokens(corti) == 0
    html = page(clinician_client.get(created.get_absolute_url()))
    assert 'id="recorder"' not in html


def test_no_token_is_sent_to_an_address_off_the_configured_origin(
    corti, clinician_client, created
):
    evil = str(created.websocket_url).replace("127.0.0.1", "attacker.example")
    Interaction.objects.filter(pk=created.pk).update(websocket_url=evil)

    response = start(clinician_client, created)

    assert response.status_code == 502
    assert "not on the configured Corti environment" in response.json()["error"]
    assert stream_tokens(corti) == 0
    assert not Recording.objects.exists()


def test_a_refused_sign_in_says_so_and_keeps_nothing(corti, clinician_client, created):
    corti.set_faults(fault("500", "token"))

    response = start(clinician_client, created)

    assert response.status_code == 503
    assert response.json()["error"].startswith("Corti did not give a recording token")
    # The attempt is on the record, closed: nothing left "starting".
    [kept] = Recording.objects.all()
    assert (kept.state, kept.failure, kept.tokens_issued) == (
        "failed",
        "token_failed",
        0,
    )
    assert trail(created) == []
    # And the next press may start one.
    corti.set_faults()
    assert start(clinician_client, created).status_code == 201


# --- During the recording: tokens, reports --------------------------------------


def started(client: Client, record: Interaction) -> tuple[dict, Recording]:
    grant = start(client, record).json()
    return grant, Recording.objects.get(pk=grant["recording"])


def test_a_fresh_token_for_a_reconnection_only_to_who_started_it(
    corti, clinician_client, created, administrator
):
    grant, kept = started(clinician_client, created)
    admin_client_ = Client()
    admin_client_.force_login(administrator)

    again = clinician_client.post(grant["token_url"], {"purpose": "reconnect"}, **FETCH)
    other = admin_client_.post(grant["token_url"], {"purpose": "reconnect"}, **FETCH)

    assert again.status_code == 200
    assert token_of(again.json()["url"]) != token_of(grant["url"])
    assert other.status_code == 403
    kept.refresh_from_db()
    assert kept.tokens_issued == 2
    assert [e["purpose"] for e in trail(created)] == ["record", "reconnect"]
    assert stream_tokens(corti) == 2


def test_reports_move_the_recording_on_and_never_back(corti, clinician_client, created):
    grant, kept = started(clinician_client, created)
    report = grant["report_url"]

    assert clinician_client.post(report, {"event": "accepted"}).json() == {
        "state": "recording"
    }
    answer = clinician_client.post(
        report, {"event": "ended", "seconds": "65.43", "lost": "0", "reconnects": "1"}
    )
    late = clinician_client.post(report, {"event": "failed", "failure": "error"})

    assert answer.json() == {"state": "ended"}
    assert late.json() == {"state": "ended"}
    kept.refresh_from_db()
    assert (kept.state, kept.seconds_recorded, kept.reconnects) == ("ended", 65.4, 1)
    assert kept.failure == ""
    assert kept.accepted_at is not None and kept.finished_at is not None
    # A closed recording gets no new token.
    closed = clinician_client.post(grant["token_url"], {"purpose": "renew"}, **FETCH)
    assert closed.status_code == 409
    assert closed.json()["code"] == "closed"


@pytest.mark.parametrize(
    ("event", "failure", "state", "kept_as"),
    [
        ("failed", "config_denied", "failed", "config_denied"),
        ("failed", "made-up", "failed", "error"),
        ("ended", "", "ended", ""),
        ("ended", "made-up", "ended", ""),
        ("ended", "ended_without_answer", "ended", "ended_without_answer"),
    ],
)
def test_a_stopped_recording_keeps_only_a_known_reason(
    corti, clinician_client, created, event, failure, state, kept_as
):
    grant, kept = started(clinician_client, created)

    clinician_client.post(grant["report_url"], {"event": event, "failure": failure})

    kept.refresh_from_db()
    assert (kept.state, kept.failure) == (state, kept_as)
    html = page(clinician_client.get(created.get_absolute_url()))
    assert kept.get_state_display() in html


TRANSCRIPT = {
    "segments": [
        {"text": "<b>Hello</b>", "participant": "Speaker 1", "start": 0, "final": True}
    ],
    "facts": [{"text": "Headache for 3 days", "group": "history"}],
}


def test_what_was_said_is_not_kept_unless_the_clinic_turns_it_on(
    corti, clinician_client, created, settings
):
    grant, kept = started(clinician_client, created)
    clinician_client.post(
        grant["report_url"],
        {"event": "ended", "seconds": "3", "transcript": json.dumps(TRANSCRIPT)},
    )
    kept.refresh_from_db()
    assert kept.transcript is None

    settings.INTAKE_RECORDING_KEEP_TRANSCRIPT = True
    grant, kept = started(clinician_client, created)
    clinician_client.post(
        grant["report_url"],
        {"event": "ended", "seconds": "3", "transcript": json.dumps(TRANSCRIPT)},
    )
    kept.refresh_from_db()
    assert kept.transcript == {
        "segments": [{"text": "<b>Hello</b>", "participant": "Speaker 1", "start": 0}],
        "facts": [{"text": "Headache for 3 days", "group": "history"}],
    }
    html = page(clinician_client.get(created.get_absolute_url()))
    # Shown as text.
    assert "&lt;b&gt;Hello&lt;/b&gt;" in html and "<b>Hello</b>" not in html


def test_a_recording_whose_page_went_quiet_is_closed_by_the_worker(
    corti, clinician_client, clinician, created, settings
):
    settings.INTAKE_RECORDING_SILENT_MINUTES = 10
    _, quiet = started(clinician_client, created)
    _, fresh = started(
        clinician_client, submit(clinician, encounter_identifier="ENC-2").record
    )
    Recording.objects.filter(pk=quiet.pk).update(
        state="recording", last_seen_at=timezone.now() - dt.timedelta(minutes=11)
    )

    assert tasks.sweep.call()["recordings_interrupted"] == 1

    quiet.refresh_from_db()
    fresh.refresh_from_db()
    assert (quiet.state, quiet.failure) == ("interrupted", "page_closed")
    assert fresh.state == "starting"


def test_a_report_for_another_interactions_recording_is_not_found(
    corti, clinician_client, clinician, created
):
    grant, _ = started(clinician_client, created)
    other = submit(clinician, encounter_identifier="ENC-OTHER").record
    wrong = f"/interactions/{other.pk}/recording/{grant['recording']}/"

    assert clinician_client.post(wrong, {"event": "ended"}).status_code == 404
    assert (
        clinician_client.post(
            f"/interactions/{created.pk}/recording/{uuid.uuid4()}/", {"event": "ended"}
        ).status_code
        == 404
    )


# --- For other clients: the URL with a token ------------------------------------


def test_copy_stream_url_gives_a_fresh_scoped_token_and_keeps_it_in_the_trail(
    corti, clinician_client, created
):
    response = clinician_client.post(
        f"/interactions/{created.pk}/stream-url/", HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = page(response)
    url = parse(html).one("code", id="stream-url-value").text
    assert url.startswith(created.websocket_url + "&token=Bearer%20")
    assert "Valid for" in html
    assert [e["purpose"] for e in trail(created)] == ["copy"]
    assert not Recording.objects.exists()
    assert (
        config_answer(url, {"type": "config", "configuration": _configuration()})
        == "CONFIG_ACCEPTED"
    )


def _configuration() -> dict:
    from intake.corti.streams import StreamConfiguration, StreamMode

    return StreamConfiguration(
        primary_language="en", mode=StreamMode.TRANSCRIPTION
    ).to_message()["configuration"]


# --- The page -----------------------------------------------------------------


def csp(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:]
        for part in (p.strip() for p in policy.split(";"))
        if part
    }


def test_the_page_may_connect_to_the_corti_stream_origin_and_nowhere_else(
    corti, clinician_client, clinician, created, settings
):
    response = clinician_client.get(created.get_absolute_url())

    assert csp(response)["connect-src"] == ["'self'", settings.CORTI_STREAM_ORIGIN]
    html = page(response)
    recorder = parse(html).one("section", id="recorder")
    assert recorder.attrs.get("hx-preserve") == "true"
    assert "js/recorder.js" in html
    # The clinic's wording on the consent checkbox.
    assert settings.INTAKE_RECORDING_CONSENT_TEXT in html
    # A page with nothing to record keeps the strict policy.
    pending = submit(clinician, encounter_identifier="ENC-P").record
    Interaction.objects.filter(pk=pending.pk).update(deleted_at=timezone.now())
    other = clinician_client.get(pending.get_absolute_url())
    assert csp(other)["connect-src"] == ["'self'"]
    assert "js/recorder.js" not in page(other)


def test_the_page_lists_each_recording_with_its_consent(
    corti, clinician_client, clinician, created
):
    grant, _ = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    clinician_client.post(
        grant["report_url"], {"event": "ended", "seconds": "42", "lost": "3"}
    )

    html = page(clinician_client.get(created.get_absolute_url()))

    table = parse(html).one("section", aria_labelledby="recordings-heading")
    text = " ".join(table.text.split())
    assert f"Confirmed by {clinician.username}" in text
    assert "42 s" in text and "3 s lost" in text and "Ended" in text
    assert "Danish (da), transcript and facts" in text


def test_the_recordings_table_alone_is_asked_again_when_a_recording_moves_on(
    corti, clinician_client, clinician, created
):
    url = created.get_absolute_url()
    before = parse(page(clinician_client.get(url)))
    # No recording yet: the table's place, asking again when one moves on.
    part = before.one("div", id="recordings")
    assert part.attrs["hx-get"] == f"{url}?part=recordings"
    assert part.attrs["hx-trigger"] == "recordings-changed from:body"
    assert "Recordings" not in part.text
    grant, _ = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    viewed = AccessEntry.objects.filter(
        interaction=created, action=AccessEntry.Action.VIEWED
    ).count()

    answer = clinician_client.get(url, {"part": "recordings"}, HTTP_HX_REQUEST="true")

    assert answer.status_code == 200
    swapped = parse(page(answer))
    # Only the table: nothing else of the page is swapped under the recorder.
    assert swapped.one("div", id="recordings").attrs["hx-get"] == part.attrs["hx-get"]
    assert not swapped.find_all(id="recorder") and not swapped.find_all(id="live")
    text = " ".join(swapped.text.split())
    assert f"Confirmed by {clinician.username}" in text and "Recording" in text
    # It shows the consent (and a kept transcript): a view, in the trail.
    assert (
        AccessEntry.objects.filter(
            interaction=created, action=AccessEntry.Action.VIEWED
        ).count()
        == viewed + 1
    )


def test_the_recorder_and_its_list_are_not_read_out_with_the_live_part(
    corti, clinician_client, created
):
    html = parse(page(clinician_client.get(created.get_absolute_url())))
    # The page's live part is a polite region (Corti's answer is read out);
    # the transcript, the clock and the list of recordings inside it are not.
    [polite] = [e for e in html.find_all(aria_live="polite") if e.find(id="live")]
    for inner in ("recorder", "recordings"):
        part = polite.one(id=inner)
        assert part.attrs["aria-live"] == "off", inner
    # The recorder's own status line and alert still speak.
    assert polite.one(id="recorder-state").attrs["role"] == "status"
    assert polite.one(id="recorder-alert").attrs["role"] == "alert"


def test_someone_who_may_not_record_gets_the_table_without_asking_again(
    corti, created, other_clinician
):
    browser = Client()
    browser.force_login(other_clinician)
    html = parse(page(browser.get(created.get_absolute_url())))
    part = html.one("div", id="recordings")
    assert "hx-get" not in part.attrs


def test_recording_service_refuses_a_report_from_someone_else(
    corti, clinician_client, created, administrator
):
    _, kept = started(clinician_client, created)
    with pytest.raises(recording_service.RecordingRefused):
        recording_service.recording_report(
            recording=kept, user=administrator, event="ended"
        )


def test_one_recording_of_a_consultation_at_a_time(
    corti, clinician_client, created, settings
):
    settings.INTAKE_RECORDING_SILENT_MINUTES = 2
    grant, first = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})

    second = start(clinician_client, created)

    assert second.status_code == 409
    assert second.json()["code"] == "under_way"
    assert "already under way, started by" in second.json()["error"]
    assert stream_tokens(corti) == 1
    # Once its page has gone quiet, it is closed and a new one may start.
    Recording.objects.filter(pk=first.pk).update(
        last_seen_at=timezone.now() - dt.timedelta(minutes=3)
    )
    assert start(clinician_client, created).status_code == 201
    first.refresh_from_db()
    assert (first.state, first.failure) == ("interrupted", "page_closed")


def test_a_start_that_never_got_going_does_not_lock_out_its_own_user(
    corti, clinician_client, created, settings
):
    # Pressed Start, then reloaded before Corti accepted (a slow Corti): the
    # dashboard finished the start meanwhile, and nothing reported on it.
    grant, abandoned = started(clinician_client, created)

    again = start(clinician_client, created)

    assert again.status_code == 201
    abandoned.refresh_from_db()
    assert (abandoned.state, abandoned.failure) == ("failed", "started_again")
    # Were that first page still alive, its next word stops it.
    late = clinician_client.post(grant["report_url"], {"event": "accepted"})
    assert late.status_code == 409 and late.json()["code"] == "closed"
    renew = clinician_client.post(grant["token_url"], {"purpose": "renew"}, **FETCH)
    assert renew.status_code == 409


def test_someone_elses_start_still_holds_the_recording(
    corti, created, clinician_client, administrator
):
    started(clinician_client, created)
    other = Client()
    other.force_login(administrator)

    refused = start(other, created)

    assert refused.status_code == 409 and refused.json()["code"] == "under_way"


def test_a_sign_out_closes_the_recordings_of_its_session_only(
    corti, clinician, created
):
    here, there = Client(), Client()
    here.force_login(clinician)
    there.force_login(clinician)  # the same clinician on another computer
    elsewhere = submit(clinician).record
    grant, recording_here = started(here, created)
    here.post(grant["report_url"], {"event": "accepted"})
    starting_here = started(here, submit(clinician).record)[1]
    other, recording_there = started(there, elsewhere)
    there.post(other["report_url"], {"event": "accepted"})

    here.post("/accounts/logout/")

    recording_here.refresh_from_db()
    starting_here.refresh_from_db()
    recording_there.refresh_from_db()
    # Said at once, not "recording" until the worker takes the page for gone.
    assert (recording_here.state, recording_here.failure) == (
        "interrupted",
        "signed_out",
    )
    assert (starting_here.state, starting_here.failure) == ("failed", "signed_out")
    assert recording_here.finished_at is not None
    # The other computer's recording goes on.
    assert recording_there.state == "recording"
    assert there.post(other["report_url"], {"event": "progress"}).status_code == 200
    # The session is kept as a hash, never as the key that signs one in.
    assert there.session.session_key not in {
        r.session_hash for r in Recording.objects.all()
    }
    assert len(recording_there.session_hash) == 64


def test_signing_in_over_a_session_signs_it_out_first(
    corti, client, clinician, administrator, created
):
    client.post("/accounts/login/", {"username": "clin", "password": "pw-clinician-1"})
    grant, kept = started(client, created)
    client.post(grant["report_url"], {"event": "accepted"})

    # Someone else signs in on this browser without signing out first.
    client.post(
        "/accounts/login/", {"username": "boss", "password": "pw-administrator-1"}
    )

    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "signed_out")
    # Nothing holds the consultation: the new user may record it.
    assert start(client, created).status_code == 201


def test_a_password_change_keeps_the_recording_tied_to_its_session(
    corti, client, clinician, created
):
    client.post("/accounts/login/", {"username": "clin", "password": "pw-clinician-1"})
    grant, kept = started(client, created)
    client.post(grant["report_url"], {"event": "accepted"})
    changed = client.post(
        "/accounts/password_change/",
        {
            "old_password": "pw-clinician-1",
            "new_password1": "a-new-long-passphrase-9",
            "new_password2": "a-new-long-passphrase-9",
        },
    )
    assert changed.status_code == 302
    assert client.post(grant["report_url"], {"event": "progress"}).status_code == 200

    client.post("/accounts/logout/")

    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "signed_out")


def test_a_start_closed_while_its_token_was_fetched_hands_out_no_token(
    corti, clinician_client, created, monkeypatch
):
    mint = recording_service._mint

    def signed_out_meanwhile(record):
        answer = mint(record)
        recording_service.recordings_close_signed_out(
            session_key=clinician_client.session.session_key
        )
        return answer

    monkeypatch.setattr(recording_service, "_mint", signed_out_meanwhile)

    response = start(clinician_client, created)

    assert response.status_code == 409
    assert response.json()["code"] == "closed"
    assert set(response.json()) == {"error", "code"}  # no address, no token
    [kept] = Recording.objects.filter(interaction=created)
    assert (kept.state, kept.failure, kept.tokens_issued) == (
        "failed",
        "signed_out",
        0,
    )
    assert trail(created) == []


def test_an_idle_sign_out_closes_the_recording_too(corti, clinician_client, created):
    from intake.sessions import LAST_SEEN

    grant, kept = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    session = clinician_client.session
    session[LAST_SEEN] = session[LAST_SEEN] - 24 * 3600
    session.save()

    clinician_client.get("/my-day/")

    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "signed_out")


def test_an_ended_recording_does_not_block_the_next(corti, clinician_client, created):
    grant, _ = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "ended", "seconds": "1"})

    assert start(clinician_client, created).status_code == 201


def test_a_form_posted_without_the_script_gets_no_token(
    corti, clinician_client, created
):
    # The Start button is disabled until the script runs; a post made anyway
    # (JavaScript off) would otherwise show the token as the page.
    response = clinician_client.post(start_url(created), START)

    assert response.status_code == 400
    assert response.json()["code"] == "script"
    assert stream_tokens(corti) == 0
    assert not Recording.objects.exists()
    html = page(clinician_client.get(created.get_absolute_url()))
    assert "disabled" in parse(html).one("button", id="record-start").attrs


def test_copy_stream_url_says_why_when_corti_gives_no_token(
    corti, clinician_client, created
):
    corti.set_faults(fault("503", "token"))

    response = clinician_client.post(
        f"/interactions/{created.pk}/stream-url/", HTTP_HX_REQUEST="true"
    )

    # 200, so htmx swaps the sentence in.
    assert response.status_code == 200
    assert (
        parse(page(response))
        .one("p", role="alert")
        .text.startswith("Corti did not give a recording token")
    )
    assert trail(created) == []


@pytest.mark.parametrize(
    ("event", "state"), [("interrupted", "failed"), ("progress", "recording")]
)
def test_a_report_before_corti_accepted_is_read_for_what_it_is(
    corti, clinician_client, created, event, state
):
    grant, kept = started(clinician_client, created)

    clinician_client.post(
        grant["report_url"], {"event": event, "failure": "page_closed"}
    )

    kept.refresh_from_db()
    # Never accepted and then closed: nothing was recorded. A progress report
    # (sent only once Corti accepted) stands in for a lost "accepted".
    assert kept.state == state


def test_the_recorder_stays_while_its_recording_is_open(
    corti, clinician_client, created
):
    grant, _ = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    Interaction.objects.filter(pk=created.pk).update(corti_gone_at=timezone.now())

    html = page(clinician_client.get(created.get_absolute_url()))

    # Gone from Corti meanwhile: the recorder under way is not swapped away.
    assert parse(html).one("section", id="recorder").attrs.get("hx-preserve")


def test_a_pending_interactions_page_may_record_once_it_is_created(
    corti, clinician_client, clinician, settings
):
    # Pending: Corti has not answered yet.
    record = make_interaction(
        clinician, outcome="pending", interaction_id=None, websocket_url=""
    )
    assert record.is_settling

    response = clinician_client.get(record.get_absolute_url())

    # The recorder comes with a later swap of the live part: the script and
    # the stream origin are on the page already, the recorder not yet.
    assert csp(response)["connect-src"] == ["'self'", settings.CORTI_STREAM_ORIGIN]
    html = page(response)
    assert "js/recorder.js" in html
    assert 'id="recorder"' not in html


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e30", "many"])
def test_a_report_with_impossible_numbers_keeps_none_of_them(
    corti, clinician_client, created, value
):
    grant, kept = started(clinician_client, created)

    response = clinician_client.post(
        grant["report_url"],
        {"event": "ended", "seconds": value, "lost": value, "reconnects": value},
    )

    assert response.status_code == 200
    kept.refresh_from_db()
    assert (kept.state, kept.seconds_recorded, kept.seconds_lost, kept.reconnects) == (
        "ended",
        None,
        0,
        0,
    )


def test_the_pages_last_word_replaces_the_workers_guess(
    corti, clinician_client, created, settings
):
    grant, kept = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    # The dashboard was unreachable for a while: the worker took it for gone.
    Recording.objects.filter(pk=kept.pk).update(
        last_seen_at=timezone.now() - dt.timedelta(minutes=30)
    )
    recording_service.recordings_close_silent()
    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "page_closed")

    clinician_client.post(grant["report_url"], {"event": "ended", "seconds": "1800"})

    kept.refresh_from_db()
    assert (kept.state, kept.failure, kept.seconds_recorded) == ("ended", "", 1800.0)
    # A progress report does not reopen it, though.
    clinician_client.post(grant["report_url"], {"event": "progress"})
    kept.refresh_from_db()
    assert kept.state == "ended"


def test_no_fresh_token_once_the_interaction_left_corti(
    corti, clinician_client, created
):
    grant, kept = started(clinician_client, created)
    Interaction.objects.filter(pk=created.pk).update(corti_gone_at=timezone.now())

    response = clinician_client.post(grant["token_url"], {"purpose": "renew"}, **FETCH)

    assert response.status_code == 409
    assert response.json()["code"] == "not_recordable"
    assert stream_tokens(corti) == 1
    kept.refresh_from_db()
    assert kept.tokens_issued == 1
    # The page stops; the record says why at once.
    assert (kept.state, kept.failure) == ("failed", "left_corti")


def test_no_fresh_token_once_the_clinic_withdrew_the_permission(
    corti, created, other_clinician, settings
):
    settings.INTAKE_CLINICIANS_CHANGE_ANY = True
    client = Client()
    client.force_login(other_clinician)
    grant, kept = started(client, created)
    client.post(grant["report_url"], {"event": "accepted"})
    settings.INTAKE_CLINICIANS_CHANGE_ANY = False

    response = client.post(grant["token_url"], {"purpose": "reconnect"}, **FETCH)

    assert response.status_code == 403
    assert stream_tokens(corti) == 1
    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "not_allowed")


def test_an_account_that_lost_the_right_to_record_is_told_so_in_words(
    corti, clinician_client, clinician, created, other_clinician
):
    grant, kept = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    # Someone else's recording of another consultation is not theirs to close.
    theirs = Client()
    theirs.force_login(other_clinician)
    _, other = started(theirs, submit(other_clinician).record)
    # An administrator took the account out of the Clinicians group.
    clinician.groups.clear()

    for url, data in (
        (grant["token_url"], {"purpose": "renew"}),
        (grant["report_url"], {"event": "progress"}),
        (start_url(created), START),
    ):
        response = clinician_client.post(url, data, **FETCH)
        # JSON the page says in words (an HTML 403 reads as signed out).
        assert response.status_code == 403, url
        assert response.json() == {
            "error": "Your account may no longer record consultations.",
            "code": "forbidden",
        }
    assert stream_tokens(corti) == 2
    # Its recording stopped with the page, and the record says why.
    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "not_allowed")
    other.refresh_from_db()
    assert other.state == "starting"
    # Its own recording id sent by someone else closes nothing either.
    clinician_client.post(
        f"/interactions/{other.interaction_id}/recording/{other.pk}/",
        {"event": "progress"},
    )
    other.refresh_from_db()
    assert other.state == "starting"


def test_a_token_purpose_is_renew_or_reconnect_and_nothing_else(
    corti, clinician_client, created
):
    grant, _ = started(clinician_client, created)
    for purpose in ("copy", "bogus"):
        clinician_client.post(grant["token_url"], {"purpose": purpose}, **FETCH)

    assert [e["purpose"] for e in trail(created)] == ["record", "renew", "renew"]


def test_an_interrupted_recording_is_closed_too(corti, clinician_client, created):
    grant, kept = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    clinician_client.post(
        grant["report_url"], {"event": "interrupted", "failure": "socket_failed"}
    )

    clinician_client.post(grant["report_url"], {"event": "progress"})
    token = clinician_client.post(grant["token_url"], {"purpose": "renew"}, **FETCH)

    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "socket_failed")
    assert token.status_code == 409 and token.json()["code"] == "closed"


@pytest.mark.parametrize("failure", sorted(RECORDING_FAILURES))
def test_every_reason_a_recording_stopped_is_kept_and_said(
    corti, clinician_client, created, failure
):
    grant, kept = started(clinician_client, created)

    clinician_client.post(grant["report_url"], {"event": "failed", "failure": failure})

    kept.refresh_from_db()
    assert kept.failure == failure
    html = page(clinician_client.get(created.get_absolute_url()))
    assert str(RECORDING_FAILURES[failure]) in html


def test_only_the_workers_guess_is_replaced_by_a_later_word(
    corti, clinician_client, created
):
    grant, kept = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    clinician_client.post(
        grant["report_url"], {"event": "failed", "failure": "config_denied"}
    )

    clinician_client.post(grant["report_url"], {"event": "ended", "seconds": "5"})

    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("failed", "config_denied")


def test_a_progress_report_does_not_replace_the_workers_guess(
    corti, clinician_client, created
):
    grant, kept = started(clinician_client, created)
    clinician_client.post(grant["report_url"], {"event": "accepted"})
    Recording.objects.filter(pk=kept.pk).update(
        last_seen_at=timezone.now() - dt.timedelta(minutes=30)
    )
    recording_service.recordings_close_silent()

    answer = clinician_client.post(grant["report_url"], {"event": "progress"})

    kept.refresh_from_db()
    assert (kept.state, kept.failure) == ("interrupted", "page_closed")
    # The page still recording is told, and stops: nothing goes on that the
    # record says had stopped (and a new recording may start meanwhile).
    assert answer.status_code == 409
    assert answer.json()["code"] == "closed"
    assert answer.json()["error"] == (
        "The dashboard had already closed this recording (the page was closed or "
        "went quiet), so it stopped here. Start a new one to go on."
    )
    late = clinician_client.post(grant["report_url"], {"event": "accepted"})
    assert late.status_code == 409
