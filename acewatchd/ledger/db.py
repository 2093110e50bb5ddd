"""The ledger: SQLite under state/, the record of what acewatchd has seen and done.

WAL + synchronous=FULL so a kill -9 never loses a committed transition. One connection per
thread (sqlite3 objects are not shared across threads); ``Ledger.connect()`` hands each caller
its own. The schema is versioned; ``SCHEMA`` grows by appending migrations, never editing them.

This module owns the connection, transactions, migrations and the read-only open; the queries
are beside it, one module per table group: ``files`` (files, stubs and stale reviews: the
per-file states seen -> settled -> valid | rejected -> stubbed -> gone), ``samples``, ``runs``,
``events`` (events + kv) and ``report`` (the read-only report queries).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acewatchd.errors import AcewatchdError
from acewatchd.ledger import events
from acewatchd.ledger.events import EventLevel

DB_NAME = "ledger.sqlite3"

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
    # 2: a song whose content changed while the user had edited its caption or lyrics (the
    # edit is kept, status says the two may no longer match); events looked up by the file
    # they are about, so a file's stale ingest warnings are dropped once it is stubbed; and
    # files by content alone, so a new name is matched to a moved song in any dataset.
    """
    CREATE TABLE stale_reviews (
        dataset     TEXT NOT NULL,
        relpath     TEXT NOT NULL,          -- the audio file whose content changed
        kind        TEXT NOT NULL,          -- caption | lyrics
        stub_path   TEXT NOT NULL,
        stub_sha256 TEXT NOT NULL,          -- the user's stub when the song changed
        old_sha256  TEXT,                   -- the audio it was reviewed with
        new_sha256  TEXT NOT NULL,
        since       REAL NOT NULL,
        PRIMARY KEY (dataset, relpath, kind)
    );
    CREATE INDEX events_subject ON events (dataset, subject);
    CREATE INDEX files_sha_any ON files (sha256);
    """,
]


class Ledger:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / DB_NAME
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:  # read-only, full, or not a folder at all
            self.close()
            raise AcewatchdError(
                f"{self.path}: cannot open the ledger for writing ({exc}); check that "
                f"{self.path.parent} is a writable folder ([paths] state) and the disk has "
                "room") from exc

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
            raise AcewatchdError(f"{self.path}: ledger schema v{version} is newer than this "
                                 f"acewatchd (v{len(SCHEMA)}); upgrade acewatchd")
        for index in range(version, len(SCHEMA)):
            conn.executescript("BEGIN IMMEDIATE;" + SCHEMA[index] +
                               f";PRAGMA user_version={index + 1};COMMIT;")

    # ---- small shared helpers every stage uses (the SQL is in ledger/events.py)

    def record_event(self, level: EventLevel, message: str, dataset: str | None = None,
                     subject: str | None = None) -> None:
        """User-facing problems for `status` ("recent errors"); logs carry the detail."""
        with self.tx() as conn:
            events.insert_event(conn, level, message, dataset, subject)

    def set_kv(self, key: str, value: str) -> None:
        """``key``: one of the ``events.KV_*`` constants."""
        with self.tx() as conn:
            events.set_kv(conn, key, value)

    def get_kv(self, key: str) -> str | None:
        return events.get_kv(self.connect(), key)


def open_readonly(state_dir: Path, timeout: float = 10) -> sqlite3.Connection | None:
    """The ledger opened ``mode=ro`` (never a write lock, never creates it), for readers in
    another process (``status``, the demo's follower); None if it is not there or its schema
    is not created yet. The caller closes it."""
    db = Path(state_dir) / DB_NAME
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error:
        return None
    try:
        conn.execute("SELECT 1 FROM files LIMIT 1")
    except sqlite3.Error:
        conn.close()
        return None
    conn.row_factory = sqlite3.Row
    return conn
