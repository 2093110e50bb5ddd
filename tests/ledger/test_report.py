"""ledger/report.py over a read-only connection: what status and the demo follower read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from acewatchd.ledger import events, files, report, samples
from acewatchd.ledger.db import Ledger, open_readonly


def test_open_readonly_needs_a_created_ledger(tmp_path: Path) -> None:
    assert open_readonly(tmp_path) is None  # no file: not created, not an error
    (tmp_path / "ledger.sqlite3").write_bytes(b"")
    assert open_readonly(tmp_path) is None  # no schema yet
    (tmp_path / "ledger.sqlite3").unlink()
    Ledger(tmp_path).close()
    conn = open_readonly(tmp_path)
    assert conn is not None
    with pytest.raises(sqlite3.OperationalError):
        events.set_kv(conn, events.KV_SCHEDULE_NEXT, "{}")
    conn.close()


def test_report_queries(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    with ledger.tx() as tx:
        files.upsert_file(tx, "ds", "a.mp3", state="stubbed", sig=(1, 2, 3), sha="aa" * 32)
        files.upsert_file(tx, "ds", "b.mp3", state="rejected", reason="silent")
        files.upsert_file(tx, "ds", "c.mp3", state="gone")
        files.record_stub(tx, "ds", "a.mp3", "caption", "/d/a.caption.txt", "11" * 32)
        files.record_stub(tx, "ds", "c.mp3", "caption", "/d/c.caption.txt", "22" * 32)
        tx.execute("INSERT INTO runs (dataset, job, started, outcome, run_name) VALUES "
                   "('ds', 'train', 1, 'running', 'r1')")
        tx.execute("INSERT INTO runs (dataset, job, started, ended, outcome, message) VALUES "
                   "('ds', 'nightly', 1, 2, 'done', 'ok'), ('ds', 'nightly', 3, 4, 'already', '')")
        tx.execute("INSERT INTO progress (run_id, ts, epoch, epochs, step, loss, eta) VALUES "
                   "(1, 5, 1, 10, 8, 0.5, '0:01'), (1, 6, 2, 10, 16, 0.4, '0:00')")
    ledger.record_event("warning", "b.mp3 was rejected", "ds", "b.mp3")
    ledger.record_event("info", "not a problem")
    samples.set_sample(ledger, "ds", "aa" * 32, status="preprocessed")
    ledger.close()

    conn = open_readonly(tmp_path)
    assert conn is not None
    assert [(c.dataset, c.state, c.count) for c in report.live_state_counts(conn)] == [
        ("ds", "rejected", 1), ("ds", "stubbed", 1)]
    assert [s.stub_path for s in report.live_stubs(conn)] == ["/d/a.caption.txt"]
    assert [(k.relpath, k.kinds) for k in report.stubbed_kinds(conn)] == [
        ("a.mp3", frozenset({"caption"}))]
    assert [e.message for e in report.recent_problems(conn, 10)] == ["b.mp3 was rejected"]
    assert [e.message for e in report.events_after(conn, 1)] == ["not a problem"]
    (running,) = report.running_runs(conn)
    assert running.run_name == "r1"
    latest = report.latest_progress(conn, running.id)
    assert latest is not None and (latest.epoch, latest.loss) == (2, 0.4)
    assert [p.step for p in report.progress_after(conn, 1)] == [16]
    assert [r.outcome for r in report.finished_pipeline_runs(conn)] == ["done"]
    assert len(report.all_runs(conn)) == 3
    assert report.preprocessed_counts(conn) == {"ds": 1}
    conn.close()
