"""1,000 files dropped at once: time until all are stubbed, against the durable floor measured
in the same run (target: the daemon's time after the settle window <= 1.25x the floor).

The floor (bench/ingest_floor.py) is the least work acewatchd's rules require per song: one
tag parse, one sha256, two atomic fsync'd sidecar writes, and the folders fsync'd per batch.
It is measured before and after the daemon's run, and the ratio is taken against the lower
of the two, so a disk that got faster or slower meanwhile does not flatter the daemon. The
bare mutagen tag loop (the retired target, <= 3x) is still printed for comparison.

Usage: python bench/ingest_bulk.py [--files 1000] [--settle 1.0]
ACEWATCHD_BENCH_CODE=<another checkout> runs that checkout's daemon against this one's floor
(alternate the two to compare versions). TMPDIR=/dev/shm puts the run on tmpfs, where fsync
costs nothing: the daemon's CPU per song is then all that separates it from the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import mutagen

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_common import corpus, machine, make_home, start_daemon, stop_daemon, wait_for
from ingest_floor import durable_floor

from acewatchd.daemon.daemon import _BATCH

DATASETS = ("kim_kyungho", "ambient", "third")


def baseline(songs: list[Path]) -> float:
    t0 = time.perf_counter()
    for song in songs:
        audio = mutagen.File(song)
        _ = (audio.info.length, audio.tags.getall("TIT2"), audio.tags.getall("USLT"))
    return time.perf_counter() - t0


def stubbed(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute("SELECT count(*) FROM files WHERE state='stubbed'").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=1.0)
    args = ap.parse_args()
    home = make_home(f"[watch]\nsettle_seconds = {args.settle}\npoll_seconds = 0.25\n"
                     f"settle_polls = 2\n[schedule]\ncatch_up = false\n")
    try:
        songs = corpus(home / "src", args.files)
        base = min(baseline(songs) for _ in range(3))
        floor_before = durable_floor(songs, home / "floor-before", DATASETS, _BATCH)
        for ds in DATASETS:
            (home / "drop" / ds).mkdir(parents=True)
        proc = start_daemon(home)
        try:
            time.sleep(1.0)
            cpu0 = process_cpu(proc.pid)
            t0 = time.monotonic()
            for i, song in enumerate(songs):
                shutil.copyfile(song, home / "drop" / DATASETS[i % 3] / song.name)
            copied = time.monotonic() - t0
            db = home / "state" / "ledger.sqlite3"
            done = wait_for(lambda: stubbed(db) == args.files, 600, 0.1) - t0
            cpu = process_cpu(proc.pid) - cpu0
        finally:
            stop_daemon(proc)
        floor_after = durable_floor(songs, home / "floor-after", DATASETS, _BATCH)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    work = done - copied - args.settle
    floor = min(floor_before, floor_after)
    print(f"machine: {machine()}")
    print(f"{args.files} files; bare mutagen tag loop {base:.3f} s "
          f"({1000 * base / args.files:.2f} ms/file)")
    print(f"copy into drop/ took {copied:.2f} s; all stubbed {done:.2f} s after the copy began "
          f"(settle_seconds={args.settle})")
    print(f"durable floor (tag parse + sha256 + 2 fsync'd sidecars per song, folders fsync'd "
          f"per batch of {_BATCH}): {floor_before:.3f} s before, {floor_after:.3f} s after "
          f"({1000 * floor / args.files:.2f} ms/song at the lower)")
    print(f"daemon CPU from the copy's start until all stubbed: {cpu:.2f} s "
          f"({1000 * cpu / args.files:.2f} ms/song, user + system, all its threads)")
    print(f"daemon after copy + settle window: {work:.3f} s = {work / floor:.2f}x the durable "
          f"floor (target <= 1.25x)")
    print(f"for comparison, against the bare tag loop: whole time {done / base:.1f}x, after "
          f"copy + settle {work / base:.1f}x (retired target <= 3x)")


if __name__ == "__main__":
    main()
