"""The drop watcher's hints, on the real watchdog observer: one or two per song whatever its
size, none for what acewatchd writes itself (stubs, temp files), and a rewrite in place or a
move-in still seen."""

from __future__ import annotations

import os
import queue
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acewatchd.ingest.watcher import Hint, Watcher
from acewatchd.util.files import create_temp, link_temp
from tests.support.waiting import wait_until


class Hints:
    def __init__(self, drop: Path) -> None:
        self.queue: queue.Queue[Hint] = queue.Queue()
        self.watcher = Watcher(drop, None, self.queue)
        self.seen: list[Path] = []

    def until(self, marker: Path) -> list[Path]:
        """Every file hint up to the first for ``marker`` (written last by the test: inotify
        keeps its events in order, so nothing written before it is still on the way)."""
        def arrived() -> bool:
            while not self.queue.empty():
                kind, path = self.queue.get_nowait()
                if kind == "file":
                    self.seen.append(path)
            return marker in self.seen

        marker.write_bytes(b"marker")
        wait_until(arrived, 10, message=f"a hint for {marker.name}")
        return [p for p in self.seen if p != marker]


@pytest.fixture
def hints(tmp_path: Path) -> Iterator[Hints]:
    drop = tmp_path / "drop"
    (drop / "ds").mkdir(parents=True)
    h = Hints(drop)
    h.watcher.start()
    try:
        yield h
    finally:
        h.watcher.stop()


def test_a_song_written_in_many_pieces_is_one_or_two_hints(hints: Hints,
                                                           tmp_path: Path) -> None:
    song = tmp_path / "drop" / "ds" / "big.mp3"
    with open(song, "wb") as fh:
        for _ in range(40):
            fh.write(b"\xff" * 4096)
            fh.flush()
    got = hints.until(tmp_path / "drop" / "ds" / "zz-marker.mp3")
    assert song in got
    # "created" and, on inotify, "closed"; never one per write() (40 here).
    assert got.count(song) <= 2


def test_acewatchds_own_stubs_and_temp_files_give_no_hint(hints: Hints,
                                                          tmp_path: Path) -> None:
    folder = tmp_path / "drop" / "ds"
    for kind in ("caption", "lyrics"):
        fd, tmp = create_temp(folder, b"kim kyung ho, ballad\n")
        try:
            os.fsync(fd)
            link_temp(fd, tmp, folder / f"song.{kind}.txt")
        finally:
            os.close(fd)
            if tmp:
                os.unlink(tmp)
    (folder / "song.mp3.reason.txt").write_text("rejected\n", encoding="utf-8")
    (folder / ".DS_Store").write_bytes(b"\0")
    assert hints.until(folder / "zz-marker.mp3") == []


def test_a_song_rewritten_in_place_and_one_moved_in_are_hinted(hints: Hints,
                                                               tmp_path: Path) -> None:
    folder = tmp_path / "drop" / "ds"
    song = folder / "song.mp3"
    song.write_bytes(b"\xff" * 1000)
    hints.until(folder / "marker-1.mp3")
    hints.seen.clear()
    with open(song, "r+b") as fh:  # a tag editor saving in place: no create, no rename
        fh.write(b"ID3")
    outside = tmp_path / "elsewhere.flac"
    outside.write_bytes(b"fLaC")
    outside.rename(folder / "moved.flac")
    got = hints.until(folder / "marker-2.mp3")
    assert song in got and folder / "moved.flac" in got


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify only")
def test_on_inotify_modified_events_are_not_asked_for() -> None:
    """The filter itself: 'closed' replaces 'modified' where the observer reports closes."""
    from watchdog.events import FileClosedEvent, FileModifiedEvent

    from acewatchd.ingest import watcher

    assert FileClosedEvent in watcher._DROP_FILTER
    assert FileModifiedEvent not in watcher._DROP_FILTER
