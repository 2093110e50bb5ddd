"""`acewatchd export`: copy one adapter of a training run out of ACE-Step's folder.

The copy holds what ACE-Step's `/load_lora` (and PEFT) needs: the adapter's config and its
weights (``*.safetensors``), not the trainer's resume state. It is written into a hidden
temporary folder beside the destination, fsync'd, and renamed into place, so a reader never
sees half an adapter; an existing folder is never overwritten (a ``-2``, ``-3`` … suffix is
added instead).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from acewatchd.acestep import layout
from acewatchd.config.schema import Config
from acewatchd.errors import AcewatchdError
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.runs import Job, RunRow, latest_per_run
from acewatchd.outbox import folders as outbox
from acewatchd.util.files import fsync_dir

logger = logging.getLogger(__name__)

_WEIGHTS = ".safetensors"
_MAX_FILE = 8 * 2**30          # an adapter is megabytes; anything this big is not one


class ExportError(AcewatchdError):
    """The adapter asked for cannot be exported (the message says why and what exists)."""


@dataclass(frozen=True)
class Exported:
    folder: Path
    run_name: str
    checkpoint: str        # "final" or the checkpoint folder name
    epoch: int | None
    files: list[str]


def export(cfg: Config, ledger: Ledger, dataset: str, *, which: str = "",
           run_name: str = "", to: Path | None = None) -> Exported:
    """Copy ``dataset``'s adapter ``which`` ("final", an epoch, "closest"; "" = the final
    adapter, else the newest checkpoint) of its newest run (or ``run_name``) into ``to``
    (default: the outbox's exports/ folder)."""
    run = _training_run(ledger, dataset, run_name)
    assert run.run_name
    folder = layout.run_dir(cfg.acestep.root, dataset, run.run_name)
    if which == "closest":
        which = closest_checkpoint(cfg, dataset, run.run_name)
    name, epoch, adapter = _choose(folder, which, run.run_name)
    files = _adapter_files(adapter)
    dest_dir = Path(to) if to is not None else cfg.paths.outbox / "exports"
    dest_dir.mkdir(parents=True, exist_ok=True)
    label = "final" if epoch is None else f"e{epoch}"
    # The user's own name (a checked dataset name: no '/', no leading dot) reads best.
    target = _copy_atomically(files, dest_dir, f"{dataset.replace(' ', '_')}-{label}-lora")
    logger.info("exported %s %s %s to %s", dataset, run.run_name, name, target)
    return Exported(target, run.run_name, name, epoch, [f.name for f in files])


def _training_run(ledger: Ledger, dataset: str, run_name: str) -> RunRow:
    rows = latest_per_run(ledger, dataset, Job.TRAIN)
    if not rows:
        raise ExportError(f"{dataset!r} has no training run yet (see `acewatchd status`)")
    if not run_name:
        return rows[0]
    for row in rows:
        if row.run_name == run_name:
            return row
    names = ", ".join(str(r.run_name) for r in rows[:5])
    raise ExportError(f"{dataset!r} has no training run {run_name!r}; newest: {names}")


def _choose(folder: Path, which: str, run_name: str) -> tuple[str, int | None, Path]:
    saved = layout.checkpoints(folder)
    final = layout.final_adapter(folder)
    epochs = ", ".join(str(c.epoch) for c in saved) or "none"
    if which in ("", "final"):
        if final is not None:
            return layout.FINAL, None, final
        if which == "final" or not saved:
            raise ExportError(f"run {run_name} has no final adapter yet (it is unfinished); "
                              f"saved checkpoints: {epochs}; use --checkpoint N")
        which = str(saved[-1].epoch)
    try:
        epoch = int(which)
    except ValueError:
        raise ExportError(f"--checkpoint {which!r}: use an epoch number, final or closest"
                          ) from None
    for ck in saved:
        if ck.epoch == epoch:
            adapter = layout.adapter_in(ck.folder)
            if adapter is None:
                raise ExportError(f"checkpoint {ck.name} of run {run_name} holds no adapter "
                                  f"({layout.ADAPTER_CONFIG} missing)")
            return ck.name, epoch, adapter
    raise ExportError(f"run {run_name} has no checkpoint at epoch {epoch}; saved: {epochs}")


def closest_checkpoint(cfg: Config, dataset: str, run_name: str) -> str:
    """The epoch (or "final") the newest analysis of this run ranks closest to the songs."""
    for entry in outbox.list_runs(cfg.paths.outbox):      # newest first
        try:
            report = json.loads((entry.path / "analysis.json").read_text(encoding="utf-8"))
            manifest = json.loads((entry.path / "samples.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if manifest.get("dataset") != dataset or (
                manifest.get("training_run") or {}).get("run_name") != run_name:
            continue
        for column in report.get("columns") or []:
            if column.get("rank") == 1 and not column.get("no_effect"):
                epoch = column.get("epoch")
                return "final" if epoch is None else str(epoch)
    raise ExportError(f"no closeness ranking exists for run {run_name} of {dataset!r} yet "
                      "(it comes with the morning's samples); use --checkpoint N or final")


def _adapter_files(adapter: Path) -> list[Path]:
    """The config and weights, regular files only (a link is never followed out)."""
    found: list[Path] = []
    for entry in sorted(adapter.iterdir()):
        info = entry.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_FILE:
            continue
        if entry.name == layout.ADAPTER_CONFIG or entry.name.endswith(_WEIGHTS):
            found.append(entry)
    if not any(f.name.endswith(_WEIGHTS) for f in found):
        raise ExportError(f"{adapter} holds no {_WEIGHTS} weights; nothing to export")
    return found


def _copy_atomically(files: list[Path], dest_dir: Path, base: str) -> Path:
    temp = dest_dir / f".{base}.partial-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        for src in files:
            dst = temp / src.name
            shutil.copyfile(src, dst, follow_symlinks=False)
            os.chmod(dst, 0o644)
            with open(dst, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(temp)
        for n in range(1, 1000):
            target = dest_dir / (base if n == 1 else f"{base}-{n}")
            if target.exists() or target.is_symlink():
                continue
            try:
                os.rename(temp, target)
            except OSError:
                continue     # appeared meanwhile (and is not empty): take the next name
            fsync_dir(dest_dir)
            return target
        raise ExportError(f"{dest_dir} already holds {base} … {base}-999")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
