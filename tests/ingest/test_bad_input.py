"""Bad input never stops the daemon and never touches the user's file: each case from issue 2
point 8, plus renames, deletions and replaced folders, driven through the real Daemon loop
(real watchdog, real files, real SQLite) in-process."""

from __future__ import annotations

import os
import queue
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from acewatchd.config.load import load_config
from acewatchd.daemon.daemon import Daemon
from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.ingest.watcher import _DropHandler
from acewatchd.util.files import sha256_file
from tests.support.home import Home
from tests.support.ingest import pump, reason_file, state

pytestmark = pytest.mark.usefixtures("no_thread_leak")


@pytest.fixture(scope="module")
def good_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp3(tmp_path_factory.mktemp("src") / "good.mp3", seconds=4,
                    tags=SongTags(title="좋은 노래", artist="가수"))


def _assert_rejected(home: Home, d: Daemon, name: str, words: str, original: bytes) -> None:
    path = home.drop / "kim_kyungho" / name
    pump(d, lambda: state(d, "kim_kyungho", name) == "rejected")
    sentence = reason_file(home, "kim_kyungho", name).read_text("utf-8")
    assert words in sentence and sentence.count("\n") == 1 and name in sentence
    assert path.read_bytes() == original  # untouched, still in place
    assert not path.with_name(path.stem + ".caption.txt").exists()


def test_zero_byte_text_and_truncated_files(home: Home, daemon: Daemon, good_mp3: Path) -> None:
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    cases = {"empty.mp3": (b"", "empty (0 bytes)"),
             "notes.mp3": ("가사 메모, not audio\n".encode() * 20, "not audio: its content is a text"),
             "cut.mp3": (good_mp3.read_bytes()[:3000], "truncated"),
             "half.mp3": (good_mp3.read_bytes()[:len(good_mp3.read_bytes()) // 2], "truncated")}
    for name, (data, _) in cases.items():
        (ds / name).write_bytes(data)
    for name, (data, words) in cases.items():
        _assert_rejected(home, daemon, name, words, data)
        assert (home.rejected / "kim_kyungho" / name).read_bytes() == data  # the copy
    events = daemon.ledger.connect().execute("SELECT count(*) FROM events").fetchone()[0]
    daemon.request_rescan("test")
    pump(daemon, lambda: daemon._rescan_reason is None)
    for _ in range(5):
        daemon.step()
    # Not retried until it changes: no new events, still rejected.
    assert daemon.ledger.connect().execute("SELECT count(*) FROM events").fetchone()[0] == events
    shutil.copyfile(good_mp3, ds / "empty.mp3")  # the user replaces it with a real song
    pump(daemon, lambda: state(daemon, "kim_kyungho", "empty.mp3") == "stubbed")


def test_symlink_outside_is_rejected_without_reading(home: Home, daemon: Daemon,
                                                      good_mp3: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.mp3"
    shutil.copyfile(good_mp3, outside)
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    (ds / "link.mp3").symlink_to(outside)
    _assert_rejected(home, daemon, "link.mp3", "symbolic link pointing outside", b"" or
                     outside.read_bytes())
    assert (ds / "link.mp3").is_symlink()
    assert not (home.rejected / "kim_kyungho" / "link.mp3").exists()  # never copied
    row = daemon.ledger.connect().execute("SELECT sha256 FROM files").fetchone()
    assert row[0] is None  # never hashed either


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_retried_once_readable(home: Home, daemon: Daemon,
                                                  good_mp3: Path) -> None:
    path = home.drop / "kim_kyungho" / "locked.mp3"
    path.parent.mkdir(parents=True)
    shutil.copyfile(good_mp3, path)
    path.chmod(0)
    try:
        pump(daemon, lambda: state(daemon, "kim_kyungho", "locked.mp3") == "rejected")
        assert "cannot be read" in reason_file(home, "kim_kyungho", "locked.mp3").read_text()
    finally:
        path.chmod(0o644)
    daemon.request_rescan("test")
    pump(daemon, lambda: state(daemon, "kim_kyungho", "locked.mp3") == "stubbed")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_unreadable_file_as_another_user(good_mp3: Path) -> None:
    """As root nothing is unreadable, so ingest as `nobody` (seteuid, no threads running)
    against a root-owned 0600 file, then read it again once it is readable."""
    import tempfile

    from acewatchd.config.load import parse_config
    from acewatchd.ingest.pipeline import Ingestor
    from acewatchd.ledger.db import Ledger

    root = Path(tempfile.mkdtemp(prefix="acewatchd-unreadable-"))
    try:
        path = root / "drop" / "kim" / "locked.mp3"
        path.parent.mkdir(parents=True)
        shutil.copyfile(good_mp3, path)
        for p in [root, *root.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o600)
        cfg = parse_config("[watch]\nmin_duration_seconds = 1.0\n", root / "config.toml")
        os.setegid(65534)
        os.seteuid(65534)
        try:
            ledger = Ledger(cfg.paths.state)
            assert Ingestor(ledger, lambda: cfg).process(path) == "rejected"
            ledger.close()
        finally:
            os.seteuid(0)
            os.setegid(0)
        sentence = (cfg.paths.rejected / "kim" / "locked.mp3.reason.txt").read_text("utf-8")
        assert "cannot be read" in sentence and "Permission denied" in sentence
        assert not (cfg.paths.rejected / "kim" / "locked.mp3").exists()
        assert path.read_bytes() == good_mp3.read_bytes()
        ledger = Ledger(cfg.paths.state)
        ing = Ingestor(ledger, lambda: cfg)
        assert ing.needs_work(path)  # same signature, but readable now: retried
        assert ing.scan() == [path] and ing.process(path) == "stubbed"
        ledger.close()
    finally:
        shutil.rmtree(root)


def test_deleted_and_renamed_while_settling(home: Home, daemon: Daemon, good_mp3: Path) -> None:
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    shutil.copyfile(good_mp3, ds / "gone.mp3")
    shutil.copyfile(good_mp3, ds / "old name.mp3")
    pump(daemon, lambda: len(daemon.settler) == 2)
    (ds / "gone.mp3").unlink()
    (ds / "old name.mp3").rename(ds / "새 이름.mp3")
    pump(daemon, lambda: state(daemon, "kim_kyungho", "새 이름.mp3") == "stubbed")
    assert state(daemon, "kim_kyungho", "gone.mp3") == "gone"
    assert state(daemon, "kim_kyungho", "old name.mp3") == "gone"
    assert sorted(p.name for p in ds.iterdir()) == [
        "새 이름.caption.txt", "새 이름.lyrics.txt", "새 이름.mp3"]


def test_dataset_folder_deleted_and_recreated(home: Home, daemon: Daemon, good_mp3: Path,
                                              tmp_path: Path) -> None:
    ds = home.drop / "ambient"
    ds.mkdir(parents=True)
    shutil.copyfile(good_mp3, ds / "a.mp3")
    pump(daemon, lambda: state(daemon, "ambient", "a.mp3") == "stubbed")
    shutil.rmtree(ds)
    daemon.request_rescan("test")
    pump(daemon, lambda: state(daemon, "ambient", "a.mp3") == "gone")
    # Recreated by moving a prepared folder in: inotify reports only the folder.
    prepared = home.root / "prep"
    prepared.mkdir()
    shutil.copyfile(good_mp3, prepared / "a.mp3")
    prepared.rename(ds)
    pump(daemon, lambda: state(daemon, "ambient", "a.mp3") == "stubbed")
    assert (ds / "a.caption.txt").read_text("utf-8") == "calm ambient, 좋은 노래\n"


def test_drop_root_removed_and_recreated_rebuilds_watch(home: Home, daemon: Daemon,
                                                        good_mp3: Path) -> None:
    shutil.rmtree(home.drop)
    pump(daemon, lambda: daemon.watcher._drop_id is None, timeout=10)
    (home.drop / "ambient").mkdir(parents=True)
    pump(daemon, lambda: daemon.watcher._drop_id is not None, timeout=10)
    # Written after the rebuild and no periodic rescan due: only the new watch can see it.
    daemon._next_rescan = time.monotonic() + 3600
    shutil.copyfile(good_mp3, home.drop / "ambient" / "b.mp3")
    pump(daemon, lambda: state(daemon, "ambient", "b.mp3") == "stubbed")


def test_ignored_names_are_never_ingested(home: Home, daemon: Daemon, good_mp3: Path) -> None:
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    for name in (".DS_Store", ".hidden.mp3", "x.mp3.part", "x.mp3.crdownload", "x.download",
                 ".acewatchd-tmp-abc", "x.json", "notes.txt", "cover.jpg"):
        shutil.copyfile(good_mp3, ds / name)
    shutil.copyfile(good_mp3, home.drop / "loose.mp3")  # not inside a dataset folder
    shutil.copyfile(good_mp3, ds / "real.mp3")
    pump(daemon, lambda: state(daemon, "kim_kyungho", "real.mp3") == "stubbed")
    rows = daemon.ledger.connect().execute("SELECT relpath FROM files").fetchall()
    assert [r[0] for r in rows] == ["real.mp3"]


def test_handler_never_raises() -> None:
    class Broken(queue.Queue):  # type: ignore[type-arg]
        def put(self, *a: object, **k: object) -> None:
            raise RuntimeError("full")

    from watchdog.events import FileCreatedEvent

    _DropHandler(Broken()).on_any_event(FileCreatedEvent("/x/y.mp3"))


def test_stub_written_only_where_missing(home: Home, daemon: Daemon, good_mp3: Path) -> None:
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    (ds / "mine.lyrics.txt").write_text("내 가사\n", encoding="utf-8")
    shutil.copyfile(good_mp3, ds / "mine.mp3")
    pump(daemon, lambda: state(daemon, "kim_kyungho", "mine.mp3") == "stubbed")
    assert (ds / "mine.lyrics.txt").read_text("utf-8") == "내 가사\n"
    assert (ds / "mine.caption.txt").exists()
    db = sqlite3.connect(home.state / "ledger.sqlite3")
    kinds = [r[0] for r in db.execute("SELECT kind FROM stubs")]
    db.close()
    assert kinds == ["caption"]
    assert sha256_file(ds / "mine.mp3") == sha256_file(good_mp3)


def test_observer_thread_death_rebuilds_and_rescans(home: Home, daemon: Daemon,
                                                    good_mp3: Path) -> None:
    (home.drop / "ambient").mkdir(parents=True)
    dead = daemon.watcher._observer
    assert dead is not None
    dead.stop()
    dead.join(5)
    # Arrives while nothing watches: only the rescan after the rebuild can find it.
    shutil.copyfile(good_mp3, home.drop / "ambient" / "missed.mp3")
    daemon._next_rescan = time.monotonic() + 3600
    pump(daemon, lambda: daemon.watcher._observer is not dead)
    pump(daemon, lambda: state(daemon, "ambient", "missed.mp3") == "stubbed")


def test_periodic_rescan_with_injected_clock(home: Home, good_mp3: Path) -> None:
    """No watcher at all: the periodic reconciliation scan alone finds the file; settle time
    is stepped on a fake clock instead of slept."""
    from tests.support.clock import FakeClock

    clock = FakeClock()
    d = Daemon(load_config(home.config), clock=clock)
    d.watcher.healthy = lambda: True  # type: ignore[method-assign]  # never started
    try:
        d.step()  # the start-up scan: nothing yet
        (home.drop / "ambient").mkdir(parents=True)
        shutil.copyfile(good_mp3, home.drop / "ambient" / "later.mp3")
        d.step()
        assert state(d, "ambient", "later.mp3") is None
        clock.advance(d.cfg.watch.rescan_minutes * 60 + 1)
        d.step()
        assert state(d, "ambient", "later.mp3") == "seen"
        for _ in range(10):
            clock.advance(d.cfg.watch.poll_seconds)
            d.step()
        assert state(d, "ambient", "later.mp3") == "stubbed"
    finally:
        d.close()
