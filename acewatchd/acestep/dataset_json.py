"""dataset.json in ACE-Step's own schema (CONTRACT §4), written by acewatchd, not by its scan.

ACE-Step's scan ignores ``.caption.txt``/``.lyrics.txt``, preprocesses only ``labeled``
samples and applies each sample's own ``custom_tag`` (CONTRACT Risk 5), so acewatchd writes the
file itself: every sample labeled, the tag on every sample, absolute audio paths under ACE-Step's
root, and ids taken from the content hash so they never change between writes.

``read_dataset_json`` is the strict reader the tests use: exactly the contract's fields, with
their types; anything unknown or missing is an error naming the file and key.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acewatchd.config import Dataset
from acewatchd.errors import AcewatchdError
from acewatchd.fsutil import atomic_write_text
from acewatchd.staging import SourceSample

INSTRUMENTAL = "[Instrumental]"
NoneType = type(None)
METADATA_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,), "custom_tag": (str,), "tag_position": (str,), "created_at": (str,),
    "num_samples": (int,), "all_instrumental": (bool,), "genre_ratio": (int,),
}
SAMPLE_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,), "audio_path": (str,), "filename": (str,), "caption": (str,), "genre": (str,),
    "lyrics": (str,), "raw_lyrics": (str,), "formatted_lyrics": (str,), "bpm": (int, NoneType),
    "keyscale": (str,), "timesignature": (str,), "duration": (int,), "language": (str,),
    "is_instrumental": (bool,), "custom_tag": (str,), "labeled": (bool,),
    "prompt_override": (str, NoneType),
}
TAG_POSITIONS = ("prepend", "append", "replace")
_KEY = re.compile(r"^([A-Ga-g])([#b♯♭]?)\s*(m|min|minor|maj|major)?$")


def build(name: str, ds: Dataset, samples: list[SourceSample], staged: list[Path]) -> dict[str,
                                                                                          Any]:
    """The whole dataset.json document for ``samples`` (staged[i] is samples[i]'s audio)."""
    rows = [sample_entry(ds, s, p) for s, p in zip(samples, staged, strict=True)]
    meta = {"name": name, "custom_tag": ds.tag, "tag_position": ds.tag_position,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "num_samples": len(rows), "all_instrumental": ds.instrumental,
            "genre_ratio": ds.genre_ratio}
    return {"metadata": meta, "samples": rows}


def sample_entry(ds: Dataset, sample: SourceSample, staged: Path) -> dict[str, Any]:
    info = _tags(staged)
    instrumental = ds.instrumental or sample.lyrics.strip().lower() in ("", INSTRUMENTAL.lower())
    duration = sample.duration or float(getattr(info, "duration", 0.0) or 0.0)
    return {
        "id": sample.sample_id, "audio_path": str(staged.absolute()), "filename": staged.name,
        "caption": sample.caption, "genre": getattr(info, "genre", "") or ds.genre,
        "lyrics": INSTRUMENTAL if instrumental else sample.lyrics,
        "raw_lyrics": "" if instrumental else sample.lyrics, "formatted_lyrics": "",
        "bpm": _bpm(getattr(info, "bpm", "")) or ds.bpm,
        "keyscale": _keyscale(getattr(info, "key", "")) or ds.keyscale,
        "timesignature": ds.timesignature, "duration": round(duration),
        "language": "unknown" if instrumental and ds.instrumental else ds.language,
        "is_instrumental": instrumental, "custom_tag": ds.tag, "labeled": True,
        "prompt_override": None,
    }


def _tags(path: Path) -> object | None:
    """bpm / key / genre from the file's tags; None when they cannot be read (config wins)."""
    try:
        from acewatchd.tags import read_audio

        return read_audio(path)
    except Exception:  # noqa: BLE001 - unreadable tags only lose the hints, never the sample
        return None


def _bpm(text: str) -> int | None:
    try:
        value = round(float(text.strip()))
    except (ValueError, AttributeError):
        return None
    return value if 30 <= value <= 300 else None


def _keyscale(text: str) -> str:
    """'Am' -> 'A minor', 'F#' -> 'F# major' (ACE-Step's form); other spellings kept as is."""
    match = _KEY.match((text or "").strip())
    if not match:
        return (text or "").strip()
    note, accidental, mode = match.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    minor = mode in ("m", "min", "minor")
    return f"{note.upper()}{accidental} {'minor' if minor else 'major'}"


def write(path: Path, doc: dict[str, Any]) -> bool:
    """Write atomically unless only ``created_at`` would change; True when written."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if _without_time(old) == _without_time(doc):
            return False
    except (FileNotFoundError, ValueError):
        pass
    atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return True


def _without_time(doc: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in doc.get("metadata", {}).items() if k != "created_at"}
    return {**doc, "metadata": meta}


def read_dataset_json(path: Path) -> dict[str, Any]:
    """Strict reader: the contract's fields only, each with its type, or AcewatchdError."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AcewatchdError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(doc, dict) or set(doc) != {"metadata", "samples"}:
        raise AcewatchdError(f"{path}: top level must be exactly metadata and samples")
    _check_fields(path, "metadata", doc["metadata"], METADATA_FIELDS)
    if not isinstance(doc["samples"], list):
        raise AcewatchdError(f"{path}: samples must be a list")
    for index, sample in enumerate(doc["samples"]):
        _check_fields(path, f"samples[{index}]", sample, SAMPLE_FIELDS)
        _check_sample(path, f"samples[{index}]", sample)
    _check_metadata(path, doc)
    return doc


def _check_fields(path: Path, where: str, value: Any, spec: dict[str, tuple[type, ...]]) -> None:
    if not isinstance(value, dict):
        raise AcewatchdError(f"{path}: {where} must be an object")
    for key in value:
        if key not in spec:
            raise AcewatchdError(f"{path}: {where}.{key}: unknown field")
    for key, types in spec.items():
        if key not in value:
            raise AcewatchdError(f"{path}: {where}.{key}: missing")
        ok = isinstance(value[key], types) and not (bool not in types and
                                                   isinstance(value[key], bool))
        if not ok:
            raise AcewatchdError(f"{path}: {where}.{key}: wrong type "
                                 f"{type(value[key]).__name__}")


def _check_sample(path: Path, where: str, sample: dict[str, Any]) -> None:
    if not re.fullmatch(r"[0-9a-f]{8}", sample["id"]):
        raise AcewatchdError(f"{path}: {where}.id: must be 8 lowercase hex characters")
    if not Path(sample["audio_path"]).is_absolute():
        raise AcewatchdError(f"{path}: {where}.audio_path: must be absolute")
    if sample["prompt_override"] not in (None, "caption", "genre"):
        raise AcewatchdError(f"{path}: {where}.prompt_override: must be null, caption or genre")
    if sample["raw_lyrics"].strip() and sample["is_instrumental"]:
        raise AcewatchdError(f"{path}: {where}: raw_lyrics given but is_instrumental is true")


def _check_metadata(path: Path, doc: dict[str, Any]) -> None:
    meta = doc["metadata"]
    if meta["tag_position"] not in TAG_POSITIONS:
        raise AcewatchdError(f"{path}: metadata.tag_position: must be one of {TAG_POSITIONS}")
    if not 0 <= meta["genre_ratio"] <= 100:
        raise AcewatchdError(f"{path}: metadata.genre_ratio: must be 0..100")
    if meta["num_samples"] != len(doc["samples"]):
        raise AcewatchdError(f"{path}: metadata.num_samples: {meta['num_samples']} but "
                             f"{len(doc['samples'])} samples")
    ids = [s["id"] for s in doc["samples"]]
    if len(set(ids)) != len(ids):
        raise AcewatchdError(f"{path}: samples: duplicate id")
