"""The files and stubs tables: what ingest knows about each song and the stubs it wrote.

A file row moves through seen -> settled -> valid | rejected -> stubbed, and to gone when it
leaves drop/. Its (size, mtime_ns, inode) is the signature a finished row is trusted by: a
rescan skips a file whose signature still matches without reading it. A stub row holds the
sha256 of the text acewatchd wrote, so a stub whose content differs is the user's. A stale
review is a stub the user edited, kept when its song's content changed under it.

Every function takes the connection to use and neither begins nor commits: ingest calls them
inside ``Writer.tx()`` so that a whole batch of files is one transaction (one fsync).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# skipped: an audio file whose extension is not taken ([watch] extensions); its reason says
# what to do, and it is never read.
FileState = Literal["seen", "settled", "valid", "rejected", "stubbed", "gone", "skipped"]
FILE_STATES: tuple[FileState, ...] = ("seen", "settled", "valid", "rejected", "stubbed", "gone",
                                      "skipped")

FileKey = tuple[str, str]  # (dataset, NFC relpath)
Signature = tuple[int, int, int]  # size, mtime_ns, inode (as ingest.settle computes it)


@dataclass(frozen=True)
class FileRow:
    """One row of ``files``; size/mtime_ns/inode/sha256 are None until the file settled."""

    dataset: str
    relpath: str
    size: int | None
    mtime_ns: int | None
    inode: int | None
    sha256: str | None
    state: FileState
    reason: str | None
    duration: float | None
    first_seen: float
    updated: float

    @property
    def signature(self) -> tuple[int | None, int | None, int | None]:
        return (self.size, self.mtime_ns, self.inode)


_FILE_COLUMNS = ("dataset, relpath, size, mtime_ns, inode, sha256, state, reason, duration, "
                 "first_seen, updated")


def _file_row(row: sqlite3.Row) -> FileRow:
    return FileRow(*row)  # selected as _FILE_COLUMNS, the fields' order


def file_row(conn: sqlite3.Connection, dataset: str, relpath: str) -> FileRow | None:
    row = conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE dataset=? AND relpath=?",
                       (dataset, relpath)).fetchone()
    return None if row is None else _file_row(row)


def upsert_file(conn: sqlite3.Connection, dataset: str, relpath: str, *, state: FileState,
                sig: Signature | None = None, sha: str | None = None, reason: str | None = None,
                duration: float | None = None) -> None:
    """Create or move a file's row to ``state``. The reason is replaced (None clears it);
    signature, hash and duration left None keep their stored values."""
    size, mtime_ns, inode = sig or (None, None, None)
    now = time.time()
    conn.execute(
        "INSERT INTO files (dataset, relpath, size, mtime_ns, inode, sha256, state, reason,"
        " duration, first_seen, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(dataset, relpath) DO UPDATE SET state=excluded.state, "
        "reason=excluded.reason, updated=excluded.updated, "
        "size=coalesce(excluded.size, size), mtime_ns=coalesce(excluded.mtime_ns, "
        "mtime_ns), inode=coalesce(excluded.inode, inode), sha256=coalesce("
        "excluded.sha256, sha256), duration=coalesce(excluded.duration, duration)",
        (dataset, relpath, size, mtime_ns, inode, sha, state, reason, duration, now, now))


def set_file_state(conn: sqlite3.Connection, dataset: str, relpath: str,
                   state: FileState) -> None:
    """Only the state (and its time): a file that vanished keeps what was known about it."""
    conn.execute("UPDATE files SET state=?, updated=? WHERE dataset=? AND relpath=?",
                 (state, time.time(), dataset, relpath))


def missing_files(conn: sqlite3.Connection, present: set[FileKey]) -> list[FileKey]:
    """Rows not yet gone whose file a full walk of drop/ did not find."""
    rows = conn.execute("SELECT dataset, relpath FROM files WHERE state != 'gone'").fetchall()
    return [(str(r[0]), str(r[1])) for r in rows if (r[0], r[1]) not in present]


def mark_gone(conn: sqlite3.Connection, keys: Iterable[FileKey]) -> None:
    now = time.time()
    conn.executemany("UPDATE files SET state='gone', updated=? WHERE dataset=? AND relpath=?",
                     [(now, dataset, relpath) for dataset, relpath in keys])


def rows_with_sha(conn: sqlite3.Connection, sha: str) -> list[FileRow]:
    """Every row of this content, in any dataset: rows still live first, then the newest."""
    rows = conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE sha256=? ORDER BY "
                        "state = 'gone', updated DESC", (sha,)).fetchall()
    return [_file_row(r) for r in rows]


def stubbed_files(conn: sqlite3.Connection, dataset: str) -> list[FileRow]:
    """A dataset's finished songs with a content hash, in the order they were first seen
    (of two copies of one song, the earlier is the one used)."""
    rows = conn.execute(
        f"SELECT {_FILE_COLUMNS} FROM files WHERE dataset=? AND state='stubbed' AND "
        "sha256 IS NOT NULL ORDER BY first_seen, relpath", (dataset,)).fetchall()
    return [_file_row(r) for r in rows]


def files_in_state(conn: sqlite3.Connection, state: FileState) -> list[FileRow]:
    rows = conn.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE state=?", (state,))
    return [_file_row(r) for r in rows]


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Files per state, gone included (what `acewatchd scan` prints)."""
    rows = conn.execute("SELECT state, count(*) FROM files GROUP BY state").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


# ---------------------------------------------------------------- stubs


@dataclass(frozen=True)
class StubRow:
    """One row of ``stubs``: a caption or lyrics file acewatchd wrote, and what it wrote."""

    dataset: str
    relpath: str      # the audio file the stub belongs to
    kind: str         # caption | lyrics
    stub_path: str
    sha256: str
    written: float
    note: str = ""    # its song's ``files.reason`` (for a stubbed song: see ingest.stubs)


def stub_hash(conn: sqlite3.Connection, dataset: str, relpath: str, kind: str) -> str | None:
    """The sha256 of the stub acewatchd wrote for this song and kind, None if it wrote none."""
    row = conn.execute("SELECT sha256 FROM stubs WHERE dataset=? AND relpath=? AND kind=?",
                       (dataset, relpath, kind)).fetchone()
    return None if row is None else str(row[0])


def record_stub(conn: sqlite3.Connection, dataset: str, relpath: str, kind: str,
                stub_path: str, sha256: str) -> None:
    conn.execute("INSERT INTO stubs (dataset, relpath, kind, stub_path, sha256, written) "
                 "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(dataset, relpath, kind) DO UPDATE SET "
                 "stub_path=excluded.stub_path, sha256=excluded.sha256, "
                 "written=excluded.written",
                 (dataset, relpath, kind, stub_path, sha256, time.time()))


def stub_record(conn: sqlite3.Connection, dataset: str, relpath: str,
                kind: str) -> StubRow | None:
    row = conn.execute("SELECT dataset, relpath, kind, stub_path, sha256, written FROM stubs "
                       "WHERE dataset=? AND relpath=? AND kind=?",
                       (dataset, relpath, kind)).fetchone()
    return None if row is None else StubRow(*row)


def move_stub(conn: sqlite3.Connection, old: FileKey, new: FileKey, kind: str,
              stub_path: str) -> None:
    """A stub followed its song to a new name: its row (and any stale review) follows too."""
    for table in ("stubs", "stale_reviews"):
        conn.execute(f"DELETE FROM {table} WHERE dataset=? AND relpath=? AND kind=?",
                     (*new, kind))
        conn.execute(f"UPDATE {table} SET dataset=?, relpath=?, stub_path=? WHERE dataset=? "
                     "AND relpath=? AND kind=?", (*new, stub_path, *old, kind))


def forget_stub(conn: sqlite3.Connection, dataset: str, relpath: str, kind: str) -> None:
    """The stub is gone (removed as an untouched copy of what acewatchd wrote)."""
    for table in ("stubs", "stale_reviews"):
        conn.execute(f"DELETE FROM {table} WHERE dataset=? AND relpath=? AND kind=?",
                     (dataset, relpath, kind))


# ---------------------------------------------------------------- stale reviews


@dataclass(frozen=True)
class StaleReview:
    """A stub the user edited, kept when the song's content changed (status lists it while
    the stub still holds ``stub_sha256``: editing it again is the user's new review)."""

    dataset: str
    relpath: str
    kind: str
    stub_path: str
    stub_sha256: str
    old_sha256: str | None
    new_sha256: str
    since: float


STALE_COLUMNS = ("dataset, relpath, kind, stub_path, stub_sha256, old_sha256, new_sha256, "
                 "since")


def record_stale_review(conn: sqlite3.Connection, review: StaleReview) -> None:
    conn.execute(f"INSERT OR REPLACE INTO stale_reviews ({STALE_COLUMNS}) VALUES "
                 "(?, ?, ?, ?, ?, ?, ?, ?)",
                 (review.dataset, review.relpath, review.kind, review.stub_path,
                  review.stub_sha256, review.old_sha256, review.new_sha256, review.since))
