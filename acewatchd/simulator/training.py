"""SIMULATOR training: /load_training_dataset, /training_wrapper, /stop_training, /export_lora.

Two layers like ACE-Step: the UI handler (``start_training`` in training_handlers.py) drives the
trainer (``LoRATrainer.train_from_preprocessed``) and shows each of its lines with
``\\n⏱️ Elapsed: … | ETA: ~…``. The trainer's words are the same in every version; the UI
handler's differ: f30aee4 lost most of its emoji to U+FFFD, c4cdd99's file is cp1252 mojibake
of UTF-8 (``âŒ`` for ❌), 6d467e4 has real emoji and ``ℹ️ Stopped``. After /stop_training the
trainer leaves its loop without saving ``final/`` and the handler still ends with "Training
completed!" (CONTRACT §9b). Paths: f30aee4 uses them as given; c4cdd99 joins the resume path
and /export_lora's paths to the root and refuses absolute ones; 6d467e4 resolves every path
against the root and refuses what lies outside.

Layout under ``od``: ``checkpoints/epoch_N/`` (6d467e4: ``epoch_N_loss_X.XXXX/``) holding
``adapter/`` and ``training_state.pt``, ``final/adapter/``, ``logs/version_k/``; with
``--layout flat`` the adapters are saved straight into the checkpoint folder and ``final/``.
``training_state.pt`` is a real torch-format file (a zip holding a pickled plain dict, written
without torch, ``torch.load(weights_only=True)``-loadable); the simulator itself resumes from
the ``training_state.json`` beside it, so it never unpickles anything.
Training state lives in the session's gr.State dict, so stop only works from that session.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import pickle
import re
import shutil
import time
import zipfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acewatchd.simulator import style
from acewatchd.simulator.context import SimContext, UnsafePath, logger, safe_join, safe_path
from acewatchd.simulator.lora import fingerprint, write_adapter
from acewatchd.util.files import atomic_write_bytes, atomic_write_text

EPOCH_SECONDS = 1.0  # simulated seconds per epoch at speed 1
EMOJI = re.compile("[\u2300-\u23ff\u2600-\u27bf\ufe0f\U0001f300-\U0001faff]")
DEVICE, PRECISION = "mps", "16-mixed"  # the simulator stands in for an Apple Silicon Mac
PLOT_EVERY = 1.0  # seconds between redraws of the matplotlib loss plot (c4cdd99 on)
Item = tuple[int, float, str]  # what the trainer yields: (step, loss, status)


def moji(text: str) -> str:
    """UTF-8 read as cp1252 (bytes cp1252 lacks kept as latin-1), as in c4cdd99's
    training_handlers.py: ``moji("❌") == "â\\x9dŒ"``."""
    out = []
    for b in text.encode("utf-8"):
        try:
            out.append(bytes([b]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(b))
    return "".join(out)


@dataclass(frozen=True)
class Words:
    """What one version's training UI handlers and trainer say and do differently: the marks
    the handlers put before their texts, and a few behaviours."""

    paths: str      # "given" (used as given), "joined" (c4cdd99's _safe_join), "safe"
    lineplot: bool  # the loss plot is a DataFrame for a LinePlot (else matplotlib, gr.Plot)
    epoch_summary: bool  # the trainer says "✅ Epoch e/E in Ns, Loss: x" after each epoch
    checkpointing_line: bool  # the trainer says "🧠 Gradient checkpointing enabled …"
    err: str        # ❌
    start: str      # 🚀 Starting training from …
    clock: str      # ⏱️ Elapsed
    stop: str       # ⏹️ / ℹ️ Stopped, Training stopped by user
    done: str       # ✅ Training completed!
    loaded: str     # 📂
    count: str      # 🔢
    tag: str        # 🏷️
    info: str       # ℹ️
    failed: tuple[str, ...]  # the prefixes the handler takes for a failed trainer line
    no_training: str
    stopping: str = "⏹️ Stopping training..."


FFFD = "\ufffd"
WORDS = {
    "f30aee4": Words(paths="given", lineplot=True, epoch_summary=True, checkpointing_line=False,
                     err=FFFD, start=FFFD, clock="⏱️", stop="⏹️", done=FFFD, loaded=FFFD,
                     count=FFFD, tag=FFFD * 3 + "\ufe0f", info=FFFD + "\ufe0f",
                     failed=(moji("❌"), "❌"),
                     no_training=FFFD + "\ufe0f No training in progress"),
    "c4cdd99": Words(paths="joined", lineplot=False, epoch_summary=True, checkpointing_line=True,
                     err=moji("❌"), start=moji("🚀"), clock=moji("⏱️"), stop=moji("⏹️"),
                     done=moji("✅"), loaded=moji("📂"), count=moji("🔢"), tag=moji("🏷️"),
                     info=moji("ℹ️"), failed=(moji(moji("❌")), moji("❌")),
                     no_training="ℹ No training in progress"),
    "6d467e4": Words(paths="safe", lineplot=False, epoch_summary=False, checkpointing_line=True,
                     err="❌", start="🚀", clock="⏱️", stop="ℹ️", done="✅", loaded="📂",
                     count="🔢", tag="🏷️", info="ℹ️", failed=("❌",),
                     no_training="ℹ No training in progress"),
}


def words(ctx: SimContext) -> Words:
    return WORDS[ctx.version.commit]


def duration(seconds: float) -> str:
    """ACE-Step's ``_format_duration``: 5s, 2m 5s, 1h 2m."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {(s % 3600) // 60}m"


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


class Refused(ValueError):
    """A path the version's handler refuses; the text is what it answers."""


def _resolve(ctx: SimContext, raw: str) -> Path:
    """Where a path as the server's cwd (the root) sees it."""
    p = Path(raw)
    return Path(os.path.normpath(p if p.is_absolute() else ctx.root / p))


def _tensor_dir(ctx: SimContext, raw: Any) -> tuple[Path, str]:
    """(folder, the path as the handler prints it); raises Refused with its answer."""
    w = words(ctx)
    text = str(raw or "")
    if not text.strip():
        raise Refused(f"{w.err} Please enter a tensor directory path")
    if w.paths != "safe":
        shown = text.strip()
        return _resolve(ctx, shown), shown
    try:
        folder = safe_path(ctx.root, text.strip())
    except UnsafePath:
        raise Refused(f"❌ Rejected unsafe tensor directory path: {text}") from None
    return folder, str(folder)


# ---------------------------------------------------------------------------- dataset


def load_training_dataset(ctx: SimContext, values: dict[str, Any], _state: Any) -> str:
    w = words(ctx)
    try:
        folder, shown = _tensor_dir(ctx, values.get("tensor_dir"))
    except Refused as exc:
        return str(exc)
    if not folder.exists():
        return f"{w.err} Directory not found: {shown}"
    if not folder.is_dir():
        return f"{w.err} Not a directory: {shown}"
    manifest = folder / "manifest.json"
    if manifest.exists():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            meta = doc.get("metadata", {})
            return (f"{w.loaded} Loaded preprocessed dataset: {meta.get('name', 'Unknown')}\n"
                    f"{w.count} Samples: {doc.get('num_samples', 0)} preprocessed tensors\n"
                    f"{w.tag} Custom Tag: {meta.get('custom_tag', '') or '(none)'}")
        except (OSError, ValueError, AttributeError) as exc:
            logger.warning("Failed to read manifest: %s", exc)
    pt_files = [f for f in os.listdir(folder) if f.endswith(".pt")]
    if not pt_files:
        return f"{w.err} No .pt tensor files found in {shown}"
    return (f"{w.loaded} Found {len(pt_files)} tensor files in {shown}\n"
            f"{w.info} No manifest.json found - using all .pt files")


# ---------------------------------------------------------------------------- the run


class _Run:
    """One training run: what the UI handler keeps (log lines, loss points, the clock)."""

    def __init__(self, ctx: SimContext, v: dict[str, Any], state: dict[str, Any]) -> None:
        self.ctx, self.v, self.state = ctx, v, state
        self.w = words(ctx)
        self.lines: list[str] = []
        self.points: list[tuple[int, float]] = []
        self.t0 = time.monotonic()
        self.mojibake = ctx.faults().mojibake
        self.fp = fingerprint(v["tensor_dir"], v["sd"], v["r"], v["a"])
        self._plot: _PlotCache | None = None
        self.audio: list[str] = []  # the dataset's songs, remembered in each adapter (style.py)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def time_info(self, status: str) -> str:
        elapsed = self.elapsed()
        info = f"{self.w.clock} Elapsed: {duration(elapsed)}"
        match = re.search(r"Epoch\s+(\d+)/(\d+)", status)
        if match and int(match.group(1)) > 0:
            current, total = int(match.group(1)), int(match.group(2))
            info += f" | ETA: ~{duration(elapsed / current * (total - current))}"
        return info

    def text(self, s: str) -> str:
        return EMOJI.sub(FFFD, s) if self.mojibake else s

    def item(self, status: str, plot: Any) -> tuple[str, str, Any, dict[str, Any]]:
        return self.text(status), self.text("\n".join(self.lines[-15:])), plot, self.state

    def plot(self, *, final: bool = False) -> Any:
        """f30aee4: a DataFrame for its LinePlot, with a spurious (0, 0.0) point until the
        first loss; later versions: a matplotlib figure for gr.Plot."""
        if self.w.lineplot:
            import pandas as pd

            rows = self.points or [(0, 0.0)]
            return pd.DataFrame({"step": [s for s, _ in rows], "loss": [x for _, x in rows]})
        if self._plot is None:
            self._plot = _PlotCache()
        return self._plot.get(self.points, final=final)

    def empty_plot(self) -> Any:
        if self.w.lineplot:
            import pandas as pd

            return pd.DataFrame({"step": [], "loss": []})
        return _PlotCache().get([], final=True)

    def loss(self, step: int) -> float:
        noise = (int(self.fp[(step % 28):(step % 28) + 4], 16) % 1000) / 20000.0
        return 0.25 + 0.75 * math.exp(-step / 150.0) + noise

    def save(self, folder: Path, epoch: int, step: int) -> None:
        flat = self.ctx.layout == "flat"
        learned = style.Training(tuple(self.audio), epoch, int(self.v["ep"]), self.fp) \
            if self.audio else None
        write_adapter(folder if flat else folder / "adapter", r=int(self.v["r"]),
                      alpha=int(self.v["a"]), dropout=float(self.v["d"]),
                      fingerprint=fingerprint(self.fp, epoch), training=learned)
        if folder.name == "final":
            return
        state = {"epoch": epoch, "global_step": step, "optimizer_state_dict": {},
                 "scheduler_state_dict": {}}
        atomic_write_bytes(folder / "training_state.pt", torch_format(state))
        atomic_write_text(folder / "training_state.json", json.dumps({**state,
                                                                      "simulator": True}))

    def write_logs(self, od: Path) -> None:
        logs = od / "logs"
        k = len(list(logs.glob("version_*"))) if logs.is_dir() else 0
        rows = "".join(f"{s},{x:.6f}\n" for s, x in self.points)
        atomic_write_text(logs / f"version_{k}" / "train_loss.SIMULATOR.csv", "step,loss\n" + rows)


class _PlotCache:
    """The loss plot as gr.Plot's matplotlib payload, redrawn at most every PLOT_EVERY
    seconds (a figure per stream item costs a 2-core CI box more than the training)."""

    def __init__(self) -> None:
        self.drawn: Any = None
        self.n = -1
        self.at = 0.0

    def get(self, points: list[tuple[int, float]], *, final: bool = False) -> Any:
        now = time.monotonic()
        if self.drawn is None or (len(points) != self.n and (final or now - self.at
                                                              >= PLOT_EVERY)):
            self.drawn, self.n, self.at = _figure(points), len(points), now
        return self.drawn


def _figure(points: list[tuple[int, float]]) -> Any:
    from gradio.components.plot import PlotData
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3))
    ax = fig.subplots()
    if points:
        ax.plot([s for s, _ in points], [x for _, x in points], color="tab:blue",
                label="Loss (raw)", linewidth=1)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(True, alpha=0.3)
    ax.set_xlabel("Step")
    ax.set_ylabel("Loss")
    ax.set_title("Training loss (SIMULATOR)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="webp")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return PlotData(type="matplotlib", plot=f"data:image/webp;base64,{data}")


def torch_format(obj: dict[str, Any]) -> bytes:
    """torch.save's zip layout for a dict of primitives, without importing torch."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


# ---------------------------------------------------------------------------- the UI handler


def _output_dir(ctx: SimContext, raw: Any) -> tuple[Path, str]:
    """(folder, as the trainer prints it); 6d467e4's trainer refuses one outside the root."""
    text = str(raw or "")
    if words(ctx).paths == "safe":
        folder = safe_path(ctx.root, text)  # UnsafePath: the handler's "Error: …"
        return folder, str(folder)
    return _resolve(ctx, text), text


def _resume_from(ctx: SimContext, raw: Any) -> tuple[Path, str] | None:
    """What the UI handler passes the trainer as resume_from: f30aee4 the text as given;
    c4cdd99 and 6d467e4 only an existing folder under the root (else None: a fresh start
    without a word)."""
    text = str(raw or "").strip()
    if not text:
        return None
    if ctx.faults().lose_resume:  # the server cannot see the path: as if it did not exist
        text = text.rstrip("/") + "-not-visible-to-the-server"
    if words(ctx).paths == "given":
        return _resolve(ctx, text), text
    if words(ctx).paths == "joined":
        joined = safe_join(ctx.root, text)
        return (joined, str(joined)) if joined is not None and joined.exists() else None
    try:
        folder = safe_path(ctx.root, text)
    except UnsafePath:
        logger.warning("Rejected unsafe resume path: %s", text)
        return None
    return (folder, str(folder)) if folder.exists() else None


def training_wrapper(ctx: SimContext, v: dict[str, Any], state: Any) -> Iterator[Any]:
    state = state if isinstance(state, dict) else {"is_training": False, "should_stop": False}
    run = _Run(ctx, v, state)
    w = run.w
    try:
        tdir, shown = _tensor_dir(ctx, v["tensor_dir"])
    except Refused as exc:
        yield run.text(str(exc)), "", None, state
        return
    if not (tdir.is_dir() if w.paths == "safe" else tdir.exists()):
        yield run.text(f"{w.err} Tensor directory not found: {shown}"), "", None, state
        return
    state["is_training"], state["should_stop"] = True, False
    try:
        yield run.item(f"{w.start} Starting training from {shown}...", run.plot())
        od = _output_dir(ctx, v["od"])
        yield from _stream(run, _trainer(run, tdir, od, _resume_from(ctx, v["rc"])))
    except (UnsafePath, OSError) as exc:
        logger.exception("Training error")
        state["is_training"] = False
        yield run.text(f"{w.err} Error: {exc}"), run.text(str(exc)), run.empty_plot(), state
    finally:
        state["is_training"] = False


def _stream(run: _Run, trainer: Iterator[Item]) -> Iterator[Any]:
    w, state = run.w, run.state
    failure = ""
    for step, loss, status in trainer:
        if status.startswith(w.failed) or any(k in status.lower() for k in (
                "training failed", "error:", "module not found")):
            failure = status
        info = run.time_info(status)
        run.lines.append(status)
        if step > 0 and loss == loss:  # NaN check
            run.points.append((step, float(loss)))
        yield run.item(f"{status}\n{info}", run.plot())
        if state.get("should_stop", False):
            close = getattr(trainer, "close", None)
            if close is not None:
                close()  # the trainer never gets to save final/
            logger.info("Training stopped by user")
            run.lines.append(f"{w.stop} Training stopped by user")
            yield run.item(f"{w.stop} Stopped ({info})", run.plot())
            break
    state["is_training"] = False
    total = duration(run.elapsed())
    if failure:
        run.lines.append(failure)
        yield run.item(f"{failure}\nElapsed: {total}", run.plot(final=True))
        return
    done = f"{w.done} Training completed! Total time: {total}"
    run.lines.append(done)
    yield run.item(done, run.plot(final=True))


# ---------------------------------------------------------------------------- the trainer


def _trainer(run: _Run, tdir: Path, od: tuple[Path, str],
             resume: tuple[Path, str] | None) -> Iterator[Item]:
    """LoRATrainer.train_from_preprocessed (Fabric path): the same words in every version."""
    v = run.v
    files = tensor_files(tdir)
    run.audio = style.find_training_audio(tdir)
    if not files:
        yield 0, 0.0, "❌ No valid samples found in tensor directory"
        return
    yield 0, 0.0, f"📂 Loaded {len(files)} preprocessed samples"
    if run.w.checkpointing_line:
        yield 0, 0.0, "🧠 Gradient checkpointing enabled for decoder"
    for key in ("ep", "bs", "ga", "se", "r"):
        if isinstance(v[key], float):  # ACE-Step feeds these to range()/DataLoader as ints
            yield 0, 0.0, "❌ Training failed: 'float' object cannot be interpreted as an integer"
            return
    od[0].mkdir(parents=True, exist_ok=True)
    yield 0, 0.0, f"🚀 Starting training (device: {DEVICE}, precision: {PRECISION})..."
    yield 0, 0.0, f"🎯 Training {int(v['r']) * 2 * 2048 * 4 * 24:,} parameters"
    start, step = yield from _resume(run, resume)
    yield from _epochs(run, od, len(files), start, step)


def _resume(run: _Run,
            resume: tuple[Path, str] | None) -> Generator[Item, None, tuple[int, int]]:
    """(start epoch, global step) from a checkpoint, with the trainer's words."""
    if resume is None:
        return 0, 0
    folder, shown = resume
    if not folder.exists():  # only f30aee4 passes a missing path on
        yield 0, 0.0, f"⚠️ Checkpoint path not found: {shown}, starting fresh"
        return 0, 0
    yield 0, 0.0, f"🔄 Loading checkpoint from {shown}..."
    adapter = folder / "adapter" if (folder / "adapter").exists() else folder
    epoch, step = 0, 0
    state_file = folder / "training_state.json"
    if state_file.is_file():
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        epoch, step = int(saved.get("epoch", 0)), int(saved.get("global_step", 0))
    elif match := re.search(r"epoch_(\d+)", str(folder)):
        epoch = int(match.group(1))
    if not (adapter / "adapter_model.safetensors").is_file() and \
            not (adapter / "adapter_model.bin").is_file():
        yield 0, 0.0, f"⚠️ Adapter weights not found in {adapter}"
        return 0, 0
    ok = state_file.is_file()
    yield 0, 0.0, ", ".join([f"✅ Resumed from epoch {epoch}, step {step}"]
                            + (["optimizer ✓", "scheduler ✓"] if ok else []))
    return epoch, step


def _epochs(run: _Run, od: tuple[Path, str], samples: int, start: int,
            step: int) -> Iterator[Item]:
    ctx, v, state = run.ctx, run.v, run.state
    ep = int(v["ep"])
    steps_per_epoch = max(1, math.ceil(math.ceil(samples / int(v["bs"])) / int(v["ga"])))
    drop = ctx.faults().drop
    loss = 0.0
    for epoch in range(start + 1, ep + 1):
        t0 = time.monotonic()
        for _ in range(steps_per_epoch):
            if state.get("should_stop", False):
                yield step, 0.0, "⏹️ Training stopped by user"
                return
            ctx.delay(EPOCH_SECONDS / steps_per_epoch)
            step += 1
        loss = run.loss(step)
        yield step, loss, f"Epoch {epoch}/{ep}, Step {step}, Loss: {loss:.4f}"
        if run.w.epoch_summary:
            yield step, loss, (f"✅ Epoch {epoch}/{ep} in {time.monotonic() - t0:.1f}s, "
                               f"Loss: {loss:.4f}")
        if epoch % int(v["se"]) == 0:
            run.save(od[0] / "checkpoints" / _checkpoint_name(run, epoch, loss), epoch, step)
            yield step, loss, f"💾 Checkpoint saved at epoch {epoch}"
            if drop is not None and (drop == 0 or epoch >= drop):
                ctx.crash(f"drop fault at epoch {epoch}")
        elif drop and epoch >= drop:
            ctx.crash(f"drop fault at epoch {epoch}")
    run.save(od[0] / "final", ep, step)
    run.write_logs(od[0])
    yield step, loss, f"✅ Training complete! LoRA saved to {os.path.join(od[1], 'final')}"


def _checkpoint_name(run: _Run, epoch: int, loss: float) -> str:
    if run.ctx.version.loss_named_checkpoints:
        return f"epoch_{epoch}_loss_{loss:.4f}"
    return f"epoch_{epoch}"


def stop_training(ctx: SimContext, _v: dict[str, Any], state: Any) -> tuple[str, Any]:
    w = words(ctx)
    if not isinstance(state, dict) or not state.get("is_training", False):
        return w.no_training, state
    state["should_stop"] = True
    return w.stopping, state


# ---------------------------------------------------------------------------- export


def export_lora(ctx: SimContext, v: dict[str, Any], _state: Any) -> str:
    """f30aee4 answers with U+FFFD and uses the paths as given; the newer handlers answer
    with emoji (their i18n texts) and refuse paths outside the root (c4cdd99: any absolute
    one)."""
    export_raw, od_raw = str(v.get("export_path") or ""), str(v.get("lora_output_dir") or "")
    paths = words(ctx).paths
    ok, bad = (FFFD, FFFD) if paths == "given" else ("✅", "❌")
    if not export_raw.strip():
        return f"{bad} Please enter an export path"
    src_root = _export_path(ctx, paths, od_raw)
    if src_root is None:
        return "❌ Invalid LoRA output directory"
    source = _export_source(src_root)
    if source == "none":
        return f"{bad} No checkpoints found"
    if not isinstance(source, Path):
        return f"{bad} No trained model found in {od_raw}"
    dest = _export_path(ctx, paths, export_raw.strip())
    if dest is None:
        return "❌ Invalid export path"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(source, dest)
    except OSError as exc:
        return f"{bad} Export failed: {exc}"
    return f"{ok} LoRA exported to {export_raw.strip() if paths == 'given' else dest}"


def _export_path(ctx: SimContext, paths: str, raw: str) -> Path | None:
    if paths == "given":
        return _resolve(ctx, raw)
    if paths == "joined":
        return safe_join(ctx.root, raw)
    try:
        return safe_path(ctx.root, raw)
    except UnsafePath:
        return None


def _export_source(src_root: Path) -> Path | str | None:
    """final/, else the checkpoint with the highest epoch; "none" when checkpoints/ holds
    none, None when neither exists."""
    if (src_root / "final").exists():
        return src_root / "final"
    folder = src_root / "checkpoints"
    if not folder.exists():
        return None
    epochs = [d for d in os.listdir(folder) if d.startswith("epoch_")]
    if not epochs:
        return "none"
    epochs.sort(key=lambda name: int(name.split("_")[1]))
    return folder / epochs[-1]
