"""The scheduler component driving a real training on the simulator: the daemon's stop
interrupts it through the same session before the deadline, and a restart inside the same
window resumes it from its checkpoint to the configured total."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep.client import AceStepClient
from acewatchd.acestep.layout import final_adapter, run_dir
from acewatchd.config.load import parse_config
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.scheduler import SchedulerComponent
from acewatchd.runtime import DaemonContext
from acewatchd.simulator.harness import running_simulator
from acewatchd.util.power import FakePower
from tests.support.clock import FakeClock
from tests.support.fakes import FakeStages
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(240)
INSIDE = datetime(2026, 6, 3, 2, tzinfo=UTC).timestamp()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with running_simulator(tmp_path / "ace", speed=20.0) as sim:
        text = (f'[acestep]\nroot = "{sim.root}"\nurl = "{sim.url}"\n'
                '[train]\nepochs = 200\nsave_every = 50\n'
                '[schedule]\ncron = "0 1 * * *"\nwindow_end = "07:00"\ntimezone = "UTC"\n')
        (tmp_path / "home" / "drop" / "songs").mkdir(parents=True)
        cfg = parse_config(text, tmp_path / "home" / "config.toml")
        tensors = sim.root / "datasets" / "acewatchd" / "songs" / "tensors"
        tensors.mkdir(parents=True)
        for i in range(2):
            (tensors / f"{i}.pt").write_bytes(b"SIMULATOR stand-in")
        ledger = Ledger(cfg.paths.state)
        clock = FakeClock(INSIDE, ticking=True)
        ctx = DaemonContext(config=lambda: cfg, ledger=ledger, stop=threading.Event(),
                            clock=clock)
        stages = FakeStages()
        # gradio_client starts a process-wide telemetry thread on first use; start it here,
        # before the thread-leak check takes its snapshot.
        with AceStepClient(sim.url, timeout=30, retries=0):
            pass
        try:
            yield {"ctx": ctx, "ledger": ledger, "cfg": cfg, "sim": sim, "stages": stages}
        finally:
            ledger.close()


def component(rig: dict[str, Any]) -> SchedulerComponent:
    sim, ctx = rig["sim"], rig["ctx"]
    env = NightlyEnv(ctx.ledger, lambda: AceStepClient(sim.url, timeout=30, retries=0),
                     ctx.clock, power=FakePower(), hooks=rig["stages"].hooks(), backoff=0.2,
                     guard_interval=0.05, quiet_seconds=1.0)
    return SchedulerComponent(ctx, None, env=env, wake_interval=0.05)


def poll(pred: Any, timeout: float, what: str) -> Any:
    return wait_until(pred, timeout, interval=0.02, message=what)


def epoch_now(ledger: Ledger) -> int:
    row = ledger.connect().execute("SELECT MAX(epoch) FROM progress").fetchone()
    return int(row[0] or 0)


def test_stop_interrupts_before_deadline_and_restart_resumes(rig: dict[str, Any],
                                                             no_thread_leak: None) -> None:
    ledger = rig["ledger"]
    first = component(rig)
    first.start()  # 02:00 is inside tonight's 01:00-07:00 window: the missed start runs now
    try:
        poll(lambda: epoch_now(ledger) >= 60, 60, "training past its first checkpoint")
    finally:
        t0 = time.monotonic()
        first.stop(t0 + 10)
    assert time.monotonic() - t0 < 10
    train = ledger.connect().execute("SELECT * FROM runs WHERE job='train'").fetchone()
    assert train["outcome"] == "interrupted" and re.search(r"/epoch_50(_loss_[0-9.]+)?$", train["checkpoint"])
    assert "stopping" in train["message"]
    nightly = ledger.connect().execute("SELECT outcome FROM runs WHERE job='nightly'").fetchone()
    assert nightly[0] == "interrupted"
    assert rig["sim"].call_counts().get("/stop_training") == 1

    second = component(rig)  # the daemon restarts, still inside the window
    second.start()
    try:
        poll(lambda: ledger.connect().execute(
            "SELECT outcome FROM runs WHERE job='nightly' AND outcome='done'").fetchone(),
            90, "the resumed run to finish")
    finally:
        second.stop(time.monotonic() + 10)
    rows = ledger.connect().execute("SELECT * FROM runs WHERE job='train' ORDER BY id").fetchall()
    assert [r["outcome"] for r in rows] == ["interrupted", "done"]
    assert rows[0]["run_name"] == rows[1]["run_name"] and rows[1]["epochs_done"] == 200
    resumed_from = ledger.connect().execute("SELECT MIN(epoch) FROM progress WHERE run_id=?",
                                            (rows[1]["id"],)).fetchone()[0]
    assert resumed_from == 51
    assert final_adapter(run_dir(rig["cfg"].acestep.root, "songs", rows[0]["run_name"])) is not None
