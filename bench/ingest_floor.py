"""The durable floor of bulk ingest: the least work any design keeping acewatchd's rules does.

Per song: one tag parse (mutagen), one sha256 of the file, and two atomic, fsync'd sidecar
writes (temp file, fsync, link under its name, never replacing); per batch of songs, each
folder written fsync'd once (util.files.barrier, which on macOS adds one F_FULLFSYNC). No
ledger, no logging, no settle polls, no watcher, no captions: one thread, in a plain loop.
It uses the same write primitives as the daemon (util.files), so the ratio measures
everything the daemon does around them.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import mutagen

from acewatchd.util.files import barrier, create_temp, link_temp

CAPTION = "kim kyung ho, Korean power rock ballad, 1990s, 노래 title, 가수\n".encode()
LYRICS = b"[Instrumental]\n"


def durable_floor(songs: list[Path], root: Path, datasets: tuple[str, ...],
                  batch: int) -> float:
    """Seconds for the floor's work over ``songs``, spread over ``datasets`` folders (fresh,
    under ``root``) as the bench spreads its drop."""
    folders = [root / ds for ds in datasets]
    for folder in folders:
        folder.mkdir(parents=True)
    t0 = time.perf_counter()
    for start in range(0, len(songs), batch):
        written: set[Path] = set()
        for i in range(start, min(start + batch, len(songs))):
            folder = folders[i % len(folders)]
            _song(songs[i], folder)
            written.add(folder)
        barrier(written)
    return time.perf_counter() - t0


def _song(song: Path, folder: Path) -> None:
    audio = mutagen.File(song)
    _ = (audio.info.length, audio.tags.getall("TIT2"), audio.tags.getall("USLT"))
    digest = hashlib.sha256()
    with open(song, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    for kind, data in (("caption", CAPTION), ("lyrics", LYRICS)):
        _durable_write(folder / f"{song.stem}.{kind}.txt", data)


def _durable_write(path: Path, data: bytes) -> None:
    fd, tmp = create_temp(path.parent, data)
    try:
        os.fsync(fd)
        link_temp(fd, tmp, path)
    finally:
        os.close(fd)
        if tmp:
            os.unlink(tmp)
