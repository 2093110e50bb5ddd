"""What the daemon shares with its parts: the context and the component protocol.

The daemon (daemon.py) owns the process: lock, signals, config reload, the ingest pipeline.
Longer-lived parts (the nightly scheduler, the managed ACE-Step server) are Components: the
daemon starts them, hands them every good config reload, and stops them at shutdown before a
deadline. They never install signal handlers and never call sys.exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from acewatchd.config import Config
from acewatchd.ledger import Ledger


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


@dataclass
class DaemonContext:
    config: Callable[[], Config]           # the current good config (changes on reload)
    ledger: Ledger
    stop: threading.Event                  # set when the daemon shuts down
    clock: Clock = field(default_factory=SystemClock)
    request_rescan: Callable[[str], None] = lambda reason: None


class Component(Protocol):
    name: str

    def start(self) -> None: ...
    def apply_config(self, cfg: Config) -> None: ...
    def stop(self, deadline: float) -> None:
        """Stop work and threads before ``deadline`` (time.monotonic())."""
        ...
