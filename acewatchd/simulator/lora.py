"""SIMULATOR LoRA adapters: writing PEFT-shaped folders and the /load_lora family.

Adapters are real files (adapter_config.json with ACE-Step's keys, a valid safetensors file
of small float32 tensors) written without torch. Their ``simulator_fingerprint`` makes
generation with a loaded LoRA sound different (pitch), so tests can tell outputs apart; the
adapters training writes also carry ``simulator_training`` (style.py), which blends the LoRA's
clips towards the training songs by epoch and scale.

The handlers answer in the impersonated version's words. f30aee4 and c4cdd99 hold one adapter
(a new load replaces it); 6d467e4 adds named adapters: /load_lora names one after the path's
basename and refuses a name already loaded, /unload_lora removes them all.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

from acewatchd.simulator import style
from acewatchd.simulator.context import SimContext, logger
from acewatchd.util.files import atomic_write_bytes, atomic_write_text

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
MARK = "acewatchd ACE-Step SIMULATOR adapter (test double, not a real LoRA)"
LOKR_WEIGHTS = "lokr_weights.safetensors"


def safetensors_bytes(tensors: dict[str, tuple[list[int], list[float]]],
                      meta: dict[str, str]) -> bytes:
    """A valid .safetensors file of F32 tensors (header JSON + little-endian data)."""
    header: dict[str, Any] = {"__metadata__": meta}
    blobs, offset = [], 0
    for name, (shape, values) in tensors.items():
        blob = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset,
                                                                         offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def write_adapter(folder: Path, *, r: int, alpha: int, dropout: float, fingerprint: str,
                  training: style.Training | None = None) -> None:
    seed = int(fingerprint[:8], 16)
    tensors = {}
    for i, mod in enumerate(TARGETS):
        for part, shape in (("lora_A", [r, 4]), ("lora_B", [4, r])):
            n = shape[0] * shape[1]
            vals = [((seed >> (j % 24)) % 97 - 48) / 4800.0 + i for j in range(n)]
            tensors[f"base_model.model.layers.0.attn.{mod}.{part}.weight"] = (shape, vals)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "adapter_model.safetensors",
                       safetensors_bytes(tensors, {"format": "pt", "simulator": "true"}))
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "lora_dropout": dropout,
              "target_modules": list(TARGETS), "bias": "none",
              "task_type": "FEATURE_EXTRACTION", "inference_mode": True,
              "simulator": MARK, "simulator_fingerprint": fingerprint}
    if training is not None:
        config[style.CONFIG_KEY] = training.to_json()
    atomic_write_text(folder / "adapter_config.json", json.dumps(config, indent=2))
    atomic_write_text(folder / "README.md", f"# {MARK}\n")


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _invalid(ctx: SimContext, raw: str) -> str:
    if ctx.version.commit == "f30aee4":
        return f"❌ Invalid LoRA adapter: adapter_config.json not found in {raw}"
    return ("❌ Invalid adapter: expected PEFT LoRA directory containing adapter_config.json "
            f"or LoKr artifact {LOKR_WEIGHTS} in {raw}")


def _read_config(ctx: SimContext, cfg_file: Path) -> tuple[dict[str, Any], str]:
    """(config, error text); 6d467e4 validates the file before loading, older versions fail
    inside PEFT."""
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if ctx.version.named_adapters:
            return {}, f"❌ Could not read adapter_config.json: {exc}"
        return {}, f"❌ Failed to load LoRA: {exc}"
    if not isinstance(cfg, dict):
        if ctx.version.named_adapters:
            return {}, "❌ adapter_config.json must be a JSON object."
        return {}, "❌ Failed to load LoRA: adapter_config.json is not a JSON object"
    if "peft_type" not in cfg and ctx.version.named_adapters:
        return {}, ("❌ adapter_config.json is missing required field 'peft_type'. The adapter "
                    "may have been saved with an incompatible tool or a very old PEFT version. "
                    "Please re-export the adapter using a current PEFT release.")
    if cfg.get("peft_type", "LORA") != "LORA":
        return {}, f"❌ Failed to load LoRA: not a LoRA adapter ({cfg.get('peft_type')})"
    return cfg, ""


def adapter_name(raw: str) -> str:
    """6d467e4's default adapter name: the path's basename ('adapter' for …/final/adapter)."""
    return Path(raw.rstrip("/")).name or "default"


def load_lora(ctx: SimContext, values: dict[str, Any], _state: Any) -> str:
    raw = str(values.get("lora_path") or "").strip()
    if not raw:
        return "❌ Please provide a LoRA path."
    path = Path(raw) if Path(raw).is_absolute() else ctx.root / raw  # no path check here
    if not path.exists():
        return f"❌ LoRA path not found: {raw}"
    cfg_file = path / "adapter_config.json"
    if not cfg_file.is_file():
        return _invalid(ctx, raw)
    cfg, error = _read_config(ctx, cfg_file)
    if error:
        return error
    fp = str(cfg.get("simulator_fingerprint") or fingerprint(raw))
    learned = style.Training.from_json(cfg.get(style.CONFIG_KEY))
    with ctx.lock:
        if ctx.version.named_adapters:
            name = adapter_name(raw)
            if name in ctx.lora.adapters:
                return (f"❌ Adapter name already in use: {name}. Use a different name or "
                        "remove it first.")
            ctx.lora.adapters[name] = fp
            ctx.lora.active = name
            ctx.lora.scale = 1.0
        ctx.lora.path = raw
        ctx.lora.use = True
        ctx.lora.fingerprint = fp
        ctx.lora.training = learned
    logger.info("SIMULATOR LoRA loaded from %s", raw)
    if ctx.version.named_adapters:
        return f"✅ LoRA '{adapter_name(raw)}' loaded from {raw}"
    return f"✅ LoRA loaded from {raw}"


def unload_lora(ctx: SimContext, _values: dict[str, Any], _state: Any) -> str:
    with ctx.lock:
        was = ctx.lora.path
        ctx.lora.path, ctx.lora.use, ctx.lora.scale, ctx.lora.fingerprint = None, False, 1.0, ""
        ctx.lora.training = None
        ctx.lora.adapters.clear()
        ctx.lora.active = None
    return "✅ LoRA unloaded, using base model" if was else "⚠️ No LoRA adapter loaded."


def set_use_lora(ctx: SimContext, values: dict[str, Any], _state: Any) -> str:
    use = bool(values.get("use_lora"))
    with ctx.lock:
        if use and not ctx.lora.path:
            return "❌ No LoRA adapter loaded. Please load a LoRA first."
        ctx.lora.use = use
    return f"✅ LoRA {'enabled' if use else 'disabled'}"


def set_lora_scale(ctx: SimContext, values: dict[str, Any], _state: Any) -> str:
    with ctx.lock:
        if not ctx.lora.path:
            return "⚠️ No LoRA loaded"
        try:
            scale = float(values.get("scale"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return "❌ Invalid LoRA scale: please provide a numeric value between 0 and 1."
        if not math.isfinite(scale):
            return "❌ Invalid LoRA scale: please provide a finite numeric value between 0 and 1."
        scale = max(0.0, min(1.0, scale))
        ctx.lora.scale = scale
        use, name = ctx.lora.use, ctx.lora.active
    which = f" ({name})" if ctx.version.named_adapters else ""
    if not use:
        return f"✅ LoRA scale{which}: {scale:.2f} (LoRA disabled)"
    return f"✅ LoRA scale{which}: {scale:.2f}"
