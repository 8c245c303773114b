"""The Corti API client: auth, calls, errors and types (simulator: sandbox/)."""

from __future__ import annotations

import threading

from .client import CortiClient, CortiConfig, redact_url

__all__ = ["CortiClient", "CortiConfig", "clear_clients", "get_client", "redact_url"]

_clients: dict[CortiConfig, CortiClient] = {}
_clients_lock = threading.Lock()


def get_client() -> CortiClient:
    """Return the process's client for the configured tenant.

    Built from settings when first used (never at import time) and shared, so
    one token and one connection pool serve every request of a worker.
    """
    config = CortiConfig.from_settings()
    with _clients_lock:
        client = _clients.get(config)
        if client is None:
            client = _clients[config] = CortiClient(config)
        return client


def clear_clients() -> None:
    """Forget every cached client (tests, or after settings change)."""
    with _clients_lock:
        _clients.clear()
