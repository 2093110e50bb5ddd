"""How fast a training run goes: its sessions (one per night) and their epoch timings.

The forecast (nightly/forecast.py) turns these into "about 2 more nights"; this module only
reads. Functions take a connection so both the daemon (``Ledger.connect()``) and `acewatchd
status` (a read-only connection) can ask.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Session:
    """One night's training session of a run and the (time, epoch) points it logged."""

    id: int
    started: float | None
    ended: float | None
    outcome: str | None
    epochs_total: int | None
    epochs_done: int | None   # when closed: the checkpoint a resume keeps
    points: list[tuple[float, int]] = field(default_factory=list)


@dataclass(frozen=True)
class RunPace:
    dataset: str
    run_name: str
    sessions: list[Session]   # oldest first

    @property
    def epochs_total(self) -> int | None:
        totals = [s.epochs_total for s in self.sessions if s.epochs_total]
        return totals[-1] if totals else None


def newest_run_pace(conn: sqlite3.Connection, dataset: str) -> RunPace | None:
    """The sessions of the dataset's newest named training run, with their progress."""
    row = conn.execute("SELECT run_name FROM runs WHERE dataset=? AND job='train' AND run_name"
                       " IS NOT NULL AND run_name != '' ORDER BY id DESC LIMIT 1",
                       (dataset,)).fetchone()
    if row is None:
        return None
    return run_pace(conn, dataset, str(row[0]))


def run_pace(conn: sqlite3.Connection, dataset: str, run_name: str) -> RunPace:
    rows = conn.execute(
        "SELECT id, started, ended, outcome, epochs_total, epochs_done FROM runs WHERE "
        "dataset=? AND job='train' AND run_name=? ORDER BY id", (dataset, run_name)).fetchall()
    sessions: list[Session] = []
    for r in rows:
        points = conn.execute("SELECT ts, epoch FROM progress WHERE run_id=? AND epoch IS NOT "
                              "NULL ORDER BY ts, rowid", (r[0],)).fetchall()
        sessions.append(Session(int(r[0]), r[1], r[2], r[3], r[4], r[5],
                                [(float(p[0]), int(p[1])) for p in points]))
    return RunPace(dataset, run_name, sessions)


def datasets_with_runs(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT DISTINCT dataset FROM runs WHERE job='train' AND run_name IS "
                        "NOT NULL AND run_name != ''").fetchall()
    return sorted(str(r[0]) for r in rows)
