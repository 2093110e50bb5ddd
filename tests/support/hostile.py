"""A home for hostile-input tests, placed deep inside a sentinel tree: whatever acewatchd
writes outside the home (a `../../x` that escaped, a stub beside a file a link points at) shows
up as a difference in the sentinel snapshot. Also the daemon's reports, read back: the ledger
(read-only), the JSON-lines log, rejected/ reason files and `status --json`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acewatchd.ledger.events import KV_CONFIG_ERROR
from tests.support.home import Home, run_cli

Entry = tuple[int, int, int, str]  # (mode, size, mtime_ns, link target)


def snapshot(base: Path, skip: Path) -> dict[str, Entry]:
    """Every entry under ``base`` but the ``skip`` subtree, without following links."""
    out: dict[str, Entry] = {}
    for root, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = [d for d in dirs if Path(root, d) != skip]
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            # A folder's mtime changes when an entry is added or removed: that is a write.
            out[os.path.relpath(path, base)] = (st.st_mode, 0 if stat.S_ISDIR(st.st_mode)
                                                else st.st_size, st.st_mtime_ns, target)
    return out


@dataclass
class Reports:
    """What the daemon said, read fresh on each call."""

    home: Home

    def file_row(self, dataset: str, relpath: str) -> sqlite3.Row | None:
        db = self.home.state / "ledger.sqlite3"
        if not db.exists():
            return None
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            row: sqlite3.Row | None = conn.execute(
                "SELECT state, reason FROM files WHERE dataset=? AND relpath=?",
                (dataset, relpath)).fetchone()
            return row
        except sqlite3.OperationalError:
            return None
        finally:
            conn.close()

    def config_error(self) -> str:
        """What the running daemon says about config.toml (status shows the same key)."""
        db = self.home.state / "ledger.sqlite3"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute("SELECT value FROM kv WHERE key=?", (KV_CONFIG_ERROR,)).fetchone()
            return str(row[0] or "") if row else ""
        finally:
            conn.close()

    def log(self) -> list[dict[str, Any]]:
        records = []
        for path in sorted(self.home.logs.glob("acewatchd.jsonl*")):
            for line in path.read_text("utf-8", errors="replace").splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def logged(self, event: str, needle: str) -> list[dict[str, Any]]:
        """Log records whose event starts with ``event`` and that name ``needle``."""
        return [r for r in self.log() if str(r.get("event", "")).startswith(event)
                and needle in json.dumps(r, ensure_ascii=False)]

    def reason(self, dataset: str, relpath: str) -> str:
        """The reason file's sentence for a rejected file ('' if there is none)."""
        folder = self.home.rejected / dataset / Path(relpath).parent
        name = Path(relpath).name
        for candidate in folder.glob("*.reason.txt") if folder.is_dir() else []:
            text = candidate.read_text("utf-8", errors="replace")
            if text.startswith(f"{name} was rejected because"):
                return text
        return ""

    def status(self) -> dict[str, Any]:
        result = run_cli(self.home, "status", "--json", timeout=60)
        assert result.returncode == 0, result.stderr
        doc: dict[str, Any] = json.loads(result.stdout)
        return doc

    def status_text(self) -> subprocess.CompletedProcess[str]:
        return run_cli(self.home, "status", timeout=60)
