"""The per-file pipeline: seen -> settled -> valid | rejected -> stubbed, recorded in the ledger.

Every step checks its artifact before doing work, so duplicate events, rescans and a restart
after kill -9 are no-ops: a file whose (size, mtime_ns, inode) matches a finished ledger row is
skipped without reading it; stubs are written only where none exists. Ledger paths are
NFC-normalised (macOS hands out NFD names); the files on disk keep whatever form they have, and
``dropdir.locate()`` maps a ledger row back to its file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import structlog

from acewatchd.config.schema import Config
from acewatchd.ingest.dropdir import STALE_TEMP_SECONDS, ignored_name, locate, nfc, walk_drop
from acewatchd.ingest.settle import Signature, signature
from acewatchd.ingest.stubs import (
    StubJob,
    caption_text,
    lyrics_text,
    write_stubs_many,
)
from acewatchd.ingest.validate import UNREADABLE, check_link, reject, validate
from acewatchd.ledger import files as ledger_files
from acewatchd.ledger.batch import Writer
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.files import FileRow, FileState
from acewatchd.util.files import sha256_file

logger = logging.getLogger(__name__)

DONE_STATES: tuple[FileState, ...] = ("stubbed", "rejected")

__all__ = ["Ingestor", "ignored_name", "locate", "nfc", "walk_drop"]


class Ingestor:
    """Stateless over the ledger: one instance per daemon or scan, used from one thread."""

    def __init__(self, ledger: Ledger, config: Callable[[], Config]) -> None:
        self.ledger = ledger
        self.config = config
        self.writer = Writer(ledger)

    # ---- naming

    def split(self, path: Path) -> tuple[str, str] | None:
        """(dataset, NFC relpath) for an audio candidate under drop/<dataset>/, else None."""
        cfg = self.config()
        try:
            rel = path.relative_to(cfg.paths.drop)
        except ValueError:
            return None
        parts = rel.parts
        if len(parts) < 2 or any(p.startswith(".") for p in parts) or ignored_name(parts[-1]):
            return None
        if path.suffix.lower().lstrip(".") not in cfg.watch.extensions:
            return None
        return nfc(parts[0]), nfc(str(Path(*parts[1:])))

    # ---- deciding whether a file needs work

    def needs_work(self, path: Path) -> bool:
        key = self.split(path)
        if key is None:
            return False
        try:
            sig = signature(path)
        except OSError:
            return False
        return not self._done(self._row(*key), sig, path)

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
        """Validate each file, then write all their stubs in one go (one concurrent fsync
        round instead of two fsyncs per song), then record them stubbed. Call inside
        ``self.writer.batch()`` to make the ledger writes one transaction as well."""
        states: list[str] = []
        jobs: list[tuple[int, StubJob, Signature, str | None, float]] = []
        for index, path in enumerate(paths):
            result = self._prepare(path)
            states.append(result if isinstance(result, str) else "stubbed")
            if not isinstance(result, str):
                jobs.append((index, *result))
        outcomes = write_stubs_many(self.writer, [job for _, job, *_ in jobs])
        for (_index, job, sig, sha, duration), outcome in zip(jobs, outcomes, strict=True):
            with structlog.contextvars.bound_contextvars(dataset=job.dataset, file=job.relpath,
                                                         sha=(sha or "")[:12]):
                self._upsert(job.dataset, job.relpath, state="stubbed", sig=sig, sha=sha,
                             duration=duration)
                logger.info("stubbed", extra={"stubs": outcome, "duration": round(duration, 2)})
        return states

    def _prepare(self, path: Path) -> str | tuple[StubJob, Signature, str | None, float]:
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

    def _check(self, path: Path, dataset: str, relpath: str) -> str | tuple[
            StubJob, Signature, str | None, float]:
        sig = signature(path)
        row = self._row(dataset, relpath)
        if row is not None and self._done(row, sig, path):
            return row.state
        link_problem = check_link(path, self.config().paths.drop / path.relative_to(
            self.config().paths.drop).parts[0])
        if link_problem:
            return self._reject(path, dataset, relpath, sig, None, link_problem, copy=False)
        try:
            sha: str | None = sha256_file(path)
        except PermissionError:
            sha = None
        with structlog.contextvars.bound_contextvars(sha=(sha or "")[:12]):
            self._upsert(dataset, relpath, state="settled", sig=sig, sha=sha)
            return self._validate(path, dataset, relpath, sig, sha)

    def _validate(self, path: Path, dataset: str, relpath: str, sig: Signature,
                  sha: str | None) -> str | tuple[StubJob, Signature, str | None, float]:
        cfg = self.config()
        verdict = validate(path, cfg.watch)
        if verdict.info is None:
            readable = UNREADABLE not in verdict.reason
            return self._reject(path, dataset, relpath, sig, sha, verdict.reason, copy=readable)
        self._upsert(dataset, relpath, state="valid", sig=sig, sha=sha,
                     duration=verdict.info.duration)
        ds = cfg.dataset(dataset)
        texts = {"caption": caption_text(verdict.info, ds, path.stem),
                 "lyrics": lyrics_text(verdict.info, ds)}
        return StubJob(dataset, relpath, path, texts), sig, sha, verdict.info.duration

    def _reject(self, path: Path, dataset: str, relpath: str, sig: Signature, sha: str | None,
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
        for path in walk_drop(cfg.paths.drop, stale_after):
            key = self.split(path)
            if key is None:
                continue
            seen.add(key)
            if self.needs_work(path):
                todo.append(path)
        self._mark_missing_gone(seen)
        return todo

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
