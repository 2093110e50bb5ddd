"""The outbox folders: one per render, built in staging and renamed into place whole.

Layout: ``outbox/<dataset>/<YYYY-MM-DD_HHMM>_r<run id>/``. A run is built in a dot-prefixed
staging folder beside its final place and renamed into place whole, so a folder without the dot
is always complete; staging leftovers of a crashed render are removed by the next one. Only
run folder *names* are ever listed (for the index and retention); nothing inside the outbox is
read back as input. The pages inside are page.py's.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from acewatchd.errors import AcewatchdError
from acewatchd.util import locks
from acewatchd.util.files import fsync_dir

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".acewatchd-staging-"
DELETING_PREFIX = ".acewatchd-deleting-"
LOCK_NAME = ".acewatchd-render.lock"
RUN_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}_\d{4})_[A-Za-z0-9_-]+$")
MANIFEST = "samples.json"
PLAYLIST = "playlist.m3u"


@dataclass(frozen=True)
class RunEntry:
    dataset: str
    name: str
    path: Path

    @property
    def stamp(self) -> str:
        match = RUN_NAME.match(self.name)
        return match.group(1) if match else ""


def run_folder_name(when: datetime, run_id: int | str) -> str:
    return f"{when:%Y-%m-%d_%H%M}_r{run_id}"


def slugify(text: str, fallback: str = "prompt", limit: int = 40) -> str:
    """ASCII file-name part; non-Latin text (Korean captions) falls back to ``fallback``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].strip("-")
    return slug or fallback


# --------------------------------------------------------------------------- folders


@contextmanager
def dataset_lock(dataset_dir: Path) -> Iterator[None]:
    """One render per dataset at a time (the daemon and `acewatchd render` may race)."""
    with locks.dataset_lock(dataset_dir, LOCK_NAME,
                            f"{dataset_dir}: another render of this dataset is running"):
        yield


def clean_staging(dataset_dir: Path) -> None:
    """Remove staging folders a crashed render left behind (call with the dataset lock)."""
    if not dataset_dir.is_dir():
        return
    for child in dataset_dir.iterdir():
        if child.name.startswith((STAGING_PREFIX, DELETING_PREFIX)) and not child.is_symlink():
            logger.info("removing unfinished render %s", child)
            shutil.rmtree(child, ignore_errors=True)


def new_staging(dataset_dir: Path, name: str) -> Path:
    staging = dataset_dir / f"{STAGING_PREFIX}{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def unique_name(dataset_dir: Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when a run of that minute already exists."""
    candidate, n = name, 2
    while (dataset_dir / candidate).exists() or (dataset_dir / f"{STAGING_PREFIX}{candidate}"
                                                 ).exists():
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def commit(staging: Path, final: Path) -> Path:
    """Rename the finished staging folder into place (same parent: atomic, so the run
    appears complete or not at all). Never replaces an existing run."""
    if final.exists():
        raise AcewatchdError(f"{final}: already exists; not replacing an earlier run")
    os.rename(staging, final)
    fsync_dir(final.parent)
    return final


def list_runs(outbox: Path) -> list[RunEntry]:
    """Every finished run folder of every dataset, newest first (by the time in its name)."""
    entries = []
    for ds in _subdirs(outbox):
        name = unicodedata.normalize("NFC", ds.name)  # the dataset's name, as prune compares it
        entries += [RunEntry(name, run.name, run) for run in _subdirs(ds)
                    if RUN_NAME.match(run.name)]
    return sorted(entries, key=lambda e: (e.stamp, e.name), reverse=True)


def _subdirs(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    return [p for p in path.iterdir() if p.is_dir() and not p.is_symlink()
            and not p.name.startswith(".")]


def prune(outbox: Path, dataset: str, keep: int, protect: Path) -> list[Path]:
    """Delete all but the newest ``keep`` runs of ``dataset``; ``protect`` always stays."""
    runs = [e for e in list_runs(outbox) if e.dataset == dataset]
    doomed = [e.path for e in runs[keep:] if e.path != protect]
    for path in doomed:
        logger.info("retention: removing old run %s", path)
        # Out of sight first (one rename), then deleted: a kill mid-delete leaves a dot-folder
        # the next render's clean_staging removes, never a half-deleted run on the page.
        hidden = path.with_name(f"{DELETING_PREFIX}{path.name}")
        try:
            os.rename(path, hidden)
        except OSError as exc:
            logger.warning("retention: cannot remove %s: %s", path, exc)
            continue
        shutil.rmtree(hidden, ignore_errors=True)
    return doomed


