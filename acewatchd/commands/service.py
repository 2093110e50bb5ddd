"""`acewatchd service install|uninstall|status|restart|logs [--dry-run]`."""

from __future__ import annotations

import argparse
import time

from acewatchd.daemon.service import (
    execute,
    gather,
    make_plan,
    manager,
    plist_path,
    run_command,
    show_logs,
    show_plan,
    unit_path,
)


def run(args: argparse.Namespace) -> int:
    inst = gather(args.config)
    if args.action == "logs":
        return show_logs(inst)
    plan = make_plan(inst, args.action)
    if args.dry_run:
        show_plan(plan)
        return 0
    if args.action == "install":
        inst.logs.mkdir(parents=True, exist_ok=True)
    if args.action == "status":
        path = plist_path(inst) if manager() == "launchd" else unit_path(inst)
        print(f"{path}: {'installed' if path.exists() else 'not installed'}")
    if args.action in ("status", "restart"):
        return run_command(plan.commands[0])
    started = time.monotonic()
    rc = execute(plan)
    print(f"service {args.action}: done in {time.monotonic() - started:.1f}s ({manager()})")
    return rc
