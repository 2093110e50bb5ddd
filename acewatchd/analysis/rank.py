"""From per-clip figures to the page's columns: effect, the no-effect alarm, closeness, the
rank, the copying flag and one line of advice. Pure: no audio here."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from acewatchd.analysis.distance import COPY_RATIO, closeness, nearest
from acewatchd.analysis.schema import ClipJob, ClipResult, Column, Copying

NO_EFFECT_CAUSES = ("the LoRA scale is too low, the adapter was not applied, or it trained "
                    "for too few epochs")


@dataclass
class ClipFigures:
    clip: ClipJob
    effect: float | None = None  # distance to its base clip; None for a base clip
    songs: dict[str, float] = field(default_factory=dict)  # descriptor distance per song


@dataclass
class Ranking:
    columns: list[Column]
    clips: list[ClipResult]
    no_effect: bool
    advice: str


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _median(values: Sequence[float | None]) -> float | None:
    have = [v for v in values if v is not None]
    return statistics.median(have) if have else None


def copy_reference(figures: Sequence[ClipFigures], spread: float | None) -> float | None:
    """What "much closer" is measured against: how far the training songs are from one
    another; with a single song, how far the base model's clips are from it."""
    if spread is not None and spread > 0:
        return spread
    base = [n[1] for f in figures if f.clip["variant"] == "base" and (n := nearest(f.songs))]
    ref = _median(base)
    return ref if ref is not None and ref > 0 else None


def _copying(members: Sequence[ClipFigures], reference: float | None) -> Copying | None:
    if reference is None:
        return None
    ratios, songs = [], []
    for f in members:
        near = nearest(f.songs)
        if near is not None:
            songs.append(near[0])
            ratios.append(near[1] / reference)
    ratio = _median(ratios)
    if ratio is None or ratio >= COPY_RATIO:
        return None
    counts = Counter(songs)
    song = min(counts, key=lambda s: (-counts[s], s))
    return {"song": song, "ratio": round(ratio, 4)}


def _column(key: tuple[str, int | None, float], members: Sequence[ClipFigures],
            threshold: float, reference: float | None) -> Column:
    effects = [f.effect for f in members if f.effect is not None]
    return {"checkpoint": key[0], "epoch": key[1], "scale": key[2],
            "effect": _round(_median(effects)),
            "no_effect": bool(effects) and all(e < threshold for e in effects),
            "closeness": _round(_median([closeness(f.songs) for f in members])),
            "rank": None, "copying": _copying(members, reference)}


def _label(col: Column, with_scale: bool) -> str:
    name = col["checkpoint"] if col["epoch"] is None else f"epoch {col['epoch']}"
    return f"{name} at scale {col['scale']:g}" if with_scale else name


def _advice(columns: Sequence[Column], no_effect: bool, threshold: float,
            have_songs: bool) -> str:
    if not columns:
        return "no LoRA clips to compare"
    if no_effect:
        return (f"no audible effect: every LoRA clip sounds like its base clip (closer than "
                f"{threshold:g} dB); likely {NO_EFFECT_CAUSES}")
    with_scale = len({c["scale"] for c in columns}) > 1
    parts = []
    ranked = sorted((c for c in columns if c["rank"] is not None), key=lambda c: c["rank"] or 0)
    best = next((c for c in ranked if not c["no_effect"] and c["copying"] is None), None)
    if best is not None:
        parts.append(f"closest to your songs: {_label(best, with_scale)}")
    elif not have_songs:
        parts.append("no training songs to compare with")
    for col in columns:
        if col["copying"] is not None and not col["no_effect"]:
            parts.append(f"{_label(col, with_scale)} may be copying '{col['copying']['song']}'")
    silent = [_label(c, with_scale) for c in columns if c["no_effect"]]
    if silent:
        parts.append(f"no audible effect: {', '.join(silent)}")
    return "; ".join(parts)


def rank(figures: Sequence[ClipFigures], *, threshold: float, spread: float | None) -> Ranking:
    """Columns in the order their first clip appears in the job, ranked by closeness: a
    column that may be copying or has no effect ranks after every other."""
    groups: dict[tuple[str, int | None, float], list[ClipFigures]] = {}
    for f in figures:
        c = f.clip
        if c["variant"] == "lora":
            scale = 1.0 if c["scale"] is None else float(c["scale"])
            groups.setdefault((c["checkpoint"], c["epoch"], scale), []).append(f)
    reference = copy_reference(figures, spread)
    columns = [_column(k, m, threshold, reference) for k, m in groups.items()]
    order = sorted((c for c in columns if c["closeness"] is not None),
                   key=lambda c: (c["no_effect"], c["copying"] is not None, c["closeness"]))
    for i, col in enumerate(order, start=1):
        col["rank"] = i
    clips: list[ClipResult] = []
    for f in figures:
        near = nearest(f.songs)
        clips.append({"id": f.clip["id"], "effect": _round(f.effect),
                      "nearest_song": near[0] if near else None,
                      "nearest_distance": _round(near[1]) if near else None})
    no_effect = bool(columns) and all(c["no_effect"] for c in columns)
    return Ranking(columns, clips, no_effect,
                   _advice(columns, no_effect, threshold, any(f.songs for f in figures)))
