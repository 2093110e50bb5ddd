"""Naming rules of the drop folder: what is never ingested, how ledger keys (NFC) map back
to names on disk (macOS gives NFD), and walking drop/<dataset>/ without following links."""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

from acewatchd.config.schema import Config
from acewatchd.ingest.stubs import SIDECAR_SUFFIXES
from acewatchd.util.files import is_own_temp

PARTIAL_SUFFIXES = (".part", ".crdownload", ".download", ".partial", ".tmp")
STALE_TEMP_SECONDS = 120


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def ignored_name(name: str) -> bool:
    """Names never ingested: hidden files (incl. .DS_Store and our temps), partial downloads,
    sidecars (ours and the user's)."""
    lower = name.lower()
    return (name.startswith(".") or is_own_temp(name) or lower.endswith(PARTIAL_SUFFIXES)
            or lower.endswith(SIDECAR_SUFFIXES))


def locate(cfg: Config, dataset: str, relpath: str) -> Path | None:
    """The file on disk for a ledger (dataset, NFC relpath), whatever normal form its name has."""
    direct = cfg.paths.drop / dataset / relpath
    if os.path.lexists(direct):
        return direct
    here = cfg.paths.drop
    for part in [dataset, *Path(relpath).parts]:
        try:
            names = os.listdir(here)
        except OSError:
            return None
        match = next((n for n in names if nfc(n) == part), None)
        if match is None:
            return None
        here = here / match
    return here


def walk_drop(drop: Path, stale_after: float = STALE_TEMP_SECONDS,
              on_skip: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Every file under drop/<dataset>/, never entering hidden or symlinked folders (each
    symlinked one is reported to ``on_skip``); stale temp files of ours (left by a kill -9
    mid-write) are removed on the way. An unreadable folder is skipped, not fatal."""
    for root, dirs, files in os.walk(drop, followlinks=False):
        keep = []
        for d in dirs:
            if d.startswith("."):
                continue
            if os.path.islink(os.path.join(root, d)):
                if on_skip is not None:
                    on_skip(Path(root) / d, "it is a symbolic link to a folder, never followed")
                continue
            keep.append(d)
        dirs[:] = keep
        for name in files:
            path = Path(root) / name
            if is_own_temp(name):
                _remove_stale_temp(path, stale_after)
                continue
            yield path


def _remove_stale_temp(path: Path, stale_after: float) -> None:
    try:
        if time.time() - os.lstat(path).st_mtime >= stale_after:
            path.unlink()
    except OSError:
        pass
