"""The Corti access token, shared by every worker and host through Django's cache.

Each gunicorn worker on each host used to sign in on its own, so a fleet asked
Corti for a token per worker per refresh. The token now lives in the default
cache (Redis when REDIS_URL is set, else the database cache): one process
fetches it, every other one reads it. A lock in the cache (`cache.add`, which
exactly one caller can win) lets one process fetch while the others poll for
its result for a bounded time; the lock expires, so a holder that dies cannot
block the fleet.

The cached value is a bearer secret: it is never logged, and its entry expires
with the token. Times are wall-clock (`time.time`): hosts share no monotonic
clock.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Bumped when the cached shape changes, so two versions never read each other's.
KEY_VERSION = 1


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    #: Wall-clock times (time.time()): every host reads them.
    refresh_at: float
    expires_at: float


class TokenCacheUnavailable(Exception):
    """The cache failed; the caller falls back to a token of its own."""


class _CacheHealth:
    """Whether the cache last worked, for this process: its changes are logged
    once per process, not once per call."""

    def __init__(self) -> None:
        self.failing = False
        self._lock = threading.Lock()

    def note(self, exc: Exception | None) -> None:
        failed = exc is not None
        if failed == self.failing:
            return
        with self._lock:
            if failed == self.failing:
                return
            self.failing = failed
        if exc is not None:
            # The type only: a cache error's text may hold its address.
            logger.warning(
                "The cache cannot be used for the Corti token (%s); this process "
                "signs in on its own until it can",
                type(exc).__name__,
            )
        else:
            logger.warning("The cache works again; the Corti token is shared again")


_health = _CacheHealth()


def reset_cache_health() -> None:
    """Forget that the cache failed (tests)."""
    _health.failing = False


class SharedTokenCache:
    """One client configuration's token and refresh lock in Django's cache.

    Every call raises `TokenCacheUnavailable` when the cache fails. The first
    failure in a process is logged once (a warning naming the exception type
    only), and the first success after it once again.
    """

    def __init__(
        self,
        *,
        auth_url: str,
        tenant_name: str,
        client_id: str,
        wall_clock: Callable[[], float],
        alias: str = "default",
    ) -> None:
        # Hashed: the key shows up in Redis and in the cache table. Never the
        # secret: a key is no place for one, and rotating it keeps the token.
        identity = "\n".join((auth_url, tenant_name, client_id)).encode()
        digest = hashlib.sha256(identity).hexdigest()[:32]
        self.key = f"intake:corti:token:v{KEY_VERSION}:{digest}"
        self.lock_key = f"{self.key}:lock"
        self._wall_clock = wall_clock
        self._alias = alias

    def get(self) -> AccessToken | None:
        data: Any = self._call(lambda cache: cache.get(self.key))
        if not isinstance(data, dict):
            return None
        try:
            return AccessToken(
                value=str(data["value"]),
                refresh_at=float(data["refresh_at"]),
                expires_at=float(data["expires_at"]),
            )
        except (KeyError, TypeError, ValueError):  # written by another version
            return None

    def put(self, token: AccessToken) -> None:
        """Share `token` until it expires."""
        # At least 1 s: Redis truncates a timeout to whole seconds, and 0
        # deletes the entry. Readers check `expires_at` themselves.
        timeout = max(1, math.ceil(token.expires_at - self._wall_clock()))
        data = {
            "value": token.value,
            "refresh_at": token.refresh_at,
            "expires_at": token.expires_at,
        }
        self._call(lambda cache: cache.set(self.key, data, timeout=timeout))

    def claim(self, *, timeout: float) -> str | None:
        """Take the refresh lock for `timeout` seconds: its owner id, or None
        when another process holds it."""
        owner = uuid.uuid4().hex
        seconds = max(1, math.ceil(timeout))
        taken = self._call(lambda cache: cache.add(self.lock_key, owner, seconds))
        return owner if taken else None

    def release(self, owner: str) -> None:
        """Drop the lock if `owner` still holds it (it may have expired and
        been taken by another; then it is theirs)."""

        def drop(cache: Any) -> None:
            if cache.get(self.lock_key) == owner:
                cache.delete(self.lock_key)

        self._call(drop)

    def _call(self, operation: Callable[[Any], T]) -> T:
        from django.core.cache import caches

        try:
            result = operation(caches[self._alias])
        except Exception as exc:  # Redis gone, table missing, ...
            _health.note(exc)
            raise TokenCacheUnavailable(type(exc).__name__) from exc
        _health.note(None)
        return result
