"""Shared fixtures: a temp home with config.toml, the real daemon as a subprocess (always
killed on teardown), an injected clock, and a thread-leak check on every test."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from tests.support.home import DATASETS, FAST_WATCH, DaemonProc, Home, acewatchd_cmd, lock_pid
from tests.support.waiting import threads_left, wait_until


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = Home(tmp_path / "home")
    h.root.mkdir()
    h.write_config(FAST_WATCH + DATASETS)
    return h


@pytest.fixture
def run_daemon(home: Home) -> Iterator[Callable[..., DaemonProc]]:
    """Start `acewatchd run` on the temp home; every process started is killed at teardown."""
    started: list[DaemonProc] = []

    def start(wait_ready: bool = True) -> DaemonProc:
        log = home.root / f"daemon-{len(started)}.out"
        with open(log, "wb") as out:
            proc = subprocess.Popen(acewatchd_cmd(home, "run"), stdout=out,
                                    stderr=subprocess.STDOUT, cwd=home.root)
        d = DaemonProc(home, proc, log)
        started.append(d)
        if wait_ready:
            wait_until(lambda: not d.alive() or lock_pid(home) == proc.pid, 20,
                       message="daemon lock")
            assert d.alive(), d.output()
        return d

    try:
        yield start
    finally:
        for d in started:
            if d.proc.poll() is None:
                d.proc.kill()
            d.proc.wait(10)


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail any test that leaves threads running (stop what you start)."""
    before = set(threading.enumerate())
    yield
    leaked = threads_left(before, within=5)
    assert not leaked, f"leaked threads: {[t.name for t in leaked]}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
