"""The samples table: per song of a dataset, where its tensor stands (ACE-Step preprocessing).

A row is keyed by the audio's content hash. ``inputs_hash`` covers everything the tensor
depends on (audio, caption, lyrics, preprocess settings), so prepare re-runs ACE-Step only for
the songs whose hash changed; ``precision`` remembers an fp32 retry. Each write is its own
transaction: prepare records a song as soon as its child run is over.

Beside them, the measured render speed (kv ``KV_RENDER_SPEED``): how long this machine's
ACE-Step takes per clip, which plans the next grid and lets ``config check`` warn ahead.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from acewatchd.ledger.db import Ledger, open_readonly
from acewatchd.ledger.events import KV_RENDER_SPEED, get_kv

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


@dataclass(frozen=True)
class RenderSpeed:
    """The last render's pace: generation seconds per clip and per second of audio."""

    seconds_per_clip: float
    seconds_per_audio_second: float
    clips: int
    measured: float            # when (epoch seconds)


def record_render_speed(ledger: Ledger, seconds: float, clips: int, audio_seconds: float) -> None:
    """Remember one render's pace (the newest replaces the last: the machine may change)."""
    if clips <= 0 or audio_seconds <= 0:
        return
    ledger.set_kv(KV_RENDER_SPEED, json.dumps({
        "seconds_per_clip": round(seconds / clips, 3),
        "seconds_per_audio_second": round(seconds / audio_seconds, 4),
        "clips": clips, "measured": time.time()}))


def render_speed(ledger: Ledger) -> RenderSpeed | None:
    return _speed(ledger.get_kv(KV_RENDER_SPEED))


def render_speed_readonly(state_dir: Path) -> RenderSpeed | None:
    """The same without writing or creating the ledger (``config check`` reads it)."""
    conn = open_readonly(state_dir)
    if conn is None:
        return None
    try:
        return _speed(get_kv(conn, KV_RENDER_SPEED))
    except sqlite3.Error:  # an older ledger without the kv table: nothing measured yet
        return None
    finally:
        conn.close()


def _speed(raw: str | None) -> RenderSpeed | None:
    try:
        data = json.loads(raw) if raw else None
        if not isinstance(data, dict):
            return None
        return RenderSpeed(float(data["seconds_per_clip"]),
                           float(data["seconds_per_audio_second"]), int(data["clips"]),
                           float(data["measured"]))
    except (ValueError, KeyError, TypeError):
        return None
