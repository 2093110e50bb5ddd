"""Atomic, durable file writes and hashing.

Every file acewatchd writes goes through here: a dot-prefixed temp file in the same folder
(so the watcher ignores it and the rename stays on one filesystem), flush + fsync
(F_FULLFSYNC on macOS, where plain fsync does not reach the disk), then os.replace.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import tempfile
from pathlib import Path

TEMP_PREFIX = ".acewatchd-tmp-"
_CHUNK = 1 << 20
_SEQ = itertools.count()  # next() on a count is atomic under the GIL: safe from worker threads


def full_fsync(fd: int) -> None:
    if sys.platform == "darwin":
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass
    os.fsync(fd)


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
    """A new dot-prefixed temp file in ``folder`` holding ``data`` (not yet fsync'd); returns
    its still-open fd and path. Names are pid + sequence, so one O_EXCL open normally suffices
    (mkstemp's random names cost ~20 us of Python each); a leftover of an earlier process with
    the same pid only sends us to mkstemp."""
    name = os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}-{next(_SEQ)}")
    try:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    return fd, name


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically. With overwrite=False an existing file wins and
    False is returned (os.link refuses to replace, so a racing user file is never clobbered)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
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


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True) -> bool:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_own_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)
