"""The address a request came from, as far as this server can vouch for it.

Sign-in throttling counts failures per username and address, so the address
must be one the client cannot choose. Clients that connect directly are their
socket address (REMOTE_ADDR). Behind INTAKE_TRUSTED_PROXIES proxies
(DJANGO_BEHIND_PROXY, DJANGO_PROXY_COUNT), X-Forwarded-For is whatever the
client sent followed by one address appended by each proxy (nginx's
`$proxy_add_x_forwarded_for`): only the right-most entries are the proxies'
word, everything to their left is the client's to make up. The last proxy is
REMOTE_ADDR itself, so with N proxies the client is the N-th entry from the
right.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The client's address: the socket's, or the one our proxies recorded.

    A missing, short or malformed X-Forwarded-For falls back to the socket
    address: only a request that did not come through the proxies has one,
    and then the socket address is the sender's own.
    """
    connected = request.META.get("REMOTE_ADDR") or None
    proxies = settings.INTAKE_TRUSTED_PROXIES
    if not proxies:
        return connected
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    if len(forwarded) < proxies:
        return connected
    try:
        return str(ipaddress.ip_address(forwarded[-proxies].strip()))
    except ValueError:
        return connected
