"""The disk fills up while the real daemon runs (a 4 MB tmpfs holding drop/ and state/): it keeps
running, keeps every file it already wrote, leaves no half-written stub or temp file, warns
once instead of once per file per poll, and catches up by itself when space is freed."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acewatchd.config.load import load_config
from acewatchd.demo.audiogen import SongTags, make_mp3, write_id3
from acewatchd.ingest.stubs import caption_text, lyrics_text
from acewatchd.ingest.tags import read_audio
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.render.session import render_run
from acewatchd.outbox import folders as outbox
from acewatchd.outbox.notify import RecordingNotifier
from acewatchd.simulator.harness import running_simulator
from acewatchd.simulator.lora import fingerprint, write_adapter
from tests.support.disk import fill, small_disk
from tests.support.home import DATASETS, FAST_WATCH, Home, run_cli
from tests.support.home import ledger_rows as rows
from tests.support.render import DATASET, RUN_NAME, add_training_run, write_config
from tests.support.waiting import threads_left, wait_until

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
    # The spare 512 KB is for the daemon's own ledger writes (the new files seen) while the
    # songs come in; 64 KB was not always enough, and then this test's own write failed.
    os.truncate(ballast, ballast.stat().st_size - sum(s.stat().st_size for s in src[3:])
                - (512 << 10))
    (ds / "not a song.mp3").write_text("not audio at all\n", encoding="utf-8")
    for song in src[3:]:
        shutil.copyfile(song, ds / song.name)
    fill(ballast2)  # well inside the 0.4 s settle window: none of them was looked at yet

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
    assert rows(home, "SELECT 1 FROM files WHERE state='rejected'") == []
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
    (bad,) = rows(home, "SELECT state, reason FROM files WHERE relpath='not a song.mp3'")
    assert bad["state"] == "rejected"
    assert "space" not in bad["reason"]  # rejected for what it is, not for the full disk
    assert (home.rejected / "kim_kyungho" / "not a song.mp3.reason.txt").exists()
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



@pytest.fixture
def threads_end(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in test_render.py: gradio_client's heartbeat thread ends up to ~15 s after close."""
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    before = set(threading.enumerate())
    yield
    left = threads_left(before, within=40)
    assert not left, f"threads still running 40 s after the test: {[t.name for t in left]}"


@pytest.mark.usefixtures("threads_end")
def test_render_on_a_full_outbox_keeps_the_runs_already_there(tmp_path: Path) -> None:
    """The outbox on a disk that is full: the render fails with the outbox path and "No space
    left on device" in its record and notification, leaves no staging folder, keeps the run
    already there byte for byte, and the next render, once space is freed, succeeds."""
    prompts = (f"[datasets.{DATASET}.render]\nscales = []\n"
               f"[[datasets.{DATASET}.render.prompts]]\n"
               'name = "one"\ncaption = "{tag}, ballad"\nseed = 1\nduration = 10.0\n')
    with running_simulator(tmp_path / "acestep") as sim, \
            small_disk(tmp_path / "home" / "outbox") as mnt:
        cfg = write_config(tmp_path / "home", sim.root, url=sim.url, extra=prompts)
        ledger = Ledger(cfg.paths.state)
        try:
            add_training_run(cfg, ledger, adapter=False)
            adapter = sim.root / "lora_output/acewatchd" / DATASET / RUN_NAME / "final/adapter"
            write_adapter(adapter, r=8, alpha=16, dropout=0.1, fingerprint=fingerprint(tmp_path))
            notes = RecordingNotifier()
            first = render_run(cfg, ledger, DATASET, notifier=notes)
            kept = {p: p.read_bytes() for p in mnt.rglob("*") if p.is_file()}
            ballast = mnt / "ballast.bin"
            fill(ballast)

            with pytest.raises(OSError) as raised:
                render_run(cfg, ledger, DATASET, notifier=notes)
            assert raised.value.errno == errno.ENOSPC
            row = ledger.connect().execute("SELECT outcome, message FROM runs WHERE "
                                           "job='render' ORDER BY id DESC").fetchone()
            assert row["outcome"] == "failed"
            # The folder it filled and what to do, not the OSError of a temp file.
            assert row["message"].startswith(
                f"no space left on the disk holding the outbox ({cfg.paths.outbox})")
            assert f"acewatchd render {DATASET}" in row["message"]
            assert outbox.STAGING_PREFIX not in row["message"]
            title, body, failed = notes.sent[-1]
            assert failed and "render failed" in title and body == row["message"]
            for path, data in kept.items():
                assert path.read_bytes() == data, path
            assert sorted(p.name for p in (mnt / DATASET).iterdir()) == sorted(
                [outbox.LOCK_NAME, first.name])  # no staging folder left behind
            assert list(mnt.rglob(".acewatchd-tmp-*")) == []

            ballast.unlink()
            again = render_run(cfg, ledger, DATASET, notifier=notes)
            assert len(list(again.glob("*.mp3"))) == 2
            assert sorted(e.name for e in outbox.list_runs(cfg.paths.outbox)) == sorted(
                [first.name, again.name])
        finally:
            ledger.close()
