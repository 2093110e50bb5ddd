"""Process plumbing for the managed ACE-Step server (see server.py for the policy).

A server process is either our child (a ``Popen``) or an orphan a killed acewatchd left behind,
found again through the pid file. Either way it leads its own process group, so stopping it
signals the whole tree (``uv run`` -> python -> workers).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from acewatchd.errors import AcewatchdError
from acewatchd.util.files import atomic_write_text

ROTATE_BYTES = 20_000_000
TAIL_LINES = 25


class ServerProcess:
    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None,
                 log_offset: int = 0) -> None:
        self.pid = pid
        self.popen = popen
        self.log_offset = log_offset  # where this start's output begins in acestep.log

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _pid_alive(self.pid)

    def exited(self) -> bool:
        return not self.alive()

    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def terminate_group(self, deadline: float, grace: float) -> None:
        """SIGTERM the group; SIGKILL once ``grace`` or the deadline (monotonic) has passed."""
        _signal_group(self.pid, signal.SIGTERM)
        kill_at = min(deadline, time.monotonic() + grace)
        if not self._wait_gone(kill_at):
            _signal_group(self.pid, signal.SIGKILL)
            self._wait_gone(time.monotonic() + 5.0)
        # Children of the group (e.g. uv's python) may outlive the leader briefly.
        _signal_group(self.pid, signal.SIGKILL)

    def _wait_gone(self, until: float) -> bool:
        while True:
            if not self.alive():
                return True
            if time.monotonic() >= until:
                return False
            time.sleep(0.1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def launch(command: list[str], *, cwd: Path, env: Mapping[str, str], log_path: Path,
           pid_path: Path) -> ServerProcess:
    if not command:
        raise AcewatchdError("[acestep] server_command is empty")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _rotate(log_path)
    with open(log_path, "ab") as log:
        offset = log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} acewatchd starts ACE-Step in {cwd}: {command} ===\n"
                  .encode())
        log.flush()
        try:
            popen = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env},
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        except FileNotFoundError:
            raise AcewatchdError(f"[acestep] server_command: {command[0]!r} not found on PATH"
                                 f" ({os.environ.get('PATH', '')})") from None
        except OSError as exc:
            raise AcewatchdError(
                f"[acestep] server_command: cannot run {command[0]!r}: {exc}") from None
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(pid_path, json.dumps({"pid": popen.pid, "command": command}))
    return ServerProcess(popen.pid, popen, offset)


def _rotate(log_path: Path) -> None:
    try:
        if log_path.stat().st_size > ROTATE_BYTES:
            os.replace(log_path, log_path.with_name(log_path.name + ".1"))
    except FileNotFoundError:
        pass


def find_orphan(pid_path: Path, command: list[str]) -> ServerProcess | None:
    """The server a previous acewatchd started, if that very process is still running."""
    try:
        info = json.loads(pid_path.read_text(encoding="utf-8"))
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.get("command") != command or not _pid_alive(pid) or not _is_group_leader(pid):
        pid_path.unlink(missing_ok=True)
        return None
    if not _args_match(pid, command):  # the pid was reused by something else
        pid_path.unlink(missing_ok=True)
        return None
    return ServerProcess(pid)


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except OSError:
        return False


def _args_match(pid: int, command: list[str]) -> bool:
    # `ps -o args=` exists on macOS and Linux; the command's arguments must all be there.
    try:
        out = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True,
                             text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip()) and " ".join(command[1:]) in out


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(path: Path, offset: int = 0, lines: int = TAIL_LINES) -> str:
    """The last lines written since ``offset`` (this start's output only)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join("  | " + ln for ln in kept) or "  | (nothing was printed)"
