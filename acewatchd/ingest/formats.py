"""Audio formats: what a file is (by its first bytes), which formats ACE-Step reads, and what
to tell the user about the others.

ACE-Step's preprocessing finds its songs by extension (``training_v2`` discovers .wav .mp3
.flac .ogg .opus .m4a; the older DatasetBuilder scan the same without .m4a) and decodes them
with torchaudio, which probes the content. So the extension decides whether a file is taken
at all, and the content decides whether it can be read: a file is judged by both. Formats
outside that list (AIFF, WMA, WebM, raw AAC, ...) are refused with the ffmpeg line that turns
them into one ACE-Step reads, never dropped in silence.
"""

from __future__ import annotations

import codecs
import functools
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from acewatchd.config.schema import ACESTEP_EXTENSIONS
from acewatchd.util.files import open_regular


@dataclass(frozen=True)
class Format:
    name: str            # our key: mp3, flac, ogg, opus, wav, mp4, aiff, wma, ...
    label: str           # what a user calls it
    readable: bool       # ACE-Step decodes this content
    ext: str = "flac"    # the extension its content wants (or the one to convert it to)
    remux: bool = False  # ffmpeg can copy the audio into `ext` without re-encoding
    fix: str = ""        # when no ffmpeg line helps


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("mp3", "MP3", True, "mp3"),
    Format("flac", "FLAC", True, "flac"),
    Format("ogg", "Ogg Vorbis", True, "ogg"),
    Format("opus", "Opus", True, "opus"),
    Format("wav", "WAV", True, "wav"),
    Format("mp4", "MP4/M4A (AAC or ALAC)", True, "m4a", remux=True),
    Format("m4p", "copy-protected iTunes audio (M4P)", False, "m4a",
           fix="nothing can read it; use an unprotected copy of the song"),
    Format("midi", "MIDI (notes, not sound)", False,
           fix="render it to audio with a synthesizer first"),
    Format("aac", "raw ADTS AAC", False, "m4a", remux=True),
    Format("mp2", "MPEG audio layer II", True, "mp3"),
    *(Format(name, label, False) for name, label in (  # converted to FLAC
        ("aiff", "AIFF"), ("wma", "Windows Media Audio"), ("webm", "WebM"),
        ("matroska", "Matroska audio"), ("ape", "Monkey's Audio"), ("wavpack", "WavPack"),
        ("caf", "Core Audio (CAF)"), ("amr", "AMR"), ("ac3", "AC-3"), ("dsd", "DSD"),
        ("musepack", "Musepack"), ("tta", "True Audio"), ("au", "Sun AU"),
        ("speex", "Speex"), ("w64", "Sony Wave64"), ("rf64", "RF64 (WAV over 4 GB)"),
        ("dts", "DTS"), ("real", "RealAudio"), ("voc", "Creative Voice"),
        ("3gp", "3GP (a phone recording)"))),
    Format("audible", "Audible audiobook", False,
           fix="it is copy-protected; use an unprotected copy of the recording"),
)}

# Extensions that name an audio format: a file with one of these is reported when skipped.
EXTENSION_FORMATS: dict[str, str] = {
    "mp3": "mp3", "flac": "flac", "ogg": "ogg", "oga": "ogg", "opus": "opus", "wav": "wav",
    "wave": "wav", "m4a": "mp4", "m4b": "mp4", "mp4": "mp4", "aac": "aac", "aif": "aiff",
    "aiff": "aiff", "aifc": "aiff", "wma": "wma", "asf": "wma", "webm": "webm",
    "mka": "matroska", "ape": "ape", "wv": "wavpack", "caf": "caf", "amr": "amr",
    "ac3": "ac3", "dsf": "dsd", "dff": "dsd", "mpc": "musepack", "tta": "tta", "au": "au",
    "snd": "au", "mp2": "mp2", "m4p": "m4p", "mid": "midi", "midi": "midi",
    "m4r": "mp4", "mov": "mp4", "bwf": "wav", "mpga": "mp3", "weba": "webm", "spx": "speex",
    "w64": "w64", "rf64": "rf64", "dts": "dts", "eac3": "ac3", "ra": "real", "rm": "real",
    "voc": "voc", "3gp": "3gp", "3g2": "3gp", "aa": "audible", "aax": "audible",
}
# Extensions of files that sit beside songs and are no audio: never opened to be sniffed.
NOT_AUDIO_EXTENSIONS = frozenset((
    "jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff", "heic", "ico", "svg", "txt",
    "md", "rtf", "doc", "docx", "pdf", "cue", "log", "nfo", "m3u", "m3u8", "pls", "sfv", "md5",
    "ffp", "accurip", "json", "xml", "ini", "url", "lnk", "db", "html", "htm", "zip", "rar",
    "7z", "torrent", "lrc", "srt", "ass", "vtt", "py", "sh", "csv", "exe", "dmg", "iso"))

# Signatures of things that are not audio: a download that saved an error page, a cover.
_NOT_AUDIO: tuple[tuple[bytes, str], ...] = (
    (b"<!doctype html", "an HTML page"), (b"<html", "an HTML page"), (b"<?xml", "an XML file"),
    (b"%PDF", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"PK\x03\x04", "a ZIP archive"), (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"), (b"\x1f\x8b", "a gzip archive"),
)
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
HEAD_BYTES = 64


@dataclass(frozen=True)
class Sniffed:
    """What a file's first bytes say: an audio ``format`` key, or ``junk`` naming what it looks
    like instead; both empty when the bytes are not recognised (mutagen then decides)."""

    format: str = ""
    junk: str = ""


def extension(path: Path | str) -> str:
    """The extension, lowercase and without the dot ('.MP3' is an mp3; '.mp3' alone, a
    hidden file, has none: as Path.suffix, without building a Path per call)."""
    return os.path.splitext(os.path.basename(path))[1].lower().lstrip(".")


def listed(path: Path | str, extensions: list[str]) -> bool:
    """Is this file's extension one of ``[watch] extensions`` (compared case-insensitively)?"""
    return extension(path) in _normalised(tuple(extensions))


@functools.lru_cache(maxsize=16)
def _normalised(extensions: tuple[str, ...]) -> frozenset[str]:
    return frozenset(e.lower().lstrip(".") for e in extensions)


def sniff_file(path: Path, *, follow: bool = True) -> Sniffed:
    """Sniff a file's content; an ID3v2 tag in front (on MP3, and wrongly on FLAC or AAC) is
    stepped over to the audio it precedes. The open never blocks on a FIFO (and, with
    follow=False, never goes through a link)."""
    with os.fdopen(open_regular(path, follow=follow), "rb") as fh:
        return sniff_stream(fh)


def sniff_stream(fh: BinaryIO) -> Sniffed:
    """Sniff from an open file's start (it is read, so its position moves)."""
    head = fh.read(HEAD_BYTES)
    if head[:3] == b"ID3" and len(head) >= 10:
        fh.seek(_id3_size(head))
        after = sniff(fh.read(HEAD_BYTES))
        return after if after.format in ("flac", "aac") else Sniffed("mp3")
    return sniff(head)


def _id3_size(head: bytes) -> int:
    size = 0
    for byte in head[6:10]:  # synchsafe: 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def sniff(head: bytes) -> Sniffed:
    """The format the first bytes of a file announce (magic numbers, frame syncs)."""
    fmt = _container(head) or _frame_sync(head)
    if fmt:
        return Sniffed(fmt)
    lower = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()  # a UTF-8 BOM first, maybe
    for magic, what in _NOT_AUDIO:
        if lower.startswith(magic.lower()):
            return Sniffed(junk=what)
    if lower and _looks_like_text(lower):
        return Sniffed(junk="a text file")
    return Sniffed()


def _container(head: bytes) -> str:
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "opus" if b"OpusHead" in head else "ogg"
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[4:8] == b"ftyp":
        return "m4p" if head[8:12] == b"M4P " else "mp4"
    if head[:16] == _ASF_GUID:
        return "wma"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM or Matroska, told apart by DocType
        return "webm" if b"webm" in head else "matroska"
    for magic, name in ((b"MAC ", "ape"), (b"wvpk", "wavpack"), (b"caff", "caf"),
                        (b"#!AMR", "amr"), (b"DSD ", "dsd"), (b"FRM8", "dsd"),
                        (b"MPCK", "musepack"), (b"MP+", "musepack"), (b"TTA1", "tta"),
                        (b".snd", "au"), (b"\x0b\x77", "ac3"), (b"MThd", "midi")):
        if head.startswith(magic):
            return name
    return ""


def _frame_sync(head: bytes) -> str:
    """MPEG audio and ADTS AAC both start with 11-12 set bits; the layer bits tell them apart."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return ""
    layer = (head[1] >> 1) & 0b11
    if layer == 0:
        return "aac" if head[1] & 0xF0 == 0xF0 else ""
    return "mp2" if layer == 0b10 else "mp3" if layer == 0b01 else ""


def _looks_like_text(head: bytes) -> bool:
    try:  # final=False: the cut at HEAD_BYTES may split a character (Korean text is 3 bytes)
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


# ---- what to tell the user


def convert_command(name: str, fmt: Format) -> str:
    """The ffmpeg line that turns the file ``name`` into a format ACE-Step reads (FLAC is
    lossless, so converting a lossy file to it loses nothing more)."""
    target = f"{Path(name).stem}.{fmt.ext}"
    if target.lower() == name.lower():  # a mislabelled file: never write over the input
        target = f"{Path(name).stem}-converted.{fmt.ext}"
    copy = " -c:a copy" if fmt.remux else ""
    return f"ffmpeg -i {shlex.quote(name)} -vn{copy} {shlex.quote(target)}"


def _fix(name: str, fmt: Format) -> str:
    return fmt.fix or f"convert it: {convert_command(name, fmt)}"


@dataclass(frozen=True)
class Advice:
    reason: str
    fix: str


SKIPPED = " was skipped: "


def skip_sentence(name: str, advice: Advice) -> str:
    """The ledger's and the log's one line for a skipped file (``parse_skip`` reads it back)."""
    return f"{name}{SKIPPED}{advice.reason}; {advice.fix}"


def parse_skip(name: str, sentence: str) -> Advice:
    reason, _, fix = sentence.removeprefix(f"{name}{SKIPPED}").partition("; ")
    return Advice(reason, fix)


def skip_advice(name: str) -> Advice | None:
    """Why an audio file with this name is not picked up and what to do, or None if the name
    does not say audio (a cover image, a cue sheet: not ours to mention)."""
    ext = extension(name)
    fmt = FORMATS.get(EXTENSION_FORMATS.get(ext, ""))
    if fmt is None:
        return None
    if ext in ACESTEP_EXTENSIONS:
        return Advice(f".{ext} is not in [watch] extensions",
                      f'add "{ext}" to [watch] extensions in config.toml')
    if fmt.readable and not fmt.remux:  # the content is fine, only the name is not taken
        return Advice(f".{ext} is not an extension ACE-Step picks up",
                      f"rename it to {shlex.quote(Path(name).stem + '.' + fmt.ext)}")
    if fmt.readable:
        return Advice(f".{ext} is not an extension ACE-Step picks up", _fix(name, fmt))
    return Advice(f".{ext} ({fmt.label}) is not read by ACE-Step", _fix(name, fmt))


def unnamed_advice(name: str, sniffed: Sniffed) -> Advice | None:
    """For a file whose name says nothing (no extension, or one no format uses) but whose
    content is audio: what it holds and the name to give it."""
    fmt = FORMATS.get(sniffed.format)
    if fmt is None:
        return None
    if not fmt.readable:
        return Advice(f"it holds {fmt.label} under a name that does not say audio, and "
                      "ACE-Step does not read that format", _fix(name, fmt))
    base = Path(name).stem if Path(name).suffix else name
    target = base if base.lower().endswith(f".{fmt.ext}") else f"{base}.{fmt.ext}"
    return Advice(f"it holds {fmt.label} but its name does not say so",
                  f"rename it to {shlex.quote(target)}")


def advice_for(path: Path) -> Advice | None:
    """Why a file ingest does not take is worth a mention, and the fix; None for a file that
    is no audio. A name that says nothing (no extension, an unknown one) has its first bytes
    looked at, so an MP3 saved without its extension is mentioned too."""
    advice = skip_advice(path.name)
    if advice is not None or not worth_sniffing(path.name):
        return advice
    try:
        sniffed = sniff_file(path, follow=False)
    except OSError:
        return None
    return unnamed_advice(path.name, sniffed)


def worth_sniffing(name: str) -> bool:
    """A name that might hide audio: no extension, or one no known kind of file uses."""
    ext = extension(name)
    return not ext or (ext not in EXTENSION_FORMATS and ext not in NOT_AUDIO_EXTENSIONS
                       and not ext.isdigit())


def content_problem(name: str, sniffed: Sniffed) -> str:
    """'' if the content can go on to mutagen; else why this file is refused (and the fix)."""
    if sniffed.junk:
        return f"it is not audio: its content is {sniffed.junk}"
    fmt = FORMATS.get(sniffed.format)
    if fmt is None or fmt.readable:
        return ""
    if EXTENSION_FORMATS.get(extension(name)) == fmt.name:  # listed by hand in extensions
        return f"it is {fmt.label}, which ACE-Step does not read; {_fix(name, fmt)}"
    return (f"its content is {fmt.label}, which ACE-Step does not read, although its name "
            f"says .{extension(name)}; {_fix(name, fmt)}")


def mislabelled(name: str, sniffed: Sniffed) -> str:
    """The readable format a file holds when its extension names another one, else ''."""
    claimed = EXTENSION_FORMATS.get(extension(name), "")
    found = sniffed.format
    if not found or not FORMATS[found].readable or found == claimed:
        return ""
    if {found, claimed} <= {"ogg", "opus"}:  # one container, both decoded by the same path
        return ""
    return found


def mutagen_kind(name: str) -> Any:
    """What reads a readable format key with mutagen whatever the file's name says: its class
    (mutagen.File would score by the extension too), or for Ogg, mutagen.File limited to the
    Ogg codecs (which it tells apart by their header alone)."""
    import mutagen  # imported here: `acewatchd status` never needs mutagen
    import mutagen.flac
    import mutagen.mp3
    import mutagen.mp4
    import mutagen.oggflac
    import mutagen.oggopus
    import mutagen.oggspeex
    import mutagen.oggvorbis
    import mutagen.wave

    ogg = [mutagen.oggvorbis.OggVorbis, mutagen.oggflac.OggFLAC, mutagen.oggspeex.OggSpeex,
           mutagen.oggopus.OggOpus]
    return {"mp3": mutagen.mp3.MP3, "mp2": mutagen.mp3.MP3, "flac": mutagen.flac.FLAC,
            "ogg": functools.partial(mutagen.File, options=ogg), "opus": mutagen.oggopus.OggOpus,
            "wav": mutagen.wave.WAVE, "mp4": mutagen.mp4.MP4}.get(name)
