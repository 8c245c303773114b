"""Writes: recording a consultation from the interaction's page.

The browser streams the microphone straight to Corti's streams websocket;
the dashboard decides who may, keeps the patient's consent on the record,
mints a token limited to the stream sockets (`scope=openid streams`) at the
moment it is needed, and keeps what the page reports about the recording.

A stream token is a bearer secret: it is handed to the page once (in the
answer to the press that needed it), never stored, never logged, never put
in the cache. That it was issued, to whom, for which interaction and why, is
kept in the access trail (AccessEntry "stream_token").

Corti scopes such a token to its stream sockets, not to one interaction: it
could open the socket of any interaction of the tenant for its 300 s. The
dashboard narrows what it can: one is minted only for an interaction the
user may record, is put only on that interaction's address on the
configured Corti origin, and who got it is on the record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from intake.clinic_time import clinic_time_text
from intake.corti import get_client
from intake.corti.errors import CortiError
from intake.corti.streams import (
    STREAM_LANGUAGES,
    StreamAddressError,
    StreamConfiguration,
    StreamMode,
    stream_url,
)
from intake.models import RECORDING_FAILURES, AccessEntry, Interaction, Recording

from . import lifecycle
from .audit import audit_record

logger = logging.getLogger(__name__)

State = Recording.State
#: A recording in these states is under way (one per interaction at a time).
OPEN_STATES = (State.STARTING, State.RECORDING)
#: The languages a recording may be in (code: name), as the page offers them.
LANGUAGES = STREAM_LANGUAGES

#: Why a recording under way asks for another token (the trail keeps it;
#: the others are "record" and "copy").
RENEWALS = ("renew", "reconnect")
#: What a page may report, and the state each one leads to.
REPORTS = ("accepted", "progress", "ended", "failed", "interrupted")
#: How often a recording page says it is still there (progress reports).
HEARTBEAT_SECONDS = 30
#: The most segments (and facts) of a transcript a page may have kept.
TRANSCRIPT_MAX_SEGMENTS = 5_000


class RecordingRefused(Exception):
    """Why a recording or a token cannot be had: one sentence for the page,
    a stable `code`, and the HTTP status a view answers with."""

    def __init__(self, message: str, *, code: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass(frozen=True)
class StreamGrant:
    """What the page gets once: the address with its token, and how long the
    token lives. Never stored (nor shown in a repr, an error page's locals)."""

    url: str = field(repr=False)
    expires_in: float
    recording: Recording | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"url": self.url, "expires_in": self.expires_in}
        if self.recording is not None:
            data["recording"] = str(self.recording.pk)
            data["report_url"] = recording_report_url(self.recording)
            data["token_url"] = recording_token_url(self.recording)
            data["configuration"] = recording_configuration(self.recording).to_message()
        return data


def recording_report_url(recording: Recording) -> str:
    from django.urls import reverse

    return reverse(
        "intake:recording_report",
        args=[recording.interaction_id, recording.pk],
    )


def recording_token_url(recording: Recording) -> str:
    from django.urls import reverse

    return reverse(
        "intake:recording_token",
        args=[recording.interaction_id, recording.pk],
    )


def recording_configuration(recording: Recording) -> StreamConfiguration:
    return StreamConfiguration(
        primary_language=recording.language, mode=StreamMode(recording.mode)
    )


def default_language() -> str:
    """The clinic's primary language for recordings, when Corti knows it."""
    language = settings.INTAKE_RECORDING_LANGUAGE
    return language if language in STREAM_LANGUAGES else "en"


def recording_allowed(*, user: User, record: Interaction) -> bool:
    """Whoever may change the interaction may record it: its submitter, or
    anyone the clinic's settings allow (`lifecycle.interaction_may_change`)."""
    return lifecycle.interaction_may_change(user=user, record=record)


def recordable(record: Interaction) -> bool:
    """Created in Corti, with a websocket URL, and neither gone nor deleted."""
    return bool(
        record.outcome == Interaction.Outcome.CREATED
        and record.interaction_id
        and record.websocket_url
        and not record.corti_gone_at
        and not record.deleted_at
    )


def recorder_on_page(
    *, user: User, record: Interaction, recordings: list[Recording]
) -> tuple[bool, bool]:
    """Whether the interaction's page shows the recorder to `user`, and
    whether it may open Corti's stream socket at all.

    A recording of theirs under way keeps its recorder whatever else changed
    meanwhile (the page's swaps keep it). A page whose create is not answered
    yet may get the recorder by a swap, so it may open the socket already.
    """
    may_change = recording_allowed(user=user, record=record)
    shown = may_change and (
        recordable(record)
        or any(r.is_open and r.started_by_id == user.pk for r in recordings)
    )
    return shown, shown or (may_change and record.is_settling)


def token_wait_seconds() -> int:
    """How long a page waits for a token: at least as long as the dashboard
    may wait for Corti's sign-in service (its retries included), so it never
    gives up on a start the dashboard then completes."""
    waits: float = (
        settings.CORTI_CONNECT_TIMEOUT
        + settings.CORTI_TIMEOUT
        + settings.CORTI_RETRY_BUDGET
    )
    return math.ceil(waits + 5)


@sensitive_variables()
def recording_start(
    *,
    request: HttpRequest,
    record: Interaction,
    user: User,
    consent: bool,
    language: str,
    mode: str,
) -> StreamGrant:
    """Start a recording: the consent kept, a stream token minted.

    Raises RecordingRefused, keeping nothing, when the user may not record
    it, it cannot be recorded, the consent was not confirmed, the choice is
    not one Corti knows, or another recording of it is under way; when
    Corti's sign-in service gives no token, the attempt is kept, closed as
    failed.
    """
    _check(user=user, record=record)
    if not consent:
        raise RecordingRefused(
            "Confirm that the patient agreed before recording.",
            code="consent",
            status=400,
        )
    if language not in STREAM_LANGUAGES:
        raise RecordingRefused(
            "Choose one of the languages offered.", code="language", status=400
        )
    if mode not in {str(m) for m in StreamMode}:
        raise RecordingRefused(
            "Choose transcript only or transcript and facts.",
            code="mode",
            status=400,
        )
    _address(record, token="")
    recording = _one_at_a_time(
        record,
        user=user,
        language=language,
        mode=mode,
        session=_session_hash(request.session.session_key),
    )
    try:
        url, expires_in = _mint(record)
    except RecordingRefused as refused:
        # Closed at once: the consent and the attempt stay on the record,
        # nothing is left "starting".
        Recording.objects.filter(pk=recording.pk).update(
            state=State.FAILED, failure=refused.code, finished_at=timezone.now()
        )
        raise
    if not Recording.objects.filter(pk=recording.pk, state=State.STARTING).update(
        tokens_issued=1
    ):
        # Closed while the token was being fetched (signed out meanwhile):
        # the token is not handed out.
        recording.refresh_from_db()
        raise RecordingRefused(
            f"This recording was closed as it started ({recording.failure_text}); "
            "start a new one.",
            code="closed",
        )
    recording.refresh_from_db()
    _audit(request, record, recording=recording, purpose="record", expires=expires_in)
    return StreamGrant(url=url, expires_in=expires_in, recording=recording)


@sensitive_variables()
def recording_token(
    *,
    request: HttpRequest,
    recording: Recording,
    user: User,
    purpose: str,
) -> StreamGrant:
    """A fresh token for a recording under way: before the one held expires
    (`renew`), or for a new socket after one dropped (`reconnect`). Only its
    own starter gets one, and only while it is open."""
    record = recording.interaction
    try:
        _check(user=user, record=record)
    except RecordingRefused as refused:
        # Its own starter may no longer record it (the clinic's settings
        # changed, it left Corti): the page stops, and the record says why.
        recording_close_refused(
            recording_id=recording.pk,
            user=user,
            failure="left_corti" if refused.code == "not_recordable" else "not_allowed",
        )
        raise
    if recording.started_by_id != user.pk:
        raise RecordingRefused(
            "Only who started this recording can continue it.",
            code="not_yours",
            status=403,
        )
    if not recording.is_open:
        raise RecordingRefused(
            "This recording has stopped; start a new one.", code="closed"
        )
    if purpose not in RENEWALS:
        purpose = "renew"
    url, expires_in = _mint(record)
    Recording.objects.filter(pk=recording.pk).update(
        tokens_issued=F("tokens_issued") + 1, last_seen_at=timezone.now()
    )
    recording.refresh_from_db()
    _audit(request, record, recording=recording, purpose=purpose, expires=expires_in)
    return StreamGrant(url=url, expires_in=expires_in)


@sensitive_variables()
def stream_url_issue(
    *, request: HttpRequest, record: Interaction, user: User
) -> StreamGrant:
    """The websocket URL with a fresh stream token, for a desktop or device
    client: the same permission and trail as a recording, no record of one."""
    _check(user=user, record=record)
    url, expires_in = _mint(record)
    _audit(request, record, recording=None, purpose="copy", expires=expires_in)
    return StreamGrant(url=url, expires_in=expires_in)


def recording_report(
    *,
    recording: Recording,
    user: User,
    event: str,
    seconds: float | None = None,
    lost: float | None = None,
    reconnects: int | None = None,
    failure: str = "",
    transcript: Any = None,
) -> Recording:
    """Keep what the page says of its recording. A closed recording stays as
    it closed (a late or repeated report changes nothing); only its starter
    reports."""
    if recording.started_by_id != user.pk:
        raise RecordingRefused(
            "Only who started this recording can report on it.",
            code="not_yours",
            status=403,
        )
    if event not in REPORTS:
        raise RecordingRefused("Unknown report.", code="event", status=400)
    now = timezone.now()
    fields: dict[str, Any] = {"last_seen_at": now}
    if seconds is not None and math.isfinite(seconds) and seconds >= 0:
        fields["seconds_recorded"] = round(seconds, 1)
    if lost is not None and math.isfinite(lost) and lost >= 0:
        fields["seconds_lost"] = round(lost, 1)
    if reconnects is not None and reconnects >= 0:
        fields["reconnects"] = reconnects
    if event in ("accepted", "progress"):
        # Progress comes only from a recording Corti accepted: it also
        # stands in for a lost "accepted".
        fields["state"] = State.RECORDING
        fields["accepted_at"] = recording.accepted_at or now
    elif event in ("ended", "failed", "interrupted"):
        if event == "interrupted" and recording.accepted_at is None:
            event = "failed"  # nothing was recorded before it stopped
        fields["state"] = {
            "ended": State.ENDED,
            "failed": State.FAILED,
            "interrupted": State.INTERRUPTED,
        }[event]
        fields["finished_at"] = now
        if event != "ended":
            fields["failure"] = failure if failure in RECORDING_FAILURES else "error"
        else:
            # Ended, perhaps with a caveat (Corti never confirmed the end).
            fields["failure"] = failure if failure in RECORDING_FAILURES else ""
        if settings.INTAKE_RECORDING_KEEP_TRANSCRIPT and transcript is not None:
            fields["transcript"] = _transcript(transcript)
    # One conditional UPDATE: a report never reopens a closed recording. The
    # page's own last word may still replace the worker's guess that it had
    # gone quiet (the dashboard was unreachable for a while).
    guessed = Q(state__in=(State.INTERRUPTED, State.FAILED), failure="page_closed")
    still_open = ~Q(state__in=Recording.CLOSED)
    final = event in ("ended", "failed", "interrupted")
    changed = Recording.objects.filter(
        Q(pk=recording.pk) & (still_open | guessed if final else still_open)
    ).update(**fields)
    recording.refresh_from_db()
    if not changed and not final:
        # Still recording on a page the record says stopped (the worker
        # closed it after a silence, or another tab took over): the page
        # stops, so no recording goes on that the record does not show.
        why = recording.failure_text or recording.get_state_display()
        raise RecordingRefused(
            f"The dashboard had already closed this recording ({why[:1].lower()}"
            f"{why[1:]}), so it stopped here. Start a new one to go on.",
            code="closed",
        )
    return recording


def recordings_close_silent(*, now: dt.datetime | None = None) -> int:
    """Mark interrupted the open recordings whose page has said nothing for
    INTAKE_RECORDING_SILENT_MINUTES (a closed tab, a crashed browser): a
    recording is never left "recording" on the record. Returns how many."""
    now = now or timezone.now()
    quiet = now - dt.timedelta(minutes=settings.INTAKE_RECORDING_SILENT_MINUTES)
    return _close(Recording.objects.filter(last_seen_at__lt=quiet), "page_closed", now)


def recordings_close_signed_out(*, session_key: str | None) -> int:
    """Close the open recordings started in this session, which is signing
    out: its pages can no longer report or get a token, and stop at their
    next ask. The record says why at once, instead of "recording" until the
    worker takes the page for gone. Returns how many."""
    session = _session_hash(session_key)
    if not session:
        return 0
    return _close(Recording.objects.filter(session_hash=session), "signed_out")


def recordings_follow_session(*, before: str | None, after: str | None) -> int:
    """The session got a new key (a password change): the recordings it
    started follow it, so its sign-out still closes them."""
    old, new = _session_hash(before), _session_hash(after)
    if not old or not new or old == new:
        return 0
    return Recording.objects.filter(session_hash=old, state__in=OPEN_STATES).update(
        session_hash=new
    )


def recording_close_refused(
    *, recording_id: uuid.UUID, user: User, failure: str
) -> int:
    """Close `user`'s own open recording that the dashboard just refused to
    go on with (no longer allowed, no longer in Corti), saying why."""
    return _close(Recording.objects.filter(pk=recording_id, started_by=user), failure)


def _close(recordings: Any, failure: str, now: dt.datetime | None = None) -> int:
    """The open ones among `recordings` closed for `failure`: never accepted
    by Corti (nothing recorded) failed, else interrupted. Returns how many."""
    now = now or timezone.now()
    failed = recordings.filter(state=State.STARTING).update(
        state=State.FAILED, failure=failure, finished_at=now
    )
    interrupted = recordings.filter(state=State.RECORDING).update(
        state=State.INTERRUPTED, failure=failure, finished_at=now
    )
    return int(failed + interrupted)


def on_signed_out(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """user_logged_out: a sign-out (the Sign out button, idle or too long)."""
    if request is not None and hasattr(request, "session"):
        recordings_close_signed_out(session_key=request.session.session_key)


def recording_of(*, record: Interaction, recording_id: uuid.UUID) -> Recording:
    """The interaction's recording, or Recording.DoesNotExist."""
    return Recording.objects.select_related("interaction").get(
        pk=recording_id, interaction=record
    )


# --- helpers ------------------------------------------------------------------


def _check(*, user: User, record: Interaction) -> None:
    if not recording_allowed(user=user, record=record):
        raise RecordingRefused(
            "Only who created this interaction can record it, unless the clinic "
            "allows clinicians to work on any interaction.",
            code="forbidden",
            status=403,
        )
    if not recordable(record):
        if record.deleted_at or record.corti_gone_at:
            text = "This interaction is no longer in Corti; it cannot be recorded."
        else:
            text = "This interaction was not created in Corti; it cannot be recorded."
        raise RecordingRefused(text, code="not_recordable")


def _one_at_a_time(
    record: Interaction, *, user: User, language: str, mode: str, session: str
) -> Recording:
    """The new recording, kept with its consent, unless another of the
    interaction is under way: a second tab or computer would stream a second
    copy of the consultation into it. A database constraint decides between
    two presses at once. A recording whose page went quiet is closed first
    (a recording page reports every HEARTBEAT_SECONDS), and so is the user's
    own start that Corti never accepted."""
    recordings_close_silent()
    now = timezone.now()
    # The user's own start that never got going (the page reloaded or gave
    # up waiting while the dashboard still finished it) does not stand in the
    # way of their next press; should its page still be alive, its next word
    # is refused and it stops.
    Recording.objects.filter(
        interaction=record, started_by=user, state=State.STARTING
    ).update(state=State.FAILED, failure="started_again", finished_at=now)
    try:
        with transaction.atomic():
            return Recording.objects.create(
                interaction=record,
                started_by=user,
                started_at=now,
                consent_at=now,
                consent_wording=settings.INTAKE_RECORDING_CONSENT_TEXT,
                language=language,
                mode=mode,
                last_seen_at=now,
                session_hash=session,
            )
    except IntegrityError:
        pass
    under_way = (
        Recording.objects.filter(interaction=record, state__in=OPEN_STATES)
        .select_related("started_by")
        .first()
    )
    who = under_way.started_by.get_username() if under_way else "someone"
    when = clinic_time_text(under_way.started_at, seconds=True) if under_way else "now"
    raise RecordingRefused(
        f"A recording of this consultation is already under way, started by "
        f"{who} at {when} (another tab or computer). End it there first.",
        code="under_way",
    )


def _session_hash(session_key: str | None) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest() if session_key else ""


@sensitive_variables()
def _mint(record: Interaction) -> tuple[str, float]:
    """A new stream token, put on the interaction's own address. The address
    is checked before any token is asked for."""
    _address(record, token="")
    try:
        token = get_client().stream_token()
    except CortiError as exc:
        raise RecordingRefused(
            f"Corti did not give a recording token: {exc.message} Try again.",
            code="token_failed",
            status=503,
        ) from exc
    expires_in = max(0.0, token.expires_at - time.time())
    return _address(record, token=token.value), round(expires_in, 1)


@sensitive_variables("token")
def _address(record: Interaction, *, token: str) -> str:
    try:
        return stream_url(
            record.websocket_url,
            token=token,
            interaction_id=record.interaction_id,  # type: ignore[arg-type]
            allowed_origin=settings.CORTI_STREAM_ORIGIN,
        )
    except StreamAddressError as exc:
        logger.warning(
            "Refused a stream token for interaction %s: its websocket URL is "
            "not on CORTI_STREAM_ORIGIN (%s)",
            record.interaction_id,
            exc,
        )
        raise RecordingRefused(
            "This interaction's stream address is not on the configured Corti "
            "environment; no token is sent there. Tell an administrator.",
            code="foreign_address",
            status=502,
        ) from exc


def _audit(
    request: HttpRequest,
    record: Interaction,
    *,
    recording: Recording | None,
    purpose: str,
    expires: float,
) -> None:
    audit_record(
        request,
        AccessEntry.Action.STREAM_TOKEN,
        record=record,
        purpose=purpose,
        recording=str(recording.pk) if recording is not None else None,
        expires_in=expires,
    )


def _transcript(data: Any) -> dict[str, Any]:
    """What the page showed, as text only: final segments and facts."""

    def text(value: Any, limit: int = 10_000) -> str:
        return str(value)[:limit] if isinstance(value, str | int | float) else ""

    segments = data.get("segments") if isinstance(data, dict) else None
    facts = data.get("facts") if isinstance(data, dict) else None
    return {
        "segments": [
            {
                "text": text(item.get("text")),
                "participant": text(item.get("participant"), 32),
                "start": item.get("start")
                if isinstance(item.get("start"), int | float)
                else None,
            }
            for item in (segments or [])[:TRANSCRIPT_MAX_SEGMENTS]
            if isinstance(item, dict)
        ],
        "facts": [
            {"text": text(item.get("text")), "group": text(item.get("group"), 64)}
            for item in (facts or [])[:TRANSCRIPT_MAX_SEGMENTS]
            if isinstance(item, dict)
        ],
    }
