"""acewatchd.daemon.diskfull: a full disk said once, and when space is back."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from acewatchd.daemon.diskfull import ROOM_BYTES, DiskFull
from tests.support.disk import fill, small_disk


def test_the_condition_is_said_once_and_cleared(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    disk = DiskFull()
    stub = tmp_path / "drop" / "a" / "x.caption.txt"
    with caplog.at_level(logging.INFO, logger="acewatchd.daemon.diskfull"):
        disk.hit(OSError(errno.ENOSPC, "No space left on device", str(stub)), tmp_path)
        disk.hit(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "ledger")
        assert disk.full
        disk.cleared()
        disk.cleared()
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"{stub}: no space left on device; ingest pauses and catches up by "
                    "itself once space is freed", "space is available again; ingest goes on"]
    assert not disk.full
    assert not disk.room_again()


def test_room_again_once_per_freeing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as mnt:
        ballast = mnt / "ballast.bin"
        fill(ballast)
        disk = DiskFull()
        disk.hit(OSError(errno.ENOSPC, "No space left on device"), mnt / "state" / "ledger")
        assert not disk.room_again()  # still as full as it was
        size = ballast.stat().st_size
        ballast.write_bytes(b"\0" * (size - 2 * ROOM_BYTES))
        assert disk.room_again()
        assert not disk.room_again()  # one rescan per freeing, not one every few seconds
        assert disk.full  # until a batch is written again
