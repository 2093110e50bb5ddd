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
from acewatchd.ingest.writepace import PROBE_EVERY, SLOW_SECONDS, Pace
from acewatchd.ledger.batch import Writer
from acewatchd.util import files
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


def _writer_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread that wrote each stub's temp file."""
    names: list[str] = []
    real = stubs._synced_temp

    def synced_temp(folder: Path, data: bytes) -> tuple[int, str]:
        names.append(threading.current_thread().name)
        return real(folder, data)

    monkeypatch.setattr(stubs, "_synced_temp", synced_temp)
    return names


@pytest.mark.parametrize(("average", "threaded"), [
    (None, False), (SLOW_SECONDS / 10, False), (SLOW_SECONDS * 10, True), (None, True)])
def test_stub_writes_go_to_threads_only_where_the_disk_makes_them_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, average: float | None,
        threaded: bool) -> None:
    _, ledger, drop = ingestor(tmp_path)
    songs = _songs(drop, 3)
    names = _writer_threads(monkeypatch)
    clock = iter(range(1000))  # every inline write takes exactly `took` seconds
    took = SLOW_SECONDS * 10 if threaded else SLOW_SECONDS / 10
    pace = Pace(timer=lambda: next(clock) * took)
    pace.average = average
    with StubPipe(Writer(ledger), pace=pace) as pipe:
        for song in songs:
            pipe.submit(StubJob("d", song.name, song, {"caption": "c\n", "lyrics": "l\n"}))
        out = pipe.finish()
    assert out == [{"caption": "written", "lyrics": "written"}] * 3
    main = threading.current_thread().name
    if threaded:  # known slow: all on threads; unknown: the first song's time the disk
        assert names[2:] and all(n.startswith("stub-io") for n in names[2:])
        assert [n.startswith("stub-io") for n in names[:2]] == [average is not None] * 2
    else:  # unknown or quick: each write inline, and timed (a first one sets the pace)
        assert names == [main] * 6
        assert pace.average is not None
    assert not [p for p in (drop / "d").iterdir() if p.name.startswith(".")]


def test_a_slow_pace_is_probed_inline_now_and_then_and_follows_a_disk_that_got_quick() -> None:
    pace = Pace()
    assert pace.probe() and not pace.slow  # unknown: time the first write
    pace.record(SLOW_SECONDS * 20)
    assert pace.slow
    probes = [pace.probe() for _ in range(3 * PROBE_EVERY)]
    assert probes.count(True) == 3 and probes[PROBE_EVERY - 1]
    while pace.slow:  # each probe on a disk that is quick now pulls the average down
        pace.record(SLOW_SECONDS / 100)
    assert pace.probe() and pace.probe()  # quick: every write inline
    pace.record(SLOW_SECONDS * 20)  # one write that blocked long: threads again
    assert pace.slow and not pace.probe()


@pytest.mark.parametrize("threaded", [False, True])
def test_a_song_whose_second_stub_cannot_be_written_leaves_no_temp_of_its_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threaded: bool) -> None:
    _, ledger, drop = ingestor(tmp_path)
    song = _songs(drop, 1)[0]
    monkeypatch.setattr(files, "_anonymous", False)  # named temps: visible if left behind
    real, calls = stubs._synced_temp, []

    def synced_temp(folder: Path, data: bytes) -> tuple[int, str]:
        calls.append(data)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(folder, data)

    monkeypatch.setattr(stubs, "_synced_temp", synced_temp)
    pace = Pace()
    pace.average = SLOW_SECONDS * 10 if threaded else 0.0
    with pytest.raises(OSError, match="No space"), StubPipe(Writer(ledger), pace=pace) as pipe:
        pipe.submit(StubJob("d", song.name, song, {"caption": "c\n", "lyrics": "l\n"}))
        pipe.finish()
    assert len(calls) == 2
    assert sorted(p.name for p in (drop / "d").iterdir()) == [song.name]
    assert ledger.connect().execute("SELECT count(*) FROM stubs").fetchone()[0] == 0
