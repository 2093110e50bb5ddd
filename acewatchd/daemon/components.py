"""The daemon's long-lived parts beyond ingest, built in one place.

The daemon calls ``build_components(ctx)`` after ingest starts, starts them in list order and
stops them in reverse order at shutdown. So the nightly scheduler (which may be training)
stops first and the managed ACE-Step server, which that training talks to, stops last.
"""

from __future__ import annotations

import logging

from acewatchd.acestep.server import ServerManager
from acewatchd.nightly.prestart import PreStarter
from acewatchd.nightly.scheduler import create_component
from acewatchd.runtime import Component, DaemonContext

logger = logging.getLogger(__name__)


def build_components(ctx: DaemonContext) -> list[Component]:
    # logs_dir=None: the server log follows [paths] logs across config reloads. The daemon's
    # stop event keeps a late nightly step from starting a server during shutdown.
    server = ServerManager(ctx.config, None, stop_event=ctx.stop)
    return [server, PreStarter(ctx, server), create_component(ctx, server)]
