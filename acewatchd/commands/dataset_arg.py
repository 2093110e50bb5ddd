"""The dataset named on the command line (`prepare`, `train`, `render`), checked once.

A dataset is named by its drop folder, in any script. What the user types may be in another
Unicode normal form than the folder (macOS hands NFD to a shell that pastes a Finder name, and
file systems store either), so the name is taken in NFC, the form the ledger and config use,
and the folder is found whatever form it has on disk. Names that could leave their folder
(``..``, ``/``, a leading dot, control characters) are refused before anything touches a path.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from acewatchd.config.schema import DATASET_NAME, Config
from acewatchd.errors import AcewatchdError
from acewatchd.ingest.dropdir import locate

RULE = ("a dataset is a folder in drop/: any name without '/', a backslash, a leading '.', "
        "control characters or blank ends, at most 64 characters")


def dataset_arg(raw: str) -> str:
    """``raw`` as the dataset's name (NFC); AcewatchdError when it cannot be one."""
    name = unicodedata.normalize("NFC", raw)
    if not DATASET_NAME.match(name):
        raise AcewatchdError(f"{raw!r} is not a dataset name ({RULE})")
    return name


def drop_folder(cfg: Config, name: str) -> Path | None:
    """The drop folder of dataset ``name`` (NFC) as it is named on disk; None when absent.
    A symlink is not a dataset folder (it is never followed)."""
    folder = locate(cfg, name, "")
    return folder if folder is not None and folder.is_dir() and not folder.is_symlink() \
        else None


def existing_dataset(cfg: Config, raw: str) -> str:
    """``raw`` as a dataset name that has a folder in drop/; AcewatchdError otherwise."""
    name = dataset_arg(raw)
    if drop_folder(cfg, name) is None:
        raise AcewatchdError(f"{cfg.paths.drop / name}: no such dataset folder")
    return name
