"""`acewatchd doctor`: check this machine, ACE-Step and the config; exit 1 on any ✗."""

from __future__ import annotations

import argparse

from acewatchd.doctor.machine import run_checks


def run(args: argparse.Namespace) -> int:
    checks = run_checks(getattr(args, "config", None))
    for check in checks:
        print(check.render())
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed" if failed else
          f"all {len(checks)} checks passed")
    return 1 if failed else 0
