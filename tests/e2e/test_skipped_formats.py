"""Through the real daemon: audio whose extension ACE-Step does not pick up is listed by
`status` and `status --json` as skipped, with the reason and the fix (found at start-up and
when it is dropped while the daemon runs); an upper-case .MP3 and an M4A named .mp3 are
ingested, WMA named .mp3 is rejected."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.audiofiles import make_audio
from tests.support.home import DaemonProc, Home, run_cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def _status(home: Home) -> dict[str, Any]:
    out = run_cli(home, "status", "--json")
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def _skipped(home: Home) -> dict[str, dict[str, str]]:
    return {item["file"]: item for item in _status(home)["skipped"]}


def test_status_lists_skipped_audio_with_the_fix(
        home: Home, tmp_path: Path, run_daemon: Callable[..., DaemonProc]) -> None:
    ds = home.drop / "kim_kyungho"
    make_audio(ds / "라이브.wma", "wma")
    make_audio(ds / "demo.aiff", "aiff")
    make_audio(ds / "TONE.MP3", "mp3")
    make_audio(ds / "itunes.mp3", "m4a")   # an M4A under an mp3 name
    make_audio(ds / "windows.mp3", "wma")  # WMA under an mp3 name
    (ds / "cover.jpg").write_bytes(b"\xff\xd8\xff" + bytes(200))  # not audio: not mentioned

    daemon = run_daemon()
    wait_until(lambda: _status(home)["datasets"].get("kim_kyungho", {}).get("files") == {
        "stubbed": 2, "rejected": 1, "skipped": 2}, 60, message="start-up scan")
    skipped = _skipped(home)
    assert skipped["라이브.wma"] == {
        "dataset": "kim_kyungho", "file": "라이브.wma",
        "reason": ".wma (Windows Media Audio) is not read by ACE-Step",
        "fix": "convert it: ffmpeg -i '라이브.wma' -vn '라이브.flac'"}
    assert skipped["demo.aiff"]["fix"] == "convert it: ffmpeg -i demo.aiff -vn demo.flac"
    assert (ds / "TONE.caption.txt").is_file() and (ds / "itunes.lyrics.txt").is_file()
    reason = (home.rejected / "kim_kyungho" / "windows.mp3.reason.txt").read_text("utf-8")
    assert "its content is Windows Media Audio" in reason

    # Dropped while the daemon runs: the file event reports it, no rescan needed.
    shutil.copyfile(make_audio(tmp_path / "clip.webm", "webm"), ds / "clip.webm")
    wait_until(lambda: "clip.webm" in _skipped(home), 30, message="webm reported")
    text = run_cli(home, "status").stdout
    assert ("skipped  kim_kyungho/clip.webm: .webm (WebM) is not read by ACE-Step; convert "
            "it: ffmpeg -i clip.webm -vn clip.flac") in text
    assert "kim_kyungho: 1 rejected, 3 skipped, 2 stubbed" in text

    assert daemon.stop() == 0
    (ds / "라이브.wma").unlink()  # converted and removed: no longer listed after a scan
    scan = run_cli(home, "scan")
    assert scan.returncode == 0 and "2 skipped" in scan.stdout, scan.stdout + scan.stderr
    assert sorted(_skipped(home)) == ["clip.webm", "demo.aiff"]


def test_a_folder_that_cannot_be_a_dataset_is_listed_not_ignored(
        home: Home, run_daemon: Callable[..., DaemonProc]) -> None:
    make_audio(home.drop / "demos " / "song.mp3", "mp3")     # a trailing space
    make_audio(home.drop / "김경호" / "song.mp3", "mp3")     # any script is a dataset
    daemon = run_daemon()
    wait_until(lambda: "김경호" in _status(home)["datasets"], 60, message="start-up scan")
    folders = [i for i in _status(home)["skipped"] if i["file"] == ""]
    assert [i["dataset"] for i in folders] == ["demos "]
    assert "never trained" in folders[0]["reason"] and "blank ends" in folders[0]["fix"]
    assert "skipped  demos /: this folder is not a dataset" in run_cli(home, "status").stdout
    assert daemon.stop() == 0
