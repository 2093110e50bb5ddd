"""A multi-night run that the window's end pauses is rendered as a progress report of the
checkpoints it saved (the run stays interrupted and resumes); a stop or a pause with no
checkpoint yet renders nothing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from acewatchd.ledger.db import Ledger
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.run import run_dataset
from acewatchd.util.power import FakePower
from tests.support.clock import FakeClock
from tests.support.fakes import FakeClient, FakeStages, make_config
from tests.support.render import make_adapter

START = 1_780_000_000.0
WINDOW = 3600.0


class PausingClient(FakeClient):
    """Trains until the window ends: saves ``saved`` checkpoints, then the clock passes the
    window's end and ACE-Step reports the training stopped (what the guard's stop leaves)."""

    clock: FakeClock
    saved: tuple[int, ...] = (200,)
    stop: threading.Event | None = None

    def train(self, **kw: Any) -> Any:
        from acewatchd.acestep.progress import TrainingProgress
        from acewatchd.acestep.training_stream import TrainingOutcome

        self.calls.append(("train", kw))
        run = self.root / kw["output_dir"]
        for epoch in self.saved:
            make_adapter(run / "checkpoints" / f"epoch_{epoch}" / "adapter")
        prog = TrainingProgress(max(self.saved, default=1), kw["epochs"], 10, 0.5, "0s", "")
        kw["on_progress"](prog)
        self.clock.advance(WINDOW)
        if self.stop is not None:
            self.stop.set()
        return TrainingOutcome("stopped", prog, "Training completed!")


def _night(tmp_path: Path, saved: tuple[int, ...], stop: bool = False) -> tuple[str, str,
                                                                               FakeStages]:
    cfg = make_config(tmp_path)
    (cfg.paths.drop / "a").mkdir()
    ledger = Ledger(cfg.paths.state)
    clock, stages, halt = FakeClock(START), FakeStages(), threading.Event()

    def factory() -> FakeClient:
        client = PausingClient(cfg.acestep.root)
        client.clock, client.saved, client.stop = clock, saved, halt if stop else None
        return client

    env = NightlyEnv(ledger, factory, clock, halt, FakePower(), hooks=stages.hooks(),
                     backoff=0.1, backoff_max=0.2, guard_interval=0.02)
    try:
        outcome = run_dataset(lambda: cfg, env, "a", scheduled_for=START,
                              window_end=START + WINDOW - 1)
        message = ledger.connect().execute(
            "SELECT message FROM runs WHERE job='nightly'").fetchone()[0]
    finally:
        ledger.close()
    return outcome, message, stages


@pytest.mark.usefixtures("no_thread_leak")
def test_a_paused_run_is_rendered_as_a_progress_report(tmp_path: Path) -> None:
    outcome, message, stages = _night(tmp_path, (200, 400))
    assert outcome == "interrupted" and "progress report rendered to" in message
    assert len(stages.rendered) == 1 and stages.rendered[0][1] is not None


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize(("saved", "stop"), [((), False), ((200,), True)])
def test_no_progress_report_without_checkpoints_or_after_a_stop(tmp_path: Path,
                                                               saved: tuple[int, ...],
                                                               stop: bool) -> None:
    outcome, message, stages = _night(tmp_path, saved, stop)
    assert outcome == "interrupted" and "progress report" not in message
    assert stages.rendered == []
