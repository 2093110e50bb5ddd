"""NaN/Inf repair for preprocessed tensors. Imports torch: only ever run in a child process.

The MPS fp16 bug leaves NaN in padding rows, rows whose attention mask is 0; zeroing them
changes nothing the model sees. Non-finite values in rows whose mask is on are broken content:
never silently zeroed, reported as ``broken`` so the pipeline re-preprocesses that song in fp32.

Clean files cost one mmap'd load plus one sum per tensor (a NaN or Inf anywhere makes the sum
non-finite; a finite sum proves every value finite, since a sum can only overflow to a false
alarm: it is summed again in a wide accumulator, and the exact per-row check clears the rest).
Clean files are never rewritten; repaired ones are written atomically with the same keys,
shapes and dtypes, as plain dicts that ``torch.load(weights_only=True)`` reads (CONTRACT §6).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import pickle
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from acewatchd.util.files import TEMP_PREFIX, barrier

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
    """Fast and exact for 'yes'; a 'no' may be an overflow false alarm (checked exactly later).
    The sum in the tensor's own dtype comes first (twice as fast for fp16 as a widened one);
    only when it overflows is it summed again in the wide accumulator."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return True
    if bool(torch.isfinite(tensor.sum())):
        return True
    return _wide(tensor) != tensor.dtype and bool(torch.isfinite(tensor.sum(dtype=_wide(tensor))))


Save = Callable[[Path, dict[str, Any]], None]


def check_file(path: Path, save: Save | None = None) -> FileResult:
    """Classify one file and repair it in place when only padding rows are non-finite
    (``save`` writes the repaired file: by default at once, atomically)."""
    try:
        data = load(path)
    except Malformed as exc:
        return FileResult(path.name, "malformed", reason=str(exc))
    suspects: dict[str, torch.Tensor | None] = {}
    for key, value in data.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        if key in ROW_MASK:
            if value.numel() == 0 or bool(torch.isfinite(value.sum())):
                continue
            sums = value.sum(dim=1, dtype=_wide(value))  # where to look (or an overflow)
            if not bool(torch.isfinite(sums).all()):
                suspects[key] = sums
        elif not all_finite(value):
            suspects[key] = None
    if not suspects:
        return FileResult(path.name, "clean")
    result = _repair(data, suspects, path.name)
    if result.status == "repaired":
        (save or _save)(path, data)
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
    fixed = torch.nan_to_num(part, nan=0.0, posinf=0.0, neginf=0.0)
    # Exactly the non-finite values (NaN differs even from itself); a quarter of the cost of
    # torch.isfinite, which is slow on fp16.
    changed = fixed != part
    bad = int(torch.count_nonzero(changed))
    if bad == 0:
        return 0, 0  # only overflowed sums
    # fp16 rows summed in fp32 cannot overflow (65504 x 2**24 values is far below fp32's
    # limit): each row with a non-finite sum holds a non-finite value. Other dtypes can, so
    # their damaged rows are found one by one.
    damaged = rows if tensor.dtype == torch.float16 else rows[changed.any(dim=1)]
    live = int((mask.index_select(0, damaged) != 0).sum())
    if not live:
        tensor.index_copy_(0, rows, fixed)
    return bad, live


def _save(path: Path, data: dict[str, Any]) -> None:
    """Write the repaired file beside the old one, fsync it, rename it over: atomic, but the
    folder's fsync and (on macOS) the drive flush are the caller's, once per folder
    (``barrier``). torch.save is given the path, not a Python file object: its own writer
    then writes the file without a round trip through Python."""
    # torch names the archive inside after the file name up to its last dot: it must have one
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        torch.save(data, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fchmod(fd, 0o644)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
    with _Writer() as writer:
        results = [_safe_check(p, writer.submit) for p in paths]
    results = [FileResult(r.file, "malformed", reason=writer.failed[r.file])
               if r.file in writer.failed else r for r in results]
    if any(r.status == "repaired" for r in results):
        barrier([folder])  # the renames, and on macOS every repaired file, made durable
    summary: dict[str, int] = {}
    for result in results:
        summary[result.status] = summary.get(result.status, 0) + 1
    return {"dir": str(folder), "summary": summary, "files": [asdict(r) for r in results]}


class _Writer:
    """Repaired files written on a thread of their own while the next files are checked
    (torch.save and fsync wait on the disk, the checks on memory). At most two repaired
    files wait at once, so memory stays bounded by the files, not the folder."""

    def __init__(self) -> None:
        self.failed: dict[str, str] = {}  # file name -> why it could not be written
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sanitize-write")
        self._room = threading.BoundedSemaphore(2)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown(wait=True)

    def submit(self, path: Path, data: dict[str, Any]) -> None:
        self._room.acquire()
        try:
            self._pool.submit(self._write, path, data)
        except BaseException:
            self._room.release()
            raise

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        try:
            _save(path, data)
        except Exception as exc:  # reported for this file; the others go on
            logger.exception("writing the repaired %s failed", path)
            self.failed[path.name] = f"the repair could not be written: {exc}"[:300]
        finally:
            self._room.release()


def _safe_check(path: Path, save: Save | None = None) -> FileResult:
    try:
        return check_file(path, save)
    except Exception as exc:  # a surprise in one file must not stop the others
        logger.exception("sanitizing %s failed", path)
        return FileResult(path.name, "malformed", reason=f"{type(exc).__name__}: {exc}"[:300])
