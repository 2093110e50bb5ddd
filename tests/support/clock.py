"""The one injected clock for tests.

Frozen (the default): time moves only when the test calls ``advance`` or ``set_wall``, and
``sleep`` advances it, so a loop that sleeps runs instantly. Ticking (``ticking=True``): both
clocks follow real time from the offset the test set, and ``sleep`` records what was asked and
really waits at most 20 ms, so threads that poll the clock neither spin nor stall; the test
jumps the wall clock to simulate a Mac sleeping or a window ending.
"""

from __future__ import annotations

import threading
import time

_REAL_SLEEP = 0.02


class FakeClock:
    def __init__(self, wall: float | None = None, *, ticking: bool = False) -> None:
        self.ticking = ticking
        self._wall = time.time() if wall is None else wall
        self._mono = 1000.0
        self._base = time.monotonic()   # real time when the offsets were last set
        self.sleeps: list[float] = []

    def _real(self) -> float:
        return time.monotonic() - self._base if self.ticking else 0.0

    def time(self) -> float:
        return self._wall + self._real()

    def monotonic(self) -> float:
        return self._mono + self._real()

    @property
    def wall(self) -> float:
        return self.time()

    @wall.setter
    def wall(self, value: float) -> None:
        self.set_wall(value)

    def set_wall(self, wall: float) -> None:
        """Jump the wall clock only (what sleep/wake looks like)."""
        self._wall = wall - self._real()

    def advance(self, seconds: float) -> None:
        """Both clocks move (time passed while awake)."""
        self._wall += seconds
        self._mono += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.sleeps.append(seconds)
        if not self.ticking:
            self.advance(seconds)
            return bool(stop and stop.is_set())
        real = min(seconds, _REAL_SLEEP)
        if stop is None:
            time.sleep(real)
            return False
        return stop.wait(real)
