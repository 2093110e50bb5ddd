"""One training session (one night) of a dataset's LoRA run, through one ACE-Step session.

The run is started or resumed (``TrainingJob._plan``), then trained with /load_training_dataset
and /training_wrapper on a single client. A guard thread watches the window's end, the daemon's
stop and the power source and calls /stop_training *on that same client* (ACE-Step's training
state lives in the Gradio session; another session is told "No training in progress"). The
run is then marked interrupted with its newest checkpoint, and the next session resumes from it
with the same total epochs. A lost stream (ServerUnavailable) is recovered: wait for the server,
wait until the run folder stops changing (an old session may still be training and cannot be
stopped from a new one), finish if it left a final adapter, else resume from the newest
checkpoint. File times are compared with the real clock (they are real files); window and
backoff use the injected one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from acewatchd.acestep import layout
from acewatchd.acestep.errors import AceStepError, ServerUnavailable
from acewatchd.acestep.progress import TrainingProgress
from acewatchd.acestep.training_stream import TrainingOutcome
from acewatchd.config.schema import Config
from acewatchd.errors import AcewatchdError
from acewatchd.ledger import runs
from acewatchd.ledger.runs import Job, Outcome, RunFacts, RunRow
from acewatchd.nightly.env import NightlyEnv, TrainingClient, wait_for_server
from acewatchd.nightly.train.params import train_params

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    outcome: Outcome                  # done | interrupted | failed | skipped
    run_id: int | None = None
    run_name: str = ""
    epochs_total: int = 0
    epochs_done: int = 0
    adapter: str = ""                 # relative to the ACE-Step root, when done
    message: str = ""


class _Guard(threading.Thread):
    """Stops training through the *same* client at window end, daemon stop or on battery."""

    def __init__(self, client: TrainingClient, env: NightlyEnv, window_end: float | None,
                 need_ac: bool) -> None:
        super().__init__(name="train-guard", daemon=True)
        self.client, self.env, self.window_end, self.need_ac = client, env, window_end, need_ac
        self.finished = threading.Event()
        self.reason = ""
        self.asked = ""   # a reason from the stream (e.g. a resume ACE-Step ignored)

    def request(self, why: str) -> None:
        """Stop the training for ``why`` at the next tick (from the stream's thread)."""
        self.asked = why

    def _why(self, check_power: bool) -> str:
        if self.asked:
            return self.asked
        if self.env.stop.is_set():
            return "acewatchd is stopping"
        if self.window_end is not None and self.env.clock.time() >= self.window_end:
            return "the training window ended"
        if check_power and self.need_ac and not self.env.power.on_ac_power():
            return "running on battery (require_ac_power)"
        return ""

    def run(self) -> None:
        # Short ticks so a daemon stop or the end of training is seen at once; the power
        # source (a pmset subprocess) is asked only every guard_interval.
        tick = min(self.env.guard_interval, 0.25)
        next_power = 0.0
        while not self.finished.wait(tick):
            now = time.monotonic()
            why = self._why(now >= next_power)
            next_power = now + self.env.guard_interval if now >= next_power else next_power
            if not why:
                continue
            try:
                answer = self.client.stop_training()
            except Exception as exc:  # retried; the session may be reconnecting
                logger.warning("stop_training failed: %s", exc)
                self.finished.wait(self.env.guard_interval)
                continue
            logger.info("stopping training: %s (ACE-Step: %s)", why, answer.strip()[:200])
            self.reason = why
            if "no training in progress" not in answer.lower():
                return
            # Asked before the training loop began (it checks the flag per batch only once
            # running): ask again until it takes.
            self.finished.wait(self.env.guard_interval)

    def done(self) -> None:
        self.finished.set()
        self.join(timeout=5)


class TrainingJob:
    """One training session (one night) of a run; several sessions make a resumed run."""

    def __init__(self, cfg: Config, env: NightlyEnv, dataset: str, *, tensor_dir: str,
                 content_hash: str, songs: int, window_end: float | None) -> None:
        self.cfg, self.env, self.dataset = cfg, env, dataset
        self.tensor_dir, self.content_hash, self.window_end = tensor_dir, content_hash, window_end
        self.params = train_params(cfg.train_for(dataset), songs)
        self.need_ac = cfg.schedule_for(dataset).require_ac_power
        self.run_id: int | None = None
        self.run_name = ""
        self.epochs_done = 0
        self._last_logged_epoch = -1
        self.resume_ignored = ""   # why ACE-Step is known to have started fresh instead
        self._guard: _Guard | None = None
        self._resumed_from = 0
        self._first_epoch: int | None = None

    # -- ledger
    def _plan(self) -> None:
        """Resume the newest unfinished run of the same content and parameters that has
        checkpoints, whatever its last night's outcome (one failed session must not throw
        away nights of training), else start a new run."""
        ledger = self.env.ledger
        for row in runs.latest_per_run(ledger, self.dataset, Job.TRAIN):
            if self._resumable(row):
                assert row.run_name
                self.run_name = row.run_name
                break
        else:
            self.run_name = self._new_name()
            runs.save_params(ledger, self.dataset, self.run_name, self.params)
        ck = layout.latest_checkpoint(self.folder)
        self.epochs_done = ck.epoch if ck else 0
        self.run_id = runs.open_run(ledger, self.dataset, Job.TRAIN, self.env.clock.time(),
                                    facts=RunFacts(self.content_hash, self.run_name,
                                                   self.params["epochs"], self.epochs_done,
                                                   self._ck_rel(ck)))

    def _resumable(self, row: RunRow) -> bool:
        if not row.run_name or row.content_hash != self.content_hash:
            return False
        if row.outcome == Outcome.FAILED and "did not resume" in (row.message or ""):
            return False  # ACE-Step cannot see its checkpoints: do not fail the same way again
        run = layout.run_dir(self.cfg.acestep.root, self.dataset, row.run_name)
        return (layout.final_adapter(run) is None and layout.latest_checkpoint(run) is not None
                and runs.same_params(self.env.ledger, self.dataset, row.run_name, self.params))

    def _new_name(self) -> str:
        """<local time>-<content hash>; never an existing folder (a new run must not pick up
        another run's checkpoints or final adapter)."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.env.clock.time()))
        base = name = f"{stamp}-{self.content_hash[:8]}"
        n = 1
        while layout.run_dir(self.cfg.acestep.root, self.dataset, name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    @property
    def folder(self) -> Path:
        return layout.run_dir(self.cfg.acestep.root, self.dataset, self.run_name)

    def _ck_rel(self, ck: layout.Checkpoint | None) -> str:
        return layout.checkpoint_rel(self.dataset, self.run_name, ck) if ck else ""

    def _finish(self, outcome: Outcome, message: str, adapter: str = "") -> TrainResult:
        ck = layout.latest_checkpoint(self.folder)
        if outcome == Outcome.DONE:
            self.epochs_done = self.params["epochs"]
        elif ck:
            self.epochs_done = ck.epoch  # what a resume really keeps
        assert self.run_id is not None
        runs.close_run(self.env.ledger, self.run_id, outcome, message, self.env.clock.time(),
                       RunFacts(epochs_done=self.epochs_done,
                                checkpoint=adapter or self._ck_rel(ck)))
        logger.info("training %s: %s (%s, %d/%d epochs)", self.dataset, outcome, message,
                    self.epochs_done, self.params["epochs"])
        return TrainResult(outcome, self.run_id, self.run_name, self.params["epochs"],
                           self.epochs_done, adapter, message)

    def on_progress(self, prog: TrainingProgress) -> None:
        if prog.epoch is not None and self._first_epoch is None:
            self._first_epoch = prog.epoch
            if self._resumed_from and prog.epoch <= self._resumed_from:
                # V1/V2 drop a resume path they cannot use without a word (CONTRACT §9b).
                self._resume_ignored(f"training began at epoch {prog.epoch}, not at "
                                     f"{self._resumed_from + 1}")
        if self.resume_ignored:
            return  # not part of this run's curve: the run is being stopped
        now = self.env.clock.time()
        assert self.run_id is not None
        runs.add_progress(self.env.ledger, self.run_id, now, epoch=prog.epoch,
                          epochs=prog.epochs, step=prog.step, loss=prog.loss, eta=prog.eta)
        if prog.epoch is not None and prog.epoch != self._last_logged_epoch:
            self._last_logged_epoch = prog.epoch
            logger.info("training %s: epoch %s/%s loss %s eta %s", self.dataset, prog.epoch,
                        prog.epochs, prog.loss, prog.eta)

    # -- running
    def run(self) -> TrainResult:
        self._plan()
        recoveries = 0
        while True:
            try:
                return self._session()
            except ServerUnavailable as exc:
                recoveries += 1
                logger.warning("training %s: lost ACE-Step (%s); recovering", self.dataset, exc)
                if recoveries > self.env.max_recoveries:
                    return self._finish(Outcome.INTERRUPTED, f"gave up after {recoveries - 1} "
                                        f"reconnects: {exc}")
                found = self._recover()
                if found:
                    return found
            except AceStepError as exc:
                return self._finish(Outcome.FAILED, str(exc))

    def _session(self) -> TrainResult:
        ck = layout.latest_checkpoint(self.folder)
        client = self.env.client_factory()
        client.connect()
        try:
            client.load_training_dataset(self.tensor_dir)
            guard = self._guard = _Guard(client, self.env, self.window_end, self.need_ac)
            self._resumed_from, self._first_epoch = (ck.epoch if ck else 0), None
            guard.start()
            logger.info("training %s run %s: %d epochs%s", self.dataset, self.run_name,
                        self.params["epochs"], f", resuming from epoch {ck.epoch}" if ck else "")
            try:
                out = client.train(tensor_dir=self.tensor_dir,
                                   output_dir=layout.run_dir_rel(self.dataset, self.run_name),
                                   resume_from=self._ck_rel(ck), on_progress=self.on_progress,
                                   on_notice=self._resume_ignored, **self.params)
            finally:
                guard.done()
        finally:
            client.close()
        return self._outcome(out, guard.reason)

    def _resume_ignored(self, why: str) -> None:
        """ACE-Step started the run over instead of resuming it: stop it and say so (the
        warning S prints, or a first epoch that is not the checkpoint's next)."""
        if self.resume_ignored:
            return
        logger.warning("training %s: ACE-Step did not resume: %s", self.dataset, why)
        self.resume_ignored = why
        if self._guard is not None:
            self._guard.request("ACE-Step ignored the resume checkpoint")

    def _outcome(self, out: TrainingOutcome, reason: str) -> TrainResult:
        """Judge by the files, not the last line: a training acewatchd stopped also ends with
        "Training completed!" (CONTRACT §9b); finished means final/ holds an adapter."""
        last_line = (out.text or "").strip().splitlines()[-1:] or [""]
        if self.resume_ignored:
            ck = self._ck_rel(layout.latest_checkpoint(self.folder))
            return self._finish(Outcome.FAILED, (
                f"ACE-Step did not resume from {ck} ({self.resume_ignored.strip()[:200]}); "
                "stopped it instead of training the run again from epoch 0. Is ACE-Step "
                "running from its own folder?"))
        adapter = layout.final_adapter(self.folder) if out.status != "failed" else None
        if adapter is not None and not reason:
            rel = adapter.relative_to(Path(self.cfg.acestep.root)).as_posix()
            return self._finish(Outcome.DONE, "trained", f"./{rel}")
        if reason or out.status == "stopped":
            return self._finish(Outcome.INTERRUPTED, reason or "stopped in ACE-Step")
        if out.status == "completed":  # said complete, left no adapter: stopped elsewhere?
            if layout.latest_checkpoint(self.folder) is not None:
                return self._finish(Outcome.INTERRUPTED, "ACE-Step ended the training without "
                                    "a final adapter (stopped outside acewatchd?); it resumes "
                                    "from its newest checkpoint")
            return self._finish(Outcome.FAILED, f"ACE-Step said complete but {self.folder}"
                                "/final has no adapter_config.json")
        return self._finish(Outcome.FAILED, f"ACE-Step: {last_line[0][:300]}")

    def _recover(self) -> TrainResult | None:
        """After a lost stream: a managed server that died is started again (its session is
        gone with it, so nothing to wait for); else wait for the server, then for the old
        session to go quiet. Returns a result to end with, or None to resume from the newest
        checkpoint."""
        restarted = self._restart_dead_server()
        if isinstance(restarted, TrainResult):
            return restarted
        if not wait_for_server(self.env, self.window_end):
            return self._finish(Outcome.INTERRUPTED,
                                "ACE-Step unreachable after the stream was lost")
        if not restarted:
            self._wait_quiet()
        adapter = layout.final_adapter(self.folder)
        if adapter is not None:  # the run folder is this run's own: the old session finished
            rel = adapter.relative_to(Path(self.cfg.acestep.root)).as_posix()
            return self._finish(Outcome.DONE, "trained (finished by the earlier session)",
                                f"./{rel}")
        if self._out_of_time():
            return self._finish(Outcome.INTERRUPTED, "window ended while recovering")
        return None

    def _restart_dead_server(self) -> bool | TrainResult:
        server = self.env.server
        if server is None or not server.managed or server.running():
            return False
        logger.warning("training %s: the managed ACE-Step died; starting it again to resume "
                       "from the newest checkpoint", self.dataset)
        try:
            server.ensure_running()
        except AcewatchdError as exc:
            return self._finish(Outcome.INTERRUPTED, f"ACE-Step died and did not start again: "
                                f"{exc}")
        return True

    def _wait_quiet(self) -> None:
        """The old session may still be training (only the stream was lost): it cannot be
        stopped from a new session, so wait until it finishes or its folder goes quiet."""
        if time.time() - layout.newest_mtime(self.folder) < self.env.quiet_seconds:
            logger.info("training %s: waiting until %s has had no new file for %.0fs (an "
                        "earlier ACE-Step session may still be training it)", self.dataset,
                        self.folder, self.env.quiet_seconds)
        while time.time() - layout.newest_mtime(self.folder) < self.env.quiet_seconds:
            if layout.final_adapter(self.folder) is not None or self._out_of_time():
                break
            self.env.clock.sleep(min(5.0, self.env.quiet_seconds / 4), self.env.stop)

    def _out_of_time(self) -> bool:
        return self.env.out_of_time(self.window_end)

