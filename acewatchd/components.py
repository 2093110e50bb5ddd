"""The daemon's long-lived parts beyond ingest, built in one place.

The daemon calls ``build_components(ctx)`` after ingest starts, starts them in list order and
stops them in reverse order at shutdown. So the nightly scheduler (which may be training)
stops first and the managed ACE-Step server, which that training talks to, stops last.
"""

from __future__ import annotations

import logging

from acewatchd.acestep.server import ServerManager
from acewatchd.runtime import Component, DaemonContext

logger = logging.getLogger(__name__)


def build_components(ctx: DaemonContext) -> list[Component]:
    # logs_dir=None: the server log follows [paths] logs across config reloads.
    server = ServerManager(ctx.config, None, stop_event=ctx.stop)
    scheduler = _scheduler(ctx, server)
    return [server] if scheduler is None else [server, scheduler]


def _scheduler(ctx: DaemonContext, server: ServerManager) -> Component | None:
    try:
        from acewatchd.schedule import create_component
    except ImportError:  # TEMPORARY while issue 5 lands: ingest must keep working meanwhile
        logger.error("nightly scheduler unavailable (acewatchd.schedule.create_component"
                     " missing): no training will run")
        ctx.ledger.record_event("error", "nightly scheduler unavailable in this build")
        return None
    return create_component(ctx, server)
