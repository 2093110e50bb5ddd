"""What an ACE-Step folder says about itself: its commit, its version, whether it can preprocess.

Read as files only (no git subprocess, nothing of ACE-Step imported), so ``doctor``, ``prepare``
and ``status`` can ask cheaply. The commit comes from ``.git`` (``HEAD``, a loose ref or
``packed-refs``; a ``.git`` file pointing elsewhere, as in worktrees and submodules, is
followed); the version from ``[project] version`` in ``pyproject.toml``. Versions before
c4cdd99 have no ``acestep/training_v2``, which acewatchd preprocesses with (CONTRACT §9).

``training_v2_imports`` is the one place that runs ACE-Step's own interpreter, to check that
the package imports there.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from acewatchd.acestep import versions
from acewatchd.acestep.versions import AceStepVersion
from acewatchd.errors import AcewatchdError

TRAINING_V2 = Path("acestep") / "training_v2"
_HEX = re.compile(r"[0-9a-f]{4,64}")


@dataclass(frozen=True)
class Checkout:
    root: Path
    commit: str | None              # the hash .git holds for HEAD (normally all 40 digits)
    pyproject_version: str | None   # [project] version of root/pyproject.toml
    has_training_v2: bool           # root/acestep/training_v2/ is a package
    known: AceStepVersion | None    # the known version with this commit, if it is one

    @property
    def short_commit(self) -> str | None:
        return self.commit[:7] if self.commit else None

    @property
    def too_old(self) -> bool:
        """No ``acestep.training_v2``: acewatchd cannot preprocess with this checkout."""
        return not self.has_training_v2

    def describe(self) -> str:
        """``1.5.0 at c4cdd99 (V1, 2026-02-14)``, or what is unknown about it."""
        text = self.pyproject_version or "unknown version"
        if self.commit is None:
            return f"{text} (no git commit found in {self.root / '.git'})"
        text += f" at {self.short_commit}"
        if self.known is not None:
            return f"{text} ({self.known.label}, {self.known.date})"
        return f"{text} (not a version acewatchd was tested with)"


def read_checkout(root: Path) -> Checkout:
    root = Path(root)
    commit = git_commit(root)
    known: AceStepVersion | None = None
    if commit is not None:
        try:
            known = versions.by_commit(commit)
        except KeyError:
            known = None
    package = root / TRAINING_V2
    has_v2 = (package / "__init__.py").is_file() or (package / "preprocess.py").is_file()
    return Checkout(root, commit, pyproject_version(root), has_v2, known)


def require_training_v2(root: Path) -> None:
    """Refuse a checkout without ``acestep/training_v2`` (ACE-Step before c4cdd99)."""
    checkout = read_checkout(root)
    if checkout.too_old:
        raise AcewatchdError(
            f"ACE-Step in {checkout.root} is too old ({checkout.describe()}): it has no "
            f"{TRAINING_V2}/ (the acestep.training_v2 package acewatchd preprocesses with); "
            f"{versions.UPDATE_HINT}")


def training_v2_imports(python: Path, root: Path, timeout: float = 120.0) -> tuple[bool, str]:
    """Does ``import acestep.training_v2`` work in ACE-Step's own interpreter, run in its
    folder? (ok, the last line of its stderr, or why it could not run)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        done = subprocess.run([str(python), "-c", "import acestep.training_v2"], cwd=root,
                              env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, f"{python} did not finish `import acestep.training_v2` in {timeout:.0f}s"
    except OSError as exc:
        return False, f"cannot run {python}: {exc.strerror or exc}"
    lines = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
    last = lines[-1].strip() if lines else ""
    if done.returncode != 0 and not last:
        last = f"exit status {done.returncode}"
    return done.returncode == 0, last


# --------------------------------------------------------------------------- the files


def acestep_version(root: Path) -> str | None:
    """``1.5.0 (f30aee4)`` (pyproject version, short commit), either alone, or None: the
    one-line version written into run records."""
    version, commit = pyproject_version(root), git_commit(root)
    short = commit[:7] if commit else None
    return f"{version} ({short})" if version and short else version or short


def pyproject_version(root: Path) -> str | None:
    try:
        data = tomllib.loads((Path(root) / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    project = data.get("project")
    version = project.get("version") if isinstance(project, dict) else None
    return str(version) if version else None


def git_commit(root: Path) -> str | None:
    """The commit HEAD names, read from the files under ``.git``; None when unknown."""
    try:
        gitdir = _gitdir(Path(root))
        if gitdir is None:
            return None
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return _hash(head)
        ref = head[4:].strip()
        common = _common_dir(gitdir)
        for folder in dict.fromkeys((gitdir, common)):
            loose = folder / ref
            if loose.is_file():
                return _hash(loose.read_text(encoding="utf-8"))
        return _packed_ref(common / "packed-refs", ref)
    except (OSError, UnicodeDecodeError):
        return None


def _gitdir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # "gitdir: <path>" (worktrees, submodules)
        text = dot_git.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir:"):
            target = Path(text[7:].strip())
            target = target if target.is_absolute() else root / target
            return target if target.is_dir() else None
    return None


def _common_dir(gitdir: Path) -> Path:
    try:
        text = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return gitdir
    common = Path(text)
    return common if common.is_absolute() else gitdir / common


def _packed_ref(path: Path, ref: str) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and not line.startswith(("#", "^")):
            return _hash(parts[0])
    return None


def _hash(text: str) -> str | None:
    value = text.strip().lower()
    return value if _HEX.fullmatch(value) else None
