"""Typed errors of the Corti client.

Every error that came from an HTTP answer keeps the status, the parsed problem
details and Corti's request id, so nothing a support case needs is lost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from intake.enums import ErrorCode


@dataclass(frozen=True, kw_only=True)
class Problem:
    """RFC 9457 problem details, in either shape Corti has published.

    Current: requestid, status, type, detail, validationErrors.
    Older: requestid, type, status, title, details, instance.
    A 401 may have no body at all; then `detail` comes from WWW-Authenticate.
    """

    status: int
    type: str = ""
    title: str = ""
    detail: str = ""
    instance: str = ""
    request_id: str = ""
    # (field path as Corti names it, message), in Corti's order.
    validation_errors: tuple[tuple[str, str], ...] = ()
    raw: Any = field(default=None, compare=False)

    @classmethod
    def from_response(
        cls, *, status: int, body: bytes, headers: dict[str, str]
    ) -> Problem:
        data: Any = None
        text = body.decode("utf-8", errors="replace").strip()
        if text:
            try:
                data = json.loads(text)
            except ValueError:
                data = None
        header_request_id = _header(headers, "x-request-id") or _header(
            headers, "request-id"
        )
        if not isinstance(data, dict):
            return cls(
                status=status,
                detail=_www_authenticate_reason(headers) or text[:500],
                request_id=header_request_id,
                raw=text[:2000] or None,
            )
        detail = data.get("detail") or data.get("details") or ""
        if not isinstance(detail, str):
            detail = json.dumps(detail)
        return cls(
            # The HTTP status is authoritative; the body's copy stays in `raw`.
            status=status,
            type=str(data.get("type") or ""),
            title=str(data.get("title") or ""),
            detail=detail or _www_authenticate_reason(headers),
            instance=str(data.get("instance") or ""),
            request_id=str(
                data.get("requestid") or data.get("requestId") or header_request_id
            ),
            validation_errors=_validation_errors(data.get("validationErrors")),
            raw=data,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy for the local log."""
        return {
            "status": self.status,
            "type": self.type,
            "title": self.title,
            "detail": self.detail,
            "instance": self.instance,
            "requestid": self.request_id,
            "validationErrors": [{k: v} for k, v in self.validation_errors],
        }

    @property
    def summary(self) -> str:
        return self.detail or self.title or f"HTTP {self.status}"


def _header(headers: dict[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _www_authenticate_reason(headers: dict[str, str]) -> str:
    value = _header(headers, "www-authenticate")
    if not value:
        return ""
    # Parameters are key=token or key="quoted string"; quoted ones may hold commas.
    params: list[tuple[str, str, str]] = _AUTH_PARAM.findall(value)
    for key, quoted, token in params:
        if key.lower() == "error_description":
            return quoted or token
    return value


_AUTH_PARAM = re.compile(r'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def _validation_errors(value: Any) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return ()
    for item in value:
        if isinstance(item, dict):
            for key, message in item.items():
                pairs.append((str(key), str(message)))
        elif isinstance(item, str):
            pairs.append(("", item))
    return tuple(pairs)


class CortiError(Exception):
    """Base class of everything the Corti client raises.

    Every error carries the HTTP status, Corti's request id and the problem
    details when an answer came (None, "" and None when none did).
    """

    #: A stable name for the kind of failure, kept in the local log.
    code: ErrorCode = ErrorCode.ERROR

    #: True when Corti may have acted on the request (the outcome is unknown).
    outcome_unknown: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str = "",
        problem: Problem | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.problem = problem


class CortiConnectionError(CortiError):
    """Corti could not be reached: nothing was sent."""

    code = ErrorCode.UNREACHABLE


class CortiConfigurationError(CortiError):
    """The configured Corti address cannot be used: nothing was sent."""

    code = ErrorCode.MISCONFIGURED


class CortiTimeoutError(CortiError):
    """The request was sent but no answer came in time: the outcome is unknown."""

    code = ErrorCode.TIMEOUT
    outcome_unknown = True


class CortiDisconnectedError(CortiError):
    """The connection dropped after the request was sent: the outcome is unknown."""

    code = ErrorCode.DISCONNECTED
    outcome_unknown = True


class CortiAuthError(CortiError):
    """The token endpoint refused the client credentials or failed."""

    code = ErrorCode.AUTH


class CortiResponseError(CortiError):
    """Corti answered with something the client cannot read."""

    code = ErrorCode.BAD_RESPONSE

    def __init__(self, message: str, *, status: int, request_id: str = "") -> None:
        super().__init__(message, status=status, request_id=request_id)
        # A success status with an unreadable body: Corti may have acted.
        self.outcome_unknown = 200 <= status < 300


class CortiAPIError(CortiError):
    """Corti answered with an error status; `problem` holds the details."""

    code = ErrorCode.API_ERROR
    problem: Problem
    status: int

    def __init__(self, problem: Problem, *, retry_after: float | None = None) -> None:
        super().__init__(
            f"Corti answered {problem.status}: {problem.summary}",
            status=problem.status,
            request_id=problem.request_id,
            problem=problem,
        )
        self.retry_after = retry_after


class CortiValidationError(CortiAPIError):
    """400: Corti rejected the body; `problem.validation_errors` names fields."""

    code = ErrorCode.INVALID


class CortiUnauthorizedError(CortiAPIError):
    """401: the token was refused even after a fresh one was fetched."""

    code = ErrorCode.UNAUTHORIZED


class CortiForbiddenError(CortiAPIError):
    """403: the tenant or client is not allowed to do this."""

    code = ErrorCode.FORBIDDEN


class CortiNotFoundError(CortiAPIError):
    """404: no such resource."""

    code = ErrorCode.NOT_FOUND


class CortiRateLimitError(CortiAPIError):
    """429: too many requests or a limit of the account was reached."""

    code = ErrorCode.RATE_LIMITED


class CortiServerError(CortiAPIError):
    """5xx: Corti failed; a create may or may not have happened."""

    code = ErrorCode.SERVER_ERROR
    outcome_unknown = True


_BY_STATUS: dict[int, type[CortiAPIError]] = {
    400: CortiValidationError,
    401: CortiUnauthorizedError,
    403: CortiForbiddenError,
    404: CortiNotFoundError,
    429: CortiRateLimitError,
}


def api_error_for(
    problem: Problem, *, retry_after: float | None = None
) -> CortiAPIError:
    """Return the typed error for an HTTP error answer."""
    if problem.status >= 500:
        return CortiServerError(problem, retry_after=retry_after)
    cls = _BY_STATUS.get(problem.status, CortiAPIError)
    return cls(problem, retry_after=retry_after)
