"""Runs and their progress: the history of every nightly, training, manual and render job.

One lifecycle for a row: ``open_run`` writes it as ``running``; ``close_run`` gives it its
outcome; a row still ``running`` when its process died is closed by ``mark_stale`` (called by
whoever holds the lock that row's job runs under, so a live job is never marked). A training
run that spans several nights has one row per night (session), all with the same ``run_name``.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from enum import StrEnum

from acewatchd.ledger.db import Ledger
from acewatchd.ledger.events import train_params_key


class Job(StrEnum):
    NIGHTLY = "nightly"     # one dataset's night, started by the scheduler
    MANUAL = "manual"       # the same, started by `acewatchd train --now`
    TRAIN = "train"         # one training session of a run
    RENDER = "render"


class Outcome(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"   # resumable: the next night goes on from its checkpoint
    SKIPPED = "skipped"


@dataclass(frozen=True)
class RunRow:
    id: int
    dataset: str
    job: str
    scheduled_for: float | None
    started: float | None
    ended: float | None
    outcome: str | None
    content_hash: str | None
    run_name: str | None
    epochs_total: int | None
    epochs_done: int | None
    checkpoint: str | None
    message: str | None


@dataclass(frozen=True)
class RunFacts:
    """What a finished job knows about its run; None leaves a column as it is."""

    content_hash: str | None = None
    run_name: str | None = None
    epochs_total: int | None = None
    epochs_done: int | None = None
    checkpoint: str | None = None


@dataclass(frozen=True)
class LossPoint:
    step: int | None
    epoch: int | None
    loss: float | None


_COLUMNS = [f.name for f in fields(RunRow)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM runs"


def _row(row: sqlite3.Row | tuple[object, ...] | None) -> RunRow | None:
    return None if row is None else RunRow(*row)


def open_run(ledger: Ledger, dataset: str, job: Job, started: float, *,
             scheduled_for: float | None = None, facts: RunFacts = RunFacts()) -> int:
    with ledger.tx() as conn:
        cur = conn.execute(
            "INSERT INTO runs (dataset, job, scheduled_for, started, outcome, content_hash,"
            " run_name, epochs_total, epochs_done, checkpoint) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)", (dataset, str(job), scheduled_for, started, str(Outcome.RUNNING),
                       facts.content_hash, facts.run_name, facts.epochs_total,
                       facts.epochs_done, facts.checkpoint))
        return int(cur.lastrowid or 0)


def close_run(ledger: Ledger, run_id: int, outcome: Outcome, message: str, ended: float,
              facts: RunFacts = RunFacts()) -> None:
    with ledger.tx() as conn:
        conn.execute(
            "UPDATE runs SET ended=?, outcome=?, message=?,"
            " content_hash=COALESCE(?, content_hash), run_name=COALESCE(?, run_name),"
            " epochs_total=COALESCE(?, epochs_total), epochs_done=COALESCE(?, epochs_done),"
            " checkpoint=COALESCE(?, checkpoint) WHERE id=?",
            (ended, str(outcome), message[:2000], facts.content_hash, facts.run_name,
             facts.epochs_total, facts.epochs_done, facts.checkpoint, run_id))


def mark_stale(ledger: Ledger, jobs: tuple[Job, ...], message: str, *,
               dataset: str | None = None, ended: float | None = None,
               keep: int | None = None) -> int:
    """Close 'running' rows of ``jobs`` left by a process that died as interrupted. Only call
    it holding the lock those jobs run under; ``keep`` is the caller's own row."""
    sql = (f"UPDATE runs SET outcome='interrupted', message=?, ended=COALESCE(ended, ?) "
           f"WHERE outcome='running' AND job IN ({','.join('?' * len(jobs))})")
    args: list[object] = [message, ended, *(str(j) for j in jobs)]
    if dataset is not None:
        sql += " AND dataset=?"
        args.append(dataset)
    if keep is not None:
        sql += " AND id != ?"
        args.append(keep)
    with ledger.tx() as conn:
        return int(conn.execute(sql, args).rowcount)


def get_run(ledger: Ledger, run_id: int) -> RunRow | None:
    return _row(ledger.connect().execute(f"{_SELECT} WHERE id=?", (run_id,)).fetchone())


def last_run(ledger: Ledger, dataset: str, job: Job,
             outcomes: tuple[Outcome, ...] | None = None) -> RunRow | None:
    sql = f"{_SELECT} WHERE dataset=? AND job=?"
    args: list[object] = [dataset, str(job)]
    if outcomes:
        sql += f" AND outcome IN ({','.join('?' * len(outcomes))})"
        args += [str(o) for o in outcomes]
    return _row(ledger.connect().execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone())


def latest_per_run(ledger: Ledger, dataset: str, job: Job) -> list[RunRow]:
    """The newest row of each named run of ``job`` (one per night), newest run first."""
    rows = ledger.connect().execute(
        f"{_SELECT} WHERE id IN (SELECT MAX(id) FROM runs WHERE dataset=? AND job=? AND "
        "run_name IS NOT NULL AND run_name != '' GROUP BY run_name) ORDER BY id DESC",
        (dataset, str(job)))
    return [RunRow(*r) for r in rows.fetchall()]


def named_runs(ledger: Ledger, dataset: str, jobs: tuple[Job, ...]) -> list[RunRow]:
    """Rows of ``jobs`` that name a training run, newest first."""
    rows = ledger.connect().execute(
        f"{_SELECT} WHERE dataset=? AND job IN ({','.join('?' * len(jobs))}) AND run_name IS "
        "NOT NULL AND run_name != '' ORDER BY id DESC", [dataset, *(str(j) for j in jobs)])
    return [RunRow(*r) for r in rows.fetchall()]


def fire_already_ran(ledger: Ledger, dataset: str, scheduled_for: float) -> bool:
    """A nightly row for this fire time that is not a resumable interruption."""
    row = ledger.connect().execute(
        "SELECT 1 FROM runs WHERE dataset=? AND job='nightly' AND ABS(scheduled_for - ?) < 1"
        " AND outcome != 'interrupted' LIMIT 1", (dataset, scheduled_for)).fetchone()
    return row is not None


def add_progress(ledger: Ledger, run_id: int, ts: float, *, epoch: int | None,
                 epochs: int | None, step: int | None, loss: float | None,
                 eta: str | None) -> None:
    with ledger.tx() as conn:
        conn.execute("INSERT INTO progress (run_id, ts, epoch, epochs, step, loss, eta)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, ts, epoch, epochs, step, loss, eta))
        if epoch is not None:
            conn.execute("UPDATE runs SET epochs_done=MAX(COALESCE(epochs_done, 0), ?)"
                         " WHERE id=?", (epoch, run_id))


def loss_points(ledger: Ledger, dataset: str, run_name: str) -> list[LossPoint]:
    """Every progress row of a training run, over all its nights, in the order logged."""
    rows = ledger.connect().execute(
        "SELECT p.step, p.epoch, p.loss FROM progress p JOIN runs r ON r.id = p.run_id "
        "WHERE r.dataset=? AND r.run_name=? AND r.job IN ('train', 'nightly') "
        "ORDER BY p.ts, p.rowid", (dataset, run_name)).fetchall()
    return [LossPoint(r[0], r[1], r[2]) for r in rows]


def rendered_since(ledger: Ledger, dataset: str, run_id: int) -> bool:
    """A render of ``dataset`` finished after row ``run_id`` (the training it renders)."""
    row = ledger.connect().execute(
        "SELECT 1 FROM runs WHERE dataset=? AND job='render' AND outcome='done' AND id > ? "
        "LIMIT 1", (dataset, run_id)).fetchone()
    return row is not None


def rendered_runs(ledger: Ledger) -> list[tuple[str, str, str]]:
    """(dataset, outbox run folder, summary) of every finished render."""
    rows = ledger.connect().execute(
        "SELECT dataset, run_name, message FROM runs WHERE job='render' AND outcome='done' "
        "AND run_name IS NOT NULL").fetchall()
    return [(str(r[0]), str(r[1]), str(r[2] or "")) for r in rows]


def save_params(ledger: Ledger, dataset: str, run_name: str, params: dict[str, object]) -> None:
    """The [train] parameters a run started with: a resume needs the same ones."""
    ledger.set_kv(train_params_key(dataset, run_name), json.dumps(params, sort_keys=True))


def same_params(ledger: Ledger, dataset: str, run_name: str, params: dict[str, object]) -> bool:
    stored = ledger.get_kv(train_params_key(dataset, run_name))
    return stored is not None and json.loads(stored) == params
