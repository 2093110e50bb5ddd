"""Schedule time logic as pure functions over aware datetimes (tests pass any "now").

A schedule's *window* runs from a cron fire time to the next ``window_end`` wall time after it,
in the schedule's zone (configured IANA name, else this machine's), so a DST night keeps its
wall times. Datasets sharing an effective schedule (cron, timezone, window_end, catch_up) form
one *group* (one APScheduler job). Numeric cron weekdays are translated by ``cronexpr``.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from acewatchd.config.schema import DATASET_NAME, Config, Schedule
from acewatchd.util.clock import Clock
from acewatchd.util.cron import parse_cron

# The longest possible window is just under a day; one extra hour covers a DST shift.
_LOOKBACK = timedelta(hours=25)


def zone_of(sched: Schedule) -> tzinfo:
    """The schedule's zone: the configured IANA name, else this machine's zone."""
    if sched.timezone:
        return ZoneInfo(sched.timezone)
    import tzlocal

    return tzlocal.get_localzone()


def trigger_for(sched: Schedule) -> CronTrigger:
    return CronTrigger(**parse_cron(sched.cron), timezone=zone_of(sched))


def next_fire(sched: Schedule, after: datetime) -> datetime | None:
    """The first fire time at or after ``after`` (aware datetime), in the schedule's zone."""
    fire: datetime | None = trigger_for(sched).get_next_fire_time(
        None, after.astimezone(zone_of(sched)))
    return fire


def previous_fire(sched: Schedule, now: datetime) -> datetime | None:
    """The latest fire time at or before ``now`` within the last day (older ones have no
    window left), or None."""
    trigger = trigger_for(sched)
    found: datetime | None = None
    cursor = trigger.get_next_fire_time(None, (now - _LOOKBACK).astimezone(zone_of(sched)))
    while cursor is not None and cursor <= now:
        found = cursor
        cursor = trigger.get_next_fire_time(cursor, cursor + timedelta(microseconds=1))
    return found


def window_end_for(sched: Schedule, fire: datetime) -> datetime:
    """The first ``window_end`` wall time strictly after ``fire``, in the schedule's zone."""
    zone = zone_of(sched)
    local = fire.astimezone(zone)
    hour, minute = (int(x) for x in sched.window_end.split(":"))
    for days in (0, 1, 2):
        day = local.date() + timedelta(days=days)
        # Built from the wall date (not by adding 24 h) so a DST night keeps its wall time.
        end = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        if end > local:
            return end
    raise AssertionError("unreachable: a window_end exists within two days")


def inside_window(sched: Schedule, fire: datetime, now: datetime) -> bool:
    return fire <= now < window_end_for(sched, fire)


def should_catch_up(sched: Schedule, now: datetime, already_ran: Callable[[datetime], bool]
                    ) -> datetime | None:
    """The fire time to run now, or None: the latest fire is inside its window, catch-up is
    on, and the ledger has no run for it yet."""
    if not (sched.enabled and sched.catch_up):
        return None
    fire = previous_fire(sched, now)
    if fire is None or not inside_window(sched, fire, now) or already_ran(fire):
        return None
    return fire


# --------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class Group:
    """Datasets sharing one effective schedule (one APScheduler job)."""

    key: str
    schedule: Schedule
    datasets: tuple[str, ...]


def group_key(sched: Schedule) -> str:
    raw = f"{sched.cron}|{sched.timezone}|{sched.window_end}|{sched.catch_up}"
    return "nightly-" + hashlib.sha1(raw.encode()).hexdigest()[:10]


def present_datasets(cfg: Config) -> list[str]:
    """Enabled dataset folders in drop/ (config tables without a folder have nothing to train)."""
    drop = Path(cfg.paths.drop)
    try:
        entries = sorted(p for p in drop.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
    names = [unicodedata.normalize("NFC", p.name) for p in entries]  # as ingest keys them
    return [n for n in names if DATASET_NAME.match(n) and cfg.dataset(n).enabled]


def schedule_groups(cfg: Config, datasets: list[str] | None = None) -> list[Group]:
    """One group per distinct enabled schedule; the default one always exists so a new
    folder dropped between config edits is picked up at the next fire."""
    names = present_datasets(cfg) if datasets is None else datasets
    by_key: dict[str, tuple[Schedule, list[str]]] = {}
    if cfg.schedule.enabled:
        by_key[group_key(cfg.schedule)] = (cfg.schedule, [])
    for name in names:
        sched = cfg.schedule_for(name)
        if sched.enabled:
            by_key.setdefault(group_key(sched), (sched, []))[1].append(name)
    return [Group(k, s, tuple(d)) for k, (s, d) in sorted(by_key.items())]


def group_datasets(cfg: Config, key: str) -> list[str]:
    """The group's datasets as of *now* (folders may have appeared since the job was built)."""
    return [n for n in present_datasets(cfg)
            if cfg.schedule_for(n).enabled and group_key(cfg.schedule_for(n)) == key]


def next_runs(cfg: Config, now: datetime) -> dict[str, str | None]:
    """{dataset: ISO time of its next start} for `acewatchd status` (None = not scheduled)."""
    out: dict[str, str | None] = {}
    for name in present_datasets(cfg):
        sched = cfg.schedule_for(name)
        nxt = next_fire(sched, now) if sched.enabled else None
        out[name] = nxt.isoformat() if nxt else None
    return out


class WakeDetector:
    """A wall-clock jump against the monotonic clock means the machine slept (or the clock
    was set). ``check()`` is the pure step; ``run()`` loops it on a thread."""

    def __init__(self, clock: Clock, on_wake: Callable[[float], None],
                 threshold: float = 60.0, interval: float = 5.0) -> None:
        self.clock = clock
        self.on_wake = on_wake
        self.threshold = threshold
        self.interval = interval
        self._wall = clock.time()
        self._mono = clock.monotonic()

    def check(self) -> float:
        """Return the jump in seconds (0 when none) and call on_wake on a jump."""
        wall, mono = self.clock.time(), self.clock.monotonic()
        jump = (wall - self._wall) - (mono - self._mono)
        self._wall, self._mono = wall, mono
        if abs(jump) < self.threshold:
            return 0.0
        self.on_wake(jump)
        return jump

    def run(self, stop: threading.Event, on_tick: Callable[[], None] | None = None) -> None:
        while not self.clock.sleep(self.interval, stop):
            self.check()
            if on_tick is not None:
                on_tick()
