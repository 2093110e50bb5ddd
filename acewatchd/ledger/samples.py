"""The samples table: per song of a dataset, where its tensor stands (ACE-Step preprocessing).

A row is keyed by the audio's content hash. ``inputs_hash`` covers everything the tensor
depends on (audio, caption, lyrics, preprocess settings), so prepare re-runs ACE-Step only for
the songs whose hash changed; ``precision`` remembers an fp32 retry. Each write is its own
transaction: prepare records a song as soon as its child run is over.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from acewatchd.ledger.db import Ledger

SAMPLE_STATUSES = ("staged", "preprocessed", "failed", "excluded")


@dataclass(frozen=True)
class SampleRow:
    dataset: str
    sha256: str               # audio content hash
    sample_id: str            # 8 hex, names the .pt
    inputs_hash: str | None   # audio + caption + lyrics + preprocess params
    status: str               # one of SAMPLE_STATUSES
    precision: str | None     # what the tensor was made with (None: not made yet)
    reason: str | None        # why it failed or was excluded
    updated: float


_COLUMNS = "dataset, sha256, sample_id, inputs_hash, status, precision, reason, updated"


def _row(row: sqlite3.Row) -> SampleRow:
    return SampleRow(*row)  # selected as _COLUMNS, the fields' order


def sample_rows(ledger: Ledger, dataset: str) -> dict[str, SampleRow]:
    """The dataset's rows by audio sha256."""
    rows = ledger.connect().execute(f"SELECT {_COLUMNS} FROM samples WHERE dataset=?",
                                    (dataset,))
    return {str(r[1]): _row(r) for r in rows}


def set_sample(ledger: Ledger, dataset: str, sha: str, *, status: str, inputs: str | None = None,
               precision: str | None = None, reason: str | None = None) -> None:
    """Upsert one sample's state; inputs/precision left None keep their stored values."""
    with ledger.tx() as conn:
        conn.execute(
            "INSERT INTO samples (dataset, sha256, sample_id, inputs_hash, status, precision, "
            "reason, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dataset, sha256) DO "
            "UPDATE SET inputs_hash=COALESCE(excluded.inputs_hash, inputs_hash), "
            "status=excluded.status, precision=COALESCE(excluded.precision, precision), "
            "reason=excluded.reason, updated=excluded.updated",
            (dataset, sha, sha[:8], inputs, status, precision, reason, time.time()))


def forget_missing(ledger: Ledger, dataset: str, keep: set[str]) -> None:
    """Drop rows of songs that left the dataset (their tensors are removed by the caller)."""
    with ledger.tx() as conn:
        for (sha,) in conn.execute("SELECT sha256 FROM samples WHERE dataset=?",
                                   (dataset,)).fetchall():
            if sha not in keep:
                conn.execute("DELETE FROM samples WHERE dataset=? AND sha256=?", (dataset, sha))
