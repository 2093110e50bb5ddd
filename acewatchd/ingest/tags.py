"""Reading audio metadata with mutagen: duration plus the few tags a caption needs.

One parse per file serves validation (does it decode, how long is it) and the stubs (what is it
called, who made it, which lyrics). mutagen's container classes name the same fact differently
(ID3 frames, Vorbis comments, MP4 atoms), so each field lists its spellings in one table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# field -> (ID3 frame ids, Vorbis/FLAC comment names, MP4 atoms)
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "title": (("TIT2",), ("title",), ("\xa9nam",)),
    "artist": (("TPE1", "TPE2"), ("artist", "albumartist"), ("\xa9ART", "aART")),
    "album": (("TALB",), ("album",), ("\xa9alb",)),
    "genre": (("TCON",), ("genre",), ("\xa9gen",)),
    "year": (("TDRC", "TYER", "TDOR"), ("date", "year"), ("\xa9day",)),
    "bpm": (("TBPM",), ("bpm",), ("tmpo",)),
    "key": (("TKEY",), ("initialkey", "key"), ("----:com.apple.iTunes:initialkey",)),
    "lyrics": (("USLT",), ("lyrics", "unsyncedlyrics"), ("\xa9lyr",)),
}


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    format: str
    # Share of the audio the header promises that the file actually holds (1.0 if unknown):
    # an MP3 cut short keeps its Xing/Info header, so mutagen still reports the full length.
    present: float = 1.0
    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    year: str = ""
    bpm: str = ""
    key: str = ""
    lyrics: str = ""

    @property
    def decade(self) -> str:
        """'1994-05-01' -> '1990s' (captions describe an era, not a date)."""
        match = re.search(r"\b(1[89]\d|20\d)\d\b", self.year)
        return f"{match.group(1)}0s" if match else ""


class TagError(Exception):
    """mutagen could not make sense of the file; the message is one user-facing sentence."""


def read_audio(path: Path) -> AudioInfo:
    import mutagen  # imported here: `acewatchd status` never needs it

    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise TagError(f"mutagen could not parse it as audio ({_short(exc)})") from exc
    except (ValueError, IndexError, EOFError, OverflowError) as exc:  # mutagen bugs on junk
        raise TagError(f"mutagen could not parse it as audio ({_short(exc)})") from exc
    if audio is None or getattr(audio, "info", None) is None:
        raise TagError("mutagen does not recognise it as any audio format")
    duration = float(getattr(audio.info, "length", 0.0) or 0.0)
    tags = audio.tags
    values = {name: _clean(_lookup(tags, spellings)) for name, spellings in _FIELDS.items()}
    return AudioInfo(duration=duration, format=type(audio).__name__,
                     present=_present(path, audio.info, duration), **values)


def _present(path: Path, info: Any, duration: float) -> float:
    bitrate = getattr(info, "bitrate", 0) or 0
    offset = getattr(info, "frame_offset", None)  # MPEG only: where the audio frames start
    if offset is None or bitrate <= 0 or duration <= 0:
        return 1.0
    promised = duration * bitrate / 8
    return max(0.0, (path.stat().st_size - int(offset)) / float(promised))


def _lookup(tags: Any, spellings: tuple[tuple[str, ...], ...]) -> str:
    if tags is None:
        return ""
    id3_ids, vorbis, mp4 = spellings
    if hasattr(tags, "getall"):  # ID3 (MP3, also WAV/AIFF with ID3 chunks)
        for frame_id in id3_ids:
            for frame in tags.getall(frame_id):
                text = _frame_text(frame)
                if text:
                    return text
        return ""
    for name in (*vorbis, *mp4):
        try:
            value = tags.get(name) if hasattr(tags, "get") else None
        except (KeyError, ValueError):
            value = None
        text = _value_text(value)
        if text:
            return text
    return ""


def _frame_text(frame: Any) -> str:
    text = getattr(frame, "text", "")
    if isinstance(text, list):
        return "; ".join(str(t) for t in text if str(t).strip())
    return str(text)


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        parts = [_value_text(v) for v in value]
        return "; ".join(p for p in parts if p)
    if isinstance(value, bytes):  # MP4 freeform atoms
        return value.decode("utf-8", "replace")
    if isinstance(value, tuple):
        return str(value[0]) if value else ""
    return str(value)


def _clean(text: str) -> str:
    # Lyrics keep their lines; everything else is one line.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    return text


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().rstrip(".") or type(exc).__name__
    return msg[:160]
