"""util.files.is_disk_full: a full disk is told from every other write error."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from acewatchd.util.files import is_disk_full


def test_full_disk_errors_are_told_from_others(tmp_path: Path) -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("no space left on device"))
    # SQLite's own "database or disk is full", from a real database that may not grow.
    conn = sqlite3.connect(tmp_path / "tiny.sqlite3")
    try:
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.execute("PRAGMA max_page_count = 3")
        with pytest.raises(sqlite3.OperationalError) as raised:
            conn.execute("INSERT INTO t VALUES (?)", (b"\0" * 100_000,))
    finally:
        conn.close()
    assert is_disk_full(raised.value)
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))
