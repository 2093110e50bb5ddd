"""Training against the real ACE-Step simulator (real Gradio server, real gradio_client,
real SQLite, real files) with an injected wall clock: window end, resume across nights,
server down at the start, a dropped stream, changed/unchanged content."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep.client import AceStepClient
from acewatchd.acestep.layout import (
    checkpoint_epoch,
    checkpoints,
    final_adapter,
    latest_checkpoint,
    run_dir,
)
from acewatchd.acestep.versions import V1, V2
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.env import Hooks, NightlyEnv
from acewatchd.nightly.render.session import render_run
from acewatchd.nightly.run import run_dataset
from acewatchd.simulator.harness import SimHandle, running_simulator
from acewatchd.util.power import FakePower
from tests.support.clock import FakeClock
from tests.support.fakes import FakeStages

pytestmark = pytest.mark.timeout(240)

DS = "songs"
NIGHT1 = datetime(2026, 6, 3, 1, tzinfo=UTC).timestamp()
HOUR = 3600.0


@pytest.fixture(scope="module", params=[V1.commit, V2.commit], ids=[V1.label, V2.label])
def sim(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    """The simulator impersonating each supported ACE-Step version in turn."""
    root = tmp_path_factory.mktemp("acestep")
    with running_simulator(root, speed=20.0, version=request.param) as handle:
        yield handle  # 0.05 s per simulated epoch


@pytest.fixture(scope="module")
def sim_v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    """The simulator (6d467e4: checkpoints epoch_N_loss_X) writing the flat trainer layout
    (adapters saved straight into the checkpoint folders and final/)."""
    root = tmp_path_factory.mktemp("acestep-v2")
    with running_simulator(root, speed=20.0, layout="flat") as handle:
        yield handle


@pytest.fixture
def rig(sim: SimHandle, tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield from _rig(sim, tmp_path)


@pytest.fixture
def rig_v2(sim_v2: SimHandle, tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield from _rig(sim_v2, tmp_path, render=True)


def _rig(sim: SimHandle, tmp_path: Path, render: bool = False) -> Iterator[dict[str, Any]]:
    sim.set_faults([])
    if not sim.alive():
        sim.start()
    home = tmp_path / "home"
    text = ('[train]\nepochs = 200\nsave_every = 50\n'
            '[schedule]\ncron = "0 1 * * *"\nwindow_end = "07:00"\ntimezone = "UTC"\n')
    cfg = _with_url(home, text, sim)
    (cfg.paths.drop / DS).mkdir(parents=True, exist_ok=True)
    tensors = sim.root / "datasets" / "acewatchd" / DS / "tensors"
    tensors.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (tensors / f"s{i}.pt").write_bytes(b"SIMULATOR tensor stand-in")
    ledger = Ledger(cfg.paths.state)
    clock = FakeClock(NIGHT1, ticking=True)
    stages = FakeStages(hashes={DS: "a" * 16})
    hooks = stages.hooks()
    if render:  # the real render stage against the simulator
        hooks = Hooks(hooks.content_hash, hooks.prepare, render_run)
    env = NightlyEnv(ledger=ledger, client_factory=lambda: AceStepClient(
        sim.url, timeout=30, retries=0), clock=clock, power=FakePower(), hooks=hooks,
        backoff=0.2, backoff_max=1.0, guard_interval=0.05, quiet_seconds=1.0)
    try:
        yield {"cfg": cfg, "ledger": ledger, "clock": clock, "env": env, "stages": stages,
               "sim": sim}
    finally:
        env.stop.set()
        ledger.close()


def _with_url(home: Path, text: str, sim: SimHandle) -> Any:
    from acewatchd.config.load import parse_config

    (home / "drop").mkdir(parents=True, exist_ok=True)
    full = f'[acestep]\nroot = "{sim.root}"\nurl = "{sim.url}"\n' + text
    return parse_config(full, home / "config.toml")


def night(rig: dict[str, Any], start: float, *, stop_at_epoch: int | None = None,
          during: Callable[[], None] | None = None) -> str:
    """Run one night's dataset job in a thread; optionally jump to window_end at an epoch."""
    clock, env, cfg = rig["clock"], rig["env"], rig["cfg"]
    clock.set_wall(start)
    out: dict[str, str] = {}
    worker = threading.Thread(target=lambda: out.update(o=run_dataset(
        lambda: cfg, env, DS, scheduled_for=start, window_end=start + 6 * HOUR)))
    worker.start()
    try:
        if during:
            during()
        if stop_at_epoch is not None:
            wait(lambda: max_epoch(rig["ledger"]) >= stop_at_epoch, 60, "epoch to stop at")
            clock.set_wall(start + 6 * HOUR + 1)  # window_end reached
        worker.join(120)
    finally:
        env.stop.set() if worker.is_alive() else None
        worker.join(30)
    return out.get("o", "")


def wait(pred: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def max_epoch(ledger: Ledger, run_id: int | None = None) -> int:
    sql = "SELECT MAX(epoch) FROM progress" + (" WHERE run_id=?" if run_id else "")
    row = ledger.connect().execute(sql, (run_id,) if run_id else ()).fetchone()
    return int(row[0] or 0)


def train_rows(ledger: Ledger) -> list[dict[str, Any]]:
    rows = ledger.connect().execute("SELECT * FROM runs WHERE job='train' ORDER BY id")
    return [dict(r) for r in rows]


def ck_epoch(row: dict[str, Any]) -> int:
    """The epoch of a row's checkpoint path, either naming (epoch_N, epoch_N_loss_X)."""
    epoch = checkpoint_epoch(Path(row["checkpoint"]).name)
    assert epoch is not None, row["checkpoint"]
    return epoch


def first_epoch(ledger: Ledger, run_id: int) -> int:
    row = ledger.connect().execute("SELECT MIN(epoch) FROM progress WHERE run_id=?",
                                   (run_id,)).fetchone()
    return int(row[0] or 0)


def test_window_end_stops_and_resumes_over_three_nights(rig: dict[str, Any]) -> None:
    ledger, sim = rig["ledger"], rig["sim"]
    stops_before = sim.call_counts().get("/stop_training", 0)
    assert night(rig, NIGHT1, stop_at_epoch=60) == "interrupted"
    assert night(rig, NIGHT1 + 24 * HOUR, stop_at_epoch=110) == "interrupted"
    assert night(rig, NIGHT1 + 48 * HOUR) == "done"
    rows = train_rows(ledger)
    assert [r["outcome"] for r in rows] == ["interrupted", "interrupted", "done"]
    assert len({r["run_name"] for r in rows}) == 1            # one run over three nights
    assert all(r["epochs_total"] == 200 for r in rows)
    # Stopped through the same session: the server stopped well before the total (another
    # session would have been told "No training in progress" and training would have run on).
    assert 50 <= rows[0]["epochs_done"] < 200 and ck_epoch(rows[0]) == 50
    assert ck_epoch(rows[1]) in (100, 150)
    assert sim.call_counts().get("/stop_training", 0) - stops_before == 2
    # Each later night resumed from its checkpoint, counting the epochs already done.
    assert first_epoch(ledger, rows[1]["id"]) == 51
    assert first_epoch(ledger, rows[2]["id"]) == ck_epoch(rows[1]) + 1
    # One continuous loss curve: each night goes forward, and together they cover every epoch
    # (a night redoes only what came after its checkpoint).
    covered: set[int] = set()
    for row in rows:
        epochs = [e for (e,) in ledger.connect().execute(
            "SELECT epoch FROM progress WHERE run_id=? AND epoch IS NOT NULL ORDER BY rowid",
            (row["id"],))]
        assert epochs == sorted(epochs), row
        covered |= set(epochs)
    assert covered == set(range(1, max(covered) + 1)) and max(covered) >= 190
    assert len(list((rig["cfg"].acestep.root / "lora_output/acewatchd" / DS).iterdir())) == 1
    # (progress is sampled from the stream: the last item or two may be coalesced)
    assert rows[2]["epochs_done"] == 200 and max_epoch(ledger, rows[2]["id"]) >= 190
    folder = run_dir(rig["cfg"].acestep.root, DS, rows[0]["run_name"])
    assert final_adapter(folder) == folder / "final" / "adapter"
    assert rows[2]["checkpoint"] == f"./lora_output/acewatchd/{DS}/{rows[0]['run_name']}" \
                                    "/final/adapter"
    # Each paused night rendered its checkpoints as a progress report, the last the finished run.
    assert rig["stages"].rendered == [(DS, r["id"]) for r in rows]
    nightly = ledger.connect().execute("SELECT outcome FROM runs WHERE job='nightly' ORDER BY id")
    assert [r[0] for r in nightly] == ["interrupted", "interrupted", "done"]


def test_unchanged_not_retrained_changed_is(rig: dict[str, Any]) -> None:
    ledger, stages = rig["ledger"], rig["stages"]
    rig["cfg"] = _with_url(rig["cfg"].home, '[train]\nepochs = 100\nsave_every = 50\n',
                           rig["sim"])
    assert night(rig, NIGHT1) == "done"
    assert night(rig, NIGHT1 + 24 * HOUR) == "skipped"      # same content: no new LoRA
    assert len(train_rows(ledger)) == 1
    stages.hashes[DS] = "b" * 16                              # a song was added
    assert night(rig, NIGHT1 + 48 * HOUR) == "done"
    rows = train_rows(ledger)
    assert len(rows) == 2 and rows[0]["run_name"] != rows[1]["run_name"]
    assert rows[1]["content_hash"] == "b" * 16
    assert final_adapter(run_dir(rig["cfg"].acestep.root, DS, rows[1]["run_name"])) is not None
    msg = ledger.connect().execute("SELECT message FROM runs WHERE job='nightly' ORDER BY id")
    assert "unchanged" in [r[0] for r in msg][1]


def test_server_down_at_start_waits_then_proceeds(rig: dict[str, Any]) -> None:
    sim, ledger = rig["sim"], rig["ledger"]
    rig["cfg"] = _with_url(rig["cfg"].home, '[train]\nepochs = 100\nsave_every = 50\n', sim)
    sim.set_faults(["refuse"])
    assert not sim.alive()

    def bring_back() -> None:
        wait(lambda: len(rig["clock"].sleeps) >= 3, 30, "a few retries")
        assert train_rows(ledger) == []     # waiting, not failed
        sim.set_faults([])                   # the server comes back inside the window

    assert night(rig, NIGHT1, during=bring_back) == "done"
    assert train_rows(ledger)[0]["outcome"] == "done"


def test_server_down_all_window_is_skipped_not_failed(rig: dict[str, Any]) -> None:
    sim, ledger, clock = rig["sim"], rig["ledger"], rig["clock"]
    sim.set_faults(["refuse"])

    def end_window() -> None:
        wait(lambda: len(clock.sleeps) >= 2, 30, "retries")
        clock.set_wall(NIGHT1 + 6 * HOUR + 1)

    assert night(rig, NIGHT1, during=end_window) == "skipped"
    row = ledger.connect().execute("SELECT outcome, message FROM runs WHERE job='nightly'"
                                   ).fetchone()
    assert row[0] == "skipped" and "did not answer" in row[1]
    assert train_rows(ledger) == []
    sim.set_faults([])


def test_dropped_stream_recovers_from_checkpoint(rig: dict[str, Any]) -> None:
    sim, ledger = rig["sim"], rig["ledger"]
    calls_before = sim.call_counts().get("/training_wrapper", 0)
    sim.set_faults(["drop=50"])  # the server dies right after writing checkpoints/epoch_50

    def restart_server() -> None:
        wait(lambda: not sim.answers(), 60, "the simulated crash")
        sim.stop()
        sim.start()

    assert night(rig, NIGHT1, during=restart_server) == "done"
    rows = train_rows(ledger)
    assert len(rows) == 1 and rows[0]["outcome"] == "done" and rows[0]["epochs_done"] == 200
    folder = run_dir(rig["cfg"].acestep.root, DS, rows[0]["run_name"])
    assert latest_checkpoint(folder) is not None
    assert [ck.epoch for ck in checkpoints(folder)][:1] == [50]
    epochs = [r[0] for r in ledger.connect().execute(
        "SELECT epoch FROM progress WHERE run_id=? ORDER BY rowid", (rows[0]["id"],))]
    # Two training calls (before and after the crash), and after the crash training went on
    # from epoch 51: no epoch was trained twice, nothing before the checkpoint was lost.
    assert sim.call_counts().get("/training_wrapper", 0) - calls_before == 2
    assert 50 in epochs and 51 in epochs
    assert epochs == sorted(set(epochs)) and epochs[-1] >= 190
    assert final_adapter(folder) is not None


def test_v2_layout_resumes_from_loss_named_checkpoint_and_renders(rig_v2: dict[str, Any]) -> None:
    """A v2 trainer run (checkpoints epoch_N_loss_X, adapters flat in final/) is resumed,
    accepted as finished by training, and loaded by rendering (both read acestep/layout)."""
    ledger, cfg = rig_v2["ledger"], rig_v2["cfg"]
    assert night(rig_v2, NIGHT1, stop_at_epoch=60) == "interrupted"
    first = train_rows(ledger)[0]
    assert re.search(r"/checkpoints/epoch_50_loss_[0-9.]+$", first["checkpoint"]), first
    assert night(rig_v2, NIGHT1 + 24 * HOUR) == "done"
    rows = train_rows(ledger)
    assert [r["outcome"] for r in rows] == ["interrupted", "done"]
    assert first_epoch(ledger, rows[1]["id"]) == 51           # resumed, not restarted
    folder = run_dir(cfg.acestep.root, DS, rows[0]["run_name"])
    assert final_adapter(folder) == folder / "final"          # flat: no final/adapter
    pages = [json.loads(p.read_text(encoding="utf-8"))
             for p in sorted((cfg.paths.outbox / DS).glob("*/samples.json"))]
    # The paused night's progress report (from its loss-named checkpoint), then the final run.
    assert [m["finished"] for m in pages] == [False, True], "the v2 run was rendered"
    assert pages[0]["lora"]["checkpoint"].startswith("epoch_50_loss_")
    manifest = pages[1]
    assert manifest["lora"]["path"] == f"./lora_output/acewatchd/{DS}/{rows[0]['run_name']}/final"


def test_a_resume_acestep_ignores_is_stopped_and_reported(rig: dict[str, Any]) -> None:
    """V1/V2 silently start fresh when they cannot use the resume path: the session sees the
    first epoch is not the checkpoint's next, stops the training, fails the night with the
    reason and keeps the run's checkpoints and loss curve clean."""
    ledger, sim = rig["ledger"], rig["sim"]
    assert night(rig, NIGHT1, stop_at_epoch=60) == "interrupted"
    sim.set_faults(["lose-resume"])
    try:
        assert night(rig, NIGHT1 + 24 * HOUR) == "failed"
    finally:
        sim.set_faults([])
    rows = train_rows(ledger)
    assert [r["outcome"] for r in rows] == ["interrupted", "failed"]
    assert "did not resume" in rows[1]["message"] and "epoch 1, not at 51" in rows[1]["message"]
    assert first_epoch(ledger, rows[1]["id"]) == 0          # no epoch of the fresh start kept
    folder = run_dir(rig["cfg"].acestep.root, DS, rows[0]["run_name"])
    assert final_adapter(folder) is None and ck_epoch(rows[0]) == 50
    event = ledger.connect().execute("SELECT message FROM events ORDER BY id DESC").fetchone()
    assert "did not resume" in event[0]


def test_a_failed_session_does_not_throw_away_an_interrupted_run(rig: dict[str, Any]) -> None:
    """Night 2 fails (an error reply); night 3 resumes night 1's run from its checkpoint
    instead of starting a new run at epoch 1."""
    ledger, sim = rig["ledger"], rig["sim"]
    assert night(rig, NIGHT1, stop_at_epoch=60) == "interrupted"
    sim.set_faults(["error=/training_wrapper:*"])
    try:
        assert night(rig, NIGHT1 + 24 * HOUR) == "failed"
    finally:
        sim.set_faults([])
    assert night(rig, NIGHT1 + 48 * HOUR) == "done"
    rows = train_rows(ledger)
    assert [r["outcome"] for r in rows] == ["interrupted", "failed", "done"]
    assert len({r["run_name"] for r in rows}) == 1              # the same run all along
    assert first_epoch(ledger, rows[2]["id"]) == 51


class SimServer:
    """The simulator as a managed server (what ServerManager is to a real ACE-Step)."""

    managed = True

    def __init__(self, sim: SimHandle) -> None:
        self.sim, self.starts = sim, 0

    def running(self) -> bool:
        return self.sim.alive()

    def ensure_running(self) -> None:
        if not self.sim.alive():
            self.sim.stop()   # reap the dead process
            self.sim.start()
            self.starts += 1

    def restart(self) -> None:
        self.sim.stop()
        self.ensure_running()

    def stop(self, deadline: float | None = None) -> None:
        pass  # the module's simulator outlives the test


def test_a_managed_server_that_dies_is_restarted_and_the_run_resumes(
        rig: dict[str, Any]) -> None:
    """ACE-Step dies mid-training: acewatchd starts it again itself and resumes from the
    newest checkpoint at once (the old session died with it: no quiet period to wait)."""
    sim, ledger, env = rig["sim"], rig["ledger"], rig["env"]
    server = SimServer(sim)
    env.server = server
    env.quiet_seconds = 3600.0          # waiting it out would time the test out
    sim.set_faults(["drop=50"])
    started = time.monotonic()
    assert night(rig, NIGHT1) == "done"
    assert time.monotonic() - started < 200
    assert server.starts == 1
    rows = train_rows(ledger)
    assert len(rows) == 1 and rows[0]["outcome"] == "done" and rows[0]["epochs_done"] == 200
    epochs = [e for (e,) in ledger.connect().execute(
        "SELECT epoch FROM progress WHERE run_id=? ORDER BY rowid", (rows[0]["id"],))]
    assert 51 in epochs and epochs == sorted(epochs)
