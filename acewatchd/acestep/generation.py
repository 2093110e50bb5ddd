"""/generation_wrapper: request mapping and result collection (CONTRACT §1a, §8, §9a).

The inputs are positional ``param_N`` whose numbers differ between versions (45 at S, 50 at
V1, 72 at V2); the request is given by acewatchd's keys (contract.generation_keys) and
apicheck places each one by its label. Returns 38 values in every known version: 0-7 audio
paths, 8 all files (audio and ``.json``), 10 status, 11 seed string.
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


@dataclass(frozen=True)
class Limits:
    """Generation bounds the server allows (ACE-Step derives them from its GPU)."""

    max_duration: float | None = None
    max_batch: int | None = None


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
    """The request by acewatchd's keys; inputs acewatchd does not use but some version
    requires get their neutral value (no reference/source audio, no LM codes, no track)."""
    return {
        "caption": req.caption, "lyrics": req.lyrics or "[Instrumental]",
        "bpm": int(req.bpm) if req.bpm else None, "keyscale": req.keyscale,
        "time_signature": req.time_signature, "language": req.language,
        "steps": int(req.steps), "guidance": float(req.guidance),
        "random_seed": not req.seeds, "seed": ",".join(str(int(s)) for s in req.seeds) or "-1",
        "reference_audio": None, "duration": float(req.duration),
        "batch_size": int(req.batch_size), "source_audio": None, "lm_codes": "",
        "audio_format": req.audio_format, "track_name": None,
        "source_caption": "", "source_lyrics": "",
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
