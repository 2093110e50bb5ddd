"""`acewatchd train <dataset> [--now]`: say when it trains next, or train it now.

With --now the dataset runs the nightly pipeline at once (job "manual"), holding the job lock;
Ctrl-C stops the training through the same ACE-Step session and keeps its checkpoint.
"""

from __future__ import annotations

import argparse
import threading
from datetime import UTC, datetime
from typing import Any

from acewatchd.acestep.server import ServerManager
from acewatchd.commands.dataset_arg import existing_dataset
from acewatchd.config.load import load_config
from acewatchd.config.schema import Config
from acewatchd.errors import AlreadyRunning
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.runs import Job
from acewatchd.log import setup_logging
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.run import run_dataset
from acewatchd.nightly.times import next_fire


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    dataset = existing_dataset(cfg, args.dataset)
    if not args.now:
        sched = cfg.schedule_for(dataset)
        nxt = next_fire(sched, datetime.now(UTC)) if sched.enabled else None
        when = nxt.isoformat() if nxt else "never (schedule disabled)"
        print(f"{dataset}: next scheduled run {when}; use --now to train immediately")
        return 0
    return _train_now(cfg, dataset)


def _train_now(cfg: Config, dataset: str) -> int:
    setup_logging(cfg.paths.logs, cfg.logging.level, console=True)
    ledger = Ledger(cfg.paths.state)
    env = NightlyEnv.default(ledger, lambda: cfg)
    env.server = _server_for(cfg, env.stop)
    result: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            result["outcome"] = run_dataset(lambda: cfg, env, dataset, scheduled_for=None,
                                            window_end=None, job=Job.MANUAL, force=True,
                                            fail_if_locked=True)
        except AlreadyRunning as exc:
            result["error"] = exc
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="train-now")
    worker.start()
    try:
        # An event, not join(): on Python 3.11/3.12 Ctrl-C makes a waiting join return at once.
        _wait(finished, env.stop)
    finally:
        if env.server is not None:  # a server this command started does not outlive it
            env.server.stop()
    if "error" in result:
        raise result["error"]
    outcome = str(result.get("outcome", "failed"))
    print(f"{dataset}: {outcome}")
    return 0 if outcome in ("done", "skipped") else (130 if env.stop.is_set() else 1)


def _server_for(cfg: Config, stop: threading.Event) -> ServerManager | None:
    """The managed server when [acestep] manage_server = true, else None (connect only)."""
    if not cfg.acestep.manage_server:
        return None
    return ServerManager(lambda: cfg, cfg.paths.logs, stop_event=stop)


def _wait(finished: threading.Event, stop: threading.Event) -> None:
    """Until the training thread ends; Ctrl-C stops the training through its own session (it
    resumes from the last checkpoint next time) and waits for that to be recorded."""
    while True:
        try:
            while not finished.wait(0.5):
                pass
            return
        except KeyboardInterrupt:
            if not stop.is_set():
                print("stopping training (it resumes from its last checkpoint next time)...")
                stop.set()
