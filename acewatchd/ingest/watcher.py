"""watchdog observer on drop/ (recursive) and on config.toml's folder; events are only hints.

Handlers put (kind, path) on a queue and return: they never raise and never touch the ledger,
so a burst of events cannot stall or kill watchdog's thread. The daemon's main loop decides what
an event means. Created, moved-in, modified and closed events are treated alike ("look at this
path"); a directory appearing (a dataset folder copied or moved in) asks for a scan of it,
because inotify reports only the folder, not the files that came with it.

Supervision: ``healthy()`` is false when the observer thread died or the drop root was removed
or replaced (different inode); the daemon then rebuilds the observer and rescans.
"""

from __future__ import annotations

import logging
import os
import queue
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from acewatchd.ingest.dropdir import ignored_name

logger = logging.getLogger(__name__)

Hint = tuple[str, Path]  # ("file" | "dir" | "config" | "rescan", path)
_FILE_EVENTS = (FileCreatedEvent, FileMovedEvent, FileModifiedEvent, FileClosedEvent)
_DIR_EVENTS = (DirCreatedEvent, DirMovedEvent)
# inotify (Linux) says when a writer closes a file: "created" starts the settle watch and
# "closed" says the copy (or an in-place rewrite) is done, so "modified" adds nothing, and it
# comes once per write() call: a 40 MB song copied in 128 KB writes is 300 events, each
# through watchdog's threads and competing with ingest for the GIL (a 1,000-song drop took a
# fifth longer with them). FSEvents and kqueue (macOS) have no "closed": there "modified" is
# what tells of a file rewritten in place.
_CLOSES = getattr(Observer, "__name__", "").startswith("Inotify")
_USED_FILE_EVENTS = tuple(e for e in _FILE_EVENTS if not (_CLOSES and e is FileModifiedEvent))
# Only what the handler uses is asked of inotify: without a filter every open/close-nowrite/
# delete (our own reads of each song, our temp files) and a DirModifiedEvent per create went
# through watchdog's threads, about 1 s of CPU competing with ingest in a 1,000-file drop.
_DROP_FILTER: list[type[FileSystemEvent]] = [*_USED_FILE_EVENTS, *_DIR_EVENTS]
# config.toml: only writes, renames and deletes. Every read of it (`status`, an editor, our own
# reload) is an open/close-nowrite event too, and each hint restarts the reload's quiet period:
# a file read every few tenths of a second was never reloaded at all.
_CONFIG_FILTER: list[type[FileSystemEvent]] = [*_FILE_EVENTS, FileDeletedEvent]


def _never_ingested(name: str) -> bool:
    """``ignored_name``, or "#<inode>": Linux's name, in the "closed" event, for an unnamed
    (O_TMPFILE) file such as each stub of ours while it is written."""
    return ignored_name(name) or (name.startswith("#") and name[1:].isdigit())


def _target(event: FileSystemEvent) -> str:
    dest = getattr(event, "dest_path", "")
    raw = dest or event.src_path
    return raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw


class _DropHandler(FileSystemEventHandler):
    def __init__(self, out: queue.Queue[Hint]) -> None:
        self.out = out

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            if isinstance(event, _DIR_EVENTS):
                self.out.put(("dir", Path(_target(event))))
            elif isinstance(event, _FILE_EVENTS):
                target = _target(event)
                # Our own stubs and temp files (and other names never ingested) would only be
                # looked at and dropped by the main loop: dropped here, off its queue.
                if not _never_ingested(os.path.basename(target)):
                    self.out.put(("file", Path(target)))
        except Exception:  # noqa: BLE001 - a raising handler kills watchdog's thread
            pass


class _ConfigHandler(FileSystemEventHandler):
    def __init__(self, out: queue.Queue[Hint], config_path: Path) -> None:
        self.out = out
        self.config_path = config_path

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            paths = {event.src_path, getattr(event, "dest_path", "")}
            if any(p and os.path.basename(str(p)) == self.config_path.name for p in paths):
                self.out.put(("config", self.config_path))
        except Exception:  # noqa: BLE001 - same: never raise into watchdog
            pass


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Watcher:
    def __init__(self, drop: Path, config_path: Path | None, out: queue.Queue[Hint]) -> None:
        self.drop = drop
        self.config_path = config_path
        self.out = out
        self._observer: BaseObserver | None = None
        self._drop_id: tuple[int, int] | None = None

    def start(self) -> None:
        observer = Observer()
        self._drop_id = _identity(self.drop)
        if self._drop_id is not None:
            observer.schedule(_DropHandler(self.out), str(self.drop), recursive=True,
                              event_filter=_DROP_FILTER)
        if self.config_path is not None and self.config_path.parent.is_dir():
            observer.schedule(_ConfigHandler(self.out, self.config_path),
                              str(self.config_path.parent), recursive=False,
                              event_filter=_CONFIG_FILTER)
        observer.daemon = True
        observer.start()
        self._observer = observer
        logger.info("watching", extra={"drop": str(self.drop), "live": self._drop_id is not None})

    def stop(self, timeout: float = 5.0) -> None:
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.stop()
        observer.join(timeout)
        if observer.is_alive():
            logger.warning("watchdog observer did not stop in time")

    def healthy(self) -> bool:
        """False when the observer must be rebuilt (thread died, drop root replaced/appeared)."""
        if self._observer is None or not self._observer.is_alive():
            return False
        return _identity(self.drop) == self._drop_id

    def rebuild(self, drop: Path | None = None) -> None:
        self.stop()
        if drop is not None:
            self.drop = drop
        self.start()
