"""SIMULATOR: a stand-in for ACE-Step's ``acestep.training_v2.preprocess`` (CONTRACT §5).

acewatchd's test double, not ACE-Step: it loads no model and writes synthetic tensors that have
the real keys, shapes and dtypes (target_latents [T,64], attention_mask [T],
encoder_hidden_states [L,D], encoder_attention_mask [L], context_latents [T,128], metadata).
T is 25 frames per second of audio (capped by max_duration) padded up to a multiple of 64, so
the last rows are masked 0, which is where the MPS fp16 bug puts its NaNs.

Two passes like the real code: pass 1 writes ``<stem>.tmp.pt`` (skipping stems whose ``.pt``
exists), pass 2 writes ``<stem>.pt`` and deletes the ``.tmp.pt``.

Fault switches, read from ``<root>/.simulator/preprocess_faults.json`` (root = the cwd, or
$ACESTEP_SIMULATOR_ROOT):
    {"nan_padding": ["<stem>" | "*"], "nan_content": ["<stem>" | "*"],
     "nan_content_fp16_only": true, "fail": ["<stem>"], "auto_precision": "fp16"}
Every call is appended to ``<root>/.simulator/preprocess_calls.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger("acestep.SIMULATOR.preprocess")

AUDIO_EXTS = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a"}
FPS = 25
HIDDEN = 2048          # DiT hidden size of the turbo checkpoint (pretend)
TEXT_TOKENS = 256
LYRIC_TOKENS = 512
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
MARK = "SIMULATOR (acewatchd test double, not ACE-Step)"


def _root() -> Path:
    return Path(os.environ.get("ACESTEP_SIMULATOR_ROOT") or os.getcwd())


def _faults() -> dict[str, Any]:
    path = _root() / ".simulator" / "preprocess_faults.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {}


def _record_call(stems: list[str], **params: Any) -> None:
    folder = _root() / ".simulator"
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"ts": time.time(), "stems": stems, **params}, ensure_ascii=False)
    with open(folder / "preprocess_calls.jsonl", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _hit(faults: dict[str, Any], name: str, stem: str) -> bool:
    listed = faults.get(name) or []
    return "*" in listed or stem in listed


def _collect(audio_dir: str, dataset_json: str | None) -> list[tuple[Path, dict[str, Any]]]:
    """(audio path, sample metadata) from dataset_json, else a recursive scan of audio_dir."""
    if dataset_json:
        base = Path(dataset_json).parent
        data = json.loads(Path(dataset_json).read_text(encoding="utf-8"))
        found = []
        for sample in data.get("samples", []):
            path = Path(sample.get("audio_path") or sample.get("filename") or "")
            path = path if path.is_absolute() else base / path
            if path.is_file():
                found.append((path, dict(sample, _dataset=data.get("metadata", {}))))
            else:
                logger.warning("SIMULATOR: audio file not found, skipped: %s", path)
        return found
    files = sorted(p for p in Path(audio_dir).rglob("*") if p.suffix.lower() in AUDIO_EXTS)
    return [(p, {}) for p in files]


def _duration(path: Path, sample: dict[str, Any]) -> float:
    if sample.get("duration"):
        return float(sample["duration"])
    try:
        import mutagen

        info = mutagen.File(path)
        if info is not None and info.info and info.info.length:
            return float(info.info.length)
    except Exception:  # noqa: BLE001 - any unreadable file gets a fixed length
        pass
    return 30.0


def _caption(path: Path, sample: dict[str, Any]) -> str:
    caption = sample.get("caption") or path.stem.replace("_", " ").replace("-", " ")
    meta = sample.get("_dataset", {})
    tag = sample.get("custom_tag") or meta.get("custom_tag") or ""
    position = meta.get("tag_position", "prepend")
    if not tag:
        return str(caption)
    return {"append": f"{caption}, {tag}", "replace": tag}.get(position, f"{tag}, {caption}")


def _resolve_precision(precision: str, faults: dict[str, Any]) -> str:
    # The simulator stands in for an Apple Silicon Mac: "auto" means fp16 as on MPS.
    if precision == "auto":
        return str(faults.get("auto_precision", "fp16"))
    return precision


def _seed(stem: str, text: str) -> int:
    return int(hashlib.sha256(f"{stem}\0{text}".encode()).hexdigest()[:12], 16)


def _pass1(path: Path, sample: dict[str, Any], max_duration: float, dtype: torch.dtype,
           faults: dict[str, Any], precision: str) -> dict[str, Any]:
    stem = path.stem
    seconds = min(_duration(path, sample), max_duration)
    frames = max(1, round(FPS * seconds))
    total = (frames // 64 + 1) * 64  # always some padding rows
    caption = _caption(path, sample)
    lyrics = str(sample.get("lyrics") or "[Instrumental]")
    gen = torch.Generator().manual_seed(_seed(stem, caption + "\0" + lyrics))
    latents = torch.randn(total, 64, generator=gen)
    latents[frames:] = 0
    mask = torch.zeros(total)
    mask[:frames] = 1
    used = min(TEXT_TOKENS, 8 + len(caption.split())) + min(LYRIC_TOKENS, 8 + len(lyrics) // 4)
    length = TEXT_TOKENS + LYRIC_TOKENS
    hidden = torch.randn(length, HIDDEN, generator=gen) * 0.5
    hidden[used:] = 0
    enc_mask = torch.zeros(length)
    enc_mask[:used] = 1
    _inject(faults, stem, precision, latents, hidden, frames, used)
    meta = _metadata(path, sample, caption, lyrics, seconds)
    return {"target_latents": latents.to(dtype), "attention_mask": mask.to(dtype),
            "encoder_hidden_states": hidden.to(dtype), "encoder_attention_mask": enc_mask.to(dtype),
            "latent_length": frames, "metadata": meta}


def _inject(faults: dict[str, Any], stem: str, precision: str, latents: torch.Tensor,
            hidden: torch.Tensor, frames: int, used: int) -> None:
    if _hit(faults, "nan_padding", stem):
        latents[frames:] = float("nan")
        hidden[used:] = float("nan")
    content_fault = _hit(faults, "nan_content", stem)
    if content_fault and faults.get("nan_content_fp16_only") and precision == "fp32":
        content_fault = False
    if content_fault:
        latents[0, :3] = float("nan")
        hidden[1, 5] = float("inf")


def _metadata(path: Path, sample: dict[str, Any], caption: str, lyrics: str,
              seconds: float) -> dict[str, Any]:
    return {
        "audio_path": str(path), "filename": path.name, "caption": caption, "lyrics": lyrics,
        "duration": int(seconds), "bpm": sample.get("bpm"), "keyscale": sample.get("keyscale", ""),
        "timesignature": sample.get("timesignature", ""),
        "language": sample.get("language", "unknown"),
        "is_instrumental": bool(sample.get("is_instrumental", lyrics == "[Instrumental]")),
        "genre": sample.get("genre", ""), "custom_tag": sample.get("custom_tag", ""),
        "prompt_override": sample.get("prompt_override"), "simulator": MARK,
    }


def _pass2(tmp: dict[str, Any], faults: dict[str, Any], stem: str) -> dict[str, Any]:
    if _hit(faults, "fail", stem):
        raise RuntimeError(f"SIMULATOR: injected failure for {stem}")
    latents, frames = tmp["target_latents"], int(tmp["latent_length"])
    context = torch.zeros(latents.shape[0], 128, dtype=latents.dtype)
    context[:frames, 64:] = 1  # silence latents (zeros here) + the chunk-mask ones
    return {"target_latents": latents, "attention_mask": tmp["attention_mask"],
            "encoder_hidden_states": tmp["encoder_hidden_states"],
            "encoder_attention_mask": tmp["encoder_attention_mask"],
            "context_latents": context, "metadata": tmp["metadata"]}


def preprocess_audio_files(audio_dir: str, output_dir: str, checkpoint_dir: str,
                           variant: str = "turbo", max_duration: float = 240.0,
                           dataset_json: str | None = None, device: str = "auto",
                           precision: str = "auto",
                           progress_callback: Callable[..., Any] | None = None,
                           cancel_check: Callable[[], bool] | None = None) -> dict[str, Any]:
    """SIMULATOR version of ACE-Step's two-pass preprocessing (same signature and result)."""
    if not Path(checkpoint_dir).is_dir():
        raise FileNotFoundError(f"SIMULATOR: checkpoint_dir not found: {checkpoint_dir}")
    faults = _faults()
    effective = _resolve_precision(precision, faults)
    dtype = DTYPES[effective]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = _collect(audio_dir, dataset_json)
    _record_call([p.stem for p, _ in items], variant=variant, precision=precision,
                 effective_precision=effective, max_duration=max_duration, device=device)
    logger.info("SIMULATOR preprocessing %d file(s) in %s", len(items), effective)
    done = _run_pass1(items, out, max_duration, dtype, faults, effective, cancel_check)
    processed, failed = _run_pass2(done, out, faults, progress_callback, cancel_check)
    return {"processed": processed, "failed": failed, "total": len(items),
            "output_dir": str(out)}


def _run_pass1(items: list[tuple[Path, dict[str, Any]]], out: Path, max_duration: float,
               dtype: torch.dtype, faults: dict[str, Any], precision: str,
               cancel_check: Callable[[], bool] | None) -> list[Path]:
    written = []
    for path, sample in items:
        if cancel_check and cancel_check():
            break
        if (out / f"{path.stem}.pt").exists():
            logger.info("SIMULATOR pass 1: %s.pt exists, skipped", path.stem)
            continue
        tmp = out / f"{path.stem}.tmp.pt"
        torch.save(_pass1(path, sample, max_duration, dtype, faults, precision), tmp)
        written.append(tmp)
    return written


def _run_pass2(tmps: list[Path], out: Path, faults: dict[str, Any],
               progress_callback: Callable[..., Any] | None,
               cancel_check: Callable[[], bool] | None) -> tuple[int, int]:
    processed = failed = 0
    for index, tmp in enumerate(tmps, 1):
        if cancel_check and cancel_check():
            break
        stem = tmp.name[: -len(".tmp.pt")]
        try:
            data = _pass2(torch.load(tmp, map_location="cpu", weights_only=True), faults, stem)
            torch.save(data, out / f"{stem}.pt")
            tmp.unlink()
            processed += 1
            logger.info("SIMULATOR pass 2: wrote %s.pt", stem)
        except Exception as exc:  # noqa: BLE001 - the real code logs and goes on with the next file
            failed += 1
            logger.warning("SIMULATOR: Failed to process %s: %s", stem, exc)
        if progress_callback:
            progress_callback(index, len(tmps), f"SIMULATOR processed {stem}")
    return processed, failed
