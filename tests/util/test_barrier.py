"""One full drive flush per ingest batch, before the ledger commit (util.files.barrier).

macOS's F_FULLFSYNC is stood in for by a counting fcntl, so the macOS path runs here too: the
stubs get plain fsyncs, and the batch one flush while its rows are still uncommitted.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from acewatchd.config.load import load_config
from acewatchd.demo.audiogen import SongTags, make_mp3, write_id3
from acewatchd.ingest.pipeline import Ingestor
from acewatchd.ingest.stubs import write_stubs
from acewatchd.ledger.db import Ledger
from acewatchd.util import files
from tests.support.home import Home

_FAKE_FULLFSYNC = 51  # Darwin's F_FULLFSYNC; never reaches the real fcntl here


class Flushes:
    """Counts full flushes, and how many files the ledger had committed as stubbed at each."""

    def __init__(self, ledger: Path) -> None:
        self.ledger = ledger
        self.committed_at: list[int] = []

    def fcntl(self, fd: int, cmd: int, *args: int) -> int:
        assert cmd == _FAKE_FULLFSYNC, cmd
        self.committed_at.append(self._stubbed())
        os.fsync(fd)
        return 0

    def _stubbed(self) -> int:
        conn = sqlite3.connect(f"{self.ledger.as_uri()}?mode=ro", uri=True)
        try:
            return int(conn.execute(
                "SELECT count(*) FROM files WHERE state='stubbed'").fetchone()[0])
        finally:
            conn.close()


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch, home: Home) -> Flushes:
    counter = Flushes(home.state / "ledger.sqlite3")
    monkeypatch.setattr(files, "_FULLFSYNC", _FAKE_FULLFSYNC)
    monkeypatch.setattr(fcntl, "fcntl", counter.fcntl)
    return counter


def _songs(home: Home, tmp_path: Path, n: int) -> list[Path]:
    base = make_mp3(tmp_path / "base.mp3", seconds=3)
    songs = []
    for i in range(n):
        song = home.drop / ("kim_kyungho", "ambient")[i % 2] / f"song {i}.mp3"
        song.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base, song)
        write_id3(song, SongTags(title=f"title {i}", artist="someone"))
        songs.append(song)
    return songs


def test_one_flush_per_batch_before_its_commit(home: Home, tmp_path: Path,
                                               flushes: Flushes) -> None:
    songs = _songs(home, tmp_path, 12)
    ingestor = Ingestor(Ledger(home.state), lambda: load_config(home.config))
    for start in (0, 6):  # two batches, each with songs in two dataset folders
        with ingestor.writer.batch():
            assert ingestor.process_many(songs[start:start + 6]) == ["stubbed"] * 6
    # 24 stubs in two folders, two batches: two flushes, each before its batch was committed.
    assert flushes.committed_at == [0, 6]
    assert all(os.path.exists(s.with_name(f"{s.stem}.caption.txt")) for s in songs)
    ingestor.ledger.close()


def test_nothing_written_no_flush_and_a_lone_stub_gets_its_own(home: Home, tmp_path: Path,
                                                               flushes: Flushes) -> None:
    song, = _songs(home, tmp_path, 1)
    ledger = Ledger(home.state)
    ingestor = Ingestor(ledger, lambda: load_config(home.config))
    with ingestor.writer.batch():
        ingestor.process_many([song])
    assert flushes.committed_at == [0]
    song.with_name(f"{song.stem}.caption.txt").unlink()
    song.with_name(f"{song.stem}.lyrics.txt").write_text("my own lyrics\n", encoding="utf-8")
    # Outside a batch each write is flushed at once; a stub the user owns is not rewritten.
    outcome = write_stubs(ingestor.writer, "kim_kyungho", song.name, song,
                          {"caption": "new caption\n", "lyrics": "ours\n"})
    assert outcome == {"caption": "written", "lyrics": "user"}
    assert flushes.committed_at == [0, 1]
    with ingestor.writer.batch():  # a batch that links no new file flushes nothing
        ingestor.writer.event("info", "no files here")
    assert flushes.committed_at == [0, 1]
    ledger.close()


def test_linux_batch_makes_no_fcntl_call(home: Home, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Elsewhere the barrier is the folders' plain fsyncs: F_FULLFSYNC is never asked for."""
    songs = _songs(home, tmp_path, 4)
    monkeypatch.setattr(files, "_FULLFSYNC", None)
    calls: list[int] = []
    monkeypatch.setattr(fcntl, "fcntl", lambda fd, cmd, *a: calls.append(cmd) or 0)
    ingestor = Ingestor(Ledger(home.state), lambda: load_config(home.config))
    with ingestor.writer.batch():
        assert ingestor.process_many(songs) == ["stubbed"] * 4
    assert calls == []
    ingestor.ledger.close()
