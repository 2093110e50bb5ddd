"""Schedule time logic (pure functions) and the scheduler component, with injected clocks."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from acewatchd.config.schema import Schedule
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.events import KV_SCHEDULE_NEXT
from acewatchd.nightly import run as nightly
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.prestart import PreStarter
from acewatchd.nightly.scheduler import (
    SchedulerComponent,
    WakeDetector,
    group_key,
    inside_window,
    next_fire,
    previous_fire,
    schedule_groups,
    should_catch_up,
    window_end_for,
)
from acewatchd.runtime import DaemonContext
from tests.support.clock import FakeClock
from tests.support.fakes import make_config


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


BERLIN = Schedule(cron="0 1 * * *", window_end="07:00", timezone="Europe/Berlin")


def test_fires_at_configured_local_time_across_dst() -> None:
    # Berlin springs forward on 2026-03-29 (02:00 CET -> 03:00 CEST): 01:00 local is 00:00 UTC
    # before the change and 23:00 UTC (previous day) after it.
    first = next_fire(BERLIN, utc(2026, 3, 28, 12))
    second = next_fire(BERLIN, first.replace(second=1))
    assert first.astimezone(UTC) == utc(2026, 3, 29, 0)
    assert second.astimezone(UTC) == utc(2026, 3, 29, 23)
    # The window is measured in wall time: 01:00 -> 07:00 is only 5 real hours that night.
    assert window_end_for(BERLIN, first).astimezone(UTC) == utc(2026, 3, 29, 5)
    # ... and autumn back (2026-10-25): 01:00 CEST = 23:00 UTC, window 7 real hours.
    autumn = next_fire(BERLIN, utc(2026, 10, 24, 12))
    assert autumn.astimezone(UTC) == utc(2026, 10, 24, 23)
    assert window_end_for(BERLIN, autumn).astimezone(UTC) == utc(2026, 10, 25, 6)


def test_timezone_is_the_configured_one() -> None:
    tokyo = Schedule(cron="30 2 * * *", timezone="Asia/Tokyo")
    assert next_fire(tokyo, utc(2026, 1, 1, 0)).astimezone(UTC) == utc(2026, 1, 1, 17, 30)


@pytest.mark.parametrize("dow,expected_weekday", [("0", 6), ("7", 6), ("1", 0), ("6", 5),
                                                  ("5-7", 4)])
def test_numeric_weekday_means_cron(dow: str, expected_weekday: int) -> None:
    # Python weekday(): Monday=0 .. Sunday=6. Cron: 0/7=Sunday, 1=Monday, 6=Saturday.
    sched = Schedule(cron=f"0 1 * * {dow}", timezone="UTC")
    fire = next_fire(sched, utc(2026, 11, 25, 12))  # a Wednesday
    assert fire.weekday() == expected_weekday


def test_weekday_range_skips_weekend() -> None:
    sched = Schedule(cron="0 1 * * 1-5", timezone="UTC")
    cursor, days = utc(2026, 11, 27, 12), []  # Friday noon
    for _ in range(3):
        fire = next_fire(sched, cursor)
        days.append(fire.weekday())
        cursor = fire.replace(second=1)
    assert days == [0, 1, 2]  # Monday, Tuesday, Wednesday: no Saturday/Sunday


def test_window_crossing_midnight_and_previous_fire() -> None:
    late = Schedule(cron="0 23 * * *", window_end="06:00", timezone="UTC")
    fire = previous_fire(late, utc(2026, 5, 2, 3))
    assert fire == utc(2026, 5, 1, 23)
    assert window_end_for(late, fire) == utc(2026, 5, 2, 6)
    assert inside_window(late, fire, utc(2026, 5, 2, 5, 59))
    assert not inside_window(late, fire, utc(2026, 5, 2, 6, 0))


def test_catch_up_once_inside_window_never_after() -> None:
    sched = Schedule(cron="0 1 * * *", window_end="07:00", timezone="UTC")
    ran: set[datetime] = set()
    inside = utc(2026, 6, 3, 4)
    assert should_catch_up(sched, inside, lambda f: f in ran) == utc(2026, 6, 3, 1)
    ran.add(utc(2026, 6, 3, 1))
    assert should_catch_up(sched, inside, lambda f: f in ran) is None       # never twice
    assert should_catch_up(sched, utc(2026, 6, 3, 7, 1), lambda f: False) is None  # after
    assert should_catch_up(sched, utc(2026, 6, 3, 0, 59), lambda f: False) is None  # before
    off = Schedule(cron="0 1 * * *", catch_up=False, timezone="UTC")
    assert should_catch_up(off, inside, lambda f: False) is None


def test_wake_detector_sees_wall_jump_only() -> None:
    clock = FakeClock(1_000_000.0, ticking=True)
    jumps: list[float] = []
    det = WakeDetector(clock, jumps.append, threshold=60)
    clock.advance(3600)              # awake for an hour: both clocks moved
    assert det.check() == 0 and jumps == []
    clock.set_wall(clock.time() + 3 * 3600)   # asleep for three hours: only the wall moved
    assert det.check() >= 3 * 3600 - 5 and len(jumps) == 1


def test_groups_follow_per_dataset_overrides(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, '[datasets.a.schedule]\ncron = "30 2 * * 6"\n'
                                '[datasets.c]\nenabled = false\n')
    for name in ("a", "b", "c", ".hidden"):
        (cfg.paths.drop / name).mkdir()
    groups = {g.key: g for g in schedule_groups(cfg)}
    assert groups[group_key(cfg.schedule)].datasets == ("b",)
    assert groups[group_key(cfg.schedule_for("a"))].datasets == ("a",)
    assert len(groups) == 2


# --------------------------------------------------------------------------- the component


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], float | None, float | None]] = []
        self.event = threading.Event()

    def __call__(self, config: Any, env: Any, datasets: list[str], *, scheduled_for: float,
                 window_end: float) -> dict[str, str]:
        self.calls.append((list(datasets), scheduled_for, window_end))
        for name in datasets:  # what the real run leaves behind: one nightly row each
            with env.ledger.tx() as conn:
                conn.execute("INSERT INTO runs (dataset, job, scheduled_for, outcome) VALUES"
                             " (?, 'nightly', ?, 'done')", (name, scheduled_for))
        self.event.set()
        return dict.fromkeys(datasets, "done")


@pytest.fixture
def component_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_thread_leak: None):
    holder: dict[str, Any] = {}
    cfg_text = {"v": '[schedule]\ncron = "0 1 * * *"\nwindow_end = "07:00"\ntimezone = "UTC"\n'}
    (tmp_path / "drop" / "songs").mkdir(parents=True)
    recorder = Recorder()
    monkeypatch.setattr(nightly, "run_nightly", recorder)
    ledger = Ledger(tmp_path / "state")
    clock = FakeClock(utc(2026, 6, 2, 12).timestamp(), ticking=True)  # noon: outside the window
    rescans: list[str] = []
    ctx = DaemonContext(config=lambda: make_config(tmp_path, cfg_text["v"]), ledger=ledger,
                        stop=threading.Event(), clock=clock, request_rescan=rescans.append)
    comp = SchedulerComponent(ctx, None, env=NightlyEnv(ledger, lambda: None, clock),
                              wake_interval=0.02, wake_threshold=60)
    holder.update(comp=comp, clock=clock, ledger=ledger, recorder=recorder, rescans=rescans,
                  cfg_text=cfg_text, ctx=ctx, tmp=tmp_path)
    try:
        yield holder
    finally:
        comp.stop(time.monotonic() + 5)
        ledger.close()


def wait_for(pred: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_sleep_inside_window_catches_up_once(component_env: dict[str, Any]) -> None:
    comp, clock, rec = component_env["comp"], component_env["clock"], component_env["recorder"]
    comp.start()
    assert rec.calls == []  # noon: nothing missed
    clock.set_wall(utc(2026, 6, 3, 3).timestamp())  # slept through 01:00, woke at 03:00
    assert wait_for(lambda: rec.calls), "no catch-up after waking inside the window"
    assert "wake" in component_env["rescans"]
    assert rec.calls[0][0] == ["songs"]
    assert rec.calls[0][1] == utc(2026, 6, 3, 1).timestamp()
    assert rec.calls[0][2] == utc(2026, 6, 3, 7).timestamp()
    clock.set_wall(utc(2026, 6, 3, 5).timestamp())  # another sleep, same window
    assert wait_for(lambda: "wake" in component_env["rescans"][1:])
    assert comp.catch_up("again") == []
    time.sleep(0.2)
    assert len(rec.calls) == 1  # never twice


def test_sleep_past_window_does_not_run(component_env: dict[str, Any]) -> None:
    comp, clock, rec = component_env["comp"], component_env["clock"], component_env["recorder"]
    comp.start()
    clock.set_wall(utc(2026, 6, 3, 7, 30).timestamp())  # woke after window_end
    assert wait_for(lambda: "wake" in component_env["rescans"])
    time.sleep(0.2)
    assert rec.calls == []


def test_daemon_started_inside_window_catches_up(component_env: dict[str, Any]) -> None:
    comp, clock, rec = component_env["comp"], component_env["clock"], component_env["recorder"]
    clock.set_wall(utc(2026, 6, 3, 2).timestamp())
    comp.start()
    assert wait_for(lambda: rec.calls)
    # A restart (new component, same ledger) inside the same window does not run it again.
    comp.stop(time.monotonic() + 5)
    again = SchedulerComponent(component_env["ctx"], None, env=comp.env, wake_interval=0.02)
    again.start()
    try:
        time.sleep(0.2)
        assert len(rec.calls) == 1
    finally:
        again.stop(time.monotonic() + 5)


def test_editing_cron_moves_next_run(component_env: dict[str, Any]) -> None:
    comp, ledger = component_env["comp"], component_env["ledger"]
    comp.start()
    before = json.loads(ledger.get_kv(KV_SCHEDULE_NEXT))
    assert before["songs"] == "2026-06-03T01:00:00+00:00"
    assert [t.hour for t in comp.next_run_times().values()] == [1]
    component_env["cfg_text"]["v"] = ('[schedule]\ncron = "15 3 * * 0"\nwindow_end = "07:00"\n'
                                      'timezone = "UTC"\n')
    comp.apply_config(component_env["ctx"].config())
    after = json.loads(ledger.get_kv(KV_SCHEDULE_NEXT))
    assert after["songs"] == "2026-06-07T03:15:00+00:00"  # the Sunday after Tuesday 2 June
    times = list(comp.next_run_times().values())
    assert len(times) == 1 and (times[0].hour, times[0].minute, times[0].weekday()) == (3, 15, 6)


def test_cron_job_fires_the_run_for_its_start_time(component_env: dict[str, Any]) -> None:
    comp, clock, rec = component_env["comp"], component_env["clock"], component_env["recorder"]
    comp.start()
    clock.set_wall(utc(2026, 6, 3, 1, 0, 0).timestamp() + 0.5)  # APScheduler fires at 01:00
    for job in comp._sched.get_jobs():
        job.func(*job.args)         # what APScheduler's executor calls
        job.func(*job.args)         # a duplicate fire (coalesced misfire, wake) is ignored
    assert wait_for(lambda: rec.calls)
    time.sleep(0.2)
    assert [(c[0], c[1]) for c in rec.calls] == [(["songs"], utc(2026, 6, 3, 1).timestamp())]


def test_scheduler_settings_are_deliberate(component_env: dict[str, Any]) -> None:
    comp = component_env["comp"]
    comp.start()
    job = comp._sched.get_jobs()[0]
    assert job.coalesce is True and job.max_instances == 1
    assert job.misfire_grace_time == 300
    assert str(job.trigger.timezone) == "UTC"


class FakeServer:
    managed = True

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0

    def ensure_running(self) -> None:
        self.starts += 1

    def restart(self) -> None:
        self.starts += 1

    def stop(self, deadline: float | None = None) -> None:
        self.stops += 1


def test_managed_server_started_ahead_of_the_run(component_env: dict[str, Any]) -> None:
    """The one pre-start (nightly/prestart.py) on the scheduler's fake clock."""
    clock, cfg_text = component_env["clock"], component_env["cfg_text"]
    cfg_text["v"] = ('manage_server = true\nserver_command = ["true"]\nstart_before_minutes = 5\n'
                     + cfg_text["v"])
    server = FakeServer()
    pre = PreStarter(component_env["ctx"], server)
    assert pre.check(clock.time()) is False and server.starts == 0   # noon: nothing due
    clock.advance(utc(2026, 6, 3, 0, 56).timestamp() - clock.time())  # 4 min before 01:00
    assert pre.check(clock.time()) is True and server.starts == 1
    assert pre.check(clock.time()) is False and server.starts == 1   # once per start time
