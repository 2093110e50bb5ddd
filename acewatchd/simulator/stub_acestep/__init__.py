"""SIMULATOR: installs acewatchd's stand-in for an ACE-Step checkout into a fake root.

``install(root, version=...)`` makes ``root`` look like a checkout of that ACE-Step version:
- the ``acestep`` package tree beside this file (so ``python -c "import
  acestep.training_v2.preprocess"`` works with cwd = root, as with the real ACE-Step); at
  f30aee4, which has no ``acestep/training_v2``, without it, so a preprocessing child fails
  exactly like the real one (``ModuleNotFoundError: No module named 'acestep.training_v2'``);
- ``pyproject.toml`` with the version's ``[project]`` name and version, and a minimal ``.git``
  (``HEAD`` -> ``refs/heads/main`` holding the version's full commit) unless the root has a
  real ``.git`` or ``pyproject.toml``, so a checkout-reading version probe sees that commit;
- a marker file saying SIMULATOR, ``root/checkpoints/`` (the real function requires a
  checkpoint folder) and ``root/.simulator/`` (fault switches and the call log).
The simulator server calls it at start; tests call it directly.
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
GIT_MARK = "SIMULATOR"  # a file in the stand-in .git/: it is ours to rewrite

# What each known version's checkout holds that a probe reads: the full commit, the
# pyproject [project] name/version (from the real repository), and whether acestep/training_v2
# exists (from c7659f0, 2026-02-13).
CHECKOUTS: dict[str, dict[str, Any]] = {
    "f30aee4": {"commit": "f30aee4c186c33b7b8a6ea59a4b7fc36f795b49f", "version": "1.5.0",
                "training_v2": False},
    "c4cdd99": {"commit": "c4cdd99532a839ff3ce6bc209ec22c27f519ab58", "version": "1.5.0",
                "training_v2": True},
    "6d467e4": {"commit": "6d467e4b5081ccb0abf1ec1bf4fdf9051a2d34b0", "version": "1.5.0",
                "training_v2": True},
}
DEFAULT_VERSION = "6d467e4"


def install(root: Path, version: str = DEFAULT_VERSION) -> None:
    checkout = CHECKOUTS[version]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / "acestep"
    if target.exists() and not _is_ours(target):
        raise RuntimeError(f"{target} exists and is not the simulator's: refusing to replace it")
    shutil.rmtree(target, ignore_errors=True)
    skip = ["__pycache__", "*.pyc"] + ([] if checkout["training_v2"] else ["training_v2"])
    shutil.copytree(_HERE / "acestep", target, ignore=shutil.ignore_patterns(*skip))
    shutil.copyfile(_HERE / MARKER, root / MARKER)
    _write_pyproject(root, version, checkout)
    _write_git(root, checkout["commit"])
    (root / "checkpoints").mkdir(exist_ok=True)
    (root / ".simulator").mkdir(exist_ok=True)


def _write_pyproject(root: Path, version: str, checkout: dict[str, Any]) -> None:
    path = root / "pyproject.toml"
    if path.exists() and "SIMULATOR" not in path.read_text("utf-8", errors="replace"):
        return  # a real one: leave it
    path.write_text(f"# SIMULATOR: acewatchd's stand-in for ACE-Step {version}'s "
                    "pyproject.toml (a test double)\n"
                    f'[project]\nname = "ace-step"\nversion = "{checkout["version"]}"\n'
                    'description = "ACE-Step 1.5"\n', encoding="utf-8")


def _write_git(root: Path, commit: str) -> None:
    """A minimal git directory whose HEAD names ``commit`` (no objects: git log would fail,
    reading .git/HEAD and its ref works)."""
    git = root / ".git"
    if git.is_file() or (git.exists() and not (git / GIT_MARK).is_file()):
        return  # a real checkout's .git (or a .git file pointing at one): leave it
    for sub in ("refs/heads", "refs/tags", "objects"):
        (git / sub).mkdir(parents=True, exist_ok=True)
    (git / GIT_MARK).write_text("acewatchd SIMULATOR stand-in for an ACE-Step checkout\n",
                                encoding="utf-8")
    (git / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (git / "refs" / "heads" / "main").write_text(commit + "\n", encoding="utf-8")
    (git / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = false\n",
                                encoding="utf-8")


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
