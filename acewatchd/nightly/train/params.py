"""The parameters of a training run: epochs ("auto" or a number) and the call's arguments.

Epochs: ``epochs = "auto"`` picks a count from the number of songs (ACE-Step's guidance is
about 800 epochs for a handful of songs, about 500 for a hundred):

    songs      epochs
    1-5        800
    6-20       700
    21-50      600
    51+        500

(always a multiple of 100 within ACE-Step's 100..4000 slider bounds).

The parameters of a run are kept in the ledger (ledger.runs.save_params): a run is resumed only
with the same content hash and the same [train] parameters; otherwise a new run starts.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from acewatchd.config.schema import Train

logger = logging.getLogger(__name__)

AUTO_EPOCHS = ((5, 800), (20, 700), (50, 600))
AUTO_EPOCHS_MORE = 500


def auto_epochs(songs: int) -> int:
    for limit, epochs in AUTO_EPOCHS:
        if songs <= limit:
            return epochs
    return AUTO_EPOCHS_MORE


def resolve_epochs(train: Train, songs: int) -> int:
    value = auto_epochs(songs) if train.epochs == "auto" else int(train.epochs)
    return max(100, min(4000, value))


def train_params(train: Train, songs: int) -> dict[str, Any]:
    """Keyword arguments for ``AceStepClient.train`` (ints as ints: ACE-Step uses range())."""
    p = asdict(train)
    p["epochs"] = resolve_epochs(train, songs)
    for key in ("rank", "alpha", "batch_size", "grad_accum", "save_every", "seed", "epochs"):
        p[key] = int(p[key])
    return p
