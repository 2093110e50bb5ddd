"""Deciding when a copy has finished.

There is no portable "copy finished" event (Finder, cp, rsync and browsers all differ), so a
file is settled when its (size, mtime_ns, inode) signature is unchanged over ``settle_polls``
looks and has been stable for ``settle_seconds`` (either seen stable that long, or its mtime is
already that old). A file still changing after ``settle_ceiling_minutes`` is given up on and
logged; the next reconciliation scan tries it again. Time comes from an injected Clock so tests
step it instead of sleeping.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from acewatchd.config.schema import Watch
from acewatchd.util.clock import Clock

logger = logging.getLogger(__name__)

Signature = tuple[int, int, int]  # size, mtime_ns, inode


def signature(path: Path) -> Signature:
    """lstat, never stat: a symlink is judged as a link, not by what it points to."""
    return signature_of(os.lstat(path))


def signature_of(st: os.stat_result) -> Signature:
    """The signature in an lstat result already at hand."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass
class _Pending:
    sig: Signature | None
    stable_polls: int
    changed_at: float        # monotonic time the signature last changed
    first_seen: float
    due: float = 0.0         # monotonic time it could settle if nothing changes


@dataclass(frozen=True)
class PollResult:
    settled: list[Path]
    vanished: list[Path]     # deleted or renamed away before settling
    gave_up: list[Path]      # still changing at the ceiling


class Settler:
    def __init__(self, clock: Clock, watch: Watch) -> None:
        self.clock = clock
        self.watch = watch
        self._pending: dict[Path, _Pending] = {}

    def add(self, path: Path) -> bool:
        """Start watching ``path``; False if it already is (duplicate events are no-ops)."""
        if path in self._pending:
            return False
        now = self.clock.monotonic()
        self._pending[path] = _Pending(None, 0, now, now)
        return True

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: object) -> bool:
        return path in self._pending

    def next_poll_in(self) -> float:
        """Seconds until the next useful poll: poll_seconds, or sooner when a file's quiet
        period ends before that (keeps drop-to-stub latency close to settle_seconds)."""
        now = self.clock.monotonic()
        soonest = min((e.due for e in self._pending.values()), default=now)
        return min(self.watch.poll_seconds, max(0.01, soonest - now))

    def discard(self, path: Path) -> None:
        self._pending.pop(path, None)

    def poll(self) -> PollResult:
        """Look at every pending file once."""
        settled: list[Path] = []
        vanished: list[Path] = []
        gave_up: list[Path] = []
        now, wall = self.clock.monotonic(), self.clock.time()
        for path, entry in list(self._pending.items()):
            try:
                sig = signature(path)
            except OSError:
                vanished.append(path)
                del self._pending[path]
                continue
            verdict = self._judge(entry, sig, now, wall)
            if verdict:
                del self._pending[path]
                (settled if verdict == "settled" else gave_up).append(path)
        return PollResult(settled, vanished, gave_up)

    def _judge(self, entry: _Pending, sig: Signature, now: float, wall: float) -> str:
        if sig != entry.sig:
            entry.sig, entry.stable_polls, entry.changed_at = sig, 0, now
        else:
            entry.stable_polls += 1
        stable_for = max(now - entry.changed_at, wall - sig[1] / 1e9)
        polls_left = max(0, self.watch.settle_polls - entry.stable_polls)
        entry.due = max(now + polls_left * self.watch.poll_seconds,
                        now + self.watch.settle_seconds - stable_for)
        if entry.stable_polls >= self.watch.settle_polls and \
                stable_for >= self.watch.settle_seconds:
            return "settled"
        if now - entry.first_seen > self.watch.settle_ceiling_minutes * 60:
            return "gave_up"
        return ""
