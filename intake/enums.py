"""Names shared by the Corti client, the models, the forms and the pages.

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


# The API's enumerations (Corti's interactions contract); the models and
# forms give them labels, the client sends their values.


class EncounterStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DELETED = "deleted"


class EncounterType(StrEnum):
    FIRST_CONSULTATION = "first_consultation"
    CONSULTATION = "consultation"
    EMERGENCY = "emergency"
    INPATIENT = "inpatient"
    OUTPATIENT = "outpatient"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"
    OTHER = "other"
