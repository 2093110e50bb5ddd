"""Real audio files in every format a drop folder meets, made by ffmpeg from a sine tone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from acewatchd.demo.audiogen import ffmpeg_path

# extension -> ffmpeg output options (the encoder a real file of that kind would have)
ENCODINGS: dict[str, tuple[str, ...]] = {
    "mp3": ("-c:a", "libmp3lame", "-b:a", "96k"),
    "wav": ("-c:a", "pcm_s16le"),
    "flac": ("-c:a", "flac"),
    "m4a": ("-c:a", "aac", "-b:a", "96k"),
    "ogg": ("-c:a", "libvorbis"),
    "oga": ("-c:a", "flac", "-f", "ogg"),  # FLAC in an Ogg container
    "opus": ("-c:a", "libopus", "-b:a", "48k"),
    "aiff": ("-c:a", "pcm_s16be", "-f", "aiff"),
    "aif": ("-c:a", "pcm_s16be", "-f", "aiff"),
    "wma": ("-c:a", "wmav2", "-f", "asf"),
    "webm": ("-c:a", "libopus", "-b:a", "48k", "-f", "webm"),
    "aac": ("-c:a", "aac", "-b:a", "96k", "-f", "adts"),
}


def make_audio(path: Path, ext: str, seconds: float = 6.0) -> Path:
    """``path`` encoded as a file of type ``ext`` (whatever ``path``'s own extension says)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = () if "-f" in ENCODINGS[ext] else ("-f", {"m4a": "ipod"}.get(ext, ext))
    subprocess.run([ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"sine=frequency=440:duration={seconds}:sample_rate=44100",
                    *ENCODINGS[ext], *fmt, str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return path
