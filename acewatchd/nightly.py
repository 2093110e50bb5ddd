"""The nightly run: for each dataset whose content changed, prepare -> train -> render.

Datasets run one after another; one that fails does not stop the others. Every dataset gets a
``runs`` row (job "nightly" or "manual") with its outcome, so the history answers "what
happened last night" and the scheduler's "did this fire time already run?". A dataset is
trained when its content hash (prepare.dataset_content_hash) differs from the one its last
finished LoRA was trained on, or when an interrupted run of the same content is waiting to be
resumed. ACE-Step unreachable at the start is retried with backoff inside the window; if it
never answers the dataset is *skipped* (waiting for the next night), not failed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from acewatchd.config import Config
from acewatchd.errors import AcewatchdError, AlreadyRunning
from acewatchd.ledger import Ledger
from acewatchd.power import PowerPolicy, default_power
from acewatchd.runtime import Clock, SystemClock
from acewatchd.train import JobLock, last_train_run, mark_stale_runs
from acewatchd.train_session import TrainingJob, TrainResult, wait_for_server

logger = logging.getLogger(__name__)

# prepare.dataset_content_hash of a dataset without a single usable song.
EMPTY_CONTENT_HASH = hashlib.sha256().hexdigest()


@dataclass
class Hooks:
    """The stages around training (other modules own them; tests pass stand-ins)."""

    content_hash: Callable[[Config, Ledger, str], str]
    prepare: Callable[[Config, Ledger, str, threading.Event], Any]
    render: Callable[..., Any] | None


def default_hooks() -> Hooks:
    from acewatchd import prepare
    from acewatchd.render import render_run

    return Hooks(prepare.dataset_content_hash, prepare.prepare_dataset, render_run)


@dataclass
class NightlyEnv:
    ledger: Ledger
    client_factory: Callable[[], Any]
    clock: Clock = field(default_factory=SystemClock)
    stop: threading.Event = field(default_factory=threading.Event)
    power: PowerPolicy = field(default_factory=default_power)
    server: Any = None
    hooks: Hooks | None = None
    backoff: float = 5.0          # first retry delay when ACE-Step does not answer
    backoff_max: float = 300.0
    guard_interval: float = 5.0   # how often a running training checks window/stop/battery
    # Run folder unchanged this long = an old session is gone (TensorBoard flushes ~2 min).
    quiet_seconds: float = 300.0
    max_recoveries: int = 5
    # After training, ACE-Step's decoder stays PEFT-wrapped (CONTRACT §2) until the server
    # restarts; a managed server is restarted before the next training of the same night.
    server_dirty: bool = False

    @classmethod
    def default(cls, ledger: Ledger, config: Callable[[], Config], **kw: Any) -> NightlyEnv:
        def factory() -> Any:
            from acewatchd.acestep.client import AceStepClient

            ace = config().acestep
            return AceStepClient(ace.url, timeout=ace.timeout_seconds)

        return cls(ledger=ledger, client_factory=factory, **kw)

    def stages(self) -> Hooks:
        if self.hooks is None:
            self.hooks = default_hooks()
        return self.hooks


def run_nightly(config: Callable[[], Config], env: NightlyEnv, datasets: list[str], *,
                scheduled_for: float | None, window_end: float | None) -> dict[str, str]:
    """Every dataset in turn; returns {dataset: outcome}."""
    outcomes: dict[str, str] = {}
    for name in datasets:
        if env.stop.is_set() or (window_end is not None and env.clock.time() >= window_end):
            logger.info("nightly run ends before %s (stop or window end)", name)
            break
        outcomes[name] = run_dataset(config, env, name, scheduled_for=scheduled_for,
                                     window_end=window_end)
    return outcomes


def already_ran(ledger: Ledger, dataset: str, scheduled_for: float) -> bool:
    """A nightly row for this fire time that is not a resumable interruption."""
    row = ledger.connect().execute(
        "SELECT 1 FROM runs WHERE dataset=? AND job='nightly' AND ABS(scheduled_for - ?) < 1"
        " AND outcome != 'interrupted' LIMIT 1", (dataset, scheduled_for)).fetchone()
    return row is not None


def run_dataset(config: Callable[[], Config], env: NightlyEnv, dataset: str, *,
                scheduled_for: float | None, window_end: float | None, job: str = "nightly",
                force: bool = False, fail_if_locked: bool = False) -> str:
    """One dataset's pipeline with its ledger row; never raises except AlreadyRunning."""
    if scheduled_for is not None and already_ran(env.ledger, dataset, scheduled_for):
        logger.info("%s already ran for this start time; not running it twice", dataset)
        return "already"
    row_id = _open_row(env, dataset, job, scheduled_for)
    outcome, message = "failed", ""
    extra: dict[str, Any] = {}
    with structlog.contextvars.bound_contextvars(dataset=dataset, job=job):
        try:
            outcome, message, extra = _pipeline(config(), env, dataset, window_end, force,
                                                fail_if_locked)
        except AlreadyRunning:
            _close_row(env, row_id, "skipped", "another training job is running", {})
            raise
        except AcewatchdError as exc:
            message = str(exc)
        except Exception as exc:  # a bug in one dataset must not stop the others
            logger.exception("nightly run of %s failed", dataset)
            message = f"unexpected error: {exc!r}"
    _close_row(env, row_id, outcome, message, extra)
    if outcome == "failed":
        env.ledger.record_event("error", f"{job} run failed: {message}", dataset=dataset)
    return outcome


def _open_row(env: NightlyEnv, dataset: str, job: str, scheduled_for: float | None) -> int:
    with env.ledger.tx() as conn:
        cursor = conn.execute(
            "INSERT INTO runs (dataset, job, scheduled_for, started, outcome) VALUES"
            " (?, ?, ?, ?, 'running')", (dataset, job, scheduled_for, env.clock.time()))
        return int(cursor.lastrowid or 0)


def _close_row(env: NightlyEnv, row_id: int, outcome: str, message: str,
               extra: dict[str, Any]) -> None:
    with env.ledger.tx() as conn:
        conn.execute("UPDATE runs SET ended=?, outcome=?, message=?, content_hash=?, run_name=?,"
                     " epochs_total=?, epochs_done=?, checkpoint=? WHERE id=?",
                     (env.clock.time(), outcome, message, extra.get("content_hash"),
                      extra.get("run_name"), extra.get("epochs_total"),
                      extra.get("epochs_done"), extra.get("checkpoint"), row_id))
    logger.info("%s: %s%s", "nightly", outcome, f" ({message})" if message else "")


def needs_training(ledger: Ledger, dataset: str, content_hash: str) -> str:
    """Why to train ("" = no need): new content, or an interrupted run to resume."""
    last = last_train_run(ledger, dataset)
    if last and last["outcome"] == "interrupted" and last["content_hash"] == content_hash:
        return f"resuming run {last['run_name']}"
    done = last_train_run(ledger, dataset, ("done",))
    if done and done["content_hash"] == content_hash:
        return ""
    return "content changed" if done else "first LoRA"


def _acquire(env: NightlyEnv, lock: JobLock, window_end: float | None, fail: bool) -> bool:
    while not lock.try_acquire():
        if fail:
            raise AlreadyRunning(f"{lock.path}: another training job is running (pid "
                                 f"{lock.holder()}); try again when it has finished")
        if env.stop.is_set() or window_end is None or env.clock.time() >= window_end:
            return False
        env.clock.sleep(min(60.0, env.backoff_max), env.stop)
    return True


def _pipeline(cfg: Config, env: NightlyEnv, dataset: str, window_end: float | None,
              force: bool, fail_if_locked: bool) -> tuple[str, str, dict[str, Any]]:
    lock = JobLock(cfg.paths.state)
    if not _acquire(env, lock, window_end, fail_if_locked):
        if env.stop.is_set():
            return "interrupted", "acewatchd stopped while another job held the lock", {}
        return "skipped", "another training job held the lock all window", {}
    try:
        mark_stale_runs(env.ledger, dataset, ("train", "manual"))
        if cfg.schedule_for(dataset).require_ac_power and not env.power.on_ac_power():
            return "skipped", "on battery power (require_ac_power = true)", {}
        stages = env.stages()
        content_hash = stages.content_hash(cfg, env.ledger, dataset)
        if content_hash == EMPTY_CONTENT_HASH:  # nothing stubbed yet: no reason to wake ACE-Step
            return "skipped", "no songs ready yet (copy audio into its drop folder)", {}
        why = needs_training(env.ledger, dataset, content_hash) or ("forced" if force else "")
        if not why:
            return "skipped", "unchanged since its last LoRA", {"content_hash": content_hash}
        logger.info("%s: training (%s)", dataset, why)
        if not _server_ready(env, window_end):
            if env.stop.is_set():  # not "skipped": a restart inside the window tries again
                return "interrupted", "acewatchd stopped while waiting for ACE-Step", {}
            return "skipped", (f"ACE-Step did not answer at {cfg.acestep.url} within the "
                               "window; waiting for the next night"), {}
        with env.power.hold_awake(os.getpid()):
            return _prepare_train_render(cfg, env, dataset, window_end)
    finally:
        lock.release()


def _server_ready(env: NightlyEnv, window_end: float | None) -> bool:
    server = env.server
    if server is not None and getattr(server, "managed", False):
        delay = env.backoff
        while True:
            try:
                server.ensure_running()
                break
            except AcewatchdError as exc:
                if env.stop.is_set() or (window_end is not None
                                         and env.clock.time() + delay >= window_end):
                    logger.warning("managed ACE-Step did not start: %s", exc)
                    return False
                logger.warning("managed ACE-Step did not start (%s); retrying", exc)
                env.clock.sleep(delay, env.stop)
                delay = min(delay * 2, env.backoff_max)
    return wait_for_server(env, window_end)


def _prepare_train_render(cfg: Config, env: NightlyEnv, dataset: str,
                          window_end: float | None) -> tuple[str, str, dict[str, Any]]:
    stages = env.stages()
    prep = stages.prepare(cfg, env.ledger, dataset, env.stop)
    if not getattr(prep, "samples_ok", 0):
        return "failed", "no usable samples after preparing", {}
    if env.stop.is_set() or (window_end is not None and env.clock.time() >= window_end):
        # Preparing took the rest of the window; the tensors are kept for the next night.
        return "interrupted", "prepared, but the window ended before training", \
            {"content_hash": prep.content_hash}
    _fresh_decoder(env)
    env.server_dirty = True
    result = TrainingJob(cfg, env, dataset, tensor_dir=prep.tensor_dir_rel,
                         content_hash=prep.content_hash, songs=prep.samples_ok,
                         window_end=window_end).run()
    extra = _extra(result, prep.content_hash)
    if result.outcome != "done":
        return result.outcome, result.message, extra
    if stages.render is None or env.stop.is_set() or not cfg.render_for(dataset).enabled:
        return "done", "trained (not rendered)", extra
    try:
        folder = stages.render(cfg, env.ledger, dataset, run_id=result.run_id, checkpoint=None,
                               server=env.server)
    except Exception as exc:  # the LoRA is kept; `acewatchd render` can retry
        logger.exception("rendering %s failed", dataset)
        return "failed", f"trained, but rendering failed: {exc}", extra
    # render_run restarted a managed server and unloaded the LoRA: the decoder is clean again.
    env.server_dirty = not getattr(env.server, "managed", False)
    return "done", f"trained and rendered to {folder}", extra


def _fresh_decoder(env: NightlyEnv) -> None:
    """Restart a managed server that trained earlier tonight (its decoder is still wrapped)."""
    if not env.server_dirty:
        return
    if getattr(env.server, "managed", False):
        logger.info("restarting the managed ACE-Step server: it trained earlier tonight")
        env.server.restart()
    else:
        logger.warning("ACE-Step trained earlier tonight and is not managed by acewatchd; "
                       "its decoder may still carry the last LoRA (restart it by hand)")


def _extra(result: TrainResult, content_hash: str) -> dict[str, Any]:
    return {"content_hash": content_hash, "run_name": result.run_name,
            "epochs_total": result.epochs_total, "epochs_done": result.epochs_done,
            "checkpoint": result.adapter or None}
