"""The daemon's side: the real child over real files; a crashing, hanging or lying child is
a clear AnalysisFailed; the runner keeps numpy out of the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from acewatchd.analysis import runner
from acewatchd.analysis.runner import AnalysisFailed, run_analysis
from acewatchd.analysis.schema import AnalysisJob, ClipJob
from acewatchd.errors import AcewatchdError
from acewatchd.util.files import TEMP_PREFIX
from tests.support.analysis import make_style


def _clip(path: Path, variant: str) -> ClipJob:
    lora = variant == "lora"
    return {"id": f"calm-s1-{variant}", "prompt": "calm", "seed": 1,
            "variant": "lora" if lora else "base", "checkpoint": "final" if lora else "base",
            "epoch": None, "scale": 1.0 if lora else None, "path": str(path)}


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> AnalysisJob:
    d = tmp_path_factory.mktemp("job")
    songs = [make_style(d / f"{s}.mp3", s, seconds=6) for s in ("drone", "beat")]
    base, lora = make_style(d / "base.mp3", "pad"), make_style(d / "lora.mp3", "beat")
    return {"training": [{"name": p.name, "path": str(p)} for p in songs],
            "clips": [_clip(base, "base"), _clip(lora, "lora")], "threshold": None}


def _fake_child(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(runner, "child_command",
                        lambda job, out: [sys.executable, "-c", code, str(job), str(out)])


def test_the_real_child_writes_a_checked_report(job: AnalysisJob, tmp_path: Path) -> None:
    out = tmp_path / "analysis.json"
    report = run_analysis(job, out)
    assert json.loads(out.read_text(encoding="utf-8")) == report
    assert report["descriptor"] == "logmel-stats-v1" and report["format"] == 1
    (column,) = report["columns"]
    assert column["checkpoint"] == "final" and column["effect"] is not None
    assert column["effect"] > report["no_effect_threshold"] and not column["no_effect"]
    assert report["clips"][1]["nearest_song"] == "beat.mp3"  # the LoRA clip IS the beat
    assert column["copying"] == {"song": "beat.mp3", "ratio": pytest.approx(0.0, abs=0.05)}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_an_unreadable_clip_is_named(job: AnalysisJob, tmp_path: Path) -> None:
    bad = tmp_path / "not audio.mp3"
    bad.write_text("hello", encoding="utf-8")
    broken: AnalysisJob = {**job, "clips": [job["clips"][0], _clip(bad, "lora")]}
    with pytest.raises(AnalysisFailed, match=r"exit 2\): .*not audio\.mp3: ffmpeg could not"):
        run_analysis(broken, tmp_path / "analysis.json")
    assert not (tmp_path / "analysis.json").exists()


def test_a_bad_job_names_the_key(job: AnalysisJob, tmp_path: Path) -> None:
    bad = {**job, "threshold": -1.0}
    with pytest.raises(AnalysisFailed, match=r"threshold: must be above 0"):
        run_analysis(bad, tmp_path / "analysis.json")  # type: ignore[arg-type]


def test_a_crashing_child_is_a_clear_error(job: AnalysisJob, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "raise RuntimeError('the analysis blew up')")
    with pytest.raises(AnalysisFailed, match=r"audio analysis failed \(exit 1\): .*"
                                             r"RuntimeError: the analysis blew up") as err:
        run_analysis(job, tmp_path / "analysis.json")
    assert isinstance(err.value, AcewatchdError)
    _fake_child(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(AnalysisFailed, match=r"exit -9\): no output"):
        run_analysis(job, tmp_path / "analysis.json")


def test_a_report_of_the_wrong_shape_is_refused(job: AnalysisJob, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "import json, sys; open(sys.argv[2], 'w').write("
                             "json.dumps({'format': 1, 'descriptor': 7}))")
    with pytest.raises(AnalysisFailed, match=r"no usable report: .*descriptor: expected str"):
        run_analysis(job, tmp_path / "analysis.json")
    _fake_child(monkeypatch, "import sys; open(sys.argv[2], 'w').write('{')")
    with pytest.raises(AnalysisFailed, match=r"no usable report: .*analysis\.json: "):
        run_analysis(job, tmp_path / "analysis.json")


def test_a_hanging_child_is_stopped(job: AnalysisJob, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "import time; time.sleep(120)")
    with pytest.raises(AnalysisFailed, match=r"longer than 0.5 s"):
        run_analysis(job, tmp_path / "analysis.json", timeout=0.5)
    stop = threading.Event()
    stop.set()
    with pytest.raises(AnalysisFailed, match=r"interrupted"):
        run_analysis(job, tmp_path / "analysis.json", stop=stop)


def test_the_runner_does_not_load_numpy() -> None:
    code = "import sys, acewatchd.analysis.runner; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[2])
    assert done.stdout.strip() == "False"
