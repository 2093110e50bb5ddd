"""Group the ledger writes of many files into one transaction (ingest throughput).

With synchronous=FULL every commit is an fsync of the WAL; five per file dominated ingest time.
Inside ``Writer.batch()`` the per-file writes share one transaction, and the folders of new
stubs get one ``barrier`` just before that commit (a plain fsync per folder; on macOS also one
F_FULLFSYNC, which flushes the drive cache for all the batch's plainly fsync'd files at once).
Crash safety is unchanged: stubs are on disk before the ledger says so, so a kill -9 or power
cut mid-batch only loses ledger rows, and the next pass finds the stubs and records them again
(stubs.write_stubs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acewatchd.ledger.db import Ledger
from acewatchd.ledger.events import EventLevel, insert_event
from acewatchd.util.files import barrier


class Writer:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._conn: sqlite3.Connection | None = None
        self._dirs: set[Path] = set()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """The batch's transaction if one is open, else a transaction of its own."""
        if self._conn is not None:
            yield self._conn
            return
        with self.ledger.tx() as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        if self._conn is not None:  # already batching: join it
            yield
            return
        with self.ledger.tx() as conn:
            self._conn = conn
            try:
                yield
                barrier(self._dirs)  # the stubs durable before the ledger commits them
            finally:
                self._conn = None
                self._dirs.clear()

    def wrote_in(self, folder: Path) -> None:
        """A file was linked into ``folder``: make it durable now, or once at the batch's end."""
        if self._conn is not None:
            self._dirs.add(folder)
        else:
            barrier([folder])

    def event(self, level: EventLevel, message: str, dataset: str | None = None,
              subject: str | None = None) -> None:
        """ledger.record_event, but inside the current batch."""
        with self.tx() as conn:
            insert_event(conn, level, message, dataset, subject)
