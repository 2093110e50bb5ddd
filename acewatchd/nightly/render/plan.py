"""What a render will do, as data: the clips (one per prompt and seed) and the calls.

How prompts map to generation calls: ACE-Step renders a batch from ONE caption/lyrics/metas set;
the clips of a batch differ only by seed. So prompts with identical generation settings (all
but name and seed) form a group, and each group is cut into calls of up to ``batch_size``
clips. N such prompts take ceil(N / batch_size) calls; prompts that differ in their text cannot
share a call and take one call (per batch_size seeds) each. See ``plan_calls``.

The grid: every clip is rendered once per column, base | adapter x scale (``grid_columns``);
the calls of one column are the same for every column. ``fit_budget`` leaves out the oldest
checkpoints when the grid would not fit ``[render] max_minutes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acewatchd.config.schema import Config, Dataset, Prompt, Render
from acewatchd.nightly.render.lora import LoraChoice
from acewatchd.outbox import folders as outbox
from acewatchd.outbox.manifest import Render as RenderedClip


@dataclass(frozen=True)
class Clip:
    number: int
    name: str
    slug: str
    caption: str
    language: str
    seed: int
    prompt: Prompt
    prompt_index: int = 0     # 1-based position in [render] prompts; takes share it
    prompt_name: str = ""

    def settings(self) -> tuple[Any, ...]:
        """What must be equal for two clips to share one generation call."""
        p = self.prompt
        return (self.caption, p.lyrics, p.bpm, p.key, p.time_signature, self.language,
                p.duration)


def fill_tag(caption: str, ds: Dataset) -> str:
    """Put the dataset's trigger tag where "{tag}" stands, else where training put it."""
    tag = ds.tag.strip()
    if "{tag}" in caption and tag:
        return caption.replace("{tag}", tag).strip()
    if "{tag}" in caption:  # no tag: drop the placeholder with its separator, not ", ,"
        return re.sub(r"\{tag\}\s*,\s*|\s*,\s*\{tag\}|\{tag\}", "", caption).strip()
    if tag:
        return f"{caption}, {tag}" if ds.tag_position == "append" else f"{tag}, {caption}"
    return caption.strip()


def build_clips(rcfg: Render, ds: Dataset) -> list[Clip]:
    """One clip per prompt and seed (a prompt's ``seeds`` are takes of it), numbered 1..n."""
    clips: list[Clip] = []
    for index, p in enumerate(rcfg.prompts, 1):
        caption = fill_tag(p.caption, ds)
        name = p.name.strip() or caption[:48] or f"prompt {index}"
        slug = outbox.slugify(p.name or caption, f"prompt{index}")
        language = p.language if p.language != "unknown" else ds.language
        takes = p.seeds or [p.seed]
        for seed in takes:
            several = len(takes) > 1
            clips.append(Clip(len(clips) + 1, f"{name} · seed {seed}" if several else name,
                              f"{slug}-s{seed}" if several else slug, caption, language, seed,
                              p, index, name))
    return clips


def plan_calls(clips: list[Clip], batch_size: int) -> list[list[Clip]]:
    """Group clips by settings() (first appearance order), then chunk by batch_size."""
    groups: dict[tuple[Any, ...], list[Clip]] = {}
    for clip in clips:
        groups.setdefault(clip.settings(), []).append(clip)
    size = max(1, batch_size)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


@dataclass(frozen=True)
class Column:
    """One column of the grid: the base model, or one adapter at one LoRA scale."""

    lora: LoraChoice | None     # None: the base model
    scale: float | None = None

    @property
    def checkpoint(self) -> str:
        return "base" if self.lora is None else self.lora.column

    @property
    def epoch(self) -> int | None:
        return None if self.lora is None else self.lora.epoch

    @property
    def key(self) -> str:
        """Its key in samples.json: "base", "final@1", "epoch_600@0.5"."""
        return "base" if self.lora is None else f"{self.checkpoint}@{self.scale:g}"

    @property
    def slug(self) -> str:
        """Its part of a clip's file name: "base", "final-x1", "e600-x0.5"."""
        if self.lora is None:
            return "base"
        name = "final" if self.checkpoint == "final" else f"e{self.epoch}"
        return f"{name}-x{self.scale:g}"


def grid_columns(adapters: list[LoraChoice], scales: list[float],
                 compare_base: bool) -> list[Column]:
    """base | each adapter (oldest first) at each scale (lowest first): the page's order."""
    base = [Column(None)] if compare_base else []
    return base + [Column(a, s) for a in adapters for s in scales]


def audio_seconds(clips: list[Clip]) -> float:
    return sum(c.prompt.duration for c in clips)


def grid_seconds(columns: list[Column], clips: list[Clip], per_audio_second: float) -> float:
    return len(columns) * audio_seconds(clips) * per_audio_second


def fit_budget(columns: list[Column], clips: list[Clip], per_audio_second: float,
               max_minutes: float) -> tuple[list[Column], list[LoraChoice]]:
    """Leave out whole checkpoints, oldest first, until the grid fits ``max_minutes``; the
    final adapter (or, in an unfinished run, the newest checkpoint) and the base stay, even
    when they alone do not fit. Returns the columns kept and the adapters left out."""
    kept, dropped = list(columns), []
    while grid_seconds(kept, clips, per_audio_second) > max_minutes * 60:
        adapters = list(dict.fromkeys(c.lora for c in kept if c.lora is not None))
        if len(adapters) <= 1:
            break
        oldest = adapters[0]
        kept = [c for c in kept if c.lora != oldest]
        dropped.append(oldest)
    return kept, dropped


@dataclass
class RenderJob:
    """One render: its plan, where it writes, and what came back (filled as calls finish)."""

    cfg: Config
    dataset: str
    rcfg: Render
    calls: list[list[Clip]]
    staging: Path
    results: dict[str, dict[int, RenderedClip]]   # column key -> clip number -> what came back
    columns: list[Column] = field(default_factory=list)
    dropped: list[LoraChoice] = field(default_factory=list)  # left out to fit the budget
    notes: list[str] = field(default_factory=list)            # said on the page and in the log
    per_audio_second: float | None = None  # the speed the budget was planned with (None: estimate)
    finished: bool = True    # the training run has its final adapter
    seconds: float = 0.0
    simulated: bool = False  # the answers came from acewatchd's ACE-Step simulator
    acestep_api: str = ""    # which ACE-Step version's API answered (ApiMatch.summary)
