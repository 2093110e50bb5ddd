"""The outbox pages in real headless Chromium: no console errors, one playable <audio> per clip,
the loss image shown; screenshots go to artifacts/ (gitignored) for a human to look at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acewatchd.ledger.db import Ledger
from acewatchd.nightly.render.session import render_run
from acewatchd.outbox import page as pages
from tests.support.cdp import ARTIFACTS, check_run_page, chromium, chromium_path
from tests.support.render import DATASET, FakeClient, add_training_run, sample_mp3, write_config

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
        rows = page.evaluate("document.querySelectorAll('table.grid tbody tr').length")
        cells = page.evaluate("document.querySelectorAll('table.grid tbody td').length")
        assert rows == 4 and cells == 4 * 5   # base | (epoch 100, final) x (0.5, 1)
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
        for width in (1200, 400):  # a laptop, a phone
            page.call("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": 700, "deviceScaleFactor": 1, "mobile": False},
                session=True)
            # The dataset's name on one line (a squeezed column broke it mid-word), and
            # nothing wider than the screen.
            assert page.evaluate("(() => { const r = document.createRange(); "
                                 "r.selectNodeContents(document.querySelector('.chip')); "
                                 "return r.getClientRects().length; })()") == 1, width
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(ARTIFACTS / "outbox-index-phone.png", width=400)
        page.open(links[0])                               # the link really leads to the run
        assert page.evaluate("document.title").startswith(DATASET)


def test_no_effect_banner_and_ranking_in_chromium(tmp_path: Path) -> None:
    root = tmp_path / "acestep"
    root.mkdir()
    cfg = write_config(tmp_path, root, extra=KOREAN_PROMPT, batch_size=2)
    ledger = Ledger(cfg.paths.state)
    add_training_run(cfg, ledger)
    folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: FakeClient(
        sample_mp3(tmp_path)))
    columns = [{"checkpoint": ck, "epoch": ep, "scale": s, "effect": 0.001, "no_effect": True,
                "closeness": 0.5, "rank": n, "copying": None}
               for n, (ck, ep, s) in enumerate([("final", 300, 1.0), ("final", 300, 0.5),
                                                ("epoch_100", 100, 1.0),
                                                ("epoch_100", 100, 0.5)], 1)]
    (folder / "analysis.json").write_text(json.dumps({
        "format": 1, "descriptor": "logmel-stats-v1", "no_effect_threshold": 0.01,
        "columns": columns, "clips": [], "no_effect": True, "seconds": 0.1,
        "advice": "no checkpoint changed the sound <img src=x onerror=alert(1)>"}),
        encoding="utf-8")
    pages.refresh_run_page(folder)
    with chromium(tmp_path / "profile") as page:
        check_run_page(page, folder, ARTIFACTS / "outbox-no-effect.png")
        banner = page.evaluate("document.querySelector('[role=alert]').textContent")
        assert "No audible effect" in banner
        flags = page.evaluate("document.querySelectorAll('th.scale .flag').length")
        assert flags == 4 and page.evaluate("document.querySelectorAll('img').length") == 1
