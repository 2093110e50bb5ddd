"""``acewatchd doctor``: one ✓/✗ line per check, with the fix for each ✗.

Each check is a small function returning ``Check`` results so tests can run it on fake
ACE-Step folders. The exit code is non-zero if any check fails.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path

from acewatchd.acestep import versions
from acewatchd.acestep.checkout import (
    TRAINING_V2,
    Checkout,
    read_checkout,
    training_v2_imports,
)
from acewatchd.config.load import find_config_path, load_config
from acewatchd.config.schema import Config
from acewatchd.doctor.check import Check
from acewatchd.doctor.server import check_server
from acewatchd.doctor.trainer_precision import check_mps_precision
from acewatchd.errors import ConfigError

# The PATH launchd gives the agent (service.py writes the same into the plist).
LAUNCHD_PATH = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
TOOLS = ("ffmpeg", "ffprobe")


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def check_config(path: str | None) -> tuple[Check, Config | None]:
    cfg_path = find_config_path(path)
    try:
        cfg = load_config(cfg_path)
    except ConfigError as exc:
        return Check("config", False, "; ".join(exc.problems)[:500] + f" ({exc.path})",
                     f"edit {exc.path}, then run `acewatchd config check`"), None
    return Check("config", True, f"{cfg_path} is valid"), cfg


def check_tools(path_env: str | None = None, where: str = "this shell's PATH") -> list[Check]:
    out = []
    for tool in TOOLS:
        found = shutil.which(tool, path=path_env)
        fix = ("install it (`brew install ffmpeg`) so it is in one of "
               f"{LAUNCHD_PATH}" if path_env == LAUNCHD_PATH else
               "install ffmpeg (`brew install ffmpeg` / `apt install ffmpeg`)")
        out.append(Check(f"{tool} on {where}", bool(found), found or "not found", fix))
    return out


def _runnable(python: Path) -> bool:
    return python.is_file() and os.access(python, os.X_OK)


def check_acestep_root(root: Path, python: Path, checkpoints: Path) -> list[Check]:
    if not root.is_dir():
        return [Check("ACE-Step root", False, f"{root} does not exist",
                      "set [acestep] root in config.toml to your ACE-Step-1.5 folder")]
    out = [Check("ACE-Step root", True, str(root))]
    runnable = _runnable(python)
    out.append(Check("ACE-Step venv interpreter", runnable, str(python) + (
        "" if runnable else " missing or not executable"),
        f"run `uv sync` in {root} (or set [acestep] python)"))
    has_ckpt = checkpoints.is_dir()
    out.append(Check("ACE-Step checkpoints", has_ckpt, str(checkpoints) + (
        "" if has_ckpt else " missing"),
        f"run `acestep-download` in {root} (or set [preprocess] checkpoint_dir)"))
    return out


def check_acestep_version(checkout: Checkout) -> Check:
    """The checkout's version, and whether acewatchd can work with it (too old: no
    ``acestep/training_v2``)."""
    name = "ACE-Step version"
    what = checkout.describe()
    if checkout.too_old:
        return Check(name, False, f"{what}: too old, {checkout.root / TRAINING_V2}/ is missing "
                     "(acewatchd preprocesses with acestep.training_v2)", versions.UPDATE_HINT)
    if checkout.known is not None and not checkout.known.supported:
        return Check(name, False, f"{what}: too old, not supported", versions.UPDATE_HINT)
    if checkout.known is None:
        tested = ", ".join(v.title for v in versions.VERSIONS.values() if v.supported)
        return Check(name, True, f"{what}; it has acestep.training_v2 (note: acewatchd was "
                     f"tested with {tested})")
    return Check(name, True, f"{what}: supported")


def check_training_v2_import(python: Path, root: Path, timeout: float = 120.0) -> Check:
    name = "acestep.training_v2 import"
    ok, last = training_v2_imports(python, root, timeout)
    if ok:
        return Check(name, True, f"imports in {python}")
    return Check(name, False, f"`import acestep.training_v2` fails in {python}: "
                 f"{last or 'no error text'}",
                 f"run `uv sync` in {root} (ACE-Step's own environment), or set [acestep] "
                 "python to the interpreter ACE-Step runs with")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.split(" #")[0].strip().strip("'\"")
    return values


def check_env_file(root: Path, apple_silicon: bool) -> list[Check]:
    env, example = root / ".env", root / ".env.example"
    if env.is_file():
        used = env
        out = [Check("ACE-Step .env", True, str(env))]
    elif example.is_file():  # ACE-Step loads .env.example when there is no .env
        used = example
        out = [Check("ACE-Step .env", True, f"{env} not found; ACE-Step falls back to {example}"
                     f" (note: `cp {example} {env}` to change its settings)")]
    else:
        return [Check("ACE-Step .env", False, f"{env} not found",
                      f"cp {root}/.env.example {env}"
                      + (" and set ACESTEP_LM_BACKEND=mlx" if apple_silicon else ""))]
    if apple_silicon:
        backend = read_env_file(used).get("ACESTEP_LM_BACKEND", "")
        out.append(Check("ACESTEP_LM_BACKEND", backend == "mlx",
                         (backend or "not set") + ("" if used == env else f" (in {used})"),
                         f"set ACESTEP_LM_BACKEND=mlx in {env} (vllm does not run on Apple"
                         " Silicon)" + ("" if used == env else f"; create it: cp {used} {env}")))
    return out


def check_folders(cfg: Config) -> list[Check]:
    return [_check_rw(label, folder) for label, folder in
            (("drop folder", cfg.paths.drop), ("outbox folder", cfg.paths.outbox))]


def _check_rw(label: str, folder: Path) -> Check:
    fix = f"mkdir -p {folder} && chmod u+rwx {folder}"
    if not folder.is_dir():
        return Check(label, False, f"{folder} does not exist", fix)
    try:
        os.listdir(folder)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".acewatchd-doctor-"):
            pass
    except OSError as exc:
        return Check(label, False, f"{folder} not readable/writable: {exc.strerror}", fix)
    return Check(label, True, f"{folder} readable and writable")


def run_checks(config_path: str | None, *, apple_silicon: bool | None = None) -> list[Check]:
    apple = is_apple_silicon() if apple_silicon is None else apple_silicon
    first, cfg = check_config(config_path)
    checks = [first, *check_tools(), *check_tools(LAUNCHD_PATH, "launchd's PATH")]
    if cfg is None:
        return checks
    ace = cfg.acestep
    ckpt = Path(cfg.preprocess.checkpoint_dir) if cfg.preprocess.checkpoint_dir \
        else ace.root / "checkpoints"
    checks += check_acestep_root(ace.root, ace.python_path(), ckpt)
    if ace.root.is_dir():
        checkout = read_checkout(ace.root)
        checks.append(check_acestep_version(checkout))
        if not checkout.too_old and _runnable(ace.python_path()):
            checks.append(check_training_v2_import(ace.python_path(), ace.root))
        checks += check_env_file(ace.root, apple)
        checks.append(check_mps_precision(ace.root))
    checks += check_server(ace.url, manage_server=ace.manage_server,
                           timeout=min(ace.timeout_seconds, 10.0),
                           root=ace.root if ace.root.is_dir() else None)
    return checks + check_folders(cfg)
