"""Songs that change after they were stubbed (issue 12 points 3, 4, 8 and the status part of 1),
through the real Daemon loop in-process (real watchdog, files, SQLite, ffmpeg-made MP3s):
replaced content gets fresh stubs unless the user edited them, a moved song carries its stubs,
a rejection from while a copy was still arriving is forgotten, and songs without lyrics in a
sung dataset are named in status."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from acewatchd.commands.status import collect, render
from acewatchd.config.load import load_config
from acewatchd.daemon.daemon import Daemon
from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.ingest.stubs import caption_text
from acewatchd.ingest.tags import read_audio
from acewatchd.ingest.validate import forget_rejection
from acewatchd.nightly.prepare.prepare import dataset_content_hash
from acewatchd.util.files import sha256_file
from tests.support.home import Home
from tests.support.ingest import pump, reason_file, state

pytestmark = pytest.mark.usefixtures("no_thread_leak")
KIM = "kim_kyungho"


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    src = tmp_path_factory.mktemp("songs")
    return {
        "old": make_mp3(src / "old.mp3", seconds=3, freq=300,
                        tags=SongTags(title="옛 노래", artist="Old Singer", lyrics="옛 가사")),
        "new": make_mp3(src / "new.mp3", seconds=3, freq=500,
                        tags=SongTags(title="새 노래", artist="New Singer", lyrics="새 가사")),
        "bare": make_mp3(src / "bare.mp3", seconds=3, freq=700,
                         tags=SongTags(title="가사 없음", artist="Quiet")),
    }


def side(audio: Path, kind: str) -> Path:
    return audio.with_name(f"{audio.stem}.{kind}.txt")


def stubbed(d: Daemon, dataset: str, relpath: str, audio: Path) -> bool:
    row = d.ledger.connect().execute(
        "SELECT state, sha256 FROM files WHERE dataset=? AND relpath=?",
        (dataset, relpath)).fetchone()
    return row is not None and row[0] == "stubbed" and row[1] == sha256_file(audio)


def ingest(d: Daemon, src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dataset, *rel = dest.relative_to(d.cfg.paths.drop).parts
    pump(d, lambda: stubbed(d, dataset, str(Path(*rel)), dest))
    return dest


def report(home: Home) -> dict[str, Any]:
    return collect(load_config(home.config), home.config, "")


def live_rows(d: Daemon) -> list[tuple[str, str]]:
    rows = d.ledger.connect().execute("SELECT dataset, relpath FROM files WHERE state != 'gone'")
    return sorted((r[0], r[1]) for r in rows)


# ---- point 3: a replaced song


def test_replaced_song_gets_fresh_stubs(home: Home, daemon: Daemon,
                                        songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "song.mp3")
    assert "Old Singer style" in side(audio, "caption").read_text("utf-8")
    shutil.copyfile(songs["new"], audio)  # copied over, same name
    pump(daemon, lambda: stubbed(daemon, KIM, "song.mp3", audio))
    caption = side(audio, "caption").read_text("utf-8")
    assert "New Singer style" in caption and "Old Singer" not in caption
    assert side(audio, "lyrics").read_text("utf-8") == "새 가사\n"
    ds = report(home)["datasets"][KIM]
    assert ds["stubs"] == {"untouched": 2, "reviewed": 0, "missing": 0}
    assert ds["changed_after_review"] == [] and ds["files"] == {"stubbed": 1}


def test_atomic_save_over_a_song_keeps_the_users_caption(home: Home, daemon: Daemon,
                                                         songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "song.mp3")
    side(audio, "caption").write_text("내가 쓴 캡션, slow ballad\n", "utf-8")
    tmp = audio.with_name("song.mp3.sb-save")  # an editor's save: temp file renamed over
    shutil.copyfile(songs["new"], tmp)
    os.replace(tmp, audio)
    pump(daemon, lambda: stubbed(daemon, KIM, "song.mp3", audio))
    assert side(audio, "caption").read_text("utf-8") == "내가 쓴 캡션, slow ballad\n"
    assert side(audio, "lyrics").read_text("utf-8") == "새 가사\n"  # ours: rewritten
    ds = report(home)["datasets"][KIM]
    (changed,) = ds["changed_after_review"]
    assert changed["file"] == "song.mp3" and changed["kinds"] == ["caption"]
    text = render(report(home))
    assert "song.mp3: the song changed after its caption was reviewed" in text
    assert "`song.caption.txt`" in text
    # Editing the caption again is the new review: no longer listed.
    side(audio, "caption").write_text("내가 다시 쓴 캡션\n", "utf-8")
    assert report(home)["datasets"][KIM]["changed_after_review"] == []


def test_replace_after_a_kill_between_stub_and_ledger(home: Home, daemon: Daemon,
                                                      songs: dict[str, Path]) -> None:
    """The new caption was written, then the daemon was killed before the ledger said so:
    the stub holds exactly what acewatchd would write, so it is ours, not a user's review."""
    audio = ingest(daemon, songs["old"], home.drop / KIM / "song.mp3")
    text = caption_text(read_audio(songs["new"]), daemon.cfg.dataset(KIM), "song")
    side(audio, "caption").write_text(text, "utf-8")
    shutil.copyfile(songs["new"], audio)
    pump(daemon, lambda: stubbed(daemon, KIM, "song.mp3", audio))
    ds = report(home)["datasets"][KIM]
    assert ds["changed_after_review"] == []
    assert ds["stubs"] == {"untouched": 2, "reviewed": 0, "missing": 0}


def test_replaced_song_retrains_by_content_hash(home: Home, daemon: Daemon,
                                                songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "song.mp3")
    before = dataset_content_hash(daemon.cfg, daemon.ledger, KIM)
    shutil.copyfile(songs["new"], audio)
    pump(daemon, lambda: stubbed(daemon, KIM, "song.mp3", audio))
    assert dataset_content_hash(daemon.cfg, daemon.ledger, KIM) != before


# ---- point 4: a renamed or moved song


def test_renamed_song_carries_its_stubs(home: Home, daemon: Daemon,
                                        songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "01 old.mp3")
    side(audio, "caption").write_text("my caption for this one\n", "utf-8")
    lyrics = side(audio, "lyrics").read_text("utf-8")
    audio.with_suffix(".lrc").write_text("[00:01.00]옛 가사\n", "utf-8")  # the user's
    moved = home.drop / KIM / "sub" / "renamed.mp3"
    moved.parent.mkdir()
    os.rename(audio, moved)
    pump(daemon, lambda: stubbed(daemon, KIM, "sub/renamed.mp3", moved))
    assert side(moved, "caption").read_text("utf-8") == "my caption for this one\n"
    assert side(moved, "lyrics").read_text("utf-8") == lyrics
    assert moved.with_suffix(".lrc").read_text("utf-8") == "[00:01.00]옛 가사\n"
    assert sorted(p.name for p in (home.drop / KIM).rglob("*.*") if p.parent == audio.parent
                  and p.is_file()) == []  # no orphan sidecar
    assert live_rows(daemon) == [(KIM, "sub/renamed.mp3")]  # counted once
    ds = report(home)["datasets"][KIM]
    assert ds["files"] == {"stubbed": 1}
    assert ds["stubs"] == {"untouched": 1, "reviewed": 1, "missing": 0}


def test_a_lrc_named_after_the_whole_file_moves_with_its_song(
        home: Home, daemon: Daemon, songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "old.mp3")
    lrc = audio.with_name("old.mp3.lrc")
    lrc.write_text("[00:01.00]가사\n", "utf-8")
    moved = home.drop / KIM / "new.mp3"
    os.rename(audio, moved)
    pump(daemon, lambda: stubbed(daemon, KIM, "new.mp3", moved))
    assert not lrc.exists()
    assert moved.with_name("new.mp3.lrc").read_text("utf-8") == "[00:01.00]가사\n"


def test_renamed_folder_keeps_its_songs_records(home: Home, daemon: Daemon,
                                               songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "album A" / "x.mp3")
    side(audio, "caption").write_text("edited x\n", "utf-8")
    os.rename(home.drop / KIM / "album A", home.drop / KIM / "album B")
    moved = home.drop / KIM / "album B" / "x.mp3"
    pump(daemon, lambda: stubbed(daemon, KIM, "album B/x.mp3", moved))
    assert side(moved, "caption").read_text("utf-8") == "edited x\n"
    assert live_rows(daemon) == [(KIM, "album B/x.mp3")]
    assert report(home)["datasets"][KIM]["stubs"] == {"untouched": 1, "reviewed": 1,
                                                      "missing": 0}


def test_a_copy_is_not_a_move(home: Home, daemon: Daemon, songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "a.mp3")
    side(audio, "caption").write_text("edited a\n", "utf-8")
    copy = ingest(daemon, audio, home.drop / KIM / "b.mp3")
    assert side(audio, "caption").read_text("utf-8") == "edited a\n"
    assert "Old Singer style" in side(copy, "caption").read_text("utf-8")
    assert live_rows(daemon) == [(KIM, "a.mp3"), (KIM, "b.mp3")]


def test_move_onto_existing_sidecars_keeps_both(home: Home, daemon: Daemon,
                                                songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "a.mp3")
    side(audio, "caption").write_text("edited a\n", "utf-8")
    dest = home.drop / KIM / "b.mp3"
    side(dest, "caption").write_text("the user's own b caption\n", "utf-8")
    os.rename(audio, dest)
    pump(daemon, lambda: stubbed(daemon, KIM, "b.mp3", dest))
    assert side(dest, "caption").read_text("utf-8") == "the user's own b caption\n"
    assert side(audio, "caption").read_text("utf-8") == "edited a\n"  # kept, not lost
    assert side(dest, "lyrics").read_text("utf-8") == "옛 가사\n"  # ours moved along
    assert not side(audio, "lyrics").exists()
    (warning,) = [e for e in report(home)["recent_errors"] if e["subject"] == "b.mp3"]
    assert "a.caption.txt" in warning["message"] and "both are kept" in warning["message"]


def test_rename_over_another_song(home: Home, daemon: Daemon, songs: dict[str, Path]) -> None:
    a = ingest(daemon, songs["old"], home.drop / KIM / "a.mp3")
    b = ingest(daemon, songs["new"], home.drop / KIM / "b.mp3")
    side(b, "caption").write_text("edited b\n", "utf-8")
    os.rename(b, a)  # a now holds b's song
    pump(daemon, lambda: stubbed(daemon, KIM, "a.mp3", a))
    assert "New Singer style" in side(a, "caption").read_text("utf-8")  # ours: rewritten
    assert side(a, "lyrics").read_text("utf-8") == "새 가사\n"
    assert side(b, "caption").read_text("utf-8") == "edited b\n"  # kept, with a warning
    assert not side(b, "lyrics").exists()  # an untouched copy of ours: no orphan
    assert live_rows(daemon) == [(KIM, "a.mp3")]
    status = report(home)
    assert status["datasets"][KIM]["stubs"] == {"untouched": 2, "reviewed": 0, "missing": 0}
    assert any("b.caption.txt" in e["message"] and "both are kept" in e["message"]
               for e in status["recent_errors"])


def test_move_into_another_dataset(home: Home, daemon: Daemon, songs: dict[str, Path]) -> None:
    audio = ingest(daemon, songs["old"], home.drop / KIM / "a.mp3")
    side(audio, "lyrics").write_text("[verse]\n내 가사\n", "utf-8")
    dest = home.drop / "ambient" / "a.mp3"
    dest.parent.mkdir()
    os.rename(audio, dest)
    pump(daemon, lambda: stubbed(daemon, "ambient", "a.mp3", dest))
    assert side(dest, "lyrics").read_text("utf-8") == "[verse]\n내 가사\n"  # the edit went along
    # Our caption named the old dataset's tag: written fresh for this one instead.
    assert side(dest, "caption").read_text("utf-8").startswith("calm ambient")
    assert not side(audio, "caption").exists() and not side(audio, "lyrics").exists()
    assert live_rows(daemon) == [("ambient", "a.mp3")]


# ---- point 8: no stale rejections


def test_stalled_copy_rejected_then_completed(home: Home, daemon: Daemon,
                                              songs: dict[str, Path]) -> None:
    data = songs["old"].read_bytes()
    audio = home.drop / KIM / "slow.mp3"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(data[:len(data) // 2])  # the copy stalls past the settle window
    pump(daemon, lambda: state(daemon, KIM, "slow.mp3") == "rejected")
    assert reason_file(home, KIM, "slow.mp3").exists()
    assert (home.rejected / KIM / "slow.mp3").exists()
    assert any(e["subject"] == "slow.mp3" for e in report(home)["recent_errors"])
    with open(audio, "ab") as fh:  # ... and finishes
        fh.write(data[len(data) // 2:])
    pump(daemon, lambda: stubbed(daemon, KIM, "slow.mp3", audio))
    assert not reason_file(home, KIM, "slow.mp3").exists()
    assert not (home.rejected / KIM / "slow.mp3").exists()
    status = report(home)
    assert not any(e["subject"] == "slow.mp3" for e in status["recent_errors"])
    assert "slow.mp3 was rejected" not in render(status)


def test_forget_rejection_removes_only_its_own(tmp_path: Path) -> None:
    rejected = tmp_path / "rejected" / KIM
    assert forget_rejection(rejected, "never.mp3") is False
    (rejected / "cd 1" / "cd 1a").mkdir(parents=True)
    for name in ("x.mp3", "x.mp3.reason.txt"):
        (rejected / "cd 1" / "cd 1a" / name).write_text("x", "utf-8")
    (rejected / "cd 1" / "other.mp3.reason.txt").write_text("y", "utf-8")
    assert forget_rejection(rejected, "cd 1/cd 1a/x.mp3") is True
    assert sorted(p.name for p in rejected.rglob("*")) == ["cd 1", "other.mp3.reason.txt"]


# ---- point 1 (status): no lyrics found in a sung dataset


def test_song_without_lyrics_is_listed(home: Home, daemon: Daemon,
                                       songs: dict[str, Path]) -> None:
    bare = ingest(daemon, songs["bare"], home.drop / KIM / "bare.mp3")
    ingest(daemon, songs["old"], home.drop / KIM / "sung.mp3")
    ingest(daemon, songs["bare"], home.drop / "ambient" / "calm.mp3")
    status = report(home)
    (entry,) = status["datasets"][KIM]["no_lyrics"]
    assert entry["file"] == "bare.mp3"
    assert entry["fix"].startswith("no lyrics found: add `bare.lyrics.txt`")
    assert status["datasets"]["ambient"]["no_lyrics"] == []  # an instrumental dataset
    assert "bare.mp3: no lyrics found: add `bare.lyrics.txt`" in render(status)
    side(bare, "lyrics").write_text("[verse]\n이제 가사\n", "utf-8")
    assert report(home)["datasets"][KIM]["no_lyrics"] == []


def test_a_song_whose_lyrics_say_it_is_an_instrumental_is_not_listed(
        home: Home, daemon: Daemon, songs: dict[str, Path]) -> None:
    (home.drop / KIM).mkdir(parents=True, exist_ok=True)
    (home.drop / KIM / "pure.lrc").write_text("[00:00.00]纯音乐，请欣赏\n", "utf-8")
    pure = ingest(daemon, songs["bare"], home.drop / KIM / "pure.mp3")
    bare = ingest(daemon, songs["bare"], home.drop / KIM / "bare.mp3")
    assert side(pure, "lyrics").read_text("utf-8") == side(bare, "lyrics").read_text("utf-8") \
        == "[Instrumental]\n"
    assert [e["file"] for e in report(home)["datasets"][KIM]["no_lyrics"]] == ["bare.mp3"]
