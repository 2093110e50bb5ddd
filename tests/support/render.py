"""Helpers for the render/outbox tests (no tests here): a home with config and ledger, a
finished training run in the ledger with its adapter on disk, and a recording fake ACE-Step
client that writes real MP3s (ffmpeg) the way the real client copies them into dest_dir."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from acewatchd.acestep.apicheck import ApiMatch
from acewatchd.acestep.generation import Limits
from acewatchd.config.load import parse_config
from acewatchd.config.schema import Config
from acewatchd.demo.audiogen import make_mp3
from acewatchd.ledger.db import Ledger

DATASET = "kim_kyungho"
RUN_NAME = "20261125-0100"

PROMPTS_SAME_TEXT = """
[[render.prompts]]
name = "ballad one"
caption = "{tag}, slow ballad, piano"
seed = 1
duration = 12.0
[[render.prompts]]
name = "ballad two"
caption = "{tag}, slow ballad, piano"
seed = 2
duration = 12.0
[[render.prompts]]
name = "ballad three"
caption = "{tag}, slow ballad, piano"
seed = 3
duration = 12.0
"""


def write_config(home: Path, acestep_root: Path, url: str = "http://127.0.0.1:9/",
                 extra: str = "", batch_size: int = 2, keep_runs: int = 10) -> Config:
    text = f"""
[paths]
outbox = "outbox"
state = "state"
logs = "logs"
[acestep]
root = "{acestep_root}"
url = "{url}"
timeout_seconds = 60.0
[render]
batch_size = {batch_size}
[outbox]
keep_runs = {keep_runs}
[notify]
macos = false
[datasets.{DATASET}]
tag = "김경호 <b>rock</b> & \\"more\\""
language = "ko"
{extra}
"""
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


def make_adapter(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": 64, "lora_alpha": 128, "lora_dropout": 0.1,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "bias": "none",
        "task_type": "FEATURE_EXTRACTION", "inference_mode": True}))
    (folder / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return folder


def add_training_run(cfg: Config, ledger: Ledger, *, run_name: str = RUN_NAME,
                     epochs: int = 300, progress: bool = True, outcome: str = "done",
                     adapter: bool = True) -> int:
    now = time.time()
    with ledger.tx() as conn:
        cur = conn.execute(
            "INSERT INTO runs (dataset, job, started, ended, outcome, run_name, epochs_total, "
            "epochs_done, content_hash) VALUES (?, 'train', ?, ?, ?, ?, ?, ?, 'abc123')",
            (DATASET, now - 600, now - 10, outcome, run_name, epochs, epochs))
        run_id = int(cur.lastrowid or 0)
        if progress:
            for i in range(60):
                epoch = (i // 10 + 1) * 50    # 10 logged steps per 50 epochs
                conn.execute("INSERT INTO progress (run_id, ts, epoch, epochs, step, loss) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (run_id, now - 600 + i, epoch, epochs, (i + 1) * 10,
                              1.0 / (1 + i * 0.1) + (0.05 if i % 3 else 0.0)))
    base = cfg.acestep.root / "lora_output" / "acewatchd" / DATASET / run_name
    if adapter:
        make_adapter(base / "final" / "adapter")
        make_adapter(base / "checkpoints" / "epoch_100" / "adapter")
    return run_id


_SOURCE: dict[str, Path] = {}


def sample_mp3(tmp: Path) -> Path:
    """One real 3-second MP3 per test session, copied for every fake clip."""
    if "mp3" not in _SOURCE or not _SOURCE["mp3"].exists():
        _SOURCE["mp3"] = make_mp3(tmp / "source.mp3", seconds=3.0, freq=330.0)
    return _SOURCE["mp3"]


@dataclass
class FakeResult:
    audio_files: list[Path]
    metadata: list[dict[str, Any]]
    status: str
    seeds: list[str]


@dataclass
class FakeClient:
    """Records the call sequence; ``fail_on`` = generate call number (1-based) that raises."""

    source: Path
    fail_on: int | None = None
    drop_seed: int | None = None       # like ACE-Step dropping a silent output
    log: list[tuple[str, Any]] = field(default_factory=list)
    generated: int = 0
    lora_loaded: bool = False
    api_match: ApiMatch = field(default_factory=lambda: ApiMatch("V2", "6d467e4"))
    limits: Limits = field(default_factory=Limits)
    requests: list[Any] = field(default_factory=list)

    def __enter__(self) -> Self:
        self.log.append(("connect", None))
        return self

    def __exit__(self, *exc: object) -> None:
        self.log.append(("close", None))

    def load_lora(self, path: str) -> str:
        self.log.append(("load_lora", path))
        self.lora_loaded = True
        return "✅ LoRA loaded"

    def unload_lora(self) -> str:
        self.log.append(("unload_lora", None))
        self.lora_loaded = False
        return "✅ unloaded"

    def set_use_lora(self, on: bool) -> str:
        self.log.append(("set_use_lora", on))
        return "ok"

    def set_lora_scale(self, scale: float) -> str:
        self.log.append(("set_lora_scale", scale))
        return "ok"

    def generate(self, req: Any, dest_dir: Path) -> FakeResult:
        self.generated += 1
        self.requests.append(req)
        self.log.append(("generate", (req.caption, list(req.seeds), self.lora_loaded)))
        if self.fail_on == self.generated:
            from acewatchd.acestep.errors import JobFailed

            raise JobFailed("ACE-Step /generation_wrapper: ❌ simulated failure",
                            endpoint="/generation_wrapper")
        dest_dir.mkdir(parents=True, exist_ok=True)
        files, seeds = [], [s for s in req.seeds if s != self.drop_seed]
        for seed in seeds:
            out = dest_dir / f"{self.generated}-{seed}-{len(files)}.{req.audio_format}"
            shutil.copyfile(self.source, out)
            files.append(out)
        return FakeResult(files, [{"seed": s} for s in seeds], "Generation Complete",
                          [str(s) for s in req.seeds])


@dataclass
class FakeServer:
    managed: bool = True
    restarts: int = 0

    def restart(self) -> None:
        self.restarts += 1
