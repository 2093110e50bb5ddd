"""A full disk while the daemon runs: one warning, a pause, and a catch-up once space is back.

Every write of a batch (stubs, the ledger's commit) fails the same way on a full disk, so a
traceback per file per poll would only fill the log (and the same full disk) faster. Instead
the first failure is logged once, naming the path and "no space left on device"; the files of
the failed batch are left to the reconciliation scan (nothing of theirs was recorded, and the
stubs already written stay). While the disk is full the daemon checks the free space every few
seconds and asks for that scan as soon as some came back, so it catches up without a restart.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from acewatchd.util.diskspace import free_bytes

logger = logging.getLogger(__name__)

# Free space that counts as "space is back": enough for a batch of stubs and its WAL pages.
ROOM_BYTES = 256 * 1024


class DiskFull:
    """Remembers whether the disk is full, so that the condition is said once, not per file."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._free_then: int = 0

    @property
    def full(self) -> bool:
        return self.path is not None

    def hit(self, exc: BaseException, fallback: Path) -> None:
        """A write failed with a full disk; ``fallback`` names where when the error does not
        (a write to an unnamed temp file, an SQLite commit)."""
        filename = exc.filename if isinstance(exc, OSError) else None
        path = Path(os.fsdecode(filename)) if filename else fallback
        if self.path is None:
            logger.warning("%s: no space left on device; ingest pauses and catches up by "
                           "itself once space is freed", path, extra={"path": str(path)})
        self.path = path
        self._free_then = free_bytes(path.parent) or 0

    def room_again(self) -> bool:
        """While full: whether enough space came back to try again (checked by the caller
        every few seconds)."""
        if self.path is None:
            return False
        free = free_bytes(self.path.parent)
        if free is None or free < self._free_then + ROOM_BYTES:
            return False
        self._free_then = free  # one rescan per freeing, not one every few seconds
        return True

    def cleared(self) -> None:
        """A batch was written again: the condition is over."""
        if self.path is not None:
            logger.info("space is available again; ingest goes on",
                        extra={"path": str(self.path)})
            self.path = None
