"""Whether a batch's stub writes are worth handing to threads, judged from how long they take.

A stub write (create the temp file, write it, fsync it) on a disk whose fsync waits for a
journal commit (ext4, a USB drive) blocks for milliseconds: threads overlap those waits with
the next songs' parsing, and fsyncs in flight together share commits. Where fsync returns at
once (tmpfs, an SSD honouring plain fsync, which is what macOS's fsync is), the threads win
nothing and cost more than the write: each hand-off is a future, a queue and a GIL switch,
about 0.2 ms of CPU a stub on the CI VM, which made a 1,000-song drop on tmpfs a fifth slower.

So some stub writes are done inline and timed (``probe``): always while the pace is unknown
or quick, and one in every ``PROBE_EVERY`` while it is slow, because a write timed on a
thread also counts the wait for the GIL, which would keep the pace slow for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# A write that blocks longer than this is worth a thread: above the hand-off's own cost.
SLOW_SECONDS = 0.0003
PROBE_EVERY = 200  # stub writes, while slow (4 batches of 50 songs)
_WEIGHT = 0.3      # of the newest probe in the running average


class Pace:
    """The running average of timed (inline) stub writes; one per daemon, kept across its
    batches so that each batch starts from what the disk did last."""

    def __init__(self, timer: Callable[[], float] = time.perf_counter) -> None:
        self.average: float | None = None
        self._since_probe = 0
        self._timer = timer  # real time by default, on purpose: this times the disk

    @property
    def slow(self) -> bool:
        return self.average is not None and self.average > SLOW_SECONDS

    def probe(self) -> bool:
        """Whether the next write is to be done inline and timed (then ``record`` it)."""
        if not self.slow:
            return True
        self._since_probe += 1
        if self._since_probe >= PROBE_EVERY:
            self._since_probe = 0
            return True
        return False

    def record(self, seconds: float) -> None:
        self.average = seconds if self.average is None else (
            (1 - _WEIGHT) * self.average + _WEIGHT * seconds)

    def timed(self, write: Callable[[], T]) -> T:
        """Run ``write`` here and now, and record how long it took (not when it raises)."""
        began = self._timer()
        result = write()
        self.record(self._timer() - began)
        return result
