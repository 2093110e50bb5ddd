"""Incremental preprocessing with ACE-Step's own ``preprocess_audio_files`` (CONTRACT §5).

Runs in a child process with ACE-Step's interpreter (``[acestep] python``), cwd = ACE-Step
root and the root on PYTHONPATH, so the daemon never imports torch or ACE-Step. Only samples
whose tensor is missing or stale are passed, through a per-run dataset.json holding just those
samples. "Stale" is decided by an inputs hash kept in the ledger's ``samples`` table
(``ledger/samples.py``; the hash is computed here, by ``inputs_hash``): the sample
entry (audio hash, caption, lyrics, tag, metas) plus variant, precision and max_duration.

Output goes to a dot-prefixed work folder inside ``tensors/`` first (ACE-Step's loader globs
``tensors/*.pt``, not subfolders) and each finished ``<stem>.pt`` is renamed into place, so a
killed run never leaves a half-written or ``.tmp.pt`` file where training would pick it up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acewatchd.config.schema import Config
from acewatchd.errors import AcewatchdError
from acewatchd.util.files import TEMP_PREFIX, atomic_write_text, fsync_dir
from acewatchd.util.process import REGISTRY, registered, wait_or_stop

logger = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("preprocess_child.py")
WORK_PREFIX = f"{TEMP_PREFIX}preprocess-"


@dataclass
class Outcome:
    """What one child run did: stems that produced a tensor, and a reason for each failure."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def inputs_hash(entry: dict[str, Any], cfg: Config) -> str:
    """Everything the tensor depends on; precision is the configured one (an fp32 retry is
    recorded in the row's ``precision`` and does not make the sample stale)."""
    pp = cfg.preprocess
    keyed = {k: v for k, v in entry.items() if k not in ("audio_path",)}
    blob = json.dumps([keyed, pp.variant, pp.precision, pp.max_duration], sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def checkpoint_dir(cfg: Config) -> Path:
    raw = cfg.preprocess.checkpoint_dir
    path = Path(raw).expanduser() if raw else cfg.acestep.root / "checkpoints"
    return path if path.is_absolute() else cfg.acestep.root / path


def check_python(cfg: Config) -> Path:
    python = cfg.acestep.python_path()
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise AcewatchdError(f"ACE-Step's python not found: {python} (set [acestep] python in "
                             "config.toml, or install ACE-Step with its .venv)")
    return python


def clean_leftovers(tensor_dir: Path) -> None:
    """Remove ``*.tmp.pt`` (a failed pass 2 leaves them; they break ACE-Step's loader, CONTRACT
    Risk 4) and work folders of runs that were killed."""
    if not tensor_dir.is_dir():
        return
    for entry in tensor_dir.iterdir():
        if entry.name.endswith(".tmp.pt") and entry.is_file():
            entry.unlink()
            logger.info("removed leftover %s", entry.name)
        elif entry.name.startswith(WORK_PREFIX) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def run(cfg: Config, tensor_dir: Path, metadata: dict[str, Any], entries: list[dict[str, Any]],
        precision: str, stop: threading.Event | None = None) -> Outcome:
    """Preprocess ``entries`` (dataset.json samples) in one child call; move results in place."""
    python = check_python(cfg)
    work = tensor_dir / f"{WORK_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
    (work / "out").mkdir(parents=True)
    try:
        job = _write_job(cfg, work, metadata, entries, precision)
        lines = _run_child(cfg, python, job, stop)
        return _collect(work / "out", tensor_dir, entries, lines)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_job(cfg: Config, work: Path, metadata: dict[str, Any], entries: list[dict[str, Any]],
               precision: str) -> Path:
    doc = {"metadata": {**metadata, "num_samples": len(entries)}, "samples": entries}
    atomic_write_text(work / "dataset.json", json.dumps(doc, indent=2, ensure_ascii=False))
    audio = Path(entries[0]["audio_path"]).parent if entries else work
    job = {"audio_dir": str(audio), "output_dir": str(work / "out"),
           "checkpoint_dir": str(checkpoint_dir(cfg)), "variant": cfg.preprocess.variant,
           "max_duration": cfg.preprocess.max_duration, "dataset_json": str(work / "dataset.json"),
           "device": cfg.preprocess.device, "precision": precision}
    atomic_write_text(work / "job.json", json.dumps(job, ensure_ascii=False))
    return work / "job.json"


def _run_child(cfg: Config, python: Path, job: Path, stop: threading.Event | None) -> list[str]:
    root = cfg.acestep.root
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p))
    cmd = [str(python), str(CHILD), str(job)]
    logger.info("preprocessing: %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            encoding="utf-8", errors="replace", start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True,
                              name="preprocess-output")
    reader.start()
    try:
        with registered(proc, cfg.paths.state / REGISTRY):
            wait_or_stop(proc, stop, "preprocessing")
    finally:
        reader.join(timeout=10)
    if proc.returncode != 0:
        tail = " | ".join(list(deque((ln for ln in lines if ln.strip()), maxlen=3)))
        raise AcewatchdError(f"ACE-Step preprocessing exited with {proc.returncode} "
                             f"({python}): {tail or 'no output'}")
    return lines


def _pump(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        lines.append(line)
        if line.startswith("ACEWATCHD-PROGRESS "):
            logger.info("preprocess progress %s", line.partition(" ")[2])
        elif line.strip():
            logger.info("acestep: %s", line)


def _collect(out: Path, tensor_dir: Path, entries: list[dict[str, Any]],
             lines: list[str]) -> Outcome:
    outcome = Outcome()
    for entry in entries:
        stem = Path(entry["filename"]).stem
        produced = out / f"{stem}.pt"
        if produced.is_file():
            os.replace(produced, tensor_dir / produced.name)
            outcome.done.append(stem)
            logger.info("preprocessed %s (%s)", stem, entry["filename"])
        else:
            outcome.failed[stem] = _reason(stem, lines)
            logger.warning("preprocessing failed for %s: %s", stem, outcome.failed[stem])
    fsync_dir(tensor_dir)
    return outcome


def _reason(stem: str, lines: list[str]) -> str:
    mentions = [ln for ln in lines if stem in ln and not ln.startswith("ACEWATCHD-")]
    bad = [ln for ln in mentions if any(w in ln.lower() for w in ("fail", "error", "skip"))]
    chosen = (bad or mentions or ["ACE-Step wrote no tensor for it (see the log)"])[-1]
    return chosen.strip()[:300]


def write_manifest(tensor_dir: Path, metadata: dict[str, Any], good: list[Path]) -> Path:
    """manifest.json listing exactly the good tensors: ACE-Step's loader then uses only these
    (CONTRACT §6). Rewritten on every prepare, so it can never hide a newer file."""
    doc = {"metadata": metadata, "samples": [str(p) for p in sorted(good)],
           "num_samples": len(good)}
    path = tensor_dir / "manifest.json"
    atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path
