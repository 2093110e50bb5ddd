"""Free space on the disks acewatchd writes to: asked by the daemon after a full disk, and by
`status`, which warns before a disk fills (a full disk cannot be recorded in the ledger that
lives on it, so status measures it itself)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Below this a night's work may not fit: a LoRA checkpoint is 100-300 MB, a render run tens of
# MB, and the ledger's WAL needs room to commit at all.
LOW_BYTES = 1 << 30


def nearest_existing(path: Path) -> Path | None:
    """``path`` or its nearest parent that exists (a folder not made yet answers by it)."""
    for folder in (path, *path.parents):
        if os.path.lexists(folder):
            return folder
    return None


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem (None: unknown).
    The nearest folder that exists answers for a path not made yet."""
    folder = nearest_existing(path)
    try:
        st = os.statvfs(folder) if folder is not None else None
    except OSError:
        return None
    return st.f_bavail * st.f_frsize if st is not None else None


@dataclass(frozen=True)
class Disk:
    """One filesystem and the folders of acewatchd's that it holds."""

    folders: tuple[str, ...]  # what each is, e.g. "the outbox (/Users/me/acewatchd/outbox)"
    free: int


def low_disks(folders: dict[str, Path], low: int = LOW_BYTES) -> list[Disk]:
    """The filesystems holding ``folders`` (description -> path) with less than ``low`` bytes
    free, each once with every folder it holds."""
    by_device: dict[int, tuple[list[str], int]] = {}
    for what, path in folders.items():
        folder = nearest_existing(path)
        try:
            device = os.stat(folder).st_dev if folder is not None else None
        except OSError:
            continue
        free = free_bytes(folder) if folder is not None else None
        if device is not None and free is not None:
            by_device.setdefault(device, ([], free))[0].append(f"{what} ({path})")
    return [Disk(tuple(names), free) for names, free in by_device.values() if free < low]


def size_text(n: int) -> str:
    """A byte count as a person reads it: 812 MB, 3.4 GB."""
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    return f"{n / (1 << 20):.0f} MB"
