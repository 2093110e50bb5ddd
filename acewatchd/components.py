"""The daemon's long-lived parts beyond ingest, built in one place.

The daemon calls ``build_components(ctx)`` after ingest starts, starts them in list order and
stops them in reverse order at shutdown. So the nightly scheduler (which may be training)
stops first and the managed ACE-Step server, which that training talks to, stops last.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from acewatchd.acestep.server import ServerManager
from acewatchd.config import Config
from acewatchd.errors import AcewatchdError
from acewatchd.runtime import Component, DaemonContext
from acewatchd.schedule import create_component

logger = logging.getLogger(__name__)


def build_components(ctx: DaemonContext) -> list[Component]:
    # logs_dir=None: the server log follows [paths] logs across config reloads. The daemon's
    # stop event keeps a late nightly step from starting a server during shutdown.
    server = ServerManager(ctx.config, None, stop_event=ctx.stop)
    return [server, PreStarter(ctx, server), create_component(ctx, server)]


class PreStarter:
    """Starts a managed ACE-Step ``[acestep] start_before_minutes`` before the next nightly
    start, so loading the models (minutes on a Mac) does not eat into the training window.
    The nightly run stops the server after its work, whether or not it trained anything."""

    name = "acestep-prestart"

    def __init__(self, ctx: DaemonContext, server: ServerManager, interval: float = 30.0) -> None:
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
    from acewatchd.schedule_time import next_runs

    times = [datetime.fromisoformat(v).timestamp()
             for v in next_runs(cfg, datetime.fromtimestamp(now, UTC)).values() if v]
    return min(times) if times else None
