"""Start a managed ACE-Step before the next nightly start (the only pre-start).

Loading ACE-Step's models takes minutes on a Mac; starting the server ``[acestep]
start_before_minutes`` ahead keeps that out of the training window. The nightly run stops the
server after its work, whether or not it trained anything.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from acewatchd.config.schema import Config
from acewatchd.errors import AcewatchdError
from acewatchd.nightly.times import next_runs
from acewatchd.runtime import DaemonContext, Server

logger = logging.getLogger(__name__)


class PreStarter:
    """Starts a managed ACE-Step ``[acestep] start_before_minutes`` before the next nightly
    start, so loading the models (minutes on a Mac) does not eat into the training window.
    The nightly run stops the server after its work, whether or not it trained anything."""

    name = "acestep-prestart"

    def __init__(self, ctx: DaemonContext, server: Server, interval: float = 30.0) -> None:
        self.ctx = ctx
        self.server = server
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done_for = 0.0  # the fire time already pre-started for

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def apply_config(self, cfg: Config) -> None:
        pass  # every check reads the current config

    def stop(self, deadline: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic() - 0.5))

    def _loop(self) -> None:
        while not self._stop.is_set() and not self.ctx.stop.is_set():
            self.check(self.ctx.clock.time())
            self._stop.wait(self.interval)

    def check(self, now: float) -> bool:
        """Start the server if the next start is close enough; True when it tried."""
        cfg = self.ctx.config()
        lead = cfg.acestep.start_before_minutes * 60.0
        if not cfg.acestep.manage_server or lead <= 0:
            return False
        fire = _next_fire(cfg, now)
        if fire is None or fire - now > lead or fire == self._done_for:
            return False
        self._done_for = fire
        logger.info("next nightly start in %.0fs: starting the managed ACE-Step now", fire - now)
        try:
            self.server.ensure_running()
        except AcewatchdError as exc:  # the nightly run retries and reports it
            logger.warning("pre-starting ACE-Step failed: %s", exc)
        return True


def _next_fire(cfg: Config, now: float) -> float | None:
    times = [datetime.fromisoformat(v).timestamp()
             for v in next_runs(cfg, datetime.fromtimestamp(now, UTC)).values() if v]
    return min(times) if times else None
