"""Group the ledger writes of many files into one transaction (ingest throughput).

With synchronous=FULL every commit is an fsync of the WAL; five per file dominated ingest time.
Inside ``Writer.batch()`` the per-file writes share one transaction, and the folder fsyncs of
new stubs are done once per folder just before that commit. Crash safety is unchanged: stubs
are written (file fsync'd) before the ledger says so, so a kill -9 mid-batch only loses ledger
rows, and the next pass finds the stubs and records them again (stubs.write_stubs).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acewatchd.ledger.db import Ledger
from acewatchd.ledger.events import EventLevel, insert_event
from acewatchd.util.files import fsync_dir


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
                for folder in self._dirs:  # durable names before the ledger commits them
                    fsync_dir(folder)
            finally:
                self._conn = None
                self._dirs.clear()

    def wrote_in(self, folder: Path) -> None:
        """A file was linked into ``folder``: fsync it now, or once at the batch's end."""
        if self._conn is not None:
            self._dirs.add(folder)
        else:
            fsync_dir(folder)

    def event(self, level: EventLevel, message: str, dataset: str | None = None,
              subject: str | None = None) -> None:
        """ledger.record_event, but inside the current batch."""
        with self.tx() as conn:
            insert_event(conn, level, message, dataset, subject)
