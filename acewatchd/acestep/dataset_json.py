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
from pathlib import Path
from typing import Any

from acewatchd.errors import AcewatchdError
from acewatchd.util.files import atomic_write_text

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
