"""samples.json, typed: what one outbox run holds (render/files.py writes it, page.py reads it).

``format`` grows only by adding keys; a reader of format 1 ignores what it does not know.
Runs rendered before the checkpoint grid have no ``columns``: their clips' ``renders`` are
keyed "lora" and "base". A grid's are keyed by column (``ColumnInfo.key``).
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


class ColumnInfo(TypedDict):
    """One column of the grid: the base model, or one adapter at one scale."""

    key: str                # "base", "final@1", "epoch_600@0.5": the clips' renders keys
    checkpoint: str         # "base", "final" or "epoch_<N>"
    epoch: int | None
    scale: float | None     # None for the base model
    path: str | None        # the adapter as sent to /load_lora
    loss: float | None      # the last loss logged up to that adapter's epoch
    export: str | None      # the command that copies this adapter out (shell-quoted)


class DroppedInfo(TypedDict):
    checkpoint: str         # "epoch_<N>": left out to fit [render] max_minutes
    epoch: int | None


class BudgetInfo(TypedDict):
    max_minutes: float
    seconds_per_audio_second: float | None   # the measured pace planned with (None: estimate)


class Render(TypedDict):
    """One clip of one column (of "lora" or "base" in runs before the grid)."""

    file: str | None
    duration_seconds: float | None
    call: int
    call_seconds: float
    error: NotRequired[str]
    seconds: NotRequired[float]          # its share of the call's time
    checkpoint: NotRequired[str]         # as ColumnInfo
    epoch: NotRequired[int | None]
    scale: NotRequired[float | None]
    seed: NotRequired[int]


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
    columns: NotRequired[list[ColumnInfo]]
    dropped: NotRequired[list[DroppedInfo]]
    notes: NotRequired[list[str]]        # what the render could not do as configured
    finished: NotRequired[bool]          # False: a progress report of an unfinished run
    budget: NotRequired[BudgetInfo]
    forecast: NotRequired[str]           # when the run will finish (written by the lead's code)
