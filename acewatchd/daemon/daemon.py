"""`acewatchd run` and `acewatchd scan`: wiring, lock, signals, the ingest loop, live reload.

One main thread does all ingest work (settle polls, validation, stubs, ledger writes); watchdog
threads only enqueue hints. Signal handlers only set flags. The loop wakes at least once a
second, so SIGTERM/SIGINT stop the daemon well inside 15 s even mid-batch: the stop flag is
checked between batches and, inside one, between the 1 MB chunks of a file being hashed. A
batch cut short is rolled back whole (every step is idempotent), and its files are found again
by the next start-up scan.
"""

from __future__ import annotations

import logging
import queue
import signal
import sqlite3
import threading
import time
from pathlib import Path

from acewatchd.config.schema import Config
from acewatchd.daemon.diskfull import DiskFull
from acewatchd.daemon.reload import ConfigReloader
from acewatchd.errors import AcewatchdError
from acewatchd.ingest.pipeline import Ingestor, walk_drop
from acewatchd.ingest.settle import Settler
from acewatchd.ingest.watcher import Hint, Watcher
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.files import state_counts
from acewatchd.log import setup_logging
from acewatchd.runtime import Component, DaemonContext
from acewatchd.util.clock import Clock, SystemClock
from acewatchd.util.files import Abandoned, is_disk_full

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 12.0
_SUPERVISE_SECONDS = 2.0
_BATCH = 50  # settled files per ledger transaction


class Daemon:
    def __init__(self, cfg: Config, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.ledger = Ledger(cfg.paths.state)
        self.stop = threading.Event()
        self.hints: queue.Queue[Hint] = queue.Queue()
        self.ingestor = Ingestor(self.ledger, lambda: self.cfg, stop=self.stop)
        self.settler = Settler(self.clock, cfg.watch)
        self.watcher = Watcher(cfg.paths.drop, cfg.source, self.hints)
        self.reloader = ConfigReloader(cfg, self.ledger, self.clock)
        self.ctx = DaemonContext(config=lambda: self.cfg, ledger=self.ledger, stop=self.stop,
                                 clock=self.clock, request_rescan=self.request_rescan)
        self.components: list[Component] = []
        self.disk = DiskFull()
        self._rescan_reason: str | None = "start-up"
        self._next_rescan = 0.0
        self._next_supervise = 0.0
        self._next_poll = 0.0
        self._offset = self.clock.time() - self.clock.monotonic()

    def request_rescan(self, reason: str) -> None:
        """Thread-safe: components (e.g. after wake) ask for a reconciliation scan."""
        self.hints.put(("rescan", Path(reason)))

    # ---- lifecycle

    def run(self) -> int:
        self.open()
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except Exception as exc:  # e.g. the ledger locked too long: log, breathe, go on
                    if is_disk_full(exc):  # said once; the rescan retries what it stopped
                        self.disk.hit(exc, self.ledger.path)
                    else:
                        logger.exception("daemon loop error; continuing")
                    self.stop.wait(1.0)
        finally:
            self.close()
        return 0

    def open(self) -> None:
        """Start watching and the components (tests drive ``step()`` themselves)."""
        self.cfg.paths.drop.mkdir(parents=True, exist_ok=True)
        self.watcher.start()
        self._start_components()
        logger.info("daemon started", extra={"home": str(self.cfg.home)})

    def _start_components(self) -> None:
        from acewatchd.daemon.components import build_components

        for comp in build_components(self.ctx):
            try:
                comp.start()
                self.components.append(comp)
            except Exception as exc:  # one broken part must not take ingest down with it
                logger.exception("component failed to start", extra={"component": comp.name})
                self.ledger.record_event("error", f"{comp.name} failed to start: {exc}")

    def close(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        self.stop.set()
        for comp in reversed(self.components):
            try:
                comp.stop(deadline)
            except Exception:
                logger.exception("component failed to stop", extra={"component": comp.name})
        self.watcher.stop(timeout=max(0.5, deadline - time.monotonic()))
        logger.info("daemon stopped", extra={"pending": len(self.settler)})
        self.ledger.close()

    # ---- one turn of the loop

    def step(self) -> None:
        self._drain_hints()
        now = self.clock.monotonic()
        if now >= self._next_supervise:
            self._supervise(now)
        if self._rescan_reason or now >= self._next_rescan:
            self._rescan(self._rescan_reason or "periodic")
        if len(self.settler) and now >= self._next_poll:
            # Rate-limited: a burst of events must not turn settle_polls into a quick count.
            self._settle_once()
            self._next_poll = self.clock.monotonic() + self.settler.next_poll_in()
        self._apply_reload()
        self._wait()

    def _wait(self) -> None:
        timeout = self._next_poll - self.clock.monotonic() if len(self.settler) else 1.0
        try:
            hint = self.hints.get(timeout=min(max(timeout, 0.01), 1.0))
        except queue.Empty:
            return
        self._drain_hints(hint)  # a copy's burst of events is taken up together

    def _drain_hints(self, first: Hint | None = None) -> None:
        """Handle the queued hints; their new files are marked seen in one transaction. A
        commit is a WAL fsync: one per file had a 1,000-file drop wait on 1,000 of them."""
        fresh: list[Path] = []
        if first is not None:
            self._handle(first, fresh)
        for _ in range(10_000):
            try:
                self._handle(self.hints.get_nowait(), fresh)
            except queue.Empty:
                break
        if fresh:
            self.ingestor.mark_seen(fresh)

    def _handle(self, hint: Hint, fresh: list[Path]) -> None:
        kind, path = hint
        if kind == "file":
            self._consider(path, fresh)
        elif kind == "dir":
            for found in walk_drop(path) if path.is_dir() else ():
                self._consider(found, fresh)
        elif kind == "config":
            self.reloader.touched()
        elif kind == "rescan":
            self._rescan_reason = str(path)

    def _consider(self, path: Path, fresh: list[Path]) -> None:
        if path not in self.settler and self.ingestor.needs_work(path):
            self.settler.add(path)
            fresh.append(path)

    def _rescan(self, reason: str) -> None:
        self._rescan_reason = None
        self._next_rescan = self.clock.monotonic() + self.cfg.watch.rescan_minutes * 60
        todo = self.ingestor.scan(startup=reason in ("start-up", "scan"))
        added = [p for p in todo if p not in self.settler]
        for path in added:
            self.settler.add(path)
        self.ingestor.mark_seen(added)
        logger.info("rescan", extra={"reason": reason, "to_settle": len(added)})

    def _settle_once(self) -> None:
        result = self.settler.poll()
        for path in result.vanished:
            self.ingestor.mark_gone(path)
        for path in result.gave_up:
            self._gave_up(path)
        done = result.settled
        for start in range(0, len(done), _BATCH):
            if self.stop.is_set():
                return  # not lost: the next start-up scan finds these files again
            chunk = done[start:start + _BATCH]
            try:
                with self.ingestor.writer.batch():  # one ledger commit per batch
                    self._ingest_chunk(chunk)
            except Abandoned as exc:  # stopping: the batch's rows were rolled back
                logger.info("stopped mid-batch; its files are taken up at the next start",
                            extra={"files": len(chunk), "detail": str(exc)})
                return
            except Exception as exc:
                if is_disk_full(exc):
                    # Not retried at each poll (that would hash every file again and again on
                    # a full disk): the rescan takes them up once space is back.
                    self.disk.hit(exc, self.ledger.path if isinstance(exc, sqlite3.Error)
                                  else chunk[0].parent)
                    return
                if not isinstance(exc, sqlite3.Error):
                    raise
                logger.exception("ledger write failed; the files are retried")
                for path in chunk:
                    self.settler.add(path)
            else:
                self.disk.cleared()

    def _ingest_chunk(self, chunk: list[Path]) -> None:
        try:
            self.ingestor.process_many(chunk)
        except (sqlite3.Error, Abandoned):
            raise
        except Exception as exc:  # a bug with one file must not stop the others: one by one
            if is_disk_full(exc):
                raise  # not a problem of one file: the whole batch waits for space
            logger.exception("batch ingest failed; retrying file by file")
            for path in chunk:
                try:
                    self.ingestor.process(path)
                except Abandoned:
                    raise
                except Exception as exc:
                    if is_disk_full(exc):
                        raise
                    logger.exception("ingest failed", extra={"path": str(path)})
                    self.ingestor.writer.event("error", f"{path.name}: ingest failed: {exc}")

    def _gave_up(self, path: Path) -> None:
        minutes = self.cfg.watch.settle_ceiling_minutes
        msg = f"{path.name} was still changing after {minutes:g} min; retrying at the next rescan"
        logger.warning("settle ceiling reached", extra={"path": str(path)})
        key = self.ingestor.split(path)
        self.ledger.record_event("warning", msg, key[0] if key else None,
                                 key[1] if key else None)

    def _supervise(self, now: float) -> None:
        self._next_supervise = now + _SUPERVISE_SECONDS
        offset = self.clock.time() - now
        if abs(offset - self._offset) > 30:  # wall clock jumped: the machine slept
            self._rescan_reason = "wake"
        self._offset = offset
        if self.disk.room_again():
            self._rescan_reason = "disk space freed"
        self.reloader.poll()
        if not self.watcher.healthy():
            logger.warning("watcher unhealthy; rebuilding",
                           extra={"drop": str(self.cfg.paths.drop)})
            self.watcher.rebuild()
            self._rescan_reason = "watcher rebuilt"

    def _apply_reload(self) -> None:
        new = self.reloader.maybe_reload()
        if new is None:
            return
        old, self.cfg = self.cfg, new
        if new.paths.state != old.paths.state:  # the ledger and lock stay where they are
            logger.warning("paths.state changed: takes effect at the next restart",
                           extra={"state": str(old.paths.state)})
        self.settler.watch = new.watch
        if (new.paths.logs, new.logging) != (old.paths.logs, old.logging):
            setup_daemon_logging(new)
        if new.paths.drop != old.paths.drop:
            new.paths.drop.mkdir(parents=True, exist_ok=True)
            self.watcher.rebuild(new.paths.drop)
        for comp in self.components:
            try:
                comp.apply_config(new)
            except Exception:
                logger.exception("component rejected the new config", extra={"component":
                                                                              comp.name})
        self._rescan_reason = "config reloaded"


def setup_daemon_logging(cfg: Config) -> None:
    setup_logging(cfg.paths.logs, cfg.logging.level, max_bytes=cfg.logging.max_bytes,
                  backups=cfg.logging.backups)


def install_signals(daemon: Daemon) -> None:
    def on_stop(signum: int, frame: object) -> None:
        daemon.stop.set()  # only a flag: the loop notices within a second

    def on_hup(signum: int, frame: object) -> None:
        daemon.reloader.force = True

    def on_usr1(signum: int, frame: object) -> None:
        daemon._rescan_reason = "SIGUSR1"  # `kill -USR1 <pid>`: rescan now

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)


def scan_once(daemon: Daemon) -> dict[str, int]:
    """One reconciliation pass: find, settle, validate and stub, then return state counts."""
    daemon._rescan("scan")
    while len(daemon.settler) and not daemon.stop.is_set():
        daemon._settle_once()
        if len(daemon.settler):
            daemon.clock.sleep(daemon.settler.next_poll_in(), daemon.stop)
    counts = state_counts(daemon.ledger.connect())
    daemon.ledger.close()
    if daemon.stop.is_set():
        raise AcewatchdError("scan interrupted; run it again to finish (finished work is kept)")
    return counts
