"""The shapes of the analysis job (input) and of analysis.json (output), agreed with the
outbox page that reads it, and their validation.

The daemon validates the child's report before handing it on, so the page can trust the
types; every string in it may still come from a file name and is escaped by the page."""

from __future__ import annotations

import math
from typing import Any, Literal, TypedDict, cast

FORMAT = 1


class TrainingSong(TypedDict):
    name: str  # shown to the user, e.g. "Exodus.mp3"
    path: str  # absolute


class ClipJob(TypedDict):
    id: str
    prompt: str
    seed: int
    variant: Literal["base", "lora"]
    checkpoint: str  # "base" | "final" | "epoch_600"
    epoch: int | None
    scale: float | None
    path: str  # absolute


class AnalysisJob(TypedDict):
    training: list[TrainingSong]
    clips: list[ClipJob]
    threshold: float | None  # None: the calibrated default


class Copying(TypedDict):
    song: str
    ratio: float  # clip-to-song distance / how far the training songs are from one another


class Column(TypedDict):
    checkpoint: str
    epoch: int | None
    scale: float
    effect: float | None
    no_effect: bool
    closeness: float | None
    rank: int | None
    copying: Copying | None


class ClipResult(TypedDict):
    id: str
    effect: float | None
    nearest_song: str | None
    nearest_distance: float | None


class AnalysisReport(TypedDict):
    format: int
    descriptor: str
    no_effect_threshold: float
    columns: list[Column]
    clips: list[ClipResult]
    no_effect: bool
    advice: str
    seconds: float


class SchemaError(ValueError):
    """A job or report that does not have the agreed shape; the text names the key."""


def _need(obj: Any, key: str, kinds: tuple[type, ...], where: str, *,
          nullable: bool = False) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise SchemaError(f"{where}: missing key {key!r}")
    value = obj[key]
    if value is None and nullable:
        return None
    # bool is an int to Python; a JSON true is never a number here
    if isinstance(value, bool) and bool not in kinds:
        raise SchemaError(f"{where}.{key}: expected {_names(kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise SchemaError(f"{where}.{key}: expected {_names(kinds)}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{where}.{key}: not a finite number ({value!r})")
    return value


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def _list(obj: Any, key: str, where: str) -> list[Any]:
    return cast(list[Any], _need(obj, key, (list,), where))


NUM = (int, float)


def parse_job(data: Any, where: str = "job") -> AnalysisJob:
    """The job as the child reads it; SchemaError names the first bad key."""
    for i, song in enumerate(_list(data, "training", where)):
        at = f"{where}.training[{i}]"
        _need(song, "name", (str,), at)
        _need(song, "path", (str,), at)
    for i, clip in enumerate(_list(data, "clips", where)):
        at = f"{where}.clips[{i}]"
        for key in ("id", "prompt", "checkpoint", "path"):
            _need(clip, key, (str,), at)
        _need(clip, "seed", (int,), at)
        if _need(clip, "variant", (str,), at) not in ("base", "lora"):
            raise SchemaError(f"{at}.variant: expected 'base' or 'lora', got {clip['variant']!r}")
        _need(clip, "epoch", (int,), at, nullable=True)
        _need(clip, "scale", NUM, at, nullable=True)
    threshold = _need(data, "threshold", NUM, where, nullable=True)
    if threshold is not None and threshold <= 0:
        raise SchemaError(f"{where}.threshold: must be above 0, got {threshold!r}")
    return cast(AnalysisJob, data)


def parse_report(data: Any, where: str = "analysis.json") -> AnalysisReport:
    """The child's report as the daemon accepts it; SchemaError names the first bad key."""
    if _need(data, "format", (int,), where) != FORMAT:
        raise SchemaError(f"{where}.format: expected {FORMAT}, got {data['format']!r}")
    _need(data, "descriptor", (str,), where)
    _need(data, "no_effect_threshold", NUM, where)
    _need(data, "no_effect", (bool,), where)
    _need(data, "advice", (str,), where)
    _need(data, "seconds", NUM, where)
    for i, col in enumerate(_list(data, "columns", where)):
        at = f"{where}.columns[{i}]"
        _need(col, "checkpoint", (str,), at)
        _need(col, "epoch", (int,), at, nullable=True)
        _need(col, "scale", NUM, at)
        _need(col, "effect", NUM, at, nullable=True)
        _need(col, "no_effect", (bool,), at)
        _need(col, "closeness", NUM, at, nullable=True)
        _need(col, "rank", (int,), at, nullable=True)
        copying = _need(col, "copying", (dict,), at, nullable=True)
        if copying is not None:
            _need(copying, "song", (str,), f"{at}.copying")
            _need(copying, "ratio", NUM, f"{at}.copying")
    for i, clip in enumerate(_list(data, "clips", where)):
        at = f"{where}.clips[{i}]"
        _need(clip, "id", (str,), at)
        _need(clip, "effect", NUM, at, nullable=True)
        _need(clip, "nearest_song", (str,), at, nullable=True)
        _need(clip, "nearest_distance", NUM, at, nullable=True)
    return cast(AnalysisReport, data)
