"""Drop folder to clean tensors through the real CLI: `acewatchd scan` writes the stubs and
ledger rows, `acewatchd prepare` stages, preprocesses (SIMULATOR stand-in) and sanitizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.simulator.stub_acestep import calls, install


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acewatchd", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=300, cwd=config.parent,
                          check=False)


def test_scan_then_prepare_from_the_command_line(tmp_path: Path) -> None:
    ace = tmp_path / "ace"
    install(ace)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[acestep]\nroot = "{ace}"\npython = "{sys.executable}"\n'
        '[watch]\nsettle_seconds = 0.2\npoll_seconds = 0.05\nsettle_polls = 2\n'
        'min_duration_seconds = 2.0\n'
        '[datasets.band]\ntag = "the band"\nlanguage = "ko"\n', "utf-8")
    for i in range(3):
        make_mp3(tmp_path / "drop" / "band" / f"track {i}.mp3", seconds=4, freq=330 + 110 * i,
                 tags=SongTags(title=f"노래 {i}", genre="rock", bpm="120", key="Am",
                               lyrics="가사 한 줄" if i == 0 else ""))
    scan = cli(config, "scan")
    assert scan.returncode == 0, scan.stdout + scan.stderr
    assert (tmp_path / "drop" / "band" / "track 0.caption.txt").is_file()
    done = cli(config, "prepare", "band")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 sample(s) ready in ./datasets/acewatchd/band/tensors" in done.stdout
    tensor_dir = ace / "datasets" / "acewatchd" / "band" / "tensors"
    manifest = json.loads((tensor_dir / "manifest.json").read_text())
    assert manifest["num_samples"] == 3
    for path in manifest["samples"]:
        data = torch.load(path, map_location="cpu", weights_only=True)
        assert data["metadata"]["caption"].startswith("the band")
    doc = json.loads((ace / "datasets" / "acewatchd" / "band" / "dataset.json").read_text())
    assert {s["bpm"] for s in doc["samples"]} == {120}
    assert {s["keyscale"] for s in doc["samples"]} == {"A minor"}
    assert sum(not s["is_instrumental"] for s in doc["samples"]) == 1
    again = cli(config, "prepare", "band")
    assert again.returncode == 0 and "0 preprocessed now" in again.stdout
    assert len(calls(ace)) == 1
