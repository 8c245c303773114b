"""The address a stream token is put on (intake/corti/streams.py): only the
configured Corti origin, only the interaction's own streams, one token."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from intake.corti.streams import (
    StreamAddressError,
    StreamConfiguration,
    StreamMode,
    stream_origin,
    stream_url,
)

ID = uuid.UUID("5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f")
ORIGIN = "wss://api.eu.corti.app"
GOOD = f"{ORIGIN}/audio-bridge/v2/interactions/{ID}/streams?tenant-name=base"


def test_the_token_goes_on_the_interactions_own_address_as_corti_wants():
    url = stream_url(GOOD, token="abc.def+/=", interaction_id=ID, allowed_origin=ORIGIN)

    assert url.startswith(GOOD + "&token=Bearer%20")
    assert parse_qs(urlsplit(url).query) == {
        "tenant-name": ["base"],
        "token": ["Bearer abc.def+/="],
    }


def test_a_token_already_on_the_address_is_replaced_not_repeated():
    url = stream_url(
        GOOD + "&token=Bearer%20stale",
        token="fresh",
        interaction_id=ID,
        allowed_origin=ORIGIN,
    )

    assert parse_qs(urlsplit(url).query)["token"] == ["Bearer fresh"]


@pytest.mark.parametrize(
    "address",
    [
        GOOD.replace("api.eu.corti.app", "api.eu.corti.app.attacker.example"),
        GOOD.replace("wss://api.eu.corti.app", "wss://api.eu.corti.app:8443"),
        GOOD.replace("wss://", "ws://"),
        GOOD.replace("wss://", "https://"),
        GOOD.replace("wss://", "wss://user:secret@"),
        GOOD.replace(str(ID), str(uuid.uuid4())),
        GOOD.replace("/streams", "/other"),
        f"{ORIGIN}/audio-bridge/v2/interactions/{ID}/streams/../../x/streams",
        "not a url",
        "",
    ],
)
def test_no_token_for_any_other_address(address):
    with pytest.raises(StreamAddressError):
        stream_url(address, token="t", interaction_id=ID, allowed_origin=ORIGIN)


def test_the_origin_compares_scheme_host_and_port():
    assert stream_origin("WSS://API.eu.corti.app/x") == ORIGIN
    assert stream_origin("ws://127.0.0.1:8766/x?y") == "ws://127.0.0.1:8766"
    assert stream_origin("ws://[::1]:8766/x") == "ws://[::1]:8766"


def test_the_config_message_has_a_doctor_and_a_patient_on_one_channel():
    message = StreamConfiguration(
        primary_language="da", mode=StreamMode.FACTS
    ).to_message()

    assert message == {
        "type": "config",
        "configuration": {
            "transcription": {
                "primaryLanguage": "da",
                "isDiarization": True,
                "isMultichannel": False,
                "participants": [
                    {"channel": 0, "role": "doctor"},
                    {"channel": 0, "role": "patient"},
                ],
            },
            "mode": {"type": "facts", "outputLocale": "da"},
        },
    }
