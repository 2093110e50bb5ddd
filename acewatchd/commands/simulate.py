"""`acewatchd simulate --root DIR [--port] [--fault NAME[=VALUE]] [--speed]`: the ACE-Step
simulator (a test double) in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from acewatchd.simulator.app import serve  # gradio: only for this command

    return serve(Path(args.root), host=args.host, port=int(args.port), faults=list(args.fault),
                 speed=float(args.speed), layout=args.layout)
