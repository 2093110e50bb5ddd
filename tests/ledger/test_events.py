"""ledger/events.py: one event insert that keeps the newest 1000 rows, whoever writes (the
ledger's own transaction or an ingest batch), and kv keys by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from acewatchd.ledger import events
from acewatchd.ledger.batch import Writer
from acewatchd.ledger.db import Ledger


def _ids(ledger: Ledger) -> list[int]:
    return [r[0] for r in ledger.connect().execute("SELECT id FROM events ORDER BY id")]


def test_events_are_trimmed_to_the_newest_1000(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    with ledger.tx() as conn:  # fill past the limit in one go
        for n in range(events.EVENTS_KEPT + 4):
            events.insert_event(conn, "info", f"e{n}")
    ids = _ids(ledger)
    assert len(ids) == events.EVENTS_KEPT and ids[0] == 5
    ledger.record_event("error", "newest", "ds", "song.mp3")
    ids = _ids(ledger)
    assert len(ids) == events.EVENTS_KEPT and ids[0] == 6
    row = ledger.connect().execute("SELECT level, dataset, subject, message FROM events "
                                   "ORDER BY id DESC LIMIT 1").fetchone()
    assert tuple(row) == ("error", "ds", "song.mp3", "newest")
    ledger.close()


def test_the_batch_writer_trims_too(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    with ledger.tx() as conn:
        for n in range(events.EVENTS_KEPT):
            events.insert_event(conn, "info", f"e{n}")
    writer = Writer(ledger)
    with writer.batch():
        writer.event("warning", "rejected a.mp3", "ds", "a.mp3")
        writer.event("warning", "rejected b.mp3", "ds", "b.mp3")
    ids = _ids(ledger)
    assert len(ids) == events.EVENTS_KEPT and ids[-1] == events.EVENTS_KEPT + 2
    ledger.close()


def test_kv_round_trip_and_named_keys(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    assert ledger.get_kv(events.KV_SCHEDULE_NEXT) is None
    ledger.set_kv(events.KV_SCHEDULE_NEXT, '{"a": 1}')
    ledger.set_kv(events.KV_SCHEDULE_NEXT, '{"a": 2}')  # upsert, one row
    ledger.set_kv(events.KV_CONFIG_ERROR, "")
    assert ledger.get_kv(events.KV_SCHEDULE_NEXT) == '{"a": 2}'
    assert events.all_kv(ledger.connect()) == {"schedule.next": '{"a": 2}', "config.error": ""}
    assert events.train_params_key("kim", "r1") == "train.params.kim.r1"
    ledger.close()


def test_an_unwritable_state_folder_is_one_clear_error(tmp_path: Path) -> None:
    """Not SIGBUS, not "unexpected error": the path and what to check. (Root writes through
    permissions, so the ledger's place is taken by a folder here.)"""
    from acewatchd.errors import AcewatchdError

    (tmp_path / "state" / "ledger.sqlite3").mkdir(parents=True)
    with pytest.raises(AcewatchdError, match=r"ledger\.sqlite3: cannot open the ledger .*"
                                             r"writable folder \(\[paths\] state\)"):
        Ledger(tmp_path / "state")
    (tmp_path / "file").write_text("x")
    with pytest.raises(AcewatchdError, match="cannot open the ledger"):
        Ledger(tmp_path / "file")                  # state is a file, not a folder


def test_scan_with_an_unwritable_state_exits_with_the_path(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "ace").mkdir()
    (tmp_path / "state").write_text("not a folder")
    (tmp_path / "config.toml").write_text(f'[acestep]\nroot = "{tmp_path / "ace"}"\n')
    done = subprocess.run([sys.executable, "-m", "acewatchd", "--config",
                           str(tmp_path / "config.toml"), "scan"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert str(tmp_path / "state") in done.stderr and "writable folder" in done.stderr
