"""The night forecast: pace from the logged epochs, nights walked through the schedule's windows
with the work after a night's last checkpoint trained again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from acewatchd.config.schema import Schedule
from acewatchd.ledger.pace import RunPace, Session
from acewatchd.nightly.forecast import forecast, measure_pace

SCHED = Schedule(cron="0 1 * * *", window_end="07:00", timezone="UTC", max_nights=7)
NIGHT1 = datetime(2026, 6, 1, 1, tzinfo=UTC)   # a Monday


def session(sid: int, start: datetime, first_epoch: int, last_epoch: int, spe: float, *,
            overhead: float = 60.0, outcome: str = "interrupted", total: int = 1000,
            kept: int | None = None) -> Session:
    t0 = start.timestamp() + overhead + spe   # the first point logs after one epoch
    points = [(t0 + (e - first_epoch) * spe, e) for e in range(first_epoch, last_epoch + 1)]
    return Session(sid, start.timestamp(), points[-1][0], outcome, total,
                   kept if kept is not None else last_epoch, points)


def test_pace_is_weighted_over_sessions_and_overhead_is_measured() -> None:
    s1 = session(1, NIGHT1, 1, 100, 10.0, overhead=120.0)
    s2 = session(2, NIGHT1 + timedelta(days=1), 101, 401, 20.0, overhead=120.0)
    pace = measure_pace([s1, s2])
    assert pace is not None
    assert abs(pace.seconds_per_epoch - (99 * 10 + 300 * 20) / (99 + 300)) < 1e-9
    # the median of the sessions' start-ups (the upper one of two); one epoch of each
    # session's own work is not overhead
    assert abs(pace.overhead - (120.0 + 20.0 - pace.seconds_per_epoch)) < 1e-6


def test_no_forecast_before_two_epochs_were_logged() -> None:
    run = RunPace("songs", "r1", [Session(1, NIGHT1.timestamp(), None, "running", 800, 0, [])])
    fc = forecast(run, SCHED, 200, NIGHT1 + timedelta(minutes=5))
    assert fc is not None and fc.pace is None and fc.nights_left is None
    assert "forecast follows" in fc.sentence()
    assert fc.warning() == ""


def test_a_stopped_run_resumes_from_its_checkpoint_each_night() -> None:
    # 6 h windows at 30 s/epoch with ~60 s overhead: 718 epochs a night; checkpoints every 200
    # keep 600 of them, so 2000 epochs take 600, 1200, 1800, then the last 200 on night 4.
    night1 = session(1, NIGHT1, 1, 700, 30.0, kept=600, total=2000)
    run = RunPace("songs", "r1", [night1])
    now = NIGHT1.replace(hour=12)
    fc = forecast(run, SCHED, 200, now)
    assert fc is not None and fc.pace is not None
    assert fc.epochs_per_night == int((6 * 3600 - fc.pace.overhead) // 30.0)
    assert fc.nights_left == 3 and not fc.running
    expected = (NIGHT1 + timedelta(days=3, seconds=fc.pace.overhead + 200 * 30.0))
    assert fc.finish is not None and abs((fc.finish - expected).total_seconds()) < 1
    assert fc.sentence().endswith("about 3 more nights, Thursday ~02:41")


def test_a_running_session_counts_the_rest_of_tonight() -> None:
    night1 = session(1, NIGHT1, 1, 100, 30.0, outcome="running", total=300)
    run = RunPace("songs", "r1", [night1])
    now = datetime.fromtimestamp(night1.points[-1][0], UTC)
    fc = forecast(run, SCHED, 200, now)
    assert fc is not None and fc.running and fc.nights_left == 1
    assert fc.finish is not None
    assert abs((fc.finish - now).total_seconds() - 200 * 30.0) < 1
    assert "finishes tonight" in fc.sentence()


def test_warns_when_the_run_needs_more_than_max_nights() -> None:
    slow = session(1, NIGHT1, 1, 50, 400.0, total=4000, kept=0)
    fc = forecast(RunPace("songs", "r1", [slow]), SCHED, 50, NIGHT1.replace(hour=12))
    assert fc is not None and fc.too_long
    assert "max_nights = 7" in fc.warning() and "songs" in fc.warning()
    fast = session(1, NIGHT1, 1, 50, 5.0, total=400, kept=0)
    fc2 = forecast(RunPace("songs", "r1", [fast]), SCHED, 50, NIGHT1.replace(hour=12))
    assert fc2 is not None and not fc2.too_long and fc2.warning() == ""


def test_progress_below_one_checkpoint_per_night_never_finishes() -> None:
    # 6 h at 200 s/epoch is 107 epochs: with save_every 200 no night keeps anything.
    stuck = session(1, NIGHT1, 1, 100, 200.0, total=800, kept=0)
    fc = forecast(RunPace("songs", "r1", [stuck]), SCHED, 200, NIGHT1.replace(hour=12))
    assert fc is not None and fc.nights_left is None and fc.too_long
    assert "does not finish" in fc.sentence()


def test_finished_run() -> None:
    done = session(1, NIGHT1, 1, 300, 10.0, outcome="done", total=300)
    fc = forecast(RunPace("songs", "r1", [done]), SCHED, 100, NIGHT1.replace(hour=12))
    assert fc is not None and fc.finished and not fc.too_long
    assert fc.sentence().startswith("finished: 300 epochs in 1 night")
