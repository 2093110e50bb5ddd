"""Start/stop the ACE-Step SIMULATOR as a real subprocess, for tests and the demo.

    with running_simulator(tmp_path / "acestep", faults=["slow=2"], version="c4cdd99") as sim:
        client = AceStepClient(sim.url)

``version`` is the ACE-Step commit to impersonate (default the newest known), ``tier`` the GPU
tier ("large" or "small"), ``layout`` the trainer layout ("nested" or "flat").

The server runs ``python -m acewatchd simulate`` in its own process group (so killing it takes
its children too), logs to ``<root>/.simulator/server.log``, and is always killed on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from acewatchd.simulator.context import DEFAULT_VERSION
from acewatchd.simulator.faults import CallCounter, read_control, state_dir, write_control

START_TIMEOUT = 90.0  # gradio import + first request on a busy 2-core CI box


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SimHandle:
    """A simulator subprocess on a fixed port that can be stopped and started again."""

    def __init__(self, root: Path, port: int, speed: float, host: str = "127.0.0.1",
                 layout: str = "nested", version: str = DEFAULT_VERSION,
                 tier: str = "large") -> None:
        self.root = Path(root)
        self.port = port
        self.host = host
        self.speed = speed
        self.layout = layout
        self.version = version
        self.tier = tier
        self.url = f"http://{host}:{port}/"
        self.proc: subprocess.Popen[bytes] | None = None
        self._refusing = False

    @property
    def log_path(self) -> Path:
        return state_dir(self.root) / "server.log"

    def start(self, *, wait: bool = True) -> None:
        """(Re)start on the same port; waits until it answers unless faults say "refuse"."""
        if self.proc is not None and self.proc.poll() is None:
            return
        state_dir(self.root).mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "acewatchd", "simulate", "--root", str(self.root),
               "--port", str(self.port), "--host", self.host, "--speed", str(self.speed),
               "--layout", self.layout, "--version", self.version, "--tier", self.tier]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
        if wait and "refuse" not in read_control(self.root):
            self.wait_ready()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}config", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited early; log:\n{self.log_tail()}")
            time.sleep(0.1)
        raise TimeoutError(f"simulator not answering after {timeout}s; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Kill the server's whole process group (TERM, then KILL)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        else:  # it died on its own (e.g. the "drop" fault); reap any children it left
            _signal_group(proc, signal.SIGKILL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def call_counts(self) -> dict[str, int]:
        return CallCounter(self.root).read()

    def set_faults(self, faults: list[str]) -> None:
        """Change faults live. "refuse" stops the server; removing it starts it again."""
        write_control(self.root, list(faults))
        if "refuse" in faults and self.alive():
            self.stop()
            self._refusing = True
        elif "refuse" not in faults and self._refusing:
            self._refusing = False
            self.start()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def running_simulator(root: Path, *, port: int | None = None, faults: list[str] | None = None,
                      speed: float = 50.0, layout: str = "nested",
                      version: str = DEFAULT_VERSION,
                      tier: str = "large") -> Iterator[SimHandle]:
    """A running simulator for ``root``; always killed on exit."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    write_control(root, list(faults or []))
    handle = SimHandle(root, port or free_port(), speed, layout=layout, version=version,
                       tier=tier)
    handle._refusing = "refuse" in (faults or [])
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()
