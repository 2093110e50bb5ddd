"""Every path acewatchd uses under ACE-Step's root, in one place.

ACE-Step only accepts paths under its own folder (CONTRACT §3) and resolves relative ones
against it, so what acewatchd writes there lives in two trees it owns:

    datasets/acewatchd/<dataset>/{audio/, tensors/, dataset.json}
    lora_output/acewatchd/<dataset>/<run>/{checkpoints/<ckpt>/, final/}

Two trainer layouts exist (CONTRACT §2): the original trainer writes ``checkpoints/epoch_N/
adapter/`` and ``final/adapter/``; the v2 trainer names checkpoints ``epoch_N_loss_X`` and
saves adapters flat (``final/adapter_config.json``). Every reader here accepts both, so a run
that training accepts is one rendering can load. Paths sent to ACE-Step are ``./``-relative.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from acewatchd.acestep import checkout

ADAPTER_CONFIG = "adapter_config.json"
DATASETS = Path("datasets") / "acewatchd"
LORA_OUTPUT = Path("lora_output") / "acewatchd"
CHECKPOINTS = "checkpoints"
FINAL = "final"
_EPOCH_DIR = re.compile(r"^epoch_(\d+)(?:_loss_[0-9.eE+-]+)?$")


def rel(path: Path) -> str:
    """A path under the root as ACE-Step is sent it: ``./datasets/...``."""
    return f"./{path.as_posix()}"


# --------------------------------------------------------------------------- datasets


def dataset_dir(root: Path, dataset: str) -> Path:
    return Path(root) / DATASETS / dataset


def audio_dir(root: Path, dataset: str) -> Path:
    return dataset_dir(root, dataset) / "audio"


def tensor_dir(root: Path, dataset: str) -> Path:
    return dataset_dir(root, dataset) / "tensors"


def tensor_dir_rel(dataset: str) -> str:
    return rel(DATASETS / dataset / "tensors")


def dataset_json(root: Path, dataset: str) -> Path:
    return dataset_dir(root, dataset) / "dataset.json"


# --------------------------------------------------------------------------- training runs


def run_dir(root: Path, dataset: str, run_name: str) -> Path:
    return Path(root) / LORA_OUTPUT / dataset / run_name


def run_dir_rel(dataset: str, run_name: str) -> str:
    return rel(LORA_OUTPUT / dataset / run_name)


@dataclass(frozen=True)
class Checkpoint:
    epoch: int
    name: str           # the folder name under checkpoints/ (epoch_N or epoch_N_loss_X)
    folder: Path        # that folder


def checkpoint_epoch(name: str) -> int | None:
    """The epoch of a checkpoint folder name, either naming; None for anything else."""
    match = _EPOCH_DIR.match(name)
    return int(match.group(1)) if match else None


def checkpoints(run: Path) -> list[Checkpoint]:
    """Usable checkpoints of a run folder, oldest epoch first (one per epoch)."""
    try:
        entries = list((run / CHECKPOINTS).iterdir())
    except OSError:
        return []
    found: dict[int, Checkpoint] = {}
    for entry in entries:
        epoch = checkpoint_epoch(entry.name)
        if epoch is not None and _usable(entry):
            found[epoch] = Checkpoint(epoch, entry.name, entry)
    return [found[e] for e in sorted(found)]


def _usable(folder: Path) -> bool:
    return (folder / "adapter").is_dir() or (folder / "training_state.pt").is_file() \
        or (folder / ADAPTER_CONFIG).is_file()


def latest_checkpoint(run: Path) -> Checkpoint | None:
    found = checkpoints(run)
    return found[-1] if found else None


def checkpoint_rel(dataset: str, run_name: str, ck: Checkpoint) -> str:
    return f"{run_dir_rel(dataset, run_name)}/{CHECKPOINTS}/{ck.name}"


def adapter_in(folder: Path) -> Path | None:
    """The folder holding adapter_config.json: ``folder/adapter`` (original trainer) or
    ``folder`` itself (v2, flat); None when neither has one."""
    for candidate in (folder / "adapter", folder):
        if (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    return None


def final_adapter(run: Path) -> Path | None:
    """The finished run's adapter, in either layout; None while the run is unfinished."""
    return adapter_in(run / FINAL)


def newest_mtime(folder: Path) -> float:
    """The newest file time under ``folder`` (0 when empty): is a session still writing?"""
    newest = 0.0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            try:
                newest = max(newest, os.stat(os.path.join(base, name)).st_mtime)
            except OSError:
                continue
    return newest


# --------------------------------------------------------------------------- the checkout


def acestep_version(root: Path) -> str | None:
    """ACE-Step's version from its checkout (``acestep/checkout.py`` reads it)."""
    return checkout.acestep_version(root)
