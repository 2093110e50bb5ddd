"""Render the checkpoint grid of a training run into the outbox.

Sequence (CONTRACT §1a, §1b, §2): restart a managed server (after training ACE-Step's decoder
stays wrapped), then in ONE Gradio session, for each chosen adapter, oldest first, loaded
once: /load_lora (the client unloads a named adapter first), /set_use_lora true, and per
scale /set_lora_scale and that column's clips; then /unload_lora (always, also when something
failed), and with compare_base the same prompts and seeds again on the restored base decoder.
What is rendered is planned in plan.py; what is written, in files.py.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Protocol, Self

from acewatchd.acestep.apicheck import ApiMatch
from acewatchd.acestep.generation import GenerationRequest, GenerationResult, Limits
from acewatchd.analysis.schema import AnalysisReport
from acewatchd.config.schema import DATASET_NAME, ESTIMATED_RENDER_PACE, Config, Render
from acewatchd.errors import AcewatchdError
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.runs import Outcome, RunRow
from acewatchd.ledger.samples import render_speed
from acewatchd.nightly.render import files as rf
from acewatchd.nightly.render.analyze import finish_page, verdict
from acewatchd.nightly.render.lora import GridChoice, LoraChoice, choose_grid, find_training_run
from acewatchd.nightly.render.plan import (
    Clip,
    Column,
    RenderJob,
    build_clips,
    fit_budget,
    grid_columns,
    grid_seconds,
    plan_calls,
)
from acewatchd.outbox import folders as outbox
from acewatchd.outbox.manifest import Manifest
from acewatchd.outbox.notify import Notifier, build_notifier
from acewatchd.runtime import Server
from acewatchd.util.files import is_disk_full

logger = logging.getLogger(__name__)


class RenderClient(Protocol):
    """The part of AceStepClient a render uses, in one session (a context manager)."""

    @property
    def api_match(self) -> ApiMatch: ...
    @property
    def limits(self) -> Limits: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...
    def load_lora(self, path: str) -> str: ...
    def unload_lora(self) -> str: ...
    def set_use_lora(self, on: bool) -> str: ...
    def set_lora_scale(self, scale: float) -> str: ...
    def generate(self, req: GenerationRequest, dest_dir: Path) -> GenerationResult: ...


def run_calls(client: RenderClient, job: RenderJob, column: Column) -> None:
    out = job.results.setdefault(column.key, {})
    for index, call in enumerate(job.calls, 1):
        first = call[0]
        logger.info("rendering %s call %d/%d (%d clip(s), %s)", column.key, index,
                    len(job.calls), len(call), first.name)
        started = time.monotonic()
        result = client.generate(_request(first, call, job.rcfg), job.staging / ".incoming")
        took = time.monotonic() - started
        job.seconds += took
        job.simulated |= any(isinstance(m, dict) and "simulator" in m
                              for m in result.metadata)
        out.update(rf.store_call(call, result, column, job.staging, job.rcfg, took, index))


def _request(first: Clip, call: list[Clip], rcfg: Render) -> GenerationRequest:
    p = first.prompt
    return GenerationRequest(
        caption=first.caption, lyrics=p.lyrics or "[Instrumental]", bpm=p.bpm, keyscale=p.key,
        time_signature=p.time_signature, language=first.language, duration=p.duration,
        steps=rcfg.steps, guidance=rcfg.guidance, seeds=[c.seed for c in call],
        batch_size=len(call), audio_format=rcfg.audio_format)


def render_grid(client: RenderClient, job: RenderJob) -> None:
    """Each adapter loaded once with its columns; /unload_lora whatever happened; then the
    base clips."""
    lora_columns = [c for c in job.columns if c.lora is not None]
    try:
        for adapter in dict.fromkeys(c.lora for c in lora_columns if c.lora is not None):
            client.load_lora(adapter.path)
            client.set_use_lora(True)
            for column in (c for c in lora_columns if c.lora == adapter):
                _set_scale(client, column.scale if column.scale is not None else 1.0)
                run_calls(client, job, column)
    except BaseException:
        _unload_quietly(client)
        raise
    client.unload_lora()  # if this fails the "base" clips would carry the LoRA: stop here
    for column in (c for c in job.columns if c.lora is None):
        run_calls(client, job, column)


def _set_scale(client: RenderClient, scale: float) -> None:
    answer = client.set_lora_scale(scale)
    if answer.lstrip().startswith(("⚠", "\u00e2\u0161")):  # "scale unchanged", "partial"
        logger.warning("ACE-Step did not fully apply LoRA scale %g: %s", scale,
                       answer.strip()[:200])


def _unload_quietly(client: RenderClient) -> None:
    try:
        client.unload_lora()
    except Exception as exc:  # noqa: BLE001 - the original failure is the one to report
        logger.warning("could not unload the LoRA after a failed render: %s", exc)


# --------------------------------------------------------------------------- entry points


ClientFactory = Callable[[Config, Render], RenderClient]  # a new session, not yet entered


def default_client(cfg: Config, rcfg: Render | None = None) -> RenderClient:
    """A new session. A generation call may take far longer than a status call (a batch of
    long clips on a laptop GPU), and a timed-out call is cancelled and retried, which wastes
    the work done: so the budget grows with batch size and clip length."""
    from acewatchd.acestep.client import AceStepClient

    timeout = cfg.acestep.timeout_seconds
    if rcfg is not None and rcfg.prompts:
        longest = max(p.duration for p in rcfg.prompts)
        timeout = max(timeout, 60.0 + 2.0 * rcfg.batch_size * longest)
    return AceStepClient(cfg.acestep.url, timeout=timeout)


def render_run(cfg: Config, ledger: Ledger, dataset: str, *, run_id: int | None = None,
               checkpoint: str | None = None, server: Server | None = None,
               notifier: Notifier | None = None,
               client_factory: ClientFactory = default_client) -> Path:
    """Render the samples of a training run (default: the latest finished one) into the
    outbox and return the run folder. Raises (after notifying) when anything fails; no
    partial run folder is ever left in the outbox. The caller decides whether rendering is
    wanted (``cfg.render_for(dataset).enabled``); the notifier defaults to the configured one."""
    notifier = notifier if notifier is not None else build_notifier(cfg)
    render_id = rf.start_record(ledger, dataset)
    try:
        if not DATASET_NAME.match(dataset):  # it becomes a folder name under the outbox
            raise AcewatchdError(f"{dataset!r} is not a dataset name (a folder name in drop/)")
        train = find_training_run(cfg, ledger, dataset, run_id)
        grid = choose_grid(cfg, dataset, train, checkpoint)
        folder, manifest, report = _render_locked(cfg, ledger, dataset, train, grid, server,
                                          client_factory, render_id)
    except Exception as exc:
        message = failure_message(cfg, dataset, exc)
        rf.finish_record(ledger, render_id, Outcome.FAILED, message)
        ledger.record_event("error", f"rendering samples failed: {message}", dataset, "render")
        notifier.notify(f"acewatchd: render failed · {dataset}", message, failed=True)
        raise
    except BaseException:
        rf.finish_record(ledger, render_id, Outcome.INTERRUPTED, "stopped before it finished")
        raise
    summary = rf.summary(manifest)
    alarm = verdict(report)
    if alarm:   # the run failed its purpose, whatever the renders say
        summary = f"{summary} · {alarm}"
        ledger.record_event("error", alarm, dataset, "render")
        logger.error("render of %s: %s", dataset, alarm)
    elif report is not None and report["advice"]:
        summary = f"{summary} · {report['advice']}"
    rf.finish_record(ledger, render_id, Outcome.DONE, summary, run_name=folder.name, train=train,
                     checkpoint=grid.adapters[-1].path)
    try:
        rf.write_outbox_index(cfg, ledger)
    except OSError as exc:  # the run itself is complete; the next render rewrites the index
        logger.warning("could not rewrite %s: %s", cfg.paths.outbox / "index.html", exc)
    # The run by its outbox name, not its absolute path (a webhook goes off this machine).
    title = "LoRA had no audible effect" if alarm else "samples ready"
    forecast = f" · {manifest['forecast']}" if manifest.get("forecast") else ""
    notifier.notify(f"acewatchd: {title} · {dataset}",
                    f"{summary}{forecast} — outbox/{dataset}/{folder.name}", failed=bool(alarm))
    return folder


def failure_message(cfg: Config, dataset: str, exc: Exception) -> str:
    """What the user is told of a failed render. A full disk names the folder, not the temp
    file it hit (the run's staging folder is gone by the time anyone reads this)."""
    if not is_disk_full(exc):
        return str(exc)
    # A failed copy names its source first and the file it was writing second.
    hit = Path(str(getattr(exc, "filename2", "") or getattr(exc, "filename", "")
                   or cfg.paths.outbox))
    outbox_dir = cfg.paths.outbox
    if not isinstance(exc, OSError):  # SQLite's "database or disk is full"
        where = f"the ledger ({cfg.paths.state})"
    elif hit.is_relative_to(outbox_dir):
        where = f"the outbox ({outbox_dir})"
    else:
        where = str(hit.parent)
    return (f"no space left on the disk holding {where}: free some space (or lower "
            f"[outbox] keep_runs); the render runs again at the next nightly window, or now "
            f"with `acewatchd render {shlex.quote(dataset)}`")


def _render_locked(cfg: Config, ledger: Ledger, dataset: str, train: RunRow,
                   grid: GridChoice, server: Server | None, client_factory: ClientFactory,
                   render_id: int) -> tuple[Path, Manifest, AnalysisReport | None]:
    ds_dir = cfg.paths.outbox / dataset
    with outbox.dataset_lock(ds_dir):
        rf.mark_stale_records(ledger, dataset, render_id)  # left by a render that was killed
        outbox.clean_staging(ds_dir)
        name = outbox.unique_name(ds_dir, outbox.run_folder_name(datetime.now(), train.id))
        staging = outbox.new_staging(ds_dir, name)
        try:
            job = _render_into(cfg, ledger, dataset, staging, grid, server, client_factory)
            manifest = rf.write_run_files(job, ledger, train, grid.adapters[-1], name)
            report = finish_page(cfg, ledger, dataset, staging, manifest)
            folder = outbox.commit(staging, ds_dir / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    removed = outbox.prune(cfg.paths.outbox, dataset, cfg.outbox.keep_runs, folder)
    logger.info("samples of %s are in %s (%d old run(s) removed)", dataset, folder, len(removed))
    return folder, manifest, report


def _render_into(cfg: Config, ledger: Ledger, dataset: str, staging: Path, grid: GridChoice,
                 server: Server | None, client_factory: ClientFactory) -> RenderJob:
    rcfg = cfg.render_for(dataset)
    if not rcfg.prompts:
        raise AcewatchdError(f"render.prompts: no sample prompts configured for {dataset}")
    if server is not None and server.managed:
        logger.info("restarting the managed ACE-Step server before loading the LoRA")
        server.restart()
    with client_factory(cfg, rcfg) as client:
        rcfg = within_limits(rcfg, client.limits)
        clips = build_clips(rcfg, cfg.dataset(dataset))
        job = RenderJob(cfg, dataset, rcfg, plan_calls(clips, rcfg.batch_size), staging, {},
                        acestep_api=client.api_match.summary, notes=list(grid.notes),
                        finished=grid.finished)
        _plan_grid(job, ledger, grid.adapters, clips)
        render_grid(client, job)
    shutil.rmtree(staging / ".incoming", ignore_errors=True)
    rf.record_speed(ledger, job)
    return job


def _plan_grid(job: RenderJob, ledger: Ledger, adapters: list[LoraChoice],
               clips: list[Clip]) -> None:
    """The columns, within ``[render] max_minutes`` at the last measured speed."""
    speed = render_speed(ledger)
    job.per_audio_second = speed.seconds_per_audio_second if speed else None
    pace = job.per_audio_second or ESTIMATED_RENDER_PACE
    columns = grid_columns(adapters, job.rcfg.lora_scales(), job.rcfg.compare_base)
    job.columns, job.dropped = fit_budget(columns, clips, pace, job.rcfg.max_minutes)
    if job.dropped:
        names = ", ".join(a.column.replace("_", " ") for a in job.dropped)
        job.notes.append(f"left out to fit max_minutes = {job.rcfg.max_minutes:g}: {names} "
                         f"(the grid would have taken about "
                         f"{grid_seconds(columns, clips, pace) / 60:.0f} min)")
    for note in job.notes:
        logger.warning("render of %s: %s", job.dataset, note)
    logger.info("rendering %d clip(s) in %d column(s), about %.0f min", len(clips),
                len(job.columns), grid_seconds(job.columns, clips, pace) / 60)


def within_limits(rcfg: Render, limits: Limits) -> Render:
    """The render settings clamped to what this server allows: ACE-Step bounds batch size and
    clip length by its GPU (a GPU-less server: batch 1, 180 s), and a call beyond them fails
    with "Value 2 is greater than maximum value 1". Said once per render, in the log."""
    if limits.max_batch is not None and rcfg.batch_size > limits.max_batch:
        logger.warning("ACE-Step allows at most %d clip(s) per call on this machine; rendering "
                       "with batch_size %d instead of %d", limits.max_batch, limits.max_batch,
                       rcfg.batch_size)
        rcfg = replace(rcfg, batch_size=max(1, limits.max_batch))
    longest = limits.max_duration
    if longest is not None and longest > 0 and any(p.duration > longest for p in rcfg.prompts):
        logger.warning("ACE-Step allows clips of at most %gs on this machine; longer prompts "
                       "are rendered at %gs", longest, longest)
        rcfg = replace(rcfg, prompts=[replace(p, duration=min(p.duration, longest))
                                      for p in rcfg.prompts])
    return rcfg


def clear_unfinished(cfg: Config, ledger: Ledger) -> list[str]:
    """At start-up: render rows a killed process left 'running' and its staging folders, per
    outbox dataset whose render lock is free (a render running now keeps its own). Returns the
    datasets cleared. The render itself is pending work the next night finds (nightly/run)."""
    cleared: list[str] = []
    try:
        folders = sorted(p for p in cfg.paths.outbox.iterdir() if p.is_dir()
                         and not p.is_symlink() and DATASET_NAME.match(p.name))
    except OSError:
        return cleared
    for ds_dir in folders:
        try:
            with outbox.dataset_lock(ds_dir):
                rf.mark_stale_records(ledger, ds_dir.name, 0)
                outbox.clean_staging(ds_dir)
        except AcewatchdError:
            continue  # `acewatchd render` is rendering it right now
        cleared.append(ds_dir.name)
    return cleared
