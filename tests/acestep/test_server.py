"""ServerManager: the managed ACE-Step server (here the simulator, a real Gradio subprocess).

Covers start -> answers with a matching API -> restart -> stop, a command that dies (error with
the last lines of logs/acestep.log), a port held by something that is not ACE-Step, a server
that never answers, a pid file left by a killed daemon, and the unmanaged (connect-only) mode.
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from acewatchd.acestep import serverproc
from acewatchd.acestep.errors import ServerUnavailable
from acewatchd.acestep.server import ServerManager
from acewatchd.config.load import load_config
from acewatchd.config.schema import Config
from acewatchd.errors import AcewatchdError
from acewatchd.simulator.harness import free_port

HAVE_SIMULATOR = importlib.util.find_spec("acewatchd.simulator.app") is not None
needs_simulator = pytest.mark.skipif(not HAVE_SIMULATOR,
                                     reason="the simulator app (issue 3) is not there yet")


def write_config(home: Path, port: int, command: list[str], **acestep: object) -> Config:
    (home / "acestep").mkdir(parents=True, exist_ok=True)
    table = {"root": "acestep", "url": f"http://127.0.0.1:{port}", "manage_server": True,
             "server_command": command, "startup_timeout_seconds": 90.0,
             "timeout_seconds": 30.0, **acestep}
    (home / "config.toml").write_text(tomli_w.dumps({"acestep": table}), encoding="utf-8")
    return load_config(home / "config.toml")


def sim_command(home: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "acewatchd", "simulate", "--root", str(home / "acestep"),
            "--port", str(port), "--speed", "50"]


@pytest.fixture()
def manager_for(tmp_path: Path) -> Iterator:
    made: list[ServerManager] = []

    def make(cfg: Config) -> ServerManager:
        mgr = ServerManager(lambda: cfg, cfg.paths.logs)
        made.append(mgr)
        return mgr

    yield make
    for mgr in made:
        mgr.stop(time.monotonic() + 10)


@needs_simulator
def test_start_answers_restart_and_stop(tmp_path: Path, manager_for) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port, sim_command(tmp_path, port))
    mgr = manager_for(cfg)
    assert mgr.managed and not mgr.running()
    mgr.ensure_running()
    first = mgr.pid
    assert first is not None and serverproc.port_open("127.0.0.1", port)
    assert (cfg.paths.state / "acestep-server.pid").exists()
    assert "acewatchd starts ACE-Step" in (cfg.paths.logs / "acestep.log").read_text()
    mgr.ensure_running()  # already up: same process
    assert mgr.pid == first
    mgr.restart()
    assert mgr.pid not in (None, first)
    with mgr.client() as client:  # the restarted server really serves the API
        assert client.session_hash
    second = mgr.pid
    mgr.stop()
    assert not mgr.running() and not serverproc._pid_alive(second)
    assert not serverproc.port_open("127.0.0.1", port)
    assert not (cfg.paths.state / "acestep-server.pid").exists()


def _orphaned_server(tmp_path: Path) -> tuple[Any, int]:
    """A managed server left running by a daemon that died without stopping it (kill -9)."""
    port = free_port()
    cfg = write_config(tmp_path, port, sim_command(tmp_path, port))
    crashed = ServerManager(lambda: cfg, cfg.paths.logs)
    crashed.ensure_running()
    orphan = crashed.pid
    assert orphan is not None
    crashed._proc = None
    return cfg, orphan


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while serverproc._pid_alive(pid) and not _is_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not serverproc._pid_alive(pid) or _is_zombie(pid)


@needs_simulator
def test_orphan_from_a_killed_daemon_is_taken_over_and_stopped(tmp_path: Path,
                                                               manager_for) -> None:
    cfg, orphan = _orphaned_server(tmp_path)
    mgr = manager_for(cfg)
    try:
        mgr.ensure_running()
        assert mgr.pid == orphan
        mgr.stop()
        assert _gone(orphan)
    finally:
        os.killpg(orphan, signal.SIGKILL) if serverproc._pid_alive(orphan) else None


@needs_simulator
def test_an_orphan_is_stopped_when_the_daemon_starts(tmp_path: Path, manager_for) -> None:
    """kill -9 of the daemon left its ACE-Step running: the next daemon's start-up stops it
    (not only the next night's run)."""
    cfg, orphan = _orphaned_server(tmp_path)
    try:
        mgr = manager_for(cfg)
        mgr.start()                                  # the Component start, at daemon start-up
        assert _gone(orphan) and not mgr.running()
    finally:
        os.killpg(orphan, signal.SIGKILL) if serverproc._pid_alive(orphan) else None


def _is_zombie(pid: int) -> bool:
    # The orphan is still our child in this test process; reap it.
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def test_command_that_dies_reports_last_log_lines(tmp_path: Path, manager_for) -> None:
    port = free_port()
    script = "import sys; print('loading checkpoints...'); print('RuntimeError: no models'); " \
             "sys.exit(3)"
    cfg = write_config(tmp_path, port, [sys.executable, "-c", script])
    mgr = manager_for(cfg)
    with pytest.raises(AcewatchdError) as err:
        mgr.ensure_running()
    text = str(err.value)
    assert "exited with code 3" in text and "RuntimeError: no models" in text
    assert str(cfg.paths.logs / "acestep.log") in text
    assert not mgr.running()


def test_missing_executable_is_named(tmp_path: Path, manager_for) -> None:
    cfg = write_config(tmp_path, free_port(), ["no-such-acestep-binary", "--port", "1"])
    with pytest.raises(AcewatchdError, match="port 1 but"):
        manager_for(cfg).ensure_running()
    cfg = write_config(tmp_path, free_port(), ["no-such-acestep-binary"])
    with pytest.raises(AcewatchdError, match="'no-such-acestep-binary' not found"):
        manager_for(cfg).ensure_running()


def test_server_that_never_answers_times_out_and_is_killed(tmp_path: Path,
                                                           manager_for) -> None:
    # Ignores SIGTERM too, so the SIGKILL after the grace period is what ends it.
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('warming up', flush=True); time.sleep(600)")
    cfg = write_config(tmp_path, free_port(), [sys.executable, "-c", script],
                       startup_timeout_seconds=2.0)
    mgr = manager_for(cfg)
    started = time.monotonic()
    with pytest.raises(AcewatchdError, match="did not answer within 2s") as err:
        mgr.ensure_running()
    assert "warming up" in str(err.value)
    assert time.monotonic() - started < 2 + 10 + 6
    assert not mgr.running()


class _NotGradio(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<html>some other web app</html>")

    def log_message(self, *args: object) -> None:
        pass


def test_port_taken_by_something_else_is_reported_clearly(tmp_path: Path,
                                                          manager_for) -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotGradio)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        cfg = write_config(tmp_path, port, [sys.executable, "-c", "print('never started')"])
        with pytest.raises(AcewatchdError, match=f"port {port} on 127.0.0.1 .* already taken"
                                                 " by another program"):
            manager_for(cfg).ensure_running()
        assert not (cfg.paths.logs / "acestep.log").exists()  # nothing was started
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_unmanaged_only_connects(tmp_path: Path, manager_for) -> None:
    cfg = write_config(tmp_path, free_port(), [sys.executable, "-c", "raise SystemExit(9)"],
                       manage_server=False)
    mgr = manager_for(cfg)
    assert not mgr.managed
    with pytest.raises(ServerUnavailable):
        mgr.ensure_running()
    mgr.restart()
    mgr.stop()
    assert not (cfg.paths.logs / "acestep.log").exists()


def test_stop_during_start_up_interrupts_it(tmp_path: Path, manager_for) -> None:
    # The daemon shutting down while the nightly waits for a slow ACE-Step start-up.
    cfg = write_config(tmp_path, free_port(), [sys.executable, "-c",
                                               "import time; time.sleep(600)"])
    mgr = manager_for(cfg)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            mgr.ensure_running()
        except AcewatchdError as exc:
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    deadline = time.monotonic() + 30
    while mgr.pid is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = mgr.pid
    assert pid is not None
    mgr.stop(time.monotonic() + 5)
    thread.join(15)
    assert not thread.is_alive()
    assert errors and "start-up was interrupted" in str(errors[0])
    assert not serverproc._pid_alive(pid)


def test_no_start_after_daemon_shutdown(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, free_port(), [sys.executable, "-c", "print(1)"])
    stop = threading.Event()
    stop.set()
    mgr = ServerManager(lambda: cfg, cfg.paths.logs, stop_event=stop)
    with pytest.raises(AcewatchdError, match="shutting down"):
        mgr.ensure_running()


def test_terminate_group_kills_children_too(tmp_path: Path) -> None:
    # A leader that starts a child (like `uv run` starting python); both must go.
    script = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', "
              "'import time; time.sleep(600)']); print(p.pid, flush=True); time.sleep(600)")
    proc = serverproc.launch([sys.executable, "-c", script], cwd=tmp_path, env={},
                             log_path=tmp_path / "acestep.log", pid_path=tmp_path / "pid")
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline and not text.strip().splitlines()[1:]:
        text = (tmp_path / "acestep.log").read_text()
        time.sleep(0.1)
    child = int(text.strip().splitlines()[-1])
    proc.terminate_group(time.monotonic() + 5, grace=2)
    assert not proc.alive()
    end = time.monotonic() + 10
    while serverproc._pid_alive(child) and time.monotonic() < end:
        time.sleep(0.1)
    assert not serverproc._pid_alive(child)
