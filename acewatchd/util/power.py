"""Power: "are we on mains?" and "keep the machine awake while a job runs".

Behind a small interface so Linux and tests work: ``MacPower`` asks ``pmset -g batt`` and holds
a ``caffeinate -i -w <pid>`` assertion (idle sleep only: a closed lid still sleeps, which is the
user's call); ``NullPower`` is the no-op used elsewhere; ``FakePower`` lets tests flip the
power source. Commands are argument lists, never a shell.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Protocol

logger = logging.getLogger(__name__)


class PowerPolicy(Protocol):
    def on_ac_power(self) -> bool: ...

    def hold_awake(self, pid: int | None = None) -> contextlib.AbstractContextManager[None]:
        """No idle sleep while the context is open (and while ``pid`` lives)."""
        ...


class NullPower:
    """Machines without a battery story (Linux servers, CI): always on mains, never asleep."""

    def on_ac_power(self) -> bool:
        return True

    def hold_awake(self, pid: int | None = None) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class FakePower:
    """For tests: ``ac`` is what on_ac_power says; ``held`` counts open hold_awake contexts."""

    def __init__(self, ac: bool = True) -> None:
        self.ac = ac
        self.held = 0
        self.holds_total = 0

    def on_ac_power(self) -> bool:
        return self.ac

    @contextlib.contextmanager
    def hold_awake(self, pid: int | None = None) -> Iterator[None]:
        self.held += 1
        self.holds_total += 1
        try:
            yield
        finally:
            self.held -= 1


def parse_pmset_batt(text: str) -> bool:
    """``pmset -g batt`` first line: "Now drawing from 'AC Power'" or "'Battery Power'".
    Anything else (UPS, unknown) counts as mains: refusing to train is the worse mistake."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return "battery power" not in first.lower()


class MacPower:
    def __init__(self, pmset: str = "/usr/bin/pmset", caffeinate: str = "/usr/bin/caffeinate"):
        self.pmset = pmset if os.path.exists(pmset) else (shutil.which("pmset") or pmset)
        self.caffeinate = (caffeinate if os.path.exists(caffeinate)
                           else (shutil.which("caffeinate") or caffeinate))

    def on_ac_power(self) -> bool:
        try:
            out = subprocess.run([self.pmset, "-g", "batt"], capture_output=True, text=True,
                                 timeout=10, check=False).stdout
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("pmset failed (%s); assuming AC power", exc)
            return True
        return parse_pmset_batt(out)

    @contextlib.contextmanager
    def hold_awake(self, pid: int | None = None) -> Iterator[None]:
        argv = [self.caffeinate, "-i", "-w", str(pid or os.getpid())]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        except OSError as exc:
            logger.warning("caffeinate failed (%s); the Mac may idle-sleep during the job", exc)
            yield
            return
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def default_power() -> PowerPolicy:
    return MacPower() if sys.platform == "darwin" else NullPower()
