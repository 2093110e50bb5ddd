"""The test home: a temp folder with config.toml, and the real CLI run on it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

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


def lock_pid(home: Home) -> int | None:
    try:
        return int((home.state / "acewatchd.lock").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ledger_rows(home: Home, sql: str) -> list[sqlite3.Row]:
    """A query over the home's ledger (a test's look at what the daemon recorded)."""
    conn = sqlite3.connect(home.state / "ledger.sqlite3", timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
