"""Units of the ingest pipeline on real files: tags, captions, settle (injected clock), stubs."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from acewatchd.config.schema import Dataset, Watch
from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.ingest.pipeline import ignored_name, locate
from acewatchd.ingest.settle import Settler
from acewatchd.ingest.stubs import caption_text, lyrics_text, stub_path, write_stubs
from acewatchd.ingest.tags import AudioInfo, read_audio
from acewatchd.ledger.batch import Writer
from acewatchd.util.files import sha256_file
from tests.support.clock import FakeClock
from tests.support.ingest import ingestor

KOREAN = SongTags(title="사랑했지만", artist="김경호", album="3집", genre="Rock",
                  year="1996-03-01", bpm="76", key="A minor", lyrics="어느새 나는\n그대 곁에")


@pytest.fixture(scope="module")
def korean_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp3(tmp_path_factory.mktemp("a") / "song.mp3", seconds=3, tags=KOREAN)


def test_read_audio_id3_korean_tags_and_lyrics(korean_mp3: Path) -> None:
    info = read_audio(korean_mp3)
    assert 2.5 < info.duration < 3.5
    assert (info.title, info.artist, info.genre, info.bpm, info.key) == (
        "사랑했지만", "김경호", "Rock", "76", "A minor")
    assert info.decade == "1990s"
    assert info.lyrics == "어느새 나는\n그대 곁에"


def test_caption_fills_template_and_drops_empty_descriptors(korean_mp3: Path) -> None:
    ds = Dataset(tag="kim kyung ho", genre="Korean power rock ballad")
    assert caption_text(read_audio(korean_mp3), ds, "song") == \
        "kim kyung ho, Rock, 1990s, 김경호 style, 76 bpm, A minor\n"
    bare = AudioInfo(duration=10, format="MP3")
    # No tags: dataset genre fallback, and "{artist} style" vanishes instead of " style".
    assert caption_text(bare, ds, "x") == "kim kyung ho, Korean power rock ballad\n"
    assert caption_text(bare, Dataset(), "my_song-name") == "my song name\n"


def test_caption_tag_position_when_template_has_no_tag() -> None:
    info = AudioInfo(duration=10, format="MP3", genre="jazz", year="2004")
    prepend = Dataset(tag="T", caption_template="{genre}, {decade}")
    append = Dataset(tag="T", caption_template="{genre}, {decade}", tag_position="append")
    assert caption_text(info, prepend, "s") == "T, jazz, 2000s\n"
    assert caption_text(info, append, "s") == "jazz, 2000s, T\n"


def test_lyrics_instrumental_rules(korean_mp3: Path) -> None:
    info = read_audio(korean_mp3)
    assert lyrics_text(info, Dataset()) == "어느새 나는\n그대 곁에\n"
    assert lyrics_text(info, Dataset(instrumental=True)) == "[Instrumental]\n"
    assert lyrics_text(AudioInfo(duration=1, format="MP3"), Dataset()) == "[Instrumental]\n"


def _ffmpeg(src: Path, dest: Path, *meta: str) -> Path:
    import subprocess

    args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src)]
    for m in meta:
        args += ["-metadata", m]
    subprocess.run([*args, str(dest)], check=True)
    return dest


@pytest.mark.parametrize("ext", ["flac", "ogg", "m4a"])
def test_lyrics_from_vorbis_flac_and_mp4(korean_mp3: Path, tmp_path: Path, ext: str) -> None:
    out = _ffmpeg(korean_mp3, tmp_path / f"s.{ext}", "title=제목", "artist=가수")
    import mutagen

    audio = mutagen.File(out)
    if ext == "m4a":
        audio.tags["\xa9lyr"] = ["첫 줄\n둘째 줄"]
    else:
        audio.tags["LYRICS"] = ["첫 줄\n둘째 줄"]
    audio.save()
    info = read_audio(out)
    assert (info.title, info.artist, info.lyrics) == ("제목", "가수", "첫 줄\n둘째 줄")


def test_ignored_names() -> None:
    for name in [".DS_Store", ".hidden.mp3", "a.mp3.part", "a.crdownload", "a.download",
                 ".acewatchd-tmp-xyz", "a.caption.txt", "a.lyrics.txt", "a.reason.txt",
                 "a.json"]:
        assert ignored_name(name), name
    assert not ignored_name("song.mp3")


def test_settle_needs_stable_polls_and_age(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "a.mp3"
    f.write_bytes(b"x")
    watch = Watch(settle_seconds=5, settle_polls=3, settle_ceiling_minutes=1)
    s = Settler(clock, watch)
    clock.wall = os.stat(f).st_mtime  # the file is brand new
    assert s.add(f) and not s.add(f)
    for _ in range(4):
        clock.advance(1)
        assert s.poll().settled == []
    f.write_bytes(b"xy")  # grew: counting starts again
    clock.wall = os.stat(f).st_mtime
    for _ in range(4):
        clock.advance(1)
        assert s.poll().settled == []
    clock.advance(1.5)
    assert s.poll().settled == [f]
    assert len(s) == 0


def test_settle_old_file_needs_only_polls(tmp_path: Path, clock: FakeClock) -> None:
    f = tmp_path / "old.mp3"
    f.write_bytes(b"x")
    os.utime(f, (1, 1))
    s = Settler(clock, Watch(settle_seconds=60, settle_polls=2))
    s.add(f)
    assert [s.poll().settled for _ in range(3)] == [[], [], [f]]


def test_settle_vanished_and_ceiling(tmp_path: Path, clock: FakeClock) -> None:
    gone, growing = tmp_path / "gone.mp3", tmp_path / "grow.mp3"
    gone.write_bytes(b"x")
    growing.write_bytes(b"x")
    s = Settler(clock, Watch(settle_seconds=1, settle_polls=2, settle_ceiling_minutes=0.05))
    s.add(gone)
    s.add(growing)
    gone.unlink()
    assert s.poll().vanished == [gone]
    gave_up: list[Path] = []
    for i in range(10):
        with open(growing, "ab") as fh:
            fh.write(b"more")
        os.utime(growing, ns=(i, 10**18 + i))  # keeps changing, mtime in the future
        clock.advance(0.5)
        gave_up += s.poll().gave_up
    assert gave_up == [growing] and len(s) == 0


def test_write_stubs_never_clobbers_and_recovers_after_kill(tmp_path: Path) -> None:
    _, ledger, drop = ingestor(tmp_path)
    audio = drop / "d" / "a.mp3"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"")
    # A user's own caption exists already; the lyrics stub was written but not recorded
    # (killed between the rename and the ledger commit).
    stub_path(audio, "caption").write_text("my caption", encoding="utf-8")
    stub_path(audio, "lyrics").write_text("[Instrumental]\n", encoding="utf-8")
    out = write_stubs(Writer(ledger), "d", "a.mp3", audio, {"caption": "gen\n",
                                                   "lyrics": "[Instrumental]\n"})
    assert out == {"caption": "user", "lyrics": "ours"}
    assert stub_path(audio, "caption").read_text(encoding="utf-8") == "my caption"
    rows = ledger.connect().execute("SELECT kind FROM stubs").fetchall()
    assert [r[0] for r in rows] == ["lyrics"]


def test_pipeline_idempotent_and_nfd_names(tmp_path: Path) -> None:
    ing, ledger, drop = ingestor(tmp_path, '[datasets.kim]\ntag = "kim"\n')
    nfd = unicodedata.normalize("NFD", "노래.mp3")
    audio = make_mp3(drop / "kim" / nfd, seconds=6, tags=KOREAN)
    assert ing.process(audio) == "stubbed"
    row = ledger.connect().execute("SELECT * FROM files").fetchone()
    assert row["relpath"] == unicodedata.normalize("NFC", "노래.mp3")
    assert row["relpath"] != nfd
    assert row["sha256"] == sha256_file(audio) and row["state"] == "stubbed"
    assert locate(ing.config(), "kim", row["relpath"]) == audio
    caption = stub_path(audio, "caption")
    caption.write_text("edited by me", encoding="utf-8")
    os.utime(audio)  # touched: re-validated, but the edit stays
    assert ing.needs_work(audio)
    assert ing.process(audio) == "stubbed"
    assert caption.read_text(encoding="utf-8") == "edited by me"
    assert not ing.needs_work(audio) and ing.scan() == []
    assert ledger.connect().execute("SELECT count(*) FROM stubs").fetchone()[0] == 2
