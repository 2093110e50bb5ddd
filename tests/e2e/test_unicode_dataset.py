"""A dataset named in Hangul through the whole chain on the simulator: `prepare` and
`train --now` given the name in NFD (as a macOS shell pastes it) find the NFC folder; ACE-Step's
folders use the dataset's ASCII safe name; status, the outbox and the notification (a webhook
on this machine) show 김경호."""

from __future__ import annotations

import html
import json
import os
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from acewatchd.acestep.layout import safe_name
from acewatchd.acestep.versions import V2
from acewatchd.demo.audiogen import make_mp3
from acewatchd.simulator.harness import running_simulator
from tests.support import simhome
from tests.support.simhome import sim_config
from tests.support.webhook import webhook_receiver

pytestmark = pytest.mark.timeout(300)
NAME = "김경호"
NFD = unicodedata.normalize("NFD", NAME)


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = simhome.cli(config, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    with webhook_receiver() as hook:
        yield hook


def test_a_korean_named_dataset_is_prepared_trained_and_rendered(
        tmp_path: Path, webhook: tuple[str, list[tuple[str, str]]]) -> None:
    url, posts = webhook
    with running_simulator(tmp_path / "ace", speed=25.0, version=V2.commit) as sim:
        config = tmp_path / "config.toml"
        config.write_text(sim_config(sim, extra=(
            f'[notify]\nmacos = false\nwebhook_url = "{url}"\n'
            f'[datasets."{NAME}"]\ntag = "kim kyung-ho"\nlanguage = "ko"\n')), "utf-8")
        for i in range(3):
            make_mp3(tmp_path / "drop" / NAME / f"노래 {i}.mp3", seconds=4, freq=220 + 110 * i)
        cli(config, "scan")
        assert f"{NAME}:" in cli(config, "prepare", NFD).stdout
        assert f"{NAME}: done" in cli(config, "train", NFD, "--now").stdout

        _ace_step_side_uses_the_safe_name(sim.root)
        _the_user_sees_the_name(config, tmp_path / "outbox", posts)


def _ace_step_side_uses_the_safe_name(root: Path) -> None:
    safe = safe_name(NAME)
    assert safe.isascii() and safe != NAME
    data = root / "datasets" / "acewatchd"
    assert sorted(p.name for p in data.iterdir()) == [safe]
    doc = json.loads((data / safe / "dataset.json").read_text("utf-8"))
    assert doc["metadata"]["name"] == NAME and len(doc["samples"]) == 3
    assert all(Path(s["audio_path"]).parent == data / safe / "audio" for s in doc["samples"])
    assert len(list((data / safe / "tensors").glob("*.pt"))) == 3
    runs = root / "lora_output" / "acewatchd"
    assert sorted(p.name for p in runs.iterdir()) == [safe]
    (run,) = list((runs / safe).iterdir())
    assert (run / "final" / "adapter_config.json").is_file() or \
        (run / "final" / "adapter" / "adapter_config.json").is_file()
    for base in (data, runs):  # nothing acewatchd made in ACE-Step's folder is named in Hangul
        for folder, dirs, files in os.walk(base):
            assert all(n.isascii() for n in dirs + files), (folder, dirs, files)


def _the_user_sees_the_name(config: Path, outbox: Path, posts: list[tuple[str, str]]) -> None:
    (run,) = [p for p in (outbox / NAME).iterdir() if not p.name.startswith(".")]
    page = (run / "index.html").read_text("utf-8")
    assert html.escape(NAME) in page and NFD not in page
    assert NAME in (outbox / "index.html").read_text("utf-8")
    report = json.loads(cli(config, "status", "--json").stdout)
    assert NAME in report["datasets"] and NFD not in report["datasets"]
    assert NAME in cli(config, "status").stdout
    ready = [(t, b) for t, b in posts if "samples ready" in t]
    assert ready, posts
    title, body = ready[-1]
    assert title.endswith(f"· {NAME}") and f"outbox/{NAME}/{run.name}" in body
    assert str(Path.home()) not in body
