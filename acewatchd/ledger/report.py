"""Read-only queries for the ledger's readers outside the daemon: `acewatchd status` and what
`acewatchd demo` prints while it waits.

They run over a connection from ``db.open_readonly`` (another process may be writing) and
return frozen rows; turning them into the status report or the demo's sentences is the
caller's business. Queries another part also needs live with their table (``files``,
``events``); these are the ones only a report asks.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields

from acewatchd.ledger.files import STALE_COLUMNS, StaleReview, StubRow
from acewatchd.ledger.runs import RunRow


@dataclass(frozen=True)
class StateCount:
    dataset: str
    state: str
    count: int


@dataclass(frozen=True)
class StubbedKinds:
    """A stubbed file and the kinds it has a stub row of (a kind without one: the user's)."""

    dataset: str
    relpath: str
    kinds: frozenset[str]


@dataclass(frozen=True)
class SkippedFile:
    """An audio file ingest does not take (its name), with the sentence saying why and the fix."""

    dataset: str
    relpath: str
    reason: str


@dataclass(frozen=True)
class EventRow:
    id: int
    ts: float
    level: str
    dataset: str | None
    subject: str | None
    message: str


@dataclass(frozen=True)
class ProgressRow:
    rowid: int
    run_id: int
    ts: float
    epoch: int | None
    epochs: int | None
    step: int | None
    loss: float | None
    eta: str | None


_RUN_SELECT = f"SELECT {', '.join(f.name for f in fields(RunRow))} FROM runs"
_PROGRESS_SELECT = "SELECT rowid, run_id, ts, epoch, epochs, step, loss, eta FROM progress"
_EVENT_SELECT = "SELECT id, ts, level, dataset, subject, message FROM events"


# ---- files and stubs


def live_state_counts(conn: sqlite3.Connection) -> list[StateCount]:
    """Files per (dataset, state), gone ones left out, in SQLite's GROUP BY order."""
    rows = conn.execute("SELECT dataset, state, count(*) FROM files WHERE state != 'gone'"
                        " GROUP BY dataset, state")
    return [StateCount(*r) for r in rows]


def live_stubs(conn: sqlite3.Connection) -> list[StubRow]:
    """The stubs acewatchd wrote for files still in drop/."""
    rows = conn.execute("SELECT s.dataset, s.relpath, s.kind, s.stub_path, s.sha256, s.written, "
                        "coalesce(f.reason, '') "
                        "FROM stubs s JOIN files f ON f.dataset=s.dataset AND "
                        "f.relpath=s.relpath WHERE f.state != 'gone'")
    return [StubRow(*r) for r in rows]


def skipped_files(conn: sqlite3.Connection) -> list[SkippedFile]:
    rows = conn.execute("SELECT dataset, relpath, coalesce(reason, '') FROM files "
                        "WHERE state='skipped' ORDER BY dataset, relpath")
    return [SkippedFile(*r) for r in rows]


def stubbed_kinds(conn: sqlite3.Connection) -> list[StubbedKinds]:
    rows = conn.execute("SELECT f.dataset, f.relpath, group_concat(s.kind) FROM files f "
                        "LEFT JOIN stubs s ON s.dataset=f.dataset AND s.relpath=f.relpath "
                        "WHERE f.state='stubbed' GROUP BY f.dataset, f.relpath").fetchall()
    return [StubbedKinds(r[0], r[1], frozenset((r[2] or "").split(","))) for r in rows]


def stale_reviews(conn: sqlite3.Connection) -> list[StaleReview]:
    """Edited stubs whose song changed after the edit, for files still in drop/."""
    cols = ", ".join(f"r.{c.strip()}" for c in STALE_COLUMNS.split(","))
    rows = conn.execute(f"SELECT {cols} FROM stale_reviews r JOIN files f ON "
                        "f.dataset=r.dataset AND f.relpath=r.relpath WHERE f.state != 'gone' "
                        "ORDER BY r.dataset, r.relpath, r.kind")
    return [StaleReview(*r) for r in rows]


# ---- events


def recent_problems(conn: sqlite3.Connection, limit: int) -> list[EventRow]:
    """The newest error and warning events, newest first."""
    rows = conn.execute(f"{_EVENT_SELECT} WHERE level IN ('error', 'warning') "
                        "ORDER BY id DESC LIMIT ?", (limit,))
    return [EventRow(*r) for r in rows]


def events_after(conn: sqlite3.Connection, after_id: int) -> list[EventRow]:
    rows = conn.execute(f"{_EVENT_SELECT} WHERE id > ? ORDER BY id", (after_id,))
    return [EventRow(*r) for r in rows]


# ---- runs, progress and samples


def all_runs(conn: sqlite3.Connection) -> list[RunRow]:
    return [RunRow(*r) for r in conn.execute(f"{_RUN_SELECT} ORDER BY id")]


def running_runs(conn: sqlite3.Connection) -> list[RunRow]:
    return [RunRow(*r) for r in conn.execute(f"{_RUN_SELECT} WHERE outcome='running' "
                                             "ORDER BY id")]


def finished_pipeline_runs(conn: sqlite3.Connection) -> list[RunRow]:
    """Finished nightly, manual (train --now) and render rows, oldest first; a duplicate fire
    time ('already') is no news and left out."""
    rows = conn.execute(f"{_RUN_SELECT} WHERE outcome NOT IN ('running', 'already') AND "
                        "job IN ('nightly', 'manual', 'render') ORDER BY id")
    return [RunRow(*r) for r in rows]


def latest_progress(conn: sqlite3.Connection, run_id: int) -> ProgressRow | None:
    row = conn.execute(f"{_PROGRESS_SELECT} WHERE run_id=? ORDER BY rowid DESC LIMIT 1",
                       (run_id,)).fetchone()
    return None if row is None else ProgressRow(*row)


def progress_after(conn: sqlite3.Connection, after_rowid: int) -> list[ProgressRow]:
    rows = conn.execute(f"{_PROGRESS_SELECT} WHERE rowid > ? ORDER BY rowid", (after_rowid,))
    return [ProgressRow(*r) for r in rows]


def preprocessed_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Per dataset, how many samples have a good tensor."""
    rows = conn.execute("SELECT dataset, count(*) FROM samples WHERE status='preprocessed' "
                        "GROUP BY dataset")
    return {str(r[0]): int(r[1]) for r in rows}
