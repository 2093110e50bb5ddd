"""`acewatchd scan` (the real CLI, a child process) on a drop folder holding a name that is not
UTF-8 (a CP949 zip), a FIFO caption and a symlink to a folder outside: it finishes, exits 0,
reports the rejected file and writes nothing outside drop/ (issue 14 items 8-10)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from acewatchd.demo.audiogen import make_mp3
from tests.support.home import Home, run_cli


def test_scan_survives_a_hostile_drop_folder(home: Home, tmp_path: Path) -> None:
    song = make_mp3(tmp_path / "src.mp3", seconds=4)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(song, outside / "secret.mp3")
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    shutil.copyfile(song, ds / "good.mp3")
    os.mkfifo(ds / "good.caption.txt")
    fd = os.open(os.fsencode(ds) + b"/\xb1\xe8.mp3", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, song.read_bytes())
    os.close(fd)
    (ds / "link").symlink_to(outside, target_is_directory=True)

    result = run_cli(home, "scan", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rejected" in result.stdout and "1 stubbed" in result.stdout, result.stdout
    assert (ds / "good.lyrics.txt").is_file()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.mp3"]
    assert (home.rejected / "kim_kyungho" / "\\xb1\\xe8.mp3.reason.txt").is_file()
