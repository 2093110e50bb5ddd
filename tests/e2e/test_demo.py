"""`acewatchd demo`: the real command, as `make demo` runs it (smaller: one song a dataset)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from acewatchd.demo.demo import DATASETS, MARKER
from acewatchd.util.locks import holder_pid


def demo(home: Path, *extra: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acewatchd", "demo", "--home", str(home),
                           *extra], check=False, capture_output=True, text=True, timeout=timeout)


def assert_nothing_left_running(home: Path) -> None:
    assert holder_pid(home / "state") is None, "the demo left its daemon running"
    assert not (home / "state" / "acestep-server.pid").exists()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_runs_the_whole_chain_and_stops(tmp_path: Path) -> None:
    home = tmp_path / "demo home"
    proc = demo(home, "--songs", "1", "--timeout", "600")
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for ds in DATASETS:
        assert f"✓ {ds.name}: all 1 songs have caption/lyrics stubs" in out
        assert f"✓ {ds.name}: train done" in out
        assert f"✓ {ds.name}: samples ready" in out
        runs = [p for p in (home / "outbox" / ds.name).iterdir() if not p.name.startswith(".")]
        assert len(runs) == 1 and (runs[0] / "index.html").is_file()
    assert "김경호 록 발라드" in out  # the Korean tag made it into the caption stub
    index = home / "outbox" / "index.html"
    assert index.is_file() and str(index) in out.splitlines()[-2]
    assert "daemon stopped (exit code 0)" in out
    assert_nothing_left_running(home)


def test_demo_refuses_a_folder_that_is_not_a_demo_home(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep me")
    proc = demo(mine, timeout=120)
    assert proc.returncode == 1
    assert "is not a demo home" in proc.stderr
    assert (mine / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in mine.iterdir()) == ["precious.txt"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_that_does_not_finish_in_time_fails_clearly_and_cleans_up(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    home.mkdir()
    (home / MARKER).write_text("an earlier demo")
    (home / "stale.txt").write_text("from an earlier demo: replaced")
    proc = demo(home, "--songs", "1", "--timeout", "1", timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the chain did not complete within 1s" in proc.stdout
    assert "daemon exit code 0" in proc.stdout
    assert not (home / "stale.txt").exists()
    assert_nothing_left_running(home)
