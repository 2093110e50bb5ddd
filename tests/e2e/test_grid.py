"""The checkpoint grid end to end on the real ACE-Step simulator: a run with three saved
checkpoints and its final adapter renders prompts x (base + adapters x scales) clips in one
session, each adapter loaded once; the grid page in real headless Chromium has one playable
player per clip, the ranking of an analysis.json and no console errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from acewatchd.ledger.db import Ledger
from acewatchd.nightly.render.session import render_run
from acewatchd.outbox import page as pages
from acewatchd.outbox.notify import RecordingNotifier
from acewatchd.simulator.harness import SimHandle, running_simulator
from acewatchd.simulator.lora import write_adapter
from tests.support.cdp import ARTIFACTS, check_run_page, chromium, chromium_path
from tests.support.render import DATASET, RUN_NAME, add_training_run, write_config
from tests.support.waiting import threads_left

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("threads_end")]

GEN = "/generation_wrapper"
EPOCHS = (100, 200, 300)          # saved checkpoints; the final adapter is epoch 400
PROMPTS = f"""
[[datasets.{DATASET}.render.prompts]]
name = "ballad"
caption = "{{tag}}, slow ballad, piano"
seeds = [1, 2]
duration = 10.0
[[datasets.{DATASET}.render.prompts]]
name = "rock <b>loud</b>"
caption = "{{tag}}, hard rock"
seed = 3
duration = 10.0
"""


@pytest.fixture
def threads_end(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """gradio_client's heartbeat thread ends up to ~15 s after Client.close() (see
    tests/e2e/test_render.py): allow 40 s rather than the autouse 5 s."""
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    before = set(threading.enumerate())
    yield
    left = threads_left(before, within=40)
    assert not left, f"threads still running 40 s after the test: {[t.name for t in left]}"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with running_simulator(tmp_path_factory.mktemp("acestep")) as handle:
        yield handle


def _home(tmp_path: Path, sim: SimHandle) -> tuple[object, Ledger]:
    cfg = write_config(tmp_path, sim.root, url=sim.url, extra=PROMPTS, batch_size=2)
    ledger = Ledger(cfg.paths.state)
    add_training_run(cfg, ledger, epochs=400, adapter=False)
    run = sim.root / "lora_output" / "acewatchd" / DATASET / RUN_NAME
    for n, epoch in enumerate(EPOCHS):
        write_adapter(run / "checkpoints" / f"epoch_{epoch}" / "adapter", r=8, alpha=16,
                      dropout=0.1, fingerprint=f"{n + 1:x}{epoch:03x}" * 8)
    write_adapter(run / "final" / "adapter", r=8, alpha=16, dropout=0.1, fingerprint="fa" * 32)
    return cfg, ledger


def _analysis() -> dict[str, object]:
    """What acewatchd/analysis writes (the agreed shape), with hand-set figures."""
    columns = []
    for rank, (ck, epoch) in enumerate([("epoch_200", 200), ("epoch_300", 300),
                                        ("final", 400), ("epoch_100", 100)], 1):
        for scale in (0.5, 1.0):
            columns.append({"checkpoint": ck, "epoch": epoch, "scale": scale,
                            "effect": 0.002 if ck == "epoch_100" else 0.4,
                            "no_effect": ck == "epoch_100", "closeness": 0.1 * rank,
                            "rank": rank * 2 - (scale == 1.0),
                            "copying": {"song": "Exodus <i>.mp3", "ratio": 0.2}
                            if ck == "final" and scale == 1.0 else None})
    return {"format": 1, "descriptor": "logmel-stats-v1", "no_effect_threshold": 0.01,
            "columns": columns, "clips": [], "no_effect": False, "seconds": 0.5,
            "advice": "closest to your songs: epoch 200; final may be copying 'Exodus <i>.mp3'"}


def test_grid_of_three_checkpoints_on_the_simulator(sim: SimHandle, tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path, sim)
    before = sim.call_counts()
    folder = render_run(cfg, ledger, DATASET, notifier=RecordingNotifier())  # type: ignore[arg-type]
    after = sim.call_counts()
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    adapters, scales, clips = len(EPOCHS) + 1, 2, 3
    columns = 1 + adapters * scales
    assert calls[GEN] == columns * 2          # per column: the two takes, then the other prompt
    assert calls["/load_lora"] == adapters and calls["/set_lora_scale"] == adapters * scales
    assert calls["/unload_lora"] == adapters + 1    # V2: before each load, and after the last

    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    assert [c["checkpoint"] for c in manifest["columns"]] == ["base"] + [
        ck for ck in ("epoch_100", "epoch_200", "epoch_300", "final") for _ in range(scales)]
    mp3s = sorted(p.name for p in folder.glob("*.mp3"))
    listed = sorted(r["file"] for c in manifest["clips"] for r in c["renders"].values())
    assert mp3s == listed and len(mp3s) == clips * columns
    for clip in manifest["clips"]:
        audio = {(folder / r["file"]).read_bytes() for r in clip["renders"].values()}
        assert len(audio) == columns      # every adapter and scale really changed the output
        assert all(r["seed"] == clip["seed"] for r in clip["renders"].values())

    (folder / "analysis.json").write_text(json.dumps(_analysis()), encoding="utf-8")
    pages.refresh_run_page(folder)
    if not chromium_path():
        pytest.skip("chromium is not installed: the page was not opened in a browser")
    with chromium(tmp_path / "profile") as page:
        check_run_page(page, folder, ARTIFACTS / "grid-simulator.png")
        audios = page.evaluate("document.querySelectorAll('table.grid audio').length")
        assert audios == clips * columns
        ranks = page.evaluate("Array.from(document.querySelectorAll('table.rank tbody tr'))"
                              ".map(r => r.cells[1].textContent)")
        assert len(ranks) == 8 and ranks[0] == "epoch 200 · scale 1"
        flags = page.evaluate("document.querySelectorAll('th.scale .flag').length")
        assert flags == 3                 # epoch 100 twice (no effect), final at 1 (copying)
        assert page.evaluate("document.querySelectorAll('i, b').length") == 0
