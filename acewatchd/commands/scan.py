"""`acewatchd scan`: one reconciliation pass (settle, validate, stubs), then exit."""

from __future__ import annotations

import argparse

from acewatchd.config.load import load_config
from acewatchd.daemon.daemon import Daemon, install_signals, scan_once, setup_daemon_logging
from acewatchd.util.locks import InstanceLock


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    setup_daemon_logging(cfg)
    with InstanceLock(cfg.paths.state, purpose="scan"):
        daemon = Daemon(cfg)
        install_signals(daemon)
        counts = scan_once(daemon)
    print("scan: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 0
