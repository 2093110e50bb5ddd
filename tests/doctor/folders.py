"""Fake ACE-Step folders for the doctor tests: S-like (no training_v2), V1-like, V2-like.

Nothing of ACE-Step is in them: a pyproject version, a ``.git`` naming the commit, an empty
``acestep/training_v2`` package, a trainer text made up for the precision check, and a small
shell script standing in for ACE-Step's interpreter (exits 0, or 1 with an error line).
"""

from __future__ import annotations

from pathlib import Path

from acewatchd.acestep import versions

# A trainer before 7dadd02: the helpers pick fp16 for mps and nothing keeps weights in fp32.
UNPATCHED = '''
import torch

def _select_compute_dtype(device_type: str) -> torch.dtype:
    if device_type in ("cuda", "xpu"):
        return torch.bfloat16
    if device_type == "mps":
        return torch.float16
    return torch.float32

def _select_fabric_precision(device_type: str) -> str:
    if device_type in ("cuda", "xpu"):
        return "bf16-mixed"
    if device_type == "mps":
        return "16-mixed"
    return "32-true"
'''
PATCHED = UNPATCHED.replace("return torch.float16", "return torch.float32").replace(
    'return "16-mixed"', 'return "32-true"')
# From 7dadd02 on: the same helpers, and a trainer that forces its trainable weights to fp32
# and skips steps whose gradients are not finite (names as upstream; the bodies are made up).
GUARDED = UNPATCHED + '''

def _ensure_trainable_params_fp32(module):
    return 0, 0

def _count_nonfinite_grads(params):
    return 0, 0

class Trainer:
    def setup(self):
        casted, total = _ensure_trainable_params_fp32(self.decoder)

    def step(self):
        bad, total = _count_nonfinite_grads(self.params)
'''
IMPORT_ERROR = "ModuleNotFoundError: No module named 'lightning'"


def full_commit(version: versions.AceStepVersion) -> str:
    return version.commit + "0" * (40 - len(version.commit))


def write_python(path: Path, ok: bool = True) -> Path:
    """A stand-in for ACE-Step's interpreter: exits 0, or prints a traceback and exits 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "exit 0" if ok else (
        'echo "Traceback (most recent call last):" >&2\n'
        f"echo \"{IMPORT_ERROR}\" >&2\nexit 1")
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def fake_acestep(root: Path, trainer: str | None = GUARDED, env: str | None = None, *,
                 version: versions.AceStepVersion | None = versions.V2,
                 training_v2: bool | None = None, python_ok: bool = True,
                 env_example: str | None = None) -> Path:
    """An ACE-Step-shaped folder at ``version`` (None: a commit acewatchd does not know).
    ``training_v2`` defaults to what that version has."""
    (root / "checkpoints").mkdir(parents=True)
    write_python(root / ".venv/bin/python", python_ok)
    (root / "pyproject.toml").write_text('[project]\nname = "ace-step"\nversion = "1.5.0"\n')
    git = root / ".git"
    (git / "refs/heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    commit = full_commit(version) if version is not None else "1a2b3c4" + "f" * 33
    (git / "refs/heads/main").write_text(commit + "\n")
    if training_v2 if training_v2 is not None else (version is None or version.training_v2):
        (root / "acestep/training_v2").mkdir(parents=True)
        (root / "acestep/training_v2/__init__.py").write_text('"""fake"""\n')
    if trainer is not None:
        (root / "acestep/training").mkdir(parents=True)
        (root / "acestep/training/trainer.py").write_text(trainer)
    if env is not None:
        (root / ".env").write_text(env)
    if env_example is not None:
        (root / ".env.example").write_text(env_example)
    return root


def write_config(home: Path, ace_root: Path, url: str, extra: str = "") -> Path:
    for name in ("drop", "outbox"):
        (home / name).mkdir(parents=True, exist_ok=True)
    cfg = home / "config.toml"
    cfg.write_text(f'[paths]\ndrop = "{home}/drop"\noutbox = "{home}/outbox"\n'
                   f'[acestep]\nroot = "{ace_root}"\nurl = "{url}"\n{extra}')
    return cfg
