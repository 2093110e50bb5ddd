"""kill -9 of the real daemon, with its managed simulator, five times in each phase of a night:
while preparing (a preprocess or sanitize child is running), while training, while rendering
(a generation call is in flight) and while the outbox run is being written (clips are already
in its staging folder). After each kill a new daemon is started. In the end the one training
run is finished (resumed, never restarted) and rendered once, no process any daemon started is
left, and the ledger is clean. Each phase is seen in the ledger, the log, the process table or
the staging folder; nothing waits a guessed time.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chain import ChainHome

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]
KILLS = 5
# Training: 300 epochs of 0.1 s with a checkpoint every 50 (the least allowed); a kill lands
# 55 epochs past the resume point, so every night has saved one new checkpoint before it dies.
SPEED, EPOCHS, SAVE_EVERY, PAST = 10.0, 300, 50, 55
# While rendering, each generation call takes ~3 s (the simulator's slow switch), so the
# render and outbox phases are wide enough to be hit every time.
RENDER_SLOW = "slow=30"
PHASE_TIMEOUT = 300  # a phase starts after a daemon start and a managed server start


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[ChainHome]:
    h = ChainHome(tmp_path / "home", speed=SPEED,
                  train={"epochs": EPOCHS, "save_every": SAVE_EVERY}, catch_up=True)
    try:
        yield h
    finally:
        h.cleanup()


def _newest(home: ChainHome, job: str) -> int:
    """The newest row id of ``job``: rows after it are the next daemon's own (a row the killed
    daemon left 'running' is still 'running' until the next one marks it)."""
    return int(home.rows("SELECT COALESCE(MAX(id), 0) FROM runs WHERE job=?", job)[0][0])


def _train_row(home: ChainHome, after: int) -> dict[str, int] | None:
    """This daemon's running training row and how far it got (first and newest epoch)."""
    rows = home.rows("SELECT r.id, MIN(p.epoch) AS first, MAX(p.epoch) AS last FROM runs r "
                     "JOIN progress p ON p.run_id = r.id WHERE r.job='train' AND "
                     "r.outcome='running' AND r.id > ? GROUP BY r.id", after)
    return dict(rows[0]) if rows and rows[0]["last"] is not None else None


def _kill_while_preparing(home: ChainHome) -> str:
    proc = home.start()
    seen = home.wait("a preprocess or sanitize child", lambda: next(
        (w for w in ("preprocess_child", " sanitize") if home.children_running(proc, w.strip())),
        None), PHASE_TIMEOUT, proc, interval=0.05)
    assert not home.rows("SELECT 1 FROM runs WHERE job='train'"), "trained before the kill"
    home.kill9(proc)
    return str(seen)


def _kill_while_training(home: ChainHome) -> int:
    before = _newest(home, "train")
    proc = home.start()

    def far_enough() -> dict[str, int] | None:
        row = _train_row(home, before)
        return row if row is not None and row["last"] >= row["first"] + PAST else None

    row = home.wait(f"training {PAST} epochs past its resume point", far_enough,
                    PHASE_TIMEOUT, proc, interval=0.05)
    home.kill9(proc)
    return int(row["last"])


# The grid's first generation call with an adapter loaded ("rendering final@1 call 1/2 ...";
# the base model's column renders last).
LORA_CALL = re.compile(r"rendering (?!base )\S+ call 1/")


def _lora_clips(staging: Path) -> list[Path]:
    """Clips of an adapter column in a staging folder (NN_<column>_<prompt>.<ext>)."""
    return [p for p in staging.glob("[0-9][0-9]_*") if not p.name[3:].startswith("base_")]


def _kill_while_rendering(home: ChainHome) -> None:
    proc = home.start()
    offset = home.log_size()
    home.wait("a generation call with a LoRA", lambda: LORA_CALL.search(
        home.log_since(offset)), PHASE_TIMEOUT, proc, interval=0.05)
    assert not any(_lora_clips(s) for s in home.staging()), "clips before the kill"
    home.kill9(proc)


def _kill_while_writing_the_outbox(home: ChainHome) -> None:
    before = _newest(home, "render")
    proc = home.start()
    # The daemon clears a killed render's staging folder at start-up, before any render of its
    # own: so once its render row is open, a staging folder holding clips is its own.
    home.wait("clips in the outbox staging folder", lambda: _newest(home, "render") > before
              and any(_lora_clips(s) for s in home.staging()), PHASE_TIMEOUT, proc,
              interval=0.05)
    assert not home.outbox_runs()
    home.kill9(proc)


def test_kill_nine_in_every_phase_of_a_night(home: ChainHome) -> None:
    for _ in range(2):
        home.drop_song()
    prepared = [_kill_while_preparing(home) for _ in range(KILLS)]
    assert len(prepared) == KILLS

    reached = [_kill_while_training(home) for _ in range(KILLS)]
    assert reached == sorted(reached) and reached[0] < reached[-1], \
        f"training did not resume from its checkpoints: killed at epochs {reached}"

    proc = _finish_training(home)
    home.kill9(proc)
    for _ in range(KILLS):
        _kill_while_rendering(home)
    for _ in range(KILLS):
        _kill_while_writing_the_outbox(home)

    proc = home.start()
    run = home.wait("the outbox run", home.outbox_runs, PHASE_TIMEOUT, proc)[0]
    home.wait("the night to close", lambda: not home.rows(
        "SELECT 1 FROM runs WHERE outcome='running'"), 120, proc)
    assert home.sigterm(proc)[0] == 0, home.log_tail()
    _check_outbox(home, run)
    _check_ledger(home)
    _check_no_orphans(home)


def _finish_training(home: ChainHome) -> subprocess.Popen[bytes]:
    """Let the run finish; the render after it gets slow calls (the switch is read live)."""
    proc = home.start()
    home.wait("the training to finish", lambda: home.rows(
        "SELECT 1 FROM runs WHERE job='train' AND outcome='done'"), PHASE_TIMEOUT, proc)
    home.set_faults(RENDER_SLOW)
    # Stop it before its render writes anything: the render kills below start from a clean
    # outbox, so a staging folder is always the current render's.
    home.wait("the render to start", lambda: home.rows(
        "SELECT 1 FROM runs WHERE job='render' AND outcome='running'"), PHASE_TIMEOUT, proc,
        interval=0.05)
    return proc


def _check_outbox(home: ChainHome, run: Path) -> None:
    assert home.outbox_runs() == [run] and home.staging() == []
    assert (run / "index.html").is_file() and (run / "samples.json").is_file()
    manifest = json.loads((run / "samples.json").read_text(encoding="utf-8"))
    adapters = [c for c in manifest["columns"] if c["checkpoint"] != "base"]
    prompts = len(manifest["clips"])
    assert prompts == 2 and adapters, manifest["columns"]
    assert len(_lora_clips(run)) == prompts * len(adapters)   # every clip of the grid
    assert len(list(run.glob("[0-9][0-9]_base_*"))) == prompts
    leftovers = [p for p in (home.path / "outbox").rglob(".acewatchd-*")
                 if p.name.startswith((".acewatchd-staging-", ".acewatchd-deleting-"))]
    assert leftovers == []


def _check_ledger(home: ChainHome) -> None:
    assert home.rows("PRAGMA integrity_check")[0][0] == "ok"
    assert home.rows("SELECT id FROM runs WHERE outcome='running'") == []
    trains = home.rows("SELECT id, run_name, epochs_done FROM runs WHERE job='train' "
                       "ORDER BY id")
    done = [r for r in trains if r["epochs_done"] == EPOCHS]
    assert {r["run_name"] for r in trains} == {trains[0]["run_name"]}, "a run was restarted"
    assert len(home.rows("SELECT 1 FROM runs WHERE job='train' AND outcome='done'")) == 1
    assert len(done) >= 1
    renders = home.rows("SELECT id, run_name FROM runs WHERE job='render' AND outcome='done'")
    assert len(renders) == 1, "one finished render per finished training"
    assert renders[0]["run_name"] == home.outbox_runs()[0].name
    interrupted = home.rows("SELECT 1 FROM runs WHERE job='render' AND outcome='interrupted'")
    assert len(interrupted) >= 2 * KILLS, "a killed render was not recorded as interrupted"
    assert home.stubbed() == 2


def _check_no_orphans(home: ChainHome) -> None:
    deadline = time.monotonic() + 60  # a managed server stopping takes a moment
    while (left := home.survivors()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], f"processes outlived their daemon: {left}"
