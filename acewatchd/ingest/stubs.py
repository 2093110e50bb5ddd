"""Caption and lyrics stubs beside each song: ``<stem>.caption.txt`` and ``<stem>.lyrics.txt``.

The caption is the dataset's ``caption_template`` filled from the file's tags and the dataset's
settings, in ACE-Step's style: comma-separated descriptors ("kim kyung ho, Korean power rock
ballad, 1990s, ..."). A template segment whose placeholders are all empty is dropped, so a song
without a BPM tag does not get ", bpm," in its caption.

Ownership rule: acewatchd writes a stub only where no file exists (atomic, never clobbering)
and records the sha256 of what it wrote. From then on a stub whose hash differs is the user's
("reviewed") and is never overwritten; a stub matching our hash is "untouched", and is
rewritten only when its song is replaced (``ingest.songchange``, which also carries stubs
along when a song is moved).
"""

from __future__ import annotations

import functools
import os
import re
import string
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from acewatchd.config.schema import Dataset
from acewatchd.ingest.captions import (
    genres,
    name_from_stem,
    normalize_bpm,
    normalize_key,
    tag_value,
)
from acewatchd.ingest.lyrics import clean_lyrics, encoding_for, means_instrumental
from acewatchd.ingest.tags import AudioInfo
from acewatchd.ingest.writepace import Pace
from acewatchd.ledger.batch import Writer
from acewatchd.ledger.files import record_stub, stub_hash
from acewatchd.util.files import create_temp, link_temp, sha256_bytes, sha256_file

INSTRUMENTAL = "[Instrumental]"
KINDS = ("caption", "lyrics")
SIDECAR_SUFFIXES = (".caption.txt", ".lyrics.txt", ".reason.txt", ".json")
# Inode creation serialises per folder but not across folders, and fsyncs in flight together
# share journal commits: a few threads, not one per core.
_WORKERS = 4


def stub_path(audio: Path, kind: str) -> Path:
    """Sidecar beside the audio, named from the on-disk stem (NFD stays NFD, as ACE-Step and
    the user's Finder see it)."""
    return audio.with_name(f"{audio.stem}.{kind}.txt")


def caption_fields(info: AudioInfo, ds: Dataset) -> dict[str, str]:
    """Placeholder values: legacy bytes decoded by the dataset's codepage, ripper placeholders
    and bracketed noise gone, key/BPM as dataset.json spells them (ingest.captions)."""
    info = info.reencoded(encoding_for(ds.language, ds.tag_encoding))
    bpm = normalize_bpm(info.bpm) or normalize_bpm(ds.bpm)
    tag = ds.tag.strip()
    artist = tag_value(info.artist)
    if tag and _one_line(artist).casefold() == _one_line(tag).casefold():
        artist = ""  # the trigger word already names the artist
    return {
        "tag": tag, "title": tag_value(info.title), "artist": artist,
        "album": tag_value(info.album),
        "genre": ", ".join(genres(info.genre) or genres(ds.genre)), "year": info.year,
        "decade": info.decade, "bpm": f"{bpm} bpm" if bpm else "",
        "key": normalize_key(info.key) or ds.keyscale.strip(),  # as dataset.json's keyscale
        "language": "" if ds.language == "unknown" else ds.language,
        "timesignature": f"{ds.timesignature}/4" if ds.timesignature else "",
    }


def caption_text(info: AudioInfo, ds: Dataset, stem: str) -> str:
    values = {k: _one_line(v) for k, v in caption_fields(info, ds).items()}
    parts: list[str] = []
    for segment, names in _segments(ds.caption_template):
        if names and not any(values.get(n, "") for n in names):
            continue  # every placeholder empty: drop the whole descriptor ("{artist} style")
        text = segment.format_map(_Blank(values)).strip()
        # A multi-value genre ("Rock, Ballad") is several descriptors, each deduplicated.
        parts.extend(_SPACES.sub(" ", p).strip() for p in text.split(","))
    parts = [p for p in _dedupe(parts) if p]
    if values["tag"] and "tag" not in _placeholders(ds.caption_template):
        parts = parts + [values["tag"]] if ds.tag_position == "append" else [values["tag"], *parts]
    if not parts or parts == [values["tag"]]:
        # No usable tags: ACE-Step's own fallback is the file name as words.
        name = name_from_stem(stem) or re.sub(r"[_-]+", " ", stem).strip()
        parts = _dedupe([*parts, " ".join(name.split())])
    return ", ".join(parts) + "\n"


# The ledger's note on a stubbed song whose lyrics say it has none: its [Instrumental] stub
# is what the tags asked for, not "no lyrics found" (commands.status).
SAID_INSTRUMENTAL = "its lyrics say it is an instrumental"


def lyrics_text(info: AudioInfo, ds: Dataset) -> str:
    return lyrics_stub(info, ds)[0]


def lyrics_stub(info: AudioInfo, ds: Dataset) -> tuple[str, bool]:
    """The lyrics stub's text, and whether the song's lyrics (tags or .lrc) only said it has
    none ("Instrumental", "纯音乐，请欣赏")."""
    if ds.instrumental:
        return INSTRUMENTAL + "\n", False
    info = info.reencoded(encoding_for(ds.language, ds.tag_encoding))
    lyrics = clean_lyrics(info.lyrics, info.title, info.artist)
    said = means_instrumental(lyrics)
    return (INSTRUMENTAL if not lyrics or said else lyrics) + "\n", said


@dataclass(frozen=True)
class StubJob:
    dataset: str
    relpath: str            # NFC, the ledger key
    audio: Path             # on disk
    texts: dict[str, str]   # kind -> text


def write_stubs(writer: Writer, dataset: str, relpath: str, audio: Path,
                texts: dict[str, str]) -> dict[str, str]:
    """One song's missing stubs; kind -> 'written' | 'ours' | 'user' (see ``StubPipe``)."""
    with StubPipe(writer, threads=False) as pipe:
        pipe.submit(StubJob(dataset, relpath, audio, texts))
        return pipe.finish()[0]


class StubPipe:
    """The stubs of a batch of songs, written while the batch's next songs are still being
    parsed and hashed: ``submit`` hands a song's missing stubs to a few threads at once
    (create the temp file, fsync it) where this disk makes such writes wait, and writes them
    at once where it does not (``ingest.writepace``); ``finish`` links them under their names in
    submission order and records them. Per job the outcome is kind -> 'written' | 'ours' | 'user'.

    Safe to repeat after a kill -9 at any point: an existing stub equal to what we would
    write is ours. A stub is linked only after its content is fsync'd; the fsyncs are plain,
    and the writer's barrier at the batch's end (or right after the link, outside a batch)
    flushes the drive cache once, on macOS. Leaving the ``with`` block, however it is left,
    closes every temp file and removes those not linked."""

    def __init__(self, writer: Writer, *, threads: bool = True, pace: Pace | None = None) -> None:
        self.writer = writer
        self._jobs: list[StubJob] = []
        self._outcomes: list[dict[str, str]] = []
        self._todo: list[tuple[int, list[tuple[str, Path, bytes]],
                              Future[list[tuple[int, str]]]]] = []
        # A single song: threads would cost more than they save. Otherwise the pace says
        # whether this disk's writes block long enough to be worth them (ingest.writepace); the
        # pool is made only then.
        self._threads = threads
        self._pace = pace if pace is not None else Pace()
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> StubPipe:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for _, _, future in self._todo:
            if future.cancelled() or future.exception() is not None:
                continue
            for fd, tmp in future.result():
                os.close(fd)
                if tmp:
                    _unlink(tmp)  # a linked one lives on under its stub name

    def submit(self, job: StubJob) -> int:
        """Start writing the job's missing stubs; returns its index in ``finish``'s list."""
        index = len(self._jobs)
        self._jobs.append(job)
        self._outcomes.append({})
        missing: list[tuple[str, Path, bytes]] = []
        for kind, text in job.texts.items():
            path, data = stub_path(job.audio, kind), text.encode("utf-8")
            if os.path.lexists(path):
                self._outcomes[index][kind] = _existing(self.writer, job, kind, path,
                                                        sha256_bytes(data))
            else:
                missing.append((kind, path, data))
        if missing:
            self._todo.append((index, missing, self._start(job.audio.parent,
                                                           [d for *_, d in missing])))
        return index

    def finish(self) -> list[dict[str, str]]:
        """Link every stub submitted (each once its temp file is fsync'd) and record it."""
        for index, missing, future in self._todo:
            temps = future.result()
            for (kind, path, data), (fd, tmp) in zip(missing, temps, strict=True):
                if kind in self._outcomes[index]:
                    continue  # linked by an earlier finish()
                self._outcomes[index][kind] = _link(self.writer, self._jobs[index], kind,
                                                    path, fd, tmp, sha256_bytes(data))
        return self._outcomes

    def _start(self, folder: Path, datas: list[bytes]) -> Future[list[tuple[int, str]]]:
        """A song's missing stubs, as temp files: one hand-off per song, not per stub (each
        costs a future, a queue and a GIL switch)."""
        if self._threads and not self._pace.probe():
            # Creating an inode is kernel time (0.1-0.8 ms each on the CI VM's ext4),
            # serialised per folder but not across folders, and fsyncs in flight together
            # share journal commits: both overlap the next songs' parsing and hashing.
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=_WORKERS,
                                                thread_name_prefix="stub-io")
            return self._pool.submit(_synced_temps, folder, datas)
        done: Future[list[tuple[int, str]]] = Future()
        try:
            done.set_result(self._pace.timed(lambda: _synced_temps(folder, datas)))
        except BaseException as exc:
            done.set_exception(exc)
            raise
        return done


def _synced_temps(folder: Path, datas: list[bytes]) -> list[tuple[int, str]]:
    """Each of ``datas`` in a temp file of ``folder``, fsync'd; none left behind on error."""
    made: list[tuple[int, str]] = []
    try:
        for data in datas:
            made.append(_synced_temp(folder, data))
    except BaseException:
        for fd, tmp in made:
            os.close(fd)
            if tmp:
                _unlink(tmp)
        raise
    return made


def _synced_temp(folder: Path, data: bytes) -> tuple[int, str]:
    fd, tmp = create_temp(folder, data)
    try:
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        if tmp:
            _unlink(tmp)
        raise
    return fd, tmp


def _existing(writer: Writer, job: StubJob, kind: str, path: Path, digest: str) -> str:
    recorded = _recorded(writer, job.dataset, job.relpath, kind)
    current = hash_or_none(path)
    if recorded is None and current == digest:
        _record(writer, job.dataset, job.relpath, kind, path, digest)  # written, then killed
        return "ours"
    return "ours" if recorded is not None and recorded == current else "user"


def _link(writer: Writer, job: StubJob, kind: str, path: Path, fd: int, tmp: str,
          digest: str) -> str:
    try:
        link_temp(fd, tmp, path)  # never replaces: a file the user made meanwhile wins
    except FileExistsError:
        return _existing(writer, job, kind, path, digest)
    writer.wrote_in(path.parent)
    _record(writer, job.dataset, job.relpath, kind, path, digest)
    return "written"


def stub_state(ledger_hash: str | None, path: Path) -> str:
    """'untouched' (still what we wrote), 'reviewed' (edited or the user's own), 'missing'."""
    current = hash_or_none(path)
    if current is None:
        return "reviewed" if os.path.lexists(path) else "missing"
    return "untouched" if current == ledger_hash else "reviewed"


# --------------------------------------------------------------------------- helpers


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


_SPACES = re.compile(r"\s+")


@functools.lru_cache(maxsize=64)
def _segments(template: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The template's comma-separated descriptors, each with its placeholders (parsed once
    per template, not once per song)."""
    return tuple((segment, tuple(n for _, n, _, _ in string.Formatter().parse(segment) if n))
                 for segment in template.split(","))


@functools.lru_cache(maxsize=64)
def _placeholders(template: str) -> frozenset[str]:
    return frozenset(n for _, n, _, _ in string.Formatter().parse(template) if n)


def _one_line(text: str) -> str:
    # A comma inside a tag ("Rock, Pop") stays; newlines never belong in a caption.
    return _SPACES.sub(" ", text).strip().strip(",").strip()


def _dedupe(parts: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for part in parts:
        if part and part.casefold() not in seen:
            seen.add(part.casefold())
            out.append(part)
    return out


_STUB_LIMIT = 1 << 20  # a sidecar larger than 1 MB is the user's, never hashed


def hash_or_none(path: Path) -> str | None:
    """Hash of a regular sidecar; None for anything else (FIFO, device, symlink, huge,
    unreadable), which is then the user's: never read, never overwritten."""
    try:
        return sha256_file(path, follow=False, limit=_STUB_LIMIT)
    except OSError:
        return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _recorded(writer: Writer, dataset: str, relpath: str, kind: str) -> str | None:
    return stub_hash(writer.ledger.connect(), dataset, relpath, kind)


def _record(writer: Writer, dataset: str, relpath: str, kind: str, path: Path,
            digest: str) -> None:
    with writer.tx() as conn:
        record_stub(conn, dataset, relpath, kind, str(path), digest)
