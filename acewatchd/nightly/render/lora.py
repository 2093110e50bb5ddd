"""Which LoRA a render uses: the training run (from the ledger) and its adapter folder.

The run folder's layout, in both trainer layouts, is acestep/layout.py's; this module picks the
run (``find_training_run``) and, in it, the adapter: the final one, or a checkpoint given as an
epoch number or a folder. ACE-Step resolves paths against its own folder, so the path sent is
relative to the root (``./lora_output/...``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from acewatchd.acestep import layout
from acewatchd.config.schema import Config
from acewatchd.errors import AcewatchdError
from acewatchd.ledger import runs
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.runs import Job, Outcome, RunRow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoraChoice:
    path: str             # as sent to /load_lora (relative to the ACE-Step root when inside)
    local: Path           # the same folder on this machine
    checkpoint: str       # "final" or the checkpoint folder name
    epoch: int | None

    @property
    def column(self) -> str:
        """Its name in the grid and samples.json: "final" or "epoch_<N>" (folder names may
        carry a loss suffix; this never does)."""
        if self.checkpoint == "final" or self.epoch is None:
            return self.checkpoint
        return f"epoch_{self.epoch}"


@dataclass(frozen=True)
class GridChoice:
    """The adapters of one render, oldest first (the final adapter last), and what was asked
    for but cannot be rendered, in words for the page and the log."""

    adapters: list[LoraChoice]
    notes: list[str]
    finished: bool        # the run has its final adapter (else the grid is a progress report)


def find_training_run(cfg: Config, ledger: Ledger, dataset: str,
                      run_id: int | None = None) -> RunRow:
    """The ledger row of ``run_id``, else the newest training run that finished (or whose
    final adapter exists: a nightly run may be marked failed because only its render failed)."""
    if run_id is not None:
        row = runs.get_run(ledger, run_id)
        if row is None or row.dataset != dataset or not row.run_name:
            raise AcewatchdError(f"ledger: no training run {run_id} of dataset {dataset!r}")
        return row
    for row in runs.named_runs(ledger, dataset, (Job.TRAIN, Job.NIGHTLY)):
        assert row.run_name
        run = layout.run_dir(cfg.acestep.root, dataset, row.run_name)
        if row.outcome == Outcome.DONE or layout.final_adapter(run) is not None:
            return row
    raise AcewatchdError(f"{dataset}: no finished training run in the ledger "
                         f"(train it first: acewatchd train {dataset} --now)")


def choose_adapter(cfg: Config, dataset: str, train: RunRow,
                   checkpoint: str | None = None) -> LoraChoice:
    """The final adapter of ``train``, or the checkpoint given as an epoch number or folder."""
    run_name = str(train.run_name)
    run = layout.run_dir(cfg.acestep.root, dataset, run_name)
    if checkpoint is None or checkpoint.strip() in ("", "final"):
        local = layout.final_adapter(run)
        if local is None:
            raise AcewatchdError(f"{run / layout.FINAL}: final adapter not found "
                                 f"({layout.ADAPTER_CONFIG} missing); has the training run "
                                 "finished?")
        sent = f"{layout.run_dir_rel(dataset, run_name)}/{local.relative_to(run).as_posix()}"
        return LoraChoice(sent, local, "final", train.epochs_done or train.epochs_total)
    if checkpoint.strip().isdigit():
        return _epoch_checkpoint(dataset, run_name, run, int(checkpoint))
    return _folder_checkpoint(cfg, Path(checkpoint).expanduser())


def _epoch_checkpoint(dataset: str, run_name: str, run: Path, epoch: int) -> LoraChoice:
    found = {ck.epoch: ck for ck in layout.checkpoints(run)}
    if epoch not in found:
        have = ", ".join(str(e) for e in sorted(found)) or "none"
        raise AcewatchdError(f"{run / layout.CHECKPOINTS}: no checkpoint for epoch {epoch} "
                             f"(available: {have})")
    ck = found[epoch]
    folder = _adapter_in(ck.folder)
    sent = f"{layout.run_dir_rel(dataset, run_name)}/{folder.relative_to(run).as_posix()}"
    return LoraChoice(sent, folder, ck.name, epoch)


def _folder_checkpoint(cfg: Config, given: Path) -> LoraChoice:
    root = cfg.acestep.root.resolve()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, root / given]
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise AcewatchdError(f"--checkpoint {given}: no such folder (tried "
                             f"{', '.join(str(c) for c in candidates)})")
    folder = _adapter_in(folder.resolve())
    name = folder.parent.name if folder.name == "adapter" else folder.name
    if folder.is_relative_to(root):
        sent = "./" + folder.relative_to(root).as_posix()
    else:  # ACE-Step may refuse paths outside its folder (CONTRACT §3); let it say so
        logger.warning("%s is outside the ACE-Step root %s; sending it as is", folder, root)
        sent = str(folder)
    return LoraChoice(sent, folder, name, layout.checkpoint_epoch(name))


def _adapter_in(folder: Path) -> Path:
    found = layout.adapter_in(folder)
    if found is None:
        raise AcewatchdError(f"{folder}: not a LoRA adapter ({layout.ADAPTER_CONFIG} not found "
                             "in it or in its adapter/ folder)")
    return found


RECENT = 3  # "recent": this many of the newest checkpoints, beside the final adapter


def choose_grid(cfg: Config, dataset: str, train: RunRow,
                checkpoint: str | None = None) -> GridChoice:
    """The adapters ``[render] checkpoints`` names for ``train``; a ``checkpoint`` given on the
    command line renders that one adapter alone. A checkpoint saved at the final epoch is the
    final adapter's twin and is left out."""
    if checkpoint and checkpoint.strip():
        one = choose_adapter(cfg, dataset, train, checkpoint)
        return GridChoice([one], [], one.checkpoint == "final")
    run_name = str(train.run_name)
    run = layout.run_dir(cfg.acestep.root, dataset, run_name)
    final = choose_adapter(cfg, dataset, train) if layout.final_adapter(run) else None
    saved = [ck for ck in layout.checkpoints(run)
             if final is None or ck.epoch != final.epoch]
    picked, notes = _pick(cfg.render_for(dataset).checkpoints, saved, final is not None)
    adapters: list[LoraChoice] = []
    for ck in picked:
        if layout.adapter_in(ck.folder) is None:
            notes.append(f"checkpoint {ck.name} has no adapter ({layout.ADAPTER_CONFIG}); "
                         "left out")
            continue
        adapters.append(_epoch_checkpoint(dataset, run_name, run, ck.epoch))
    adapters += [final] if final is not None else []
    if not adapters:
        raise AcewatchdError(f"{run}: no adapter to render (no {layout.FINAL}/ adapter and no "
                             "usable checkpoint); has the training run saved one?")
    return GridChoice(adapters, notes, final is not None)


def _pick(spec: str | list[int], saved: list[layout.Checkpoint],
          has_final: bool) -> tuple[list[layout.Checkpoint], list[str]]:
    """The checkpoints (oldest first) a ``[render] checkpoints`` value names."""
    if spec == "all":
        return saved, []
    if spec == "recent":
        return saved[-RECENT:], []
    if spec == "last":
        return ([] if has_final else saved[-1:]), []
    wanted = sorted(set(spec)) if isinstance(spec, list) else []
    by_epoch = {ck.epoch: ck for ck in saved}
    missing = [e for e in wanted if e not in by_epoch]
    notes = [f"no checkpoint for epoch{'s' * (len(missing) > 1)} "
             f"{', '.join(str(e) for e in missing)} (saved: "
             f"{', '.join(str(ck.epoch) for ck in saved) or 'none'})"] if missing else []
    return [by_epoch[e] for e in wanted if e in by_epoch], notes
