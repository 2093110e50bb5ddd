"""Fault switches of the ACE-Step SIMULATOR (a test double).

A fault is a string ``NAME`` or ``NAME=VALUE``. Given at start with ``--fault`` and/or live
through ``<root>/.simulator/faults.json`` (a JSON list of such strings), which the server
re-reads on every call; ``SimHandle.set_faults()`` writes that file.

| fault | effect |
|---|---|
| ``refuse`` | connections are refused: the process waits without listening until the fault is gone (like ACE-Step still loading). Live, the harness stops the server instead. |
| ``error=ENDPOINT:N`` | the N-th call (1-based, counted in calls.json) of ENDPOINT fails with a gr.Error; ``N`` may be ``*`` for every call. ENDPOINT like ``/generation_wrapper``. |
| ``hang=ENDPOINT`` | calls of ENDPOINT block until the fault is removed. |
| ``drop`` / ``drop=EPOCH`` | training: the server process dies abruptly (stream lost) once it reaches EPOCH (default: the first saved checkpoint). One-shot: removed from faults.json first. |
| ``slow=FACTOR`` | every handler and the training loop run FACTOR times slower. |
| ``mojibake`` | every emoji of every training text (status and log) becomes U+FFFD, at any impersonated version (f30aee4's own handler texts already lost most of theirs). |
| ``lose-resume`` | training: the resume path is dropped as V1/V2 drop one they cannot see (e.g. ACE-Step started outside its folder): a fresh start from epoch 1, without a word (with f30aee4's warning at f30aee4). |
| ``drop-param=NAME@ENDPOINT`` | start-up only: ENDPOINT is served without parameter NAME. NAME (here and below) as the impersonated version serves it, e.g. ``resume_checkpoint_dir`` at 6d467e4, ``rc`` before. |
| ``rename-param=OLD=NEW@ENDPOINT`` | start-up only: parameter OLD of ENDPOINT is named NEW. |
| ``add-param=NAME@ENDPOINT`` | start-up only: ENDPOINT gets an extra REQUIRED parameter NAME. |
| ``lora-no-effect`` | generation: a loaded, enabled LoRA changes nothing; its clips are the base clips byte for byte (an adapter that loads without error and is never applied). |
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

FAULT_NAMES = ("refuse", "error", "hang", "drop", "slow", "drop-param", "rename-param",
               "add-param", "mojibake", "lose-resume", "lora-no-effect")
CONTROL_FILE = "faults.json"
CALLS_FILE = "calls.json"


def state_dir(root: Path) -> Path:
    return Path(root) / ".simulator"


def split(fault: str) -> tuple[str, str]:
    name, _, value = fault.partition("=")
    name = name.strip()
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown simulator fault {fault!r} (known: {', '.join(FAULT_NAMES)})")
    return name, value.strip()


@dataclass
class Faults:
    """Parsed live faults."""

    refuse: bool = False
    errors: dict[str, set[str]] = field(default_factory=dict)  # endpoint -> {"3", "*"}
    hang: set[str] = field(default_factory=set)
    drop: int | None = None  # epoch; 0 = first checkpoint
    slow: float = 1.0
    mojibake: bool = False
    lose_resume: bool = False
    lora_no_effect: bool = False
    raw: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, items: list[str]) -> Faults:
        f = cls(raw=list(items))
        for item in items:
            name, value = split(item)
            if name == "refuse":
                f.refuse = True
            elif name == "error":
                endpoint, _, nth = value.rpartition(":")
                f.errors.setdefault(endpoint, set()).add(nth or "*")
            elif name == "hang":
                f.hang.add(value)
            elif name == "drop":
                f.drop = int(value) if value else 0
            elif name == "mojibake":
                f.mojibake = True
            elif name == "lose-resume":
                f.lose_resume = True
            elif name == "lora-no-effect":
                f.lora_no_effect = True
            elif name == "slow":
                f.slow = max(float(value or 10), 1e-3)
        return f

    def errors_on(self, endpoint: str, nth: int) -> bool:
        marks = self.errors.get(endpoint, set())
        return "*" in marks or str(nth) in marks


Alterations = tuple[dict[str, set[str]], dict[str, dict[str, str]], dict[str, list[str]]]


def api_alterations(items: list[str]) -> Alterations:
    """(dropped {endpoint: {param}}, renamed {endpoint: {old: new}}, added {endpoint: [new]})
    from the start-up faults."""
    dropped: dict[str, set[str]] = {}
    renamed: dict[str, dict[str, str]] = {}
    added: dict[str, list[str]] = {}
    for item in items:
        name, value = split(item)
        if name not in ("drop-param", "rename-param", "add-param"):
            continue
        spec, _, endpoint = value.rpartition("@")
        if name == "drop-param":
            dropped.setdefault(endpoint, set()).add(spec)
        elif name == "add-param":
            added.setdefault(endpoint, []).append(spec)
        else:
            old, _, new = spec.partition("=")
            renamed.setdefault(endpoint, {})[old] = new
    return dropped, renamed, added


def read_control(root: Path) -> list[str]:
    path = state_dir(root) / CONTROL_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


def write_control(root: Path, items: list[str]) -> None:
    for item in items:
        split(item)  # validate before writing
    d = state_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{CONTROL_FILE}.tmp"
    tmp.write_text(json.dumps(list(items)), encoding="utf-8")
    tmp.replace(d / CONTROL_FILE)


class CallCounter:
    """Per-endpoint call counts persisted to calls.json (survives restarts of the server)."""

    def __init__(self, root: Path) -> None:
        self.path = state_dir(root) / CALLS_FILE
        self._lock = threading.Lock()

    def read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def bump(self, endpoint: str) -> int:
        with self._lock:
            counts = self.read()
            counts[endpoint] = counts.get(endpoint, 0) + 1
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{CALLS_FILE}.tmp")
            tmp.write_text(json.dumps(counts, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)
            return counts[endpoint]
