"""`acewatchd status` reads the ledger read-only, without the daemon: per-dataset counts,
reviewed vs untouched stubs, recent errors, config state, running training and next runs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.events import KV_SCHEDULE_NEXT
from tests.support.home import Home, run_cli


def test_status_counts_runs_and_schedule(home: Home, tmp_path: Path) -> None:
    song = make_mp3(tmp_path / "s.mp3", seconds=3, tags=SongTags(title="제목"))
    ds = home.drop / "kim_kyungho"
    ds.mkdir(parents=True)
    for name in ("a.mp3", "b.mp3", "c.mp3"):
        shutil.copyfile(song, ds / name)
    (ds / "bad.mp3").write_text("nope", encoding="utf-8")
    (ds / "c.lyrics.txt").write_text("내 가사\n", encoding="utf-8")  # the user's, from before
    assert run_cli(home, "scan").returncode == 0
    (ds / "a.caption.txt").write_text("내가 고친 캡션\n", encoding="utf-8")
    ledger = Ledger(home.state)
    with ledger.tx() as conn:
        conn.execute("INSERT INTO runs (dataset, job, started, outcome, run_name, epochs_total)"
                     " VALUES ('kim_kyungho', 'train', ?, 'running', 'r1', 800)", (time.time(),))
        conn.execute("INSERT INTO progress (run_id, ts, epoch, epochs, step, loss, eta) VALUES "
                     "(1, ?, 12, 800, 96, 0.4321, '1:02:03')", (time.time(),))
    ledger.set_kv(KV_SCHEDULE_NEXT, json.dumps({"kim_kyungho": "2026-11-26T01:00:00+01:00"}))
    ledger.close()
    before = (home.state / "ledger.sqlite3").stat().st_mtime_ns

    report = json.loads(run_cli(home, "status", "--json").stdout)
    kim = report["datasets"]["kim_kyungho"]
    assert kim["files"] == {"stubbed": 3, "rejected": 1}
    assert kim["stubs"] == {"untouched": 4, "reviewed": 2, "missing": 0}
    assert report["daemon"] == {"running": False, "pid": None}
    assert report["config"]["valid"] is True
    assert "bad.mp3 was rejected" in report["recent_errors"][0]["message"]
    (run,) = report["runs"]
    assert run["run_name"] == "r1" and run["progress"]["loss"] == 0.4321
    assert report["schedule_next"] == {"kim_kyungho": "2026-11-26T01:00:00+01:00"}

    text = run_cli(home, "status").stdout
    assert "kim_kyungho: 1 rejected, 3 stubbed; stubs 2 reviewed, 4 untouched" in text
    assert "epoch 12/800, step 96, loss 0.4321, ETA 1:02:03" in text
    assert "next     kim_kyungho: 2026-11-26T01:00:00+01:00" in text
    assert (home.state / "ledger.sqlite3").stat().st_mtime_ns == before  # read-only


def test_status_on_a_fresh_home_and_a_broken_config(home: Home) -> None:
    out = run_cli(home, "status")
    assert out.returncode == 0 and "(none yet" in out.stdout
    home.write_config("[watch]\nsettle_seconds = -1\n")
    out = run_cli(home, "status")
    assert out.returncode == 0
    assert "INVALID" in out.stdout and "watch.settle_seconds: -1.0 is outside 0..3600 (line 2)" in out.stdout


def test_status_shows_the_last_finished_runs(home: Home) -> None:
    ledger = Ledger(home.state)
    now = time.time()
    rows = [("nightly", "done", "trained and rendered"), ("render", "done", "2 prompts"),
            ("nightly", "skipped", "unchanged since its last LoRA"),
            ("nightly", "already", "")]
    with ledger.tx() as conn:
        for job, outcome, message in rows:
            conn.execute("INSERT INTO runs (dataset, job, started, ended, outcome, message) "
                         "VALUES ('kim', ?, ?, ?, ?, ?)", (job, now, now, outcome, message))
    ledger.close()
    report = json.loads(run_cli(home, "status", "--json").stdout)
    last = report["last"]["kim"]
    # the newest finished pipeline row wins; 'already' (a duplicate fire time) is not news
    assert last["pipeline"]["outcome"] == "skipped"
    assert last["render"]["message"] == "2 prompts"
    text = run_cli(home, "status").stdout
    assert "kim nightly" in text and "skipped (unchanged since its last LoRA)" in text


def test_status_warns_of_a_nearly_full_disk_even_when_the_ledger_is_on_it(
        home: Home, tmp_path: Path) -> None:
    from tests.support.disk import fill, small_disk

    with small_disk(tmp_path / "small", "8m") as mnt:
        home.write_config(f'[paths]\noutbox = "{mnt}/outbox"\nstate = "{mnt}/state"\n')
        assert run_cli(home, "scan").returncode == 0      # the ledger is made on that disk
        report = json.loads(run_cli(home, "status", "--json").stdout)
        # all 8 MB are under the 1 GB mark; drop/ is on another disk (listed only if that one
        # is low too)
        (low,) = [d for d in report["low_disk"] if str(mnt) in d["folders"][0]]
        assert low["folders"] == [f"the ledger ({mnt}/state)", f"the outbox ({mnt}/outbox)"]
        fill(mnt / "ballast")
        out = run_cli(home, "status")
        assert out.returncode == 0, out.stderr
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("disk") and
                    str(mnt) in ln)
        assert line.startswith("disk     low: 0 MB free on the disk holding the ledger (")
        assert "free some space" in line and f"the outbox ({mnt}/outbox)" in line
