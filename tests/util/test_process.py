"""Children run in a process group of their own and are ended, grandchildren included."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from acewatchd.errors import AcewatchdError
from acewatchd.util.process import wait_or_stop

GRANDCHILD = ("import subprocess, sys, time; "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              "print(p.pid, flush=True); time.sleep(60)")


def test_stop_ends_the_child_and_what_it_started() -> None:
    proc = subprocess.Popen([sys.executable, "-c", GRANDCHILD], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    stop = threading.Event()
    stop.set()
    with pytest.raises(AcewatchdError, match="sanitizing interrupted"):
        wait_or_stop(proc, stop, "sanitizing")
    assert proc.returncode is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)   # reaped by init once its parent died
    else:
        pytest.fail("the grandchild outlived the stop")
    proc.stdout.close()


def test_a_child_that_ends_is_waited_for() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    wait_or_stop(proc, threading.Event(), "x")
    assert proc.returncode == 0
