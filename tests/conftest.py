"""Shared fixtures: a temp home with config.toml, the real daemon as a subprocess (always
killed on teardown), a poll-with-deadline helper, and a thread-leak check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FAST_WATCH = """
[watch]
settle_seconds = 0.4
poll_seconds = 0.1
settle_polls = 2
rescan_minutes = 0.5
min_duration_seconds = 2.0

# Ingest tests run at any hour: keep the nightly job (another part's component) from catching
# up on a missed run inside the window and competing for the two CPUs.
[schedule]
enabled = false
catch_up = false
"""

DATASETS = """
[datasets.kim_kyungho]
tag = "kim kyung ho"
genre = "Korean power rock ballad"
language = "ko"

[datasets.ambient]
tag = "calm ambient"
instrumental = true
caption_template = "{tag}, {genre}, {decade}, {title}"
"""


def wait_until(predicate: Callable[[], object], timeout: float = 20.0,
               interval: float = 0.05, message: str = "") -> object:
    """Poll ``predicate`` until truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {message or predicate}")
        time.sleep(interval)


@dataclass
class Home:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def write_config(self, text: str) -> None:
        # Save by rename, like editors do.
        tmp = self.root / ".config.toml.swp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.config)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = Home(tmp_path / "home")
    h.root.mkdir()
    h.write_config(FAST_WATCH + DATASETS)
    return h


@dataclass
class DaemonProc:
    home: Home
    proc: subprocess.Popen[bytes]
    log: Path
    extra: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def acewatchd_cmd(home: Home, *args: str) -> list[str]:
    return [sys.executable, "-m", "acewatchd", "--config", str(home.config), *args]


def run_cli(home: Home, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(acewatchd_cmd(home, *args), capture_output=True, text=True,
                          timeout=timeout, cwd=home.root, check=False)


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
            wait_until(lambda: not d.alive() or _lock_pid(home) == proc.pid, 20,
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


def _lock_pid(home: Home) -> int | None:
    try:
        return int((home.state / "acewatchd.lock").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fail a test that leaves threads running (stop what you start)."""
    before = set(threading.enumerate())
    yield
    leaked = threads_left(before, within=5)
    assert not leaked, f"leaked threads: {[t.name for t in leaked]}"


def threads_left(before: set[threading.Thread], within: float) -> list[threading.Thread]:
    """Threads started since ``before`` that are still alive after waiting up to ``within``."""
    deadline = time.monotonic() + within
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


class FakeClock:
    """Injected Clock: time only moves when the test says so."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.advance(seconds)
        return bool(stop and stop.is_set())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
