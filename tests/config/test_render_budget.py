"""The checkpoint grid's settings: their types and bounds, and the `config check` warning when
prompts x checkpoints x scales cannot fit [render] max_minutes at the measured speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from acewatchd.cli import main
from acewatchd.config.checks import render_budget_warnings
from acewatchd.config.load import parse_config
from acewatchd.config.schema import Config
from acewatchd.errors import ConfigError
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.samples import record_render_speed


def _cfg(tmp_path: Path, text: str) -> Config:
    (tmp_path / "acestep").mkdir(exist_ok=True)
    full = f'[acestep]\nroot = "{tmp_path / "acestep"}"\n[paths]\nstate = "state"\n{text}'
    (tmp_path / "config.toml").write_text(full, encoding="utf-8")
    return parse_config(full, tmp_path / "config.toml")


@pytest.mark.parametrize(("text", "needle"), [
    ('[render]\ncheckpoints = "newest"\n', "render.checkpoints: expected"),
    ('[render]\ncheckpoints = [100, "x"]\n', "render.checkpoints: expected"),
    ("[render]\nscales = [0.5, 1.5]\n", "render.scales: 1.5 outside 0..1"),
    ("[render]\nmax_minutes = 0\n", "render.max_minutes: 0.0 is outside"),
])
def test_bad_grid_settings_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, text)
    assert any(needle in p for p in err.value.problems), err.value.problems


def test_the_defaults_fit_and_a_big_grid_warns(tmp_path: Path) -> None:
    # 3 prompts x 30 s, base + (3 checkpoints + final) x 2 scales = 9 columns: 13.5 min at 1 s/s
    assert render_budget_warnings(_cfg(tmp_path, "")) == []
    cfg = _cfg(tmp_path, '[render]\ncheckpoints = "all"\nscales = [0.25, 0.5, 0.75, 1.0]\n'
                         "max_minutes = 20\n[train]\nepochs = 1000\nsave_every = 100\n")
    # all = 9 saved (epoch 1000's twin is the final) + final: 10 x 4 + base = 41 columns
    (warning,) = render_budget_warnings(cfg)
    assert warning.startswith("render.max_minutes: 3 clip(s) x 41 column(s) take about 62 min")
    assert "estimated: no render measured yet" in warning and "more than 20" in warning
    assert render_budget_warnings(cfg, 0.2) == []          # a fast machine, measured
    ds = _cfg(tmp_path, '[datasets.band.render]\ncheckpoints = [200]\nmax_minutes = 2\n')
    (warning,) = render_budget_warnings(ds)                # base + 2 adapters x 2 = 5 columns
    assert warning.startswith("datasets.band.render.max_minutes: 3 clip(s) x 5 column(s)")


def test_config_check_warns_at_the_measured_speed(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _cfg(tmp_path, "[render]\nmax_minutes = 20\n")
    path = str(tmp_path / "config.toml")
    assert main(["config", "check", path]) == 0
    assert "!" not in capsys.readouterr().out     # 9 columns x 90 s at the estimate: 13.5 min
    ledger = Ledger(cfg.paths.state)
    record_render_speed(ledger, 200.0, 10, 100.0)             # 2 s per second of audio
    ledger.close()
    assert main(["config", "check", path]) == 0
    out = capsys.readouterr().out
    assert "! render.max_minutes: 3 clip(s) x 9 column(s) take about 27 min at 2 s" in out
    assert "(measured)" in out
