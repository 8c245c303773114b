"""A JSON answer opened in the browser: its /favicon.ico request is answered.

Pages link static/favicon.svg; a JSON answer (/healthz, /readyz) links
nothing, so the browser asks for /favicon.ico by itself, which used to be a
404 in the server's log and the browser's console.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def requested_paths():
    """The paths the live server is asked for while the test runs."""
    from django.core.signals import request_started

    paths: list[str] = []

    def note(sender, environ, **kwargs):
        paths.append(environ.get("PATH_INFO", ""))

    request_started.connect(note)
    yield paths
    request_started.disconnect(note)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_icon_the_browser_asks_for_by_itself_is_served(
    path, page, env, requested_paths
):
    page.goto(f"{env.site}{path}")
    page.wait_for_load_state("networkidle")
    # The icon is fetched after the load, whenever the browser gets to it: on
    # a loaded machine that can be later than any fixed pause. Up to 10 s.
    for _ in range(100):
        if "/favicon.ico" in requested_paths:
            break
        page.wait_for_timeout(100)

    print(f"{path}: requested {requested_paths}")
    assert "/favicon.ico" in requested_paths
    # The context's watch fails the test on any console error: a 404 for
    # /favicon.ico was one.
