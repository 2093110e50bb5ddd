"""Drop-to-stub latency for single files through the real daemon: p50/p95 from the moment a
copy finishes to the moment its caption stub exists (target p95 < settle_seconds + 0.5 s).

Usage: python bench/ingest_latency.py [--files 20] [--settle 3.0]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_common import corpus, machine, make_home, start_daemon, stop_daemon, wait_for


def run(files: int, settle: float, poll: float, polls: int) -> list[float]:
    home = make_home(f"[watch]\nsettle_seconds = {settle}\npoll_seconds = {poll}\n"
                     f"settle_polls = {polls}\n[schedule]\ncatch_up = false\n")
    try:
        songs = corpus(home / "src", files)
        (home / "drop" / "kim_kyungho").mkdir(parents=True)
        proc = start_daemon(home)
        latencies = []
        try:
            time.sleep(1.0)  # past the start-up scan
            for song in songs:
                dest = home / "drop" / "kim_kyungho" / song.name
                shutil.copyfile(song, dest)
                t0 = time.monotonic()
                stub = dest.with_name(dest.stem + ".caption.txt")
                latencies.append(wait_for(stub.exists, 60, 0.005) - t0)
        finally:
            stop_daemon(proc)
        return latencies
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    for settle, poll, polls in ((3.0, 0.5, 3), (0.5, 0.1, 3)):
        lat = sorted(run(args.files, settle, poll, polls))
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        print(f"settle_seconds={settle} poll_seconds={poll} settle_polls={polls}: "
              f"n={len(lat)} p50 {p50:.3f} s, p95 {p95:.3f} s, max {lat[-1]:.3f} s "
              f"(target p95 < {settle + 0.5:.1f} s)")


if __name__ == "__main__":
    main()
