"""When the nightly run happens: the "scheduler" daemon component.

The time logic is pure functions in ``schedule_time`` (re-exported here; tests pass any "now",
nothing waits for 1 a.m.). A schedule's *window* runs from a cron fire time to the next
``window_end`` wall time after it, in the schedule's zone; training is stopped at the window's
end and resumed the next night. After a sleep (wall clock jumped against the monotonic one):
rescan, wake APScheduler (its wait ran on the monotonic clock too) and catch up.

Datasets that share an effective schedule (cron, timezone, window_end, catch_up) share one
APScheduler job, so per-dataset overrides just make more groups. The job only *enqueues* a fire
on the component's single worker thread: datasets run one after another, and the worker (not
APScheduler) decides, from the ledger's run history, whether a fire time already ran. That same
check makes catch-up safe: a start missed while the Mac slept or the daemon was down runs once
if now is still inside its window, never twice, never after the window.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from datetime import datetime, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from acewatchd.config.schema import Config
from acewatchd.ledger import runs
from acewatchd.ledger.events import KV_SCHEDULE_NEXT
from acewatchd.ledger.runs import Job
from acewatchd.nightly import run as nightly_run
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.render.session import clear_unfinished
from acewatchd.nightly.times import (
    Group,
    WakeDetector,
    group_datasets,
    group_key,
    inside_window,
    next_fire,
    next_runs,
    present_datasets,
    previous_fire,
    schedule_groups,
    should_catch_up,
    trigger_for,
    window_end_for,
    zone_of,
)
from acewatchd.runtime import DaemonContext, Server
from acewatchd.util.process import REGISTRY, end_orphans

__all__ = ["Group", "SchedulerComponent", "WakeDetector", "create_component", "group_datasets",
           "group_key", "inside_window", "next_fire", "next_runs", "present_datasets",
           "previous_fire", "schedule_groups", "should_catch_up", "trigger_for",
           "window_end_for", "zone_of"]

logger = logging.getLogger(__name__)

# A fire delayed a little (busy machine) still runs through APScheduler; anything later (the Mac
# slept, the daemon was down) is left to the ledger-based catch-up, which knows the window.
MISFIRE_GRACE_SECONDS = 300
PUBLISH_SECONDS = 60.0

# --------------------------------------------------------------------------- the component


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class SchedulerComponent:
    """Component "scheduler": APScheduler jobs from config, one worker thread running the
    nightly work, a wake detector. See the module docstring for the rules."""

    name = "scheduler"

    def __init__(self, ctx: DaemonContext, server: Server | None = None, *,
                 env: NightlyEnv | None = None,
                 wake_interval: float = 5.0, wake_threshold: float = 60.0) -> None:
        self.ctx = ctx
        self.env = env or NightlyEnv.default(ctx.ledger, ctx.config, clock=ctx.clock,
                                             server=server)
        self.env.stop = self._stop = threading.Event()
        self._queue: queue.Queue[tuple[str, float, str]] = queue.Queue()
        self._claimed: set[tuple[str, float]] = set()
        self._lock = threading.Lock()
        self._sched: BackgroundScheduler | None = None
        self._threads: list[threading.Thread] = []
        self.wake = WakeDetector(ctx.clock, self._on_wake, wake_threshold, wake_interval)
        self.running_fire: tuple[str, float] | None = None
        self._next_publish = time.monotonic() + PUBLISH_SECONDS

    # -- Component protocol
    def start(self) -> None:
        cfg = self.ctx.config()
        self._mark_stale()
        clear_unfinished(cfg, self.ctx.ledger)  # a render killed mid-way: rows and staging
        end_orphans(cfg.paths.state / REGISTRY)  # children of a daemon killed with -9
        self._sched = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(1)}, timezone=zone_of(cfg.schedule),
            job_defaults={"coalesce": True, "max_instances": 1,
                          "misfire_grace_time": MISFIRE_GRACE_SECONDS})
        self._sched.start()
        self._rebuild(cfg)
        for target, name in ((self._work, "nightly-worker"), (self._watch, "wake-detector")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.catch_up("start")

    def apply_config(self, cfg: Config) -> None:
        self._rebuild(cfg)
        self.catch_up("config")

    def stop(self, deadline: float) -> None:
        self._stop.set()
        with self._lock:
            sched, self._sched = self._sched, None
        if sched is not None and sched.running:
            sched.shutdown(wait=False)
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic() - 0.2))
        if any(t.is_alive() for t in self._threads):
            logger.warning("scheduler threads still busy at the shutdown deadline")

    # -- jobs
    def _rebuild(self, cfg: Config) -> None:
        """Replace every job with the config's groups (the memory store is never trusted)."""
        with self._lock:
            if self._sched is None:
                return
            self._sched.remove_all_jobs()
            for group in schedule_groups(cfg):
                self._sched.add_job(self._fire, trigger_for(group.schedule), id=group.key,
                                    args=[group.key], name=f"nightly {group.schedule.cron}")
        self.publish_next(cfg)

    def publish_next(self, cfg: Config | None = None) -> dict[str, str | None]:
        nxt = next_runs(cfg or self.ctx.config(), _utc(self.ctx.clock.time()))
        self.ctx.ledger.set_kv(KV_SCHEDULE_NEXT, json.dumps(nxt, sort_keys=True))
        return nxt

    def next_run_times(self) -> dict[str, datetime | None]:
        """{job id: APScheduler's next run time} (for tests and status)."""
        jobs = self._sched.get_jobs() if self._sched else []
        return {job.id: job.next_run_time for job in jobs}

    def _group(self, cfg: Config, key: str) -> Group | None:
        return next((g for g in schedule_groups(cfg) if g.key == key), None)

    def _fire(self, key: str) -> None:
        """APScheduler's job: hand the fire time to the worker (never blocks the scheduler)."""
        group = self._group(self.ctx.config(), key)
        fire = previous_fire(group.schedule, _utc(self.ctx.clock.time())) if group else None
        if group and fire:
            self.enqueue(key, fire.timestamp(), "cron")

    def enqueue(self, key: str, fire_ts: float, reason: str) -> bool:
        with self._lock:
            if (key, fire_ts) in self._claimed:
                return False
            self._claimed.add((key, fire_ts))
        logger.info("nightly run %s for %s queued (%s)", key, _utc(fire_ts).isoformat(), reason)
        self._queue.put((key, fire_ts, reason))
        return True

    def catch_up(self, reason: str) -> list[str]:
        """Queue each group whose latest start was missed and whose window is still open."""
        cfg, queued = self.ctx.config(), []
        now = _utc(self.ctx.clock.time())
        for group in schedule_groups(cfg):
            names = group_datasets(cfg, group.key)

            def ran(fire: datetime, names: list[str] = names) -> bool:
                ledger = self.ctx.ledger
                return all(nightly_run.already_ran(ledger, n, fire.timestamp()) for n in names)

            fire = should_catch_up(group.schedule, now, ran)
            if fire and names and self.enqueue(group.key, fire.timestamp(), reason):
                queued.append(group.key)
        return queued

    # -- threads
    def _work(self) -> None:
        while not self._stop.is_set() and not self.ctx.stop.is_set():
            try:
                key, fire_ts, _reason = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._run_fire(key, fire_ts)
            except Exception:  # the worker must survive one bad night
                logger.exception("nightly run %s failed", key)

    def _run_fire(self, key: str, fire_ts: float) -> None:
        cfg = self.ctx.config()
        group = self._group(cfg, key)
        if group is None:
            logger.info("schedule %s no longer in config.toml; dropping its run", key)
            return
        end = window_end_for(group.schedule, _utc(fire_ts)).timestamp()
        if self.ctx.clock.time() >= end:
            logger.info("the window of %s ended before it could start; next night", key)
            return
        self.running_fire = (key, fire_ts)
        try:
            nightly_run.run_nightly(self.ctx.config, self.env, group_datasets(cfg, key),
                        scheduled_for=fire_ts, window_end=end)
        finally:
            self.running_fire = None
            self._after_night()

    def _after_night(self) -> None:
        self.env.refusal = None  # the user may update ACE-Step by day: ask again next night
        server = self.env.server
        if server is not None and server.managed and not self._stop.is_set():
            server.stop()  # free the Mac's memory by day
            self.env.server_dirty = False  # the next start loads a clean decoder
        self.publish_next()

    def _watch(self) -> None:
        self.wake.run(self._stop, self._tick)

    def _tick(self) -> None:
        """Refresh `status`'s next-run times now and then (new drop folders, passed starts)."""
        if self.ctx.stop.is_set():  # the daemon is going down: let a training stop now
            self._stop.set()
        now = time.monotonic()
        if now >= self._next_publish:
            self._next_publish = now + PUBLISH_SECONDS
            try:
                self.publish_next()
            except Exception:  # a locked ledger or a vanished folder must not end the thread
                logger.exception("could not publish the next run times")

    def _on_wake(self, jump: float) -> None:
        logger.info("clock jumped %.0fs against the monotonic clock: woke from sleep", jump)
        self.ctx.request_rescan("wake")
        if self._sched is not None:
            self._sched.wakeup()  # its wait was on the monotonic clock, which slept too
        self.catch_up("wake")
        self.publish_next()

    def _mark_stale(self) -> None:
        """Only the daemon writes 'nightly' rows: a 'running' one is from a process that died."""
        runs.mark_stale(self.ctx.ledger, (Job.NIGHTLY,), "the daemon ended mid-run")


def create_component(ctx: DaemonContext, server: Server | None = None) -> SchedulerComponent:
    return SchedulerComponent(ctx, server)
