"""Profile the daemon's batch pipeline in-process over N files (where does bulk time go?).

Copies a corpus into a temp home's drop folders, then runs ``Ingestor.process_many`` in the
daemon's batch size inside ``writer.batch()`` (as ``Daemon._settle_once`` does), timed and
optionally under cProfile. Settling and watch events are left out on purpose: this isolates
the per-song cost. Usage: python bench/ingest_profile.py [--files 1000] [--log] [--watch]
[--profile [--sort tottime] [--top 40] [--dump FILE]]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import queue
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bulk import DATASETS, baseline
from ingest_common import corpus, make_home
from ingest_floor import durable_floor

from acewatchd.config.load import load_config
from acewatchd.daemon.daemon import _BATCH
from acewatchd.ingest.pipeline import Ingestor
from acewatchd.ingest.watcher import Hint, Watcher
from acewatchd.ledger.db import Ledger
from acewatchd.log import setup_logging


def _thread_cpu() -> tuple[float, float]:
    """(user, sys) seconds of this thread (Linux; the process's elsewhere)."""
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    usage = resource.getrusage(who)
    return usage.ru_utime, usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--profile", action="store_true", help="run the pipeline under cProfile")
    ap.add_argument("--sort", default="cumulative", help="cProfile sort key (e.g. tottime)")
    ap.add_argument("--top", type=int, default=40, help="cProfile rows to print")
    ap.add_argument("--dump", type=Path, help="also write the cProfile stats to this file")
    ap.add_argument("--log", action="store_true", help="log to logs/ as the daemon does")
    ap.add_argument("--one-folder", action="store_true", help="all files in one dataset")
    ap.add_argument("--corpus", type=Path, help="reuse (or create) the MP3 corpus here")
    ap.add_argument("--watch", action="store_true",
                    help="with a watchdog observer on drop/, its hints drained between batches "
                         "as the daemon's main loop does (what the stubs' own events cost)")
    args = ap.parse_args()
    home = make_home()
    try:
        src = args.corpus or home / "src"
        songs = sorted((src / "songs").glob("*.mp3")) if (src / "songs").is_dir() else []
        if len(songs) != args.files:
            songs = corpus(src, args.files)
        base = min(baseline(songs) for _ in range(3))
        f0 = resource.getrusage(resource.RUSAGE_SELF)
        floor = durable_floor(songs, home / "floor", DATASETS, _BATCH)
        f1 = resource.getrusage(resource.RUSAGE_SELF)
        drops = []
        for i, song in enumerate(songs):
            dest = home / "drop" / DATASETS[0 if args.one_folder else i % 3] / song.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(song, dest)
            drops.append(dest)
        cfg = load_config(home / "config.toml")
        if args.log:
            setup_logging(cfg.paths.logs, cfg.logging.level, console=False)
        ledger = Ledger(cfg.paths.state)
        ingestor = Ingestor(ledger, lambda: cfg)
        hints: queue.Queue[Hint] = queue.Queue()
        watcher = Watcher(cfg.paths.drop, None, hints) if args.watch else None
        if watcher:
            watcher.start()
        prof = cProfile.Profile() if args.profile else None
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0, c0 = time.perf_counter(), _thread_cpu()
        if prof:
            prof.enable()
        for start in range(0, len(drops), _BATCH):
            with ingestor.writer.batch():
                ingestor.process_many(drops[start:start + _BATCH])
            while not hints.empty():
                hints.get_nowait()
        if prof:
            prof.disable()
        took = time.perf_counter() - t0
        if watcher:
            watcher.stop()
        main_user, main_sys = (b - a for a, b in zip(c0, _thread_cpu(), strict=True))
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        ledger.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"pipeline {took:.3f} s ({1000 * took / args.files:.2f} ms/file); bare loop "
          f"{base:.3f} s; ratio {took / base:.1f}x; "
          f"cpu user {r1.ru_utime - r0.ru_utime:.3f} s, sys {r1.ru_stime - r0.ru_stime:.3f} s; "
          f"main thread cpu user {1000 * main_user / args.files:.3f} ms/song, "
          f"sys {1000 * main_sys / args.files:.3f} ms/song")
    print(f"durable floor {floor:.3f} s; pipeline / floor {took / floor:.2f}x; floor cpu user "
          f"{f1.ru_utime - f0.ru_utime:.3f} s, sys {f1.ru_stime - f0.ru_stime:.3f} s")
    if prof:
        if args.dump:
            prof.dump_stats(args.dump)
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
