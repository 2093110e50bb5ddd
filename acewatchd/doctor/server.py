"""Doctor checks that talk to the server: is ACE-Step there, is its API one acewatchd can drive
(and which known version's), is its port taken by something else, and does a server the user
started resolve acewatchd's root-relative paths in ACE-Step's folder."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from acewatchd.acestep import layout, versions
from acewatchd.acestep.apicheck import ApiMatch
from acewatchd.acestep.errors import (
    AceStepError,
    ContractMismatch,
    ServerUnavailable,
    UnsupportedVersion,
)
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


def check_server(url: str, *, manage_server: bool, timeout: float = 10.0,
                 root: Path | None = None) -> list[Check]:
    """Is ACE-Step there, which known API does it serve, and (for a server the user started,
    when ``root`` is given) does it resolve acewatchd's root-relative paths in ``root``?"""
    from acewatchd.acestep.client import AceStepClient

    parts = urlparse(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    skipped = [Check(PATHS_CHECK, True, "not checked: acewatchd starts the server itself")] \
        if manage_server else []
    if not port_open(host, port):
        if manage_server:
            return [Check("ACE-Step server", True, f"not running at {url}; acewatchd starts it"
                          " before the nightly run"), *skipped]
        return [Check("ACE-Step server", False, f"nothing listens at {url}",
                      "start ACE-Step (`uv run acestep --port "
                      f"{port}`) or set [acestep] manage_server = true")]
    ours, what = looks_like_acestep(url, timeout)
    if not ours:
        return [Check(f"port {port}", False, f"taken by something that is not ACE-Step: {what}"
                      + describe_listener(port),
                      "stop that program or move ACE-Step and [acestep] url to another port")]
    note = " (SIMULATOR)" if "SIMULATOR" in what else ""
    reachable = Check("ACE-Step server", True, f"reachable at {url}{note}")
    try:
        with AceStepClient(url, timeout=timeout, retries=0) as client:
            checks = [reachable, api_check(client.api_match)]
            if not manage_server:  # acewatchd's own server_command loads them
                checks.append(check_models(client))
            if root is not None and not manage_server:
                checks.append(check_relative_paths(client, root))
    except UnsupportedVersion as exc:
        return [reachable, Check("ACE-Step API", False, str(exc), versions.UPDATE_HINT)]
    except ContractMismatch as exc:
        return [reachable, Check("ACE-Step API", False, "; ".join(exc.problems)[:1500],
                                 f"use ACE-Step {versions.V1.title} or {versions.V2.title}")]
    except ServerUnavailable as exc:
        return [Check("ACE-Step server", False, str(exc), f"check that {url} answers")]
    return checks + skipped


def api_check(match: ApiMatch) -> Check:
    """Which contract the server's API matched (and what differed, if it matched none)."""
    warnings = "; ".join(match.warnings)
    if match.contract is None:
        return Check("ACE-Step API", True, f"{match.summary}: every endpoint and parameter "
                     "acewatchd uses is there" + (f" (note: {warnings})" if warnings else ""))
    known = versions.VERSIONS[match.contract]
    return Check("ACE-Step API", True, f"matches the {known.label} contract ({known.commit}, "
                 f"{known.date}): every endpoint and parameter acewatchd uses"
                 + (f" (note: {warnings})" if warnings else ""))


MODELS_CHECK = "ACE-Step models"


class _Calls(Protocol):
    def call(self, api_name: str, **named: Any) -> Any: ...


def check_models(client: _Calls) -> Check:
    """A harmless /load_lora with no path: a server that has not loaded its models (ACE-Step
    starts with --init_service false by default) says so before it looks at the path, and
    every training and render would fail with that."""
    try:
        out = client.call("/load_lora", lora_path="")
    except AceStepError as exc:
        return Check(MODELS_CHECK, False, f"could not ask the server: {exc}",
                     "check that ACE-Step answers")
    text = str(out[0] if isinstance(out, (list, tuple)) else out).strip()
    if "not initialized" in text.lower():
        return Check(MODELS_CHECK, False, f"the server has not loaded its models ({text})",
                     "start ACE-Step with `--init_service true` (or load the models in its UI), "
                     "or set [acestep] manage_server = true")
    if "quantized" in text.lower():
        return Check(MODELS_CHECK, False, f"LoRAs cannot be loaded: {text}",
                     "start ACE-Step without quantization to train and render LoRAs")
    return Check(MODELS_CHECK, True, "loaded (the server answers LoRA calls)")


# --------------------------------------------------------------------------- relative paths

PATHS_CHECK = "ACE-Step working folder"
PROBE_PREFIX = ".doctor-probe-"
_EMPTY = re.compile(r"no \.pt tensor files found in (?P<path>.+)$|"
                    r"found 0 tensor files in (?P<listed>.+?)(?: \[[^\]]*\])?$",
                    re.IGNORECASE | re.MULTILINE)


class _Loads(Protocol):
    def load_training_dataset(self, tensor_dir: str) -> str: ...


def check_relative_paths(client: _Loads, root: Path) -> Check:
    """Ask the server to load an empty folder under ``root`` by its ``./`` path: a server whose
    working folder is not ``root`` cannot find it (V2 also refuses what resolves outside its
    working folder, CONTRACT §9c). The folder is removed afterwards whatever happens."""
    parent = root / layout.DATASETS
    made = [p for p in (parent.parent, parent) if not p.exists()]
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=PROBE_PREFIX, dir=parent))
    except OSError as exc:
        _remove_empty(made)
        return Check(PATHS_CHECK, False, f"cannot create a probe folder in {parent}: "
                     f"{exc.strerror or exc}", f"make {root} writable for this user")
    sent = layout.rel(layout.DATASETS / probe.name)
    try:
        try:
            answer = client.load_training_dataset(sent)
        except ServerUnavailable as exc:
            return Check(PATHS_CHECK, False, f"could not ask the server: {exc}",
                         "check that ACE-Step answers, then run `acewatchd doctor` again")
        except AceStepError as exc:  # JobFailed: "❌ …" answers
            answer = str(exc)
        return judge_probe(answer, root, probe, sent)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
        _remove_empty(made)


def judge_probe(answer: str, root: Path, probe: Path, sent: str) -> Check:
    """Did the server find ``probe`` (empty) when sent ``sent``? From its answer's text."""
    fix = (f"start ACE-Step from its own folder (its working folder must be {root}), e.g. "
           f"`cd {root} && uv run acestep`, or set [acestep] manage_server = true; "
           "[acestep] root must be the folder that server runs from")
    text = answer.strip()
    first = text.splitlines()[0] if text else "(no answer)"
    match = _EMPTY.search(text)
    if match is None:
        why = "it cannot find that folder" if "not found" in text.lower() else \
            "it refused that path" if "unsafe" in text.lower() else "unexpected answer"
        return Check(PATHS_CHECK, False, f"sent {sent}, {why}: {first}", fix)
    where = (match.group("path") or match.group("listed") or "").strip()
    if where == sent or _same_folder(where, probe):
        return Check(PATHS_CHECK, True, f"the server resolves {sent} in {root}")
    return Check(PATHS_CHECK, False, f"sent {sent}, the server looked in {where}, not under "
                 f"{root}", fix)


def _same_folder(reported: str, probe: Path) -> bool:
    path = Path(reported)
    if not path.is_absolute():
        return False
    try:
        return os.path.samefile(path, probe)
    except OSError:
        return False


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):  # the ones this check created, innermost first
        try:
            folder.rmdir()
        except OSError:
            pass
