"""The simulator against a client no one here wrote: Corti's official
JavaScript SDK (`@corti/sdk`, pinned in tests/sandbox/sdk/package.json and
installed by `make test`), run with Node: create, a paged list, a filtered
list, get, update and delete, and a recording over the streams websocket.
What the SDK sends must pass the simulator's checks, and what the simulator
answers must parse in the SDK."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.corti import corti_create
from tests.support.processes import BASE_DIR
from tests.support.webm import webm_opus

SDK_DIR = Path(BASE_DIR) / "tests" / "sandbox" / "sdk"
SDK_PACKAGE = SDK_DIR / "node_modules" / "@corti" / "sdk" / "package.json"

pytestmark = pytest.mark.slow


@pytest.fixture
def sdk():
    node = shutil.which("node")
    if node is None or not SDK_PACKAGE.exists():
        pytest.fail(
            "Node and @corti/sdk are needed: `make sdk-deps` (part of `make test`) "
            "installs the SDK from tests/sandbox/sdk/package-lock.json."
        )
    return node


def run_sdk(node: str, script: str, **env: str) -> dict:
    """Run one of the SDK scripts under Node; the JSON line it printed last."""
    result = subprocess.run(
        [node, script],
        cwd=SDK_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_official_sdk_drives_every_call_against_the_simulator(sdk, simulator):
    simulator.reset()
    seen = run_sdk(
        sdk,
        "sdk_check.mjs",
        SIM_BASE=simulator.api_url,
        SIM_LOGIN=f"{simulator.base_url}/realms",
        SIM_TENANT=simulator.tenant,
        SIM_CLIENT_ID=simulator.client_id,
        SIM_CLIENT_SECRET=simulator.client_secret,
    )

    created = seen["created"]
    assert len(created) == 5
    assert seen["websocketUrl"].startswith("ws://")
    # Pages of 2 until the empty one: every interaction once, oldest first.
    assert seen["listed"] == created
    assert sorted(seen["byPatient"]) == sorted(created[0::2])
    assert seen["inProgress"] == 5
    assert seen["got"] == {
        "id": created[0],
        "identifier": "SDK-ENC-1",
        "startedAt": "2026-03-29T08:01:00.000Z",
        "patientName": "Søren Ødegård",
        "createdAt": True,
    }
    assert seen["updated"] == {
        "status": "completed",
        "endedAt": "2026-03-29T09:00:00.000Z",
        "title": "SDK visit 1, ended",
        "patientName": "Søren Ødegaard",
        "gender": "male",
    }
    assert seen["afterDelete"] == 404
    assert seen["secondDelete"] == 404

    state = simulator.state()
    assert state["deleted"] == [created[1]]
    held = {item["id"]: item for item in state["interactions"]}
    assert held[created[0]]["encounter"]["status"] == "completed"
    assert held[created[0]]["patient"]["birthDate"].startswith("1980-01-02T00:00:00")
    assert state["counts"].get("fault:create:400", 0) == 0


def test_the_official_sdk_streams_a_recording_to_the_simulator(
    sdk, simulator, tmp_path
):
    simulator.reset()
    interaction_id = str(
        corti_create(
            simulator,
            {
                "encounter": {
                    "identifier": "SDK-STREAM-1",
                    "status": "in-progress",
                    "type": "consultation",
                    "period": {"startedAt": "2026-03-29T08:00:00Z"},
                }
            },
        )
    )
    chunks = webm_opus(4)
    audio = tmp_path / "audio.json"
    audio.write_text(json.dumps([base64.b64encode(c).decode() for c in chunks]))
    seen = run_sdk(
        sdk,
        "stream_check.mjs",
        SIM_STREAM_ORIGIN=simulator.stream_origin,
        SIM_BASE=simulator.api_url,
        SIM_TENANT=simulator.tenant,
        # What a server hands a recording page: a token for streams only.
        SIM_TOKEN=simulator.token(scope="openid streams"),
        SIM_INTERACTION=interaction_id,
        SIM_AUDIO=str(audio),
    )

    assert "errors" not in seen
    assert seen["types"] == ["CONFIG_ACCEPTED"] + ["transcript"] * 5 + [
        "usage",
        "ENDED",
    ]
    assert [
        (t["transcript"], t["final"], t["start"], t["end"]) for t in seen["transcripts"]
    ] == [
        ("The patient", False, 0, 1),
        ("The patient reports a", False, 0, 2),
        ("The patient reports a mild headache.", True, 0, 3),
        ("It started", False, 3, 4),
        ("It started", True, 3, 4),
    ]
    ids = [t["id"] for t in seen["transcripts"]]
    assert ids[0] == ids[1] == ids[2] != ids[3] == ids[4]
    assert seen["credits"] == 0.066667
    assert seen["bytesSent"] == sum(map(len, chunks))

    stream = simulator.streams()[interaction_id]
    assert stream["connections"] == 1  # the SDK did not reconnect
    assert stream["configs"][0]["transcription"]["primaryLanguage"] == "en"
    assert stream["audio_bytes"] == sum(map(len, chunks))
    assert stream["audio_ms"] == 4000.0
    (socket,) = stream["sockets"]
    assert socket["valid_webm"] is True
    assert socket["codec"] == "A_OPUS"
    assert socket["ended"] is True
    assert socket["mode"] == "transcription"
    counts = simulator.state()["counts"]
    assert counts["stream_tokens_issued"] == 1
    assert counts["stream_connections"] == 1
