"""The managed ACE-Step server: started shortly before the night's work, stopped after it.

With ``[acestep] manage_server = true`` acewatchd runs ``server_command`` in the ACE-Step root
(``server_env`` added to the environment), appends its output to ``logs/acestep.log``, and
calls it ready only once it answers *and* its Gradio API matches what acewatchd needs
(``AceStepClient.connect()``). ACE-Step keeps the LoRA decoder wrapped after training
(CONTRACT Risks 8), so render asks for a ``restart()``; the nightly job ``stop()``s it so the
Mac's memory is free by day. Without ``manage_server`` acewatchd only connects: ensure_running
checks the server is there, restart/stop do nothing.

The server runs in its own process group (``uv run`` starts a child python), so a stop
signals the whole tree: SIGTERM, a grace period, then SIGKILL. Its pid goes to
``state/acestep-server.pid`` so a daemon that was killed (kill -9, crash) finds and stops the
orphan it left instead of leaving several GB of model in memory.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from acewatchd.acestep import serverproc
from acewatchd.acestep.errors import ContractMismatch, ServerUnavailable
from acewatchd.config.schema import AceStep, Config
from acewatchd.errors import AcewatchdError

if TYPE_CHECKING:
    from acewatchd.acestep.client import AceStepClient

logger = logging.getLogger(__name__)

LOG_NAME = "acestep.log"
PID_NAME = "acestep-server.pid"
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.5


class ServerManager:
    """Component "acestep-server"; also the object train/render/nightly ask for a server."""

    name = "acestep-server"

    def __init__(self, config_getter: Callable[[], Config], logs_dir: Path | None = None, *,
                 stop_event: threading.Event | None = None) -> None:
        self._config = config_getter
        self._logs_dir = logs_dir
        self._shutdown = stop_event or threading.Event()  # the daemon's: never start after it
        self._abort = threading.Event()  # set by stop(): a start-up in progress gives up
        self._lock = threading.RLock()
        self._proc: serverproc.ServerProcess | None = None

    # ------------------------------------------------------------------ properties
    @property
    def managed(self) -> bool:
        return bool(self._config().acestep.manage_server)

    @property
    def url(self) -> str:
        return self._config().acestep.url

    @property
    def log_path(self) -> Path:
        return (self._logs_dir or self._config().paths.logs) / LOG_NAME

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.alive() else None

    def running(self) -> bool:
        return self.pid is not None

    def client(self) -> AceStepClient:
        """A new session with the current url/timeout (gradio_client imported only now)."""
        from acewatchd.acestep.client import AceStepClient

        ace = self._config().acestep
        return AceStepClient(ace.url, timeout=ace.timeout_seconds)

    # ------------------------------------------------------------------ lifecycle
    def ensure_running(self) -> None:
        """Return once ACE-Step answers with a matching API; start it first if managed."""
        ace = self._config().acestep
        if not ace.manage_server:
            self._check_api(ace, retries=1)
            return
        self._abort.clear()
        with self._lock:
            if self._shutdown.is_set():
                raise AcewatchdError("acewatchd is shutting down: not starting ACE-Step")
            if self._proc is None:
                self._proc = self._adopt_orphan(ace)
            if self._proc is not None and self._proc.alive() and self._answers(ace):
                return
            self._stop_locked(time.monotonic() + STOP_GRACE_SECONDS)
            self._start(ace)

    def restart(self) -> None:
        """Fresh ACE-Step process (unwraps the decoder after training); no-op when unmanaged."""
        if not self.managed:
            logger.info("ACE-Step is not managed by acewatchd: not restarting it")
            return
        logger.info("restarting the managed ACE-Step server")
        self.stop()
        self.ensure_running()

    def stop(self, deadline: float | None = None) -> None:
        """Stop a managed server (SIGTERM to its group, SIGKILL after a grace period)."""
        self._abort.set()
        if deadline is None:
            deadline = time.monotonic() + STOP_GRACE_SECONDS
        with self._lock:
            self._stop_locked(deadline)

    # Component protocol: the daemon starts nothing here (the server runs only at night),
    # hands over config reloads, and stops the server at shutdown via stop(deadline).
    def start(self) -> None:
        ace = self._config().acestep
        logger.info("ACE-Step server: %s at %s", "managed" if ace.manage_server else
                    "not managed (connect only)", ace.url)
        if ace.manage_server:
            self._stop_orphan(ace)

    def _stop_orphan(self, ace: AceStep) -> None:
        """A server an earlier acewatchd started and never stopped (it was killed) holds the
        Mac's memory and the port: stop it now, not only when the next night needs one (the
        pre-start or the night starts a fresh one)."""
        with self._lock:
            if self._proc is not None:
                return
            self._proc = self._adopt_orphan(ace)
            if self._proc is not None:
                logger.warning("stopping the ACE-Step server (pid %s) a previous acewatchd left "
                               "running", self._proc.pid)
                self._stop_locked(time.monotonic() + STOP_GRACE_SECONDS)

    def apply_config(self, cfg: Config) -> None:
        # The getter already returns the new config; a changed command takes effect at the
        # next start. Turning management off stops a server acewatchd started.
        if not cfg.acestep.manage_server and self.running():
            logger.info("manage_server turned off: stopping the ACE-Step server acewatchd started")
            self.stop()

    # ------------------------------------------------------------------ internals
    def _start(self, ace: AceStep) -> None:
        _check_port_matches(ace)
        host, port = _host_port(ace.url)
        if serverproc.port_open(host, port):
            self._explain_port_taken(ace, host, port)
        if not ace.root.is_dir():
            raise AcewatchdError(f"[acestep] root: {ace.root} is not a folder (the managed "
                                 "server runs there)")
        self._proc = serverproc.launch(ace.server_command, cwd=ace.root, env=ace.server_env,
                                       log_path=self.log_path, pid_path=self._pid_path())
        logger.info("started ACE-Step (pid %s): %s", self._proc.pid,
                    " ".join(ace.server_command))
        self._wait_ready(ace)

    def _wait_ready(self, ace: AceStep) -> None:
        assert self._proc is not None
        offset = self._proc.log_offset
        deadline = time.monotonic() + ace.startup_timeout_seconds
        started = time.monotonic()
        while True:
            if self._proc.exited():
                code = self._proc.returncode()
                self._forget()
                raise self._failure(f"exited with code {code} while starting", offset)
            if self._answers(ace):
                logger.info("ACE-Step is ready at %s after %.1fs", ace.url,
                            time.monotonic() - started)
                return
            if time.monotonic() >= deadline or self._abort.is_set() or self._shutdown.is_set():
                why = (f"did not answer within {ace.startup_timeout_seconds:g}s"
                       if time.monotonic() >= deadline else "start-up was interrupted")
                self._stop_locked(time.monotonic() + STOP_GRACE_SECONDS)
                raise self._failure(why, offset)
            self._abort.wait(POLL_SECONDS)

    def _answers(self, ace: AceStep) -> bool:
        """True once Gradio serves its config and the API matches (ContractMismatch raises)."""
        if not serverproc.http_ok(ace.url.rstrip("/") + "/config"):
            return False
        try:
            self._check_api(ace, retries=0)
        except ServerUnavailable:
            return False
        except ContractMismatch:
            self._stop_locked(time.monotonic() + STOP_GRACE_SECONDS)
            raise
        return True

    def _check_api(self, ace: AceStep, retries: int) -> None:
        from acewatchd.acestep.client import AceStepClient

        client = AceStepClient(ace.url, timeout=min(ace.timeout_seconds, 30.0),
                               retries=retries, backoff=1.0)
        try:
            client.connect()
        finally:
            client.close()

    def _explain_port_taken(self, ace: AceStep, host: str, port: int) -> None:
        try:
            self._check_api(ace, retries=0)
        except (ServerUnavailable, ContractMismatch) as exc:
            raise AcewatchdError(
                f"port {port} on {host} ([acestep] url {ace.url}) is already taken by another"
                f" program that is not a usable ACE-Step ({exc}); stop it or move ACE-Step to a"
                " free port (change --port in server_command and the url together)") from exc
        # Someone else's ACE-Step (started by hand?): use it, but it is not ours to stop.
        raise AcewatchdError(
            f"an ACE-Step server that acewatchd did not start is already running at {ace.url};"
            " stop it, or set [acestep] manage_server = false to use it as it is")

    def _adopt_orphan(self, ace: AceStep) -> serverproc.ServerProcess | None:
        orphan = serverproc.find_orphan(self._pid_path(), ace.server_command)
        if orphan is not None:
            logger.warning("found the ACE-Step server (pid %s) a previous acewatchd left "
                           "running; taking it over", orphan.pid)
        return orphan

    def _stop_locked(self, deadline: float) -> None:
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.alive():
            logger.info("stopping ACE-Step (pid %s)", proc.pid)
            proc.terminate_group(deadline, STOP_GRACE_SECONDS)
        self._pid_path().unlink(missing_ok=True)

    def _forget(self) -> None:
        self._proc = None
        self._pid_path().unlink(missing_ok=True)

    def _pid_path(self) -> Path:
        return self._config().paths.state / PID_NAME

    def _failure(self, what: str, offset: int) -> AcewatchdError:
        tail = serverproc.log_tail(self.log_path, offset)
        command = " ".join(self._config().acestep.server_command)
        return AcewatchdError(f"the ACE-Step server ({command}) {what}; last lines of"
                              f" {self.log_path}:\n{tail}")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def _check_port_matches(ace: AceStep) -> None:
    """A --port in the command that differs from the url's port would wait forever."""
    cmd = ace.server_command
    for flag, value in itertools.pairwise(cmd):
        if flag in ("--port", "--server-port") and value != str(_host_port(ace.url)[1]):
            raise AcewatchdError(f"[acestep] server_command starts ACE-Step on port {value} but"
                                 f" [acestep] url is {ace.url}: make them agree")
