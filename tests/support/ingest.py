"""Driving the in-process Daemon loop in ingest tests, and reading what it recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from acewatchd.config.load import parse_config
from acewatchd.daemon.daemon import Daemon
from acewatchd.ingest.pipeline import Ingestor
from acewatchd.ledger.db import Ledger
from tests.support.home import Home


def pump(d: Daemon, predicate: Callable[[], object], timeout: float = 20) -> None:
    """Turn the daemon's loop until ``predicate`` holds (a poll with a deadline)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        d.step()


def state(d: Daemon, dataset: str, relpath: str) -> str | None:
    row = d.ledger.connect().execute("SELECT state FROM files WHERE dataset=? AND relpath=?",
                                     (dataset, relpath)).fetchone()
    return None if row is None else row[0]


def reason_file(home: Home, dataset: str, name: str) -> Path:
    return home.rejected / dataset / f"{name}.reason.txt"


def ingestor(tmp_path: Path, extra: str = "") -> tuple[Ingestor, Ledger, Path]:
    """An Ingestor over a fresh home under ``tmp_path`` (config text ``extra``); its drop."""
    cfg = parse_config(extra, tmp_path / "config.toml")
    ledger = Ledger(cfg.paths.state)
    return Ingestor(ledger, lambda: cfg), ledger, cfg.paths.drop
