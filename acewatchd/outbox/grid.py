"""The run page's checkpoint grid and ranking, as plain data for the template.

One row per prompt and seed, one column per base | adapter x scale, in the manifest's order
(runs from before the grid have the two columns "base" and "lora"). ``analysis.json``, when the
run folder has one, adds per column its rank, closeness, effect and flags. Every value read
from that file is checked for its type here, so a damaged or foreign file shows less, never
breaks the page; the template escapes every string.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from acewatchd.outbox.manifest import Clip, ColumnInfo, Manifest, Render

logger = logging.getLogger(__name__)

ANALYSIS = "analysis.json"


@dataclass
class Column:
    key: str
    checkpoint: str
    epoch: int | None
    scale: float | None
    label: str                      # "Base model", "epoch 600", "final · epoch 800"
    export: str | None = None
    loss: float | None = None
    starts: bool = False            # the first column of its adapter (a divider before it)
    # From analysis.json:
    rank: int | None = None
    closeness: float | None = None
    effect: float | None = None
    no_effect: bool = False
    copying: str | None = None      # the training song it may be copying

    @property
    def is_base(self) -> bool:
        return self.checkpoint == "base"

    @property
    def scale_label(self) -> str:
        return "no LoRA" if self.scale is None else f"scale {self.scale:g}"


@dataclass
class Group:
    """Header cell over the columns of one adapter (its scales)."""

    label: str
    span: int
    is_base: bool
    export: str | None
    loss: float | None


@dataclass
class Cell:
    href: str | None
    aria: str
    length: str                     # "0:12"
    seconds: float | None           # render time of this clip
    error: str | None


@dataclass
class Row:
    number: int
    name: str
    seed: int
    caption: str
    meta: str
    lyrics: str
    cells: list[Cell]


@dataclass
class Analysis:
    no_effect: bool
    advice: str
    descriptor: str
    ranking: list[Column] = field(default_factory=list)


def columns(m: Manifest) -> list[Column]:
    cols = _columns(m)
    for before, col in zip([None, *cols], cols, strict=False):
        col.starts = before is None or before.label != col.label
    return cols


def _columns(m: Manifest) -> list[Column]:
    infos = m.get("columns")
    if infos:
        return [_column(c) for c in infos]
    # A run from before the grid: its two variants.
    present = {v for clip in m["clips"] for v in clip["renders"]}
    lora = m["lora"]
    old = [Column("base", "base", None, None, "Base model")] if "base" in present else []
    if "lora" in present:
        old.insert(0, Column("lora", lora["checkpoint"], lora["epoch"], lora["scale"],
                             _adapter_label(lora["checkpoint"], lora["epoch"]),
                             loss=lora.get("loss")))
    return old


def _column(c: ColumnInfo) -> Column:
    if c["checkpoint"] == "base":
        return Column(c["key"], "base", None, None, "Base model")
    return Column(c["key"], c["checkpoint"], c["epoch"], c["scale"],
                  _adapter_label(c["checkpoint"], c["epoch"]), c.get("export"), c.get("loss"))


def _adapter_label(checkpoint: str, epoch: int | None) -> str:
    if checkpoint == "final":
        return f"final · epoch {epoch}" if epoch else "final"
    return f"epoch {epoch}" if epoch is not None else checkpoint


def groups(cols: list[Column]) -> list[Group]:
    out: list[Group] = []
    for col in cols:
        if out and not col.is_base and out[-1].label == col.label:
            out[-1].span += 1
        else:
            out.append(Group(col.label, 1, col.is_base, col.export, col.loss))
    return out


def rows(m: Manifest, cols: list[Column]) -> list[Row]:
    return [_row(clip, cols) for clip in m["clips"]]


def _row(clip: Clip, cols: list[Column]) -> Row:
    p = clip["prompt"]
    meta = [f"seed {clip['seed']}", f"{p['duration']:g} s", f"bpm {p['bpm'] or 'auto'}"]
    meta += [f"key {p['key']}"] if p.get("key") else []
    meta += [f"{p['time_signature']}/4"] if p.get("time_signature") else []
    meta += [f"language {p['language']}"] if p.get("language") not in (None, "", "unknown") \
        else []
    lyrics = p.get("lyrics") or ""
    return Row(clip["number"], clip.get("prompt_name") or clip["name"], clip["seed"],
               p["caption"], " · ".join(meta),
               "" if lyrics.strip() in ("", "[Instrumental]") else lyrics,
               [_cell(clip["renders"].get(c.key), clip, c) for c in cols])


def _cell(render: Render | None, clip: Clip, col: Column) -> Cell:
    if render is None:
        return Cell(None, "", "", None, "not rendered")
    dur = render.get("duration_seconds")
    length = f"{int(dur // 60)}:{int(dur % 60):02d}" if dur else ""
    file = render.get("file")
    aria = f"{clip['name']}, {col.label.lower()}, {col.scale_label}"
    return Cell(quote(file) if file else None, aria, length, render.get("seconds"),
                None if file else (render.get("error") or "no audio"))


# --------------------------------------------------------------------------- analysis.json


def load_analysis(folder: Path, cols: list[Column]) -> Analysis | None:
    """Read ``analysis.json`` beside the page (None when absent or unreadable) and mark
    ``cols`` with its figures."""
    path = folder / ANALYSIS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("%s: not shown on the page: %s", path, exc)
        return None
    if not isinstance(data, dict) or data.get("format") != 1:
        logger.warning("%s: not an analysis of format 1; not shown on the page", path)
        return None
    by_key = {(c.checkpoint, _round(c.scale)): c for c in cols if not c.is_base}
    ranked: list[Column] = []
    for raw in data.get("columns") or []:
        col = by_key.get((_str(_get(raw, "checkpoint")), _round(_num(_get(raw, "scale")))))
        if col is not None:
            _mark(col, raw)
            ranked.append(col)
    ranked.sort(key=lambda c: (c.rank is None, c.rank or 0))
    return Analysis(data.get("no_effect") is True, _str(data.get("advice")),
                    _str(data.get("descriptor")), ranked)


def _mark(col: Column, raw: Any) -> None:
    rank = _get(raw, "rank")
    col.rank = rank if isinstance(rank, int) and not isinstance(rank, bool) else None
    col.closeness, col.effect = _num(_get(raw, "closeness")), _num(_get(raw, "effect"))
    col.no_effect = _get(raw, "no_effect") is True
    song = _get(_get(raw, "copying"), "song")
    col.copying = song if isinstance(song, str) and song else None


def _get(raw: Any, key: str) -> Any:
    return raw.get(key) if isinstance(raw, dict) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
