"""Waiting for something to happen, and doing things at the same time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests


def wait_until(
    predicate: Callable[[], Any], timeout: float = 5.0, *, interval: float = 0.02
) -> Any:
    """Ask `predicate` until it answers truthy or `timeout` seconds passed;
    its last answer (the caller decides what a falsy one means)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, *, interval: float = 0.05
) -> Any:
    """Like wait_until, but the test fails when time runs out."""
    value = wait_until(predicate, timeout, interval=interval)
    assert value, "timed out"
    return value


def in_threads(count: int, target: Callable[[int], Any]) -> list[Any]:
    """Run `target(i)` in `count` threads released together; their results.

    Each thread uses (and closes) its own database connection.
    """
    from django.db import connections

    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target(index)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results


def timed_get(url: str) -> tuple[float, requests.Response]:
    """GET `url`: the seconds it took, and the answer."""
    started = time.monotonic()
    response = requests.get(url, timeout=30)
    return time.monotonic() - started, response


def probe_in_parallel(
    url: str, count: int, *, at_once: int
) -> list[tuple[float, requests.Response]]:
    """`count` timed GETs of `url`, `at_once` of them in flight together."""
    with ThreadPoolExecutor(at_once) as pool:
        return list(pool.map(timed_get, [url] * count))
