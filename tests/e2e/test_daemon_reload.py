"""The real daemon: single instance, live config reload (good and bad edits), clean shutdown."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from acewatchd.demo.audiogen import SongTags, make_mp3
from tests.support.home import DATASETS, FAST_WATCH, Home, run_cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def kv(home: Home, key: str) -> str | None:
    conn = sqlite3.connect(home.state / "ledger.sqlite3", timeout=10)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


def config_events(home: Home) -> int:
    conn = sqlite3.connect(home.state / "ledger.sqlite3", timeout=10)
    try:
        return conn.execute("SELECT count(*) FROM events WHERE subject='config.toml'"
                            ).fetchone()[0]
    finally:
        conn.close()


def test_second_instance_exits_at_once(home: Home, run_daemon) -> None:
    first = run_daemon()
    t0 = time.monotonic()
    second = run_cli(home, "run", timeout=30)
    assert second.returncode == 3
    assert time.monotonic() - t0 < 10
    assert f"already running on this home (pid {first.proc.pid}" in second.stderr
    assert first.alive()
    assert run_cli(home, "status").stdout.count(f"running (pid {first.proc.pid})") == 1
    t0 = time.monotonic()
    assert first.stop(signal.SIGINT) == 0
    assert time.monotonic() - t0 < 15


def test_live_reload_good_and_bad_edits(home: Home, run_daemon, tmp_path: Path) -> None:
    song = make_mp3(tmp_path / "s.mp3", seconds=3, tags=SongTags(genre="Rock"))
    daemon = run_daemon()
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)

    def drop_and_caption(name: str) -> str:
        shutil.copyfile(song, ds / f"{name}.mp3")
        cap = ds / f"{name}.caption.txt"
        wait_until(cap.exists, 20, message=f"{name} caption")
        return cap.read_text("utf-8")

    assert drop_and_caption("one") == "kim kyung ho, Rock\n"
    loaded = kv(home, "config.loaded")
    t0 = time.monotonic()
    home.write_config(FAST_WATCH + DATASETS.replace('tag = "kim kyung ho"', 'tag = "KKH"'))
    wait_until(lambda: kv(home, "config.loaded") != loaded, 10, message="reload")
    assert time.monotonic() - t0 < 5  # "within a few seconds"
    assert drop_and_caption("two") == "KKH, Rock\n"

    bad_edits = {
        "syntax": (FAST_WATCH + "[datasets.kim_kyungho\n", "TOML syntax error"),
        "unknown": (FAST_WATCH + DATASETS + "bogus_key = 1\n", "bogus_key: unknown key (line"),
        "type": (FAST_WATCH.replace("settle_seconds = 0.4", 'settle_seconds = "slow"'),
                 "watch.settle_seconds: expected a number"),
        "empty": ("", "the file is empty"),
    }
    for what, (text, words) in bad_edits.items():
        before = config_events(home)
        home.write_config(text)
        wait_until(lambda w=words: w in (kv(home, "config.error") or ""), 10, message=what)
        home.write_config(text)  # saved again unchanged: still one report
        time.sleep(2.5)  # two supervision rounds (the fallback stat poll) must add nothing
        assert config_events(home) == before + 1, what
        assert daemon.alive()
        status = json.loads(run_cli(home, "status", "--json").stdout)
        assert words in status["config"]["daemon_error"]
    # Still running on the last good config (tag KKH, fast settle).
    assert drop_and_caption("three") == "KKH, Rock\n"
    home.write_config(FAST_WATCH + DATASETS)
    wait_until(lambda: kv(home, "config.error") == "", 10, message="error cleared")
    assert drop_and_caption("four") == "kim kyung ho, Rock\n"
    log = (home.logs / "acewatchd.jsonl").read_text("utf-8")
    assert log.count('"config invalid; keeping the last good configuration"') == 4
    assert daemon.stop() == 0
