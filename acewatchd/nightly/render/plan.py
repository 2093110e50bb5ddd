"""What a render will do, as data: the clips (one per prompt and seed) and the calls.

How prompts map to generation calls: ACE-Step renders a batch from ONE caption/lyrics/metas set;
the clips of a batch differ only by seed. So prompts with identical generation settings (all
but name and seed) form a group, and each group is cut into calls of up to ``batch_size``
clips. N such prompts take ceil(N / batch_size) calls; prompts that differ in their text cannot
share a call and take one call (per batch_size seeds) each. See ``plan_calls``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acewatchd.config.schema import Config, Dataset, Prompt, Render
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


@dataclass
class RenderJob:
    """One render: its plan, where it writes, and what came back (filled as calls finish)."""

    cfg: Config
    dataset: str
    rcfg: Render
    calls: list[list[Clip]]
    staging: Path
    results: dict[str, dict[int, RenderedClip]]   # variant -> clip number -> what came back
    seconds: float = 0.0
    simulated: bool = False  # the answers came from acewatchd's ACE-Step simulator
    acestep_api: str = ""    # which ACE-Step version's API answered (ApiMatch.summary)
