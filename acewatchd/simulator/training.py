"""SIMULATOR training: /load_training_dataset, /training_wrapper, /stop_training, /export_lora.

Streams ACE-Step's text format (CONTRACT §2) and writes its layout under ``od``:
``checkpoints/epoch_N/{adapter/, training_state.json}``, ``final/adapter/``, ``logs/version_k/``
(with ``--layout v2``: ``checkpoints/epoch_N_loss_X/`` and ``final/``, adapters saved flat).
``training_state.pt`` is a real torch-format file (a zip holding a pickled plain dict, written
without torch, ``torch.load(weights_only=True)``-loadable); the simulator itself resumes from
the ``training_state.json`` beside it, so it never unpickles anything.
Training state lives in the session's gr.State dict, so stop only works from that session.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
import shutil
import time
import zipfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from acewatchd.simulator.context import SimContext, UnsafePath, logger, safe_path
from acewatchd.simulator.lora import fingerprint, write_adapter
from acewatchd.util.files import atomic_write_bytes, atomic_write_text

EPOCH_SECONDS = 1.0  # simulated seconds per epoch at speed 1
EMOJI = re.compile("[\u2300-\u23ff\u2600-\u27bf\ufe0f\U0001f300-\U0001faff]")


def tensor_files(folder: Path) -> list[Path]:
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            listed = json.loads(manifest.read_text(encoding="utf-8")).get("samples", [])
            return [folder / Path(str(s)).name for s in listed if (folder / Path(str(s)).name)
                    .is_file()] or sorted(folder.glob("*.pt"))
        except (OSError, ValueError, AttributeError):
            pass
    return sorted(folder.glob("*.pt"))


def load_training_dataset(ctx: SimContext, values: dict[str, Any], state: dict[str, Any]
                          ) -> tuple[str, dict[str, Any]]:
    raw = str(values.get("tensor_dir") or "")
    try:
        folder = safe_path(ctx.root, raw)
    except UnsafePath:
        return f"❌ Rejected unsafe tensor directory path: {raw}", state
    if not folder.is_dir():
        return f"❌ Directory not found: {raw}", state
    files = tensor_files(folder)
    state["dataset"] = raw
    if (folder / "manifest.json").is_file():
        return f"✅ Loaded dataset with {len(files)} samples from {raw} [SIMULATOR]", state
    return f"✅ Found {len(files)} tensor files in {raw} [SIMULATOR]", state


class _Run:
    """One training run's bookkeeping and its stream items."""

    def __init__(self, ctx: SimContext, v: dict[str, Any], od: Path, samples: int) -> None:
        self.ctx, self.v, self.od = ctx, v, od
        self.lines: list[str] = []
        self.points: list[tuple[int, float]] = []
        self.t0 = time.monotonic()
        self.steps_per_epoch = max(1, math.ceil(math.ceil(samples / v["bs"]) / v["ga"]))
        self.fp = fingerprint(v["tensor_dir"], v["sd"], v["r"], v["a"])
        self.mojibake = ctx.faults().mojibake

    def say(self, line: str, eta: str = "") -> tuple[str, str, Any]:
        if self.mojibake:
            line = EMOJI.sub("\ufffd", line)
        self.lines.append(line)
        elapsed = time.monotonic() - self.t0
        clock = "\ufffd\ufffd" if self.mojibake else "⏱️"
        head = f"{line}\n{clock} Elapsed: {int(elapsed // 60)}m {int(elapsed % 60)}s"
        if eta:
            head += f" | ETA: ~{eta}"
        plot = pd.DataFrame(self.points or [(0, float("nan"))], columns=["step", "loss"])
        return head, "\n".join(self.lines[-15:]), plot.dropna()

    def loss(self, step: int) -> float:
        noise = (int(self.fp[(step % 28):(step % 28) + 4], 16) % 1000) / 20000.0
        return 0.25 + 0.75 * math.exp(-step / 150.0) + noise

    def save(self, folder: Path, epoch: int, step: int) -> None:
        flat = self.ctx.layout == "v2"
        write_adapter(folder if flat else folder / "adapter", r=int(self.v["r"]),
                      alpha=int(self.v["a"]), dropout=float(self.v["d"]),
                      fingerprint=fingerprint(self.fp, epoch))
        if folder.name == "final":
            return
        state = {"epoch": epoch, "global_step": step, "optimizer_state_dict": {},
                 "scheduler_state_dict": {}}
        atomic_write_bytes(folder / "training_state.pt", torch_format(state))
        atomic_write_text(folder / "training_state.json", json.dumps({**state,
                                                                      "simulator": True}))

    def write_logs(self) -> None:
        logs = self.od / "logs"
        k = len(list(logs.glob("version_*"))) if logs.is_dir() else 0
        rows = "".join(f"{s},{x:.6f}\n" for s, x in self.points)
        atomic_write_text(logs / f"version_{k}" / "train_loss.SIMULATOR.csv", "step,loss\n" + rows)


def torch_format(obj: dict[str, Any]) -> bytes:
    """torch.save's zip layout for a dict of primitives, without importing torch."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def _checks(ctx: SimContext, v: dict[str, Any]) -> tuple[str, Path, Path, list[Path]]:
    """(error, tensor dir, output dir, files); error "" when all is fine."""
    for key in ("ep", "bs", "ga", "se", "r"):
        if isinstance(v[key], float):  # ACE-Step feeds these to range()/modulo as ints
            msg = (f"❌ Training failed: Error: 'float' object cannot be interpreted as an"
                   f" integer ({key}={v[key]!r})")
            return msg, Path(), Path(), []
    try:
        tdir = safe_path(ctx.root, str(v["tensor_dir"] or ""))
    except UnsafePath:
        return f"❌ Rejected unsafe tensor directory path: {v['tensor_dir']}", Path(), Path(), []
    try:
        od = safe_path(ctx.root, str(v["od"] or ""))
    except UnsafePath as exc:
        return f"❌ Training failed: Error: {exc}", tdir, Path(), []
    files = tensor_files(tdir) if tdir.is_dir() else []
    if not files:
        return f"❌ Training failed: Error: no preprocessed tensors in {v['tensor_dir']}", \
            tdir, od, []
    return "", tdir, od, files


def _resume_epoch(ctx: SimContext, rc: str, run: _Run,
                  state: dict[str, Any]) -> Generator[Any, None, int]:
    if not rc:
        return 0
    try:
        folder = safe_path(ctx.root, rc)
    except UnsafePath:
        logger.warning("Rejected unsafe resume path %s", rc)
        return 0
    state_file = folder / "training_state.json"
    if not state_file.is_file():
        yield (*run.say(f"⚠️ Checkpoint path not found: {rc}, starting fresh"), state)
        return 0
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    yield (*run.say(f"🔄 Resumed from {rc} (epoch {saved['epoch']})"), state)
    return int(saved["epoch"])


def training_wrapper(ctx: SimContext, v: dict[str, Any], state: dict[str, Any]) -> Iterator[Any]:
    error, _tdir, od, files = _checks(ctx, v)
    if error:
        if ctx.faults().mojibake:
            error = EMOJI.sub("\ufffd", error)
        yield error, error, None, state
        return
    run = _Run(ctx, v, od, len(files))
    state.update(is_training=True, should_stop=False)
    try:
        yield (*run.say(f"📂 Loaded {len(files)} samples [SIMULATOR]"), state)
        start = yield from _resume_epoch(ctx, str(v["rc"] or ""), run, state)
        yield (*run.say("🚀 Starting training (device=cpu, precision=32-true) [SIMULATOR]"), state)
        yield from _epochs(run, state, start)
    finally:
        state["is_training"] = False


def _epochs(run: _Run, state: dict[str, Any], start: int) -> Iterator[Any]:
    v, ep = run.v, int(run.v["ep"])
    step = start * run.steps_per_epoch
    drop = run.ctx.faults().drop
    for epoch in range(start + 1, ep + 1):
        if state.get("should_stop"):
            yield (*run.say("⏹️ Training stopped by user"), state)
            return
        run.ctx.delay(EPOCH_SECONDS)
        for _ in range(run.steps_per_epoch):
            step += 1
            if step % 10 == 0:
                run.points.append((step, run.loss(step)))
        eta = f"{int((ep - epoch) * EPOCH_SECONDS / max(run.ctx.speed, 1e-6))}s"
        line = f"Epoch {epoch}/{ep}, Step {step}, Loss: {run.loss(step):.4f}"
        yield (*run.say(line, eta), state)
        if epoch % int(v["se"]) == 0:
            run.save(run.od / "checkpoints" / _checkpoint_name(run, epoch, step), epoch, step)
            yield (*run.say(f"💾 Checkpoint saved at epoch {epoch}", eta), state)
            if drop is not None and (drop == 0 or epoch >= drop):
                run.ctx.crash(f"drop fault at epoch {epoch}")
        elif drop and epoch >= drop:
            run.ctx.crash(f"drop fault at epoch {epoch}")
    run.save(run.od / "final", ep, step)
    run.write_logs()
    yield (*run.say(f"✅ Training complete! LoRA saved to {v['od']}/final"), state)
    total = time.monotonic() - run.t0
    yield (*run.say(f"🎉 Training completed! Total time: {total:.1f}s [SIMULATOR]"), state)


def _checkpoint_name(run: _Run, epoch: int, step: int) -> str:
    if run.ctx.layout == "v2":
        return f"epoch_{epoch}_loss_{run.loss(step):.4f}"
    return f"epoch_{epoch}"


def stop_training(ctx: SimContext, _v: dict[str, Any], state: dict[str, Any]
                  ) -> tuple[str, dict[str, Any]]:
    if not state or not state.get("is_training"):
        return "⚠️ No training in progress", state
    state["should_stop"] = True
    return "⏹️ Stopping training...", state


def export_lora(ctx: SimContext, v: dict[str, Any], _state: Any) -> str:
    try:
        dest = safe_path(ctx.root, str(v["export_path"] or ""))
        src_root = safe_path(ctx.root, str(v["lora_output_dir"] or ""))
    except UnsafePath as exc:
        return f"❌ Export failed: {exc}"
    src = src_root / "final"
    if not src.is_dir():
        epochs = sorted(src_root.glob("checkpoints/epoch_*"),
                        key=lambda p: int(p.name.split("_")[1]))
        if not epochs:
            return f"❌ No trained model found in {v['lora_output_dir']}"
        src = epochs[-1]
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    return f"✅ LoRA exported to {v['export_path']} [SIMULATOR]"
