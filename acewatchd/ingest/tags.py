"""Reading audio metadata with mutagen: duration plus the few tags a caption needs.

One parse per file serves validation (does it decode, how long is it) and the stubs (what is it
called, who made it, which lyrics). mutagen's container classes name the same fact differently
(ID3 frames, Vorbis comments, MP4 atoms), so each field lists its spellings in one table.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from acewatchd.ingest import riffinfo, vorbisraw
from acewatchd.ingest.lyrics import CONTROLS, clean_lyrics, read_lrc, repair

_T = TypeVar("_T")
logger = logging.getLogger(__name__)

# field -> (ID3 frame ids, Vorbis/FLAC comment names, MP4 atoms)
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "title": (("TIT2",), ("title",), ("\xa9nam",)),
    "artist": (("TPE1", "TPE2"), ("artist", "albumartist", "album artist", "album_artist"),
               ("\xa9ART", "aART")),
    "album": (("TALB",), ("album",), ("\xa9alb",)),
    "genre": (("TCON",), ("genre",), ("\xa9gen",)),
    # The original release first: a 2011 remaster of a 1994 song is a 1990s song (Picard and
    # Mp3tag write both; mutagen reads ID3v2.3's TORY as TDOR).
    "year": (("TDOR", "TDRC", "TYER"), ("originaldate", "originalyear", "date", "year"),
             ("\xa9day",)),
    "bpm": (("TBPM",), ("bpm",), ("tmpo",)),
    "key": (("TKEY",), ("initialkey", "key"), ("----:com.apple.iTunes:initialkey",)),
}
# Lyrics live in more places: every USLT (any language/description), TXXX frames named like
# these or `lyrics-<lang>` (what ffmpeg writes converting a file with lyrics), SYLT, and APEv2.
_LYRICS_VORBIS = ("lyrics", "unsyncedlyrics", "unsynced lyrics", "unsynced_lyrics", "uslt",
                  "\xa9lyr", "Lyrics")
_LYRICS_TXXX = ("lyrics", "unsyncedlyrics", "unsynced lyrics", "uslt")


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
    # (field, text as read) for ID3 frames marked latin-1: legacy CP949/Shift-JIS/GBK bytes
    # are guessed at read time; reencoded() redoes them with a dataset's known codepage.
    latin1: tuple[tuple[str, str], ...] = ()

    def reencoded(self, encoding: str) -> AudioInfo:
        """These tags with latin-1-marked frames decoded as ``encoding`` (no-op if '')."""
        if not encoding or not self.latin1:
            return self
        changes: dict[str, Any] = {name: _finish(name, repair(text, encoding))
                                   for name, text in self.latin1}
        return replace(self, **changes)

    @property
    def decade(self) -> str:
        """'1994-05-01' -> '1990s' (captions describe an era, not a date)."""
        match = re.search(r"\b(1[89]\d|20\d)\d\b", self.year)
        return f"{match.group(1)}0s" if match else ""


class TagError(Exception):
    """mutagen could not make sense of the file; the message is one user-facing sentence."""


def read_audio(path: Path, kind: Any = None, *, fileobj: BinaryIO | None = None,
               size: int | None = None) -> AudioInfo:
    """``kind``: a mutagen class to read it with, for content its name misstates (mutagen.File
    would trust the extension). ``fileobj``: the file already open (read from it, not opened
    again, when ``kind`` is known), ``size`` its size."""
    import mutagen  # imported here: `acewatchd status` never needs it

    source: Path | BinaryIO = path
    if kind is not None and fileobj is not None:
        fileobj.seek(0)
        source = fileobj
    try:
        audio = kind(source) if kind is not None else mutagen.File(path)
    except mutagen.MutagenError as exc:
        audio = _untagged_mp3(kind, source, exc)
        if audio is None:
            raise TagError(f"mutagen could not parse it as audio ({_short(exc)})") from exc
    except (ValueError, IndexError, EOFError, OverflowError) as exc:  # mutagen bugs on junk
        raise TagError(f"mutagen could not parse it as audio ({_short(exc)})") from exc
    if audio is None or getattr(audio, "info", None) is None:
        raise TagError("mutagen does not recognise it as any audio format")
    duration = float(getattr(audio.info, "length", 0.0) or 0.0)
    tags = audio.tags
    latin1: list[tuple[str, str]] = []
    values = {name: _lookup(tags, spellings, name, latin1) for name, spellings in _FIELDS.items()}
    values["lyrics"] = _embedded_lyrics(tags, latin1)
    if not all(v.strip() for v in values.values()):
        _secondary(values, _kind_name(audio), tags, source, latin1)
    if _kind_name(audio) in vorbisraw.KINDS and any("\ufffd" in v for v in values.values()):
        _undecoded(values, _kind_name(audio), source, latin1)
    if not values["lyrics"].strip():
        values["lyrics"] = read_lrc(path)
    values = {name: _finish(name, repair(text) if (name, text) in latin1 else text)
              for name, text in values.items()}
    return AudioInfo(duration=duration, format=_kind_name(audio),
                     present=_present(path.stat().st_size if size is None else size, audio.info,
                                      duration),
                     latin1=tuple(latin1),
                     **values)


@dataclass(frozen=True)
class _Untagged:
    """An MP3's audio stream, read without the ID3 tag mutagen refused."""

    info: Any
    tags: None = None


def _kind_name(audio: Any) -> str:
    return "MP3" if isinstance(audio, _Untagged) else type(audio).__name__


def _untagged_mp3(kind: Any, source: Path | BinaryIO, exc: Exception) -> _Untagged | None:
    """A playable MP3 whose ID3 tag mutagen refuses (an unknown version, a broken frame) is
    still a song: its audio alone, its tags lost (the APEv2 block and the file name are still
    read). None when the error is not the tag's or the audio does not parse either."""
    from mutagen.id3 import error as ID3Error
    from mutagen.mp3 import MP3, MPEGInfo

    if kind is not MP3 or not isinstance(exc, ID3Error):
        return None
    try:
        info = _read(source, MPEGInfo)
    except Exception:  # noqa: BLE001 - any failure here leaves the first error to report
        return None
    # The ingest pipeline's log context names the file.
    logger.warning("its ID3 tag is unreadable, so only its audio is read (%s)", _short(exc))
    return _Untagged(info)


def _undecoded(values: dict[str, str], kind: str, source: Path | BinaryIO,
               latin1: list[tuple[str, str]]) -> None:
    """Vorbis comments mutagen decoded with replacement characters: their bytes, read again,
    are legacy codepage text (not UTF-8, as the spec wants)."""
    raw = _read(source, lambda fh: vorbisraw.read_raw(fh, kind))
    for name, text in values.items():
        if "\ufffd" not in text:
            continue
        names = _LYRICS_VORBIS if name == "lyrics" else _FIELDS[name][1]
        found = next((raw[n.lower()] for n in names if raw.get(n.lower())), None)
        if found is not None:
            values[name] = _raw_text(name, found, latin1)


def _riff_info(values: dict[str, str], source: Path | BinaryIO,
               latin1: list[tuple[str, str]]) -> None:
    """Fill the fields a WAV's ID3 chunk (if any) left empty from its RIFF INFO chunk."""
    try:
        found = _read(source, riffinfo.read_info)
    except (OSError, struct.error):
        return  # unreadable INFO only loses hints
    for name, raw in found.items():
        if not values.get(name):
            values[name] = _raw_text(name, [raw], latin1)


def _read(source: Path | BinaryIO, read: Callable[[BinaryIO], _T]) -> _T:
    """``read`` on the file already open, or on the path opened for it."""
    if isinstance(source, Path):
        with open(source, "rb") as fh:
            return read(fh)
    return read(source)


def _raw_text(name: str, raws: list[bytes], latin1: list[tuple[str, str]]) -> str:
    """Tag bytes as text: UTF-8, else legacy codepage bytes, read as latin-1 and marked so in
    ``latin1``, to be repaired like an ID3 frame marked latin-1."""
    sep = "\n" if name == "lyrics" else "; "
    try:
        return sep.join(r.decode("utf-8") for r in raws)
    except UnicodeDecodeError:
        text = sep.join(r.decode("latin-1") for r in raws)
        latin1.append((name, text))
        return text


def _finish(name: str, text: str) -> str:
    return clean_lyrics(text) if name == "lyrics" else _clean(text)


def _embedded_lyrics(tags: Any, latin1: list[tuple[str, str]]) -> str:
    if tags is not None and hasattr(tags, "getall"):
        return _id3_lyrics(tags, latin1)
    if tags is not None:
        return _lookup(tags, ((), _LYRICS_VORBIS, ()), "lyrics", latin1)
    return ""


def _secondary(values: dict[str, str], kind: str, tags: Any, source: Path | BinaryIO,
               latin1: list[tuple[str, str]]) -> None:
    """Fields still empty, from the tag blocks taggers put beside a format's own: an APEv2
    block appended to an MP3 (foobar2000, Mp3tag; some MP3s have nothing else), an ID3v2 tag
    in front of a FLAC (old taggers; mutagen skips it), a WAV's RIFF INFO chunk."""
    if tags is None or type(tags).__name__ != "APEv2":
        _fill(values, _other_tags(source, "apev2"), latin1)
    if kind == "FLAC":
        _fill(values, _other_tags(source, "id3"), latin1)
    if kind == "WAVE":
        _riff_info(values, source, latin1)


def _other_tags(source: Path | BinaryIO, which: str) -> Any:
    """mutagen's APEv2 or ID3 tags of the file, None if it has none (or they are unreadable:
    a secondary block only loses hints)."""
    from mutagen.apev2 import APEv2
    from mutagen.id3 import ID3

    try:
        if not isinstance(source, Path):
            source.seek(0)
        return APEv2(source) if which == "apev2" else ID3(source)
    except Exception:  # noqa: BLE001 - mutagen raises its own errors, struct's and others
        return None


def _fill(values: dict[str, str], tags: Any, latin1: list[tuple[str, str]]) -> None:
    if tags is None:
        return
    for name, spellings in _FIELDS.items():
        if not values[name].strip():
            values[name] = _lookup(tags, spellings, name, latin1)
    if not values["lyrics"].strip():
        values["lyrics"] = _embedded_lyrics(tags, latin1)


def _id3_lyrics(tags: Any, latin1: list[tuple[str, str]]) -> str:
    candidates: list[tuple[Any, str]] = []
    for frame in tags.getall("USLT"):
        candidates.append((frame, str(getattr(frame, "text", ""))))
    for frame in tags.getall("TXXX"):
        desc = str(getattr(frame, "desc", "")).strip().casefold()
        if desc in _LYRICS_TXXX or desc.startswith(("lyrics-", "lyrics ")):
            candidates.append((frame, "\n".join(str(t) for t in frame.text)))
    for frame in tags.getall("SYLT"):
        pieces = [str(t) for t, _ in getattr(frame, "text", [])]
        joiner = "" if any("\n" in p for p in pieces) else "\n"
        candidates.append((frame, joiner.join(pieces)))
    for frame, text in candidates:
        if text.strip():
            if getattr(frame, "encoding", None) == 0:
                latin1.append(("lyrics", text))
            return text
    return ""


def _present(size: int, info: Any, duration: float) -> float:
    bitrate = getattr(info, "bitrate", 0) or 0
    offset = getattr(info, "frame_offset", None)  # MPEG only: where the audio frames start
    if offset is None or bitrate <= 0 or duration <= 0:
        return 1.0
    promised = duration * bitrate / 8
    return max(0.0, (size - int(offset)) / float(promised))


def _lookup(tags: Any, spellings: tuple[tuple[str, ...], ...], name: str = "",
            latin1: list[tuple[str, str]] | None = None) -> str:
    if tags is None:
        return ""
    id3_ids, vorbis, mp4 = spellings
    if hasattr(tags, "getall"):  # ID3 (MP3, also WAV/AIFF with ID3 chunks)
        for frame_id in id3_ids:
            for frame in tags.getall(frame_id):
                text = _frame_text(frame)
                if text:
                    if latin1 is not None and getattr(frame, "encoding", None) == 0:
                        latin1.append((name, text))
                    return text
        return ""
    for key in (*vorbis, *mp4):
        try:
            value = tags.get(key) if hasattr(tags, "get") else None
        except (KeyError, ValueError):
            value = None
        text = _value_text(value, sep="\n" if name == "lyrics" else "; ")
        if text:
            return text
    return _freeform(tags, vorbis, sep="\n" if name == "lyrics" else "; ")


def _freeform(tags: Any, names: tuple[str, ...], sep: str = "; ") -> str:
    """An MP4 freeform atom (``----:<mean>:<name>``) named like one of the Vorbis ``names``,
    in any case: taggers write ``----:com.apple.iTunes:LYRICS``, ``…:UNSYNCEDLYRICS``,
    ``…:initialkey`` or ``…:KEY`` as they please, and MP4 keys are case-sensitive."""
    wanted = {n.casefold() for n in names}
    try:
        keys = [k for k in tags.keys() if isinstance(k, str) and k.startswith("----:")]
    except (AttributeError, TypeError):
        return ""
    for key in sorted(keys):
        if key.split(":", 2)[-1].casefold() in wanted:
            text = _value_text(tags.get(key), sep)
            if text:
                return text
    return ""


def _frame_text(frame: Any) -> str:
    if getattr(frame, "FrameID", "") == "TCON":
        genres = list(getattr(frame, "genres", []) or [])  # '(17)' -> 'Rock', several values
        return "; ".join(str(g) for g in genres if str(g).strip())
    text = getattr(frame, "text", "")
    if isinstance(text, list):
        return "; ".join(str(t) for t in _own_values(text) if str(t).strip())
    return str(text)


def _own_values(values: list[Any]) -> list[Any]:
    """A text frame's values up to one that is another frame's ID: a frame whose length field
    is too large makes mutagen read the frames after it as more values of this one
    ("Hello", "TPE1", "World", ...)."""
    from mutagen.id3 import Frames

    for i, value in enumerate(values):
        if i and str(value) in Frames:
            return values[:i]
    return values


def _value_text(value: Any, sep: str = "; ") -> str:
    """A tag's text; several values joined by ``sep`` (lyrics keep one per line)."""
    if value is None:
        return ""
    if isinstance(value, list):
        parts = [_value_text(v, sep) for v in value]
        return sep.join(p for p in parts if p)
    if isinstance(value, bytes):  # MP4 freeform atoms
        return value.decode("utf-8", "replace")
    if isinstance(value, tuple):
        return str(value[0]) if value else ""
    return str(value)


def _clean(text: str) -> str:
    # Lyrics keep their lines; everything else is one line. Control characters (a broken
    # frame's length makes mutagen read the next frames' bytes as text) never reach a stub.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROLS.sub("", text).strip()


def _short(exc: BaseException) -> str:
    # mutagen names the file it read first: an open file's descriptor number, or its path.
    msg = re.sub(r"^(?:\d+|'[^']*')\s+", "", str(exc).strip()).rstrip(".")
    msg = msg or type(exc).__name__
    return msg[:160]
