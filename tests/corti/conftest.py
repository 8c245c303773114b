"""The client's tests start with an empty cache: it holds the shared token."""

from __future__ import annotations

import pytest

from intake.corti.tokens import reset_cache_health


@pytest.fixture(autouse=True)
def _no_shared_token():
    """Forget every token an earlier test shared (the test cache is locmem),
    and that an earlier test broke the cache."""
    from django.core.cache import cache

    cache.clear()
    reset_cache_health()
    yield
    cache.clear()
    reset_cache_health()
