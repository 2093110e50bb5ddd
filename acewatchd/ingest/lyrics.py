"""Lyrics text: legacy-encoding repair, LRC timestamps and header tags removed.

ACE-Step reads ``[...]`` in lyrics as section markers, so ``[00:12.34]`` times and ``[ti:...]``
headers from LRC files (or SYLT/ffmpeg-converted tags) must go; ``[Verse]``/``[Chorus]`` stay.
"""

from __future__ import annotations

import html
import os
import re
import stat
import unicodedata
from pathlib import Path

LRC_MAX_BYTES = 1 << 20

_TIME = re.compile(r"[\[<](?:\d{1,2}:)?\d{1,3}:\d{1,2}(?:[.:,]\d{1,3})?[\]>]")  # [h:]mm:ss[.,:]xx
_HEADER = re.compile(
    r"^\s*\[(?:ti|ar|al|au|by|offset|length|re|ve|id|la|lr|tool|#)\s*:[^\]]*\]\s*$", re.I)

# C0/C1 controls but tab and newline: never text (NULs end ID3 values; a broken frame's length
# makes mutagen read the next frames' bytes as text).
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# Dataset language -> the legacy codepage its tags were usually written in.
LANGUAGE_ENCODINGS = {"ko": "cp949", "ja": "cp932", "zh": "gb18030"}
# Guess order: EUC-KR (strict KS X 1001) before Shift-JIS before GBK, then the wider supersets.
_GUESSES = ("euc_kr", "shift_jis", "gbk", "cp949", "cp932", "gb18030")


# Credit lines that lyrics sites put at the top of a song's lyrics (NetEase, QQ Music, Melon,
# and the LRC files made from them): "作词 : 周杰伦", "작곡 : 김형석", "Lyrics by: …". Sung, they
# would be lyrics. Only a leading run of them goes, and only with a colon after the role.
_CREDIT = re.compile(
    r"^\s*(?:作词|作詞|作曲|编曲|編曲|词|詞|曲|制作人|製作人|监制|監製|混音|录音|錄音|和声|和聲|"
    r"出品|发行|發行|原唱|翻唱|演唱|歌手|"
    r"작사|작곡|편곡|프로듀서|노래|"
    r"作詞者|作曲者|編曲者|歌|"
    r"lyrics?(?:\s+by)?|lyricist|words(?:\s+by)?|music(?:\s+by)?|composer|composed\s+by|"
    r"written\s+by|arranged\s+by|arranger|producer|produced\s+by)\s*[:：]\s*\S.*$",
    re.IGNORECASE)


# What lyrics scrapers leave (beets' lyrics plugin and others write it into the tags): HTML
# line breaks and entities, and Genius's page furniture around the words.
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:[a-z]{2,8}|#\d{1,6}|#x[0-9a-f]{1,5});", re.IGNORECASE)
_EMBED = re.compile(r"(?<=\S)\d*Embed\s*$")  # glued to the last word: "yesterday45Embed"
_GLUED = re.compile(r"(?<=\S)You might also like(?=\S|$)", re.MULTILINE)
_SCRAPED_LINE = re.compile(r"^\s*(?:You might also like|See .{1,60} Live|Get tickets as low "
                           r"as \$\d+)\s*$", re.IGNORECASE)
_GENIUS_HEAD = re.compile(r"^\s*\d+\s+Contributors?.{0,120}?\sLyrics\s*$", re.IGNORECASE)


def _scraped(text: str) -> str:
    # Each pattern only where its text occurs: most lyrics hold none of it, and this runs
    # for every song of a drop.
    if "<" in text:
        text = _BR.sub("\n", text)
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if "Contributor" in text[:200]:
        head, sep, rest = text.partition("\n")
        if sep and _GENIUS_HEAD.match(head):
            text = rest  # "12 ContributorsYesterday Lyrics"
    if "You might also like" in text:
        text = _GLUED.sub("\n", text)
    text = text.rstrip()
    return _EMBED.sub("", text) if text.endswith("Embed") else text


def _has_scraped_lines(text: str) -> bool:
    low = text.lower()
    return "you might also like" in low or " live" in low or "get tickets" in low


def clean_lyrics(text: str, title: str = "", artist: str = "") -> str:
    """Lyrics without LRC times/headers, leading credit lines (and, given the song's
    ``title`` and ``artist``, a leading line naming the song), CRLF, NULs and other control
    characters; blank-line runs collapsed to one."""
    text = CONTROLS.sub("", _scraped(text.replace("\r\n", "\n").replace("\r", "\n")))
    lines: list[str] = []
    scraped = _has_scraped_lines(text)
    for line in text.split("\n"):
        if _HEADER.match(line) or (scraped and _SCRAPED_LINE.match(line)):
            continue
        timed = bool(_TIME.search(line))
        line = _TIME.sub("", line).strip() if timed else line.rstrip()
        if timed and not line:
            continue  # a time with no words (an instrumental gap marker)
        if not line and (not lines or not lines[-1]):
            continue
        lines.append(line)
    headings = _headings(title, artist)
    while lines and (not lines[0].strip() or _CREDIT.match(lines[0])
                     or _folded(lines[0]) in headings):
        lines.pop(0)
    return "\n".join(lines).strip()


def _folded(text: str) -> str:
    return " ".join(text.replace("–", "-").replace("—", "-").split()).casefold()


def _headings(title: str, artist: str) -> set[str]:
    """The lines naming the song that LRC files from KuGou, QQ Music and others start with
    ("晴天 - 周杰伦", "周杰伦 - 晴天"), and a scraped Genius page's "Yesterday Lyrics", from the
    song's own tags."""
    title, artist = _folded(title), _folded(artist)
    if not title:
        return set()
    named = {f"{title} lyrics"}
    if artist:  # a title alone is often the first line sung ("Yesterday"): never dropped
        named |= {f"{title} - {artist}", f"{artist} - {title}"}
    return named


# What lyrics tags, lyrics sites and music apps put in place of lyrics for a song without
# words: sung, they would teach the LoRA to sing "instrumental". NetEase and QQ Music write
# "纯音乐，请欣赏" / "此歌曲为没有填词的纯音乐，请您欣赏" ("pure music, please enjoy").
_INSTRUMENTAL_MARKS = frozenset({
    "instrumental", "inst", "instrumental version", "instrumental only", "no lyrics",
    "연주곡", "경음악", "インストゥルメンタル", "インスト", "純音樂", "纯音乐", "纯音乐请欣赏",
    "此歌曲为没有填词的纯音乐请您欣赏", "纯音乐请您欣赏", "純音樂請欣賞",
})
_MARK_MAX = 80  # characters: the longest mark with its brackets and punctuation is shorter
_MARK_JUNK = re.compile(r"[\s\[\](){}<>*_.,:;!?~\-，。、！？：；（）【】「」『』・…]+")


def means_instrumental(lyrics: str) -> bool:
    """Lyrics that only say the song has none ("Instrumental", "[inst]", "연주곡",
    "纯音乐，请欣赏"), LRC times and headers already stripped."""
    if len(lyrics) > _MARK_MAX:
        return False  # sung lyrics: not scanned through for every song of a drop
    return _MARK_JUNK.sub("", lyrics).casefold() in _INSTRUMENTAL_MARKS


def encoding_for(language: str, tag_encoding: str) -> str:
    """The explicit codepage for a dataset: ``tag_encoding``, else by ``language``, else ''."""
    if tag_encoding.strip():
        return tag_encoding.strip()
    return LANGUAGE_ENCODINGS.get(language.strip().lower().split("-")[0], "")


def repair(text: str, encoding: str = "") -> str:
    """Undo legacy bytes read as latin-1 (``±è°æÈ£`` -> ``김경호``), and UTF-8 bytes read as
    latin-1 (``CafÃ©`` -> ``Café``). Text that is not latin-1-only, or whose bytes do not
    decode to UTF-8 or CJK, is returned unchanged ("Café" stays)."""
    if not text or all(ord(c) < 0x80 for c in text) or any(ord(c) > 0xFF for c in text):
        return text
    raw = text.encode("latin-1")
    try:
        # UTF-8 bytes in a frame marked latin-1, as many taggers write them ("CafÃ©"). Real
        # latin-1 text and legacy CJK bytes are practically never valid UTF-8.
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _plausible_latin(text):
        return text  # "Mötley Crüe" also decodes as GBK Han: accented letters win
    if encoding:
        try:
            fixed = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            return text
        return fixed if _score(fixed) > 0 else text
    return decode_guess(raw, fallback=text)


def _plausible_latin(text: str) -> bool:
    """Every non-ASCII character a Latin letter, none in a run longer than two ("ção")."""
    run = 0
    for ch in text:
        if ord(ch) < 0x80:
            run = 0
            continue
        run += 1
        if run > 2 or not unicodedata.category(ch).startswith("L"):
            return False
    return True


def decode_guess(raw: bytes, *, fallback: str | None = None) -> str:
    """Best CJK decoding of ``raw`` (most Hangul/Kana/Han, no controls); else ``fallback``
    (or latin-1)."""
    best, best_score = None, 0
    for codec in _GUESSES:
        try:
            candidate = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        score = _score(candidate)
        if score > best_score:
            best, best_score = candidate, score
    if best is not None:
        return best
    return fallback if fallback is not None else raw.decode("latin-1")


def decode_bytes(raw: bytes, encoding: str = "") -> str:
    """A text file's bytes: UTF-8 (with or without BOM), else the explicit codepage, else a
    guess, else latin-1."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if encoding:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            pass
    return decode_guess(raw)


def read_lrc(audio: Path) -> str:
    """``<stem>.lrc`` beside ``audio`` as text, '' unless it is a regular file (not a
    symlink) under 1 MB. Also found: ``<stem>.LRC`` (Windows rippers; a case-sensitive disk
    tells it apart) and ``<name>.<ext>.lrc`` (players that name it after the whole file)."""
    for name in (f"{audio.stem}.lrc", f"{audio.stem}.LRC", f"{audio.name}.lrc"):
        raw = small_regular(audio.with_name(name))
        if raw is not None:
            return decode_bytes(raw)
    return ""


def small_regular(path: Path, limit: int = LRC_MAX_BYTES) -> bytes | None:
    """The bytes of a regular file under ``limit``, never through a link; None if absent,
    unreadable or anything else."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size >= limit:
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def _score(text: str) -> int:
    """CJK characters in ``text``; 0 when anything looks like garbage (controls, private use,
    half-width katakana, replacement characters)."""
    score = 0
    for ch in text:
        if ch in "\n\t":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Co", "Cn", "Cs") or ch == "\ufffd" or "\uff61" <= ch <= "\uff9f":
            return 0
        if ("\uac00" <= ch <= "\ud7a3" or "\u3040" <= ch <= "\u30ff"
                or "\u4e00" <= ch <= "\u9fff"):
            score += 1
    return score
