"""samples.json, typed: what one outbox run holds (render/files.py writes it, page.py reads it).

``format`` grows only by adding keys; a reader of format 1 ignores what it does not know.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class TrainingRunInfo(TypedDict):
    id: int
    run_name: str | None
    epochs_done: int | None
    epochs_total: int | None
    final_loss: float | None
    content_hash: str | None


class LoraInfo(TypedDict):
    path: str               # as sent to /load_lora
    checkpoint: str         # "final" or the checkpoint folder name
    epoch: int | None
    scale: float
    loss: float | None      # the last loss logged up to that adapter's epoch


class AceStepInfo(TypedDict):
    url: str
    simulator: bool
    api: str                # which version's API answered (ApiMatch.summary)
    version: str | None     # the checkout: pyproject version and commit


class Settings(TypedDict):
    steps: int
    guidance: float
    audio_format: str
    batch_size: int
    compare_base: bool


class Render(TypedDict):
    """One clip of one variant ("lora" or "base")."""

    file: str | None
    duration_seconds: float | None
    call: int
    call_seconds: float
    error: NotRequired[str]


class PromptInfo(TypedDict):
    caption: str
    lyrics: str
    bpm: int | None
    key: str
    time_signature: str
    language: str
    duration: float


class Clip(TypedDict):
    number: int
    name: str
    slug: str
    seed: int
    prompt_index: int
    prompt_name: str
    prompt: PromptInfo
    renders: dict[str, Render]


class Manifest(TypedDict):
    format: int
    generator: str
    dataset: str
    run_folder: str
    created: str
    training_run: TrainingRunInfo
    lora: LoraInfo
    acestep: AceStepInfo
    settings: Settings
    generation_seconds: float
    generation_calls: int
    clips: list[Clip]
