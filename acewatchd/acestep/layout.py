"""Every path acewatchd uses under ACE-Step's root, in one place.

ACE-Step only accepts paths under its own folder (CONTRACT §3) and resolves relative ones
against it, so what acewatchd writes there lives in two trees it owns:

    datasets/acewatchd/<safe name>/{audio/, tensors/, dataset.json}
    lora_output/acewatchd/<safe name>/<run>/{checkpoints/<ckpt>/, final/}

A dataset is named by its drop folder, in any script (``김경호``, ``Café Tacvba``); inside
ACE-Step's folder it goes by ``safe_name(dataset)``, a plain ASCII name that never changes for
a given name (see there). Every function below that takes a dataset takes the user's name.

Two trainer layouts exist (CONTRACT §2): the original trainer writes ``checkpoints/epoch_N/
adapter/`` and ``final/adapter/``; the v2 trainer names checkpoints ``epoch_N_loss_X`` and
saves adapters flat (``final/adapter_config.json``). Every reader here accepts both, so a run
that training accepts is one rendering can load. Paths sent to ACE-Step are ``./``-relative.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from acewatchd.acestep import checkout

ADAPTER_CONFIG = "adapter_config.json"
DATASETS = Path("datasets") / "acewatchd"
LORA_OUTPUT = Path("lora_output") / "acewatchd"
CHECKPOINTS = "checkpoints"
FINAL = "final"
_EPOCH_DIR = re.compile(r"^epoch_(\d+)(?:_loss_[0-9.eE+-]+)?$")
# Names that were already safe keep their folder (installs from before any name was allowed).
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_HASHED = re.compile(r"-[0-9a-f]{10}\Z")   # what safe_name appends; never a plain name's end
_SLUG_LIMIT = 40


def rel(path: Path) -> str:
    """A path under the root as ACE-Step is sent it: ``./datasets/...``."""
    return f"./{path.as_posix()}"


# --------------------------------------------------------------------------- datasets


def safe_name(dataset: str) -> str:
    """The folder name of ``dataset`` under ACE-Step's root.

    A name of ASCII letters, digits, ``_``, ``-`` and ``.`` is its own safe name. Any other
    becomes an ASCII slug plus ten hex digits of the sha256 of its NFC form (``김경호`` ->
    ``dataset-5c043ad958``, ``Café Tacvba`` -> ``cafe-tacvba-48062cfd5f``): stable across
    restarts and across the NFD names macOS hands out, short enough for any file system, and
    never the safe name of another dataset (a plain name ending like a hash is hashed too).
    """
    name = unicodedata.normalize("NFC", dataset)
    if _PLAIN.match(name) and not _HASHED.search(name) and name not in (".", ".."):
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return f"{_slug(name)}-{digest}"


def _slug(name: str) -> str:
    """Latin letters without their accents, lower case, every other run as one ``-``; a name
    with no Latin letter at all (Hangul, CJK) is just "dataset"."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:_SLUG_LIMIT].strip("-") or "dataset"


def dataset_dir(root: Path, dataset: str) -> Path:
    return Path(root) / DATASETS / safe_name(dataset)


def audio_dir(root: Path, dataset: str) -> Path:
    return dataset_dir(root, dataset) / "audio"


def tensor_dir(root: Path, dataset: str) -> Path:
    return dataset_dir(root, dataset) / "tensors"


def tensor_dir_rel(dataset: str) -> str:
    return rel(DATASETS / safe_name(dataset) / "tensors")


def dataset_json(root: Path, dataset: str) -> Path:
    return dataset_dir(root, dataset) / "dataset.json"


# --------------------------------------------------------------------------- training runs


def run_dir(root: Path, dataset: str, run_name: str) -> Path:
    return Path(root) / LORA_OUTPUT / safe_name(dataset) / run_name


def run_dir_rel(dataset: str, run_name: str) -> str:
    return rel(LORA_OUTPUT / safe_name(dataset) / run_name)


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
