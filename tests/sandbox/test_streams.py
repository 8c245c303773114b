"""The simulator's streams websocket (sandbox/streams.py) over real sockets:
the handshake's refusals, the config exchange, audio in, transcript and facts
out, flush and end, what the state records, and each fault of the switch."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sandbox.streams import segment_id
from tests.support.corti import (
    HTTP_TIMEOUT,
    Simulator,
    corti_create,
    corti_item,
    counts,
    fault,
    post_faults,
    set_faults,
    start_simulator,
    token_response,
)
from tests.support.webm import webm_opus

pytestmark = pytest.mark.timeout(20)

ENCOUNTER = {
    "identifier": "ENC-STREAM-1",
    "status": "in-progress",
    "type": "consultation",
    "period": {"startedAt": "2026-03-29T08:00:00Z"},
}
CONFIG = {
    "transcription": {
        "primaryLanguage": "en",
        "isDiarization": False,
        "isMultichannel": False,
        "participants": [{"channel": 0, "role": "multiple"}],
    },
    "mode": {"type": "facts", "outputLocale": "en"},
}
RECV_TIMEOUT = 5.0


# --- helpers -------------------------------------------------------------------


def new_interaction(sim: Simulator) -> str:
    return str(corti_create(sim, {"encounter": ENCOUNTER}))


def open_stream(
    sim: Simulator, interaction_id: str, *, token: str | None = None, **kwargs: Any
) -> ClientConnection:
    url = sim.stream_url(interaction_id, token=token or sim.token(scope="streams"))
    return connect(url, open_timeout=5, close_timeout=2, **kwargs)


def refusal(url: str, **kwargs: Any) -> int:
    """The HTTP status that refused the handshake (fails if it was accepted)."""
    with (
        pytest.raises(InvalidStatus) as caught,
        connect(url, open_timeout=5, close_timeout=2, **kwargs),
    ):
        pass
    return caught.value.response.status_code


def receive(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=RECV_TIMEOUT))


def configure(ws: ClientConnection, configuration: Any = CONFIG) -> dict[str, Any]:
    ws.send(json.dumps({"type": "config", "configuration": configuration}))
    return receive(ws)


def until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message left, up to the server's close."""
    messages = []
    with pytest.raises(ConnectionClosed):
        while True:
            messages.append(receive(ws))
    return messages


def with_config(**changes: Any) -> dict[str, Any]:
    """CONFIG with its transcription's (or, for "mode", the mode's) changes."""
    configuration = json.loads(json.dumps(CONFIG))
    mode = changes.pop("mode", None)
    if mode is not None:
        configuration["mode"] = mode
    configuration["transcription"].update(changes)
    return configuration


def only_socket(sim: Simulator, interaction_id: str) -> dict[str, Any]:
    stream = sim.streams()[interaction_id]
    assert len(stream["sockets"]) == 1
    return stream["sockets"][0]


def wait_for(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """The server records a close after the client sees it: wait for that."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the simulator never recorded it"
        time.sleep(0.02)


def segment(sentence: int, text: str, *, final: bool, start: float, end: float):
    return {
        "speakerId": sentence % 2,
        "transcript": text,
        "final": final,
        "participant": {"channel": 0},
        "time": {"start": start, "end": end},
    }


def without_id(message: dict[str, Any]) -> dict[str, Any]:
    (item,) = message["data"]
    return {k: v for k, v in item.items() if k != "id"}


# --- the opening handshake -------------------------------------------------------


def test_a_streams_token_opens_the_socket_and_the_config_is_accepted(corti):
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
    wait_for(lambda: only_socket(corti, interaction_id)["closed_by"] is not None)
    stream = corti.streams()[interaction_id]
    assert stream == {
        "connections": 1,
        "configs": [CONFIG],
        "audio_bytes": 0,
        "audio_ms": 0.0,
        "sockets": [
            {
                "audio_bytes": 0,
                "audio_ms": 0.0,
                "valid_webm": False,
                "codec": None,
                "ended": False,
                "closed_by": "client",
                "mode": "facts",
                "language": "en",
            }
        ],
        "ended": 0,
    }
    assert counts(corti)["stream_connections"] == 1


def test_the_created_websocket_url_points_at_the_stream_server(corti):
    response = requests.post(
        f"{corti.api_url}/interactions/",
        json={"encounter": ENCOUNTER},
        headers={"Authorization": f"Bearer {corti.token()}", "Tenant-Name": "base"},
        timeout=HTTP_TIMEOUT,
    )
    body = response.json()
    assert body["websocketUrl"] == (
        f"{corti.stream_origin}/audio-bridge/v2/interactions/"
        f"{body['interactionId']}/streams?tenant-name=base"
    )
    url = f"{body['websocketUrl']}&token=Bearer%20{corti.token(scope='streams')}"
    with connect(url, open_timeout=5, close_timeout=2) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}


def test_a_full_token_and_an_authorization_header_are_accepted(corti):
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id, token=corti.token()) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
    header = {"Authorization": f"Bearer {corti.token(scope='openid streams')}"}
    with connect(
        corti.stream_url(interaction_id),
        additional_headers=header,
        open_timeout=5,
        close_timeout=2,
    ) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
    assert corti.streams()[interaction_id]["connections"] == 2


def _missing_token(sim: Simulator, interaction_id: str) -> str:
    return sim.stream_url(interaction_id)


def _unknown_token(sim: Simulator, interaction_id: str) -> str:
    return sim.stream_url(interaction_id, token="not-a-token")


def _expired_token(sim: Simulator, interaction_id: str) -> str:
    token = sim.token(scope="streams")
    sim.expire_tokens()
    return sim.stream_url(interaction_id, token=token)


def _transcribe_token(sim: Simulator, interaction_id: str) -> str:
    return sim.stream_url(interaction_id, token=sim.token(scope="openid transcribe"))


def _other_tenant(sim: Simulator, interaction_id: str) -> str:
    url = sim.stream_url(interaction_id, token=sim.token(scope="streams"))
    return url.replace("tenant-name=base", "tenant-name=other")


def _no_tenant(sim: Simulator, interaction_id: str) -> str:
    url = sim.stream_url(interaction_id, token=sim.token(scope="streams"))
    return url.replace("tenant-name=base&", "")


def _unknown_interaction(sim: Simulator, interaction_id: str) -> str:
    return sim.stream_url(uuid.uuid4(), token=sim.token(scope="streams"))


def _not_a_uuid(sim: Simulator, interaction_id: str) -> str:
    return sim.stream_url("ENC-1", token=sim.token(scope="streams"))


def _deleted_interaction(sim: Simulator, interaction_id: str) -> str:
    assert corti_item(sim, "DELETE", interaction_id).status_code == 204
    return sim.stream_url(interaction_id, token=sim.token(scope="streams"))


def _wrong_path(sim: Simulator, interaction_id: str) -> str:
    url = sim.stream_url(interaction_id, token=sim.token(scope="streams"))
    return url.replace("/streams?", "/transcribe?")


@pytest.mark.parametrize(
    ("make_url", "status"),
    [
        (_missing_token, 401),
        (_unknown_token, 401),
        (_expired_token, 401),
        (_transcribe_token, 403),
        (_other_tenant, 403),
        (_no_tenant, 403),
        (_unknown_interaction, 404),
        (_not_a_uuid, 404),
        (_deleted_interaction, 404),
        (_wrong_path, 404),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)).strip("_"),
)
def test_the_handshake_refuses(corti, make_url, status):
    interaction_id = new_interaction(corti)
    assert refusal(make_url(corti, interaction_id)) == status
    assert corti.streams() == {}
    assert "stream_connections" not in counts(corti)


def test_a_wrong_host_header_is_refused(corti):
    interaction_id = new_interaction(corti)
    url = corti.stream_url(interaction_id, token=corti.token(scope="streams"))
    # The client sends its own Host too: two are refused as well.
    assert refusal(url, additional_headers={"Host": "attacker.example"}) == 403
    # A rebinding page's request names only the page's host.
    split = urlsplit(url)
    request = (
        f"GET {split.path}?{split.query} HTTP/1.1\r\n"
        "Host: attacker.example:80\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection((split.hostname, split.port), timeout=5) as raw:
        raw.sendall(request.encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 403 ")
    assert "stream_requests" not in counts(corti)


# --- tokens of limited scope -------------------------------------------------------


def test_a_streams_token_is_refused_by_the_rest_api(corti):
    answer = token_response(corti, scope="openid streams")
    assert answer.status_code == 200
    assert answer.json()["scope"] == "openid streams"
    token = answer.json()["access_token"]
    response = requests.get(
        f"{corti.api_url}/interactions/",
        headers={"Authorization": f"Bearer {token}", "Tenant-Name": "base"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "This token's scope does not allow this call."
    assert counts(corti) == {
        "token_requests": 1,
        "tokens_issued": 1,
        "stream_tokens_issued": 1,
        "list_requests": 1,
    }


def test_an_unknown_scope_gets_no_token(corti):
    answer = token_response(corti, scope="openid admin")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scope"
    assert "tokens_issued" not in counts(corti)


# --- the config ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configuration", "reason"),
    [
        (with_config(primaryLanguage="xx"), "unsupported primaryLanguage 'xx'"),
        (with_config(primaryLanguage=""), "unsupported primaryLanguage ''"),
        (with_config(participants=[]), "participants must be a non-empty list"),
        (
            with_config(participants=[{"channel": 0, "role": "nurse"}]),
            "participant role must be one of doctor, patient, multiple",
        ),
        (
            with_config(participants=[{"channel": -1, "role": "doctor"}]),
            "participant channel must be a whole number from 0",
        ),
        (with_config(isDiarization="yes"), "isDiarization must be a boolean"),
        (
            with_config(mode={"type": "dictation"}),
            "mode.type must be one of facts, transcription",
        ),
        ({"mode": {"type": "facts"}}, "transcription is required"),
    ],
)
def test_a_bad_config_is_denied_and_the_socket_closed(corti, configuration, reason):
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws, configuration) == {
            "type": "CONFIG_DENIED",
            "reason": reason,
        }
        assert until_closed(ws) == []
        assert ws.close_code == 1008
    wait_for(lambda: only_socket(corti, interaction_id)["closed_by"] == "server")
    assert corti.streams()[interaction_id]["configs"] == []


def test_unknown_config_fields_are_ignored_and_a_second_config_is_not_taken(corti):
    configuration = {**with_config(futureFlag=True), "newThing": {"a": 1}}
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws, configuration) == {"type": "CONFIG_ACCEPTED"}
        assert configure(ws) == {"type": "CONFIG_ALREADY_RECEIVED"}
        ws.send(json.dumps({"type": "something-new"}))
        ws.send(json.dumps({"type": "flush"}))
        assert receive(ws) == {"type": "flushed"}
    assert corti.streams()[interaction_id]["configs"] == [configuration]


def test_no_config_in_time_is_a_config_timeout():
    sim = start_simulator("--stream-config-timeout", "1")
    try:
        interaction_id = new_interaction(sim)
        with open_stream(sim, interaction_id) as ws:
            opened = time.monotonic()
            ws.send(json.dumps({"type": "flush"}))  # not a config: no answer
            assert receive(ws) == {"type": "CONFIG_TIMEOUT"}
            assert 0.9 <= time.monotonic() - opened < 3.0
            assert until_closed(ws) == []
            assert ws.close_code == 1008
    finally:
        sim.stop()


def test_sigterm_closes_open_sockets_and_stops_the_simulator():
    sim = start_simulator()
    try:
        with open_stream(sim, new_interaction(sim)) as ws:
            assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
            sim.process.terminate()
            assert until_closed(ws) == []
            assert ws.close_code == 1001  # going away
        assert sim.process.wait(timeout=10) == 0
    finally:
        sim.stop()


def test_audio_before_the_config_is_an_error_and_closes(corti):
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        ws.send(webm_opus(1)[0])
        error = receive(ws)
        assert until_closed(ws) == []
        assert ws.close_code == 1008
    assert error["type"] == "error"
    assert set(error["error"]) == {"id", "title", "status", "details", "doc"}
    assert error["error"]["status"] == 400
    assert error["error"]["details"] == "Audio arrived before the configuration."


# --- audio in, transcript out --------------------------------------------------------


def test_five_seconds_of_audio_in_facts_mode(corti):
    interaction_id = new_interaction(corti)
    chunks = webm_opus(5)
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
        for chunk in chunks:
            ws.send(chunk)
        ws.send(json.dumps({"type": "flush"}))
        before_end = []
        while not before_end or before_end[-1]["type"] != "flushed":
            before_end.append(receive(ws))
        ws.send(json.dumps({"type": "end"}))
        after_end = until_closed(ws)
        assert ws.close_code == 1000

    types = [message["type"] for message in before_end]
    assert types == ["transcript"] * 3 + ["facts"] + ["transcript"] * 2 + ["flushed"]
    first, second = (segment_id(interaction_id, 0, n) for n in (0, 1))
    transcripts = [m for m in before_end if m["type"] == "transcript"]
    assert [m["data"][0]["id"] for m in transcripts] == [first] * 3 + [second] * 2
    assert [without_id(m) for m in transcripts] == [
        segment(0, "The patient", final=False, start=0.0, end=1.0),
        segment(0, "The patient reports a", final=False, start=0.0, end=2.0),
        segment(0, "The patient reports a mild headache.", final=True, start=0, end=3),
        segment(1, "It started", final=False, start=3.0, end=4.0),
        segment(1, "It started three days", final=False, start=3.0, end=5.0),
    ]
    (fact,) = before_end[3]["fact"]
    assert {k: fact[k] for k in ("text", "group", "isDiscarded", "source")} == {
        "text": "Mild headache",
        "group": "history-of-present-illness",
        "isDiscarded": False,
        "source": "core",
    }
    assert set(fact) == {
        "id",
        "text",
        "group",
        "groupId",
        "isDiscarded",
        "source",
        "createdAt",
    }

    # The end finishes the sentence under way, then usage, then ENDED.
    assert [message["type"] for message in after_end] == [
        "transcript",
        "facts",
        "usage",
        "ENDED",
    ]
    assert after_end[0]["data"][0]["id"] == second
    assert without_id(after_end[0]) == segment(
        1, "It started three days", final=True, start=3.0, end=5.0
    )
    assert after_end[1]["fact"][0]["text"] == "Onset three days ago"
    assert after_end[2] == {"type": "usage", "credits": 0.083333}

    wait_for(lambda: only_socket(corti, interaction_id)["closed_by"] is not None)
    stream = corti.streams()[interaction_id]
    assert stream["ended"] == 1
    assert stream["audio_bytes"] == sum(map(len, chunks))
    assert stream["audio_ms"] == 5000.0
    assert stream["sockets"] == [
        {
            "audio_bytes": sum(map(len, chunks)),
            "audio_ms": 5000.0,
            "valid_webm": True,
            "codec": "A_OPUS",
            "ended": True,
            "closed_by": "server",
            "mode": "facts",
            "language": "en",
        }
    ]


def test_transcription_mode_sends_no_facts(corti):
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        configure(ws, with_config(mode={"type": "transcription"}))
        for chunk in webm_opus(3.5):
            ws.send(chunk)
        ws.send(json.dumps({"type": "end"}))
        messages = until_closed(ws)
    assert [m["type"] for m in messages] == ["transcript"] * 4 + ["usage", "ENDED"]
    # The half second after the first sentence: a final of its own at the end.
    assert without_id(messages[3]) == segment(
        1, "It started", final=True, start=3.0, end=3.5
    )
    assert messages[3]["data"][0]["id"] == segment_id(interaction_id, 0, 1)
    assert messages[4] == {"type": "usage", "credits": 0.058333}


def test_sockets_of_one_interaction_add_up(corti):
    interaction_id = new_interaction(corti)
    sent = 0
    for seconds in (1, 2):
        chunks = webm_opus(seconds)
        sent += sum(map(len, chunks))
        with open_stream(corti, interaction_id) as ws:
            configure(ws)
            for chunk in chunks:
                ws.send(chunk)
            ws.send(json.dumps({"type": "end"}))
            until_closed(ws)
    wait_for(lambda: corti.streams()[interaction_id]["ended"] == 2)
    stream = corti.streams()[interaction_id]
    assert (stream["connections"], stream["audio_bytes"]) == (2, sent)
    assert stream["audio_ms"] == 3000.0
    assert [s["audio_ms"] for s in stream["sockets"]] == [1000.0, 2000.0]
    # Each socket's sentences have IDs of their own.
    assert segment_id(interaction_id, 0, 0) != segment_id(interaction_id, 1, 0)


def test_audio_that_is_not_webm_is_flagged_once_and_the_socket_stays(corti):
    interaction_id = new_interaction(corti)
    noise = [b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(100)] * 3
    with open_stream(corti, interaction_id) as ws:
        configure(ws)
        for chunk in noise:
            ws.send(chunk)
        ws.send(json.dumps({"type": "flush"}))
        error, flushed = receive(ws), receive(ws)
    assert error["type"] == "error"
    assert error["error"]["details"] == (
        "The audio is not WebM/Opus: the stream does not start with an EBML header."
    )
    assert flushed == {"type": "flushed"}
    wait_for(lambda: only_socket(corti, interaction_id)["closed_by"] == "client")
    record = only_socket(corti, interaction_id)
    assert record["audio_bytes"] == sum(map(len, noise))
    assert (record["valid_webm"], record["audio_ms"]) == (False, 0.0)


def test_reset_forgets_the_streams(corti):
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        configure(ws)
    assert interaction_id in corti.streams()
    corti.reset()
    assert corti.streams() == {}


# --- the fault switch ------------------------------------------------------------


def test_drop_cuts_the_socket_after_its_delay(corti):
    set_faults(corti, fault("drop", "stream", delay=0.5, count=1))
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
        accepted = time.monotonic()
        with pytest.raises(ConnectionClosedError):
            ws.recv(timeout=RECV_TIMEOUT)
        assert 0.4 <= time.monotonic() - accepted < 3.0
        assert ws.close_code == 1006  # no closing handshake
    wait_for(lambda: only_socket(corti, interaction_id)["closed_by"] == "fault")
    assert counts(corti)["fault:stream:drop"] == 1
    # The rule was used up: the next socket stays.
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
        ws.send(json.dumps({"type": "flush"}))
        assert receive(ws) == {"type": "flushed"}


def test_a_drop_due_after_the_socket_closed_changes_nothing(corti):
    set_faults(corti, fault("drop", "stream", delay=0.3))
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        configure(ws)
    time.sleep(0.5)
    assert only_socket(corti, interaction_id)["closed_by"] == "client"


def test_config_denied_fault(corti):
    set_faults(corti, fault("config-denied", "stream"))
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws) == {"type": "CONFIG_DENIED", "reason": "fault switch"}
        assert until_closed(ws) == []
    assert counts(corti)["fault:stream:config-denied"] == 1


def test_slow_fault_accepts_the_config_late(corti):
    set_faults(corti, fault("slow", "stream", delay=0.5))
    interaction_id = new_interaction(corti)
    with open_stream(corti, interaction_id) as ws:
        sent = time.monotonic()
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}
        assert 0.45 <= time.monotonic() - sent < 3.0


@pytest.mark.parametrize("status", [401, 403, 500])
def test_status_faults_refuse_the_handshake(corti, status):
    set_faults(corti, fault(str(status), "stream", count=1))
    interaction_id = new_interaction(corti)
    assert refusal(corti.stream_url(interaction_id, token=corti.token())) == status
    assert counts(corti)[f"fault:stream:{status}"] == 1
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws) == {"type": "CONFIG_ACCEPTED"}


def test_a_fault_is_kept_for_a_socket_that_opens(corti):
    set_faults(corti, fault("config-denied", "stream", count=1))
    interaction_id = new_interaction(corti)
    assert refusal(corti.stream_url(interaction_id)) == 401
    with open_stream(corti, interaction_id) as ws:
        assert configure(ws)["type"] == "CONFIG_DENIED"


def test_any_rules_reach_the_socket_too(corti):
    interaction_id = new_interaction(corti)
    url = corti.stream_url(interaction_id, token=corti.token())
    # A socket creates nothing: "created-503" is a plain 503 there.
    set_faults(corti, fault("created-503", "any", count=1))
    assert refusal(url) == 503
    assert counts(corti)["fault:stream:created-503"] == 1


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (fault("config-denied", "create"), "for the stream endpoint only"),
        (fault("config-denied", "any"), "for the stream endpoint only"),
        (fault("created-504", "stream"), "means nothing on a stream"),
        (fault("slow-created", "stream"), "means nothing on a stream"),
    ],
)
def test_the_switch_refuses_kinds_that_make_no_sense_there(corti, rule, message):
    answer = post_faults(corti, [rule])
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
