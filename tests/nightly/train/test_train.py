"""train.py units: epochs=auto table, parameters, job lock across processes, checkpoint
discovery, `acewatchd train` without --now; a training through a fake session."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep.layout import final_adapter, latest_checkpoint
from acewatchd.config.schema import Train
from acewatchd.errors import AlreadyRunning
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.runs import loss_points
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.train.params import (
    auto_epochs,
    resolve_epochs,
    train_params,
)
from acewatchd.nightly.train.session import TrainingJob
from acewatchd.util.locks import JobLock
from acewatchd.util.power import FakePower
from tests.support.clock import FakeClock
from tests.support.fakes import FakeClient, make_config


@pytest.mark.parametrize("songs,epochs", [(1, 800), (5, 800), (6, 700), (20, 700), (21, 600),
                                          (50, 600), (51, 500), (100, 500), (5000, 500)])
def test_auto_epochs_table(songs: int, epochs: int) -> None:
    assert auto_epochs(songs) == epochs
    assert resolve_epochs(Train(epochs="auto"), songs) == epochs


def test_params_are_ints_and_explicit_epochs_win() -> None:
    p = train_params(Train(epochs=1200, rank=32), 3)
    assert p["epochs"] == 1200 and p["rank"] == 32
    assert all(type(p[k]) is int for k in ("rank", "alpha", "epochs", "batch_size",
                                           "grad_accum", "save_every", "seed"))
    assert set(p) == {"rank", "alpha", "dropout", "learning_rate", "epochs", "batch_size",
                      "grad_accum", "save_every", "shift", "seed"}


def test_job_lock_excludes_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from acewatchd.util.locks import JobLock; "
        f"l = JobLock({str(tmp_path)!r}); l.acquire(); print('held', flush=True); "
        "sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyRunning, match=f"pid {holder.pid}"):
            JobLock(tmp_path).acquire()
    finally:
        holder.stdin.close()
        holder.wait(10)
    with JobLock(tmp_path):  # free again once the holder exited
        assert not JobLock(tmp_path).try_acquire()


def test_latest_checkpoint_and_final(tmp_path: Path) -> None:
    ck = tmp_path / "checkpoints"
    for name in ("epoch_200", "epoch_1000", "epoch_400_loss_0.1234", "epoch_x", "epoch_1200"):
        (ck / name).mkdir(parents=True)
    for name in ("epoch_200", "epoch_1000", "epoch_400_loss_0.1234"):
        (ck / name / "adapter").mkdir()
    # epoch_1200 has nothing in it (a save cut short): not usable
    ck = latest_checkpoint(tmp_path)
    assert ck is not None and (ck.epoch, ck.name) == (1000, "epoch_1000")
    assert final_adapter(tmp_path) is None
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "adapter_config.json").write_text("{}")
    assert final_adapter(tmp_path) == tmp_path / "final"


def test_train_without_now_prints_next_run(tmp_path: Path) -> None:
    (tmp_path / "drop" / "songs").mkdir(parents=True)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[schedule]\ncron = "0 3 * * *"\ntimezone = "UTC"\n', "utf-8")
    out = subprocess.run([sys.executable, "-m", "acewatchd", "--config", str(cfg), "train",
                          "songs"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "next scheduled run" in out.stdout and "T03:00:00+00:00" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "acewatchd", "--config", str(cfg), "train",
                          "nope", "--now"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no such dataset folder" in bad.stderr


def test_training_job_records_run_and_progress(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, '[train]\nepochs = 300\n')
    ledger = Ledger(cfg.paths.state)
    client = FakeClient(cfg.acestep.root)
    env = NightlyEnv(ledger, lambda: client, FakeClock(1e9, ticking=True), threading.Event(), FakePower())
    try:
        res = TrainingJob(cfg, env, "songs", tensor_dir="./t", content_hash="c" * 16, songs=4,
                          window_end=None).run()
        assert res.outcome == "done" and res.epochs_done == 300
        assert res.adapter == f"./lora_output/acewatchd/songs/{res.run_name}/final/adapter"
        sent = dict(client.calls)["train"]
        assert sent["output_dir"] == f"./lora_output/acewatchd/songs/{res.run_name}"
        assert sent["resume_from"] == "" and sent["epochs"] == 300
        assert [(p.epoch, p.step, p.loss) for p in loss_points(ledger, "songs", res.run_name)] \
            == [(300, 10, 0.5)]
        row = ledger.connect().execute("SELECT outcome, epochs_total FROM runs").fetchone()
        assert tuple(row) == ("done", 300)
    finally:
        ledger.close()


def test_new_run_never_reuses_an_existing_folder(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, '[train]\nepochs = 100\n')
    ledger = Ledger(cfg.paths.state)
    clock = FakeClock(1e9, ticking=True)
    clock.time = lambda: 1e9  # type: ignore[method-assign]  # frozen: same second twice
    env = NightlyEnv(ledger, lambda: FakeClient(cfg.acestep.root), clock, threading.Event(),
                     FakePower())
    try:
        first = TrainingJob(cfg, env, "songs", tensor_dir="./t", content_hash="d" * 16, songs=2,
                            window_end=None).run()
        again = TrainingJob(cfg, env, "songs", tensor_dir="./t", content_hash="d" * 16, songs=2,
                            window_end=None)
        again._plan()  # same second, same content: must not land in the same folder
        assert again.run_name == f"{first.run_name}-2"
        assert not again.folder.exists()
    finally:
        ledger.close()


class LateStartClient(FakeClient):
    """ACE-Step before its loop runs: the first stop answers "No training in progress"."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.stopped = threading.Event()
        self.stops = 0

    def stop_training(self) -> str:
        self.stops += 1
        if self.stops == 1:
            return "⚠️ No training in progress"
        self.stopped.set()
        return "⏹️ Stopping training..."

    def train(self, **kw: Any) -> Any:
        from acewatchd.acestep.training_stream import TrainingOutcome

        assert self.stopped.wait(10), "the guard gave up after the first answer"
        return TrainingOutcome("stopped", None, "⏹️ Training stopped by user")


def test_stop_is_repeated_until_acestep_takes_it(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, '[train]\nepochs = 100\n')
    ledger = Ledger(cfg.paths.state)
    client = LateStartClient(cfg.acestep.root)
    clock = FakeClock(1e9, ticking=True)
    env = NightlyEnv(ledger, lambda: client, clock, threading.Event(), FakePower(),
                     guard_interval=0.02)
    try:
        res = TrainingJob(cfg, env, "songs", tensor_dir="./t", content_hash="e" * 16, songs=2,
                          window_end=clock.time() - 1).run()
        assert res.outcome == "interrupted" and client.stops == 2
        assert res.message == "the training window ended"
    finally:
        ledger.close()
