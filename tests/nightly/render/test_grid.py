"""The checkpoint grid against a recording fake client: which adapters, the plan and its
budget, the call sequence (each adapter loaded once), samples.json's columns and the speed
kept in the ledger."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from acewatchd.config.schema import Dataset, Prompt, Render
from acewatchd.errors import AcewatchdError
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.samples import record_render_speed, render_speed, render_speed_readonly
from acewatchd.nightly.render.lora import LoraChoice, choose_grid, find_training_run
from acewatchd.nightly.render.plan import Column, build_clips, fit_budget, grid_columns
from acewatchd.nightly.render.session import render_run
from tests.support.render import (
    DATASET,
    RUN_NAME,
    FakeClient,
    add_training_run,
    make_adapter,
    sample_mp3,
    write_config,
)

pytestmark = pytest.mark.usefixtures("no_thread_leak")

TWO_PROMPTS = f"""
[[datasets.{DATASET}.render.prompts]]
name = "rock"
caption = "{{tag}}, rock"
seeds = [1, 2]
duration = 20.0
"""


def _home(tmp_path: Path, render: str = "", prompts: str = TWO_PROMPTS):
    root = tmp_path / "acestep"
    root.mkdir(exist_ok=True)
    extra = f"[datasets.{DATASET}.render]\n{render}\n{prompts}"
    cfg = write_config(tmp_path, root, extra=extra, batch_size=2)
    return cfg, Ledger(cfg.paths.state)


def _run(cfg, ledger, epochs: tuple[int, ...] = (100, 200, 300, 400), final: bool = True,
         total: int = 500) -> int:
    """A training run of ``total`` epochs with checkpoints at ``epochs`` (and final/)."""
    run_id = add_training_run(cfg, ledger, epochs=total, adapter=False)
    run = cfg.acestep.root / "lora_output" / "acewatchd" / DATASET / RUN_NAME
    for epoch in epochs:
        make_adapter(run / "checkpoints" / f"epoch_{epoch}" / "adapter")
    if final:
        make_adapter(run / "final" / "adapter")
    return run_id


def _grid(cfg, ledger, checkpoint: str | None = None):
    return choose_grid(cfg, DATASET, find_training_run(cfg, ledger, DATASET), checkpoint)


@pytest.mark.parametrize("spec,expected", [
    ('"recent"', ["epoch_200", "epoch_300", "epoch_400", "final"]),
    ('"last"', ["final"]),
    ('"all"', ["epoch_100", "epoch_200", "epoch_300", "epoch_400", "final"]),
    ("[300, 100]", ["epoch_100", "epoch_300", "final"]),
])
def test_checkpoints_setting_chooses_the_adapters(tmp_path: Path, spec: str,
                                                  expected: list[str]) -> None:
    cfg, ledger = _home(tmp_path, f"checkpoints = {spec}")
    _run(cfg, ledger, epochs=(100, 200, 300, 400, 500))   # epoch_500 is final's twin
    grid = _grid(cfg, ledger)
    assert [a.column for a in grid.adapters] == expected
    assert grid.finished and grid.notes == []
    assert grid.adapters[-1].epoch == 500


def test_missing_epochs_and_adapterless_checkpoints_are_said(tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path, "checkpoints = [100, 250, 300, 900]")
    _run(cfg, ledger, epochs=(100, 200, 400))
    bare = cfg.acestep.root / "lora_output/acewatchd" / DATASET / RUN_NAME / "checkpoints"
    (bare / "epoch_300").mkdir()
    (bare / "epoch_300" / "training_state.pt").write_bytes(b"x")   # a resume point only
    grid = _grid(cfg, ledger)
    assert [a.column for a in grid.adapters] == ["epoch_100", "final"]
    assert grid.notes[0] == "no checkpoint for epochs 250, 900 (saved: 100, 200, 300, 400)"
    assert "epoch_300 has no adapter" in grid.notes[1]


def test_an_unfinished_run_renders_its_newest_checkpoints(tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path, 'checkpoints = "last"')
    _run(cfg, ledger, epochs=(100, 200), final=False)
    grid = _grid(cfg, ledger)
    assert [a.column for a in grid.adapters] == ["epoch_200"] and not grid.finished
    (tmp_path / "b").mkdir()
    cfg2, ledger2 = _home(tmp_path / "b", "")
    _run(cfg2, ledger2, epochs=(), final=False)
    with pytest.raises(AcewatchdError, match="no adapter to render"):
        _grid(cfg2, ledger2)


def test_a_checkpoint_on_the_command_line_is_rendered_alone(tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path)
    _run(cfg, ledger)
    grid = _grid(cfg, ledger, "200")
    assert [a.column for a in grid.adapters] == ["epoch_200"]


def _adapter(name: str, epoch: int) -> LoraChoice:
    return LoraChoice(f"./{name}", Path(name), name, epoch)


def test_columns_and_budget_drop_the_oldest_checkpoints_first() -> None:
    adapters = [_adapter("epoch_200", 200), _adapter("epoch_400", 400), _adapter("final", 600)]
    cols = grid_columns(adapters, [0.5, 1.0], compare_base=True)
    assert [c.key for c in cols] == ["base", "epoch_200@0.5", "epoch_200@1", "epoch_400@0.5",
                                     "epoch_400@1", "final@0.5", "final@1"]
    assert [c.slug for c in cols][:3] == ["base", "e200-x0.5", "e200-x1"]
    clips = build_clips(Render(prompts=[Prompt(caption="a", seeds=[1, 2], duration=30.0)]),
                        Dataset())
    # 7 columns x 60 s of audio at 1 s/s = 7 min; 5 min keeps base + 2 adapters x 2 scales
    kept, dropped = fit_budget(cols, clips, 1.0, 5.0)
    assert [c.key for c in kept] == ["base", "epoch_400@0.5", "epoch_400@1", "final@0.5",
                                     "final@1"]
    assert [a.column for a in dropped] == ["epoch_200"]
    kept, dropped = fit_budget(cols, clips, 1.0, 1.0)     # never below base + the final
    assert [c.key for c in kept] == ["base", "final@0.5", "final@1"] and len(dropped) == 2
    assert fit_budget(cols, clips, 1.0, 60.0) == (cols, [])
    assert Column(None).checkpoint == "base" and Column(None).scale is None


def test_scales_empty_means_lora_scale() -> None:
    assert Render(scales=[], lora_scale=0.7).lora_scales() == [0.7]
    assert Render(scales=[1.0, 0.5, 1.0]).lora_scales() == [0.5, 1.0]


def test_the_grid_loads_each_adapter_once_and_lists_every_clip(tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path)
    _run(cfg, ledger, epochs=(100, 200, 300))
    client = FakeClient(sample_mp3(tmp_path))
    folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: client)
    ops = [(op, arg) for op, arg in client.log if op != "generate"]
    base_dir = f"./lora_output/acewatchd/{DATASET}/{RUN_NAME}"
    loads = [arg for op, arg in ops if op == "load_lora"]
    assert loads == [f"{base_dir}/checkpoints/epoch_{e}/adapter" for e in (100, 200, 300)] + [
        f"{base_dir}/final/adapter"]
    assert [arg for op, arg in ops if op == "set_lora_scale"] == [0.5, 1.0] * 4
    gens = [arg for op, arg in client.log if op == "generate"]
    assert len(gens) == 4 * 2 + 1 and [g[2] for g in gens] == [True] * 8 + [False]
    assert [op for op, _ in client.log][-3:] == ["unload_lora", "generate", "close"]

    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    keys = [c["key"] for c in manifest["columns"]]
    assert keys == ["base"] + [f"{ck}@{s:g}" for ck in ("epoch_100", "epoch_200", "epoch_300",
                                                        "final") for s in (0.5, 1.0)]
    final = manifest["columns"][-1]
    assert final["export"] == f"acewatchd export {DATASET} --checkpoint final"
    assert manifest["columns"][1]["export"] == f"acewatchd export {DATASET} --checkpoint 100"
    assert manifest["columns"][1]["loss"] > final["loss"]           # an earlier epoch
    assert manifest["finished"] is True and manifest["dropped"] == [] and manifest["notes"] == []
    files = set()
    for clip in manifest["clips"]:
        assert list(clip["renders"]) == keys
        for key, r in clip["renders"].items():
            col = next(c for c in manifest["columns"] if c["key"] == key)
            assert (r["checkpoint"], r["epoch"], r["scale"], r["seed"]) == (
                col["checkpoint"], col["epoch"], col["scale"], clip["seed"])
            assert (folder / r["file"]).is_file() and r["seconds"] >= 0
            files.add(r["file"])
    assert len(files) == 2 * 9 and "01_e100-x0.5_rock-s1.mp3" in files
    assert manifest["generation_calls"] == 9
    assert "4 checkpoints" in ledger.connect().execute(
        "SELECT message FROM runs WHERE job='render'").fetchone()[0]
    speed = render_speed(ledger)
    assert speed is not None and speed.clips == 18
    assert speed.seconds_per_audio_second == pytest.approx(speed.seconds_per_clip / 20, abs=1e-3)
    assert render_speed_readonly(cfg.paths.state) == speed


def test_the_budget_leaves_out_old_checkpoints_and_says_so(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    cfg, ledger = _home(tmp_path, "max_minutes = 3.5")
    _run(cfg, ledger, epochs=(100, 200, 300))
    # measured: 1 s per second of audio; a column is 2 clips x 20 s = 40 s: 3.5 min hold 5
    record_render_speed(ledger, 40.0, 2, 40.0)
    client = FakeClient(sample_mp3(tmp_path))
    with caplog.at_level(logging.WARNING):
        folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: client)
    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    assert [c["key"] for c in manifest["columns"]] == ["base", "epoch_300@0.5", "epoch_300@1",
                                                       "final@0.5", "final@1"]
    assert manifest["dropped"] == [{"checkpoint": "epoch_100", "epoch": 100},
                                   {"checkpoint": "epoch_200", "epoch": 200}]
    assert manifest["budget"] == {"max_minutes": 3.5, "seconds_per_audio_second": 1.0}
    note = manifest["notes"][0]
    assert note.startswith("left out to fit max_minutes = 3.5: epoch 100, epoch 200")
    assert any(note in r.getMessage() for r in caplog.records)
    assert note in (folder / "index.html").read_text(encoding="utf-8")


def test_an_unfinished_run_is_a_progress_report(tmp_path: Path) -> None:
    cfg, ledger = _home(tmp_path)
    _run(cfg, ledger, epochs=(100, 200), final=False, total=800)
    folder = render_run(cfg, ledger, DATASET,
                        client_factory=lambda *a: FakeClient(sample_mp3(tmp_path)))
    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    assert manifest["finished"] is False
    assert [c["checkpoint"] for c in manifest["columns"]][1::2] == ["epoch_100", "epoch_200"]
    assert manifest["lora"]["checkpoint"] == "epoch_200"
    assert "Progress report" in (folder / "index.html").read_text(encoding="utf-8")
