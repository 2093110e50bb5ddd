"""End to end through the real daemon: 50 generated MP3s (Korean tags, NFD names, lyrics, some
written slowly in chunks) into two datasets; stubs, ledger, edits surviving rescan and restart."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import threading
import time
import unicodedata
from pathlib import Path

import pytest

from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.util.files import sha256_file
from tests.support.home import Home, run_cli
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
N = 50


def song(i: int) -> tuple[str, str, SongTags | None]:
    dataset = "kim_kyungho" if i % 2 == 0 else "ambient"
    name = unicodedata.normalize("NFD", f"{i:02d} 노래.mp3") if i % 3 == 0 else f"song_{i:02d}.mp3"
    if i % 5 == 0:
        return dataset, name, None
    return dataset, name, SongTags(
        title=f"노래 {i}", artist="김경호" if i % 3 else "Kim", genre="Rock" if i % 4 == 0 else "",
        year=str(1985 + i), bpm=str(60 + i) if i % 3 == 0 else "",
        key="C major" if i % 7 == 0 else "", lyrics=f"가사 {i}\n둘째 줄" if i % 4 == 1 else "")


def expected(i: int) -> tuple[str, str]:
    """Caption and lyrics written out by hand from the rules (not by calling stubs.py)."""
    dataset, name, t = song(i)
    t = t or SongTags()
    decade = f"{t.year[:3]}0s" if t.year else ""
    if dataset == "kim_kyungho":
        parts = ["kim kyung ho", t.genre or "Korean power rock ballad", decade,
                 f"{t.artist} style" if t.artist else "", f"{t.bpm} bpm" if t.bpm else "", t.key]
        lyrics = t.lyrics or "[Instrumental]"
    else:
        parts = ["calm ambient", t.genre, decade, t.title]
        if not any(parts[1:]):
            # the file-name fallback drops a leading track number ("15 노래" -> "노래")
            parts.append(re.sub(r"^\d+\s+", "", Path(name).stem.replace("_", " ")))
        lyrics = "[Instrumental]"
    return ", ".join(p for p in parts if p) + "\n", lyrics + "\n"


def ledger_rows(home: Home) -> list[sqlite3.Row]:
    conn = sqlite3.connect(home.state / "ledger.sqlite3", timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM files").fetchall()
    finally:
        conn.close()


def all_stubbed(home: Home, sources: dict[int, Path]) -> bool:
    rows = {(r["dataset"], r["relpath"]): r for r in ledger_rows(home)}
    for i in sources:
        dataset, name, _ = song(i)
        row = rows.get((dataset, unicodedata.normalize("NFC", name)))
        path = home.drop / dataset / name
        if row is None or row["state"] != "stubbed" or row["mtime_ns"] != path.stat().st_mtime_ns:
            return False
    return True


def write_slowly(src: Path, dest: Path, chunks: int = 5, pause: float = 0.12) -> None:
    data = src.read_bytes()
    step = len(data) // chunks + 1
    with open(dest, "wb") as fh:
        for k in range(0, len(data), step):
            fh.write(data[k:k + step])
            fh.flush()
            time.sleep(pause)


def test_fifty_songs_end_to_end(home: Home, run_daemon, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    sources = {i: make_mp3(staging / f"{i}.mp3", seconds=3, freq=200 + 10 * i, tags=song(i)[2])
               for i in range(N)}
    daemon = run_daemon()
    slow = [i for i in range(N) if i % 10 == 3]
    writers = []
    for i, src in sources.items():
        dataset, name, _ = song(i)
        dest = home.drop / dataset / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if i in slow:
            t = threading.Thread(target=write_slowly, args=(src, dest))
            t.start()
            writers.append(t)
        else:
            shutil.copyfile(src, dest)
    for t in writers:
        t.join()
    wait_until(lambda: all_stubbed(home, sources), 90, 0.2, "all 50 stubbed")

    for i in sources:
        dataset, name, _ = song(i)
        audio = home.drop / dataset / name
        caption, lyrics = expected(i)
        assert audio.with_name(audio.stem + ".caption.txt").read_text("utf-8") == caption, i
        assert audio.with_name(audio.stem + ".lyrics.txt").read_text("utf-8") == lyrics, i
    rows = ledger_rows(home)
    assert len(rows) == N and {r["state"] for r in rows} == {"stubbed"}
    by_path = {(r["dataset"], r["relpath"]): r["sha256"] for r in rows}
    for i, src in sources.items():
        dataset, name, _ = song(i)
        assert by_path[(dataset, unicodedata.normalize("NFC", name))] == sha256_file(src)
    assert not list(home.drop.rglob(".acewatchd-tmp-*"))

    # The user edits some stubs; a rescan, a touched song and a restart must all keep them.
    edited = {}
    for i in (0, 1, 3, 6):
        dataset, name, _ = song(i)
        audio = home.drop / dataset / name
        stub = audio.with_name(audio.stem + ".caption.txt")
        stub.write_text(f"my own caption {i}, 직접 썼음\n", encoding="utf-8")
        edited[stub] = stub.read_text("utf-8")
        os.utime(audio)  # re-ingested: validated again, stubs must not be rewritten
    daemon.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: all_stubbed(home, sources), 30, 0.2, "re-stubbed after touch")
    assert all(p.read_text("utf-8") == text for p, text in edited.items())

    t0 = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 15
    status = json.loads(run_cli(home, "status", "--json").stdout)
    assert status["daemon"]["running"] is False
    stubs = {name: ds["stubs"] for name, ds in status["datasets"].items()}
    assert sum(s["reviewed"] for s in stubs.values()) == len(edited)
    assert sum(s["untouched"] for s in stubs.values()) == 2 * N - len(edited)
    assert {name: ds["files"] for name, ds in status["datasets"].items()} == {
        "kim_kyungho": {"stubbed": 25}, "ambient": {"stubbed": 25}}

    again = run_daemon()
    wait_until(lambda: "start-up" in home.logs.joinpath("acewatchd.jsonl").read_text("utf-8")
               .split('"daemon started"')[-1], 20, 0.1, "start-up rescan after restart")
    assert run_cli(home, "scan").returncode == 3  # the running daemon holds the lock
    assert again.stop() == 0
    assert run_cli(home, "scan").returncode == 0
    assert all(p.read_text("utf-8") == text for p, text in edited.items())
    assert len(list(home.drop.rglob("*.caption.txt"))) == N
