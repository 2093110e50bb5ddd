"""1,000 files dropped at once: time until all are stubbed, as a ratio to a bare loop reading
the same files' tags with mutagen in this process (target <= 3x).

The daemon deliberately waits settle_seconds before reading a file, so both the ratio of the
whole time and of the time after the settle window are reported.

Usage: python bench/ingest_bulk.py [--files 1000] [--settle 1.0]
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

DATASETS = ("kim_kyungho", "ambient", "third")


def baseline(songs: list[Path]) -> float:
    t0 = time.perf_counter()
    for song in songs:
        audio = mutagen.File(song)
        _ = (audio.info.length, audio.tags.getall("TIT2"), audio.tags.getall("USLT"))
    return time.perf_counter() - t0


def create_floor(songs: list[Path], root: Path) -> float:
    """The floor no stub-writing design gets under: creating two small new files per song
    (no fsync, no link) in fresh folders, spread over the datasets like the drop. On the CI
    VM's ext4 a new inode costs 0.1-0.8 ms of kernel time depending on its block group."""
    folders = [root / ds for ds in DATASETS]
    for folder in folders:
        folder.mkdir(parents=True)
    t0 = time.perf_counter()
    for i, song in enumerate(songs):
        for kind in ("caption", "lyrics"):
            name = folders[i % 3] / f"{song.stem}.{kind}.txt"
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    return time.perf_counter() - t0


def stubbed(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT count(*) FROM files WHERE state='stubbed'").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


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
        floor = create_floor(songs, home / "floor")
        for ds in DATASETS:
            (home / "drop" / ds).mkdir(parents=True)
        proc = start_daemon(home)
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            for i, song in enumerate(songs):
                shutil.copyfile(song, home / "drop" / DATASETS[i % 3] / song.name)
            copied = time.monotonic() - t0
            db = home / "state" / "ledger.sqlite3"
            done = wait_for(lambda: stubbed(db) == args.files, 600, 0.1) - t0
        finally:
            stop_daemon(proc)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    work = done - copied - args.settle
    print(f"machine: {machine()}")
    print(f"{args.files} files; bare mutagen tag loop {base:.3f} s "
          f"({1000 * base / args.files:.2f} ms/file)")
    print(f"copy into drop/ took {copied:.2f} s; all stubbed {done:.2f} s after the copy began "
          f"(settle_seconds={args.settle})")
    print(f"creating 2 empty files per song in fresh folders alone: {floor:.3f} s = "
          f"{floor / base:.1f}x the bare loop")
    print(f"ratio, whole time: {done / base:.1f}x; after copy + settle window: "
          f"{work / base:.1f}x (target <= 3x)")


if __name__ == "__main__":
    main()
