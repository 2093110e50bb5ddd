"""How a SIMULATOR LoRA sounds (a test double's stand-in for what training learns).

At training time the simulator notes the dataset's audio files in each adapter it writes
(``simulator_training`` in adapter_config.json: the paths, the checkpoint's epoch, the run's
epochs and a run fingerprint). A LoRA clip is then the base tone mixed with the training
songs, by the checkpoint's progress p = epoch / epochs and the LoRA scale:

- p up to 0.7: the "style" (every training song at an equal share) grows linearly to 90 % of
  the mix at scale 1 (the rest stays the base tone);
- 0.7 to 0.9: the style fades (to 60 % at 0.9: over-training drifts off), so of a run's
  checkpoints the one nearest p = 0.7 is the closest to the training songs;
- from 0.9: ONE song (picked by the run's fingerprint) takes the 90 %: a near-copy
  (memorisation).

Scale s multiplies the non-base share, so scale 0 is the base tone exactly. Adapters
without ``simulator_training`` (written by hand or by tests) only shift the tone's pitch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STRENGTH = 0.9  # the non-base share of the mix at scale 1
PEAK, COPY_FROM = 0.7, 0.9
FADE = 1.0 / 3.0  # the style's share lost from PEAK to COPY_FROM
AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a"}
CONFIG_KEY = "simulator_training"


@dataclass(frozen=True)
class Training:
    """What an adapter remembers of the run that wrote it."""

    audio: tuple[str, ...]
    epoch: int
    epochs: int
    run: str  # the run's fingerprint: the copied song and the LoRA's pitch depend on it

    def to_json(self) -> dict[str, Any]:
        return {"audio": list(self.audio), "epoch": self.epoch, "epochs": self.epochs,
                "run": self.run}

    @classmethod
    def from_json(cls, data: Any) -> Training | None:
        if not isinstance(data, dict):
            return None
        try:
            audio = tuple(str(a) for a in data["audio"])
            learned = cls(audio, int(data["epoch"]), max(1, int(data["epochs"])),
                          str(data["run"]))
            int(learned.run[:8], 16)
        except (KeyError, TypeError, ValueError):
            return None
        return learned if audio else None

    def copied(self) -> str:
        """The song this run's late checkpoints copy."""
        return self.audio[int(self.run[:8], 16) % len(self.audio)]


def weights(epoch: int, epochs: int, scale: float) -> tuple[float, float, float]:
    """(base tone, style, copied song) shares of a LoRA clip; they sum to 1."""
    p = max(0.0, min(1.0, epoch / max(1, epochs)))
    s = max(0.0, min(1.0, scale)) * STRENGTH
    if p >= COPY_FROM:
        return 1.0 - s, 0.0, s
    style = s * (p / PEAK if p <= PEAK else 1.0 - FADE * (p - PEAK) / (COPY_FROM - PEAK))
    return 1.0 - style, style, 0.0


@dataclass(frozen=True)
class Blend:
    """What a LoRA clip is made of: the tone, the style (songs at equal shares) and the
    copied song, each at its weight (parts at weight 0 are left out)."""

    tone: float = 1.0
    style: tuple[str, ...] = ()
    style_weight: float = 0.0
    copy: str | None = None
    copy_weight: float = 0.0

    @property
    def is_base(self) -> bool:
        return not self.style and self.copy is None

    def to_json(self) -> dict[str, Any]:
        return {"tone": round(self.tone, 4), "style": list(self.style),
                "style_weight": round(self.style_weight, 4), "copy": self.copy,
                "copy_weight": round(self.copy_weight, 4)}


BASE = Blend()


def mix(training: Training, scale: float) -> Blend:
    tone, style, copy = weights(training.epoch, training.epochs, scale)
    keep_style, keep_copy = style > 1e-6, copy > 1e-6
    return Blend(tone if keep_style or keep_copy else 1.0,
                 training.audio if keep_style else (), style if keep_style else 0.0,
                 training.copied() if keep_copy else None, copy if keep_copy else 0.0)


def find_training_audio(tensor_dir: Path) -> list[str]:
    """The dataset's audio beside a tensor folder, as acewatchd lays it out
    (``<dataset>/{dataset.json, audio/, tensors/}``): dataset.json's samples, else audio/."""
    folder = tensor_dir.parent
    listed = folder / "dataset.json"
    found: list[str] = []
    try:
        samples = json.loads(listed.read_text(encoding="utf-8")).get("samples", [])
        for sample in samples:
            raw = Path(str(sample.get("audio_path") or sample.get("filename") or ""))
            path = raw if raw.is_absolute() else folder / raw
            if path.is_file():
                found.append(str(path.resolve()))
    except (OSError, ValueError, AttributeError):
        pass
    if found:
        return found
    audio = folder / "audio"
    if not audio.is_dir():
        return []
    return [str(p.resolve()) for p in sorted(audio.iterdir())
            if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()]
