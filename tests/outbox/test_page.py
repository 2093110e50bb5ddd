"""The run page as a grid, with and without analysis.json: the ranking, the no-effect marks
and banner, the forecast block, runs from before the grid, and every foreign string escaped."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from acewatchd.ledger.db import Ledger
from acewatchd.nightly.render.session import render_run
from acewatchd.outbox import page as pages
from tests.support.render import DATASET, FakeClient, add_training_run, sample_mp3, write_config

pytestmark = pytest.mark.usefixtures("no_thread_leak")

EVIL = '<script>alert("x")</script>'
PROMPT = f"""
[datasets.{DATASET}.render]
checkpoints = "all"
analysis = false        # these tests write their own analysis.json
[[datasets.{DATASET}.render.prompts]]
name = "{EVIL.replace('"', "'")}"
caption = "{{tag}}, rock"
seeds = [1, 2]
"""


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    root = tmp_path / "acestep"
    root.mkdir()
    cfg = write_config(tmp_path, root, extra=PROMPT)
    ledger = Ledger(cfg.paths.state)
    add_training_run(cfg, ledger)          # final (epoch 300) and epoch_100
    return render_run(cfg, ledger, DATASET,
                      client_factory=lambda *a: FakeClient(sample_mp3(tmp_path)))


def _analysis(no_effect: bool = False, **over: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "format": 1, "descriptor": "logmel-stats-v1", "no_effect_threshold": 0.05,
        "columns": [
            {"checkpoint": "final", "epoch": 300, "scale": 1.0, "effect": 0.4,
             "no_effect": no_effect, "closeness": 0.31, "rank": 2,
             "copying": {"song": f"{EVIL}.mp3", "ratio": 0.2}},
            {"checkpoint": "epoch_100", "epoch": 100, "scale": 1.0, "effect": 0.3,
             "no_effect": no_effect, "closeness": 0.12, "rank": 1, "copying": None},
            {"checkpoint": "epoch_100", "epoch": 100, "scale": 0.5, "effect": 0.01,
             "no_effect": True, "closeness": None, "rank": None, "copying": None},
            {"checkpoint": "epoch_999", "epoch": 999, "scale": 1.0, "rank": 3},  # not in grid
        ],
        "clips": [], "no_effect": no_effect,
        "advice": f"closest to your songs: epoch 100; final may be copying '{EVIL}'",
        "seconds": 1.2}
    report.update(over)
    return report


def _page(folder: Path, analysis: Any = None) -> str:
    if analysis is not None:
        text = analysis if isinstance(analysis, str) else json.dumps(analysis)
        (folder / "analysis.json").write_text(text, encoding="utf-8")
    pages.refresh_run_page(folder)
    return (folder / "index.html").read_text(encoding="utf-8")


def _no_raw_evil(page: str) -> None:
    assert "<script" not in page and "&lt;script&gt;" in page


def test_without_analysis_the_grid_alone(run_folder: Path) -> None:
    page = _page(run_folder)
    _no_raw_evil(page)
    assert page.count("<audio ") == 2 * 5 and 'class="grid"' in page
    assert "Which checkpoint?" not in page and 'role="alert"' not in page
    assert "no audible effect" not in page and "Progress report" not in page
    assert f"acewatchd export {DATASET} --checkpoint 100" in page
    assert f"acewatchd export {DATASET} --checkpoint final" in page
    assert page.count('">scale 0.5') == 2 and "final · epoch 300" in page


def test_the_ranking_flags_and_advice(run_folder: Path) -> None:
    page = _page(run_folder, _analysis())
    _no_raw_evil(page)
    table = page[page.index('<table class="rank">'):page.index("</table>")]
    rows = table.split("<tr")[2:]
    assert len(rows) == 3                      # the column not in the grid is left out
    assert "epoch 100 · scale 1" in rows[0] and ">1<" in rows[0] and "0.120" in rows[0]
    assert "final · epoch 300 · scale 1" in rows[1] and "may be copying" in rows[1]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;.mp3" in rows[1]
    assert "no audible effect" in rows[2] and "—" in rows[2]
    assert "closest to your songs: epoch 100; final may be copying &#39;&lt;script&gt;" in page
    assert 'role="alert"' not in page                    # one column is not the whole LoRA
    header = page[page.index("<thead>\n<tr>\n  <th class=\"prompt\""):]
    assert header.count("no audible effect") == 1 and "#1</span>" in header
    assert page.count('<td class="lora starts no-effect">') == 2    # its two clips


def test_no_effect_for_every_column_is_a_banner(run_folder: Path) -> None:
    page = _page(run_folder, _analysis(no_effect=True))
    banner = page[page.index('role="alert"'):page.index("</section>")]
    assert "No audible effect" in banner and "scale" in banner and "epochs" in banner
    assert page.index('role="alert"') < page.index('class="grid"')


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", json.dumps({"format": 99}),
                                 json.dumps({"format": 1, "columns": [7, {"rank": "x"}],
                                             "advice": ["not", "text"], "no_effect": "yes"})])
def test_a_damaged_analysis_never_breaks_the_page(run_folder: Path, bad: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        page = _page(run_folder, bad)
    assert page.count("<audio ") == 10 and 'role="alert"' not in page
    if "columns" not in bad:
        assert "Which checkpoint?" not in page and "analysis.json" in caplog.text


def test_the_forecast_block_shows_the_manifests_forecast(run_folder: Path) -> None:
    manifest = json.loads((run_folder / "samples.json").read_text(encoding="utf-8"))
    manifest["forecast"] = f"about 2 more nights, Thursday ~03:40 {EVIL}"
    pages.write_run_page(run_folder, manifest)
    page = (run_folder / "index.html").read_text(encoding="utf-8")
    _no_raw_evil(page)
    assert '<section class="card forecast"><p>about 2 more nights, Thursday ~03:40 &lt;' in page


def test_a_run_from_before_the_grid_still_renders(run_folder: Path) -> None:
    manifest = json.loads((run_folder / "samples.json").read_text(encoding="utf-8"))
    for key in ("columns", "dropped", "notes", "finished", "budget"):
        manifest.pop(key)
    for clip in manifest["clips"]:
        renders = clip["renders"]
        clip["renders"] = {"lora": renders["final@1"], "base": renders["base"]}
    pages.write_run_page(run_folder, manifest)
    pages.write_playlist(run_folder, manifest)
    page = (run_folder / "index.html").read_text(encoding="utf-8")
    assert page.count("<audio ") == 4 and "Base model" in page
    assert "final · epoch 300" in page and "acewatchd export" not in page
    m3u = (run_folder / "playlist.m3u").read_text(encoding="utf-8")
    assert m3u.count("(base model)") == 2 and m3u.count("final · epoch 300, scale 1") == 2


def test_pages_import_jinja2_only_when_written() -> None:
    code = ("import sys, acewatchd.outbox.page, acewatchd.nightly.run, acewatchd.daemon.daemon; "
            "print('jinja2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False"
