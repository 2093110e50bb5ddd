"""ledger/files.py: a file row through seen -> settled -> valid -> stubbed -> gone, the
coalescing upsert, the scan's missing rows, and the stub rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from acewatchd.ledger import files
from acewatchd.ledger.batch import Writer
from acewatchd.ledger.db import DB_NAME, SCHEMA, Ledger


def test_a_file_row_through_its_states(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    conn = ledger.connect()
    with ledger.tx() as tx:
        files.upsert_file(tx, "ds", "a.mp3", state="seen")
    row = files.file_row(conn, "ds", "a.mp3")
    assert row is not None and row.state == "seen" and row.signature == (None, None, None)
    first_seen = row.first_seen
    with ledger.tx() as tx:
        files.upsert_file(tx, "ds", "a.mp3", state="settled", sig=(10, 20, 30), sha="ab" * 32)
        files.upsert_file(tx, "ds", "a.mp3", state="valid", sig=(10, 20, 30), duration=3.5)
        files.upsert_file(tx, "ds", "a.mp3", state="stubbed")  # None keeps what was known
    row = files.file_row(conn, "ds", "a.mp3")
    assert row is not None
    assert (row.state, row.signature, row.sha256, row.duration) == (
        "stubbed", (10, 20, 30), "ab" * 32, 3.5)
    assert row.first_seen == first_seen and row.updated >= first_seen
    assert [r.relpath for r in files.stubbed_files(conn, "ds")] == ["a.mp3"]
    with ledger.tx() as tx:
        files.set_file_state(tx, "ds", "a.mp3", "gone")
    row = files.file_row(conn, "ds", "a.mp3")
    assert row is not None and row.state == "gone" and row.sha256 == "ab" * 32
    assert files.stubbed_files(conn, "ds") == []
    assert files.file_row(conn, "ds", "other.mp3") is None
    ledger.close()


def test_rejected_reason_is_replaced_and_counts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    with ledger.tx() as tx:
        files.upsert_file(tx, "ds", "bad.mp3", state="rejected", sig=(1, 2, 3),
                          reason="bad.mp3 was rejected because it is silent")
        files.upsert_file(tx, "ds", "ok.mp3", state="stubbed", sig=(4, 5, 6), sha="cd" * 32)
        files.upsert_file(tx, "other", "x.mp3", state="stubbed", sig=(7, 8, 9), sha="ef" * 32)
    conn = ledger.connect()
    (rejected,) = files.files_in_state(conn, "rejected")
    assert rejected.reason == "bad.mp3 was rejected because it is silent"
    assert files.state_counts(conn) == {"rejected": 1, "stubbed": 2}
    with ledger.tx() as tx:
        files.upsert_file(tx, "ds", "bad.mp3", state="settled")
    row = files.file_row(conn, "ds", "bad.mp3")
    assert row is not None and row.reason is None
    ledger.close()


def test_missing_files_are_marked_gone_in_the_writers_batch(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    writer = Writer(ledger)
    with writer.batch():
        for name in ("a.mp3", "b.mp3", "c.mp3"):
            with writer.tx() as tx:
                files.upsert_file(tx, "ds", name, state="seen")
    conn = ledger.connect()
    missing = files.missing_files(conn, {("ds", "a.mp3")})
    assert sorted(missing) == [("ds", "b.mp3"), ("ds", "c.mp3")]
    with writer.tx() as tx:
        files.mark_gone(tx, missing)
    assert files.missing_files(conn, {("ds", "a.mp3")}) == []
    assert files.state_counts(conn) == {"gone": 2, "seen": 1}
    ledger.close()


def test_stub_rows(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    conn = ledger.connect()
    assert files.stub_hash(conn, "ds", "a.mp3", "caption") is None
    with ledger.tx() as tx:
        files.record_stub(tx, "ds", "a.mp3", "caption", "/drop/ds/a.caption.txt", "11" * 32)
        files.record_stub(tx, "ds", "a.mp3", "caption", "/drop/ds/a.caption.txt", "22" * 32)
    assert files.stub_hash(conn, "ds", "a.mp3", "caption") == "22" * 32
    assert files.stub_hash(conn, "ds", "a.mp3", "lyrics") is None
    ledger.close()


def test_a_version_1_ledger_opens_and_keeps_its_rows(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.executescript(SCHEMA[0] + ";PRAGMA user_version=1;")
    conn.execute("INSERT INTO files (dataset, relpath, state, first_seen, updated, sha256) "
                 "VALUES ('ds', 'a.mp3', 'stubbed', 1, 1, 'ab')")
    conn.execute("INSERT INTO stubs VALUES ('ds', 'a.mp3', 'caption', '/x/a.caption.txt', "
                 "'cd', 1)")
    conn.commit()
    conn.close()
    ledger = Ledger(tmp_path)
    assert ledger.schema_version() == len(SCHEMA) >= 2
    (row,) = files.rows_with_sha(ledger.connect(), "ab")
    assert (row.relpath, row.state) == ("a.mp3", "stubbed")
    with ledger.tx() as tx:
        files.record_stale_review(tx, files.StaleReview(
            "ds", "a.mp3", "caption", "/x/a.caption.txt", "ef", "ab", "12", 2.0))
        files.move_stub(tx, ("ds", "a.mp3"), ("ds", "sub/b.mp3"), "caption",
                        "/x/sub/b.caption.txt")
    moved = files.stub_record(ledger.connect(), "ds", "sub/b.mp3", "caption")
    assert moved is not None and (moved.stub_path, moved.sha256) == ("/x/sub/b.caption.txt", "cd")
    assert files.stub_record(ledger.connect(), "ds", "a.mp3", "caption") is None
    review = ledger.connect().execute("SELECT relpath, stub_path FROM stale_reviews").fetchone()
    assert tuple(review) == ("sub/b.mp3", "/x/sub/b.caption.txt")
    with ledger.tx() as tx:
        files.forget_stub(tx, "ds", "sub/b.mp3", "caption")
    assert ledger.connect().execute("SELECT count(*) FROM stale_reviews").fetchone()[0] == 0
    ledger.close()
