"""What `acewatchd demo` prints while the daemon works: read-only looks at the ledger (queries in
``ledger/report.py``), the drop folders and the outbox, each change printed once, in the words a
user would use."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

from acewatchd.errors import AcewatchdError
from acewatchd.ledger import report as q
from acewatchd.ledger.db import open_readonly
from acewatchd.ledger.files import files_in_state

POLL_SECONDS = 0.5


class Follower:
    def __init__(self, home: Path, datasets: list[str], songs: int) -> None:
        self.home = home
        self.datasets = datasets
        self.songs = songs
        self.started = time.monotonic()
        self._said: set[str] = set()
        self._runs: dict[int, str] = {}
        self._progress_rowid = 0
        self._event_id = 0
        self._server_pid = 0
        self._quarter: dict[int, int] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            print(f"[{self.elapsed():5.0f}s] {text}", flush=True)

    # ------------------------------------------------------------------ waiting
    def wait_daemon_up(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        from acewatchd.util.locks import holder_pid

        deadline = time.monotonic() + timeout
        while holder_pid(self.home / "state") != proc.pid:
            self._check_alive(proc)
            if time.monotonic() > deadline:
                raise AcewatchdError(f"the daemon did not start within {timeout:g}s"
                                     f"{self._console_tail()}")
            time.sleep(0.2)
        self.say("up", "daemon is running: watching drop/, nightly schedule armed")

    def follow(self, proc: subprocess.Popen[bytes], timeout: float) -> Path:
        """Print progress until every dataset has an outbox run; return the page to open."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(proc)
            self.poll()
            if all(self.outbox_run(ds) for ds in self.datasets):
                index = self.home / "outbox" / "index.html"
                return index if index.exists() else self.outbox_run(self.datasets[0])  # type: ignore[return-value]
            if time.monotonic() > deadline:
                raise AcewatchdError(f"the chain did not complete within {timeout:g}s; see "
                                     f"{self.home / 'logs' / 'acewatchd.jsonl'} and "
                                     f"`acewatchd --config {self.home / 'config.toml'} status`")
            time.sleep(POLL_SECONDS)

    def _check_alive(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            raise AcewatchdError(f"the daemon exited with code {proc.returncode}"
                                 f"{self._console_tail()}")

    def _console_tail(self) -> str:
        path = self.home / "logs" / "daemon.console.log"
        try:
            lines = path.read_text("utf-8", errors="replace").splitlines()[-15:]
        except OSError:
            return ""
        return f"; last lines of {path}:\n" + "\n".join("  | " + ln for ln in lines)

    # ------------------------------------------------------------------ looking
    def poll(self) -> None:
        for ds in self.datasets:
            self._stubs(ds)
            run = self.outbox_run(ds)
            if run is not None:
                self.say(f"outbox:{ds}", f"✓ {ds}: samples ready -> {run}")
        self._server()
        conn = open_readonly(self.home / "state", timeout=5)
        if conn is None:
            return  # not created yet: next poll
        try:
            self._ledger(conn)
        except sqlite3.OperationalError:
            pass  # the schema is being created or a writer holds it: next poll
        finally:
            conn.close()

    def _server(self) -> None:
        try:  # the managed server's pid file: written at each start, removed at each stop
            pid = int(json.loads((self.home / "state" / "acestep-server.pid").read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            pid = 0
        if pid == self._server_pid:
            return
        if not pid:
            text = "ACE-Step server stopped by acewatchd (memory free by day)"
        elif self._server_pid:
            text = f"ACE-Step server restarted (pid {pid}): a fresh process before the LoRA loads"
        else:
            text = f"ACE-Step server (SIMULATOR) started by acewatchd (pid {pid})"
        self._server_pid = pid
        self.say(f"server:{pid}", "  " + text)

    def _stubs(self, ds: str) -> None:
        folder = self.home / "drop" / ds
        songs = sorted(folder.glob("*.mp3")) if folder.is_dir() else []
        done = [s for s in songs if s.with_suffix(".caption.txt").exists()
                and s.with_suffix(".lyrics.txt").exists()]
        for song in done:
            self.say(f"stub:{song}", f"  stubs written: {ds}/{song.stem}.caption.txt, "
                                     f".lyrics.txt")
        if songs and len(done) == len(songs) >= self.songs:
            caption = done[0].with_suffix(".caption.txt").read_text("utf-8").strip()
            self.say(f"stubs:{ds}", f"✓ {ds}: all {len(done)} songs have caption/lyrics stubs"
                                    f" (e.g. caption: {caption[:90]!r})")

    def _ledger(self, conn: sqlite3.Connection) -> None:
        for file in files_in_state(conn, "rejected"):
            raise AcewatchdError(f"{file.dataset}/{file.relpath} was rejected: {file.reason}")
        for run in q.all_runs(conn):
            self._run_row(run.id, run.dataset, run.job, run.outcome, run.epochs_total,
                          run.message)
        for dataset, count in q.preprocessed_counts(conn).items():
            if count >= self.songs:
                self.say(f"prep:{dataset}:{count}", f"  {dataset}: {count} songs staged, "
                                                    "preprocessed and sanitized")
        for event in q.events_after(conn, self._event_id):
            self._event_id = event.id
            self.say(f"event:{event.id}", f"! {event.level}: {event.dataset or ''} "
                                          f"{event.message}")
        for prog in q.progress_after(conn, self._progress_rowid):
            self._progress_rowid = prog.rowid
            self._epoch(prog.run_id, prog.epoch, prog.epochs, prog.loss)

    def _run_row(self, run_id: int, dataset: str, job: str, outcome: str | None,
                 epochs: int | None, message: str | None) -> None:
        state = outcome or "running"
        if self._runs.get(run_id) == state:
            return
        self._runs[run_id] = state
        detail = f" ({message})" if message and state != "running" else ""
        extra = f", {epochs} epochs" if epochs and state == "running" else ""
        mark = {"running": "▶", "done": "✓", "failed": "✗"}.get(state, "•")
        self.say(f"run:{run_id}:{state}", f"{mark} {dataset}: {job} {state}{extra}{detail}")
        if state == "failed":
            raise AcewatchdError(f"{dataset}: {job} failed: {message}")

    def _epoch(self, run_id: int, epoch: int | None, epochs: int | None,
               loss: float | None) -> None:
        if not epoch or not epochs:
            return
        quarter = min(4, epoch * 4 // epochs)
        if quarter > self._quarter.get(run_id, 0):
            self._quarter[run_id] = quarter
            loss_text = f", loss {loss:.4f}" if loss is not None else ""
            self.say(f"epoch:{run_id}:{quarter}", f"    training: epoch {epoch}/{epochs}"
                                                  f"{loss_text}")

    def outbox_run(self, ds: str) -> Path | None:
        folder = self.home / "outbox" / ds
        if not folder.is_dir():
            return None
        pages = sorted(p / "index.html" for p in folder.iterdir()
                       if p.is_dir() and not p.name.startswith(".")
                       and (p / "index.html").exists())
        return pages[-1] if pages else None
