"""`acewatchd demo`: a demo home, the real daemon, the simulator; prints the outbox page."""

from __future__ import annotations

import argparse
from pathlib import Path

from acewatchd.demo.demo import (
    DATASETS,
    drop_songs,
    prepare_home,
    start_daemon,
    stop_daemon,
    wait_for_fresh_minute,
)
from acewatchd.demo.follow import Follower
from acewatchd.errors import AcewatchdError


def run(args: argparse.Namespace) -> int:
    home = Path(args.home).expanduser().absolute()
    timeout = float(getattr(args, "timeout", 900))
    print(f"acewatchd demo in {home}  (ACE-Step is the SIMULATOR: tones, not music)")
    config, made = prepare_home(home, max(1, int(args.songs)))
    print(f"  config:  {config}")
    print(f"  songs:   {len(DATASETS)} datasets x {args.songs} generated MP3s in {made}")
    proc = start_daemon(config, home)
    print(f"  daemon:  acewatchd run (pid {proc.pid}); log {home / 'logs' / 'acewatchd.jsonl'}")
    follower = Follower(home, [d.name for d in DATASETS], songs=int(args.songs))
    try:
        follower.wait_daemon_up(proc, 60.0)
        wait_for_fresh_minute()
        drop_songs(made, home / "drop")
        print(f"  dropped the songs into {home / 'drop'}/<dataset>/ ; the nightly schedule "
              "fires every minute in the demo\n")
        index = follower.follow(proc, timeout)
    except (AcewatchdError, KeyboardInterrupt) as exc:
        code = stop_daemon(proc)
        print(f"\ndemo stopped: {exc or 'interrupted'} (daemon exit code {code})")
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    print(f"\nDone in {follower.elapsed():.0f}s. Open the outbox page:\n  {index}")
    if args.keep_running:
        print(f"\nThe daemon keeps running (pid {proc.pid}); drop more songs into "
              f"{home / 'drop'}/<dataset>/.\nStop it with: kill {proc.pid}")
        return 0
    code = stop_daemon(proc)
    print(f"daemon stopped (exit code {code})")
    return 0 if code == 0 else 1
