"""`acewatchd service ...`: the rendered launchd plist / systemd unit and the exact commands.

The CLI runs as a real subprocess with HOME pointing at a temp dir and a fake `launchctl` /
`systemctl` first on PATH that records its argv, so nothing touches the real service manager.
"""

from __future__ import annotations

import json
import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LABEL = "com.example.acewatchd-test"

FAKE_TOOL = """#!{python}
import json, os, sys
with open(os.environ["FAKE_RECORD"], "a", encoding="utf-8") as fh:
    fh.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
fail = os.environ.get("FAKE_FAIL", "")
sys.exit(3 if fail and fail in sys.argv[1:] else 0)
"""


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home with space"
    acehome = tmp_path / "ace home"
    acehome.mkdir(parents=True)
    home.mkdir()
    (acehome / "config.toml").write_text(
        f'[service]\nlabel = "{LABEL}"\nthrottle_seconds = 17\n[paths]\nlogs = "my logs"\n',
        encoding="utf-8")
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    for tool in ("launchctl", "systemctl"):
        script = fakebin / tool
        script.write_text(FAKE_TOOL.format(python=sys.executable), encoding="utf-8")
        script.chmod(0o755)
    e = {k: v for k, v in os.environ.items() if not k.startswith("ACEWATCHD")}
    e.update(HOME=str(home), PATH=f"{fakebin}{os.pathsep}{os.environ['PATH']}",
             FAKE_RECORD=str(tmp_path / "calls.jsonl"), ACEWATCHD_SERVICE_MANAGER="launchd")
    return e


def acewatchd(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    cfg = Path(env["HOME"]).parent / "ace home" / "config.toml"
    return subprocess.run([sys.executable, "-m", "acewatchd", "--config", str(cfg), *argv],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO,
                          check=False)


def calls(env: dict[str, str]) -> list[list[str]]:
    path = Path(env["FAKE_RECORD"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_install_writes_plist_with_absolute_paths_and_bootstraps(env: dict[str, str]) -> None:
    proc = acewatchd(env, "service", "install")
    assert proc.returncode == 0, proc.stderr
    home = Path(env["HOME"])
    acehome = home.parent / "ace home"
    plist_file = home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    data = plistlib.loads(plist_file.read_bytes())
    cfg = str(acehome / "config.toml")
    assert data["Label"] == LABEL
    assert data["ProgramArguments"] == [os.path.abspath(sys.executable), "-m", "acewatchd",
                                        "--config", cfg, "run"]
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["ThrottleInterval"] == 17
    assert data["ProcessType"] == "Standard"
    envvars = data["EnvironmentVariables"]
    path_dirs = envvars["PATH"].split(":")
    assert "/opt/homebrew/bin" in path_dirs
    assert path_dirs[0] == str(Path(os.path.abspath(sys.executable)).parent)
    assert str(home / ".local" / "bin") in path_dirs
    assert envvars["ACEWATCHD_CONFIG"] == cfg
    assert data["WorkingDirectory"] == str(acehome)
    assert data["StandardOutPath"] == str(acehome / "my logs" / "service.stdout.log")
    assert data["StandardErrorPath"] == str(acehome / "my logs" / "service.stderr.log")
    assert "~" not in plist_file.read_text(encoding="utf-8")
    assert (acehome / "my logs").is_dir()  # launchd will not create the log folder itself
    uid = os.getuid()
    assert calls(env) == [
        ["launchctl", "bootout", f"gui/{uid}/{LABEL}"],
        ["launchctl", "enable", f"gui/{uid}/{LABEL}"],
        ["launchctl", "bootstrap", f"gui/{uid}", str(plist_file)],
    ]


def test_install_tolerates_bootout_failure_but_not_bootstrap_failure(env: dict[str, str]
                                                                     ) -> None:
    env["FAKE_FAIL"] = "bootout"  # not loaded yet: launchctl bootout exits non-zero
    assert acewatchd(env, "service", "install").returncode == 0
    env["FAKE_FAIL"] = "bootstrap"
    proc = acewatchd(env, "service", "install")
    assert proc.returncode == 1
    assert "launchctl bootstrap" in proc.stderr and "exit code 3" in proc.stderr


def test_status_restart_uninstall_commands(env: dict[str, str]) -> None:
    assert acewatchd(env, "service", "install").returncode == 0
    target = f"gui/{os.getuid()}/{LABEL}"
    Path(env["FAKE_RECORD"]).unlink()
    assert acewatchd(env, "service", "status").returncode == 0
    assert acewatchd(env, "service", "restart").returncode == 0
    assert acewatchd(env, "service", "uninstall").returncode == 0
    assert calls(env) == [["launchctl", "print", target],
                          ["launchctl", "kickstart", "-k", target],
                          ["launchctl", "bootout", target]]
    assert not (Path(env["HOME"]) / "Library" / "LaunchAgents" / f"{LABEL}.plist").exists()


def test_status_passes_launchctl_exit_code_through(env: dict[str, str]) -> None:
    env["FAKE_FAIL"] = "print"  # launchctl print fails when the agent is not loaded
    assert acewatchd(env, "service", "status").returncode == 3


def test_dry_run_prints_plist_and_commands_and_changes_nothing(env: dict[str, str]) -> None:
    proc = acewatchd(env, "service", "install", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "<key>ProcessType</key>" in proc.stdout
    assert f"would run: launchctl bootstrap gui/{os.getuid()} " in proc.stdout
    assert calls(env) == []
    assert not (Path(env["HOME"]) / "Library").exists()


def test_systemd_unit_and_commands(env: dict[str, str]) -> None:
    env["ACEWATCHD_SERVICE_MANAGER"] = "systemd"
    assert acewatchd(env, "service", "install").returncode == 0
    unit = Path(env["HOME"]) / ".config" / "systemd" / "user" / f"{LABEL}.service"
    text = unit.read_text(encoding="utf-8")
    cfg = str(Path(env["HOME"]).parent / "ace home" / "config.toml")
    assert f'ExecStart="{os.path.abspath(sys.executable)}" "-m" "acewatchd" "--config" "{cfg}"'\
           ' "run"' in text
    assert "Restart=on-failure" in text and "RestartSec=17" in text
    assert "/opt/homebrew/bin" in text and "~" not in text
    for action in ("status", "restart", "uninstall"):
        assert acewatchd(env, "service", action).returncode == 0
    name = f"{LABEL}.service"
    assert calls(env) == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", name],
        ["systemctl", "--user", "status", "--no-pager", name],
        ["systemctl", "--user", "restart", name],
        ["systemctl", "--user", "disable", "--now", name],
        ["systemctl", "--user", "daemon-reload"],
    ]
    assert not unit.exists()


def test_logs_shows_the_tail_of_each_log(env: dict[str, str]) -> None:
    logs = Path(env["HOME"]).parent / "ace home" / "my logs"
    logs.mkdir()
    (logs / "service.stderr.log").write_text("".join(f"line {i}\n" for i in range(100)))
    proc = acewatchd(env, "service", "logs")
    assert proc.returncode == 0
    assert "line 99" in proc.stdout and "line 59" not in proc.stdout


def test_bad_manager_override_is_a_clear_error(env: dict[str, str]) -> None:
    env["ACEWATCHD_SERVICE_MANAGER"] = "upstart"
    proc = acewatchd(env, "service", "status")
    assert proc.returncode == 1 and "ACEWATCHD_SERVICE_MANAGER" in proc.stderr


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


def test_templates_match_what_is_rendered(tmp_path: Path) -> None:
    from acewatchd.config.load import parse_config
    from acewatchd.daemon.service import Install, plist_dict, render_unit

    cfg_path = tmp_path / "config.toml"
    cfg = parse_config("", cfg_path)
    python = os.path.abspath(sys.executable)
    inst = Install(cfg=cfg, config_path=cfg_path, home=tmp_path / "h", python=python, uid=501)
    values = {"LABEL": cfg.service.label, "PYTHON": python, "VENV_BIN": str(Path(python).parent),
              "CONFIG": str(cfg_path), "ACEWATCHD_HOME": str(tmp_path),
              "LOGS": str(tmp_path / "logs"), "HOME": str(tmp_path / "h")}
    template = (REPO / "launchd" / "com.acewatchd.agent.plist.template").read_text()
    assert plistlib.loads(_fill(template, values).encode()) == plist_dict(inst)
    unit_t = (REPO / "launchd" / "acewatchd.service.template").read_text()
    body = [ln for ln in _fill(unit_t, values).splitlines() if not ln.startswith("#")]
    rendered = [ln for ln in render_unit(inst).decode().splitlines() if not ln.startswith("#")]
    assert body == rendered
