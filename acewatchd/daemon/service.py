"""`acewatchd service install|uninstall|status|restart|logs`: run the daemon as a user service.

macOS: a launchd agent, ``~/Library/LaunchAgents/<label>.plist``, loaded into the user's GUI
domain with ``launchctl bootstrap gui/<uid>``. Linux: a systemd user unit,
``~/.config/systemd/user/acewatchd.service``, managed with ``systemctl --user``.

launchd expands neither ``~`` nor ``$VARS`` and starts agents with a bare PATH, so everything
written here is absolute and computed from this process's environment (``$HOME``, the current
interpreter, the resolved config path). Commands are argument lists, never a shell.
``ACEWATCHD_SERVICE_MANAGER=launchd|systemd`` overrides the platform guess (tests use it).
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from acewatchd.config.load import ENV_VAR, find_config_path, load_config
from acewatchd.config.schema import Config
from acewatchd.errors import AcewatchdError
from acewatchd.util.files import atomic_write_bytes

MANAGER_ENV = "ACEWATCHD_SERVICE_MANAGER"
DEFAULT_LABEL = "com.acewatchd.agent"
STDOUT_LOG = "service.stdout.log"
STDERR_LOG = "service.stderr.log"
# Homebrew (Apple Silicon, then Intel) first so launchd finds ffmpeg; ~/.local/bin holds uv.
SYSTEM_PATH = ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]


@dataclass
class Plan:
    """What an action would do: files to write or remove, then commands to run."""

    write: dict[Path, bytes] = field(default_factory=dict)
    remove: list[Path] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    optional: set[int] = field(default_factory=set)  # indexes of commands allowed to fail


@dataclass(frozen=True)
class Install:
    """Everything both service managers need, computed once from config + environment."""

    cfg: Config
    config_path: Path
    home: Path
    python: str
    uid: int

    @property
    def label(self) -> str:
        return self.cfg.service.label

    @property
    def logs(self) -> Path:
        return self.cfg.paths.logs

    def program(self) -> list[str]:
        return [self.python, "-m", "acewatchd", "--config", str(self.config_path), "run"]

    def path_env(self) -> str:
        # The interpreter's bin first: the venv's own tools; then Homebrew, uv's usual home.
        dirs = [str(Path(self.python).parent), *SYSTEM_PATH, str(self.home / ".local" / "bin")]
        return ":".join(dict.fromkeys(dirs))

    def environment(self) -> dict[str, str]:
        return {"PATH": self.path_env(), ENV_VAR: str(self.config_path),
                "PYTHONUNBUFFERED": "1", "LANG": "en_US.UTF-8"}


def gather(config: str | None) -> Install:
    path = find_config_path(config)
    cfg = load_config(path)
    home = Path(os.environ.get("HOME") or Path.home()).absolute()
    # Not resolved: a venv's python is a symlink, and resolving it would step out of the venv.
    python = os.path.abspath(sys.executable)
    return Install(cfg=cfg, config_path=path, home=home, python=python, uid=os.getuid())


def manager() -> str:
    chosen = os.environ.get(MANAGER_ENV) or ("launchd" if sys.platform == "darwin"
                                             else "systemd")
    if chosen not in ("launchd", "systemd"):
        raise AcewatchdError(f"${MANAGER_ENV}: expected 'launchd' or 'systemd', got {chosen!r}")
    return chosen


# --------------------------------------------------------------------------- launchd


def plist_path(inst: Install) -> Path:
    return inst.home / "Library" / "LaunchAgents" / f"{inst.label}.plist"


def plist_dict(inst: Install) -> dict[str, object]:
    """The agent; launchd/com.acewatchd.agent.plist.template documents each key."""
    return {
        "Label": inst.label,
        "ProgramArguments": inst.program(),
        "RunAtLoad": True,
        # Restart only after a failure: a clean exit (SIGTERM, `service uninstall`) stays down.
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": inst.cfg.service.throttle_seconds,
        # Background would clamp the daemon and its children (training, preprocessing) to the
        # efficiency cores and throttle their I/O; Standard lets the nightly run use the P-cores.
        "ProcessType": "Standard",
        "EnvironmentVariables": inst.environment(),
        "WorkingDirectory": str(inst.cfg.home),
        "StandardOutPath": str(inst.logs / STDOUT_LOG),
        "StandardErrorPath": str(inst.logs / STDERR_LOG),
    }


def render_plist(inst: Install) -> bytes:
    return plistlib.dumps(plist_dict(inst), fmt=plistlib.FMT_XML, sort_keys=False)


def launchd_plan(inst: Install, action: str) -> Plan:
    domain, target = f"gui/{inst.uid}", f"gui/{inst.uid}/{inst.label}"
    path = plist_path(inst)
    plan = Plan()
    if action == "install":
        plan.write[path] = render_plist(inst)
        # bootout first so a re-install picks up the new plist; it fails when not loaded.
        plan.commands = [["launchctl", "bootout", target], ["launchctl", "enable", target],
                         ["launchctl", "bootstrap", domain, str(path)]]
        plan.optional = {0}
    elif action == "uninstall":
        plan.commands, plan.optional = [["launchctl", "bootout", target]], {0}
        plan.remove = [path]
    elif action == "status":
        plan.commands = [["launchctl", "print", target]]
    elif action == "restart":
        plan.commands = [["launchctl", "kickstart", "-k", target]]
    return plan


# --------------------------------------------------------------------------- systemd


def unit_name(inst: Install) -> str:
    return "acewatchd.service" if inst.label == DEFAULT_LABEL else f"{inst.label}.service"


def unit_path(inst: Install) -> Path:
    return inst.home / ".config" / "systemd" / "user" / unit_name(inst)


def _sd_quote(word: str) -> str:
    """systemd command-line quoting: double quotes, backslash escapes, %% for specifiers."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def render_unit(inst: Install) -> bytes:
    env = " ".join(_sd_quote(f"{k}={v}") for k, v in inst.environment().items())
    lines = [
        "# Written by `acewatchd service install`; re-run it after moving the config or venv.",
        "[Unit]", "Description=acewatchd (ACE-Step LoRA training daemon)", "",
        "[Service]", "Type=simple",
        "ExecStart=" + " ".join(_sd_quote(w) for w in inst.program()),
        f"WorkingDirectory={_sd_quote(str(inst.cfg.home))}",
        f"Environment={env}",
        # Same policy as launchd's KeepAlive {SuccessfulExit: false}.
        "Restart=on-failure", f"RestartSec={inst.cfg.service.throttle_seconds}",
        "KillSignal=SIGTERM", "TimeoutStopSec=30",
        f"StandardOutput=append:{inst.logs / STDOUT_LOG}",
        f"StandardError=append:{inst.logs / STDERR_LOG}", "",
        "[Install]", "WantedBy=default.target", "",
    ]
    return "\n".join(lines).encode("utf-8")


def systemd_plan(inst: Install, action: str) -> Plan:
    unit, ctl = unit_name(inst), ["systemctl", "--user"]
    plan = Plan()
    if action == "install":
        plan.write[unit_path(inst)] = render_unit(inst)
        plan.commands = [[*ctl, "daemon-reload"], [*ctl, "enable", "--now", unit]]
    elif action == "uninstall":
        plan.commands, plan.optional = [[*ctl, "disable", "--now", unit]], {0}
        plan.remove = [unit_path(inst)]
    elif action == "status":
        plan.commands = [[*ctl, "status", "--no-pager", unit]]
    elif action == "restart":
        plan.commands = [[*ctl, "restart", unit]]
    if action == "uninstall":
        plan.commands.append([*ctl, "daemon-reload"])
    return plan


# --------------------------------------------------------------------------- running


def make_plan(inst: Install, action: str) -> Plan:
    return (launchd_plan if manager() == "launchd" else systemd_plan)(inst, action)


def show_plan(plan: Plan) -> None:
    for path, data in plan.write.items():
        print(f"would write {path}:")
        print(data.decode("utf-8"))
    for path in plan.remove:
        print(f"would remove {path}")
    for index, argv in enumerate(plan.commands):
        note = "   (a failure here is ignored)" if index in plan.optional else ""
        print("would run: " + " ".join(argv) + note)


def execute(plan: Plan) -> int:
    for path, data in plan.write.items():
        atomic_write_bytes(path, data)
        print(f"wrote {path}")
    rc = 0
    for index, argv in enumerate(plan.commands):
        # An allowed failure (bootout of an agent that is not loaded) would only print noise.
        rc = run_command(argv, quiet=index in plan.optional)
        if rc != 0 and index not in plan.optional:
            raise AcewatchdError(f"`{' '.join(argv)}` failed with exit code {rc}"
                                 " (see its output above)")
    for path in plan.remove:
        path.unlink(missing_ok=True)
        print(f"removed {path}")
    return 0


def run_command(argv: list[str], quiet: bool = False) -> int:
    out = subprocess.DEVNULL if quiet else None
    try:
        return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=out).returncode
    except FileNotFoundError:
        raise AcewatchdError(
            f"{argv[0]} not found on PATH (needed to manage the service)") from None


def show_logs(inst: Install, lines: int = 40) -> int:
    files = [inst.logs / STDERR_LOG, inst.logs / STDOUT_LOG, inst.logs / "acewatchd.jsonl",
             inst.logs / "acestep.log"]
    shown = 0
    for path in files:
        if path.is_file() and path.stat().st_size:
            print(f"==> {path} <==")
            print("\n".join(_tail(path, lines)))
            shown += 1
    if not shown:
        print(f"no logs yet in {inst.logs}")
    return 0


def _tail(path: Path, lines: int) -> list[str]:
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 256 * lines))  # lines are short; this is plenty
        text = fh.read().decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]
