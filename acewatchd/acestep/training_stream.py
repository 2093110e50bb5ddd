"""Follow ACE-Step's streamed /training_wrapper outputs into a ``TrainingOutcome``.

Each stream item is (progress text, log text, loss-plot payload) (CONTRACT §2). A stream that
ends without a completed/stopped/failed status, or goes silent for ``idle_timeout``, means the
server or connection was lost: ``ServerUnavailable``, so the caller can reconnect and resume.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from acewatchd.acestep.errors import ServerUnavailable
from acewatchd.acestep.progress import (
    TrainingProgress,
    is_completed,
    is_failure,
    is_stopped,
    parse_progress,
    resume_ignored,
)

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.05


@dataclass
class TrainingOutcome:
    status: Literal["completed", "stopped", "failed"]
    last: TrainingProgress | None
    text: str
    loss_points: list[tuple[int, float]] = field(default_factory=list)


def _plot_points(payload: Any) -> list[tuple[int, float]] | None:
    """(step, loss) pairs from a PlotData dict ({columns, data}); None if not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return None
    cols = [str(c) for c in payload.get("columns") or ["step", "loss"]]
    si, li = (cols.index("step"), cols.index("loss")) if {"step", "loss"} <= set(cols) else (0, 1)
    points = []
    for row in payload["data"]:
        try:
            points.append((int(row[si]), float(row[li])))
        except (TypeError, ValueError, IndexError):
            continue
    return points


def _item_texts(item: Any) -> tuple[str, str, Any]:
    parts = list(item) if isinstance(item, (tuple, list)) else [item]
    parts += [None] * (3 - len(parts))
    return str(parts[0] or ""), str(parts[1] or ""), parts[2]


class _Follower:
    def __init__(self, on_progress: Callable[[TrainingProgress], None] | None,
                 on_notice: Callable[[str], None] | None = None) -> None:
        self.on_progress = on_progress
        self.on_notice = on_notice
        self.noticed: set[str] = set()
        self.refusal = ""  # a failing status line seen before any progress
        self.last: TrainingProgress | None = None
        self.text = ""
        self.points: dict[int, float] = {}

    def feed(self, item: Any) -> None:
        progress_text, _log, plot = _item_texts(item)
        self.text = progress_text
        first = progress_text.strip().splitlines()[0] if progress_text.strip() else ""
        if self.last is None and not self.refusal and is_failure(first):
            # V1/V2 fall through to "Training completed!" after refusing to train.
            self.refusal = first
        if resume_ignored(first) and first not in self.noticed:
            self.noticed.add(first)
            if self.on_notice is not None:
                self.on_notice(first)
        prog = parse_progress(progress_text)
        if prog is not None:
            # The status stays on screen while other lines (checkpoint saved, elapsed time)
            # come: report a point once, not once per item that repeats it.
            same = self.last is not None and self.last.epoch == prog.epoch and \
                prog.step in (None, self.last.step)  # S/V1's "✅ Epoch e/E in …" summary too
            self.last = prog
            if prog.step is not None and prog.loss is not None and prog.loss == prog.loss:
                self.points.setdefault(prog.step, prog.loss)
            if self.on_progress is not None and not same:
                self.on_progress(prog)
        from_plot = _plot_points(plot)
        if from_plot:  # S's plot starts with a spurious (0, 0.0) point (CONTRACT §9b)
            self.points.update({step: loss for step, loss in from_plot if step > 0})

    def outcome(self) -> TrainingOutcome | None:
        status: Literal["completed", "stopped", "failed"]
        if self.refusal and self.last is None:
            return TrainingOutcome("failed", None, self.refusal, [])
        if is_failure(self.text):
            status = "failed"
        elif is_completed(self.text):
            status = "completed"
        elif is_stopped(self.text):
            status = "stopped"
        else:
            return None
        return TrainingOutcome(status, self.last, self.text, sorted(self.points.items()))


def follow_training(job: Any, *, idle_timeout: float,
                    on_progress: Callable[[TrainingProgress], None] | None = None,
                    on_notice: Callable[[str], None] | None = None) -> TrainingOutcome:
    """Consume a gradio_client Job's outputs until it finishes; see module doc."""
    follower = _Follower(on_progress, on_notice)
    seen = 0
    quiet_since = time.monotonic()
    while True:
        # job.outputs() is gradio_client's live list: snapshot it, feed only what we counted.
        outputs = list(job.outputs())
        for item in outputs[seen:]:
            follower.feed(item)
        if len(outputs) > seen:
            seen, quiet_since = len(outputs), time.monotonic()
        if job.done() and len(job.outputs()) == seen:
            break
        if time.monotonic() - quiet_since > idle_timeout:
            job.cancel()
            raise ServerUnavailable(f"training stream silent for {idle_timeout:.0f}s")
        time.sleep(POLL_SECONDS)
    # Re-raises the job's exception (AppError, network) if any; the final value may only
    # arrive with the "completed" message, not as a streamed item.
    final = job.result(timeout=0)
    outputs = job.outputs()
    if final is not None and (not outputs or final != outputs[-1]):
        follower.feed(final)
    outcome = follower.outcome()
    if outcome is None:
        raise ServerUnavailable("training stream ended without a final status (connection"
                                f" lost?); last: {follower.text.strip()[:200]!r}")
    return outcome
