"""SIMULATOR /generation_wrapper: synthesised tones, ACE-Step's output layout and 38 returns.

Files go to ``<root>/gradio_outputs/batch_<unix-seconds>/<key>.<format>`` with ``<key>.json``
beside (CONTRACT §8). Parameters are read by meaning (``spec.canonical``), whatever param_N the
impersonated version numbers them; duration and batch size are bounded by the GPU tier in the
served components, as ACE-Step does (Gradio refuses "Value 2 is greater than maximum value
1"). The pitch depends on caption, seed and the loaded LoRA (fingerprint and
scale), so tests can tell outputs apart; the JSON records it under ``simulator``. A LoRA that
training wrote also blends the tone with the training songs by its epoch and the scale
(style.py); the ``lora-no-effect`` fault makes LoRA clips the base clips exactly.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from acewatchd.simulator import style
from acewatchd.simulator.context import SimContext, logger
from acewatchd.util.files import atomic_write_text

SLOTS = 8
GEN_SECONDS = 0.5  # simulated seconds per sample at speed 1
# Every format any version offers (f30aee4: mp3, flac; c4cdd99: + wav, wav32; 6d467e4: + opus,
# aac); the served Dropdown only lets through the version's own.
FFMPEG_CODEC = {"mp3": ["-c:a", "libmp3lame", "-b:a", "64k"], "flac": ["-c:a", "flac"],
                "wav": ["-c:a", "pcm_s16le"], "wav32": ["-c:a", "pcm_f32le"],
                "opus": ["-c:a", "libopus", "-b:a", "64k"], "aac": ["-c:a", "aac", "-b:a", "64k"]}
EXTENSION = {"wav32": "wav"}  # ACE-Step's audio_utils: ".wav" for wav32, else ".<format>"


def _seeds(v: dict[str, Any], n: int) -> list[int]:
    given: list[int] = []
    if not v.get("random_seed"):
        for part in str(v.get("seed") or "").split(","):
            try:
                given.append(int(part.strip()))
            except ValueError:
                continue
    given = [s if s >= 0 else random.randrange(2**31) for s in given]
    return (given + [random.randrange(2**31) for _ in range(n)])[:n]


def pitch(caption: str, seed: int, lora_fp: str, scale: float) -> float:
    """The clip's tone: by caption and seed, raised by a LoRA. The rise is 6 to 11.5
    semitones at scale 1 (3 at 0.5): a smaller one sits within the analysis' no-effect
    threshold (about 2.2 semitones on a pure tone), so which test saw "no audible effect"
    would depend on the adapter's fingerprint, i.e. on the test's temporary folder."""
    h = int(hashlib.sha256(f"{caption}|{seed}".encode()).hexdigest()[:8], 16)
    # 12 rises, 6 to 11.5 semitones in half steps: adapters of different fingerprints differ
    rise = 6 + (int(lora_fp[:4], 16) % 12) / 2 if lora_fp else 0.0
    semis = h % 24 + rise * scale
    return round(220.0 * 2 ** (semis / 12.0), 2)


_MONO = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=mono"


def _blend_args(blend: style.Blend, seconds: float) -> list[str]:
    """ffmpeg inputs and filter graph after the tone (input 0): each style song at an equal
    share of the style's weight, the copied song at the copy's, each looped to the clip's
    length; amix adds them up at those weights."""
    songs = [(song, blend.style_weight / len(blend.style)) for song in blend.style]
    if blend.copy is not None:
        songs.append((blend.copy, blend.copy_weight))
    inputs: list[str] = []
    for song, _ in songs:
        inputs += ["-stream_loop", "-1", "-i", song]
    labels = "".join(f"[a{i}]" for i in range(len(songs) + 1))
    weights = " ".join(f"{w:.4f}" for w in [blend.tone, *(w for _, w in songs)])
    graph = ";".join(f"[{i}:a]{_MONO}[a{i}]" for i in range(len(songs) + 1))
    graph += (f";{labels}amix=inputs={len(songs) + 1}:duration=first:normalize=0:"
              f"weights={weights}[mix]")
    return [*inputs, "-filter_complex", graph, "-map", "[mix]", "-t", str(seconds)]


def synth(path: Path, *, seconds: float, freq: float, fmt: str,
          blend: style.Blend = style.BASE) -> None:
    """A sine tone, or the tone blended with training songs (style.py)."""
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    tone = f"sine=frequency={freq}:sample_rate=48000:duration={seconds}"
    mixing = [] if blend.is_base else _blend_args(blend, seconds)
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", tone,
           *mixing, "-ac", "2", *FFMPEG_CODEC[fmt], "-metadata",
           "comment=acewatchd ACE-Step SIMULATOR tone", str(tmp)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    tmp.replace(path)


def _metadata(v: dict[str, Any], seed: int, duration: float, freq: float,
              ctx: SimContext) -> dict[str, Any]:
    return {"task_type": v.get("task_type") or "text2music", "instruction": v.get("instruction"),
            "caption": v.get("caption"), "lyrics": v.get("lyrics"),
            "vocal_language": v.get("language"), "bpm": v.get("bpm"),
            "keyscale": v.get("keyscale"), "timesignature": v.get("timesignature"),
            "duration": duration, "inference_steps": v.get("steps"),
            "guidance_scale": v.get("guidance"), "shift": v.get("shift"),
            "infer_method": v.get("infer_method"), "thinking": v.get("think"),
            "seed": seed, "audio_codes": "",
            "simulator": {"note": "acewatchd ACE-Step SIMULATOR output (synthesised tone)",
                          "impersonates": ctx.version.commit, "tier": ctx.tier,
                          "freq_hz": freq, "lora_path": ctx.lora.path if ctx.lora.use else None,
                          "lora_scale": ctx.lora.scale}}


def _one(ctx: SimContext, v: dict[str, Any], seed: int, fmt: str) -> tuple[Path, Path]:
    duration = float(v.get("duration") or -1)
    duration = 10.0 if duration <= 0 else min(max(duration, 10.0), 600.0)
    no_effect = ctx.faults().lora_no_effect
    with ctx.lock:
        applied = ctx.lora.use and not no_effect
        fp, scale = (ctx.lora.fingerprint, ctx.lora.scale) if applied else ("", 0.0)
        learned = ctx.lora.training if applied else None
    # a trained LoRA's pitch is its run's, so its checkpoints differ only in the blend
    freq = pitch(str(v.get("caption") or ""), seed, learned.run if learned else fp, scale)
    blend = style.mix(learned, scale) if learned else style.BASE
    meta = _metadata(v, seed, duration, freq, ctx)
    meta["simulator"]["lora_mix"] = blend.to_json()
    key = str(uuid.UUID(hashlib.sha256(json.dumps(meta, sort_keys=True, default=str)
                                       .encode()).hexdigest()[:32]))
    folder = ctx.root / "gradio_outputs" / f"batch_{int(time.time())}"
    folder.mkdir(parents=True, exist_ok=True)
    audio = folder / f"{key}.{EXTENSION.get(fmt, fmt)}"
    synth(audio, seconds=duration, freq=freq, fmt=fmt, blend=blend)
    side = folder / f"{key}.json"
    atomic_write_text(side, json.dumps(meta, indent=2, ensure_ascii=False))
    return audio, side


def generation_wrapper(ctx: SimContext, v: dict[str, Any], _state: Any) -> tuple[Any, ...]:
    fmt = str(v.get("format") or "mp3")
    n = int(v.get("batch") or 1)
    if fmt not in FFMPEG_CODEC:
        return _answer([], [], f"❌ Error: unsupported audio format {fmt}", "")
    if not 1 <= n <= SLOTS:
        return _answer([], [], f"❌ Error: batch size {n} out of range 1-{SLOTS}", "")
    seeds = _seeds(v, n)
    ctx.delay(GEN_SECONDS * n)
    made = [_one(ctx, v, s, fmt) for s in seeds]
    logger.info("SIMULATOR generated %d file(s) in %s", n, made[0][0].parent)
    return _answer([a for a, _ in made], [p for pair in made for p in pair],
                   "Generation Complete", ",".join(map(str, seeds)))


def _answer(audio: list[Path], files: list[Path], status: str, seeds: str) -> tuple[Any, ...]:
    slots: list[Any] = [str(a) for a in audio] + [None] * (SLOTS - len(audio))
    info = f"**SIMULATOR** generated {len(audio)} sample(s) (synthesised tones, not music)"
    batch = "Batch 1/1" if audio else ""
    return (*slots, [str(f) for f in files] or None, info, status, seeds,
            *([""] * 8), *([""] * 8), *([""] * 8), batch, "")
