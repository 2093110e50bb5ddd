"""How a SIMULATOR LoRA sounds (a test double's stand-in for what training learns).

At training time the simulator notes the dataset's audio files in each adapter it writes
(``simulator_training`` in adapter_config.json: the paths, the checkpoint's epoch, the run's
epochs and a run fingerprint). A LoRA clip is then the base tone mixed with the training
songs, by the checkpoint's progress p = epoch / epochs and the LoRA scale:

- p up to 0.6: the "style" (every training song at an equal share) grows linearly to 90 % of
  the mix at scale 1 (the rest stays the base tone);
- 0.6 to 0.7: the style holds: these checkpoints are the closest to the training songs;
- 0.7 to 0.9: the style hands over to ONE song (picked by the run's fingerprint);
- from 0.9: that song alone takes the 90 %: a near-copy (memorisation).

Scale s multiplies the non-base share, so scale 0 is the base tone exactly. Adapters
without ``simulator_training`` (written by hand or by tests) only shift the tone's pitch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STRENGTH = 0.9  # the non-base share of the mix at scale 1
RISE_END, HOLD_END, COPY_FROM = 0.6, 0.7, 0.9
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
    if p <= RISE_END:
        return 1.0 - s * p / RISE_END, s * p / RISE_END, 0.0
    handed = max(0.0, min(1.0, (p - HOLD_END) / (COPY_FROM - HOLD_END)))
    return 1.0 - s, s * (1.0 - handed), s * handed


def mix(training: Training, scale: float) -> tuple[float, list[tuple[str, float]]]:
    """(base tone weight, [(song path, weight)]) for ffmpeg's amix; songs at weight 0 left
    out."""
    base, style, copy = weights(training.epoch, training.epochs, scale)
    share = style / len(training.audio)
    copied = training.copied()
    songs = [(a, share + (copy if a == copied else 0.0)) for a in training.audio]
    return base, [(a, w) for a, w in songs if w > 1e-6]


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
