"""What the daemon shares with its parts: the context, the component and server protocols.

The daemon (daemon.py) owns the process: lock, signals, config reload, the ingest pipeline.
Longer-lived parts (the nightly scheduler, the managed ACE-Step server) are Components: the
daemon starts them, hands them every good config reload, and stops them at shutdown before a
deadline. They never install signal handlers and never call sys.exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from acewatchd.config.schema import Config
from acewatchd.ledger.db import Ledger
from acewatchd.util.clock import Clock, SystemClock


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


class Server(Protocol):
    """The ACE-Step server the nightly run talks to. ``managed`` is True when acewatchd starts
    and stops it (then restart() gives a clean decoder); an unmanaged server is only used."""

    @property
    def managed(self) -> bool: ...
    def running(self) -> bool: ...
    def ensure_running(self) -> None: ...
    def restart(self) -> None: ...
    def stop(self, deadline: float | None = None) -> None: ...
