"""The batch's stubs are written while its next songs are still prepared (StubPipe), and a
batch that fails half-way leaves no temp file and no half-recorded stub behind."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.ingest import stubs
from acewatchd.ingest.pipeline import Ingestor
from acewatchd.ingest.stubs import StubJob, StubPipe, stub_path
from acewatchd.ledger.batch import Writer
from tests.support.ingest import ingestor


def _songs(drop: Path, n: int) -> list[Path]:
    return [make_mp3(drop / "d" / f"song{i}.mp3", seconds=6,
                     tags=SongTags(title=f"title {i}", artist="someone"))
            for i in range(n)]


def test_a_songs_stubs_are_written_while_the_next_song_is_prepared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ing, ledger, drop = ingestor(tmp_path)
    songs = _songs(drop, 3)
    started = threading.Event()
    real_temp, real_prepare = stubs._synced_temp, Ingestor._prepare

    def synced_temp(folder: Path, data: bytes) -> tuple[int, str]:
        started.set()
        return real_temp(folder, data)

    seen: list[bool] = []  # per song: had a stub write started when its preparing began?

    def prepare(self: Ingestor, path: Path) -> object:
        if path != songs[0]:
            started.wait(10)
        seen.append(started.is_set())
        return real_prepare(self, path)

    monkeypatch.setattr(stubs, "_synced_temp", synced_temp)
    monkeypatch.setattr(Ingestor, "_prepare", prepare)
    with ing.writer.batch():
        assert ing.process_many(songs) == ["stubbed"] * 3
    assert seen == [False, True, True]
    for song in songs:
        assert stub_path(song, "caption").read_text(encoding="utf-8") == "someone style\n"
    assert ledger.connect().execute("SELECT count(*) FROM stubs").fetchone()[0] == 6
    assert not [p for p in (drop / "d").iterdir() if p.name.startswith(".")]


def test_a_batch_that_fails_before_linking_leaves_no_temp_file_and_no_stub(
        tmp_path: Path) -> None:
    _, ledger, drop = ingestor(tmp_path)
    songs = _songs(drop, 2)
    with pytest.raises(RuntimeError), StubPipe(Writer(ledger)) as pipe:
        for song in songs:
            pipe.submit(StubJob("d", song.name, song, {"caption": "c\n", "lyrics": "l\n"}))
        raise RuntimeError("the next song's disk is full")
    assert sorted(p.name for p in (drop / "d").iterdir()) == [s.name for s in songs]
    assert ledger.connect().execute("SELECT count(*) FROM stubs").fetchone()[0] == 0


def test_the_pipe_links_in_submission_order_and_a_users_file_wins(tmp_path: Path) -> None:
    _, ledger, drop = ingestor(tmp_path)
    songs = _songs(drop, 2)
    stub_path(songs[1], "caption").write_text("mine\n", encoding="utf-8")
    with StubPipe(Writer(ledger)) as pipe:
        first = pipe.submit(StubJob("d", songs[0].name, songs[0], {"caption": "a\n"}))
        second = pipe.submit(StubJob("d", songs[1].name, songs[1], {"caption": "b\n"}))
        # a file the user makes while the temp is in flight is never replaced
        stub_path(songs[0], "caption").write_text("also mine\n", encoding="utf-8")
        out = pipe.finish()
    assert (out[first], out[second]) == ({"caption": "user"}, {"caption": "user"})
    assert stub_path(songs[0], "caption").read_text(encoding="utf-8") == "also mine\n"
    assert not [p for p in (drop / "d").iterdir() if p.name.startswith(".")]
