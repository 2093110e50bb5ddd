"""Which LoRA a render uses: the training run (from the ledger) and its adapter folder.

Training writes ``lora_output/acewatchd/<dataset>/<run_name>/`` under the ACE-Step root
(CONTRACT §2): ``final/adapter`` when finished, ``checkpoints/epoch_<N>/adapter`` along the way
(v2 trainers: ``checkpoints/epoch_<N>_loss_<x>``, saved flat). ACE-Step resolves paths against
its own folder, so the path sent is relative to the root (``./lora_output/...``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acewatchd.config import Config
from acewatchd.errors import AcewatchdError
from acewatchd.ledger import Ledger

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
_EPOCH_DIR = re.compile(r"^epoch_(\d+)(?:_loss_[0-9.eE+-]+)?$")


@dataclass(frozen=True)
class LoraChoice:
    path: str             # as sent to /load_lora (relative to the ACE-Step root when inside)
    local: Path           # the same folder on this machine
    checkpoint: str       # "final" or the checkpoint folder name
    epoch: int | None


def run_dir_rel(dataset: str, run_name: str) -> str:
    return f"./lora_output/acewatchd/{dataset}/{run_name}"


def find_training_run(cfg: Config, ledger: Ledger, dataset: str,
                      run_id: int | None = None) -> dict[str, Any]:
    """The ledger row of ``run_id``, else the newest training run that finished (or whose
    final adapter exists: a nightly run may be marked failed because only its render failed)."""
    conn = ledger.connect()
    if run_id is not None:
        row = conn.execute("SELECT * FROM runs WHERE id=? AND dataset=?", (run_id, dataset)
                           ).fetchone()
        if row is None or not row["run_name"]:
            raise AcewatchdError(f"ledger: no training run {run_id} of dataset {dataset!r}")
        return dict(row)
    rows = conn.execute("SELECT * FROM runs WHERE dataset=? AND job IN ('train', 'nightly') "
                        "AND run_name IS NOT NULL AND run_name != '' ORDER BY id DESC",
                        (dataset,)).fetchall()
    for row in rows:
        if row["outcome"] == "done" or _final_dir(cfg, dataset, row["run_name"]).is_dir():
            return dict(row)
    raise AcewatchdError(f"{dataset}: no finished training run in the ledger "
                         f"(train it first: acewatchd train {dataset} --now)")


def _final_dir(cfg: Config, dataset: str, run_name: str) -> Path:
    return cfg.acestep.root / run_dir_rel(dataset, run_name) / "final" / "adapter"


def choose_adapter(cfg: Config, dataset: str, train: dict[str, Any],
                   checkpoint: str | None = None) -> LoraChoice:
    """The final adapter of ``train``, or the checkpoint given as an epoch number or folder."""
    run_rel = run_dir_rel(dataset, str(train["run_name"]))
    if checkpoint is None or checkpoint.strip() in ("", "final"):
        local = _final_dir(cfg, dataset, str(train["run_name"]))
        _require_adapter(local, "final adapter")
        return LoraChoice(f"{run_rel}/final/adapter", local, "final", train.get("epochs_done")
                          or train.get("epochs_total"))
    if checkpoint.strip().isdigit():
        return _epoch_checkpoint(cfg, run_rel, int(checkpoint))
    return _folder_checkpoint(cfg, Path(checkpoint).expanduser())


def _epoch_checkpoint(cfg: Config, run_rel: str, epoch: int) -> LoraChoice:
    ckpts = cfg.acestep.root / run_rel / "checkpoints"
    found = {int(m.group(1)): p for p in (ckpts.iterdir() if ckpts.is_dir() else [])
             if (m := _EPOCH_DIR.match(p.name)) and p.is_dir()}
    if epoch not in found:
        have = ", ".join(str(e) for e in sorted(found)) or "none"
        raise AcewatchdError(f"{ckpts}: no checkpoint for epoch {epoch} (available: {have})")
    folder = _adapter_in(found[epoch])
    return LoraChoice(f"{run_rel}/checkpoints/{folder.relative_to(ckpts).as_posix()}", folder,
                      found[epoch].name, epoch)


def _folder_checkpoint(cfg: Config, given: Path) -> LoraChoice:
    root = cfg.acestep.root.resolve()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, root / given]
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise AcewatchdError(f"--checkpoint {given}: no such folder (tried "
                             f"{', '.join(str(c) for c in candidates)})")
    folder = _adapter_in(folder.resolve())
    name = folder.parent.name if folder.name == "adapter" else folder.name
    match = _EPOCH_DIR.match(name)
    if folder.is_relative_to(root):
        sent = "./" + folder.relative_to(root).as_posix()
    else:  # ACE-Step may refuse paths outside its folder (CONTRACT §3); let it say so
        logger.warning("%s is outside the ACE-Step root %s; sending it as is", folder, root)
        sent = str(folder)
    return LoraChoice(sent, folder, name, int(match.group(1)) if match else None)


def _adapter_in(folder: Path) -> Path:
    """The folder holding adapter_config.json: ``folder`` itself or its ``adapter/``."""
    for candidate in (folder / "adapter", folder):
        if (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    raise AcewatchdError(f"{folder}: not a LoRA adapter ({ADAPTER_CONFIG} not found in it or "
                         "in its adapter/ folder)")


def _require_adapter(folder: Path, what: str) -> None:
    if not (folder / ADAPTER_CONFIG).is_file():
        raise AcewatchdError(f"{folder}: {what} not found ({ADAPTER_CONFIG} missing); has the "
                             "training run finished?")
