"""NaN/Inf repair for preprocessed tensors. Imports torch: only ever run in a child process.

The MPS fp16 bug leaves NaN in padding rows, rows whose attention mask is 0; zeroing them
changes nothing the model sees. Non-finite values in rows whose mask is on are broken content:
never silently zeroed, reported as ``broken`` so the pipeline re-preprocesses that song in fp32.

Clean files cost one mmap'd load plus one wide-accumulator sum per tensor (a NaN or Inf anywhere
makes the sum non-finite; a finite sum proves every value finite, since summing fp16 in fp32 or
fp32 in fp32 can only overflow to a false alarm, which the exact per-row check then clears).
Clean files are never rewritten; repaired ones are written atomically with the same keys,
shapes and dtypes, as plain dicts that ``torch.load(weights_only=True)`` reads (CONTRACT §6).
"""

from __future__ import annotations

import io
import logging
import mmap
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from acewatchd.util.files import atomic_write_bytes

logger = logging.getLogger(__name__)

REQUIRED = ("target_latents", "attention_mask", "encoder_hidden_states",
            "encoder_attention_mask", "context_latents", "metadata")
# tensor key -> the mask that says which of its rows are real (dim 0)
ROW_MASK = {"target_latents": "attention_mask", "context_latents": "attention_mask",
            "encoder_hidden_states": "encoder_attention_mask"}
_WIDE = {torch.float16: torch.float32, torch.bfloat16: torch.float32}


@dataclass
class FileResult:
    file: str
    status: str  # clean | repaired | broken | malformed
    values: int = 0  # non-finite values zeroed (repaired)
    keys: dict[str, int] = field(default_factory=dict)  # per key: values zeroed / found
    reason: str = ""


class Malformed(Exception):
    """Not a tensor file ACE-Step's loader could use; the message says why."""


def load(path: Path) -> dict[str, Any]:
    """weights_only load, memory-mapped where the file format allows it. The mapping is
    private (copy-on-write), so repairs made in memory never reach the file except through the
    atomic rewrite."""
    try:
        with torch.serialization.set_default_mmap_options(mmap.MAP_PRIVATE):
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - old (non-zip) format cannot be mmap'd; a broken file fails again below
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise Malformed(_why(exc)) from exc
    _check_layout(data)
    return data  # type: ignore[no-any-return]


def _why(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "weights_only" in str(exc) or isinstance(exc, pickle.UnpicklingError):
        return f"refused by torch.load(weights_only=True): {text[:200]}"
    return f"unreadable ({type(exc).__name__}: {text[:200]})"


def _check_layout(data: Any) -> None:
    if not isinstance(data, dict):
        raise Malformed(f"not a dict but {type(data).__name__}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise Malformed(f"missing keys: {', '.join(missing)}")
    for key in REQUIRED[:-1]:
        if not isinstance(data[key], torch.Tensor):
            raise Malformed(f"{key} is not a tensor")
    t_len, l_len = data["attention_mask"].shape[:1], data["encoder_attention_mask"].shape[:1]
    if data["attention_mask"].dim() != 1 or data["encoder_attention_mask"].dim() != 1:
        raise Malformed("attention masks must be one-dimensional")
    for key, mask in ROW_MASK.items():
        expected = t_len if mask == "attention_mask" else l_len
        if data[key].dim() != 2 or data[key].shape[:1] != expected:
            raise Malformed(f"{key} has shape {list(data[key].shape)}, expected [{expected[0]}, "
                            f"N] to match {mask}")


def _wide(tensor: torch.Tensor) -> torch.dtype:
    return _WIDE.get(tensor.dtype, tensor.dtype)


def all_finite(tensor: torch.Tensor) -> bool:
    """Fast and exact for 'yes'; a 'no' may be an overflow false alarm (checked exactly later)."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return True
    return bool(torch.isfinite(tensor.sum(dtype=_wide(tensor))))


def check_file(path: Path) -> FileResult:
    """Classify one file and repair it in place when only padding rows are non-finite."""
    try:
        data = load(path)
    except Malformed as exc:
        return FileResult(path.name, "malformed", reason=str(exc))
    suspects: dict[str, torch.Tensor | None] = {}
    for key, value in data.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        if key in ROW_MASK:  # per-row sums: the clean check and, if dirty, where to look
            sums = value.sum(dim=1, dtype=_wide(value))
            if not bool(torch.isfinite(sums).all()):
                suspects[key] = sums
        elif not all_finite(value):
            suspects[key] = None
    if not suspects:
        return FileResult(path.name, "clean")
    result = _repair(data, suspects, path.name)
    if result.status == "repaired":
        _save(path, data)
    return result


def _repair(data: dict[str, Any], suspects: dict[str, torch.Tensor | None],
            name: str) -> FileResult:
    """Zero non-finite values in masked rows (in ``data``, copy-on-write), or report broken."""
    fixes: dict[str, int] = {}
    for key, sums in suspects.items():
        mask_key = ROW_MASK.get(key)
        if sums is None or mask_key is None or not all_finite(data[mask_key]):
            bad = int((~torch.isfinite(data[key])).sum())
            if bad:
                return FileResult(name, "broken", keys={key: bad},
                                  reason=f"{bad} non-finite value(s) in {key}")
            continue  # overflow false alarm
        bad, live = _repair_rows(data[key], sums, data[mask_key])
        if live:
            return FileResult(name, "broken", keys={key: bad}, reason=(
                f"{bad} non-finite value(s) in {key}, {live} row(s) where {mask_key} is on"))
        if bad:
            fixes[key] = bad
    if not fixes:
        return FileResult(name, "clean")
    return FileResult(name, "repaired", values=sum(fixes.values()), keys=fixes)


def _repair_rows(tensor: torch.Tensor, sums: torch.Tensor,
                 mask: torch.Tensor) -> tuple[int, int]:
    """(non-finite values, damaged rows where the mask is on) among the rows whose sum is not
    finite; when no damaged row is live, those values are zeroed in ``tensor``."""
    rows = (~torch.isfinite(sums)).nonzero().squeeze(1)
    part = tensor.index_select(0, rows)
    finite = torch.isfinite(part)
    bad = int((~finite).sum())
    if bad == 0:
        return 0, 0  # only overflowed sums
    damaged = rows[~finite.all(dim=1)]
    live = int((mask.index_select(0, damaged) != 0).sum())
    if not live:
        tensor.index_copy_(0, rows, part.masked_fill_(~finite, 0))
    return bad, live


def _save(path: Path, data: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(path, buffer.getbuffer())  # type: ignore[arg-type]


def sanitize_dir(folder: Path, names: list[str] | None = None,
                 threads: int | None = 1) -> dict[str, Any]:
    """Check every ``*.pt`` in ``folder`` (or just ``names``); never raises for a bad file.

    One torch thread by default: the work is a memory-bound pass over a few MB per file, and
    intra-op worker threads only spin against whatever else the machine is doing (measured: 5-10x
    slower with 2 threads on a busy 2-core box). This runs in its own process, so the setting
    touches nothing else."""
    if threads:
        torch.set_num_threads(threads)
    paths = sorted(folder / n for n in names) if names else sorted(folder.glob("*.pt"))
    results = [_safe_check(p) for p in paths]
    summary: dict[str, int] = {}
    for result in results:
        summary[result.status] = summary.get(result.status, 0) + 1
    return {"dir": str(folder), "summary": summary, "files": [asdict(r) for r in results]}


def _safe_check(path: Path) -> FileResult:
    try:
        return check_file(path)
    except Exception as exc:  # a surprise in one file must not stop the others
        logger.exception("sanitizing %s failed", path)
        return FileResult(path.name, "malformed", reason=f"{type(exc).__name__}: {exc}"[:300])
