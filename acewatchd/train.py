"""Train one dataset's LoRA through ACE-Step: /load_training_dataset, then /training_wrapper.

Epochs: ``epochs = "auto"`` picks a count from the number of songs (ACE-Step's guidance is
about 800 epochs for a handful of songs, about 500 for a hundred):

    songs      epochs
    1-5        800
    6-20       700
    21-50      600
    51+        500

(always a multiple of 100 within ACE-Step's 100..4000 slider bounds).

Output: ``lora_output/acewatchd/<dataset>/<run>/`` under the ACE-Step root, sent relative to it.
A run that reaches the window's end is stopped with /stop_training *from the same client* (the
training state is per Gradio session), marked interrupted, and resumed the next night from its
latest ``checkpoints/epoch_N`` via ``rc`` with the same total, so after several nights it ends
at the configured epochs with ``final/adapter``. A lost stream is recovered from the files: a
new client cannot see the old session, so "still training?" means "is the run folder still
being written?"; once it is quiet, training resumes from the newest checkpoint.

Only one training at a time on this machine: ``state/job.lock`` (flock) is held by whoever
trains, the daemon or ``acewatchd train --now``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acewatchd.config import Config, Train
from acewatchd.errors import AlreadyRunning
from acewatchd.ledger import Ledger

logger = logging.getLogger(__name__)

AUTO_EPOCHS = ((5, 800), (20, 700), (50, 600))
AUTO_EPOCHS_MORE = 500
LOCK_NAME = "job.lock"


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


# --------------------------------------------------------------------------- the job lock


class JobLock:
    """flock on state/job.lock; released when the process dies, so never stale."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def acquire(self) -> JobLock:
        if not self.try_acquire():
            raise AlreadyRunning(f"{self.path}: another training job is running "
                                 f"(pid {self.holder()}); try again when it has finished")
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JobLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------- ledger queries


def last_train_run(ledger: Ledger, dataset: str, outcomes: tuple[str, ...] | None = None
                   ) -> dict[str, Any] | None:
    sql = "SELECT * FROM runs WHERE dataset=? AND job='train'"
    args: list[Any] = [dataset]
    if outcomes:
        sql += f" AND outcome IN ({','.join('?' * len(outcomes))})"
        args += list(outcomes)
    row = ledger.connect().execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
    return dict(row) if row else None


def mark_stale_runs(ledger: Ledger, dataset: str, jobs: tuple[str, ...]) -> int:
    """'running' rows left by a process that died; call only while holding the job lock."""
    with ledger.tx() as conn:
        cur = conn.execute(
            f"UPDATE runs SET outcome='interrupted', message='the process ended mid-run' "
            f"WHERE dataset=? AND outcome='running' AND job IN ({','.join('?' * len(jobs))})",
            [dataset, *jobs])
        return int(cur.rowcount)


def loss_history(ledger: Ledger, dataset: str, run_name: str) -> list[tuple[int, int, float]]:
    """(epoch, step, loss) over every session (night) of one run, for the loss plot."""
    rows = ledger.connect().execute(
        "SELECT p.epoch, p.step, p.loss FROM progress p JOIN runs r ON r.id = p.run_id "
        "WHERE r.dataset=? AND r.run_name=? AND r.job='train' AND p.loss IS NOT NULL "
        "ORDER BY p.ts, p.rowid", (dataset, run_name)).fetchall()
    return [(int(r[0] or 0), int(r[1] or 0), float(r[2])) for r in rows]


def params_key(dataset: str, run_name: str) -> str:
    return f"train.params.{dataset}.{run_name}"


def save_params(ledger: Ledger, dataset: str, run_name: str, params: dict[str, Any]) -> None:
    ledger.set_kv(params_key(dataset, run_name), json.dumps(params, sort_keys=True))


def same_params(ledger: Ledger, dataset: str, run_name: str, params: dict[str, Any]) -> bool:
    stored = ledger.get_kv(params_key(dataset, run_name))
    return stored is not None and json.loads(stored) == params


# --------------------------------------------------------------------------- CLI


def cmd_train(args: argparse.Namespace) -> int:
    """`acewatchd train <dataset> [--now]`."""
    from datetime import datetime, timezone

    from acewatchd.config import DATASET_NAME, load_config
    from acewatchd.errors import AcewatchdError
    from acewatchd.schedule import next_fire

    cfg = load_config(args.config)
    if not DATASET_NAME.match(args.dataset) or not (cfg.paths.drop / args.dataset).is_dir():
        raise AcewatchdError(f"{cfg.paths.drop / args.dataset}: no such dataset folder")
    if not args.now:
        sched = cfg.schedule_for(args.dataset)
        nxt = next_fire(sched, datetime.now(timezone.utc)) if sched.enabled else None
        when = nxt.isoformat() if nxt else "never (schedule disabled)"
        print(f"{args.dataset}: next scheduled run {when}; use --now to train immediately")
        return 0
    return _train_now(cfg, args.dataset)


def _train_now(cfg: Config, dataset: str) -> int:
    from acewatchd.log import setup_logging
    from acewatchd.nightly import NightlyEnv, run_dataset

    setup_logging(cfg.paths.logs, cfg.logging.level, console=True)
    ledger = Ledger(cfg.paths.state)
    env = NightlyEnv.default(ledger, lambda: cfg)
    env.server = _server_for(cfg, env.stop)
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["outcome"] = run_dataset(lambda: cfg, env, dataset, scheduled_for=None,
                                            window_end=None, job="manual", force=True,
                                            fail_if_locked=True)
        except AlreadyRunning as exc:
            result["error"] = exc

    worker = threading.Thread(target=work, name="train-now")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:  # Ctrl-C: stop through the same session, keep the checkpoint
        print("stopping training (it resumes from its last checkpoint next time)...")
        env.stop.set()
        worker.join()
    if "error" in result:
        raise result["error"]
    outcome = str(result.get("outcome", "failed"))
    print(f"{dataset}: {outcome}")
    return 0 if outcome in ("done", "skipped") else (130 if env.stop.is_set() else 1)


def _server_for(cfg: Config, stop: threading.Event) -> Any:
    """The managed server when [acestep] manage_server = true, else None (connect only)."""
    if not cfg.acestep.manage_server:
        return None
    from acewatchd.acestep.server import ServerManager

    return ServerManager(lambda: cfg, cfg.paths.logs, stop_event=stop)


# --------------------------------------------------------------------------- files


def run_dir_rel(dataset: str, run_name: str) -> str:
    return f"./lora_output/acewatchd/{dataset}/{run_name}"


def run_dir(cfg: Config, dataset: str, run_name: str) -> Path:
    return Path(cfg.acestep.root) / "lora_output" / "acewatchd" / dataset / run_name


_EPOCH_DIR = re.compile(r"^epoch_(\d+)(?:_loss_[\d.]+)?$")


def latest_checkpoint(folder: Path) -> tuple[int, str] | None:
    """(epoch, name) of the newest usable checkpoints/epoch_N (v2 names epoch_N_loss_x)."""
    best: tuple[int, str] | None = None
    try:
        entries = list((folder / "checkpoints").iterdir())
    except OSError:
        return None
    for entry in entries:
        match = _EPOCH_DIR.match(entry.name)
        usable = (entry / "adapter").is_dir() or (entry / "training_state.pt").is_file() \
            or (entry / "adapter_config.json").is_file()
        if match and usable and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), entry.name)
    return best


def final_adapter(folder: Path) -> Path | None:
    """S writes final/adapter/; v2 writes the adapter flat into final/."""
    for cand in (folder / "final" / "adapter", folder / "final"):
        if (cand / "adapter_config.json").is_file():
            return cand
    return None


def newest_mtime(folder: Path) -> float:
    newest = 0.0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            try:
                newest = max(newest, os.stat(os.path.join(base, name)).st_mtime)
            except OSError:
                continue
    return newest


# --------------------------------------------------------------------------- one training


@dataclass
class TrainResult:
    outcome: str                      # done | interrupted | failed | skipped
    run_id: int | None = None
    run_name: str = ""
    epochs_total: int = 0
    epochs_done: int = 0
    adapter: str = ""                 # relative to the ACE-Step root, when done
    message: str = ""


def wait_for_server(env: Any, until: float | None) -> bool:
    """Connect a throwaway session until one succeeds; back off; give up at ``until``."""
    from acewatchd.acestep.errors import ServerUnavailable

    delay = env.backoff
    while not env.stop.is_set():
        try:
            client = env.client_factory()
            client.connect()
            client.close()
            return True
        except ServerUnavailable as exc:
            now = env.clock.time()
            if until is not None and now + delay >= until:
                logger.warning("ACE-Step still unreachable (%s); giving up for this window", exc)
                return False
            logger.warning("ACE-Step unreachable (%s); retrying in %.0fs", exc, delay)
            if env.clock.sleep(delay, env.stop):
                return False
            delay = min(delay * 2, env.backoff_max)
    return False


class _Guard(threading.Thread):
    """Stops training through the *same* client at window end, daemon stop or on battery."""

    def __init__(self, client: Any, env: Any, window_end: float | None, need_ac: bool) -> None:
        super().__init__(name="train-guard", daemon=True)
        self.client, self.env, self.window_end, self.need_ac = client, env, window_end, need_ac
        self.finished = threading.Event()
        self.reason = ""

    def _why(self) -> str:
        if self.env.stop.is_set():
            return "acewatchd is stopping"
        if self.window_end is not None and self.env.clock.time() >= self.window_end:
            return "the training window ended"
        if self.need_ac and not self.env.power.on_ac_power():
            return "running on battery (require_ac_power)"
        return ""

    def run(self) -> None:
        while not self.finished.is_set():
            self.env.stop.wait(self.env.guard_interval)
            why = "" if self.finished.is_set() else self._why()
            if not why:
                continue
            try:
                logger.info("stopping training: %s (%s)", why, self.client.stop_training())
                self.reason = why
                return
            except Exception as exc:  # retried next tick; the session may be reconnecting
                logger.warning("stop_training failed: %s", exc)
                self.finished.wait(self.env.guard_interval)

    def done(self) -> None:
        self.finished.set()
        self.join(timeout=5)


class TrainingJob:
    """One training session (one night) of a run; several sessions make a resumed run."""

    def __init__(self, cfg: Config, env: Any, dataset: str, *, tensor_dir: str,
                 content_hash: str, songs: int, window_end: float | None) -> None:
        self.cfg, self.env, self.dataset = cfg, env, dataset
        self.tensor_dir, self.content_hash, self.window_end = tensor_dir, content_hash, window_end
        self.params = train_params(cfg.train_for(dataset), songs)
        self.need_ac = cfg.schedule_for(dataset).require_ac_power
        self.run_id: int | None = None
        self.run_name = ""
        self.epochs_done = 0
        self._last_logged_epoch = -1

    # -- ledger
    def _plan(self) -> None:
        """Resume the last interrupted run of the same content and parameters, else new."""
        last = last_train_run(self.env.ledger, self.dataset)
        if (last and last["outcome"] == "interrupted" and last["content_hash"] == self.content_hash
                and same_params(self.env.ledger, self.dataset, last["run_name"], self.params)):
            self.run_name = last["run_name"]
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.env.clock.time()))
            self.run_name = f"{stamp}-{self.content_hash[:8]}"
            save_params(self.env.ledger, self.dataset, self.run_name, self.params)
        ck = latest_checkpoint(self.folder)
        self.epochs_done = ck[0] if ck else 0
        with self.env.ledger.tx() as conn:
            self.run_id = conn.execute(
                "INSERT INTO runs (dataset, job, started, outcome, content_hash, run_name,"
                " epochs_total, epochs_done, checkpoint) VALUES (?, 'train', ?, 'running', ?, ?,"
                " ?, ?, ?)", (self.dataset, self.env.clock.time(), self.content_hash,
                              self.run_name, self.params["epochs"], self.epochs_done,
                              self._ck_rel(ck))).lastrowid

    @property
    def folder(self) -> Path:
        return run_dir(self.cfg, self.dataset, self.run_name)

    def _ck_rel(self, ck: tuple[int, str] | None) -> str:
        return f"{run_dir_rel(self.dataset, self.run_name)}/checkpoints/{ck[1]}" if ck else ""

    def _finish(self, outcome: str, message: str, adapter: str = "") -> TrainResult:
        ck = latest_checkpoint(self.folder)
        if outcome == "done":
            self.epochs_done = self.params["epochs"]
        elif ck:
            self.epochs_done = ck[0]  # what a resume really keeps
        with self.env.ledger.tx() as conn:
            conn.execute("UPDATE runs SET ended=?, outcome=?, epochs_done=?, checkpoint=?,"
                         " message=? WHERE id=?", (self.env.clock.time(), outcome,
                                                   self.epochs_done, adapter or self._ck_rel(ck),
                                                   message, self.run_id))
        self.env.ledger.set_kv("train.current", "null")
        logger.info("training %s: %s (%s, %d/%d epochs)", self.dataset, outcome, message,
                    self.epochs_done, self.params["epochs"])
        return TrainResult(outcome, self.run_id, self.run_name, self.params["epochs"],
                           self.epochs_done, adapter, message)

    def on_progress(self, prog: Any) -> None:
        now = self.env.clock.time()
        with self.env.ledger.tx() as conn:
            conn.execute("INSERT INTO progress (run_id, ts, epoch, epochs, step, loss, eta)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)", (self.run_id, now, prog.epoch,
                                                           prog.epochs, prog.step, prog.loss,
                                                           prog.eta))
            if prog.epoch is not None:
                conn.execute("UPDATE runs SET epochs_done=MAX(COALESCE(epochs_done, 0), ?)"
                             " WHERE id=?", (prog.epoch, self.run_id))
        self.env.ledger.set_kv("train.current", json.dumps({
            "dataset": self.dataset, "run_id": self.run_id, "run_name": self.run_name,
            "epoch": prog.epoch, "epochs": prog.epochs, "step": prog.step, "loss": prog.loss,
            "eta": prog.eta, "ts": now}))
        if prog.epoch is not None and prog.epoch != self._last_logged_epoch:
            self._last_logged_epoch = prog.epoch
            logger.info("training %s: epoch %s/%s loss %s eta %s", self.dataset, prog.epoch,
                        prog.epochs, prog.loss, prog.eta)

    # -- running
    def run(self) -> TrainResult:
        from acewatchd.acestep.errors import AceStepError, ServerUnavailable

        self._plan()
        recoveries = 0
        while True:
            try:
                return self._session()
            except ServerUnavailable as exc:
                recoveries += 1
                logger.warning("training %s: lost ACE-Step (%s); recovering", self.dataset, exc)
                if recoveries > self.env.max_recoveries:
                    return self._finish("interrupted", f"gave up after {recoveries - 1} "
                                        f"reconnects: {exc}")
                found = self._recover()
                if found:
                    return found
            except AceStepError as exc:
                return self._finish("failed", str(exc))

    def _session(self) -> TrainResult:
        ck = latest_checkpoint(self.folder)
        client = self.env.client_factory()
        client.connect()
        try:
            client.load_training_dataset(self.tensor_dir)
            guard = _Guard(client, self.env, self.window_end, self.need_ac)
            guard.start()
            logger.info("training %s run %s: %d epochs%s", self.dataset, self.run_name,
                        self.params["epochs"], f", resuming from epoch {ck[0]}" if ck else "")
            try:
                out = client.train(tensor_dir=self.tensor_dir,
                                   output_dir=run_dir_rel(self.dataset, self.run_name),
                                   resume_from=self._ck_rel(ck), on_progress=self.on_progress,
                                   **self.params)
            finally:
                guard.done()
        finally:
            client.close()
        return self._outcome(out, guard.reason)

    def _outcome(self, out: Any, reason: str) -> TrainResult:
        last_line = (out.text or "").strip().splitlines()[-1:] or [""]
        if out.status == "completed":
            adapter = final_adapter(self.folder)
            if adapter is None:
                return self._finish("failed", f"ACE-Step said complete but {self.folder}/final"
                                    " has no adapter_config.json")
            rel = adapter.relative_to(Path(self.cfg.acestep.root)).as_posix()
            return self._finish("done", "trained", f"./{rel}")
        if out.status == "stopped":
            return self._finish("interrupted", reason or "stopped in ACE-Step")
        return self._finish("failed", f"ACE-Step: {last_line[0][:300]}")

    def _recover(self) -> TrainResult | None:
        """After a lost stream: wait for the server, then for the old session to go quiet.
        Returns a result to end with, or None to resume from the newest checkpoint."""
        if not wait_for_server(self.env, self.window_end):
            return self._finish("interrupted", "ACE-Step unreachable after the stream was lost")
        while time.time() - newest_mtime(self.folder) < self.env.quiet_seconds:
            # The old session may still be training (only the stream was lost): it cannot be
            # stopped from a new session, so wait for it to finish or go quiet.
            if final_adapter(self.folder) is not None or self._out_of_time():
                break
            self.env.clock.sleep(min(5.0, self.env.quiet_seconds / 4), self.env.stop)
        adapter = final_adapter(self.folder)
        if adapter is not None:  # the run folder is this run's own: the old session finished
            rel = adapter.relative_to(Path(self.cfg.acestep.root)).as_posix()
            return self._finish("done", "trained (finished by the earlier session)", f"./{rel}")
        if self._out_of_time():
            return self._finish("interrupted", "window ended while recovering")
        return None

    def _out_of_time(self) -> bool:
        return self.env.stop.is_set() or (self.window_end is not None
                                          and self.env.clock.time() >= self.window_end)

