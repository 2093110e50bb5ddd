"""/generation_wrapper: request mapping and result collection (CONTRACT §1a, §8).

The 45 inputs are positional ``param_N`` names in ACE-Step f30aee4; apicheck verifies their
labels so a shifted index is refused. Returns 38 values: 0-7 audio paths, 8 all files (audio
and ``.json``), 10 status, 11 seed string.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

AUDIO_SLOTS = 8
FILES_SLOT, STATUS_SLOT, SEED_SLOT = 8, 10, 11


@dataclass
class GenerationRequest:
    caption: str
    lyrics: str
    bpm: int | None = None
    keyscale: str = ""
    time_signature: str = ""
    language: str = "unknown"
    duration: float = -1
    steps: int = 8
    guidance: float = 7.0
    seeds: list[int] = field(default_factory=list)
    batch_size: int = 1
    audio_format: str = "mp3"


@dataclass
class GenerationResult:
    audio_files: list[Path]
    metadata: list[dict[str, Any]]
    status: str
    seeds: list[str]


def request_params(req: GenerationRequest) -> dict[str, Any]:
    """Named parameters for /generation_wrapper; required inputs we do not use get None/""."""
    return {
        "param_0": req.caption, "param_1": req.lyrics or "[Instrumental]",
        "param_2": int(req.bpm) if req.bpm else None, "param_3": req.keyscale,
        "param_4": req.time_signature, "param_5": req.language,
        "param_6": int(req.steps), "param_7": float(req.guidance),
        "param_8": not req.seeds, "param_9": ",".join(str(int(s)) for s in req.seeds) or "-1",
        "param_10": None, "param_11": float(req.duration), "param_12": int(req.batch_size),
        "param_13": None, "param_14": "", "param_26": req.audio_format, "param_43": None,
    }


def _as_path(value: Any) -> Path | None:
    if isinstance(value, dict):  # FileData when download is off
        value = value.get("path")
    return Path(value) if isinstance(value, (str, Path)) and str(value) else None


def _copy_into(src: Path, dest_dir: Path) -> Path:
    dest = dest_dir / src.name
    if dest.exists():
        dest = dest_dir / f"{src.stem}-{len(list(dest_dir.iterdir()))}{src.suffix}"
    tmp = dest.with_name(f".{dest.name}.part")
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return dest


def _metadata_for(audio: Path, json_files: dict[str, Path]) -> dict[str, Any]:
    src = json_files.get(audio.stem)
    if src is None:
        return {}
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("unreadable generation metadata %s: %s", src, exc)
        return {}
    return data if isinstance(data, dict) else {"value": data}


def collect_result(out: Any, dest_dir: Path) -> GenerationResult:
    """Copy the returned audio into ``dest_dir`` and load each file's metadata JSON."""
    values = list(out) if isinstance(out, (tuple, list)) else [out]
    values += [None] * (SEED_SLOT + 1 - len(values))
    audio = [p for p in (_as_path(v) for v in values[:AUDIO_SLOTS]) if p is not None]
    files_value = values[FILES_SLOT] or []
    files = [p for p in (_as_path(v) for v in (
        files_value if isinstance(files_value, list) else [files_value])) if p is not None]
    json_files = {p.stem: p for p in files if p.suffix == ".json"}
    dest_dir.mkdir(parents=True, exist_ok=True)
    copied = [_copy_into(p, dest_dir) for p in audio]
    metadata = [_metadata_for(p, json_files) for p in audio]
    seeds = [s.strip() for s in str(values[SEED_SLOT] or "").split(",") if s.strip()]
    return GenerationResult(copied, metadata, str(values[STATUS_SLOT] or ""), seeds)
