"""Names shared by the Corti client, the models and the pages.

Imports nothing of ours, so every layer can use it without pulling in another.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The kind of a failure, as kept on a record and in its call log."""

    #: Nothing reached Corti: refused, DNS, connect timeout.
    UNREACHABLE = "unreachable"
    #: The configured Corti address or tenant cannot be used.
    MISCONFIGURED = "misconfigured"
    #: Sent, but no answer came in time.
    TIMEOUT = "timeout"
    #: Sent, and the connection dropped before the answer.
    DISCONNECTED = "disconnected"
    #: The sign-in service refused the client or failed.
    AUTH = "auth"
    #: Corti answered something unreadable (a cut body, a garbled 201).
    BAD_RESPONSE = "bad_response"
    #: An error status with no more specific kind.
    API_ERROR = "api_error"
    INVALID = "invalid"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    #: The dashboard stopped while a create was in flight (a worker died).
    INTERRUPTED = "interrupted"
    #: Corti could not be searched before a resend, so nothing was sent.
    UNSEARCHABLE = "unsearchable"
    #: The base class of the client's errors; not raised on its own.
    ERROR = "error"
