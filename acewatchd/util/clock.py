"""Time, injected: the daemon and its parts read the clock through this protocol so tests can
step time instead of sleeping."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Injected so tests control time; the real one is SystemClock."""

    def time(self) -> float: ...          # wall clock, seconds since the epoch
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep; return True early if ``stop`` is set."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(seconds)
            return False
        return stop.wait(seconds)
