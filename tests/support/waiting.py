"""Polling with a deadline, and finding threads a test left running."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest


def wait_until(predicate: Callable[[], object], timeout: float = 20.0,
               interval: float = 0.05, message: str = "") -> object:
    """Poll ``predicate`` until truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {message or predicate}")
        time.sleep(interval)


def threads_left(before: set[threading.Thread], within: float) -> list[threading.Thread]:
    """Threads started since ``before`` that are still alive after waiting up to ``within``."""
    deadline = time.monotonic() + within
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
