"""Child processes acewatchd runs (preprocessing, sanitizing): each in a process group of its
own, so ending it ends whatever it started too, and ended when the daemon stops."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import Any

from acewatchd.errors import AcewatchdError

GRACE_SECONDS = 5.0


def wait_or_stop(proc: subprocess.Popen[Any], stop: threading.Event | None, what: str) -> None:
    """Wait for ``proc``; if ``stop`` is set first, end its whole group (SIGTERM, then SIGKILL
    after a grace period) and raise AcewatchdError saying ``what`` was interrupted."""
    while True:
        try:
            proc.wait(timeout=0.2)
            return
        except subprocess.TimeoutExpired:
            pass
        if stop is not None and stop.is_set():
            end_group(proc)
            raise AcewatchdError(f"{what} interrupted (acewatchd is stopping)")


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
