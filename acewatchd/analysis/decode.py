"""Audio file -> mono float32 PCM at a fixed rate, decoded by ffmpeg (every format the
outbox and the drop folder hold, with one code path)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt

from acewatchd.errors import AcewatchdError

logger = logging.getLogger(__name__)

RATE = 22050  # Hz: enough for the 10 kHz the descriptors look at, half the work of 44.1k
DECODE_TIMEOUT = 300.0


class DecodeError(AcewatchdError):
    """ffmpeg could not read an audio file; the text names it."""


def ffmpeg_binary() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise DecodeError("ffmpeg not found on PATH (the audio analysis decodes with it)")
    return found


def decode_command(path: Path, *, rate: int = RATE, max_seconds: float | None = None) -> list[str]:
    """The ffmpeg argv (no shell) writing raw little-endian float32 mono to stdout."""
    limit = ["-t", f"{max_seconds:.3f}"] if max_seconds else []
    return [ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
            *limit, "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-acodec", "pcm_f32le",
            "pipe:1"]


def decode(path: Path, *, rate: int = RATE,
           max_seconds: float | None = None) -> npt.NDArray[np.float32]:
    """Mono samples in [-1, 1] at ``rate``; DecodeError names the file when ffmpeg fails or
    finds no audio."""
    try:
        done = subprocess.run(decode_command(path, rate=rate, max_seconds=max_seconds),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=DECODE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise DecodeError(f"{path}: ffmpeg did not finish decoding in {DECODE_TIMEOUT:.0f} s") \
            from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1] if lines else f"exit {done.returncode}"
        raise DecodeError(f"{path}: ffmpeg could not decode it ({why})")
    usable = len(done.stdout) - len(done.stdout) % 4
    samples = np.frombuffer(done.stdout[:usable], dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise DecodeError(f"{path}: no audio in it")
    logger.debug("decoded %s: %.1f s", path, samples.size / rate)
    return samples
