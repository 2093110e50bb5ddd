"""The ledger: SQLite under state/, the record of what acewatchd has seen and done.

WAL + synchronous=FULL so a kill -9 never loses a committed transition. One connection per
thread (sqlite3 objects are not shared across threads); ``Ledger.connect()`` hands each caller
its own. The schema is versioned; ``SCHEMA`` grows by appending migrations, never editing them.

Per-file states: seen -> settled -> valid | rejected -> stubbed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DB_NAME = "ledger.sqlite3"
FILE_STATES = ("seen", "settled", "valid", "rejected", "stubbed", "gone")

# Each entry is one migration; the schema version is its index + 1.
SCHEMA: list[str] = [
    """
    CREATE TABLE files (
        dataset     TEXT NOT NULL,
        relpath     TEXT NOT NULL,          -- NFC-normalised path relative to drop/<dataset>/
        size        INTEGER,
        mtime_ns    INTEGER,
        inode       INTEGER,
        sha256      TEXT,
        state       TEXT NOT NULL,
        reason      TEXT,
        duration    REAL,
        first_seen  REAL NOT NULL,
        updated     REAL NOT NULL,
        PRIMARY KEY (dataset, relpath)
    );
    CREATE INDEX files_sha ON files (dataset, sha256);
    CREATE TABLE stubs (
        dataset     TEXT NOT NULL,
        relpath     TEXT NOT NULL,          -- the audio file the stub belongs to
        kind        TEXT NOT NULL,          -- caption | lyrics
        stub_path   TEXT NOT NULL,
        sha256      TEXT NOT NULL,          -- of the text acewatchd wrote
        written     REAL NOT NULL,
        PRIMARY KEY (dataset, relpath, kind)
    );
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        ts          REAL NOT NULL,
        level       TEXT NOT NULL,
        dataset     TEXT,
        subject     TEXT,
        message     TEXT NOT NULL
    );
    CREATE TABLE samples (
        dataset     TEXT NOT NULL,
        sha256      TEXT NOT NULL,          -- audio content hash
        sample_id   TEXT NOT NULL,          -- 8 hex, names the .pt
        inputs_hash TEXT,                   -- audio+caption+lyrics+preprocess params
        status      TEXT NOT NULL,          -- staged | preprocessed | failed | excluded
        precision   TEXT,
        reason      TEXT,
        updated     REAL NOT NULL,
        PRIMARY KEY (dataset, sha256)
    );
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset       TEXT NOT NULL,
        job           TEXT NOT NULL,        -- nightly | train | render | prepare
        scheduled_for REAL,
        started       REAL,
        ended         REAL,
        outcome       TEXT,                 -- running | done | failed | interrupted | skipped
        content_hash  TEXT,
        run_name      TEXT,
        epochs_total  INTEGER,
        epochs_done   INTEGER,
        checkpoint    TEXT,
        message       TEXT
    );
    CREATE INDEX runs_dataset ON runs (dataset, id);
    CREATE TABLE progress (
        run_id      INTEGER NOT NULL,
        ts          REAL NOT NULL,
        epoch       INTEGER,
        epochs      INTEGER,
        step        INTEGER,
        loss        REAL,
        eta         TEXT
    );
    CREATE INDEX progress_run ON progress (run_id);
    CREATE TABLE kv (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL,
        updated     REAL NOT NULL
    );
    """,
]


class Ledger:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: writers serialise instead of failing mid-way."""
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self.connect().execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        conn = self.connect()
        version = self.schema_version()
        if version > len(SCHEMA):
            from acewatchd.errors import AcewatchdError

            raise AcewatchdError(f"{self.path}: ledger schema v{version} is newer than this "
                                 f"acewatchd (v{len(SCHEMA)}); upgrade acewatchd")
        for index in range(version, len(SCHEMA)):
            conn.executescript("BEGIN IMMEDIATE;" + SCHEMA[index] +
                               f";PRAGMA user_version={index + 1};COMMIT;")

    # ---- small shared helpers every stage uses

    def record_event(self, level: str, message: str, dataset: str | None = None,
                     subject: str | None = None) -> None:
        """User-facing problems for `status` ("recent errors"); logs carry the detail."""
        with self.tx() as conn:
            conn.execute("INSERT INTO events (ts, level, dataset, subject, message) "
                         "VALUES (?, ?, ?, ?, ?)", (time.time(), level, dataset, subject, message))
            conn.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - 1000")

    def set_kv(self, key: str, value: str) -> None:
        with self.tx() as conn:
            conn.execute("INSERT INTO kv (key, value, updated) VALUES (?, ?, ?) ON CONFLICT(key)"
                         " DO UPDATE SET value=excluded.value, updated=excluded.updated",
                         (key, value, time.time()))

    def get_kv(self, key: str) -> str | None:
        row = self.connect().execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])
