"""Replaced and renamed songs, edited and not, through the real daemon (a subprocess): stubs
follow the song, edits are never lost, no sidecar is orphaned, each song counts once, and
`status --json` says which edited caption the song changed under. The last rename happens while
the daemon is stopped, so the start-up rescan (one name gone, one new) has to find it."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.ledger.db import open_readonly
from acewatchd.util.files import sha256_file
from tests.support.home import Home, run_cli
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KIM = "kim_kyungho"


def side(audio: Path, kind: str) -> Path:
    return audio.with_name(f"{audio.stem}.{kind}.txt")


def rows(home: Home) -> dict[str, tuple[str, str]]:
    """The dataset's ledger rows; none while the daemon is still creating the ledger."""
    conn = open_readonly(home.state)
    if conn is None:
        return {}
    try:
        found = conn.execute("SELECT relpath, state, sha256 FROM files WHERE dataset=?", (KIM,))
        return {r[0]: (r[1], r[2]) for r in found}
    finally:
        conn.close()


def stubbed(home: Home, relpath: str) -> bool:
    audio = home.drop / KIM / relpath
    row = rows(home).get(relpath)
    return (row is not None and audio.exists() and row[0] == "stubbed"
            and row[1] == sha256_file(audio))


def status(home: Home) -> dict[str, Any]:
    done = run_cli(home, "status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout)["datasets"][KIM])


def sidecars(home: Home) -> set[str]:
    return {str(p.relative_to(home.drop / KIM)) for p in (home.drop / KIM).rglob("*.txt")}


def test_replaced_and_renamed_songs(home: Home, run_daemon, tmp_path: Path) -> None:
    src = {name: make_mp3(tmp_path / f"{name}.mp3", seconds=3, freq=freq, tags=SongTags(
        title=name, artist=f"{name} singer", lyrics=f"{name} 가사"))
        for name, freq in (("first", 300), ("second", 400), ("third", 500), ("fourth", 600))}
    daemon = run_daemon()
    ds = home.drop / KIM
    ds.mkdir(parents=True)
    shutil.copyfile(src["first"], ds / "a.mp3")
    shutil.copyfile(src["second"], ds / "b.mp3")
    wait_until(lambda: stubbed(home, "a.mp3") and stubbed(home, "b.mp3"), 30, 0.1, "stubbed")
    side(ds / "a.mp3", "caption").write_text("내 캡션: 느린 발라드\n", "utf-8")

    # Replaced: a (caption edited) and b (untouched) get new content under the same names.
    shutil.copyfile(src["third"], ds / "a.mp3")
    tmp = ds / "b.mp3.saving"
    shutil.copyfile(src["fourth"], tmp)
    os.replace(tmp, ds / "b.mp3")  # an atomic save
    wait_until(lambda: stubbed(home, "a.mp3") and stubbed(home, "b.mp3"), 30, 0.1, "replaced")
    assert side(ds / "a.mp3", "caption").read_text("utf-8") == "내 캡션: 느린 발라드\n"
    assert side(ds / "a.mp3", "lyrics").read_text("utf-8") == "third 가사\n"
    assert "fourth singer style" in side(ds / "b.mp3", "caption").read_text("utf-8")
    assert side(ds / "b.mp3", "lyrics").read_text("utf-8") == "fourth 가사\n"
    (changed,) = status(home)["changed_after_review"]
    assert (changed["file"], changed["kinds"]) == ("a.mp3", ["caption"])

    # Renamed while the daemon watches: a to c (its edit and its stale review go along),
    # b into a subfolder.
    os.rename(ds / "a.mp3", ds / "c.mp3")
    (ds / "sub").mkdir()
    os.rename(ds / "b.mp3", ds / "sub" / "d.mp3")
    wait_until(lambda: stubbed(home, "c.mp3") and stubbed(home, "sub/d.mp3"), 30, 0.1, "moved")
    assert side(ds / "c.mp3", "caption").read_text("utf-8") == "내 캡션: 느린 발라드\n"
    assert sidecars(home) == {"c.caption.txt", "c.lyrics.txt", "sub/d.caption.txt",
                              "sub/d.lyrics.txt"}
    report = status(home)
    assert report["files"] == {"stubbed": 2}
    assert report["stubs"] == {"untouched": 3, "reviewed": 1, "missing": 0}
    assert [c["file"] for c in report["changed_after_review"]] == ["c.mp3"]

    # Renamed while the daemon is stopped: the start-up rescan sees c vanish and e appear.
    assert daemon.stop(signal.SIGTERM) == 0
    os.rename(ds / "c.mp3", ds / "e.mp3")
    run_daemon()
    wait_until(lambda: stubbed(home, "e.mp3"), 30, 0.1, "found by the rescan")
    assert side(ds / "e.mp3", "caption").read_text("utf-8") == "내 캡션: 느린 발라드\n"
    assert side(ds / "e.mp3", "lyrics").read_text("utf-8") == "third 가사\n"
    assert sidecars(home) == {"e.caption.txt", "e.lyrics.txt", "sub/d.caption.txt",
                              "sub/d.lyrics.txt"}
    report = status(home)
    assert report["files"] == {"stubbed": 2}
    assert report["stubs"] == {"untouched": 3, "reviewed": 1, "missing": 0}
    assert [c["file"] for c in report["changed_after_review"]] == ["e.mp3"]
    assert {k for k, (state, _) in rows(home).items() if state != "gone"} == {"e.mp3",
                                                                              "sub/d.mp3"}
