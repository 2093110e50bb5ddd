"""The daemon's long-lived parts beyond ingest, built in one place.

Owned by the service work (issue 7): the managed ACE-Step server and the nightly scheduler are
added here once they exist. The daemon calls ``build_components(ctx)`` after ingest starts.
"""

from __future__ import annotations

from acewatchd.runtime import Component, DaemonContext


def build_components(ctx: DaemonContext) -> list[Component]:
    return []
