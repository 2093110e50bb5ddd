"""Helpers for the schedule/train/nightly tests (no tests here).

``FakeClient`` is an in-memory ACE-Step session for the fast unit tests; the simulator
tests use the real client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acewatchd.acestep.apicheck import ApiMatch
from acewatchd.config.load import parse_config
from acewatchd.config.schema import Config
from acewatchd.ledger import runs
from acewatchd.ledger.runs import Job, Outcome
from acewatchd.nightly.env import Hooks


def make_config(home: Path, extra: str = "", *, acestep_root: Path | None = None) -> Config:
    root = acestep_root or (home / "acestep")
    text = f'[acestep]\nroot = "{root}"\nurl = "http://127.0.0.1:9"\n' + extra
    (home / "drop").mkdir(parents=True, exist_ok=True)
    return parse_config(text, home / "config.toml")


@dataclass
class Prepared:
    tensor_dir: str
    tensor_dir_rel: str
    content_hash: str
    samples_ok: int


@dataclass
class FakeStages:
    """prepare/content-hash/render stand-ins: the hash is whatever the test sets."""

    hashes: dict[str, str] = field(default_factory=dict)
    songs: int = 3
    prepared: list[str] = field(default_factory=list)
    rendered: list[tuple[str, int | None]] = field(default_factory=list)
    fail_prepare: set[str] = field(default_factory=set)
    fail_render: set[str] = field(default_factory=set)

    def content_hash(self, cfg: Config, ledger: Any, dataset: str) -> str:
        return self.hashes.get(dataset, "h0" * 8)

    def prepare(self, cfg: Config, ledger: Any, dataset: str, stop: Any = None) -> Prepared:
        if dataset in self.fail_prepare:
            raise RuntimeError(f"prepare exploded for {dataset}")
        self.prepared.append(dataset)
        rel = f"./datasets/acewatchd/{dataset}/tensors"
        return Prepared(str(cfg.acestep.root / rel), rel, self.content_hash(cfg, ledger, dataset),
                        self.songs)

    def render(self, cfg: Config, ledger: Any, dataset: str, *, run_id: int | None = None,
               checkpoint: str | None = None, server: Any = None) -> Path:
        self.rendered.append((dataset, run_id))
        if dataset in self.fail_render:
            raise RuntimeError(f"render exploded for {dataset}")
        # What the real render stage leaves in the ledger: a finished render row.
        row = runs.open_run(ledger, dataset, Job.RENDER, 0.0)
        runs.close_run(ledger, row, Outcome.DONE, "rendered", 0.0)
        return cfg.paths.outbox / dataset / "run"

    def hooks(self) -> Any:
        return Hooks(self.content_hash, self.prepare, self.render)


class FakeClient:
    """One in-memory ACE-Step session: train() writes the output layout under ``root`` and
    completes at once (or raises what ``fail_with`` says)."""

    sessions: list[FakeClient] = []

    def __init__(self, root: Path, *, down: bool = False, fail_with: Exception | None = None,
                 status: str = "completed") -> None:
        self.root, self.down, self.fail_with, self.status = root, down, fail_with, status
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.api_match = ApiMatch("V2", "6d467e4")
        FakeClient.sessions.append(self)

    def connect(self) -> None:
        from acewatchd.acestep.errors import ServerUnavailable

        if self.down:
            raise ServerUnavailable("fake server is down")

    def close(self) -> None:
        pass

    def load_training_dataset(self, tensor_dir: str) -> str:
        self.calls.append(("load", {"tensor_dir": tensor_dir}))
        return "ok"

    def stop_training(self) -> str:
        self.calls.append(("stop", {}))
        return "stopping"

    def train(self, **kw: Any) -> Any:
        from acewatchd.acestep.progress import TrainingProgress
        from acewatchd.acestep.training_stream import TrainingOutcome

        self.calls.append(("train", kw))
        if self.fail_with is not None:
            raise self.fail_with
        od = self.root / kw["output_dir"]
        prog = TrainingProgress(kw["epochs"], kw["epochs"], 10, 0.5, "0s", "")
        kw["on_progress"](prog)
        if self.status == "completed":
            (od / "final" / "adapter").mkdir(parents=True, exist_ok=True)
            (od / "final" / "adapter" / "adapter_config.json").write_text("{}")
            return TrainingOutcome("completed", prog, "✅ Training complete!")
        return TrainingOutcome(self.status, prog, "❌ Training failed: Error: boom")
