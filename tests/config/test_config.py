"""config.toml -> Config: every error named by dotted key (and line), all at once; paths;
where the file is looked for; the documented default at the repo root validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from acewatchd.cli import main
from acewatchd.config.load import ENV_VAR, find_config_path, load_config, parse_config
from acewatchd.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def problems(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, tmp_path / "config.toml")
    return err.value.problems


def test_repo_root_config_validates() -> None:
    cfg = load_config(REPO / "config.toml")
    assert cfg.watch.extensions == ["mp3", "wav", "flac", "m4a", "ogg", "opus"]
    assert cfg.paths.drop == REPO / "drop"


def test_unknown_keys_named_with_dotted_path_and_line(tmp_path: Path) -> None:
    text = '[watch]\nsettle_seconds = 2\nsettle_secnds = 3\n\n[datasets.kim]\ntga = "x"\n'
    found = problems(text, tmp_path)
    assert "watch.settle_secnds: unknown key (line 3)" in found
    assert "datasets.kim.tga: unknown key (line 6)" in found
    assert len(found) == 2  # both at once


def test_wrong_types_and_bounds(tmp_path: Path) -> None:
    text = ('[watch]\nsettle_seconds = "3"\nextensions = "mp3"\nsettle_polls = 0\n'
            '[datasets.kim]\ninstrumental = "yes"\ntag_position = "middle"\n'
            '[datasets.kim.train]\nrank = 2\n')
    found = "\n".join(problems(text, tmp_path))
    assert "watch.settle_seconds: expected a number, got str '3' (line 2)" in found
    assert "watch.extensions: expected a list (line 3)" in found
    assert "watch.settle_polls: 0 is outside 1..100 (line 4)" in found
    assert "datasets.kim.instrumental: expected true/false" in found
    assert "datasets.kim.tag_position: must be one of 'prepend', 'append', 'replace'" in found
    assert "datasets.kim.train.rank: 2 is outside 4..256" in found


def test_syntax_error_names_line(tmp_path: Path) -> None:
    (found,) = problems("[watch]\nsettle_seconds = = 3\n", tmp_path)
    assert "TOML syntax error" in found and "line 2" in found


def test_bool_is_not_an_int_and_int_is_a_float(tmp_path: Path) -> None:
    assert problems("[train]\nrank = true\n", tmp_path)
    cfg = parse_config("[watch]\nsettle_seconds = 2\n", tmp_path / "c.toml")
    assert cfg.watch.settle_seconds == 2.0 and isinstance(cfg.watch.settle_seconds, float)


def test_bad_dataset_folder_name_and_cross_checks(tmp_path: Path) -> None:
    found = "\n".join(problems('[datasets."bad/name"]\n[watch]\nmin_duration_seconds = 700\n'
                               'extensions = [".MP3"]\n', tmp_path))
    assert "datasets.bad/name: dataset names are folder names" in found
    assert "min_duration_seconds: must be below" in found
    assert "'.MP3' should be a lowercase extension" in found


def test_paths_resolve_relative_to_config_folder_and_expand_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    text = '[paths]\ndrop = "songs/in"\nlogs = "~/acelogs"\nstate = "/var/tmp/x"\n' \
           '[acestep]\nroot = "~/ACE"\npython = "py/bin/python"\n'
    cfg = parse_config(text, tmp_path / "cfgdir" / "config.toml")
    assert cfg.paths.drop == tmp_path / "cfgdir" / "songs" / "in"
    assert cfg.paths.logs == tmp_path / "user" / "acelogs"
    assert cfg.paths.state == Path("/var/tmp/x")
    assert cfg.paths.outbox == tmp_path / "cfgdir" / "outbox"
    assert cfg.acestep.root == tmp_path / "user" / "ACE"
    assert cfg.acestep.python == str(tmp_path / "cfgdir" / "py" / "bin" / "python")
    assert cfg.home == tmp_path / "cfgdir"


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert find_config_path(None) == tmp_path / "config.toml"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.toml"))
    assert find_config_path(None) == tmp_path / "env.toml"
    assert find_config_path("cli.toml") == tmp_path / "cli.toml"
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert find_config_path("~/c.toml") == tmp_path / "h" / "c.toml"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_config_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[watch]\nsettle_secnds = 1\n[train]\nrank = \"x\"\n", encoding="utf-8")
    assert main(["config", "check", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "watch.settle_secnds: unknown key (line 2)" in out and "train.rank" in out
    good = tmp_path / "good.toml"
    good.write_text("[datasets.kim]\ntag = \"김경호\"\n", encoding="utf-8")
    assert main(["config", "check", str(good)]) == 0
    monkeypatch.setenv(ENV_VAR, str(bad))
    assert main(["--config", str(good), "config", "check"]) == 0  # --config beats the env
    assert main(["config", "check"]) == 2                        # env beats ./config.toml


def test_emptied_config_checks_as_defaults(tmp_path: Path) -> None:
    # `config check` accepts an empty file (all defaults); the running daemon refuses to
    # reload one (tests/test_daemon_reload.py), since it would silently drop every dataset.
    cfg = parse_config("", tmp_path / "config.toml")
    assert cfg.datasets == {} and cfg.watch.settle_seconds == 3.0
