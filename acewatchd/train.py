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
A run that reaches the window's end is stopped, marked interrupted, and resumed the next night
from its latest ``checkpoints/epoch_N`` via ``rc`` with the same total, so after several nights
it ends at the configured epochs with ``final/adapter`` (the session logic is in
``train_session.py``; this module has the parameters, files, ledger queries, lock and CLI).
A run is resumed only with the same content hash and the same [train] parameters (kept in the
ledger's kv as ``train.params.<dataset>.<run>``); otherwise a new run starts.

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
from dataclasses import asdict
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
    finally:
        if env.server is not None:  # a server this command started does not outlive it
            env.server.stop()
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
