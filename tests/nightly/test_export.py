"""`acewatchd export`: a run trained on the real simulator, its adapters copied out atomically,
never over an existing folder, and loadable by ACE-Step's /load_lora."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep import layout
from acewatchd.acestep.client import AceStepClient
from acewatchd.config.load import parse_config
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.export import ExportError, export
from acewatchd.nightly.run import run_dataset
from acewatchd.simulator.harness import running_simulator
from acewatchd.util.power import FakePower
from tests.support.clock import FakeClock
from tests.support.fakes import FakeStages

pytestmark = pytest.mark.timeout(240)

DS = "songs"
NIGHT1 = datetime(2026, 6, 3, 1, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One finished 100-epoch run (checkpoints at 50 and 100, and final/) on the simulator."""
    root = tmp_path_factory.mktemp("acestep")
    home = tmp_path_factory.mktemp("home")
    with running_simulator(root, speed=40.0) as sim:
        text = (f'[acestep]\nroot = "{root}"\nurl = "{sim.url}"\n'
                '[train]\nepochs = 100\nsave_every = 50\n'
                '[schedule]\ncron = "0 1 * * *"\nwindow_end = "07:00"\ntimezone = "UTC"\n')
        (home / "drop" / DS).mkdir(parents=True)
        (home / "config.toml").write_text(text, encoding="utf-8")
        cfg = parse_config(text, home / "config.toml")
        tensors = layout.tensor_dir(root, DS)
        tensors.mkdir(parents=True)
        for i in range(2):
            (tensors / f"s{i}.pt").write_bytes(b"SIMULATOR tensor stand-in")
        ledger = Ledger(cfg.paths.state)
        env = NightlyEnv(ledger=ledger, client_factory=lambda: AceStepClient(
            sim.url, timeout=30, retries=0), clock=FakeClock(NIGHT1, ticking=True),
            power=FakePower(), hooks=FakeStages(hashes={DS: "b" * 16}).hooks(),
            backoff=0.2, backoff_max=1.0, guard_interval=0.05, quiet_seconds=1.0)
        out: dict[str, str] = {}
        worker = threading.Thread(target=lambda: out.update(o=run_dataset(
            lambda: cfg, env, DS, scheduled_for=NIGHT1, window_end=NIGHT1 + 6 * 3600)))
        worker.start()
        worker.join(180)
        env.stop.set()
        worker.join(10)
        assert out.get("o") == "done"
        try:
            yield {"cfg": cfg, "ledger": ledger, "sim": sim, "home": home}
        finally:
            ledger.close()


def test_exports_the_final_adapter_with_a_readable_name(trained: dict[str, Any],
                                                        tmp_path: Path) -> None:
    done = export(trained["cfg"], trained["ledger"], DS, to=tmp_path)
    assert done.folder == tmp_path / "songs-final-lora"
    assert done.epoch is None and done.checkpoint == "final"
    names = sorted(p.name for p in done.folder.iterdir())
    assert layout.ADAPTER_CONFIG in names and any(n.endswith(".safetensors") for n in names)
    assert "training_state.pt" not in names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_a_checkpoint_export_never_overwrites(trained: dict[str, Any], tmp_path: Path) -> None:
    first = export(trained["cfg"], trained["ledger"], DS, which="50", to=tmp_path)
    assert first.folder.name == "songs-e50-lora" and first.epoch == 50
    (first.folder / "mine.txt").write_text("the user's note", encoding="utf-8")
    second = export(trained["cfg"], trained["ledger"], DS, which="50", to=tmp_path)
    assert second.folder.name == "songs-e50-lora-2"
    assert (first.folder / "mine.txt").read_text(encoding="utf-8") == "the user's note"


def test_unknown_checkpoints_and_datasets_are_refused_with_what_exists(
        trained: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"no checkpoint at epoch 75; saved: 50, 100"):
        export(trained["cfg"], trained["ledger"], DS, which="75", to=tmp_path)
    with pytest.raises(ExportError, match="has no training run yet"):
        export(trained["cfg"], trained["ledger"], "other", to=tmp_path)
    with pytest.raises(ExportError, match="no closeness ranking"):
        export(trained["cfg"], trained["ledger"], DS, which="closest", to=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_closest_follows_the_newest_ranking_of_the_run(trained: dict[str, Any],
                                                       tmp_path: Path) -> None:
    cfg, ledger = trained["cfg"], trained["ledger"]
    run_name = ledger.connect().execute(
        "SELECT run_name FROM runs WHERE job='train' ORDER BY id DESC").fetchone()[0]
    folder = cfg.paths.outbox / DS / "2026-06-03_0700_r9"
    folder.mkdir(parents=True)
    (folder / "samples.json").write_text(json.dumps(
        {"dataset": DS, "training_run": {"run_name": run_name}}), encoding="utf-8")
    (folder / "analysis.json").write_text(json.dumps({"columns": [
        {"checkpoint": "epoch_100", "epoch": 100, "rank": 2, "no_effect": False},
        {"checkpoint": "epoch_50", "epoch": 50, "rank": 1, "no_effect": False}]}),
        encoding="utf-8")
    try:
        done = export(cfg, ledger, DS, which="closest", to=tmp_path)
        assert done.epoch == 50
    finally:
        import shutil

        shutil.rmtree(cfg.paths.outbox / DS)


def test_acestep_loads_the_exported_adapter(trained: dict[str, Any], tmp_path: Path) -> None:
    done = export(trained["cfg"], trained["ledger"], DS, which="100", to=tmp_path)
    client = AceStepClient(trained["sim"].url, timeout=30, retries=0)
    with client:
        assert "loaded" in client.load_lora(str(done.folder))
        client.unload_lora()


def test_the_command_prints_where_it_wrote(trained: dict[str, Any], tmp_path: Path) -> None:
    home: Path = trained["home"]
    proc = subprocess.run([sys.executable, "-m", "acewatchd", "--config",
                           str(home / "config.toml"), "export", DS, "--to", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"to {tmp_path / 'songs-final-lora'}" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "acewatchd", "--config",
                          str(home / "config.toml"), "export", DS, "--checkpoint", "abc"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "use an epoch number, final or closest" in bad.stderr
