"""The disk fills up while the real daemon runs (a 4 MB tmpfs holding drop/ and state/): it keeps
running, keeps every file it already wrote, leaves no half-written stub or temp file, warns
once instead of once per file per poll, and catches up by itself when space is freed."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acewatchd.config.load import load_config
from acewatchd.demo.audiogen import SongTags, make_mp3, write_id3
from acewatchd.ingest.stubs import caption_text, lyrics_text
from acewatchd.ingest.tags import read_audio
from tests.support.disk import fill, small_disk
from tests.support.home import DATASETS, FAST_WATCH, Home, run_cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
FULL_WORDS = "no space left on device"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk") as mnt:
        yield mnt


@pytest.fixture
def home(disk: Path, tmp_path: Path) -> Home:
    """The home on the small disk; the log beside it, so that what the daemon says about the
    full disk can be read (on the full disk itself the log would be lost too)."""
    h = Home(disk / "home")
    h.root.mkdir()
    logs = tmp_path / "logs"
    h.write_config(FAST_WATCH + DATASETS + f"\n[paths]\nlogs = {json.dumps(str(logs))}\n")
    return h


def rows(home: Home, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(home.state / "ledger.sqlite3", timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def stubbed(home: Home) -> int:
    return len(rows(home, "SELECT 1 FROM files WHERE state='stubbed'"))


def log_lines(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text("utf-8").splitlines() if line.strip()]


def songs(folder: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        path = make_mp3(folder / f"song {i}.mp3", seconds=3, freq=300 + 20 * i)
        write_id3(path, SongTags(title=f"song {i}", lyrics=f"words {i}"))
        out.append(path)
    return out


def test_disk_fills_while_the_daemon_runs(home: Home, run_daemon, tmp_path: Path) -> None:
    src = songs(tmp_path / "src", 8)
    log = tmp_path / "logs" / "acewatchd.jsonl"
    daemon = run_daemon()
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    for song in src[:3]:
        shutil.copyfile(song, ds / song.name)
    wait_until(lambda: stubbed(home) == 3, 30, 0.2, "the first songs stubbed")
    before = {p: p.read_bytes() for p in ds.iterdir()}

    # The disk fills up, except for room for five more songs, which then fill it completely.
    ballast, ballast2 = home.root / "ballast.bin", home.root / "ballast2.bin"
    fill(ballast)
    os.truncate(ballast, ballast.stat().st_size - sum(s.stat().st_size for s in src[3:])
                - 65536)
    for song in src[3:]:
        shutil.copyfile(song, ds / song.name)
    fill(ballast2)

    wait_until(lambda: log.exists() and FULL_WORDS in log.read_text("utf-8"), 20, 0.2,
               "the disk-full warning")
    # A few more poll rounds on the full disk: nothing to wait for, the point is that nothing
    # more happens (no warning per file per poll, no exit).
    time.sleep(3)
    assert daemon.alive(), daemon.output()
    status = run_cli(home, "status")
    assert status.returncode == 0, status.stderr
    assert "3 stubbed" in status.stdout
    for path, data in before.items():
        assert path.read_bytes() == data, path  # nothing already written is lost or cut
    assert stubbed(home) == 3
    assert rows(home, "PRAGMA integrity_check")[0][0] == "ok"
    assert list(home.root.rglob(".acewatchd-tmp-*")) == []
    for stub in ds.glob("*.txt"):
        assert stub in before, stub  # no stub half-written for the songs that came in full

    records = log_lines(log)
    full = [r for r in records if FULL_WORDS in str(r.get("event", ""))]
    assert len(full) == 1, full  # one warning for the condition
    assert full[0]["level"] == "warning"
    assert str(home.root) in str(full[0]["path"])
    noisy = [r for r in records if r["level"] == "error"]
    assert noisy == []  # no traceback per file

    ballast.unlink()
    ballast2.unlink()
    wait_until(lambda: stubbed(home) == 8, 20, 0.2, "all songs stubbed once space is back")
    records = log_lines(log)
    assert any(r["event"] == "rescan" and r.get("reason") == "disk space freed"
               for r in records)  # caught up by itself, well before the periodic rescan
    assert any(str(r["event"]).startswith("space is available again") for r in records)
    assert daemon.stop() == 0

    cfg = load_config(home.config)
    for song in src:
        audio = ds / song.name
        info = read_audio(audio)
        assert (ds / f"{audio.stem}.caption.txt").read_text("utf-8") == \
            caption_text(info, cfg.dataset("kim_kyungho"), audio.stem)
        assert (ds / f"{audio.stem}.lyrics.txt").read_text("utf-8") == \
            lyrics_text(info, cfg.dataset("kim_kyungho"))
    assert list(home.root.rglob(".acewatchd-tmp-*")) == []
