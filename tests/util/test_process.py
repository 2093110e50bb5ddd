"""Children run in a process group of their own and are ended, grandchildren included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from acewatchd.errors import AcewatchdError
from acewatchd.util.process import end_orphans, registered, wait_or_stop

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


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_children_a_killed_daemon_left_are_ended_by_the_next(tmp_path: Path) -> None:
    registry = tmp_path / "children"
    proc = subprocess.Popen([sys.executable, "-c", GRANDCHILD, "acewatchd-child-marker"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    record = registered(proc, registry)
    record.__enter__()     # the daemon dies here: the record is never closed
    assert [p.name for p in registry.iterdir()] == [f"{proc.pid}.json"]
    (registry / "999999.json").write_text("not json", encoding="utf-8")
    assert end_orphans(registry) == [proc.pid]
    proc.wait(10)
    assert _gone(grandchild), "the orphan's own child outlived it"
    assert list(registry.iterdir()) == []
    proc.stdout.close()
    del record


def test_a_reused_pid_running_something_else_is_left_alone(tmp_path: Path) -> None:
    registry = tmp_path / "children"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             start_new_session=True)
    try:
        registry.mkdir()
        (registry / f"{other.pid}.json").write_text(json.dumps(
            {"pid": other.pid, "args": ["python", "-m", "acewatchd", "sanitize", "/x"]}),
            encoding="utf-8")
        assert end_orphans(registry) == []
        assert other.poll() is None, "a process that is not our child was ended"
        assert list(registry.iterdir()) == []
    finally:
        other.kill()
        other.wait()


def test_a_child_that_finishes_leaves_no_record(tmp_path: Path) -> None:
    registry = tmp_path / "children"
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    with registered(proc, registry):
        wait_or_stop(proc, threading.Event(), "x")
    assert list(registry.iterdir()) == []
