"""A thin, typed client for the Corti API.

One `requests.Session`, an explicit (connect, read) timeout on every request,
OAuth2 client credentials with one token for the whole fleet (shared through
Django's cache, see `tokens.py`) that is refreshed before it expires, and one
place (`_send`) that decides how each answer is handled:

- nothing reached Corti (refused, DNS, connect timeout, sign-in service
  down): try again with capped, jittered backoff within the retry budget;
- 401: one new token, one more try;
- 429: wait for `Retry-After` if it fits the bound and the budget, else fail;
- read timeout, dropped connection, 5xx: the outcome is unknown. Safe
  (idempotent) requests are tried again within the budget; a create never
  is, because Corti has no idempotency key and a blind retry can create the
  interaction twice. The caller reconciles instead (`list_interactions`).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.views.decorators.debug import sensitive_variables
from urllib3.exceptions import NameResolutionError, NewConnectionError

from config.logs import request_log_add_corti_time

from .errors import (
    CortiAuthError,
    CortiConfigurationError,
    CortiConnectionError,
    CortiDisconnectedError,
    CortiError,
    CortiRateLimitError,
    CortiResponseError,
    CortiTimeoutError,
    Problem,
    api_error_for,
)
from .tokens import AccessToken, SharedTokenCache, TokenCacheUnavailable
from .types import (
    InteractionCreate,
    InteractionCreated,
    InteractionListed,
    InteractionUpdate,
)

logger = logging.getLogger(__name__)

USER_AGENT = "corti-intake/1.0"


@dataclass(frozen=True, kw_only=True)
class CortiConfig:
    api_url: str
    auth_url: str
    tenant_name: str
    client_id: str
    client_secret: str = field(repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    #: Seconds one call may spend on retries (backoff sleeps and new attempts).
    retry_budget: float = 10.0
    #: The longest `Retry-After` a 429 may ask for and still be waited out.
    retry_after_max: float = 5.0

    @classmethod
    def from_settings(cls) -> CortiConfig:
        from django.conf import settings

        return cls(
            api_url=settings.CORTI_API_URL.rstrip("/"),
            auth_url=settings.CORTI_AUTH_URL,
            tenant_name=settings.CORTI_TENANT_NAME,
            client_id=settings.CORTI_CLIENT_ID,
            client_secret=settings.CORTI_CLIENT_SECRET,
            connect_timeout=settings.CORTI_CONNECT_TIMEOUT,
            read_timeout=settings.CORTI_TIMEOUT,
            retry_budget=settings.CORTI_RETRY_BUDGET,
            retry_after_max=settings.CORTI_RETRY_AFTER_MAX,
        )

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


class _Budget:
    """The time one call may still spend on retries."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._ends = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._ends - self._clock())

    def allows(self, pause: float) -> bool:
        """True when, after `pause`, there is still time for an attempt."""
        return pause + MIN_ATTEMPT_SECONDS <= self.remaining()


#: No new attempt starts with less time than this left in the budget.
MIN_ATTEMPT_SECONDS = 0.1
#: Exponential backoff: first pause, and the cap on any one pause (seconds).
BACKOFF_BASE = 0.2
BACKOFF_CAP = 2.0
#: A call waits out at most this many 429 answers.
MAX_RATE_LIMIT_WAITS = 3
#: Methods that may be sent again after an unknown outcome. Not DELETE: a
#: second DELETE of what the first one deleted is a 404, which would turn a
#: success into "not found". The caller reads the interaction back instead.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT"})
#: The dashboard's own token: every API call.
FULL_SCOPE = "openid"
#: A token a browser may hold: accepted only by the stream sockets.
STREAM_SCOPE = "openid streams"
#: Seconds between two looks at the cache while another process signs in.
TOKEN_POLL_INTERVAL = 0.05
#: The cache's refresh lock outlives the longest sign-in by this much.
TOKEN_LOCK_MARGIN = 1.0


class CortiClient:
    """Talks to one Corti tenant. Safe to share between threads."""

    #: Refresh this long before expiry, as the official SDKs do.
    REFRESH_MARGIN = 120.0

    def __init__(
        self,
        config: CortiConfig,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._clock = clock
        # Token times: hosts share the wall clock, not a monotonic one.
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        #: This process's copy of the shared token (the fast path).
        self._token: AccessToken | None = None
        #: One thread per process deals with the cache's lock and the fetch.
        self._token_lock = threading.Lock()
        self._shared = SharedTokenCache(
            auth_url=config.auth_url,
            tenant_name=config.tenant_name,
            client_id=config.client_id,
            wall_clock=wall_clock,
        )

    # --- the API --------------------------------------------------------

    def create_interaction(self, request: InteractionCreate) -> InteractionCreated:
        """Create an interaction; return its id and websocket URL."""
        response = self._send("POST", "/interactions/", json=request.to_json())
        data = _json_object(response)
        try:
            interaction_id = uuid.UUID(str(data["interactionId"]))
            websocket_url = data["websocketUrl"]
            if not isinstance(websocket_url, str) or not websocket_url:
                raise ValueError("websocketUrl is not a non-empty string")
        except (KeyError, ValueError) as exc:
            raise CortiResponseError(
                "Corti's answer to the create call lacks interactionId or "
                "websocketUrl.",
                status=response.status_code,
                request_id=_request_id(response),
            ) from exc
        return InteractionCreated(
            interaction_id=interaction_id,
            websocket_url=websocket_url,
            request_id=_request_id(response),
        )

    def list_interactions(
        self,
        *,
        patient: str = "",
        encounter_status: Sequence[str] = (),
        sort: str = "createdAt",
        direction: str = "desc",
        page_size: int = 10,
        index: int = 1,
    ) -> list[InteractionListed]:
        """One page of interactions; an empty page ends the listing."""
        params: list[tuple[str, str]] = [
            ("sort", sort),
            ("direction", direction),
            ("pageSize", str(page_size)),
            ("index", str(index)),
        ]
        params += [("encounterStatus", status) for status in encounter_status]
        if patient:
            params.append(("patient", patient))
        response = self._send("GET", "/interactions/", params=params)
        items = _json_object(response).get("interactions")
        try:
            if not isinstance(items, list):
                raise ValueError("interactions is not a list")
            return [InteractionListed.from_json(item) for item in items]
        except ValueError as exc:
            raise CortiResponseError(
                f"Corti's interaction list could not be read: {exc}.",
                status=response.status_code,
                request_id=_request_id(response),
            ) from exc

    def get_interaction(self, interaction_id: uuid.UUID) -> InteractionListed:
        """What Corti holds for one interaction now (404: CortiNotFoundError)."""
        response = self._send("GET", f"/interactions/{interaction_id}")
        return self._interaction(response, "read", interaction_id)

    def update_interaction(
        self, interaction_id: uuid.UUID, update: InteractionUpdate
    ) -> InteractionListed:
        """Change an interaction (only the fields in `update`); return it whole.

        Never sent twice by this client: a lost answer raises (its outcome is
        unknown) and the caller reads the interaction back to settle it.
        """
        response = self._send(
            "PATCH", f"/interactions/{interaction_id}", json=update.to_json()
        )
        return self._interaction(response, "update", interaction_id)

    def delete_interaction(self, interaction_id: uuid.UUID) -> None:
        """Delete an interaction and everything under it (recordings,
        transcripts, facts, documents). Never sent twice by this client: a lost
        answer raises, and the caller reads back (a 404 then means deleted)."""
        self._send("DELETE", f"/interactions/{interaction_id}")

    def _interaction(
        self, response: requests.Response, call: str, interaction_id: uuid.UUID
    ) -> InteractionListed:
        """The interaction in an answer, which must be the one asked about:
        another's would put its patient's details on this record."""
        try:
            held = InteractionListed.from_json(_json_object(response))
        except (ValueError, TypeError) as exc:
            raise CortiResponseError(
                f"Corti's answer to the {call} call could not be read: {exc}.",
                status=response.status_code,
                request_id=_request_id(response),
            ) from exc
        if held.id != interaction_id:
            raise CortiResponseError(
                f"Corti's answer to the {call} call of {interaction_id} is about "
                f"another interaction ({held.id}); it was not used.",
                status=response.status_code,
                request_id=_request_id(response),
            )
        return held

    # --- the retry policy: the one place that decides what an answer means --

    # Django's error pages (DEBUG) and error reports hide the variables of this
    # call and of everything it calls: they hold the bearer token.
    @sensitive_variables()
    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
    ) -> requests.Response:
        url = f"{self.config.api_url}{path}"
        idempotent = method in IDEMPOTENT_METHODS
        budget = _Budget(self.config.retry_budget, self._clock)
        stale: str | None = None
        refreshed = False
        rate_limited = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                token = self.access_token(stale=stale)
                stale = None
                response = self._http(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Tenant-Name": self.config.tenant_name,
                        "Accept": "application/json",
                    },
                )
            except CortiConnectionError as exc:
                # Nothing reached Corti: always safe to try again.
                self._back_off_or_raise(exc, method, path, attempt, budget)
                continue
            except (CortiTimeoutError, CortiDisconnectedError) as exc:
                if not idempotent:
                    raise
                self._back_off_or_raise(exc, method, path, attempt, budget)
                continue

            status = response.status_code
            if status < 400:
                return response
            if status == 401 and not refreshed:
                # Expired or revoked: one fresh token, one more try.
                logger.info("Corti answered 401; fetching a new token once")
                refreshed = True
                stale = token
                continue
            error = self._api_error(method, path, response)
            if isinstance(error, CortiRateLimitError):
                wait = error.retry_after
                if wait is not None:
                    wait = max(wait, BACKOFF_BASE)
                if (
                    wait is not None
                    and wait <= self.config.retry_after_max
                    and rate_limited < MAX_RATE_LIMIT_WAITS
                    and budget.allows(wait)
                ):
                    rate_limited += 1
                    logger.info("Corti answered 429; waiting %.1f s as asked", wait)
                    self._sleep(wait)
                    continue
                raise error
            if error.outcome_unknown and idempotent:
                self._back_off_or_raise(error, method, path, attempt, budget)
                continue
            raise error

    def _back_off_or_raise(
        self, error: CortiError, method: str, path: str, attempt: int, budget: _Budget
    ) -> None:
        """Sleep before the next attempt, or raise `error` if the budget is spent."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
        pause = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        if not budget.allows(pause):
            logger.warning(
                "Corti %s %s failed after %d attempt(s): %s",
                method,
                path,
                attempt,
                type(error).__name__,
            )
            raise error
        logger.info(
            "Corti %s %s: %s; trying again in %.2f s",
            method,
            path,
            type(error).__name__,
            pause,
        )
        self._sleep(pause)

    def _api_error(
        self, method: str, path: str, response: requests.Response
    ) -> CortiError:
        problem = Problem.from_response(
            status=response.status_code,
            body=response.content,
            headers=dict(response.headers),
        )
        logger.warning(
            "Corti %s %s answered %s (requestid=%s)",
            method,
            path,
            response.status_code,
            problem.request_id or "-",
        )
        return api_error_for(
            problem, retry_after=_retry_after(response.headers.get("Retry-After"))
        )

    def _http(
        self,
        method: str,
        url: str,
        *,
        timeout: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        timeout = timeout or self.config.timeout
        try:
            host = _host(url)
        except ValueError as exc:
            raise CortiConfigurationError(
                f"The Corti address in the settings is not a valid URL ({exc}): "
                "nothing was sent."
            ) from exc
        try:
            return self._timed_request(method, url, timeout=timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise CortiConnectionError(
                f"Timed out connecting to {host}: nothing was sent."
            ) from exc
        except requests.ReadTimeout as exc:
            raise CortiTimeoutError(
                f"{host} did not answer within {timeout[1]:g} s."
            ) from exc
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            # The answer began and was cut off (or garbled): Corti may have acted.
            raise CortiDisconnectedError(
                f"The answer from {host} was cut off before it was complete."
            ) from exc
        except (
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
            requests.exceptions.InvalidHeader,
        ) as exc:
            # Refused before sending: the settings are wrong, not the network.
            # Not chained: requests' text holds the whole address, credentials
            # and all, and would reach any log that prints the traceback.
            raise CortiConfigurationError(
                f"The Corti address or tenant in the settings cannot be used "
                f"({type(exc).__name__}): nothing was sent."
            ) from None
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise CortiConnectionError(
                    f"Could not connect to {host}: nothing was sent."
                ) from exc
            raise CortiDisconnectedError(
                f"The connection to {host} dropped before an answer came."
            ) from exc
        except requests.RequestException as exc:
            # Anything else (too many redirects, say): Corti may have acted, so
            # it is treated like a lost answer, never as a server error page.
            raise CortiDisconnectedError(
                f"The request to {host} failed ({type(exc).__name__}) before a "
                "usable answer came."
            ) from exc

    def _timed_request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request, and log it as one line with Corti's time.

        The line has the method, the endpoint's path (the query, which can
        carry a patient filter, is sent as `params` and never logged), the
        status, the milliseconds until Corti's answer and Corti's request id.
        """
        started = time.perf_counter()
        try:
            response = self._session.request(method, url, **kwargs)
        except BaseException as exc:
            _call_log(method, url, started, error=type(exc).__name__)
            raise
        _call_log(method, url, started, response=response)
        return response

    # --- tokens ---------------------------------------------------------

    def access_token(self, *, stale: str | None = None) -> str:
        """Return a valid access token, fetching one if needed.

        Concurrent callers share one fetch, in this process (a lock) and across
        the fleet (the cache). `stale` names a token the API refused: it is
        replaced unless another thread or process already replaced it.
        """
        token = self._token
        if token and self._fresh(token, stale):
            return token.value
        with self._token_lock:
            token = self._token
            if token and self._fresh(token, stale):
                return token.value
            self._token = self._shared_or_new_token(stale)
            return self._token.value

    def check_sign_in(self, *, timeout: float) -> None:
        """Sign in once, for the readiness check; raise CortiError.

        Takes no lock, so a slow or hanging sign-in service never holds up a
        submission's own token refresh, and waits at most `timeout` seconds to
        connect and as long for the answer. A success is kept as the token
        (one attribute store, and shared; a submission may replace it with its
        own, both valid); a failure keeps the token already held, which may
        still work.
        """
        token = self._fetch_token(
            timeout=(
                min(timeout, self.config.connect_timeout),
                min(timeout, self.config.read_timeout),
            )
        )
        self._token = token
        with suppress(TokenCacheUnavailable):
            self._shared.put(token)

    def stream_token(self) -> AccessToken:
        """A new token limited to the stream sockets (`scope=openid streams`),
        for a browser or device that streams audio: fetched on every call,
        never kept here, never shared through the cache, never logged."""
        return self._fetch_token(scope=STREAM_SCOPE)

    def has_usable_token(self) -> bool:
        """True while a token is held, here or in the cache, that has not expired."""
        token = self._token
        if token is not None and self._wall_clock() < token.expires_at:
            return True
        try:
            token = self._shared.get()
        except TokenCacheUnavailable:
            return False
        return token is not None and self._wall_clock() < token.expires_at

    def _fresh(self, token: AccessToken, stale: str | None) -> bool:
        """True when `token` may be sent: not refused, not due for refresh."""
        return token.value != stale and self._wall_clock() < token.refresh_at

    def _lock_seconds(self) -> float:
        """How long the cache's refresh lock lasts, and waiters wait for it:
        the longest one sign-in may take, and a margin. Then a live holder has
        shared its token or failed, and a dead one's lock has expired."""
        return (
            self.config.connect_timeout + self.config.read_timeout + TOKEN_LOCK_MARGIN
        )

    def _shared_or_new_token(self, stale: str | None) -> AccessToken:
        """The fleet's token from the cache, or a new one fetched and shared.

        Called under `_token_lock`. If the cache fails, this process fetches
        its own token, as it did before tokens were shared.
        """
        owner: str | None = None
        try:
            shared = self._shared.get()
            if shared and self._fresh(shared, stale):
                return shared
            owner = self._shared.claim(timeout=self._lock_seconds())
            if owner is None:
                waited = self._await_shared_token(stale)
                if isinstance(waited, AccessToken):
                    return waited
                owner = waited
            if owner is not None:
                # Another process may have shared a token between our look and
                # the lock: it released the lock only after sharing it.
                shared = self._shared.get()
                if shared and self._fresh(shared, stale):
                    self._release(owner)
                    return shared
        except TokenCacheUnavailable:
            if owner is not None:
                self._release(owner)
            return self._fetch_token()
        # We hold the lock, or nobody shared a token within the bound.
        try:
            token = self._fetch_token()
            with suppress(TokenCacheUnavailable):
                self._shared.put(token)
            return token
        finally:
            if owner is not None:
                self._release(owner)

    def _await_shared_token(self, stale: str | None) -> AccessToken | str | None:
        """While another process signs in: its token once shared, or the lock
        (an owner id) once it is free, or None when the bound has passed."""
        deadline = self._clock() + self._lock_seconds()
        while self._clock() < deadline:
            self._sleep(TOKEN_POLL_INTERVAL)
            shared = self._shared.get()
            if shared and self._fresh(shared, stale):
                return shared
            owner = self._shared.claim(timeout=self._lock_seconds())
            if owner is not None:
                return owner
        logger.warning(
            "No Corti token was shared within %.0f s; signing in from this process",
            self._lock_seconds(),
        )
        return None

    def _release(self, owner: str) -> None:
        # An unreleased lock expires on its own.
        with suppress(TokenCacheUnavailable):
            self._shared.release(owner)

    # As _send, for the client secret.
    @sensitive_variables()
    def _fetch_token(
        self,
        *,
        timeout: tuple[float, float] | None = None,
        scope: str = FULL_SCOPE,
    ) -> AccessToken:
        started = self._wall_clock()
        try:
            response = self._http(
                "POST",
                self.config.auth_url,
                timeout=timeout,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.config.client_id,
                    "client_secret": self.config.client_secret,
                    "scope": scope,
                },
                headers={"Accept": "application/json"},
            )
        except CortiTimeoutError as exc:
            raise CortiConnectionError(
                "Corti's sign-in service did not answer in time."
            ) from exc
        except CortiDisconnectedError as exc:
            raise CortiConnectionError(
                "The connection to Corti's sign-in service dropped."
            ) from exc
        if response.status_code == 429 or response.status_code >= 500:
            # The sign-in service is down or busy: nothing was sent yet.
            raise CortiConnectionError(
                f"Corti's sign-in service answered {response.status_code}."
            )
        if response.status_code != 200:
            raise CortiAuthError(_token_failure(response), status=response.status_code)
        data = _json_object(response)
        try:
            value = data["access_token"]
            if not isinstance(value, str) or not value:
                raise ValueError("access_token is not a non-empty string")
            expires_in = float(data.get("expires_in", 300))
        except (KeyError, TypeError, ValueError) as exc:
            raise CortiAuthError(
                "Corti's sign-in service answered without an access token.",
                status=response.status_code,
            ) from exc
        lifetime = max(expires_in - self.REFRESH_MARGIN, expires_in / 2)
        logger.info(
            "Fetched a Corti access token (scope %s) valid for %.0f s",
            scope,
            expires_in,
        )
        return AccessToken(
            value=value,
            refresh_at=started + lifetime,
            expires_at=started + expires_in,
        )


def redact_url(url: str) -> str:
    """`url` without the user name and password it may carry, for messages.

    `http://user:secret@host/path` becomes `http://***@host/path`; an address
    without credentials, or one that cannot be parsed, comes back as it was
    (an unparsable one has its credentials cut off all the same).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, sep, rest = url.partition("://")
        authority, slash, path = rest.partition("/")
        if sep and "@" in authority:
            return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"
        return url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def _host(url: str) -> str:
    """The host (and port) of `url`, never its credentials; ValueError if bad."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the error happened before any byte was sent (refused, DNS)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | NameResolutionError):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return False


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CortiResponseError(
            f"Corti answered {response.status_code} with a body that is not a "
            "JSON object.",
            status=response.status_code,
            request_id=_request_id(response),
        )
    return data


call_logger = logging.getLogger("intake.corti.calls")


def _call_log(
    method: str,
    url: str,
    started: float,
    *,
    response: requests.Response | None = None,
    error: str = "",
) -> None:
    """One line for one HTTP call to Corti (the sign-in service's included)."""
    corti_ms = (time.perf_counter() - started) * 1000
    request_log_add_corti_time(corti_ms)
    try:
        path = urlsplit(url).path or "/"
    except ValueError:
        path = "-"
    status = response.status_code if response is not None else None
    corti_request_id = _answer_request_id(response) if response is not None else ""
    # INFO whatever the answer: a failure has its WARNING line already.
    call_logger.info(
        "Corti %s %s %s %.0f ms corti_request_id=%s",
        method,
        path,
        status if status is not None else error,
        corti_ms,
        corti_request_id or "-",
        extra={
            "corti_method": method,
            "corti_endpoint": path,
            "corti_status": status,
            "corti_error": error or None,
            "corti_ms": round(corti_ms, 1),
            "corti_request_id": corti_request_id or None,
        },
    )


def _answer_request_id(response: requests.Response) -> str:
    """Corti's id for its answer: its header, or an error body's `requestid`."""
    found = response.headers.get("X-Request-Id") or response.headers.get("Request-Id")
    if not found and response.status_code >= 400:
        with suppress(ValueError):
            data = response.json()
            if isinstance(data, dict):
                found = data.get("requestid") or data.get("requestId")
    # Only a plain token: an answer's text is not ours to copy into a log.
    text = str(found or "")
    return text if _PLAIN_ID.fullmatch(text) else ""


_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _request_id(response: requests.Response) -> str:
    return response.headers.get("X-Request-Id", "")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _token_failure(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = {}
    error = data.get("error", "") if isinstance(data, dict) else ""
    if response.status_code in (400, 401) and error in (
        "invalid_client",
        "unauthorized_client",
        "invalid_grant",
    ):
        return (
            f"Corti refused the client credentials ({error}): check "
            "CORTI_CLIENT_ID and CORTI_CLIENT_SECRET."
        )
    if response.status_code == 404:
        return (
            "Corti's sign-in service does not know this tenant: check "
            "CORTI_TENANT_NAME and CORTI_AUTH_URL."
        )
    return (
        f"Corti's sign-in service answered {response.status_code}"
        + (f" ({error})" if error else "")
        + "."
    )
