"""Child processes acewatchd runs (preprocessing, sanitizing): each in a process group of its
own, so ending it ends whatever it started too, and ended when the daemon stops (or, after a
kill -9 of the daemon, by the next one: see the registry below)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from acewatchd.errors import AcewatchdError

logger = logging.getLogger(__name__)

GRACE_SECONDS = 5.0


class ChildStopped(AcewatchdError):
    """A child was ended before it finished: acewatchd is stopping, or it ran out of time."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def wait_or_stop(proc: subprocess.Popen[Any], stop: threading.Event | None, what: str,
                 timeout: float | None = None) -> None:
    """Wait for ``proc``; if ``stop`` is set first (or ``timeout`` seconds pass), end its whole
    group (SIGTERM, then SIGKILL after a grace period) and raise ChildStopped saying why."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=0.2)
            return
        except subprocess.TimeoutExpired:
            pass
        if stop is not None and stop.is_set():
            end_group(proc)
            raise ChildStopped(f"{what} interrupted (acewatchd is stopping)", timed_out=False)
        if deadline is not None and time.monotonic() >= deadline:
            end_group(proc)
            raise ChildStopped(f"{what} took longer than {timeout:g} s and was stopped",
                               timed_out=True)


def end_group(proc: subprocess.Popen[Any]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)  # the child was started with start_new_session=True
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- the registry
# A daemon killed with -9 cannot end its children: each child's process group is recorded in
# ``<state>/children/<pgid>.json`` while it runs, and the next daemon ends the groups it finds
# there that are still alive and still run that command (a pid may have been reused).

REGISTRY = "children"


@contextmanager
def registered(proc: subprocess.Popen[Any], registry: Path | None) -> Iterator[None]:
    """Record ``proc`` (started with ``start_new_session=True``) for as long as it runs."""
    entry = None if registry is None else registry / f"{proc.pid}.json"
    if entry is not None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        args = proc.args if isinstance(proc.args, list) else [str(proc.args)]
        entry.write_text(json.dumps({"pid": proc.pid, "args": [str(a) for a in args]}),
                         encoding="utf-8")
    try:
        yield
    finally:
        if entry is not None:
            entry.unlink(missing_ok=True)


def end_orphans(registry: Path) -> list[int]:
    """End the recorded children a killed daemon left running; returns their pids."""
    ended: list[int] = []
    try:
        entries = sorted(registry.glob("*.json"))
    except OSError:
        return ended
    for entry in entries:
        try:
            record = json.loads(entry.read_text(encoding="utf-8"))
            pid, args = int(record["pid"]), [str(a) for a in record["args"]]
        except (OSError, ValueError, KeyError, TypeError):
            entry.unlink(missing_ok=True)
            continue
        if _runs(pid, args):
            logger.warning("ending a child a previous acewatchd left running (pid %d: %s)",
                           pid, " ".join(args)[:200])
            _end_pgid(pid)
            ended.append(pid)
        entry.unlink(missing_ok=True)
    return ended


def _runs(pid: int, args: list[str]) -> bool:
    """``pid`` leads its own process group and runs ``args`` (ps works on Linux and macOS)."""
    try:
        if os.getpgid(pid) != pid:
            return False
        done = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    command = done.stdout.strip()
    return bool(command) and bool(args) and all(a in command for a in args[-2:])


def _end_pgid(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)
