"""The access trail: who viewed, searched, exported, retried, corrected and
signed in (or failed to), when and from which address.

Each call appends one intake.models.AccessEntry, in its own transaction with
the request's work. Searches and exports keep what kind of term was used,
never the term (it is often a patient's name); a view, a retry or a
correction keeps the patient identifier of the submission, as it was.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from intake.client_address import client_address
from intake.models import AccessEntry, Interaction
from intake.search import id_prefix_range, words

Action = AccessEntry.Action


#: audit_record's `user` when the request's user acted (the usual case).
REQUEST_USER: Any = object()


def audit_record(
    request: HttpRequest,
    action: str,
    *,
    record: Interaction | None = None,
    user: Any = REQUEST_USER,
    username: str = "",
    **detail: Any,
) -> AccessEntry:
    """Append one entry for `request`'s user (or `user`: None for nobody)
    doing `action`."""
    who = getattr(request, "user", None) if user is REQUEST_USER else user
    if who is not None and not who.is_authenticated:
        who = None
    return AccessEntry.objects.create(
        action=action,
        user=who,
        username=username or (who.get_username() if who is not None else ""),
        address=client_address(request),
        interaction=record,
        patient_identifier=record.patient_identifier if record is not None else "",
        detail=detail,
    )


def search_kind(q: str) -> str:
    """What kind of term a search was, for the trail (never the term)."""
    if not q.strip():
        return ""
    if id_prefix_range(q) and len(q.strip()) >= 32:
        return "interaction id"
    if id_prefix_range(q):
        return "id prefix or number"
    if any(ch.isdigit() for ch in q):
        return "identifier"
    return "name or title" if words(q) else "other"


def history_detail(selection: dict[str, Any], *, found: int) -> dict[str, Any]:
    """A search's or export's filters as the trail keeps them: which were
    used, and how many rows the page counted; never the words searched."""
    used = sorted(
        name
        for name in (
            "encounter_status",
            "encounter_type",
            "outcome",
            "submitted_from",
            "submitted_before",
            "submitted_by",
        )
        if selection.get(name) not in (None, "")
    )
    return {
        "search": search_kind(selection.get("q", "")),
        "filters": used,
        "found": found,
    }


def on_signed_in(
    sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any
) -> None:
    """user_logged_in: a sign-in (the sign-in page, or a session made for a
    test). Requests without an address (a shell) are kept too."""
    if request is None:
        return
    audit_record(request, Action.SIGNED_IN, user=user)


def on_sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None, **kwargs: Any
) -> None:
    """user_login_failed: the username as typed (never the password)."""
    if request is None:
        return
    username = str(credentials.get("username", ""))[:150]
    audit_record(request, Action.SIGN_IN_FAILED, user=None, username=username)
