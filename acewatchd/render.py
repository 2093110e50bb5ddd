"""Render sample clips with a freshly trained LoRA into the outbox.

Sequence (CONTRACT §1a, §1b, §2): restart a managed server (after training ACE-Step's decoder
stays wrapped), then in ONE Gradio session: /load_lora, /set_use_lora true, /set_lora_scale,
the LoRA clips, /unload_lora (always, also when something failed), and with compare_base the
same prompts and seeds again on the restored base decoder.

How prompts map to generation calls: ACE-Step renders a batch from ONE caption/lyrics/metas set;
the clips of a batch differ only by seed. So prompts with identical generation settings (all
but name and seed) form a group, and each group is cut into calls of up to ``batch_size``
clips. N such prompts take ceil(N / batch_size) calls; prompts that differ in their text cannot
share a call and take one call (per batch_size seeds) each. See ``plan_calls``.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from acewatchd import outbox
from acewatchd.config import DATASET_NAME, Config, Dataset, Prompt, Render
from acewatchd.errors import AcewatchdError
from acewatchd.ledger import Ledger
from acewatchd.notify import Notifier, build_notifier
from acewatchd.render_lora import LoraChoice, choose_adapter, find_training_run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clip:
    number: int
    name: str
    slug: str
    caption: str
    language: str
    seed: int
    prompt: Prompt
    prompt_index: int = 0     # 1-based position in [render] prompts; takes share it
    prompt_name: str = ""

    def settings(self) -> tuple[Any, ...]:
        """What must be equal for two clips to share one generation call."""
        p = self.prompt
        return (self.caption, p.lyrics, p.bpm, p.key, p.time_signature, self.language,
                p.duration)


def fill_tag(caption: str, ds: Dataset) -> str:
    """Put the dataset's trigger tag where "{tag}" stands, else where training put it."""
    tag = ds.tag.strip()
    if "{tag}" in caption and tag:
        return caption.replace("{tag}", tag).strip()
    if "{tag}" in caption:  # no tag: drop the placeholder with its separator, not ", ,"
        return re.sub(r"\{tag\}\s*,\s*|\s*,\s*\{tag\}|\{tag\}", "", caption).strip()
    if tag:
        return f"{caption}, {tag}" if ds.tag_position == "append" else f"{tag}, {caption}"
    return caption.strip()


def build_clips(rcfg: Render, ds: Dataset) -> list[Clip]:
    """One clip per prompt and seed (a prompt's ``seeds`` are takes of it), numbered 1..n."""
    clips: list[Clip] = []
    for index, p in enumerate(rcfg.prompts, 1):
        caption = fill_tag(p.caption, ds)
        name = p.name.strip() or caption[:48] or f"prompt {index}"
        slug = outbox.slugify(p.name or caption, f"prompt{index}")
        language = p.language if p.language != "unknown" else ds.language
        takes = p.seeds or [p.seed]
        for seed in takes:
            several = len(takes) > 1
            clips.append(Clip(len(clips) + 1, f"{name} · seed {seed}" if several else name,
                              f"{slug}-s{seed}" if several else slug, caption, language, seed,
                              p, index, name))
    return clips


def plan_calls(clips: list[Clip], batch_size: int) -> list[list[Clip]]:
    """Group clips by settings() (first appearance order), then chunk by batch_size."""
    groups: dict[tuple[Any, ...], list[Clip]] = {}
    for clip in clips:
        groups.setdefault(clip.settings(), []).append(clip)
    size = max(1, batch_size)
    return [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]


# --------------------------------------------------------------------------- one render


@dataclass
class RenderJob:
    cfg: Config
    dataset: str
    rcfg: Render
    calls: list[list[Clip]]
    staging: Path
    results: dict[str, dict[int, dict[str, Any]]]
    seconds: float = 0.0
    simulated: bool = False  # the answers came from acewatchd's ACE-Step simulator

    def run_calls(self, client: Any, variant: str) -> None:
        from acewatchd.render_files import store_call

        out = self.results.setdefault(variant, {})
        for index, call in enumerate(self.calls, 1):
            first = call[0]
            logger.info("rendering %s call %d/%d (%d clip(s), %s)", variant, index,
                        len(self.calls), len(call), first.name)
            started = time.monotonic()
            result = client.generate(_request(first, call, self.rcfg), self.staging / ".incoming")
            took = time.monotonic() - started
            self.seconds += took
            self.simulated |= any(isinstance(m, dict) and "simulator" in m
                                  for m in result.metadata)
            out.update(store_call(call, result, variant, self.staging, self.rcfg, took, index))


def _request(first: Clip, call: list[Clip], rcfg: Render) -> Any:
    from acewatchd.acestep.client import GenerationRequest

    p = first.prompt
    return GenerationRequest(
        caption=first.caption, lyrics=p.lyrics or "[Instrumental]", bpm=p.bpm, keyscale=p.key,
        time_signature=p.time_signature, language=first.language, duration=p.duration,
        steps=rcfg.steps, guidance=rcfg.guidance, seeds=[c.seed for c in call],
        batch_size=len(call), audio_format=rcfg.audio_format)


def render_with_lora(client: Any, job: RenderJob, lora: LoraChoice) -> None:
    """LoRA clips, then /unload_lora whatever happened; then the base clips."""
    try:
        client.load_lora(lora.path)
        client.set_use_lora(True)
        client.set_lora_scale(job.rcfg.lora_scale)
        job.run_calls(client, "lora")
    except BaseException:
        _unload_quietly(client)
        raise
    client.unload_lora()  # if this fails the "base" clips would carry the LoRA: stop here
    if job.rcfg.compare_base:
        job.run_calls(client, "base")


def _unload_quietly(client: Any) -> None:
    try:
        client.unload_lora()
    except Exception as exc:  # noqa: BLE001 - the original failure is the one to report
        logger.warning("could not unload the LoRA after a failed render: %s", exc)


# --------------------------------------------------------------------------- entry points


ClientFactory = Callable[..., Any]  # (cfg, rcfg) -> a client context manager


def default_client(cfg: Config, rcfg: Render | None = None) -> Any:
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
               checkpoint: str | None = None, server: Any = None,
               notifier: Notifier | None = None,
               client_factory: ClientFactory = default_client) -> Path:
    """Render the samples of a training run (default: the latest finished one) into the
    outbox and return the run folder. Raises (after notifying) when anything fails; no
    partial run folder is ever left in the outbox. The caller decides whether rendering is
    wanted (``cfg.render_for(dataset).enabled``); the notifier defaults to the configured one."""
    from acewatchd import render_files as rf

    notifier = notifier if notifier is not None else build_notifier(cfg)
    render_id = rf.start_record(ledger, dataset)
    try:
        if not DATASET_NAME.match(dataset):  # it becomes a folder name under the outbox
            raise AcewatchdError(f"{dataset!r} is not a dataset name (letters, digits, '_-.')")
        train = find_training_run(cfg, ledger, dataset, run_id)
        lora = choose_adapter(cfg, dataset, train, checkpoint)
        folder, manifest = _render_locked(cfg, ledger, dataset, train, lora, server,
                                          client_factory, render_id)
    except Exception as exc:
        rf.finish_record(ledger, render_id, "failed", str(exc))
        ledger.record_event("error", f"rendering samples failed: {exc}", dataset, "render")
        notifier.notify(f"acewatchd: render failed · {dataset}", str(exc), failed=True)
        raise
    except BaseException:
        rf.finish_record(ledger, render_id, "interrupted", "stopped before it finished")
        raise
    summary = rf.summary(manifest)
    rf.finish_record(ledger, render_id, "done", summary, run_name=folder.name, train=train,
                     checkpoint=lora.path)
    try:
        rf.write_outbox_index(cfg, ledger)
    except OSError as exc:  # the run itself is complete; the next render rewrites the index
        logger.warning("could not rewrite %s: %s", cfg.paths.outbox / "index.html", exc)
    notifier.notify(f"acewatchd: samples ready · {dataset}", f"{summary} — {folder}")
    return folder


def _render_locked(cfg: Config, ledger: Ledger, dataset: str, train: dict[str, Any],
                   lora: LoraChoice, server: Any, client_factory: ClientFactory,
                   render_id: int) -> tuple[Path, dict[str, Any]]:
    from acewatchd import render_files as rf

    ds_dir = cfg.paths.outbox / dataset
    with outbox.dataset_lock(ds_dir):
        rf.mark_stale_records(ledger, dataset, render_id)  # left by a render that was killed
        outbox.clean_staging(ds_dir)
        name = outbox.unique_name(ds_dir, outbox.run_folder_name(datetime.now(), train["id"]))
        staging = outbox.new_staging(ds_dir, name)
        try:
            job = _render_into(cfg, dataset, staging, lora, server, client_factory)
            manifest = rf.write_run_files(job, ledger, train, lora, name)
            folder = outbox.commit(staging, ds_dir / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    removed = outbox.prune(cfg.paths.outbox, dataset, cfg.outbox.keep_runs, folder)
    logger.info("samples of %s are in %s (%d old run(s) removed)", dataset, folder, len(removed))
    return folder, manifest


def _render_into(cfg: Config, dataset: str, staging: Path, lora: LoraChoice, server: Any,
                 client_factory: ClientFactory) -> RenderJob:
    rcfg = cfg.render_for(dataset)
    if not rcfg.prompts:
        raise AcewatchdError(f"render.prompts: no sample prompts configured for {dataset}")
    calls = plan_calls(build_clips(rcfg, cfg.dataset(dataset)), rcfg.batch_size)
    job = RenderJob(cfg, dataset, rcfg, calls, staging, {})
    if server is not None and getattr(server, "managed", False):
        logger.info("restarting the managed ACE-Step server before loading the LoRA")
        server.restart()
    with client_factory(cfg, rcfg) as client:
        render_with_lora(client, job, lora)
    shutil.rmtree(staging / ".incoming", ignore_errors=True)
    return job


def cmd_render(args: argparse.Namespace) -> int:
    """`acewatchd render <dataset> [--checkpoint N|folder]`."""
    from acewatchd.config import load_config
    from acewatchd.log import setup_logging
    from acewatchd.train import JobLock

    cfg = load_config(args.config)
    setup_logging(cfg.paths.logs, cfg.logging.level, console=True)
    if cfg.acestep.manage_server:
        logger.warning("acestep.manage_server is on, but `acewatchd render` does not restart "
                       "the server; if it trained since its last start, restart it first")
    ledger = Ledger(cfg.paths.state)
    # The training job lock: never load a LoRA while ACE-Step trains (its decoder is wrapped).
    with JobLock(cfg.paths.state):
        folder = render_run(cfg, ledger, args.dataset, checkpoint=args.checkpoint,
                            notifier=build_notifier(cfg))
    print(f"samples: {folder / 'index.html'}")
    return 0


