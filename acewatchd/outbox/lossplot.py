"""The training loss curve as a PNG for the outbox page.

matplotlib is imported inside ``plot_loss`` (the daemon stays small while idle) and drawn with
the object API on an Agg canvas: no pyplot, so no global figure state shared between threads.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class LossPoint:
    step: int | None
    epoch: int | None
    loss: float | None


def usable(points: list[LossPoint]) -> list[LossPoint]:
    """Points with a finite loss (ACE-Step leaves NaN out of its own plot too)."""
    return [p for p in points if p.loss is not None and math.isfinite(p.loss)]


def continuous_steps(points: list[LossPoint]) -> list[LossPoint]:
    """A run trained over several nights may restart its step counter on resume: shift each
    restarted stretch so the curve keeps going right instead of folding back."""
    out, offset, last = [], 0, None
    for p in points:
        if p.step is None:
            out.append(p)
            continue
        if last is not None and p.step + offset < last:
            offset = last
        last = p.step + offset
        out.append(LossPoint(last, p.epoch, p.loss))
    return out


def epoch_means(points: list[LossPoint]) -> list[tuple[float, int, float]]:
    """(x position, epoch, mean loss) per epoch; x is the epoch's last step when known."""
    by_epoch: dict[int, list[LossPoint]] = defaultdict(list)
    for p in usable(points):
        if p.epoch is not None:
            by_epoch[p.epoch].append(p)
    out = []
    for epoch in sorted(by_epoch):
        group = by_epoch[epoch]
        steps = [p.step for p in group if p.step is not None]
        x = float(max(steps)) if steps else float(epoch)
        out.append((x, epoch, sum(p.loss for p in group if p.loss is not None) / len(group)))
    return out


def final_loss(points: list[LossPoint]) -> float | None:
    good = usable(points)
    return good[-1].loss if good else None


def plot_loss(points: list[LossPoint], *, title: str = "Training loss") -> bytes:
    """PNG bytes: loss per logged step (thin) and the per-epoch mean (bold). With no usable
    data the image says so instead of failing, so the page always has a picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), dpi=110, facecolor="#ffffff")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    points = continuous_steps(points)
    good = usable(points)
    if good:
        _draw_curves(ax, good, points)
    else:
        ax.text(0.5, 0.5, "No loss values were recorded for this run", ha="center",
                va="center", transform=ax.transAxes, color="#6b7280", fontsize=12)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title, loc="left", fontsize=11, color="#111827")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_curves(ax: Axes, good: list[LossPoint], points: list[LossPoint]) -> None:
    by_step = all(p.step is not None for p in good)
    xs = [float(_x(p, i, by_step)) for i, p in enumerate(good)]
    ax.plot(xs, [float(p.loss or 0.0) for p in good], color="#93c5fd", linewidth=1.0,
            label="loss per step" if by_step else "loss")
    means = epoch_means(points) if by_step else []
    if len(means) > 1:
        ax.plot([m[0] for m in means], [m[2] for m in means], color="#1d4ed8",
                linewidth=2.0, marker="o", markersize=3, label="mean per epoch")
    ax.set_xlabel("step" if by_step else "epoch", color="#374151")
    ax.set_ylabel("loss", color="#374151")
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.legend(frameon=False, fontsize=9)


def _x(p: LossPoint, index: int, by_step: bool) -> int:
    value = p.step if by_step else p.epoch
    return index if value is None else value
