"""Is this file usable audio? And if not: a copy in rejected/ with a one-sentence reason.

Validation sniffs the file's first bytes (ingest.formats: content a name hides, such as an
HTML page saved as .mp3, or WMA named .mp3, is refused; a readable format under another
format's name is read as what it is), reads it once with mutagen (tags.read_audio) and checks
the duration against [watch] bounds. A rejected file is *copied* (the user's original stays
in the drop folder) to ``rejected/<dataset>/<relpath>`` beside ``<name>.reason.txt``.
Symlinks leading out of the dataset folder and unreadable files get only the reason file:
copying would mean following the link, and an unreadable file cannot be copied.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from acewatchd.config.schema import Watch
from acewatchd.ingest import formats
from acewatchd.ingest.lyrics import decode_bytes, small_regular
from acewatchd.ingest.tags import AudioInfo, TagError, read_audio
from acewatchd.util.files import (
    TEMP_PREFIX,
    atomic_write_text,
    fsync_dir,
    full_fsync,
    is_disk_full,
    open_regular,
)

logger = logging.getLogger(__name__)

UNREADABLE = "cannot be read"
COPY_LIMIT = 1 << 30  # larger rejected files get a reason file only
NAME_MAX = 255


@dataclass(frozen=True)
class Verdict:
    info: AudioInfo | None
    reason: str = ""          # one sentence when rejected

    @property
    def ok(self) -> bool:
        return self.info is not None


def check_link(path: Path, folder: Path, st: os.stat_result | None = None) -> str:
    """'' if ``path`` is a regular file or a symlink staying inside ``folder``; else why not.
    ``st``: its lstat, when the caller has it."""
    st = os.lstat(path) if st is None else st
    if stat.S_ISLNK(st.st_mode):
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(os.path.realpath(folder)):
            return "it is a symbolic link pointing outside its drop folder, which is never read"
        if not target.is_file():
            return "it is a symbolic link to something that is not a file"
        return ""
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    return ""


def validate(path: Path, watch: Watch) -> Verdict:
    """Open the file (never blocking on a FIFO swapped in) and judge it: ``validate_open``."""
    if not formats.listed(path, watch.extensions):
        return _not_listed(path)
    try:
        with os.fdopen(open_regular(path), "rb") as fh:
            return validate_open(path, fh, watch)
    except OSError as exc:
        return unreadable(exc)


def validate_open(path: Path, fh: BinaryIO, watch: Watch) -> Verdict:
    """Judge the file ``fh`` holds open (``path`` is its name): sniffed, parsed and the
    tags read from this one open file, wherever ``fh`` is positioned."""
    if not formats.listed(path, watch.extensions):
        return _not_listed(path)
    try:
        size = os.fstat(fh.fileno()).st_size
        fh.seek(0)
        sniffed = formats.sniff_stream(fh) if size else formats.Sniffed()
    except OSError as exc:
        return unreadable(exc)
    if size == 0:
        return Verdict(None, "the file is empty (0 bytes).")
    problem = formats.content_problem(path.name, sniffed)
    if problem:
        return Verdict(None, problem)
    try:
        info = read_audio(path, kind=_content_kind(path, sniffed), fileobj=fh, size=size)
    except TagError as exc:
        return Verdict(None, f"{exc}.")
    except OSError as exc:
        return unreadable(exc)
    return _check_duration(info, watch, path)


def unreadable(exc: OSError) -> Verdict:
    """The verdict on a file that cannot be opened or read (no permission, an I/O error)."""
    return Verdict(None, f"it {UNREADABLE} ({exc.strerror or exc}).")


def _not_listed(path: Path) -> Verdict:
    return Verdict(None, f"its extension .{formats.extension(path)} is not one of "
                         "[watch] extensions")


def _content_kind(path: Path, sniffed: formats.Sniffed) -> Any:
    """mutagen's class for the format the bytes hold: a readable format under another
    format's extension is taken as what it holds (mutagen.File would trust the name and
    fail), and a file whose name agrees is opened by its class at once (mutagen.File would
    score every format it knows first: a fifth of the parse). None when the bytes say
    nothing: mutagen.File decides."""
    found = formats.mislabelled(path.name, sniffed)
    if not found:
        fmt = formats.FORMATS.get(sniffed.format)
        return formats.mutagen_kind(fmt.name) if fmt is not None and fmt.readable else None
    logger.info("judged by its content: %s named .%s", formats.FORMATS[found].label,
                formats.extension(path), extra={"file": path.name, "content": found})
    return formats.mutagen_kind(found)


def _check_duration(info: AudioInfo, watch: Watch, path: Path) -> Verdict:
    if info.present < 0.9:
        return Verdict(None, f"it looks truncated: its header promises {info.duration:.1f} s "
                             f"but the file holds only about {info.duration * info.present:.1f} s")
    if info.duration <= 0:
        return Verdict(None, "mutagen found no playable audio in it (duration 0 s).")
    if info.duration < watch.min_duration_seconds:
        return Verdict(None, f"it is {info.duration:.1f} s long, shorter than "
                             f"[watch] min_duration_seconds = {watch.min_duration_seconds:g}.")
    if info.duration > watch.max_duration_seconds:
        cue = cue_sheet_for(path)
        album = (f" It looks like a whole CD in one file ({cue} lies beside it): split it "
                 f"into its tracks along the cue sheet (XLD on a Mac, foobar2000, or "
                 f"shnsplit) and drop the tracks instead." if cue else "")
        return Verdict(None, f"it is {info.duration:.1f} s long, longer than "
                             f"[watch] max_duration_seconds = {watch.max_duration_seconds:g}."
                             f"{album}")
    return Verdict(info)


_CUE_LIMIT = 256 * 1024


def cue_sheet_for(path: Path) -> str:
    """The name of the cue sheet that splits ``path`` into tracks, or '': ``<stem>.cue`` or
    ``<name>.cue`` beside it, or a cue sheet in its folder whose FILE line names it. Read
    only as a regular file, never through a link."""
    for name in (f"{path.stem}.cue", f"{path.name}.cue"):
        if small_regular(path.with_name(name), _CUE_LIMIT) is not None:
            return name
    try:
        sheets = sorted(e.name for e in os.scandir(path.parent)
                        if e.name.lower().endswith(".cue") and not e.name.startswith("."))
    except OSError:
        return ""
    for name in sheets[:20]:
        raw = small_regular(path.with_name(name), _CUE_LIMIT)
        if raw is not None and f'"{path.name}"'.casefold() in decode_bytes(raw).casefold():
            return name
    return ""


def reject(path: Path, rejected_dir: Path, relpath: str, reason: str, *, copy: bool) -> Path:
    """Copy (if allowed) and write the reason; returns the reason file. Repeating is harmless."""
    dest = rejected_dir / relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        try:
            size = os.lstat(path).st_size
        except OSError:
            size = 0
        if size > COPY_LIMIT:  # a reason file only: never a multi-GB copy in rejected/
            copy = False
            reason = (f"{reason.rstrip('.')} (it is {size / 2**30:.1f} GB, so it was not "
                      f"copied to rejected/)")
    if copy:
        try:
            _atomic_copy(path, dest)
        except OSError as exc:
            if is_disk_full(exc):
                raise  # the rejection waits for space, then is made whole (copy and reason)
            reason = f"{reason.rstrip('.')} (and copying it failed: {exc.strerror or exc})."
    reason_file = dest.with_name(_reason_name(dest.name))
    sentence = f"{Path(relpath).name} was rejected because {reason.rstrip('.')}.\n"
    atomic_write_text(reason_file, sentence)
    return reason_file


def forget_rejection(rejected_dir: Path, relpath: str) -> bool:
    """Remove the copy and reason file an earlier rejection left (the file has since been
    ingested: it was rejected while still arriving). True if there was one."""
    if not rejected_dir.is_dir():
        return False  # the common case: nothing of this dataset was ever rejected
    dest = rejected_dir / relpath
    found = False
    for path in (dest.with_name(_reason_name(dest.name)), dest):
        try:
            path.unlink()
            found = True
        except FileNotFoundError:
            pass
        except OSError:  # a folder in its place, no permission: leave it, say nothing
            pass
    folder = dest.parent
    while found and folder != rejected_dir and folder.is_relative_to(rejected_dir):
        try:
            folder.rmdir()  # the sub-folders made for it, once empty
        except OSError:
            break
        folder = folder.parent
    return found


def _reason_name(name: str) -> str:
    """``<name>.reason.txt``, shortened (with a hash of the full name) to fit in 255 bytes."""
    full = f"{name}.reason.txt"
    if len(os.fsencode(full)) <= NAME_MAX:
        return full
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    short = os.fsencode(name)[:150].decode("utf-8", "ignore")
    return f"{short}~{digest}.reason.txt"


def _atomic_copy(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f"{TEMP_PREFIX}{dest.name}")
    # O_NOFOLLOW: the drop-folder path is data; never read through a link swapped in late.
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        with os.fdopen(fd, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            full_fsync(fout.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a half copy behind
        raise
    fsync_dir(dest.parent)
