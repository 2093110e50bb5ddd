"""Every lock acewatchd takes, on one flock helper.

flock is released by the kernel when the process dies (kill -9 included), so a stale lock file
never blocks a restart. The locks, from widest to narrowest:

- ``InstanceLock``: one daemon (or `scan`) per home, ``state/acewatchd.lock``; the holder's pid
  is written into the file for the error message and for `acewatchd status`.
- ``JobLock``: one training job per machine, ``state/job.lock`` (the daemon or `train --now`).
- ``dataset_lock``: one prepare per dataset folder, one render per outbox dataset folder.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from acewatchd.errors import AcewatchdError, AlreadyRunning

LOCK_NAME = "acewatchd.lock"        # the instance lock, in state/
JOB_LOCK_NAME = "job.lock"          # the training job lock, in state/


class FileLock:
    """An exclusive flock on ``path``, optionally recording the holder's pid in the file."""

    def __init__(self, path: Path, *, write_pid: bool = False) -> None:
        self.path = Path(path)
        self.write_pid = write_pid
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, retries: int = 0) -> bool:
        """Take the lock without blocking (a few short retries if asked); False if taken."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # read-only, full, or a file where the folder should be
            raise AcewatchdError(f"{self.path}: cannot create the lock file ({exc}); check "
                                 f"that {self.path.parent} is a writable folder") from exc
        for attempt in range(retries + 1):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == retries:
                    os.close(fd)
                    return False
                time.sleep(0.05 * (attempt + 1))
        if self.write_pid:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def holder(self) -> int | None:
        """The pid written by the holder, if any."""
        return read_pid(self.path)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def holder_pid(state_dir: Path) -> int | None:
    """pid of the live process holding the instance lock, or None (no daemon running);
    -1 when it is held but the pid cannot be read."""
    path = Path(state_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_pid(path) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class InstanceLock:
    """Single instance per home."""

    def __init__(self, state_dir: Path, purpose: str = "run") -> None:
        self._lock = FileLock(Path(state_dir) / LOCK_NAME, write_pid=True)
        self.path = self._lock.path
        self.purpose = purpose

    def __enter__(self) -> Self:
        # A few quick retries: `acewatchd status` holds a shared lock for microseconds to test it.
        if not self._lock.try_acquire(retries=4):
            pid = self._lock.holder()
            raise AlreadyRunning(
                f"acewatchd is already running on this home (pid {pid or '?'}, lock "
                f"{self.path}); it ingests and rescans on its own, so this `{self.purpose}` "
                "is not needed") from None
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._lock.release()


class JobLock:
    """One training job at a time on this machine: state/job.lock."""

    def __init__(self, state_dir: Path) -> None:
        self._lock = FileLock(Path(state_dir) / JOB_LOCK_NAME, write_pid=True)
        self.path = self._lock.path

    def try_acquire(self) -> bool:
        return self._lock.try_acquire()

    def holder(self) -> str:
        pid = self._lock.holder()
        return str(pid) if pid else "?"

    def acquire(self) -> Self:
        if not self.try_acquire():
            raise AlreadyRunning(f"{self.path}: another training job is running "
                                 f"(pid {self.holder()}); try again when it has finished")
        return self

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextmanager
def dataset_lock(folder: Path, name: str, busy: str) -> Iterator[None]:
    """An exclusive lock file ``name`` inside ``folder`` (created); ``busy`` is the message of
    the AcewatchdError raised when another process holds it."""
    lock = FileLock(folder / name)
    if not lock.try_acquire():
        raise AcewatchdError(busy)
    try:
        yield
    finally:
        lock.release()
