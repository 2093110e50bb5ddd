"""The managed ACE-Step is started [acestep] start_before_minutes before the nightly start."""

from __future__ import annotations

import calendar
import sys
import threading
import time
from pathlib import Path

import tomli_w

from acewatchd.acestep import serverproc
from acewatchd.acestep.server import ServerManager
from acewatchd.config.load import load_config
from acewatchd.config.schema import Config
from acewatchd.daemon.components import build_components
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.prestart import PreStarter
from acewatchd.runtime import DaemonContext
from acewatchd.simulator.harness import free_port


def config(home: Path, port: int, cron: str, before: int) -> Config:
    (home / "acestep").mkdir(parents=True, exist_ok=True)
    (home / "drop" / "songs").mkdir(parents=True, exist_ok=True)  # a dataset to schedule
    command = [sys.executable, "-m", "acewatchd", "simulate", "--root", str(home / "acestep"),
               "--port", str(port), "--speed", "50"]
    table = {"acestep": {"root": "acestep", "url": f"http://127.0.0.1:{port}",
                         "manage_server": True, "server_command": command,
                         "start_before_minutes": before, "startup_timeout_seconds": 90.0},
             "schedule": {"cron": cron, "timezone": "UTC"}}
    (home / "config.toml").write_text(tomli_w.dumps(table), encoding="utf-8")
    return load_config(home / "config.toml")


def make(home: Path, cfg: Config) -> tuple[PreStarter, ServerManager]:
    ctx = DaemonContext(config=lambda: cfg, ledger=Ledger(cfg.paths.state),
                        stop=threading.Event())
    server = ServerManager(ctx.config, cfg.paths.logs, stop_event=ctx.stop)
    return PreStarter(ctx, server), server


def test_starts_the_server_once_shortly_before_the_next_start(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port, "* * * * *", before=5)  # the next start is < 1 min away
    pre, server = make(tmp_path, cfg)
    try:
        now = time.time()
        assert pre.check(now) is True
        assert server.running() and serverproc.port_open("127.0.0.1", port)
        assert pre.check(now) is False  # same start time: not again
    finally:
        server.stop()
    assert not server.running()


def test_nothing_is_started_when_the_start_is_far_or_prestart_is_off(tmp_path: Path) -> None:
    # 03:00 on 1 January: "now" is placed at noon on 31 December, 15 h before it.
    cfg = config(tmp_path, free_port(), "0 3 1 1 *", before=120)
    pre, server = make(tmp_path, cfg)
    noon = calendar.timegm((2030, 12, 31, 12, 0, 0))
    assert pre.check(noon) is False
    cfg = config(tmp_path, free_port(), "* * * * *", before=0)
    pre, server = make(tmp_path, cfg)
    assert pre.check(time.time()) is False
    assert not server.running()
    assert not (cfg.paths.logs / "acestep.log").exists()


def test_build_components_order(tmp_path: Path) -> None:
    cfg = config(tmp_path, free_port(), "0 1 * * *", before=5)
    ctx = DaemonContext(config=lambda: cfg, ledger=Ledger(cfg.paths.state),
                        stop=threading.Event())
    names = [c.name for c in build_components(ctx)]
    # Stopped in reverse: the scheduler (training) first, the server it talks to last.
    assert names == ["acestep-server", "acestep-prestart", "scheduler"]
