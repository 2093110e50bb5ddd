"""Atomic, durable file writes and hashing.

Every file acewatchd writes goes through here: a dot-prefixed temp file in the same folder
(so the watcher ignores it and the rename stays on one filesystem), flush + fsync
(F_FULLFSYNC on macOS, where plain fsync does not reach the disk), then os.replace.
Bulk stub writing uses ``create_temp`` + ``link_temp`` instead: on Linux the temp file is
unnamed (O_TMPFILE) until it is durable and linked, so it is never visible at all. Those
files get plain fsyncs, and the batch that wrote them one ``barrier`` before its ledger
commit: on macOS F_FULLFSYNC flushes the whole drive cache and costs milliseconds, so one
per batch instead of one per file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import os
import sqlite3
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".acewatchd-tmp-"
_CHUNK = 1 << 20
_SEQ = itertools.count()  # next() on a count is atomic under the GIL: safe from worker threads
_PROC_FD = "/proc/self/fd"
_O_TMPFILE: int = getattr(os, "O_TMPFILE", 0)
_anonymous = bool(_O_TMPFILE) and os.path.isdir(_PROC_FD)  # unnamed temp files (Linux)
# Only macOS has (and needs) F_FULLFSYNC: its plain fsync leaves data in the drive's cache.
_FULLFSYNC: int | None = getattr(fcntl, "F_FULLFSYNC", None) if sys.platform == "darwin" \
    else None


def full_fsync(fd: int) -> None:
    """Data of ``fd`` on the disk itself: F_FULLFSYNC on macOS, else fsync."""
    if _FULLFSYNC is not None:
        try:
            fcntl.fcntl(fd, _FULLFSYNC)
            return
        except OSError:  # a filesystem without it (some network mounts): the best there is
            pass
    os.fsync(fd)


def barrier(folders: Iterable[Path]) -> None:
    """Make a batch durable: the names linked into ``folders`` (plain fsync of each folder)
    and, on macOS, every write issued so far, with one F_FULLFSYNC per drive — it flushes the
    whole drive cache, so the plain fsyncs of the batch's files reach the disk with it.
    Called once per batch, before the ledger commit that records the files."""
    drives: dict[int, Path] = {}
    for folder in folders:
        fsync_dir(folder)
        try:
            drives.setdefault(os.stat(folder).st_dev, folder)
        except OSError:
            continue
    if _FULLFSYNC is None:
        return
    for folder in drives.values():
        _full_flush(folder)


def _full_flush(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        full_fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_temp(folder: Path, data: bytes) -> tuple[int, str]:
    """A new temp file in ``folder`` holding ``data`` (not yet fsync'd): its still-open fd and
    its dot-prefixed path, or "" for an unnamed one (Linux O_TMPFILE). Give it its real name
    with ``link_temp``."""
    fd, name = _open_temp(folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        if name:
            os.unlink(name)
        raise
    return fd, name


def link_temp(fd: int, tmp: str, path: Path) -> None:
    """Link the temp file at ``path``; FileExistsError if that name is taken (never replaces)."""
    global _anonymous
    if tmp:
        os.link(tmp, path)
        return
    # Python 3.11 only calls linkat (which AT_SYMLINK_FOLLOW needs) when given a dir fd.
    proc = os.open(_PROC_FD, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
    except FileExistsError:
        raise
    except OSError:
        _anonymous = False  # this system cannot link them: named temps from now on
        raise
    finally:
        os.close(proc)


def _open_temp(folder: Path) -> tuple[int, str]:
    # An unnamed file never appears in the folder: no watch events for it while it is written,
    # and nothing to clean up after a kill -9. Elsewhere: pid + sequence names, so one O_EXCL
    # open normally suffices (mkstemp's random names cost ~20 us of Python each); a leftover
    # of an earlier process with the same pid only sends us to mkstemp.
    if _anonymous:
        try:
            return os.open(folder, _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666), ""
        except OSError:  # this filesystem has no O_TMPFILE (EOPNOTSUPP, EISDIR on old kernels)
            pass
    name = os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}-{next(_SEQ)}")
    try:
        return os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666), name
    except FileExistsError:
        return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = True,
                       mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` atomically. With overwrite=False an existing file wins and
    False is returned (os.link refuses to replace, so a racing user file is never clobbered).
    ``mode``: mkstemp makes 0600 files; what acewatchd writes (pages, clips, stubs) is read by
    the user's other programs (a local web server, an editor), like the files around it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            full_fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        fsync_dir(path.parent)
        return True
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True,
                      mode: int = 0o644) -> bool:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite, mode=mode)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket, a folder or (with follow=False) a symlink."""


def open_regular(path: Path, *, follow: bool = True) -> int:
    """A read-only fd for ``path`` if it is a regular file, else NotRegularFile (or the
    OSError of the open). O_NONBLOCK: opening a FIFO never waits for a writer; with
    follow=False O_NOFOLLOW refuses a symlink (a link to /dev/zero is never read)."""
    flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise NotRegularFile(errno.ELOOP, "it is a symbolic link", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "it is not a regular file", str(path))
    return fd


def read_regular(path: Path, limit: int, *, follow: bool = False) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; OSError otherwise (a larger
    file raises EFBIG without being read)."""
    fd = open_regular(path, follow=follow)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"it is larger than {limit} bytes", str(path))
    return data


class Abandoned(Exception):
    """A long read was given up because the process is stopping (not an OSError: the file
    is fine, and is simply read again at the next start)."""


def sha256_file(path: Path, *, follow: bool = True, limit: int | None = None,
                stop: threading.Event | None = None) -> str:
    """sha256 of a regular file (never blocks on a FIFO or reads a device); with ``limit``
    a larger file raises EFBIG without being read. ``stop`` is checked between 1 MB chunks,
    so a multi-GB file on a slow disk does not hold up a SIGTERM: Abandoned is raised."""
    with os.fdopen(open_regular(path, follow=follow), "rb") as fh:
        if limit is not None and os.fstat(fh.fileno()).st_size > limit:
            raise OSError(errno.EFBIG, f"it is larger than {limit} bytes", str(path))
        return sha256_stream(fh, stop=stop, name=path)


def sha256_stream(fh: BinaryIO, *, stop: threading.Event | None = None,
                  name: Path | str = "the file") -> str:
    """sha256 of an open file from its start to its end (its position ends at the end);
    ``stop`` as for sha256_file, ``name`` for its message."""
    digest = hashlib.sha256()
    fh.seek(0)
    while chunk := fh.read(_CHUNK):
        if stop is not None and stop.is_set():
            raise Abandoned(f"{name}: stopped while hashing it")
        digest.update(chunk)
    return digest.hexdigest()


FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from a write, or SQLite's SQLITE_FULL ("database or disk is full"):
    a condition of the disk, never a verdict on the file being written."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return False


def is_own_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)
