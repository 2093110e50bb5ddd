"""Doctor checks that talk to the server: is ACE-Step there, is its API one acewatchd can drive,
and is its port taken by something else."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from acewatchd.doctor.check import Check

logger = logging.getLogger(__name__)
ACESTEP_MARKERS = ("/generation_wrapper", "/training_wrapper", "/load_lora")


def port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def fetch_json(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8", errors="replace"))


def describe_listener(port: int) -> str:
    """Best effort: which process listens on ``port`` (psutil; may need privileges)."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                proc = psutil.Process(conn.pid)
                return f" (pid {conn.pid}: {' '.join(proc.cmdline())[:120]})"
    except Exception as exc:  # noqa: BLE001 - purely informational
        logger.debug("cannot tell who listens on %d: %s", port, exc)
    return ""


def looks_like_acestep(base: str, timeout: float) -> tuple[bool, str]:
    """(is a Gradio app with ACE-Step's endpoints, what it is)."""
    try:
        config = fetch_json(base.rstrip("/") + "/config", timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"not a Gradio app ({exc})"
    deps = config.get("dependencies", []) if isinstance(config, dict) else []
    names = {f"/{d.get('api_name')}" for d in deps if isinstance(d, dict)}
    if not any(m in names for m in ACESTEP_MARKERS):
        return False, f"a Gradio app without ACE-Step's endpoints ({config.get('title', '?')})"
    return True, str(config.get("title") or "Gradio")


def check_server(url: str, *, manage_server: bool, timeout: float = 10.0) -> list[Check]:
    from acewatchd.acestep.client import AceStepClient
    from acewatchd.acestep.errors import ContractMismatch, ServerUnavailable

    parts = urlparse(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if not port_open(host, port):
        if manage_server:
            return [Check("ACE-Step server", True, f"not running at {url}; acewatchd starts it"
                          " before the nightly run")]
        return [Check("ACE-Step server", False, f"nothing listens at {url}",
                      "start ACE-Step (`uv run acestep --port "
                      f"{port}`) or set [acestep] manage_server = true")]
    ours, what = looks_like_acestep(url, timeout)
    if not ours:
        return [Check(f"port {port}", False, f"taken by something that is not ACE-Step: {what}"
                      + describe_listener(port),
                      "stop that program or move ACE-Step and [acestep] url to another port")]
    try:
        with AceStepClient(url, timeout=timeout, retries=0):
            pass
    except ContractMismatch as exc:
        return [Check("ACE-Step server", True, f"reachable at {url}"),
                Check("ACE-Step API", False, str(exc),
                      "use an ACE-Step version compatible with snapshot f30aee4")]
    except ServerUnavailable as exc:
        return [Check("ACE-Step server", False, str(exc), f"check that {url} answers")]
    note = " (SIMULATOR)" if "SIMULATOR" in what else ""
    return [Check("ACE-Step server", True, f"reachable at {url}{note}"),
            Check("ACE-Step API", True, "all endpoints and parameters acewatchd uses match")]
