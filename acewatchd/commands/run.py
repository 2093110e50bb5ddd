"""`acewatchd run`: the daemon in the foreground (what launchd starts)."""

from __future__ import annotations

import argparse

from acewatchd.config.load import load_config
from acewatchd.daemon.daemon import Daemon, install_signals, setup_daemon_logging
from acewatchd.util.locks import InstanceLock


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    setup_daemon_logging(cfg)
    with InstanceLock(cfg.paths.state):
        daemon = Daemon(cfg)
        install_signals(daemon)
        return daemon.run()
