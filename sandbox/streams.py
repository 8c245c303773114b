"""Corti's streams websocket, simulated: recording a consultation.

`StreamServer` runs a `websockets` server with an event loop of its own in a
daemon thread of the simulator's process, on a port of its own, and shares
the simulator's `SimulatorState` (under its lock). The socket lives at
``/audio-bridge/v2/interactions/{id}/streams?tenant-name=T&token=Bearer%20X``
(an ``Authorization: Bearer`` header does too). The opening handshake is
refused with 401 (no, unknown or expired token), 403 (a token whose scope is
not ``streams``, or another tenant) or 404 (no such interaction).

Then, as Corti: a ``config`` message within `config_timeout` seconds, answered
``CONFIG_ACCEPTED``, ``CONFIG_DENIED`` (with a reason) or ``CONFIG_TIMEOUT``;
binary messages of WebM/Opus audio (read by `sandbox.webm`); ``transcript``
segments made up from how much audio arrived (a sentence per 3 s: interim
after its first and second second, final after its third), ``facts`` after
each final sentence in facts mode; ``flush`` -> ``flushed``; ``end`` ->
the last sentence's final segment, ``usage``, ``ENDED`` and a close.

Faults (endpoint ``stream``): a status refuses the handshake; ``drop`` cuts
the connection `delay` seconds after CONFIG_ACCEPTED; ``slow`` accepts the
config `delay` seconds late; ``config-denied`` denies it; ``hang`` answers
nothing and cuts the connection after `delay` seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import re
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .simulator import LIMITED_SCOPES, LOOPBACK_HOST_NAMES, SimulatorState
from .webm import WebMReader

logger = logging.getLogger(__name__)
# The library's own lines: at DEBUG it writes each request line, whose query
# string holds the token; never below INFO.
protocol_logger = logging.getLogger(f"{__name__}.protocol")
protocol_logger.setLevel(logging.INFO)

STREAM_PATH = re.compile(r"/audio-bridge/v2/interactions/([^/]+)/streams")
LANGUAGES = (
    "en",
    "en-US",
    "en-GB",
    "da",
    "de",
    "fr",
    "sv",
    "no",
    "nl",
    "es",
    "it",
    "pt",
)
ROLES = ("doctor", "patient", "multiple")
MODES = ("facts", "transcription")
FLAGS = ("isDiarization", "diarize", "isMultichannel")
SENTENCE_SECONDS = 3
#: The made-up consultation: six words a sentence (two more each second),
#: and the fact each sentence yields in facts mode.
SENTENCES = (
    "The patient reports a mild headache.",
    "It started three days ago today.",
    "No fever, nausea or visual changes.",
    "Blood pressure is one thirty eighty.",
    "Advised rest, fluids and paracetamol daily.",
    "Review in one week if worse.",
)
FACTS = (
    ("Mild headache", "history-of-present-illness"),
    ("Onset three days ago", "history-of-present-illness"),
    ("No fever, nausea or visual changes", "history-of-present-illness"),
    ("Blood pressure 130/80", "vitals"),
    ("Rest, fluids and paracetamol", "plan"),
    ("Review in one week if worse", "plan"),
)
#: Credits a minute of audio costs (the simulator's own price).
CREDITS_PER_MINUTE = 1.0
POLICY_VIOLATION = 1008
ERROR_DOC = "https://docs.corti.ai/api-reference/stream"
NOT_WEBM = "The audio is not WebM/Opus"


def segment_id(interaction_id: str, socket_number: int, sentence: int) -> str:
    """The stable ID of one sentence's segments (interim and final share it)."""
    key = f"segment/{interaction_id}/{socket_number}/{sentence}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def sentence_text(sentence: int, seconds: int) -> str:
    """What a sentence says after `seconds` (1..3) of its audio."""
    words = SENTENCES[sentence % len(SENTENCES)].split()
    shown = math.ceil(len(words) * seconds / SENTENCE_SECONDS)
    return " ".join(words[:shown])


def config_problem(configuration: Any) -> str | None:
    """Why Corti would deny `configuration`, or None; unknown fields pass."""
    if not isinstance(configuration, dict):
        return "configuration must be an object"
    transcription = configuration.get("transcription")
    if not isinstance(transcription, dict):
        return "transcription is required"
    language = transcription.get("primaryLanguage")
    if not isinstance(language, str) or language not in LANGUAGES:
        return f"unsupported primaryLanguage {language!r}"
    participants = transcription.get("participants")
    if not isinstance(participants, list) or not participants:
        return "participants must be a non-empty list"
    for participant in participants:
        problem = _participant_problem(participant)
        if problem:
            return problem
    for flag in FLAGS:
        if flag in transcription and not isinstance(transcription[flag], bool):
            return f"{flag} must be a boolean"
    return _mode_problem(configuration.get("mode"))


def _participant_problem(participant: Any) -> str | None:
    if not isinstance(participant, dict):
        return "each participant must be an object"
    channel = participant.get("channel")
    if not isinstance(channel, int) or isinstance(channel, bool) or channel < 0:
        return "participant channel must be a whole number from 0"
    if participant.get("role") not in ROLES:
        return f"participant role must be one of {', '.join(ROLES)}"
    return None


def _mode_problem(mode: Any) -> str | None:
    if not isinstance(mode, dict) or mode.get("type") not in MODES:
        return f"mode.type must be one of {', '.join(MODES)}"
    locale = mode.get("outputLocale")
    if locale is not None and locale not in LANGUAGES:
        return f"unsupported outputLocale {locale!r}"
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stream_fault_kind(kind: str) -> str:
    """What an ``any`` rule's kind means on a socket, which creates nothing."""
    if kind == "slow-created":
        return "slow"
    return kind.removeprefix("created-")


@dataclass
class Admission:
    """What the handshake learned about a socket, for its handler."""

    interaction_id: str
    fault_kind: str | None = None
    fault_delay: float = 0.0


@dataclass
class StreamSession:
    """One stream socket after the handshake: Corti's side of the protocol."""

    connection: ServerConnection
    state: SimulatorState
    interaction_id: str
    fault_kind: str | None
    fault_delay: float
    config_timeout: float
    reader: WebMReader = field(default_factory=WebMReader)
    record: dict[str, Any] = field(default_factory=dict)
    number: int = 0
    configuration: dict[str, Any] | None = None
    seconds_sent: int = 0
    reported_invalid: bool = False
    drop_timer: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        self._open_record()
        try:
            if await self._handshake():
                await self._stream()
        except ConnectionClosed:
            pass
        finally:
            if self.drop_timer is not None:
                # Closed before the fault fired: it must not relabel the close.
                self.drop_timer.cancel()
            self._update(closed_by=self.record["closed_by"] or "client")

    # --- the record in the simulator's state -------------------------------

    def _open_record(self) -> None:
        with self.state.lock:
            streams = self.state.streams.setdefault(
                self.interaction_id,
                {
                    "connections": 0,
                    "configs": [],
                    "audio_bytes": 0,
                    "audio_ms": 0.0,
                    "sockets": [],
                    "ended": 0,
                },
            )
            streams["connections"] += 1
            self.number = len(streams["sockets"])
            self.record = {
                "audio_bytes": 0,
                "audio_ms": 0.0,
                "valid_webm": False,
                "codec": None,
                "ended": False,
                "closed_by": None,
                "mode": None,
                "language": None,
            }
            streams["sockets"].append(self.record)

    def _update(self, **changes: Any) -> None:
        with self.state.lock:
            self.record.update(changes)
            streams = self.state.streams.get(self.interaction_id)
            if streams is None:
                return  # reset meanwhile: nothing to add to
            sockets = streams["sockets"]
            streams["audio_bytes"] = sum(s["audio_bytes"] for s in sockets)
            streams["audio_ms"] = sum(s["audio_ms"] for s in sockets)
            streams["ended"] = sum(1 for s in sockets if s["ended"])

    # --- before CONFIG_ACCEPTED -------------------------------------------

    async def _handshake(self) -> bool:
        """Wait for the config and answer it; True once it is accepted."""
        if self.fault_kind == "hang":
            await asyncio.sleep(self.fault_delay)
            return self._cut()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config_timeout
        while True:
            try:
                message = await asyncio.wait_for(
                    self.connection.recv(), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                await self._send({"type": "CONFIG_TIMEOUT"})
                return await self._close(POLICY_VIOLATION, "no configuration")
            if isinstance(message, bytes):
                await self._error(400, "Audio arrived before the configuration.")
                return await self._close(POLICY_VIOLATION, "audio before config")
            data = _json(message)
            if data.get("type") == "config":
                return await self._configure(data.get("configuration"))

    async def _configure(self, configuration: Any) -> bool:
        kind = self.fault_kind
        reason = "fault switch" if kind == "config-denied" else None
        reason = reason or config_problem(configuration)
        if reason is not None:
            await self._send({"type": "CONFIG_DENIED", "reason": reason})
            return await self._close(POLICY_VIOLATION, "configuration denied")
        if kind == "slow":
            await asyncio.sleep(self.fault_delay)
        self.configuration = configuration
        with self.state.lock:
            streams = self.state.streams.get(self.interaction_id)
            if streams is not None:
                streams["configs"].append(configuration)
        self._update(
            mode=configuration["mode"]["type"],
            language=configuration["transcription"]["primaryLanguage"],
        )
        await self._send({"type": "CONFIG_ACCEPTED"})
        if kind == "drop":
            loop = asyncio.get_running_loop()
            self.drop_timer = loop.call_later(self.fault_delay, self._cut)
        return True

    # --- after CONFIG_ACCEPTED --------------------------------------------

    async def _stream(self) -> None:
        async for message in self.connection:
            if isinstance(message, bytes):
                await self._audio(message)
                continue
            kind = _json(message).get("type")
            if kind == "config":
                await self._send({"type": "CONFIG_ALREADY_RECEIVED"})
            elif kind == "flush":
                # Every message before it was handled in order: all processed.
                await self._send({"type": "flushed"})
            elif kind == "end":
                await self._end()
                return

    async def _audio(self, chunk: bytes) -> None:
        self.reader.feed(chunk)
        self._update(
            audio_bytes=self.reader.bytes_seen,
            audio_ms=self.reader.duration_ms,
            valid_webm=self.reader.valid,
            codec=self.reader.codec,
        )
        if self.reader.error is not None and not self.reported_invalid:
            self.reported_invalid = True
            await self._error(400, f"{NOT_WEBM}: {self.reader.error}.")
        whole = int(self.reader.duration_ms // 1000)
        while self.seconds_sent < whole:
            self.seconds_sent += 1
            await self._second(self.seconds_sent)

    async def _second(self, second: int) -> None:
        """The segment due after `second` seconds of audio."""
        sentence, into = divmod(second - 1, SENTENCE_SECONDS)
        final = into + 1 == SENTENCE_SECONDS
        await self._segment(sentence, into + 1, float(second), final=final)

    async def _segment(
        self, sentence: int, seconds: int, end: float, *, final: bool
    ) -> None:
        participants = self._participants()
        segment = {
            "id": segment_id(self.interaction_id, self.number, sentence),
            "transcript": sentence_text(sentence, seconds),
            "final": final,
            "speakerId": sentence % 2,
            "participant": {
                "channel": participants[sentence % len(participants)]["channel"]
            },
            "time": {"start": float(sentence * SENTENCE_SECONDS), "end": end},
        }
        await self._send({"type": "transcript", "data": [segment]})
        if final and self._mode() == "facts":
            await self._send({"type": "facts", "fact": [self._fact(sentence)]})

    def _fact(self, sentence: int) -> dict[str, Any]:
        text, group = FACTS[sentence % len(FACTS)]
        key = f"{self.interaction_id}/{self.number}/{sentence}"
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fact/{key}")),
            "text": text,
            "group": group,
            "groupId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"group/{group}")),
            "isDiscarded": False,
            "source": "core",
            "createdAt": _now(),
        }

    async def _end(self) -> None:
        duration = self.reader.duration_ms / 1000
        into = self.seconds_sent % SENTENCE_SECONDS
        if into or duration > self.seconds_sent:
            # The sentence the recording stopped in, finished as it is.
            sentence = self.seconds_sent // SENTENCE_SECONDS
            await self._segment(sentence, max(into, 1), round(duration, 3), final=True)
        credits = round(duration / 60 * CREDITS_PER_MINUTE, 6)
        await self._send({"type": "usage", "credits": credits})
        # Recorded first: a client that read ENDED finds it in the state.
        self._update(ended=True)
        await self._send({"type": "ENDED"})
        await self._close(1000, "ended")

    # --- plumbing ---------------------------------------------------------

    def _participants(self) -> list[dict[str, Any]]:
        assert self.configuration is not None  # only after CONFIG_ACCEPTED
        participants: list[dict[str, Any]] = self.configuration["transcription"][
            "participants"
        ]
        return participants

    def _mode(self) -> str | None:
        mode: str | None = (self.configuration or {}).get("mode", {}).get("type")
        return mode

    async def _send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def _error(self, status: int, details: str) -> None:
        phrase = HTTPStatus(status).phrase
        await self._send(
            {
                "type": "error",
                "error": {
                    "id": str(uuid.uuid4()),
                    "title": phrase,
                    "status": status,
                    "details": details,
                    "doc": ERROR_DOC,
                },
            }
        )

    async def _close(self, code: int, reason: str) -> bool:
        self._update(closed_by="server")
        await self.connection.close(code, reason)
        return False

    def _cut(self) -> bool:
        """Lose the connection without a closing handshake (a fault)."""
        self._update(closed_by="fault")
        self.connection.transport.abort()
        return False


def _json(message: str | bytes) -> dict[str, Any]:
    """A text message's JSON object; anything else reads as an unknown type."""
    try:
        data = json.loads(message)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class StreamServer:
    """The streams websocket in a thread of its own, sharing `state`."""

    def __init__(
        self,
        state: SimulatorState,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config_timeout: float = 10.0,
    ) -> None:
        self.state = state
        self.host = host.strip("[]")
        self.requested_port = port
        self.config_timeout = config_timeout
        self.port = 0
        # Weak: a handshake that fails after the checks never reaches _handle.
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, Admission] = (
            weakref.WeakKeyDictionary()
        )
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._run, name="corti-streams", daemon=True
        )

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Listen; raise what stopped it (say, the port is taken)."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the stream server did not start in time")
        if self._failure is not None:
            raise self._failure
        self.state.stream_origin = self.origin

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket (1001, going away) and the listener."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), in the main thread
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self.requested_port,
            process_request=self._process_request,
            logger=protocol_logger,
        ) as server:
            self.port = _port(server)
            self._ready.set()
            await self._stopping.wait()

    # --- the opening handshake ---------------------------------------------

    def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = urlsplit(request.path).path
        refusal = self._refusal(connection, request)
        if refusal is not None:
            status, text = refusal
            logger.info("WS %s -> %s", path, int(status))
            return connection.respond(status, text + "\n")
        logger.info("WS %s -> 101", path)
        return None

    def _refusal(
        self, connection: ServerConnection, request: Request
    ) -> tuple[HTTPStatus, str] | None:
        """Why the handshake is refused, or None (and the socket is admitted)."""
        state = self.state
        url = urlsplit(request.path)
        match = STREAM_PATH.fullmatch(url.path)
        if match is None:
            return HTTPStatus.NOT_FOUND, "No stream here."
        # Only requests addressed to this machine (no DNS rebinding); two
        # Host headers are as suspect as a foreign one.
        hosts = [host.lower() for host in request.headers.get_all("Host")]
        ours = {f"{name}:{self.port}" for name in LOOPBACK_HOST_NAMES}
        if len(hosts) != 1 or hosts[0] not in ours:
            return HTTPStatus.FORBIDDEN, "Address the simulator by a loopback name."
        state.count("stream_requests")
        fault = state.pick_fault("stream")
        kind = stream_fault_kind(fault.kind) if fault is not None else None
        if kind is not None and kind.isdigit():
            return HTTPStatus(int(kind)), "Refused by the fault switch."
        query = parse_qs(url.query)
        refusal = self._auth_refusal(request, query, match.group(1))
        if refusal is not None:
            if fault is not None:
                # Nothing to spoil: keep the fault for a socket that opens.
                state.refund(fault, "stream")
            return refusal
        self._admitted[connection] = Admission(
            interaction_id=str(uuid.UUID(match.group(1))),
            fault_kind=kind,
            fault_delay=fault.delay if fault is not None else 0.0,
        )
        return None

    def _auth_refusal(
        self, request: Request, query: dict[str, list[str]], item: str
    ) -> tuple[HTTPStatus, str] | None:
        state = self.state
        credential = query.get("token", [request.headers.get("Authorization", "")])
        scheme, _, token = credential[-1].partition(" ")
        grant = state.token_grant(token) if scheme.lower() == "bearer" else None
        if grant is None:
            return HTTPStatus.UNAUTHORIZED, "The token is missing, unknown or expired."
        tenant, scopes = grant
        if scopes & LIMITED_SCOPES and "streams" not in scopes:
            return HTTPStatus.FORBIDDEN, "This token's scope does not allow streams."
        if query.get("tenant-name", [""])[-1] != tenant:
            return HTTPStatus.FORBIDDEN, "tenant-name does not match the token."
        try:
            key = str(uuid.UUID(item))
        except ValueError:
            return HTTPStatus.NOT_FOUND, "No such interaction."
        with state.lock:
            known = key in state.interactions
        if not known:
            return HTTPStatus.NOT_FOUND, "No such interaction."
        return None

    # --- after the handshake -------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        admission = self._admitted.pop(connection)
        self.state.count("stream_connections")
        session = StreamSession(
            connection=connection,
            state=self.state,
            interaction_id=admission.interaction_id,
            fault_kind=admission.fault_kind,
            fault_delay=admission.fault_delay,
            config_timeout=self.config_timeout,
        )
        await session.run()


def _port(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])
