"""Idle cost of `acewatchd run` with 3 datasets: RSS and CPU over 60 s (targets: RSS < 80 MB,
CPU < 0.5 %). Also reports whether the daemon's import path pulls in heavy modules.

Usage: python bench/ingest_idle.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_common import corpus, machine, make_home, start_daemon, stop_daemon, wait_for


def heavy_imports() -> list[str]:
    code = ("import sys, acewatchd.daemon.daemon, acewatchd.daemon.components;"
            "print(','.join(m for m in ('torch','gradio','matplotlib','numpy','gradio_client',"
            "'apscheduler') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"heavy modules on the daemon import path: {heavy_imports() or 'none'}")
    # Inside the nightly window a default config catches up on a missed run (and, with no
    # ACE-Step here, retries connecting): that is work, not idle. Measure both.
    for label, extra in (("truly idle (schedule.catch_up = false)",
                          "[schedule]\ncatch_up = false\n"),
                         ("default config", "")):
        measure(label, extra, args.seconds)


def measure(label: str, extra: str, seconds: float) -> None:
    home = make_home(extra)
    try:
        songs = corpus(home / "src", 30)
        for i, song in enumerate(songs):
            dest = home / "drop" / ("kim_kyungho", "ambient", "third")[i % 3] / song.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(song, dest)
        proc = start_daemon(home)
        try:
            wait_for(lambda: len(list((home / "drop").rglob("*.caption.txt"))) == 30, 120, 0.2)
            time.sleep(5)  # let the start-up work finish before measuring idle
            p = psutil.Process(proc.pid)
            cpu0, t0 = p.cpu_times(), time.monotonic()
            peak = 0
            while time.monotonic() - t0 < seconds:
                peak = max(peak, p.memory_info().rss)
                time.sleep(1)
            cpu1, elapsed = p.cpu_times(), time.monotonic() - t0
            used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            threads = p.num_threads()
        finally:
            stop_daemon(proc)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"{label}: {elapsed:.0f} s, 3 datasets, 30 songs stubbed; RSS peak "
          f"{peak / 2**20:.1f} MB (target < 80); CPU {100 * used / elapsed:.3f} % of one core "
          f"(target < 0.5); threads {threads}")


if __name__ == "__main__":
    main()
