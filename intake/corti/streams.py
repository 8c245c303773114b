"""Corti's streams websocket: the address with its token, and the `config`
message a recording sends first (API-NOTES, "Streams"; the official SDK's
`StreamConfig`).

The browser opens the socket itself; the dashboard only hands it an address
that carries a token limited to the stream sockets (of the tenant: Corti does
not bind a token to one interaction), on that interaction's own address, and
never for a host other than the configured Corti environment's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = [
    "STREAM_LANGUAGES",
    "StreamAddressError",
    "StreamConfiguration",
    "StreamMode",
    "stream_origin",
    "stream_url",
]


class StreamMode(StrEnum):
    TRANSCRIPTION = "transcription"
    FACTS = "facts"


#: Primary languages offered for a recording (Corti's stream languages).
STREAM_LANGUAGES: dict[str, str] = {
    "en": "English",
    "en-GB": "English (United Kingdom)",
    "en-US": "English (United States)",
    "da": "Danish",
    "de": "German",
    "fr": "French",
    "sv": "Swedish",
    "no": "Norwegian",
    "nl": "Dutch",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
}


@dataclass(frozen=True, kw_only=True)
class StreamConfiguration:
    """What a recording asks of Corti: one microphone, a doctor and a patient
    on it (diarized), its language, transcripts or facts too."""

    primary_language: str
    mode: StreamMode

    def to_message(self) -> dict[str, Any]:
        return {
            "type": "config",
            "configuration": {
                "transcription": {
                    "primaryLanguage": self.primary_language,
                    "isDiarization": True,
                    "isMultichannel": False,
                    "participants": [
                        {"channel": 0, "role": "doctor"},
                        {"channel": 0, "role": "patient"},
                    ],
                },
                "mode": {
                    "type": str(self.mode),
                    "outputLocale": self.primary_language.split("-")[0],
                },
            },
        }


class StreamAddressError(ValueError):
    """An interaction's websocket URL that no token may be sent to."""


def stream_origin(url: str) -> str:
    """`scheme://host[:port]` of a websocket address, lower-cased."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise StreamAddressError("not a websocket address")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def stream_url(
    websocket_url: str,
    *,
    token: str,
    interaction_id: uuid.UUID,
    allowed_origin: str,
) -> str:
    """The interaction's websocket URL with `token` appended as Corti expects
    (`token=Bearer%20<token>`).

    Raises StreamAddressError unless the address is on `allowed_origin` (the
    configured Corti environment) and names this interaction's streams: a
    token is never handed out for another host or another interaction.
    """
    try:
        parts = urlsplit(websocket_url)
        origin = stream_origin(websocket_url)
    except ValueError as exc:
        raise StreamAddressError("not a websocket address") from exc
    if origin != stream_origin(allowed_origin):
        raise StreamAddressError(f"{origin} is not the configured Corti origin")
    expected = f"/audio-bridge/v2/interactions/{interaction_id}/streams"
    if parts.path.rstrip("/") != expected or parts.username or parts.password:
        raise StreamAddressError("not this interaction's streams address")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"]
    query.append(("token", f"Bearer {token}"))
    return parts._replace(query=urlencode(query, quote_via=quote)).geturl()
