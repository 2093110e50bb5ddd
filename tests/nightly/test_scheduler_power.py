"""power.py: pmset parsing, the macOS policy driven through stand-in pmset/caffeinate
executables (argument lists, the assertion process ends with the job), the Linux no-op."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

from acewatchd.util.power import MacPower, NullPower, default_power, parse_pmset_batt

AC = "Now drawing from 'AC Power'\n -InternalBattery-0 (id=1)\t100%; charged; 0:00 remaining\n"
BATT = "Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\t80%; discharging;\n"


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_parse_pmset() -> None:
    assert parse_pmset_batt(AC) is True
    assert parse_pmset_batt(BATT) is False
    assert parse_pmset_batt("") is True  # unknown: do not refuse to train


def test_mac_power_with_stand_in_tools(tmp_path: Path) -> None:
    args_file = tmp_path / "args"
    pmset = script(tmp_path / "pmset", (
        "import sys, pathlib\n"
        f"pathlib.Path({str(args_file)!r}).write_text(' '.join(sys.argv[1:]))\n"
        f"print({BATT!r})\n"))
    pid_file = tmp_path / "caff.pid"
    caffeinate = script(tmp_path / "caffeinate", (
        "import os, sys, time, pathlib\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()) + ' ' + "
        "' '.join(sys.argv[1:]))\n"
        "time.sleep(60)\n"))
    power = MacPower(pmset=str(pmset), caffeinate=str(caffeinate))
    assert power.on_ac_power() is False
    assert args_file.read_text() == "-g batt"
    with power.hold_awake(4242):
        deadline = time.monotonic() + 10
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        pid, *argv = pid_file.read_text().split()
        assert argv == ["-i", "-w", "4242"]
        os.kill(int(pid), 0)  # alive while the job runs
    try:
        os.kill(int(pid), 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the no-sleep assertion must end with the job"


def test_missing_tools_degrade_gracefully(tmp_path: Path) -> None:
    power = MacPower(pmset=str(tmp_path / "nope"), caffeinate=str(tmp_path / "nope2"))
    power.pmset, power.caffeinate = str(tmp_path / "nope"), str(tmp_path / "nope2")
    assert power.on_ac_power() is True
    with power.hold_awake():
        pass


def test_linux_policy_is_a_no_op() -> None:
    assert NullPower().on_ac_power() is True
    with NullPower().hold_awake(1):
        pass
    if sys.platform != "darwin":
        assert isinstance(default_power(), NullPower)
