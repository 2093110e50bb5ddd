"""SIMULATOR: installs acewatchd's stand-in for ACE-Step's preprocessing into a fake root.

``install(root)`` copies the ``acestep`` package tree beside this file into ``root`` (so
``python -c "import acestep.training_v2.preprocess"`` works with cwd = root, as with the real
ACE-Step), writes a marker file saying SIMULATOR, and creates ``root/checkpoints/`` (the real
function requires a checkpoint folder) and ``root/.simulator/`` (fault switches and the call
log). The simulator server calls it at start; tests call it directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
MARKER = "SIMULATOR.txt"
FAULTS = "preprocess_faults.json"
CALLS = "preprocess_calls.jsonl"


def install(root: Path) -> None:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / "acestep"
    if target.exists() and not _is_ours(target):
        raise RuntimeError(f"{target} exists and is not the simulator's: refusing to replace it")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(_HERE / "acestep", target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copyfile(_HERE / MARKER, root / MARKER)
    (root / "checkpoints").mkdir(exist_ok=True)
    (root / ".simulator").mkdir(exist_ok=True)


def _is_ours(target: Path) -> bool:
    try:
        return "SIMULATOR" in (target / "__init__.py").read_text("utf-8")
    except OSError:
        return False


def set_faults(root: Path, faults: dict[str, Any]) -> None:
    """Replace the preprocessing fault switches (tests)."""
    (Path(root) / ".simulator").mkdir(parents=True, exist_ok=True)
    (Path(root) / ".simulator" / FAULTS).write_text(json.dumps(faults), encoding="utf-8")


def calls(root: Path) -> list[dict[str, Any]]:
    """Every recorded preprocess_audio_files call, oldest first (tests)."""
    path = Path(root) / ".simulator" / CALLS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
