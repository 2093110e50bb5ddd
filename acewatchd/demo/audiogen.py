"""Synthetic songs for the demo, tests and benchmarks: real MP3s made by ffmpeg, tagged with
mutagen. Arguments go to ffmpeg as a list (never through a shell)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from acewatchd.errors import AcewatchdError


@dataclass(frozen=True)
class SongTags:
    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    year: str = ""
    bpm: str = ""
    key: str = ""
    lyrics: str = ""


def ffmpeg_path() -> str:
    found = shutil.which("ffmpeg")
    if not found:
        raise AcewatchdError("ffmpeg not found on PATH (Debian: apt-get install ffmpeg; "
                             "macOS: brew install ffmpeg)")
    return found


def make_mp3(path: Path, *, seconds: float = 8.0, freq: float = 440.0,
             tags: SongTags | None = None, bitrate: str = "64k") -> Path:
    """Write a tone of ``seconds`` at ``freq`` Hz as MP3, then ID3 tags (UTF-8, USLT lyrics)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           f"sine=frequency={freq}:duration={seconds}:sample_rate=44100", "-ac", "2",
           "-b:a", bitrate, "-f", "mp3", str(path)]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    if tags is not None:
        write_id3(path, tags)
    return path


def write_id3(path: Path, tags: SongTags) -> None:
    from mutagen.id3 import (
        ID3,
        TALB,
        TBPM,
        TCON,
        TDRC,
        TIT2,
        TKEY,
        TPE1,
        USLT,
        ID3NoHeaderError,
        TextFrame,
    )

    try:
        id3 = ID3(path)
    except ID3NoHeaderError:
        id3 = ID3()
    frames: list[tuple[str, type[TextFrame]]] = [
        (tags.title, TIT2), (tags.artist, TPE1), (tags.album, TALB), (tags.genre, TCON),
        (tags.year, TDRC), (tags.bpm, TBPM), (tags.key, TKEY)]
    for value, frame in frames:
        if value:
            id3.add(frame(encoding=3, text=value))
    if tags.lyrics:
        id3.add(USLT(encoding=3, lang="kor", desc="", text=tags.lyrics))
    id3.save(path, v2_version=4)
