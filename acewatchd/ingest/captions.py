"""Normalisers shared by caption stubs and dataset.json: key, BPM, genres, names without junk.

One function per fact, so a song's key and BPM read the same in its caption and in dataset.json.
"""

from __future__ import annotations

import re

_NOTE = r"([A-Ga-g])\s*(#|♯|b|♭|-?sharp|-?flat|is|es)?"
_MODE = r"(m|min|minor|moll|maj|major|dur|M)?"
_KEY = re.compile(rf"^{_NOTE}\s*{_MODE}\.?$", re.IGNORECASE)
_CAMELOT = re.compile(r"^0?(1[0-2]|[1-9])\s*([ABab])$")
# Open Key (Traktor): 1d is C major and 1m A minor, i.e. Camelot 8B and 8A; a step is a fifth.
_OPEN_KEY = re.compile(r"^0?(1[0-2]|[1-9])\s*([dmDM])$")
_CAMELOT_MAJOR = ("B major", "F# major", "Db major", "Ab major", "Eb major", "Bb major",
                  "F major", "C major", "G major", "D major", "A major", "E major")
_CAMELOT_MINOR = ("Ab minor", "Eb minor", "Bb minor", "F minor", "C minor", "G minor",
                  "D minor", "A minor", "E minor", "B minor", "F# minor", "Db minor")

PLACEHOLDERS = frozenset({
    "unknown", "unknown artist", "unknown album", "unknown title", "unknown genre", "other",
    "various", "various artists", "untitled", "no artist", "no title", "none", "n/a",
    "<unknown>", "[unknown]", "(unknown)", "?",
    # What Windows Media Player and other rippers write in their users' languages: a Korean
    # library ripped in the 2000s is full of "알 수 없는 아티스트".
    "알 수 없는 아티스트", "알 수 없는 앨범", "알 수 없는 장르", "알 수 없음",
    "不明なアーティスト", "不明なアルバム", "不明なジャンル", "不明",
    "未知艺术家", "未知歌手", "未知专辑", "未知流派", "未知", "未知的演出者", "未知的專輯",
    "unbekannter künstler", "unbekanntes album", "unbekanntes genre", "unbekannt",
    "artiste inconnu", "album inconnu", "genre inconnu", "inconnu",
    "artista desconocido", "álbum desconocido", "desconocido",
    "artista sconosciuto", "album sconosciuto", "sconosciuto",
    "artista desconhecido", "álbum desconhecido", "desconhecido",
})
# Windows Media Player names an album it could not look up by the time of the rip:
# "Unknown Album (1/4/2008 10:12:33 PM)", "알 수 없는 앨범 (2007-03-01 오후 3:12:45)".
_DATED = re.compile(r"^(.+?)\s*\([^()]*\d[^()]*\)$")
_TRACK = re.compile(r"^(?:track|audio\s*track|piste|pista|traccia|faixa|titel|spår|トラック|트랙|"
                    r"音轨|音軌|曲目)\s*\d{1,3}$", re.IGNORECASE)
_NOISE_WORDS = (r"remaster(?:ed)?|official|audio|video|m/?v|lyrics?|lyric video|hq|hd|"
                r"\d{3}\s*kbps|explicit|clean|bonus(?: track)?|free download|visuali[sz]er|"
                r"mp3|flac|320|live version|full version|color coded")
_NOISE = re.compile(rf"\s*[\[(【（][^\])】）]*?\b(?:{_NOISE_WORDS})\b[^\])】）]*[\])】）]",
                    re.IGNORECASE)
_LEADING_TRACK = re.compile(r"^\s*(?:\d{1,3}|[A-Da-d]\d{1,2})(?:\s*[-._)]\s*|\s+)(?=\S)")
_ID3V1_GENRE = re.compile(r"\((\d{1,3})\)|^(\d{1,3})$")
_GENRE_SPLIT = re.compile(r"\s*(?:;|/|,|\||\x00|\n)\s*")


def normalize_key(text: str) -> str:
    """'Em', 'E min' -> 'E minor'; 'F#', 'Fsharp' -> 'F# major'; Camelot '8A' -> 'A minor'.
    '' when the text is no key (ACE-Step's keyscale is '<note> major|minor')."""
    text = " ".join((text or "").split())
    if "/" in text:  # "C#m/Dbm", "8A/Am": two spellings of one key, the first will do
        return next((k for k in map(normalize_key, text.split("/")) if k), "")
    camelot = _CAMELOT.match(text)
    if camelot:
        number, letter = int(camelot.group(1)), camelot.group(2).upper()
        return (_CAMELOT_MINOR if letter == "A" else _CAMELOT_MAJOR)[number - 1]
    open_key = _OPEN_KEY.match(text)
    if open_key:
        number = (int(open_key.group(1)) + 6) % 12 + 1  # as Camelot
        minor = open_key.group(2).lower() == "m"
        return (_CAMELOT_MINOR if minor else _CAMELOT_MAJOR)[number - 1]
    match = _KEY.match(text)
    if not match:
        return ""
    note, accidental, mode = match.groups()
    acc = (accidental or "").lower().lstrip("-")
    sign = "#" if acc in ("#", "♯", "sharp", "is") else "b" if acc in ("b", "♭", "flat", "es") \
        else ""
    minor = mode is not None and (mode == "m" or mode.lower() in ("min", "minor", "moll"))
    return f"{note.upper()}{sign} {'minor' if minor else 'major'}"


def normalize_bpm(text: str | int | float | None) -> int | None:
    """A tempo tag as whole BPM (rounded), None outside 30..300 or unreadable."""
    raw = str(text).strip().lower().removesuffix("bpm").strip()
    if raw.count(",") == 1 and "." not in raw:
        raw = raw.replace(",", ".")  # "128,00": a decimal comma, as European taggers write
    try:
        value = round(float(raw))
    except (ValueError, OverflowError):
        return None
    return value if 30 <= value <= 300 else None


def genres(text: str) -> list[str]:
    """'Rock; Ballad', 'Rock/Ballad', '(17)(6)' -> separate genre names, placeholders dropped."""
    from mutagen._constants import GENRES  # the ID3v1 genre table

    def numeric(match: re.Match[str]) -> str:
        index = int(match.group(1) or match.group(2))
        return f";{GENRES[index]};" if index < len(GENRES) else ";"

    text = _ID3V1_GENRE.sub(numeric, (text or "").strip())
    text = re.sub(r"\(RX\)|\(CR\)", ";", text)
    out: list[str] = []
    for part in _GENRE_SPLIT.split(text):
        part = " ".join(part.split())
        if part and not is_placeholder(part) and part.casefold() not in {o.casefold() for o in out}:
            out.append(part)
    return out


def is_placeholder(text: str) -> bool:
    """A ripper's stand-in ('Unknown Artist', 'Track 01', genre 'Other'), not a real tag."""
    folded = " ".join(text.split()).casefold()
    dated = _DATED.match(folded)
    return (folded in PLACEHOLDERS or bool(_TRACK.match(folded))
            or (dated is not None and dated.group(1) in PLACEHOLDERS))


def tag_value(text: str) -> str:
    """A title/artist/album tag for a caption: one line, bracketed noise gone, '' if a
    placeholder."""
    text = " ".join(_NOISE.sub("", text or "").split()).strip(" ,-")
    return "" if is_placeholder(text) else text


def name_from_stem(stem: str) -> str:
    """A file name as caption words: '02 - 사랑했지만' -> '사랑했지만', '01. Song' -> 'Song'."""
    text = re.sub(r"_+", " ", stem)
    text = _NOISE.sub("", text)
    text = _LEADING_TRACK.sub("", text)
    parts = [p.strip() for p in re.split(r"\s+[-–—]\s+|\s*-{2,}\s*", text)]
    parts = [_LEADING_TRACK.sub("", p).strip(" .-") for p in parts]
    parts = [p for p in parts if p and not p.isdigit() and not is_placeholder(p)]
    return " ".join(re.sub(r"[_-]+", " ", " ".join(parts)).split())  # as ACE-Step: words
