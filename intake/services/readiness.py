"""Whether submissions can reach Corti, for `/readyz`, without asking it each time.

`/readyz` answers anyone and is probed often, by every load balancer and
orchestrator in front of every worker. Signing in to Corti on each probe let
anyone make the dashboard hammer Corti's sign-in service, and a hanging sign-in
service held a worker (and the client's token lock) per probe. So:

- one sign-in check per `CHECK_INTERVAL` for all workers together: the first
  probe after the interval claims the check through Django's cache
  (`cache.add` of a key named after the result it replaces, which exactly one
  caller can create), every other probe reads the shared result;
- the check runs in a background thread with its own short timeout and never
  takes the client's token lock, so submissions never wait for it;
- a probe answers within `ANSWER_WAIT`: the fresh result when the check was
  that quick, else the last known one ("checking" when none is recent).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, connection, connections

from intake.corti import CortiClient, get_client
from intake.corti.errors import CortiError

logger = logging.getLogger(__name__)

#: Seconds between two sign-in checks, for all workers together.
CHECK_INTERVAL = 30.0
#: Seconds the check may wait for Corti to accept the connection, and again for
#: its answer (at most the client's own timeouts).
CHECK_TIMEOUT = 3.0
#: Seconds a probe that started a check waits for its result before answering.
ANSWER_WAIT = 0.5
#: A result older than this is no longer known (nobody asked for a while).
MAX_AGE = 10 * CHECK_INTERVAL

_RESULT_KEY = "intake:readiness:corti"
_CLAIM_KEY = "intake:readiness:corti:check-after:{}"


@dataclass(frozen=True)
class SignInCheck:
    """What the last sign-in check found; `code` is "ok" or why not."""

    code: str
    detail: str = ""
    #: time.time() when the check finished (all workers compare it).
    checked_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == "ok"


CHECKING = SignInCheck(
    code="checking",
    detail="Signing in to Corti is being checked; ask again in a few seconds.",
)


@dataclass(frozen=True)
class Report:
    """What /healthz or /readyz answers: a status, the checks, the HTTP status."""

    status: str
    checks: dict[str, str]
    http_status: int

    def as_json(self) -> dict[str, str]:
        return {"status": self.status, **self.checks}


def database_ok(*, check: str) -> bool:
    """True when the database answers a trivial query (the one shared check);
    `check` names the caller in the log line."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("%s: the database is unreachable", check)
        return False
    return True


def health_report() -> Report:
    """Whether the dashboard can serve requests: the database answers."""
    if database_ok(check="Health check"):
        return Report("ok", {"database": "ok"}, 200)
    return Report("unavailable", {"database": "error"}, 503)


def readiness_report() -> Report:
    """Whether submissions can reach Corti: the database, and the last shared
    sign-in check. If signing in fails while this worker still holds a valid
    token, submissions keep working for now: 200, "degraded"."""
    checks = {"database": "ok"}
    ready, degraded = True, False
    if not database_ok(check="Readiness check"):
        checks["database"] = "error"
        ready = False
    corti = corti_sign_in_status()
    checks["corti"] = corti.code
    if not corti.ok:
        checks["corti_detail"] = corti.detail
        if token_held():
            degraded = True
        else:
            ready = False
    status = "unavailable" if not ready else "degraded" if degraded else "ok"
    return Report(status, checks, 200 if ready else 503)


def corti_sign_in_status() -> SignInCheck:
    """The last known result of signing in to Corti; start a check when due."""
    try:
        known = _known()
        age = time.time() - known.checked_at if known else None
        if age is None or age >= CHECK_INTERVAL:
            generation = f"{known.checked_at:.6f}" if known else "none"
            # The key names the result it replaces: only one caller can create
            # it, and a new result makes a new key (never an expired row that
            # two callers could both take over).
            if cache.add(_CLAIM_KEY.format(generation), 1, timeout=CHECK_INTERVAL):
                check = threading.Thread(
                    target=_check,
                    args=(get_client(),),
                    name="readiness-corti-sign-in",
                    daemon=True,
                )
                check.start()
                check.join(ANSWER_WAIT)
                known = _known() or known
    except Exception as exc:  # the cache is down or its table is missing
        logger.warning(
            "Readiness check: the cache cannot be used (%s)", type(exc).__name__
        )
        return SignInCheck(
            code="cache_error",
            detail="The readiness cache cannot be used: run manage.py "
            "createcachetable, or check REDIS_URL.",
        )
    if known is None or time.time() - known.checked_at >= MAX_AGE:
        return CHECKING
    return known


def token_held() -> bool:
    """True while this worker holds a Corti token that has not expired."""
    return get_client().has_usable_token()


def _known() -> SignInCheck | None:
    data: Any = cache.get(_RESULT_KEY)
    if not isinstance(data, dict):
        return None
    try:
        return SignInCheck(**data)
    except TypeError:  # written by another version
        return None


def _check(client: CortiClient) -> None:
    """Sign in once and share what happened; runs in its own thread."""
    code, detail = "ok", ""
    try:
        client.check_sign_in(timeout=CHECK_TIMEOUT)
    except CortiError as exc:
        logger.warning("Readiness check: Corti sign-in failed (%s)", exc.code)
        code, detail = str(exc.code), exc.message
    except Exception:
        logger.exception("Readiness check: the sign-in check failed")
        code, detail = "error", "The sign-in check failed unexpectedly; see the log."
    result = SignInCheck(code=code, detail=detail, checked_at=time.time())
    try:
        cache.set(_RESULT_KEY, asdict(result), timeout=None)
    except Exception as exc:
        logger.warning(
            "Readiness check: the result was not kept (%s)", type(exc).__name__
        )
    finally:
        # A database cache opened a connection in this thread: close it.
        connections.close_all()
