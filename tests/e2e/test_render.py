"""Rendering end to end against the real ACE-Step simulator (a Gradio subprocess reached with
the real gradio_client): call counts, files in the outbox, samples.json, the LoRA unloaded,
a fault mid-render, and the rendered page in headless Chromium."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acewatchd.acestep.errors import JobFailed
from acewatchd.config.schema import Config
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.render.session import render_run
from acewatchd.outbox import folders as outbox
from acewatchd.outbox.notify import RecordingNotifier
from acewatchd.simulator.harness import SimHandle, running_simulator
from acewatchd.simulator.lora import fingerprint, write_adapter
from tests.support.cdp import ARTIFACTS, check_run_page, chromium, chromium_path
from tests.support.render import (
    DATASET,
    PROMPTS_SAME_TEXT,
    RUN_NAME,
    add_training_run,
    write_config,
)
from tests.support.waiting import threads_left

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("threads_end")]


@pytest.fixture
def threads_end(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No thread outlives the test for long. gradio_client's heartbeat thread ends only when
    its server-sent stream next yields (up to ~15 s after Client.close()), so the 5 s
    no_thread_leak check is too strict for a test that talks to the simulator."""
    # gradio_client starts a telemetry thread (a call to huggingface.co) unless this is set;
    # its analytics_enabled=False argument alone does not turn it off.
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    before = set(threading.enumerate())
    yield
    left = threads_left(before, within=40)
    assert not left, f"threads still running 40 s after the test: {[t.name for t in left]}"

GEN = "/generation_wrapper"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with running_simulator(tmp_path_factory.mktemp("acestep")) as handle:
        yield handle


@dataclass
class SimServer:
    """What the managed-server object looks like to render_run, restarting the simulator."""

    sim: SimHandle
    managed: bool = True
    restarts: int = 0

    def restart(self) -> None:
        self.sim.stop()
        self.sim.start()
        self.restarts += 1


def _home(tmp_path: Path, sim: SimHandle, prompts: str = PROMPTS_SAME_TEXT,
          **kw: object) -> tuple[Config, Ledger]:
    # One LoRA column (the final adapter at lora_scale): the grid is tests/e2e/test_grid.py's.
    prompts = f"[datasets.{DATASET}.render]\nscales = []\n" + prompts.replace(
        "[[render", f"[[datasets.{DATASET}.render")
    cfg = write_config(tmp_path, sim.root, url=sim.url, extra=prompts, **kw)  # type: ignore[arg-type]
    ledger = Ledger(cfg.paths.state)
    add_training_run(cfg, ledger, adapter=False)
    final = sim.root / "lora_output" / "acewatchd" / DATASET / RUN_NAME / "final" / "adapter"
    write_adapter(final, r=8, alpha=16, dropout=0.1, fingerprint=fingerprint(tmp_path))
    return cfg, ledger


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) !=
            before.get(k, 0)}


def test_render_against_simulator(sim: SimHandle, tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path, sim, batch_size=2)
    server, notes = SimServer(sim), RecordingNotifier()
    pid_before = sim.proc.pid if sim.proc else None
    before = sim.call_counts()
    folder = render_run(cfg, ledger, DATASET, server=server, notifier=notes)
    calls = _delta(before, sim.call_counts())
    n, batch = 3, 2
    assert server.restarts == 1 and sim.proc is not None and sim.proc.pid != pid_before
    assert calls[GEN] == 2 * math.ceil(n / batch)          # LoRA pass + base pass
    # V2 names its adapters: acewatchd unloads before loading, then after the LoRA clips.
    assert calls["/load_lora"] == 1 and calls["/unload_lora"] == 2
    assert calls["/set_use_lora"] == 1 and calls["/set_lora_scale"] == 1

    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    on_disk = sorted(p.name for p in folder.iterdir() if p.suffix == ".mp3")
    listed = sorted(r["file"] for c in manifest["clips"] for r in c["renders"].values())
    assert on_disk == listed and len(on_disk) == 2 * n
    for clip in manifest["clips"]:
        lora, base = clip["renders"]["final@0.8"], clip["renders"]["base"]
        assert lora["duration_seconds"] == pytest.approx(12.0, abs=0.3)
        # the simulator pitches LoRA output differently: the base clip really had no LoRA
        assert (folder / lora["file"]).read_bytes() != (folder / base["file"]).read_bytes()
    assert [c["seed"] for c in manifest["clips"]] == [1, 2, 3]
    assert manifest["acestep"]["simulator"] is True
    assert manifest["acestep"]["version"] == "SIMULATOR (test double)"
    assert manifest["lora"]["path"].endswith(f"{RUN_NAME}/final/adapter")
    assert not any(p.name.startswith(outbox.STAGING_PREFIX) for p in folder.parent.iterdir())
    assert notes.sent == [(f"acewatchd: samples ready · {DATASET}", notes.sent[0][1], False)]

    if chromium_path():
        with chromium(tmp_path / "profile") as page:
            check_run_page(page, folder, ARTIFACTS / "outbox-simulator.png")


def test_fault_mid_render_leaves_nothing_then_a_retry_succeeds(sim: SimHandle,
                                                              tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path, sim, batch_size=1)
    notes = RecordingNotifier()
    nth = sim.call_counts().get(GEN, 0) + 2                   # the 2nd generation call fails
    sim.set_faults([f"error={GEN}:{nth}"])
    try:
        before = sim.call_counts()
        with pytest.raises(JobFailed):
            render_run(cfg, ledger, DATASET, notifier=notes)
        calls = _delta(before, sim.call_counts())
    finally:
        sim.set_faults([])
    assert calls[GEN] == 2 and calls["/unload_lora"] == 2    # stopped, LoRA unloaded anyway
    ds_dir = cfg.paths.outbox / DATASET
    assert [p.name for p in ds_dir.iterdir()] == [outbox.LOCK_NAME]   # no half-written run
    assert not (cfg.paths.outbox / "index.html").exists()
    assert notes.sent[-1][2] is True and DATASET in notes.sent[-1][0]
    row = ledger.connect().execute("SELECT outcome, message FROM runs WHERE job='render'"
                                   ).fetchone()
    assert row["outcome"] == "failed" and GEN in row["message"]

    folder = render_run(cfg, ledger, DATASET, notifier=notes)   # the retry: fault was one-shot
    assert len(list(folder.glob("*.mp3"))) == 6 and notes.sent[-1][2] is False
    assert [e.name for e in outbox.list_runs(cfg.paths.outbox)] == [folder.name]


def test_cli_render_with_a_checkpoint(sim: SimHandle, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from acewatchd.cli import main

    monkeypatch.setattr("acewatchd.log.setup_logging", lambda *a, **k: None)  # keep pytest's
    takes = '[[render.prompts]]\nname = "takes"\ncaption = "{tag}, rock"\nseeds = [5, 6, 7, 8]\n'
    cfg, _ledger = _home(tmp_path, sim, prompts=takes, batch_size=3)
    ckpt = sim.root / "lora_output/acewatchd" / DATASET / RUN_NAME / "checkpoints/epoch_100"
    write_adapter(ckpt / "adapter", r=8, alpha=16, dropout=0.1, fingerprint="ab" * 32)
    before = sim.call_counts()
    assert main(["--config", str(cfg.source), "render", DATASET, "--checkpoint", "100"]) == 0
    calls = _delta(before, sim.call_counts())
    assert calls[GEN] == 2 * 2 and calls["/unload_lora"] == 2   # 4 takes, batch 3, + base
    (run,) = outbox.list_runs(cfg.paths.outbox)
    assert f"samples: {run.path / 'index.html'}" in capsys.readouterr().out
    manifest = json.loads((run.path / "samples.json").read_text(encoding="utf-8"))
    assert manifest["lora"]["checkpoint"] == "epoch_100" and manifest["lora"]["epoch"] == 100
    assert manifest["lora"]["loss"] > manifest["training_run"]["final_loss"]   # earlier epoch
    page = (run.path / "index.html").read_text(encoding="utf-8")
    assert f"loss {manifest['lora']['loss']:.4f}" in page and "epoch 100" in page
    assert manifest["lora"]["path"].endswith("checkpoints/epoch_100/adapter")
    assert [c["seed"] for c in manifest["clips"]] == [5, 6, 7, 8]
    assert sorted(p.name for p in run.path.glob("*_e100-*")) == [
        f"0{i}_e100-x0.8_takes-s{s}.mp3" for i, s in ((1, 5), (2, 6), (3, 7), (4, 8))]
    assert main(["--config", str(cfg.source), "render", DATASET, "--checkpoint", "999"]) != 0
    assert "no checkpoint for epoch 999 (available: 100)" in capsys.readouterr().err

