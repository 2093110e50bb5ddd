"""The outbox pages in real headless Chromium: no console errors, one playable <audio> per clip,
the loss image shown; screenshots go to artifacts/ (gitignored) for a human to look at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_outbox_cdp import AUDIO_STATE, IMAGE_STATE, WAIT_AUDIO, Page, chromium, chromium_path
from test_render_support import DATASET, FakeClient, add_training_run, sample_mp3, write_config

from acewatchd.ledger import Ledger
from acewatchd.render import render_run

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed")

KOREAN_PROMPT = f"""
[[datasets.{DATASET}.render.prompts]]
name = "power ballad"
caption = "{{tag}}, Korean power rock ballad, soaring vocals"
lyrics = "[Verse]\\n사랑했지만 그대를 사랑했지만\\n<script>alert(1)</script>"
seed = 42
duration = 30.0
bpm = 72
key = "A minor"
[[datasets.{DATASET}.render.prompts]]
name = "acoustic"
caption = "{{tag}}, instrumental, acoustic guitar"
seeds = [7, 8]
[[datasets.{DATASET}.render.prompts]]
name = "밤하늘"
caption = "{{tag}}, 밤하늘의 별, synth pop"
seed = 1234
"""


def check_run_page(page: Page, folder: Path, shot: Path | None = None) -> dict:
    """Assert the run page works for a listener; returns the manifest."""
    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    page.open((folder / "index.html").as_uri())
    assert page.evaluate(WAIT_AUDIO) is True, page.evaluate(AUDIO_STATE)
    audios = page.evaluate(AUDIO_STATE)
    files = [r["file"] for c in manifest["clips"] for v in ("lora", "base")
             if (r := c["renders"].get(v)) and r["file"]]
    assert [a["src"] for a in audios] == files            # one player per clip, in order
    for audio in audios:
        assert audio["error"] is None and audio["ready"] >= 1, audio
        assert audio["duration"] > 1.0, audio            # decodable: the browser measured it
    images = page.evaluate(IMAGE_STATE)
    assert [(i["src"], i["complete"]) for i in images] == [("loss.png", True)]
    assert images[0]["width"] > 300
    assert page.evaluate("document.querySelectorAll('script').length") == 0  # lyrics escaped
    assert page.errors() == []
    if shot is not None:
        page.screenshot(shot)
    return manifest


def test_run_page_and_index_in_chromium(tmp_path: Path) -> None:
    root = tmp_path / "acestep"
    root.mkdir()
    cfg = write_config(tmp_path, root, extra=KOREAN_PROMPT, batch_size=2)
    ledger = Ledger(cfg.paths.state)
    add_training_run(cfg, ledger)
    folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: FakeClient(
        sample_mp3(tmp_path)))
    with chromium(tmp_path / "profile") as page:
        manifest = check_run_page(page, folder, ARTIFACTS / "outbox.png")
        assert len(manifest["clips"]) == 4
        takes = page.evaluate("document.querySelectorAll('.take').length")
        assert takes == 2 and page.evaluate("document.querySelectorAll('article').length") == 3
        title = page.evaluate("document.querySelector('h1').textContent")
        assert title == DATASET
        captions = page.evaluate(
            "Array.from(document.querySelectorAll('.caption')).map(e => e.textContent)")
        assert captions[0].startswith('김경호 <b>rock</b> & "more", Korean power rock ballad')
        page.call("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme", "value": "dark"}]}, session=True)
        page.screenshot(ARTIFACTS / "outbox-dark.png")          # for a human to look at
        page.call("Emulation.setEmulatedMedia", {"features": []}, session=True)
        page.open((cfg.paths.outbox / "index.html").as_uri())
        links = page.evaluate("Array.from(document.querySelectorAll('a')).map(a => a.href)")
        assert links == [(folder / "index.html").as_uri()]
        assert page.errors() == []
        page.screenshot(ARTIFACTS / "outbox-index.png")
        page.open(links[0])                               # the link really leads to the run
        assert page.evaluate("document.title").startswith(DATASET)
