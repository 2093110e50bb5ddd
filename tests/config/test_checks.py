"""Config that must not be accepted: non-finite or oversized numbers, a render with no prompt,
a cron that never fires, an empty server command, odd URLs, and overlapping folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from acewatchd.config.load import parse_config
from acewatchd.errors import ConfigError


def problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "acestep").mkdir(exist_ok=True)
    full = f'[acestep]\nroot = "{tmp_path / "acestep"}"\n' + text if "[acestep]" not in text \
        else text
    with pytest.raises(ConfigError) as err:
        parse_config(full, tmp_path / "config.toml")
    return err.value.problems


def accepted(tmp_path: Path, text: str) -> None:
    (tmp_path / "acestep").mkdir(exist_ok=True)
    parse_config(f'[acestep]\nroot = "{tmp_path / "acestep"}"\n' + text, tmp_path / "c.toml")


@pytest.mark.parametrize(("text", "needle"), [
    ("[watch]\nsettle_seconds = nan\n", "watch.settle_seconds: must be a finite number"),
    ("[watch]\nsettle_seconds = inf\n", "watch.settle_seconds: must be a finite number"),
    ("[train]\ndropout = -inf\n", "train.dropout: must be a finite number"),
    ("[train]\nlearning_rate = nan\n", "train.learning_rate: must be a finite number"),
    ("[outbox]\nkeep_runs = 99999999999999999999\n", "outbox.keep_runs"),
    ("[render]\nprompts = []\n", "render.prompts: rendering is on but there is no prompt"),
    ('[schedule]\ncron = "0 1 30 2 *"\n', "never fires"),
    ('[notify]\nwebhook_url = "http://example.com/hook"\n', "notify.webhook_url"),
    ('[notify]\nwebhook_url = "file:///etc/passwd"\n', "notify.webhook_url"),
    ('[service]\nlabel = "../../evil"\n', "service.label"),
])
def test_refused(tmp_path: Path, text: str, needle: str) -> None:
    found = problems(tmp_path, text)
    assert any(needle in p for p in found), found


def test_acestep_url_and_server_command(tmp_path: Path) -> None:
    ace = tmp_path / "acestep"
    found = problems(tmp_path, f'[acestep]\nroot = "{ace}"\nurl = "ftp://x:21"\n'
                               'manage_server = true\nserver_command = []\n')
    assert any("acestep.url" in p and "http(s)" in p for p in found), found
    assert any("acestep.server_command: empty" in p for p in found), found


@pytest.mark.parametrize("key", ["rejected", "outbox", "state", "logs"])
def test_daemon_folders_inside_drop_are_refused(tmp_path: Path, key: str) -> None:
    found = problems(tmp_path, f'[paths]\ndrop = "d"\n{key} = "d/{key}"\n')
    assert any(f"paths.{key}" in p and "inside paths.drop" in p for p in found), found


def test_drop_inside_acestep_and_root_folders_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, f'[paths]\ndrop = "{tmp_path / "acestep" / "drop"}"\n')
    assert any("paths.drop" in p and "inside the ACE-Step folder" in p for p in found), found
    found = problems(tmp_path, '[paths]\noutbox = "/"\n')
    assert any("paths.outbox" in p and "too wide" in p for p in found), found
    found = problems(tmp_path, f'[paths]\nstate = "{Path.home()}"\n')
    assert any("paths.state" in p and "too wide" in p for p in found), found


def test_sane_config_is_accepted(tmp_path: Path) -> None:
    accepted(tmp_path, '[notify]\nwebhook_url = "http://127.0.0.1:8080/x"\n'
                       '[schedule]\ncron = "0 1 29 2 *"\n')   # leap days do come
    accepted(tmp_path, '[notify]\nwebhook_url = "https://ntfy.sh/my-topic"\n'
                       '[render]\nenabled = false\nprompts = []\n')
