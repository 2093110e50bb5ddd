"""The dataset.json document for a dataset's staged songs (ACE-Step's schema: acestep/dataset_json).

Every sample labeled, the dataset's tag on every sample, absolute audio paths under ACE-Step's
root, and ids taken from the content hash so they never change between writes. bpm, key and
genre come from the file's tags when they can be read, else from the dataset's settings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acewatchd.acestep.dataset_json import INSTRUMENTAL
from acewatchd.config.schema import Dataset
from acewatchd.ingest.captions import normalize_bpm, normalize_key
from acewatchd.ingest.lyrics import clean_lyrics, means_instrumental
from acewatchd.ingest.tags import read_audio
from acewatchd.nightly.prepare.staging import SourceSample


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
    # A stub saying only "[Instrumental]", or edited to "Instrumental" or "연주곡": sung as
    # lyrics, ACE-Step would learn to sing the word.
    instrumental = (ds.instrumental or not sample.lyrics.strip()
                    or means_instrumental(clean_lyrics(sample.lyrics)))
    duration = sample.duration or float(getattr(info, "duration", 0.0) or 0.0)
    return {
        "id": sample.sample_id, "audio_path": str(staged.absolute()), "filename": staged.name,
        "caption": untagged(sample.caption, ds.tag),
        "genre": untagged(getattr(info, "genre", "") or ds.genre, ds.tag),
        "lyrics": INSTRUMENTAL if instrumental else sample.lyrics,
        "raw_lyrics": "" if instrumental else sample.lyrics, "formatted_lyrics": "",
        "bpm": _bpm(getattr(info, "bpm", "")) or ds.bpm,
        "keyscale": _keyscale(getattr(info, "key", "")) or ds.keyscale,
        "timesignature": ds.timesignature, "duration": round(duration),
        "language": "unknown" if instrumental and ds.instrumental else ds.language,
        "is_instrumental": instrumental, "custom_tag": ds.tag, "labeled": True,
        "prompt_override": None,
    }


def untagged(text: str, tag: str) -> str:
    """``text`` without the trigger tag as one of its comma-separated parts. ACE-Step adds
    ``custom_tag`` to the prompt itself (prepend/append) or uses it alone (replace), even when
    the caption already holds it (CONTRACT §9c); the caption file keeps it for the user to see,
    dataset.json drops it so the prompt carries the tag exactly once."""
    key = " ".join(tag.split()).casefold()
    if not key:
        return text
    parts = [p.strip() for p in text.split(",")]
    kept = [p for p in parts if " ".join(p.split()).casefold() != key]
    return ", ".join(p for p in kept if p) if len(kept) != len(parts) else text


def _tags(path: Path) -> object | None:
    """bpm / key / genre from the file's tags; None when they cannot be read (config wins)."""
    try:
        return read_audio(path)
    except Exception:  # noqa: BLE001 - unreadable tags only lose the hints, never the sample
        return None


def _bpm(text: str) -> int | None:
    """Same normaliser as the caption stub's ``{bpm}`` (ingest.captions)."""
    return normalize_bpm(text)


def _keyscale(text: str) -> str:
    """'Am' -> 'A minor', 'F#' -> 'F# major', '8A' -> 'A minor': the caption's ``{key}``."""
    return normalize_key(text or "")
