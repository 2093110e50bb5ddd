"""The events and kv tables: the one event insert, and every kv key by name.

Events are the user-facing problems ``status`` lists ("recent errors"); logs carry the detail.
There is one insert, and it keeps the table at its last ``EVENTS_KEPT`` rows whoever writes
(``Ledger.record_event`` in its own transaction, ``Writer.event`` inside an ingest batch).

The kv table holds small facts one part writes and another reads (the scheduler's next fire
times for ``status``, the daemon's config state). Each key is a constant here, so a reader and
its writer cannot drift apart by a typo. Functions take the connection (or transaction) to use:
they never open or commit one themselves.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Literal

EventLevel = Literal["info", "warning", "error"]

EVENTS_KEPT = 1000

# ---- kv keys. Each comment says who writes the key and who reads it.

# daemon/reload -> status: the problem of the config the daemon refused ("" = none).
KV_CONFIG_ERROR = "config.error"
# daemon/reload -> status: when the running config was loaded (ISO time).
KV_CONFIG_LOADED = "config.loaded"
# nightly/scheduler -> status: {dataset: next fire time, ISO}, as JSON.
KV_SCHEDULE_NEXT = "schedule.next"
# nightly/train/params -> itself when a run resumes: + "<dataset>.<run>" (train_params_key).
KV_TRAIN_PARAMS_PREFIX = "train.params."
# nightly/run (on connecting) -> status, doctor: which ACE-Step answered, as JSON.
KV_ACESTEP = "acestep.version"
# nightly/render (after each render) -> itself and `config check`: render speed, as JSON.
KV_RENDER_SPEED = "render.speed"


def train_params_key(dataset: str, run_name: str) -> str:
    """The kv key of one training run's parameters (a resumed run must match them)."""
    return f"{KV_TRAIN_PARAMS_PREFIX}{dataset}.{run_name}"


def insert_event(conn: sqlite3.Connection, level: EventLevel, message: str,
                 dataset: str | None = None, subject: str | None = None) -> None:
    """Append one event and drop all but the newest ``EVENTS_KEPT`` (both by primary key, so
    this stays two index lookups however large the table was)."""
    conn.execute("INSERT INTO events (ts, level, dataset, subject, message) "
                 "VALUES (?, ?, ?, ?, ?)", (time.time(), level, dataset, subject, message))
    conn.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?",
                 (EVENTS_KEPT,))


def forget_file_warnings(conn: sqlite3.Connection, dataset: str, subject: str) -> None:
    """Drop the warnings about one file (a rejection, a copy still changing): called once the
    file is ingested, they describe a state it left (an index lookup, events_subject)."""
    conn.execute("DELETE FROM events WHERE dataset=? AND subject=? AND level='warning'",
                 (dataset, subject))


def set_kv(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO kv (key, value, updated) VALUES (?, ?, ?) ON CONFLICT(key)"
                 " DO UPDATE SET value=excluded.value, updated=excluded.updated",
                 (key, value, time.time()))


def get_kv(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def all_kv(conn: sqlite3.Connection) -> dict[str, str]:
    """Every key at once: ``status`` reads several in one look."""
    return {str(key): str(value) for key, value in conn.execute("SELECT key, value FROM kv")}
