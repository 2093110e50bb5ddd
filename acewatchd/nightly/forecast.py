"""When will a training run finish? A forecast from the pace measured in its own sessions.

The pace is the seconds per epoch ACE-Step's stream showed (time between the first and last
epoch a session logged, over all its sessions) and the per-night overhead before the first
epoch (server start, dataset load). The nights ahead are the schedule's windows; each night
resumes from the newest checkpoint (``save_every``), so the epochs trained after a night's last
checkpoint are trained again the next night, and the forecast counts that loss.

Pure functions: the caller passes the run's sessions (ledger/pace.py), the dataset's schedule
and ``now``; `status`, the outbox page and the notification show ``Forecast.sentence()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from acewatchd.config.schema import Schedule
from acewatchd.ledger.pace import RunPace, Session
from acewatchd.nightly.times import next_fire, previous_fire, window_end_for

_MAX_NIGHTS_AHEAD = 366     # a forecast beyond a year is "not within a year"


@dataclass(frozen=True)
class Pace:
    seconds_per_epoch: float
    overhead: float          # seconds from a session's start to its first epoch


@dataclass(frozen=True)
class Forecast:
    dataset: str
    run_name: str
    epochs_total: int
    epochs_done: int
    pace: Pace | None
    nights_used: int              # sessions so far, a running one included
    nights_left: int | None       # windows still needed, tonight's running one included
    finish: datetime | None
    max_nights: int
    running: bool
    epochs_per_night: int | None = None   # what one whole window trains at this pace

    @property
    def finished(self) -> bool:
        return self.epochs_done >= self.epochs_total

    @property
    def nights_total(self) -> int | None:
        if self.nights_left is None:
            return None
        return self.nights_used + self.nights_left - (1 if self.running else 0)

    @property
    def too_long(self) -> bool:
        """The run is forecast to need more nights than ``[schedule] max_nights``."""
        if self.finished or self.pace is None:
            return False
        total = self.nights_total
        return total is None or total > self.max_nights

    def sentence(self) -> str:
        if self.finished:
            return f"finished: {self.epochs_total} epochs in {self.nights_used} night(s)"
        done = f"{self.epochs_done}/{self.epochs_total} epochs"
        if self.pace is None:
            return f"{done}; a forecast follows the first measured epochs"
        speed = f"{self.pace.seconds_per_epoch:.1f} s/epoch"
        if self.epochs_per_night:
            speed += f", about {self.epochs_per_night} epochs per night"
        if self.finish is None or self.nights_left is None:
            return f"{done} at {speed}: does not finish within a year of nights"
        when = self.finish.strftime("%A ~%H:%M")
        more = self.nights_left - (1 if self.running else 0)
        if more <= 0:
            return f"{done} at {speed}: finishes tonight, {when}"
        return f"{done} at {speed}: about {more} more night{'s' if more != 1 else ''}, {when}"

    def warning(self) -> str:
        """'' or why the run will not finish within ``max_nights`` (for `status`)."""
        if not self.too_long:
            return ""
        total = self.nights_total
        need = "more than a year of" if total is None else str(total)
        return (f"{self.dataset}: {self.epochs_total} epochs need {need} nights at the "
                f"measured pace, more than [schedule] max_nights = {self.max_nights}: lower "
                f"[train] epochs, widen the window, or raise max_nights")


def measure_pace(sessions: list[Session]) -> Pace | None:
    """Seconds per epoch over every session's logged epochs (weighted by their length), and
    the median start-up overhead; None before two epochs of one session were logged."""
    seconds = epochs = 0.0
    overheads: list[float] = []
    for s in sessions:
        if len(s.points) < 2:
            continue
        (t0, e0), (t1, e1) = s.points[0], s.points[-1]
        if e1 <= e0 or t1 <= t0:
            continue
        seconds += t1 - t0
        epochs += e1 - e0
    if epochs <= 0:
        return None
    spe = seconds / epochs
    for s in sessions:
        if s.points and s.started is not None:
            # The first logged point comes after one epoch of this session's work.
            overheads.append(max(0.0, s.points[0][0] - s.started - spe))
    overheads.sort()
    overhead = overheads[len(overheads) // 2] if overheads else 0.0
    return Pace(spe, overhead)


def forecast(run: RunPace, sched: Schedule, save_every: int, now: datetime) -> Forecast | None:
    """The run's forecast at ``now`` (aware), or None when its epoch total is unknown."""
    sessions = run.sessions
    total = run.epochs_total
    if not total or not sessions:
        return None
    last = sessions[-1]
    running = last.outcome == "running"
    pace = measure_pace(sessions)
    if running:
        done = max([last.epochs_done or 0] + [e for _, e in last.points])
    else:
        done = total if last.outcome == "done" else (last.epochs_done or 0)
    done = min(done, total)
    if pace is None or done >= total:
        return Forecast(run.dataset, run.run_name, total, done, pace, len(sessions), None,
                        None, sched.max_nights, running)
    per_night, nights, finish = _walk(pace, sched, max(1, save_every), total, done, now,
                                      running)
    return Forecast(run.dataset, run.run_name, total, done, pace, len(sessions), nights,
                    finish, sched.max_nights, running, per_night)


def _walk(pace: Pace, sched: Schedule, save_every: int, total: int, done: int, now: datetime,
          running: bool) -> tuple[int, int | None, datetime | None]:
    """Night by night: where each window gets the run to, and when it reaches ``total``.
    Returns (epochs a whole night trains, windows needed, finish time)."""
    spe = pace.seconds_per_epoch
    # A running session goes on from where it is; a stopped one resumes from its checkpoint.
    position = float(done) if running else float(_checkpoint(done, save_every))
    per_night = 0
    for index, (start, end, current) in enumerate(_windows(sched, now, running)):
        begin = start if current else start + timedelta(seconds=pace.overhead)
        available = max(0.0, (end - begin).total_seconds())
        if not current and not per_night:
            per_night = int(available // spe)
        reach = position + available / spe
        if reach >= total:
            return per_night, index + 1, begin + timedelta(seconds=(total - position) * spe)
        # The next night resumes from the newest checkpoint this one saved.
        position = max(position, float(_checkpoint(int(reach), save_every)))
    return per_night, None, None


def _checkpoint(epoch: int, save_every: int) -> int:
    return (epoch // save_every) * save_every


def _windows(sched: Schedule, now: datetime, running: bool
             ) -> Iterator[tuple[datetime, datetime, bool]]:
    """The training windows ahead, lazily (most runs finish within a few): tonight's rest
    first when a session runs now."""
    cursor = now
    if running:
        fire = previous_fire(sched, now)
        end = window_end_for(sched, fire) if fire else now
        if end > now:
            yield now, end, True
            cursor = end
    for _ in range(_MAX_NIGHTS_AHEAD):
        fire = next_fire(sched, cursor + timedelta(seconds=1))
        if fire is None:
            return
        end = window_end_for(sched, fire)
        yield fire, end, False
        cursor = end
