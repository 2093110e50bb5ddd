"""`acewatchd simulate --root DIR [--port] [--version COMMIT] [--tier large|small]
[--layout nested|flat] [--fault NAME[=VALUE]] [--speed]`: the ACE-Step simulator (a test
double impersonating one known ACE-Step version) in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from acewatchd.simulator.app import serve  # gradio: only for this command

    return serve(Path(args.root), host=args.host, port=int(args.port), faults=list(args.fault),
                 speed=float(args.speed), layout=args.layout, version=args.acestep_version,
                 tier=args.tier)
