"""Shared state of one SIMULATOR process: its root, the ACE-Step version and GPU tier it
impersonates, speed, faults, call counts and the (global, like ACE-Step's dit_handler) LoRA
state."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from acewatchd.acestep import versions
from acewatchd.simulator.faults import CallCounter, Faults, read_control, write_control
from acewatchd.simulator.style import Training

logger = logging.getLogger("acewatchd.SIMULATOR")

DEFAULT_VERSION = versions.NEWEST.commit
TIERS = ("large", "small")
LAYOUTS = ("nested", "flat")


class FaultError(Exception):
    """Raised by a handler when an ``error=`` fault hits; app turns it into gr.Error."""


@dataclass
class LoraState:
    path: str | None = None
    use: bool = False
    scale: float = 1.0
    fingerprint: str = ""
    training: Training | None = None  # what the loaded adapter learned from (style.py)
    # 6d467e4's named adapters (``_active_loras``): name -> fingerprint, in load order.
    adapters: dict[str, str] = field(default_factory=dict)
    active: str | None = None


@dataclass
class SimContext:
    root: Path
    speed: float = 1.0
    # Trainer output layout (orthogonal to the version): "nested" = adapters in adapter/
    # (checkpoints/<name>/adapter, final/adapter); "flat" = adapters saved straight into the
    # checkpoint folder and final/ (CONTRACT §2).
    layout: str = "nested"
    version: versions.AceStepVersion = versions.NEWEST
    tier: str = "large"  # "small": a GPU-less or <= 6 GB GPU (CONTRACT §9c)
    counter: CallCounter = field(init=False)
    lora: LoraState = field(default_factory=LoraState)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.counter = CallCounter(self.root)
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown trainer layout {self.layout!r} (known: {LAYOUTS})")
        if self.tier not in TIERS:
            raise ValueError(f"unknown GPU tier {self.tier!r} (known: {TIERS})")

    def faults(self) -> Faults:
        return Faults.parse(read_control(self.root))

    def delay(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated work, scaled by speed and the slow fault."""
        time.sleep(seconds * self.faults().slow / max(self.speed, 1e-6))

    def enter(self, api: str) -> None:
        """Count the call and apply error/hang faults (re-read on every call)."""
        nth = self.counter.bump(api)
        faults = self.faults()
        logger.info("SIMULATOR call %s #%d faults=%s", api, nth, faults.raw)
        if faults.errors_on(api, nth):
            raise FaultError(f"SIMULATOR fault: error on call {nth} of {api}")
        deadline = time.monotonic() + 3600
        while api in self.faults().hang and time.monotonic() < deadline:
            time.sleep(0.1)

    def crash(self, why: str) -> None:
        """The ``drop`` fault: remove it (one-shot), then die abruptly like a killed server."""
        write_control(self.root, [f for f in read_control(self.root)
                                  if not f.startswith("drop") or f.startswith("drop-param")])
        logger.warning("SIMULATOR dropping the connection: %s (exiting abruptly)", why)
        logging.shutdown()
        os._exit(17)


class UnsafePath(ValueError):
    pass


def safe_path(root: Path, user_path: str) -> Path:
    """ACE-Step's post-snapshot path_safety.safe_path: relative paths join the root; an
    absolute path must equal the root or lie under it (CONTRACT §3)."""
    p = Path(user_path)
    joined = p if p.is_absolute() else root / p
    norm = Path(os.path.normpath(joined))
    if norm != root and not str(norm).startswith(str(root) + os.sep):
        raise UnsafePath(f"Path escapes safe root: '{user_path}' (resolved to '{norm}',"
                         f" root='{root}')")
    return norm


def safe_join(root: Path, user_path: str) -> Path | None:
    """c4cdd99's ``_safe_join``: a relative path under the root, else None (an absolute path
    is always refused)."""
    candidate = (user_path or "").strip()
    if not candidate or os.path.isabs(candidate):
        return None
    joined = Path(os.path.abspath(os.path.join(root, candidate)))
    if joined != root and not str(joined).startswith(str(root) + os.sep):
        return None
    return joined
