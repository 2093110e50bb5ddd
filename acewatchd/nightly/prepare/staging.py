"""Staging: the dataset's valid songs, linked into ACE-Step's root under content-hash names.

ACE-Step only accepts paths under its own root (CONTRACT §3), so every stubbed song of
``drop/<dataset>/`` is hard-linked (copied when the root is on another filesystem) to
``<acestep root>/datasets/acewatchd/<dataset>/audio/<sha[:16]>.<ext>``. The name comes from the
content, so the same song dropped twice is staged once, renaming it in drop/ changes nothing,
and its tensor file (``<stem>.pt``) keeps its name. Staged files whose song left drop/ are
removed. Paths from drop/ are data: a symlink anywhere on the way is refused, never followed.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from acewatchd.acestep import layout
from acewatchd.config.schema import Config
from acewatchd.ingest.formats import FORMATS, mislabelled, sniff_file
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.files import FileRow, stubbed_files
from acewatchd.util.files import TEMP_PREFIX, fsync_dir, read_regular

logger = logging.getLogger(__name__)

SIDECAR_LIMIT = 1 << 20  # a caption or lyrics file larger than 1 MB is not a caption
_STAGED_NAME = re.compile(r"^[0-9a-f]{16}\.[a-z0-9]{1,8}$")


@dataclass(frozen=True)
class SourceSample:
    """One distinct song of a dataset, as the ledger and its sidecars describe it."""

    dataset: str
    relpath: str
    sha256: str
    source: Path
    caption: str
    lyrics: str
    duration: float | None
    content: str = ""  # the format its bytes hold when its name says another (formats.py)

    @property
    def stem(self) -> str:
        return self.sha256[:16]

    @property
    def sample_id(self) -> str:
        return self.sha256[:8]

    @property
    def ext(self) -> str:
        """The staged file's extension: the content's (an M4A saved as .mp3 is staged .m4a,
        so ACE-Step's decoder is not misled by the name), else the name's."""
        if self.content:
            return f".{FORMATS[self.content].ext}"
        return self.source.suffix.lower() or ".mp3"


def staged_path(cfg: Config, sample: SourceSample) -> Path:
    return layout.audio_dir(cfg.acestep.root, sample.dataset) / f"{sample.stem}{sample.ext}"


def collect_samples(cfg: Config, ledger: Ledger, dataset: str) -> tuple[list[SourceSample],
                                                                        list[str]]:
    """Distinct stubbed songs and the problems found. Of two copies of one song the one seen
    first wins, so a later duplicate changes nothing."""
    drop = cfg.paths.drop / _on_disk_name(cfg.paths.drop, dataset)  # an NFD folder, too
    samples: dict[str, SourceSample] = {}
    problems: list[str] = []
    for row in stubbed_files(ledger.connect(), dataset):
        if row.sha256 is None or row.sha256 in samples:
            continue
        try:
            samples[row.sha256] = _sample(drop, row, row.sha256)
        except SkipSample as exc:
            problems.append(f"{drop / row.relpath}: {exc}")
    return sorted(samples.values(), key=lambda s: s.sha256), problems


class SkipSample(Exception):
    """This song cannot be used now; the message says why (one line, for the log)."""


def _sample(drop: Path, row: FileRow, sha256: str) -> SourceSample:
    source = safe_path(drop, row.relpath)
    st = source.stat()
    if (st.st_size, st.st_mtime_ns) != (row.size, row.mtime_ns):
        raise SkipSample("changed since it was checked; it is used after the next scan")
    return SourceSample(row.dataset, row.relpath, sha256, source,
                        read_sidecar(drop, source, "caption"), read_sidecar(drop, source, "lyrics"),
                        row.duration, _content(source))


def _content(source: Path) -> str:
    try:
        return mislabelled(source.name, sniff_file(source, follow=False))
    except OSError as exc:
        raise SkipSample(f"cannot be read ({exc.strerror or exc})") from None


def safe_path(base: Path, relpath: str) -> Path:
    """``base/relpath`` as found on disk (NFC or NFD names), refusing symlinks and escapes."""
    parts = Path(relpath).parts
    if not parts or Path(relpath).is_absolute() or ".." in parts:
        raise SkipSample(f"unsafe path {relpath!r}")
    current = base
    for part in parts:
        current = current / _on_disk_name(current, part)
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            raise SkipSample("not found in the drop folder") from None
        except OSError as exc:  # a name too long, a folder without permission
            raise SkipSample(f"cannot be checked ({exc.strerror or exc})") from None
        if stat.S_ISLNK(mode):
            raise SkipSample("is (or lies under) a symlink; symlinks are never followed")
    if not stat.S_ISREG(mode):
        raise SkipSample("is not a regular file")
    return current


def _on_disk_name(folder: Path, name: str) -> str:
    if os.path.lexists(folder / name):
        return name
    wanted = unicodedata.normalize("NFC", name)
    try:
        for entry in os.listdir(folder):
            if unicodedata.normalize("NFC", entry) == wanted:
                return entry
    except OSError:
        pass
    return name


def read_sidecar(drop: Path, audio: Path, kind: str) -> str:
    rel = audio.relative_to(drop).with_name(f"{audio.stem}.{kind}.txt")
    try:
        path = safe_path(drop, str(rel))
    except SkipSample as exc:
        raise SkipSample(f"{rel.name}: {exc}") from None
    try:
        data = read_regular(path, SIDECAR_LIMIT, follow=False)
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            raise SkipSample(f"{path.name} is larger than 1 MB") from None
        raise SkipSample(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise SkipSample(f"{path.name} is not UTF-8 text") from None


def stage(cfg: Config, dataset: str, samples: list[SourceSample]) -> list[Path]:
    """Link or copy each sample into the audio folder; remove staged files no sample wants."""
    folder = layout.audio_dir(cfg.acestep.root, dataset)
    folder.mkdir(parents=True, exist_ok=True)
    staged = [_stage_one(s, staged_path(cfg, s)) for s in samples]
    _remove_orphans(folder, {p.name for p in staged})
    return staged


def _stage_one(sample: SourceSample, target: Path) -> Path:
    if target.exists() and target.stat().st_size == sample.source.stat().st_size:
        return target  # content-named: same name and size means it is already there
    tmp = target.with_name(f"{TEMP_PREFIX}{target.name}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(sample.source, tmp, follow_symlinks=False)
        how = "linked"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(sample.source, tmp, follow_symlinks=False)
        how = "copied"
    os.replace(tmp, target)
    fsync_dir(target.parent)
    logger.info("staged %s (%s) as %s", sample.relpath, how, target.name,
                extra={"dataset": sample.dataset, "sha": sample.sha256})
    return target


def _remove_orphans(folder: Path, keep: set[str]) -> None:
    for entry in os.listdir(folder):
        if entry in keep or not (_STAGED_NAME.match(entry) or entry.startswith(TEMP_PREFIX)):
            continue
        (folder / entry).unlink(missing_ok=True)
        logger.info("unstaged %s (its song left the drop folder)", entry)
