"""A song that changed since it was stubbed: replaced (new content under its name) or moved
(its content under a new name, the old name gone). Its stubs follow it.

- Replaced: a stub acewatchd wrote and nobody edited is rewritten from the new tags; a stub the
  user edited is kept, and recorded as a stale review so ``status`` can say the song changed
  after its caption was reviewed.
- Moved (a rename, a move into a subfolder or another dataset; seen as a watchdog move or as a
  rescan where one name vanished and one appeared): each sidecar is renamed with the song, the
  user's edits included, and the old row is marked gone so the song counts once. A sidecar of
  ours moved into another dataset would carry the old dataset's tag, so it is removed and a
  fresh one written. Nothing is overwritten: when the new name already has a sidecar, an edited
  old one stays where it is and a warning says so.

The audio's content hash is the key: the nightly content hash covers the song's sha256 and its
stub texts, so a replaced song retrains the next night.
"""

from __future__ import annotations

import logging
import os
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from acewatchd.config.schema import Config
from acewatchd.ingest.dropdir import locate
from acewatchd.ingest.stubs import KINDS, StubJob, hash_or_none, stub_path
from acewatchd.ingest.validate import forget_rejection
from acewatchd.ledger import events as ledger_events
from acewatchd.ledger import files as ledger_files
from acewatchd.ledger.batch import Writer
from acewatchd.ledger.files import FileRow, StaleReview
from acewatchd.util.files import atomic_write_bytes, sha256_bytes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    kind: Literal["replaced", "moved"]
    old: FileRow  # the row the song had before (for a move: under its old name)


def detect(writer: Writer, cfg: Config, dataset: str, relpath: str, prior: FileRow | None,
           sha: str | None) -> list[Change]:
    """What happened to this song since the ledger last saw it: a move (the same content under
    another name that is no longer on disk), then a replacement of what this name held."""
    if sha is None:
        return []
    changes: list[Change] = []
    if prior is None or prior.sha256 != sha:
        old = _moved_from(writer, cfg, (dataset, relpath), sha)
        if old is not None:
            changes.append(Change("moved", old))
    if prior is not None and prior.sha256 is not None and prior.sha256 != sha:
        changes.append(Change("replaced", prior))
    return changes


def _moved_from(writer: Writer, cfg: Config, key: tuple[str, str],
                sha: str) -> FileRow | None:
    for row in ledger_files.rows_with_sha(writer.ledger.connect(), sha):
        if (row.dataset, row.relpath) == key:
            continue
        if locate(cfg, row.dataset, row.relpath) is None:
            return row  # its old name is gone: this is where it went
        if row.state != "gone":
            return None  # still there under its other name: a copy, not a move
    return None


def apply(writer: Writer, cfg: Config, job: StubJob, changes: list[Change],
          sha: str) -> list[str]:
    """Carry or refresh the stubs before the missing ones are written; returns warnings."""
    warnings: list[str] = []
    for change in changes:
        if change.kind == "moved":
            warnings += [w for kind in KINDS
                         if (w := _move(writer, cfg, change.old, job, kind))]
            warnings += [w for w in [_move_lrc(writer, cfg, change.old, job)] if w]
            with writer.tx() as conn:
                ledger_files.set_file_state(conn, change.old.dataset, change.old.relpath,
                                            "gone")
            # A rejection of the old name (too long, say) is about a name no longer there.
            settle_problems(writer, cfg, change.old.dataset, change.old.relpath, [])
            logger.info("song moved", extra={"from": f"{change.old.dataset}/"
                                                     f"{change.old.relpath}"})
        else:
            for kind in KINDS:
                _refresh(writer, job, kind, change.old.sha256, sha)
            logger.info("song replaced")
    return warnings


def settle_problems(writer: Writer, cfg: Config, dataset: str, relpath: str,
                    notes: list[str]) -> None:
    """The file is ingested: a rejection from while it was still arriving (a copy stalled
    past the settle window) and its warnings are history, in rejected/ and in status. Then
    this pass's own ``notes`` are recorded."""
    if forget_rejection(cfg.paths.rejected / dataset, relpath):
        logger.info("an earlier rejection of this file was removed from rejected/")
    with writer.tx() as conn:
        ledger_events.forget_file_warnings(conn, dataset, relpath)
    for note in notes:
        writer.event("warning", note, dataset, relpath)
        logger.warning("sidecar kept in place", extra={"reason": note})


def _move(writer: Writer, cfg: Config, old: FileRow, job: StubJob, kind: str) -> str:
    record = _stub_record(writer, old, kind)
    src = _old_sidecar(cfg, old, f".{kind}.txt", record.stub_path if record else None)
    dest = stub_path(job.audio, kind)
    if src is None:
        if record is not None and os.path.lexists(dest) and _recorded(writer, job, kind) is None:
            _follow(writer, old, job, kind, dest)  # it came along: a whole folder was moved
            if old.dataset != job.dataset:
                _rewrite_if_ours(writer, job, kind, dest)  # our text named the old tag
        return ""
    ours = record is not None and hash_or_none(src) == record.sha256
    if ours and (old.dataset != job.dataset or os.path.lexists(dest)):
        # An untouched copy of our own text: nothing of the user's is lost by removing it,
        # and the song gets a stub written for where it is now.
        _remove(writer, src, old, kind)
        return ""
    problem = _carry_file(writer, old, job, src, dest)
    if not problem:
        _follow(writer, old, job, kind, dest)
    return problem


def _move_lrc(writer: Writer, cfg: Config, old: FileRow, job: StubJob) -> str:
    """A ``.lrc`` beside the song, under any name ``lyrics.read_lrc`` looks for, is where its
    lyrics came from: it goes along too, under the same kind of name."""
    old_ext = Path(old.relpath).suffix
    names = ((".lrc", f"{job.audio.stem}.lrc"), (".LRC", f"{job.audio.stem}.LRC"),
             (f"{old_ext}.lrc", f"{job.audio.name}.lrc"))
    warnings = []
    for suffix, dest_name in names:
        src = _old_sidecar(cfg, old, suffix, None)
        if src is not None:
            warnings.append(_carry_file(writer, old, job, src, job.audio.with_name(dest_name)))
    return "; ".join(w for w in warnings if w)


def _carry_file(writer: Writer, old: FileRow, job: StubJob, src: Path, dest: Path) -> str:
    """Rename ``src`` to ``dest`` unless something is there; '' or the warning."""
    if os.path.lexists(dest):
        return (f"{src.name} (from this song's old name {old.relpath}) was not moved "
                f"because {dest.name} already exists; both are kept, merge them by hand")
    if not _rename_no_clobber(src, dest):
        return (f"{src.name} (from this song's old name {old.relpath}) could not be "
                f"moved to {dest.name}; it was kept where it is")
    writer.wrote_in(dest.parent)
    writer.wrote_in(src.parent)
    return ""


def _follow(writer: Writer, old: FileRow, job: StubJob, kind: str, dest: Path) -> None:
    """The ledger's record of the stub (what acewatchd wrote, a stale review) follows it."""
    with writer.tx() as conn:
        ledger_files.move_stub(conn, (old.dataset, old.relpath), (job.dataset, job.relpath),
                               kind, str(dest))


def _refresh(writer: Writer, job: StubJob, kind: str, old_sha: str | None, sha: str) -> None:
    path = stub_path(job.audio, kind)
    if not os.path.lexists(path):
        return  # written fresh with the others
    if _rewrite_if_ours(writer, job, kind, path):
        return
    current = hash_or_none(path)
    if current is not None:
        with writer.tx() as conn:
            ledger_files.record_stale_review(conn, StaleReview(
                job.dataset, job.relpath, kind, str(path), current, old_sha, sha, time.time()))


def _rewrite_if_ours(writer: Writer, job: StubJob, kind: str, path: Path) -> bool:
    """Rewrite the stub with the job's text if it is still what acewatchd wrote; False if it
    is the user's. (A save in the instant between the hash and the rename would be lost;
    editors save far less often than that.)"""
    current, recorded = hash_or_none(path), _recorded(writer, job, kind)
    data = job.texts[kind].encode("utf-8")
    digest = sha256_bytes(data)
    if current is None or current not in (recorded, digest):
        return False
    if current != digest:
        atomic_write_bytes(path, data)
    if recorded != digest:  # also after a kill -9 between the write and the ledger commit
        with writer.tx() as conn:
            ledger_files.record_stub(conn, job.dataset, job.relpath, kind, str(path), digest)
    return True


def _stub_record(writer: Writer, row: FileRow, kind: str) -> ledger_files.StubRow | None:
    return ledger_files.stub_record(writer.ledger.connect(), row.dataset, row.relpath, kind)


def _recorded(writer: Writer, job: StubJob, kind: str) -> str | None:
    return ledger_files.stub_hash(writer.ledger.connect(), job.dataset, job.relpath, kind)


def _old_sidecar(cfg: Config, old: FileRow, suffix: str, recorded: str | None) -> Path | None:
    """The old name's sidecar on disk: where acewatchd wrote it, else beside where the song
    was (its folder listed, since the name on disk may be NFD where the ledger key is NFC)."""
    if recorded and os.path.lexists(recorded):
        return Path(recorded)
    rel = Path(old.relpath)
    folder = locate(cfg, old.dataset, str(rel.parent))  # "." for a song at the top
    if folder is None:
        return None
    wanted = unicodedata.normalize("NFC", f"{rel.stem}{suffix}")
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    match = next((n for n in names if unicodedata.normalize("NFC", n) == wanted), None)
    return None if match is None else folder / match


def _rename_no_clobber(src: Path, dest: Path) -> bool:
    """link + unlink never replaces an existing name (os.rename would); on a file system
    without hard links (exFAT, some network shares) rename after a last look."""
    try:
        os.link(src, dest, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError:
        if os.path.lexists(dest):
            return False
        try:
            os.rename(src, dest)
        except OSError:
            return False
        return True
    try:
        os.unlink(src)
    except FileNotFoundError:
        pass
    return True


def _remove(writer: Writer, path: Path, old: FileRow, kind: str) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    writer.wrote_in(path.parent)
    with writer.tx() as conn:
        ledger_files.forget_stub(conn, old.dataset, old.relpath, kind)
