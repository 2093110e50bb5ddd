"""The per-file pipeline: seen -> settled -> valid | rejected -> stubbed, recorded in the ledger.

Every step checks its artifact before doing work, so duplicate events, rescans and a restart
after kill -9 are no-ops: a file whose (size, mtime_ns, inode) matches a finished ledger row is
skipped without reading it; stubs are written only where none exists, after a replaced or
moved song's stubs were refreshed or carried along (``ingest.songchange``). Ledger paths are
NFC-normalised (macOS hands out NFD names); the files on disk keep whatever form they have, and
``dropdir.locate()`` maps a ledger row back to its file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

from acewatchd.config.schema import Config
from acewatchd.ingest import songchange
from acewatchd.ingest.dropdir import STALE_TEMP_SECONDS, ignored_name, locate, nfc, walk_drop
from acewatchd.ingest.formats import advice_for, listed, skip_sentence
from acewatchd.ingest.settle import Signature, signature, signature_of
from acewatchd.ingest.stubs import (
    KINDS,
    SAID_INSTRUMENTAL,
    StubJob,
    StubPipe,
    caption_text,
    lyrics_stub,
    stub_path,
)
from acewatchd.ingest.validate import (
    COPY_LIMIT,
    NAME_MAX,
    UNREADABLE,
    check_link,
    reject,
    unreadable,
    validate_open,
)
from acewatchd.ingest.writepace import Pace
from acewatchd.ledger import files as ledger_files
from acewatchd.ledger.batch import Writer
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.files import FileRow, FileState
from acewatchd.util.files import is_disk_full, open_regular, sha256_stream

logger = logging.getLogger(__name__)

DONE_STATES: tuple[FileState, ...] = ("stubbed", "rejected")

__all__ = ["Ingestor", "ignored_name", "locate", "nfc", "walk_drop"]


@dataclass(frozen=True)
class _Ready:
    """A valid file whose stubs are to be written, and what changed since the ledger saw it."""

    job: StubJob
    sig: Signature
    sha: str | None
    duration: float
    changes: list[songchange.Change]
    note: str | None = None  # the stubbed row's reason (stubs.SAID_INSTRUMENTAL)


class Ingestor:
    """Stateless over the ledger: one instance per daemon or scan, used from one thread."""

    def __init__(self, ledger: Ledger, config: Callable[[], Config],
                 stop: threading.Event | None = None) -> None:
        self.ledger = ledger
        self.config = config
        self.stop = stop  # set: a hash in progress is abandoned (util.files.Abandoned)
        self.writer = Writer(ledger)
        self.pace = Pace()  # how long this drop folder's stub writes take (ingest.writepace)

    # ---- naming

    def split(self, path: Path) -> tuple[str, str] | None:
        """(dataset, NFC relpath) for an audio candidate under drop/<dataset>/, else None."""
        if not listed(path, self.config().watch.extensions):
            return None
        return self._key(path)

    def _key(self, path: Path) -> tuple[str, str] | None:
        """(dataset, NFC relpath) for any file under drop/<dataset>/ that may be ingested."""
        try:
            rel = path.relative_to(self.config().paths.drop)
        except ValueError:
            return None
        parts = rel.parts
        if len(parts) < 2 or any(p.startswith(".") for p in parts) or ignored_name(parts[-1]):
            return None
        return visible(nfc(parts[0])), visible(nfc(str(Path(*parts[1:]))))

    # ---- deciding whether a file needs work

    def needs_work(self, path: Path) -> bool:
        key = self.split(path)
        if key is None:
            self._skip(path)  # a file event for an audio file not taken: say so now
            return False
        try:
            sig = signature(path)
        except OSError:
            return False
        try:
            return not self._done(self._row(*key), sig, path)
        except Exception:  # noqa: BLE001 - one odd file never stops a scan: let it be tried
            logger.exception("cannot tell whether this file needs work",
                             extra={"dataset": key[0], "file": key[1]})
            return True

    def _done(self, row: FileRow | None, sig: Signature, path: Path) -> bool:
        if row is None or row.state not in DONE_STATES:
            return False
        if row.signature != sig:
            return False
        reason = row.reason or ""
        # chmod does not change the signature: retry an unreadable file once it is readable.
        return not (UNREADABLE in reason and os.access(path, os.R_OK))

    def mark_seen(self, paths: list[Path]) -> None:
        with self.writer.batch():
            for path in paths:
                key = self.split(path)
                if key is not None:
                    self._upsert(*key, state="seen")

    def mark_gone(self, path: Path) -> None:
        key = self.split(path)
        if key is not None and self._row(*key) is not None:
            logger.info("file vanished before it settled", extra={"dataset": key[0],
                                                                  "file": key[1]})
            self._set_state(*key, "gone")

    # ---- the pipeline for settled files

    def process(self, path: Path) -> str:
        """Run one settled file to its end state; returns it ('' if not ours to ingest)."""
        return self.process_many([path])[0]

    def process_many(self, paths: list[Path]) -> list[str]:
        """Validate each file and write its stubs, then record them stubbed. A song's stubs
        are written (created and fsync'd on a few threads) while the next songs are parsed
        and hashed, and linked once the batch is prepared. Call inside
        ``self.writer.batch()`` to make the ledger writes one transaction as well."""
        states: list[str] = []
        ready: list[_Ready] = []
        slot: dict[int, int] = {}  # id(ready) -> its index in the pipe's outcomes
        with StubPipe(self.writer, threads=len(paths) > 1, pace=self.pace) as pipe:
            changed: list[_Ready] = []
            for path in paths:
                result = self._prepare(path)
                states.append(result if isinstance(result, str) else "stubbed")
                if isinstance(result, str):
                    continue
                ready.append(result)
                if result.changes:
                    changed.append(result)  # its stubs may be carried: after the others
                else:
                    slot[id(result)] = pipe.submit(result.job)
            # A moved or replaced song's stubs are carried or refreshed before any stub of
            # the batch is linked, so that only the ones still missing are written.
            warnings = {id(r): self._carry(r) for r in changed}
            slot.update((id(r), pipe.submit(r.job)) for r in changed)
            outcomes = pipe.finish()
        for r in ready:
            job = r.job
            with structlog.contextvars.bound_contextvars(dataset=job.dataset, file=job.relpath,
                                                         sha=(r.sha or "")[:12]):
                self._upsert(job.dataset, job.relpath, state="stubbed", sig=r.sig, sha=r.sha,
                             duration=r.duration, reason=r.note)
                songchange.settle_problems(self.writer, self.config(), job.dataset,
                                           job.relpath, warnings.get(id(r), []))
                logger.info("stubbed", extra={"stubs": outcomes[slot[id(r)]],
                                              "duration": round(r.duration, 2)})
        return states

    def _carry(self, ready: _Ready) -> list[str]:
        if not ready.changes or ready.sha is None:
            return []
        with structlog.contextvars.bound_contextvars(dataset=ready.job.dataset,
                                                     file=ready.job.relpath):
            return songchange.apply(self.writer, self.config(), ready.job, ready.changes,
                                    ready.sha)

    def _prepare(self, path: Path) -> str | _Ready:
        key = self.split(path)
        if key is None:
            return ""
        dataset, relpath = key
        with structlog.contextvars.bound_contextvars(dataset=dataset, file=relpath):
            try:
                return self._check(path, dataset, relpath)
            except FileNotFoundError:
                self._set_state(dataset, relpath, "gone")
                return "gone"
            except OSError as exc:  # one bad file never stops the pass for the others
                if is_disk_full(exc):
                    raise  # the disk's problem, not the file's: the batch waits for space
                return self._reject(path, dataset, relpath, None, None,
                                    f"it {UNREADABLE} ({exc.strerror or exc})", copy=False)

    def _check(self, path: Path, dataset: str, relpath: str) -> str | _Ready:
        st = os.lstat(path)
        sig = signature_of(st)
        row = self._row(dataset, relpath)
        if row is not None and self._done(row, sig, path):
            return row.state
        folder = self.config().paths.drop / path.relative_to(self.config().paths.drop).parts[0]
        problem = check_link(path, folder, st) or _name_problem(path, folder)
        if problem:
            return self._reject(path, dataset, relpath, sig, None, problem, copy=False)
        if sig[0] > COPY_LIMIT:
            return self._reject(path, dataset, relpath, sig, None,
                                f"it is {sig[0] / 2**30:.1f} GB, larger than the "
                                f"{COPY_LIMIT / 2**30:g} GB acewatchd takes", copy=False)
        # One open serves the hash, the sniff and the tags (each used to open it again).
        try:
            fh = os.fdopen(open_regular(path), "rb")
        except PermissionError as exc:
            return self._reject(path, dataset, relpath, sig, None, unreadable(exc).reason,
                                copy=False)
        with fh:
            sha = sha256_stream(fh, stop=self.stop, name=path)
            with structlog.contextvars.bound_contextvars(sha=sha[:12]):
                # Recorded now, not only once stubbed: a copy of this song later in the same
                # batch finds this row by its hash and is not taken for this one moved.
                self._upsert(dataset, relpath, state="settled", sig=sig, sha=sha)
                return self._validate(path, fh, dataset, relpath, sig, sha, row)

    def _validate(self, path: Path, fh: BinaryIO, dataset: str, relpath: str, sig: Signature,
                  sha: str, prior: FileRow | None) -> str | _Ready:
        cfg = self.config()
        verdict = validate_open(path, fh, cfg.watch)
        if verdict.info is None:
            readable = UNREADABLE not in verdict.reason
            return self._reject(path, dataset, relpath, sig, sha, verdict.reason, copy=readable)
        ds = cfg.dataset(dataset)
        lyrics, said = lyrics_stub(verdict.info, ds)
        texts = {"caption": caption_text(verdict.info, ds, path.stem), "lyrics": lyrics}
        changes = songchange.detect(self.writer, cfg, dataset, relpath, prior, sha)
        note = SAID_INSTRUMENTAL if said else None
        return _Ready(StubJob(dataset, relpath, path, texts), sig, sha, verdict.info.duration,
                      changes, note)

    def _reject(self, path: Path, dataset: str, relpath: str, sig: Signature | None,
                sha: str | None,
                reason: str, *, copy: bool) -> str:
        cfg = self.config()
        reason_file = reject(path, cfg.paths.rejected / dataset, relpath, reason, copy=copy)
        sentence = reason_file.read_text(encoding="utf-8").strip()
        self._upsert(dataset, relpath, state="rejected", sig=sig, sha=sha, reason=sentence)
        self.writer.event("warning", sentence, dataset, relpath)
        logger.warning("rejected", extra={"reason": sentence})
        return "rejected"

    # ---- the reconciliation scan

    def scan(self, startup: bool = False) -> list[Path]:
        """Walk drop/: files that need work (to be settled), and mark vanished rows gone.
        At start-up every temp file of ours is a leftover (we hold the instance lock)."""
        cfg = self.config()
        seen: set[tuple[str, str]] = set()
        todo: list[Path] = []
        stale_after = 0.0 if startup else STALE_TEMP_SECONDS
        for path in walk_drop(cfg.paths.drop, stale_after, on_skip=_skipped_folder):
            key = self.split(path)
            if key is None:
                skipped = self._skip(path)
                if skipped is not None:
                    seen.add(skipped)
                continue
            seen.add(key)
            if self.needs_work(path):
                todo.append(path)
        self._mark_missing_gone(seen)
        return todo

    def _skip(self, path: Path) -> tuple[str, str] | None:
        """An audio file whose extension is not taken is recorded as skipped, with why and
        the fix (once: a rescan finding the same reason writes nothing), so that `status`
        lists it instead of it vanishing in silence. Other names (covers, cue sheets) pass."""
        key = self._key(path)
        advice = advice_for(path) if key is not None else None
        if key is None or advice is None or self._converted(path):
            return None
        sentence = skip_sentence(Path(key[1]).name, advice)
        row = self._row(*key)
        if row is None or row.state != "skipped" or row.reason != sentence:
            self._upsert(*key, state="skipped", reason=sentence)
            logger.warning("skipped", extra={"dataset": key[0], "file": key[1],
                                             "reason": sentence})
        return key

    def _converted(self, path: Path) -> bool:
        """The user followed the advice and kept the original: a song of the same stem with
        a taken extension lies beside it, so the original is no longer worth a mention."""
        return any(path.with_name(f"{path.stem}.{ext}").exists()
                   for ext in self.config().watch.extensions if f".{ext}" != path.suffix)

    def _mark_missing_gone(self, present: set[tuple[str, str]]) -> None:
        missing = ledger_files.missing_files(self.ledger.connect(), present)
        if missing:  # no transaction (and no fsync) for a scan that found nothing gone
            with self.writer.tx() as conn:
                ledger_files.mark_gone(conn, missing)

    # ---- ledger rows (ledger/files.py), written in the writer's batch when one is open

    def _row(self, dataset: str, relpath: str) -> FileRow | None:
        return ledger_files.file_row(self.ledger.connect(), dataset, relpath)

    def _set_state(self, dataset: str, relpath: str, state: FileState) -> None:
        with self.writer.tx() as conn:
            ledger_files.set_file_state(conn, dataset, relpath, state)

    def _upsert(self, dataset: str, relpath: str, *, state: FileState,
                sig: Signature | None = None, sha: str | None = None, reason: str | None = None,
                duration: float | None = None) -> None:
        with self.writer.tx() as conn:
            ledger_files.upsert_file(conn, dataset, relpath, state=state, sig=sig, sha=sha,
                                     reason=reason, duration=duration)


def visible(text: str) -> str:
    """``text`` itself, or, for a name that is not valid UTF-8 (os.fsdecode gives it lone
    surrogates, which SQLite and the logs cannot take), its bytes with the bad ones shown as
    ``\\xb1``: a stable, printable ledger key."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def _name_problem(path: Path, folder: Path) -> str:
    """Why this file's name or place cannot be ingested, or ''."""
    if visible(str(path)) != str(path):
        return ("its name is not valid UTF-8 (an archive made with another encoding, such as "
                "CP949, gives such names); rename it")
    if os.path.islink(folder):
        return "its dataset folder is a symbolic link, which is never followed"
    # A song right inside the (unlinked) folder cannot lie under a link: no realpath walk,
    # which costs an lstat per component of the path, for the common case.
    if path.parent != folder and not Path(os.path.realpath(path.parent)).is_relative_to(
            os.path.realpath(folder)):
        return "it lies under a symbolic link to a folder outside its drop folder, never followed"
    for kind in KINDS:
        if len(os.fsencode(stub_path(path, kind).name)) > NAME_MAX:
            return (f"its name is too long for its {kind} stub ({stub_path(path, kind).name!r} "
                    f"would exceed {NAME_MAX} bytes); shorten it")
    return ""


def _skipped_folder(path: Path, reason: str) -> None:
    logger.warning("folder skipped: %s", reason, extra={"file": visible(str(path))})
