"""What a render leaves behind: audio under readable names, samples.json, loss.png, the page
and playlist (all inside the staging folder), and its row in the ledger's ``runs`` table.

samples.json is the manifest; the page and playlist are built from the same dict, so they
always agree with it. Nothing here reads the outbox back.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from acewatchd import __version__
from acewatchd.acestep import layout
from acewatchd.config.schema import Config, Render
from acewatchd.errors import AcewatchdError
from acewatchd.ledger import runs
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.runs import Job, Outcome, RunFacts, RunRow
from acewatchd.ledger.samples import record_render_speed
from acewatchd.nightly.render.lora import LoraChoice
from acewatchd.nightly.render.plan import Clip, Column, RenderJob, audio_seconds
from acewatchd.outbox import folders as outbox
from acewatchd.outbox import manifest as mf
from acewatchd.outbox import page
from acewatchd.outbox.lossplot import LossPoint, final_loss, plot_loss
from acewatchd.outbox.manifest import Manifest
from acewatchd.util.files import atomic_write_bytes, atomic_write_text, full_fsync

logger = logging.getLogger(__name__)

_AUDIO_EXT = {".mp3", ".flac", ".wav", ".ogg", ".opus", ".m4a"}


# --------------------------------------------------------------------------- audio


def store_call(call: list[Clip], result: Any, column: Column, staging: Path, rcfg: Render,
               took: float, call_no: int) -> dict[int, mf.Render]:
    """Move one call's audio to ``NN_<column>_<slug>.<ext>``; one entry per clip."""
    files = _match(call, result)
    out: dict[int, mf.Render] = {}
    for clip, src in zip(call, files, strict=True):
        entry: mf.Render = {"file": None, "duration_seconds": None,
                            "call": call_no, "call_seconds": round(took, 2),
                            "seconds": round(took / len(call), 2),
                            "checkpoint": column.checkpoint, "epoch": column.epoch,
                            "scale": column.scale, "seed": clip.seed}
        if src is None:
            entry["error"] = "ACE-Step returned no audio for this seed (a silent output?)"
        else:
            ext = src.suffix.lower() if src.suffix.lower() in _AUDIO_EXT else \
                f".{rcfg.audio_format}"
            dest = staging / f"{clip.number:02d}_{column.slug}_{clip.slug}{ext}"
            os.replace(src, dest)
            _fsync_file(dest)
            entry["file"], entry["duration_seconds"] = dest.name, audio_duration(dest)
        out[clip.number] = entry
    return out


def _match(call: list[Clip], result: Any) -> list[Path | None]:
    """Audio in slot order is seed order; ACE-Step drops silent slots, so when files are
    missing the rest are matched through the seed in each file's metadata."""
    files = list(result.audio_files)
    if len(files) == len(call):
        return files
    by_seed: dict[str, Path] = {}
    for path, meta in zip(files, result.metadata, strict=False):
        if isinstance(meta, dict) and meta.get("seed") is not None:
            by_seed.setdefault(str(meta["seed"]).strip(), path)
    matched = [by_seed.pop(str(c.seed), None) for c in call]
    if not any(matched):
        raise AcewatchdError(f"ACE-Step returned {len(files)} clip(s) for {len(call)} seed(s) "
                             "and they cannot be matched to the prompts")
    return matched


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        full_fsync(fh.fileno())


def audio_duration(path: Path) -> float | None:
    try:
        import mutagen

        info = mutagen.File(path)
        return round(float(info.info.length), 2) if info is not None else None
    except Exception as exc:  # noqa: BLE001 - an unmeasurable file is still worth a listen
        logger.warning("cannot read the duration of %s: %s", path, exc)
        return None


# --------------------------------------------------------------------------- manifest


def loss_points(ledger: Ledger, dataset: str, run_name: str) -> list[LossPoint]:
    """Every progress row of the run, over all its nights (one runs row per night)."""
    return [LossPoint(p.step, p.epoch, p.loss) for p in runs.loss_points(ledger, dataset, run_name)]


def build_manifest(job: RenderJob, ledger: Ledger, train: RunRow, lora: LoraChoice,
                   name: str, points: list[LossPoint]) -> Manifest:
    loss = final_loss(points)
    clips = [c for call in job.calls for c in call]
    return {
        "format": 1, "generator": f"acewatchd {__version__}", "dataset": job.dataset,
        "run_folder": name, "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "training_run": {"id": train.id, "run_name": train.run_name,
                         "epochs_done": train.epochs_done,
                         "epochs_total": train.epochs_total,
                         "final_loss": round(loss, 6) if loss is not None else None,
                         "content_hash": train.content_hash},
        "lora": {"path": lora.path, "checkpoint": lora.checkpoint, "epoch": lora.epoch,
                 "scale": job.rcfg.lora_scales()[-1], "loss": _loss_at(points, lora)},
        "columns": [_column_entry(c, job, points) for c in job.columns],
        "dropped": [{"checkpoint": a.column, "epoch": a.epoch} for a in job.dropped],
        "notes": list(job.notes),
        "finished": job.finished,
        "budget": {"max_minutes": job.rcfg.max_minutes,
                   "seconds_per_audio_second": job.per_audio_second},
        "acestep": {"url": job.cfg.acestep.url, "simulator": job.simulated,
                    "api": job.acestep_api,
                    "version": acestep_version(
                        job.cfg.acestep.root, job.simulated)},
        "settings": {"steps": job.rcfg.steps, "guidance": job.rcfg.guidance,
                     "audio_format": job.rcfg.audio_format, "batch_size": job.rcfg.batch_size,
                     "compare_base": job.rcfg.compare_base},
        "generation_seconds": round(job.seconds, 2),
        "generation_calls": len(job.calls) * len(job.results),
        "clips": [_clip_entry(c, job) for c in sorted(clips, key=lambda c: c.number)],
    }


def _loss_at(points: list[LossPoint], lora: LoraChoice) -> float | None:
    """The last loss logged up to the adapter's epoch (= the final loss for final/)."""
    if lora.checkpoint != "final" and lora.epoch is not None:
        points = [p for p in points if p.epoch is not None and p.epoch <= lora.epoch]
    loss = final_loss(points)
    return round(loss, 6) if loss is not None else None


def _column_entry(column: Column, job: RenderJob, points: list[LossPoint]) -> mf.ColumnInfo:
    lora = column.lora
    export = None if lora is None else (
        f"acewatchd export {shlex.quote(job.dataset)} --checkpoint "
        f"{'final' if lora.checkpoint == 'final' else lora.epoch}")
    return {"key": column.key, "checkpoint": column.checkpoint, "epoch": column.epoch,
            "scale": column.scale, "path": None if lora is None else lora.path,
            "loss": None if lora is None else _loss_at(points, lora), "export": export}


def acestep_version(root: Path, simulated: bool = False) -> str | None:
    """ACE-Step's version from its checkout; the simulator says what it is."""
    return "SIMULATOR (test double)" if simulated else layout.acestep_version(root)


def _clip_entry(clip: Clip, job: RenderJob) -> mf.Clip:
    p = clip.prompt
    return {"number": clip.number, "name": clip.name, "slug": clip.slug, "seed": clip.seed,
            "prompt_index": clip.prompt_index, "prompt_name": clip.prompt_name,
            "prompt": {"caption": clip.caption, "lyrics": p.lyrics, "bpm": p.bpm, "key": p.key,
                       "time_signature": p.time_signature, "language": clip.language,
                       "duration": p.duration},
            "renders": {key: job.results[key][clip.number] for key in _keys(job)
                        if clip.number in job.results.get(key, {})}}


def _keys(job: RenderJob) -> list[str]:
    """The columns' keys in the page's order (rendering runs the base model last)."""
    return [c.key for c in job.columns] or list(job.results)


def write_run_files(job: RenderJob, ledger: Ledger, train: RunRow, lora: LoraChoice,
                    name: str) -> Manifest:
    points = loss_points(ledger, job.dataset, str(train.run_name))
    manifest = build_manifest(job, ledger, train, lora, name, points)
    folder = job.staging
    atomic_write_bytes(folder / "loss.png", plot_loss(
        points, title=f"Training loss · {job.dataset} · {train.run_name}"))
    page.write_playlist(folder, manifest)
    write_manifest_and_page(folder, manifest)
    return manifest


def write_manifest_and_page(folder: Path, manifest: Manifest) -> None:
    """samples.json and the page (again, once the analysis and the forecast are in)."""
    atomic_write_text(folder / outbox.MANIFEST,
                      json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    page.write_run_page(folder, manifest)


def summary(manifest: Manifest) -> str:
    clips = manifest["clips"]
    loss = manifest["training_run"]["final_loss"]
    columns = [c for c in manifest.get("columns", []) if c["checkpoint"] != "base"]
    adapters = len({c["checkpoint"] for c in columns})
    scales = sorted({c["scale"] for c in columns if c["scale"] is not None})
    parts = [f"{len(clips)} prompt{'s' * (len(clips) != 1)}"]
    parts += [] if manifest.get("finished", True) else ["progress report (run unfinished)"]
    parts += [f"epoch {manifest['lora']['epoch']}"] if manifest["lora"]["epoch"] else []
    parts += [f"{adapters} checkpoints"] if adapters > 1 else []
    parts += [f"final loss {loss:.4f}"] if loss is not None else []
    parts += [f"LoRA scale{'s' * (len(scales) > 1)} "
              f"{', '.join(f'{s:g}' for s in scales or [manifest['lora']['scale']])}"]
    parts += ["with base comparison"] if manifest["settings"]["compare_base"] else []
    return " · ".join(parts)


def record_speed(ledger: Ledger, job: RenderJob) -> None:
    """This render's pace, for the next grid's budget and `config check`."""
    clips = [c for call in job.calls for c in call]
    columns = len(job.results)
    record_render_speed(ledger, job.seconds, len(clips) * columns,
                        audio_seconds(clips) * columns)


# --------------------------------------------------------------------------- ledger


def start_record(ledger: Ledger, dataset: str) -> int:
    return runs.open_run(ledger, dataset, Job.RENDER, time.time())


def mark_stale_records(ledger: Ledger, dataset: str, current: int) -> None:
    """'running' render rows of a process that died (call holding the dataset lock)."""
    runs.mark_stale(ledger, (Job.RENDER,), "the process ended mid-render", dataset=dataset,
                    ended=time.time(), keep=current)


def finish_record(ledger: Ledger, render_id: int, outcome: Outcome, message: str, *,
                  run_name: str | None = None, train: RunRow | None = None,
                  checkpoint: str | None = None) -> None:
    facts = RunFacts(run_name=run_name, checkpoint=checkpoint)
    if train is not None:
        facts = RunFacts(train.content_hash, run_name, train.epochs_total, train.epochs_done,
                         checkpoint)
    runs.close_run(ledger, render_id, outcome, message, time.time(), facts)


def write_outbox_index(cfg: Config, ledger: Ledger) -> Path:
    summaries = {(ds, name): text for ds, name, text in runs.rendered_runs(ledger)}
    return page.write_index(cfg.paths.outbox, summaries)
