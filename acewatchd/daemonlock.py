"""Single instance per home: an flock on state/acewatchd.lock.

flock is released by the kernel when the process dies (kill -9 included), so a stale lock file
never blocks a restart. The holder's pid is written into the file for the error message and for
`acewatchd status` ("daemon running, pid N").
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from acewatchd.errors import AlreadyRunning

LOCK_NAME = "acewatchd.lock"


def holder_pid(state_dir: Path) -> int | None:
    """pid of the live process holding the lock, or None (no daemon running)."""
    path = Path(state_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(path) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _try_lock(fd: int) -> bool:
    # A few quick retries: `acewatchd status` holds a shared lock for microseconds to test it.
    for attempt in range(5):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.05 * (attempt + 1))
    return False


class InstanceLock:
    def __init__(self, state_dir: Path, purpose: str = "run") -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self.purpose = purpose
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            pid = _read_pid(self.path)
            raise AlreadyRunning(
                f"acewatchd is already running on this home (pid {pid or '?'}, lock "
                f"{self.path}); it ingests and rescans on its own, so this `{self.purpose}` "
                "is not needed") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None
