"""SIGTERM ends the real daemon within 15 s while it hashes big files (issue 14 item 7).

Files over COPY_LIMIT (1 GiB) are refused before they are read, so the longest the daemon
hashes is a batch of files just at the limit: sparse here (no disk used), read back as zeros.
How many are dropped is computed from this machine's measured hash speed, so that hashing
them to the end would take at least three times the 15 s a stop may take.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from acewatchd.ingest.validate import COPY_LIMIT
from tests.support.home import DaemonProc, Home
from tests.support.waiting import wait_until

STOP_WITHIN = 15.0
_SAMPLE = 64 << 20


def _seconds_to_hash(path: Path) -> float:
    """The time to hash all of ``path``, from the time to hash its first 64 MB."""
    digest = hashlib.sha256()
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.tell() < _SAMPLE and (chunk := fh.read(1 << 20)):
            digest.update(chunk)
    return (time.perf_counter() - t0) * path.stat().st_size / _SAMPLE


def _big_files(home: Home) -> list[Path]:
    folder = home.drop / "kim_kyungho"
    folder.mkdir(parents=True)
    first = _sparse(folder / "big 00.wav")
    per_file = _seconds_to_hash(first)
    count = max(2, math.ceil(3 * STOP_WITHIN / per_file))
    files = [first] + [_sparse(folder / f"big {i:02d}.wav") for i in range(1, count)]
    assert first.stat().st_blocks * 512 < 1 << 20  # sparse: nothing real was written
    return files


def _sparse(path: Path) -> Path:
    path.touch(exist_ok=False)
    os.truncate(path, COPY_LIMIT)  # exactly at the limit: it is hashed, not refused
    return path


def _hashing(d: DaemonProc, files: list[Path]) -> bool:
    names = {os.path.realpath(f) for f in files}  # macOS: /tmp is /private/tmp
    try:
        return any(f.path in names for f in psutil.Process(d.proc.pid).open_files())
    except psutil.NoSuchProcess:
        return False


def _rows(home: Home) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(home.state / "ledger.sqlite3")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT state, sha256 FROM files ORDER BY relpath").fetchall()
    finally:
        conn.close()


def _stop_while_hashing(d: DaemonProc, files: list[Path]) -> float:
    wait_until(lambda: _hashing(d, files) or not d.alive(), 60, message="daemon hashing")
    assert d.alive(), d.output()
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(STOP_WITHIN + 5) == 0, d.output()
    return time.monotonic() - t0


def test_sigterm_while_hashing_stops_in_time_and_leaves_the_files_for_next_start(
        home: Home, run_daemon: Callable[..., DaemonProc]) -> None:
    files = _big_files(home)
    d = run_daemon()
    took = _stop_while_hashing(d, files)
    assert took < STOP_WITHIN, f"stopped {took:.1f} s after SIGTERM"
    assert "stopped mid-batch" in _log(home)
    # Nothing half-recorded: every file is still only seen (no hash, no verdict), nothing was
    # rejected or stubbed, and no temp file of ours is left in the drop folder.
    assert [state for state, _ in _rows(home)] == ["seen"] * len(files)
    assert all(sha is None for _, sha in _rows(home))
    assert sorted(p.name for p in files[0].parent.iterdir()) == sorted(f.name for f in files)
    assert not home.rejected.exists() or not any(home.rejected.rglob("*"))
    # The next start takes the abandoned files up again (and stops as quickly).
    again = run_daemon()
    assert _stop_while_hashing(again, files) < STOP_WITHIN


def _log(home: Home) -> str:
    return "".join(p.read_text(encoding="utf-8", errors="replace")
                   for p in home.logs.glob("acewatchd.jsonl*"))
