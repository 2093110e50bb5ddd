"""Child processes acewatchd runs (preprocessing, sanitizing): each in a process group of its
own, so ending it ends whatever it started too, and ended when the daemon stops."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

from acewatchd.errors import AcewatchdError

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
