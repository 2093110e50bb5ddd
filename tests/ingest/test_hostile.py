"""Hostile drop folders (issue 14 items 8-11): names that are not UTF-8, sidecars that are
FIFOs, devices or links, symlinked folders, names too long for their stubs, huge sparse files.
Each must end with a reason and never hang, crash a pass, or touch anything outside drop/."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from acewatchd.config.load import load_config
from acewatchd.daemon.daemon import Daemon, scan_once
from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.nightly.prepare.staging import SkipSample, read_sidecar
from acewatchd.util.files import NotRegularFile, read_regular, sha256_file
from tests.support.home import Home
from tests.support.ingest import pump, reason_file, state

pytestmark = pytest.mark.usefixtures("no_thread_leak")

DS = "kim_kyungho"


@pytest.fixture(scope="module")
def good_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp3(tmp_path_factory.mktemp("src") / "good.mp3", seconds=4,
                    tags=SongTags(title="노래", artist="가수"))


def _bytes_file(folder: Path, name: bytes, data: bytes) -> None:
    fd = os.open(os.fsencode(folder) + b"/" + name, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_non_utf8_name_is_rejected_and_the_scan_goes_on(home: Home, good_mp3: Path) -> None:
    ds = home.drop / DS
    ds.mkdir(parents=True)
    _bytes_file(ds, b"\xb1\xe8.mp3", good_mp3.read_bytes())  # CP949 from a zip archive
    shutil.copyfile(good_mp3, ds / "good.mp3")
    d = Daemon(load_config(home.config))
    counts = scan_once(d)  # used to raise UnicodeEncodeError (exit 70)
    assert counts.get("stubbed") == 1 and counts.get("rejected") == 1, counts
    assert (ds / "good.caption.txt").exists()
    sentence = reason_file(home, DS, "\\xb1\\xe8.mp3").read_text("utf-8")
    assert "not valid UTF-8" in sentence
    assert os.path.exists(os.fsencode(ds) + b"/\xb1\xe8.mp3")  # the user's file is kept
    assert not os.path.exists(os.fsencode(ds) + b"/\xb1\xe8.caption.txt")


def test_fifo_and_device_sidecars_are_never_opened(home: Home, daemon: Daemon,
                                                    good_mp3: Path) -> None:
    ds = home.drop / DS
    ds.mkdir(parents=True)
    os.mkfifo(ds / "song.caption.txt")
    (ds / "song.lyrics.txt").symlink_to("/dev/zero")
    shutil.copyfile(good_mp3, ds / "song.mp3")
    os.mkfifo(ds / "pipe.mp3")  # a FIFO named like audio must not hang either
    pump(daemon, lambda: state(daemon, DS, "song.mp3") == "stubbed"
         and state(daemon, DS, "pipe.mp3") == "rejected")
    assert os.path.islink(ds / "song.lyrics.txt")  # the user's: kept, never replaced
    assert not (ds / "song.caption.txt").is_file()


def test_regular_file_reads_refuse_fifos_links_and_huge_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "big").write_bytes(b"x" * 2000)
    with pytest.raises(NotRegularFile):
        read_regular(tmp_path / "fifo", 1 << 20)
    with pytest.raises(NotRegularFile):
        read_regular(tmp_path / "zero", 1 << 20)
    with pytest.raises(NotRegularFile):
        sha256_file(tmp_path / "fifo")
    with pytest.raises(OSError) as info:
        read_regular(tmp_path / "big", 1000)
    assert info.value.errno == errno.EFBIG


def test_symlinked_folder_is_never_followed(home: Home, daemon: Daemon, good_mp3: Path,
                                            tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(good_mp3, outside / "secret.mp3")
    moved = home.drop / DS / "moved"
    moved.mkdir(parents=True)
    shutil.copyfile(good_mp3, moved / "inside.mp3")
    (moved / "link").symlink_to(outside, target_is_directory=True)
    (moved / "loop").symlink_to(moved, target_is_directory=True)
    pump(daemon, lambda: state(daemon, DS, "moved/inside.mp3") == "stubbed")
    # A path through the link (as a watcher following links would hand it over).
    daemon.ingestor.process(moved / "link" / "secret.mp3")
    daemon.ingestor.process(moved / "loop" / "inside.mp3")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.mp3"]
    assert state(daemon, DS, "moved/link/secret.mp3") == "rejected"
    assert not (home.rejected / DS / "moved" / "link" / "secret.mp3").exists()


def test_name_too_long_for_its_stub(home: Home, daemon: Daemon, good_mp3: Path) -> None:
    name = "가" * 80 + "x" * 6 + ".mp3"  # 250 bytes: <stem>.caption.txt would be 258
    assert len(name.encode()) == 250
    ds = home.drop / DS
    ds.mkdir(parents=True)
    shutil.copyfile(good_mp3, ds / name)
    shutil.copyfile(good_mp3, ds / "ok.mp3")
    pump(daemon, lambda: state(daemon, DS, name) == "rejected"
         and state(daemon, DS, "ok.mp3") == "stubbed")
    reasons = list((home.rejected / DS).glob("*.reason.txt"))
    assert len(reasons) == 1 and "too long" in reasons[0].read_text("utf-8")
    assert (ds / name).read_bytes() == good_mp3.read_bytes()


def test_huge_sparse_file_gets_a_reason_only(home: Home, daemon: Daemon) -> None:
    ds = home.drop / DS
    ds.mkdir(parents=True)
    with open(ds / "huge.mp3", "wb") as fh:
        fh.write(b"ID3")
    os.truncate(ds / "huge.mp3", 2 << 30)
    pump(daemon, lambda: state(daemon, DS, "huge.mp3") == "rejected")
    assert "GB" in reason_file(home, DS, "huge.mp3").read_text("utf-8")
    assert not (home.rejected / DS / "huge.mp3").exists()  # never a 2 GB copy
    assert os.path.getsize(ds / "huge.mp3") == 2 << 30


def test_read_sidecar_never_blocks_or_escapes(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.mp3").write_bytes(b"x")
    os.mkfifo(drop / "a.caption.txt")
    (drop / "a.lyrics.txt").symlink_to("/dev/zero")
    for kind in ("caption", "lyrics"):
        with pytest.raises(SkipSample):
            read_sidecar(drop, drop / "a.mp3", kind)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_caption_skips_that_song_only(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.mp3").write_bytes(b"x")
    (drop / "a.caption.txt").write_text("mine")
    (drop / "a.caption.txt").chmod(0)
    with pytest.raises(SkipSample, match="cannot be read"):
        read_sidecar(drop, drop / "a.mp3", "caption")
