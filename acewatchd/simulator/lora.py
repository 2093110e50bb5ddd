"""SIMULATOR LoRA adapters: writing PEFT-shaped folders and the /load_lora family.

Adapters are real files (adapter_config.json with ACE-Step's keys, a valid safetensors file
of small float32 tensors) written without torch. Their ``simulator_fingerprint`` makes
generation with a loaded LoRA sound different (pitch), so tests can tell outputs apart.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from acewatchd.simulator.context import SimContext, logger
from acewatchd.util.files import atomic_write_bytes, atomic_write_text

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
MARK = "acewatchd ACE-Step SIMULATOR adapter (test double, not a real LoRA)"


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


def write_adapter(folder: Path, *, r: int, alpha: int, dropout: float, fingerprint: str) -> None:
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
    atomic_write_text(folder / "adapter_config.json", json.dumps(config, indent=2))
    atomic_write_text(folder / "README.md", f"# {MARK}\n")


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def load_lora(ctx: SimContext, values: dict[str, Any], _state: Any) -> str:
    raw = str(values.get("lora_path") or "").strip()
    if not raw:
        return "❌ Please provide a LoRA path"
    path = Path(raw) if Path(raw).is_absolute() else ctx.root / raw  # S: no path check here
    if not path.exists():
        return f"❌ LoRA path not found: {raw}"
    cfg_file = path / "adapter_config.json"
    if not path.is_dir() or not cfg_file.is_file():
        return f"❌ Invalid LoRA adapter: adapter_config.json not found in {raw}"
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        if not isinstance(cfg, dict) or cfg.get("peft_type", "LORA") != "LORA":
            raise ValueError("not a LoRA adapter_config.json")
    except (OSError, ValueError) as exc:
        return f"❌ Failed to load LoRA: {exc}"
    with ctx.lock:
        ctx.lora.path = raw
        ctx.lora.use = True
        ctx.lora.fingerprint = str(cfg.get("simulator_fingerprint") or fingerprint(raw))
    logger.info("SIMULATOR LoRA loaded from %s", raw)
    return f"✅ LoRA loaded from {raw} [SIMULATOR]"


def unload_lora(ctx: SimContext, _values: dict[str, Any], _state: Any) -> str:
    with ctx.lock:
        was = ctx.lora.path
        ctx.lora.path, ctx.lora.use, ctx.lora.scale, ctx.lora.fingerprint = None, False, 1.0, ""
    return "✅ LoRA unloaded, using base model [SIMULATOR]" if was else "⚠️ No LoRA loaded"


def set_use_lora(ctx: SimContext, values: dict[str, Any], _state: Any) -> str:
    use = bool(values.get("use_lora"))
    with ctx.lock:
        if use and not ctx.lora.path:
            return "❌ No LoRA adapter loaded. Please load a LoRA first."
        ctx.lora.use = use
    return f"✅ LoRA {'enabled' if use else 'disabled'} [SIMULATOR]"


def set_lora_scale(ctx: SimContext, values: dict[str, Any], _state: Any) -> str:
    scale = min(max(float(values.get("scale") or 0.0), 0.0), 1.0)
    with ctx.lock:
        ctx.lora.scale = scale
        loaded = bool(ctx.lora.path)
    if not loaded:
        return f"⚠️ LoRA scale set to {scale:.2f} (no LoRA loaded) [SIMULATOR]"
    return f"✅ LoRA scale set to {scale:.2f} [SIMULATOR]"
