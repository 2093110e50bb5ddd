"""A home for whole-chain tests through the real daemon with a MANAGED simulator: the demo's
config (every-minute schedule, catch-up on), real MP3s dropped in, the ledger read read-only,
and every process the daemons started tracked with psutil so a test can prove none outlives it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import tomli_w

from acewatchd.demo.audiogen import SongTags, make_mp3
from acewatchd.demo.demo import DATASETS, demo_config
from acewatchd.simulator.faults import CONTROL_FILE, state_dir
from acewatchd.simulator.harness import free_port
from acewatchd.util.locks import holder_pid

DATASET = DATASETS[0]
Pid = tuple[int, float]  # (pid, create_time): a pid the OS reuses is another process


class ChainHome:
    def __init__(self, path: Path, speed: float, train: dict[str, Any] | None = None,
                 version: str | None = None, **schedule: Any) -> None:
        """The demo's config for one dataset, the simulator at ``speed`` impersonating
        ``version`` (default the newest); ``schedule`` and ``train`` override keys."""
        self.path = path
        self.port = free_port()
        table = demo_config(path, self.port, speed=speed, datasets=(DATASET,), version=version)
        for name, values in (("schedule", schedule), ("train", train or {})):
            section = table[name]
            assert isinstance(section, dict)
            section.update(values)
        acestep = table["acestep"]
        assert isinstance(acestep, dict)
        self.root = Path(acestep["root"])
        self.root.mkdir(parents=True)
        self.config = path / "config.toml"
        self.config.write_text(tomli_w.dumps(table), encoding="utf-8")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.seen: set[Pid] = set()
        self.songs = 0

    # ------------------------------------------------------------------ the daemon

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.path / f"daemon-{len(self.procs)}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "acewatchd", "--config",
                                 str(self.config), "run"], cwd=self.path, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        self.wait("the daemon to hold its lock",
                  lambda: holder_pid(self.path / "state") == proc.pid, 90, proc)
        return proc

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the daemon alone (not its group): its children become orphans, as with a
        crash or `kill -9 <pid>` by a user."""
        self.track(proc)
        proc.kill()
        proc.wait(30)

    def sigterm(self, proc: subprocess.Popen[bytes]) -> tuple[int, float]:
        """SIGTERM the daemon: its exit code and the seconds it took to exit."""
        self.track(proc)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("daemon still running 30 s after SIGTERM:\n" + self.log_tail())
        return code, time.monotonic() - started

    def server_pid(self) -> int | None:
        """The managed ACE-Step's pid as the daemon recorded it, None when none runs."""
        try:
            return int(json.loads((self.path / "state" / "acestep-server.pid").read_text())
                       ["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def track(self, proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
        """Remember every live descendant of ``proc`` (and proc) for the orphan check."""
        try:
            family = [psutil.Process(proc.pid)]
            family += family[0].children(recursive=True)
        except psutil.Error:
            return []
        for p in family:
            try:
                self.seen.add((p.pid, p.create_time()))
            except psutil.Error:
                continue
        return family[1:]

    def children_running(self, proc: subprocess.Popen[bytes], word: str) -> bool:
        """Whether a descendant of the daemon has ``word`` in its command line."""
        for child in self.track(proc):
            try:
                if any(word in part for part in child.cmdline()):
                    return True
            except psutil.Error:
                continue
        return False

    def survivors(self) -> list[str]:
        """Processes started for this home that are still alive: every tracked descendant,
        and anything whose command line names the home folder."""
        alive = []
        for pid, created in self.seen:
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {' '.join(p.cmdline())[:200]}")
            except psutil.Error:
                continue
        home = str(self.path)
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if home in cmd and p.info["status"] != psutil.STATUS_ZOMBIE \
                    and p.pid != os.getpid() and not any(a.startswith(f"{p.pid} ") for a in alive):
                alive.append(f"{p.pid} {cmd[:200]}")
        return alive

    def cleanup(self) -> None:
        for proc in self.procs:
            self.track(proc)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        server = self.server_pid()
        if server is not None:
            try:
                os.killpg(server, signal.SIGKILL)
            except OSError:
                pass
        for entry in self.survivors():
            try:
                os.kill(int(entry.split()[0]), signal.SIGKILL)
            except OSError:
                pass

    # ------------------------------------------------------------------ inputs and state

    def drop_song(self) -> None:
        """One more song, written beside the drop folder and renamed in (a whole file)."""
        i = self.songs
        self.songs += 1
        title = DATASET.titles[i % len(DATASET.titles)] + f" {i}"
        made = make_mp3(self.path / "made" / f"{title}.mp3", seconds=4 + i % 3,
                        freq=300 + 35 * i, tags=SongTags(title=title, artist=DATASET.artist,
                                                         genre=DATASET.genre))
        target = self.path / "drop" / DATASET.name
        target.mkdir(parents=True, exist_ok=True)
        os.replace(made, target / made.name)

    def drop_songs(self, songs: int) -> None:
        """``songs`` songs of distinct titles at once, early in a minute so that the next
        every-minute fire sees all of them."""
        if 60 - time.time() % 60 < 20:
            time.sleep(60 - time.time() % 60 + 1)
        made = self.path / "made"
        for i in range(songs):
            title = DATASET.titles[i]
            make_mp3(made / f"{title}.mp3", seconds=6 + i, freq=330 + 40 * i,
                     tags=SongTags(title=title, artist=DATASET.artist, genre=DATASET.genre))
        target = self.path / "drop" / DATASET.name
        target.mkdir(parents=True, exist_ok=True)
        for song in sorted(made.iterdir()):
            os.replace(song, target / song.name)

    def stubbed(self) -> int:
        return len(self.rows("SELECT 1 FROM files WHERE state='stubbed'"))

    def set_faults(self, *faults: str) -> None:
        """The simulator re-reads its fault switches on every call (and the next server too)."""
        folder = state_dir(self.root)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{CONTROL_FILE}.tmp"
        tmp.write_text(json.dumps(list(faults)), encoding="utf-8")
        os.replace(tmp, folder / CONTROL_FILE)

    def staging(self) -> list[Path]:
        folder = self.path / "outbox" / DATASET.name
        return sorted(folder.glob(".acewatchd-staging-*")) if folder.is_dir() else []

    def outbox_runs(self) -> list[Path]:
        folder = self.path / "outbox" / DATASET.name
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(
            ".")) if folder.is_dir() else []

    def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        db = self.path / "state" / "ledger.sqlite3"
        if not db.exists():
            return []
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def log_since(self, offset: int) -> str:
        path = self.path / "logs" / "acewatchd.jsonl"
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        try:
            return (self.path / "logs" / "acewatchd.jsonl").stat().st_size
        except OSError:
            return 0

    def wait(self, what: str, cond: Callable[[], Any], timeout: float,
             proc: subprocess.Popen[bytes] | None = None, interval: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = cond()
            if got:
                return got
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"daemon exited ({proc.returncode}) while waiting for {what}:\n"
                            + self.log_tail())
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}:\n" + self.log_tail())
            time.sleep(interval)

    def log_tail(self) -> str:
        parts = []
        logs = [self.path / "logs" / "acewatchd.jsonl", self.path / "logs" / "acestep.log"]
        logs += sorted(self.path.glob("daemon-*.log"))[-1:]
        for path in logs:
            if path.exists():
                lines = path.read_text("utf-8", errors="replace").splitlines()[-25:]
                parts.append(f"--- {path.name}\n" + "\n".join(ln[:400] for ln in lines))
        return "\n".join(parts)
