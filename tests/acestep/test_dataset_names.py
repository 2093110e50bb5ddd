"""A dataset is named by its drop folder in any script; ACE-Step's folders use a safe name.

The safe name is pure ASCII, stable (the same name maps to the same folder in every process and
in either Unicode normal form), short, and never shared by two names; plain names keep their
folder so an existing install finds its tensors and runs. The name rule refuses what could
leave a folder and accepts real names; the command line finds an NFC folder from NFD input.
"""

from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from acewatchd.acestep import layout
from acewatchd.commands.dataset_arg import dataset_arg, drop_folder, existing_dataset
from acewatchd.config.load import parse_config
from acewatchd.config.schema import DATASET_NAME
from acewatchd.errors import AcewatchdError, ConfigError

REAL_NAMES = ["김경호", "bach chorales", "Café Tacvba", "坂本龍一", "Sigur Rós", "AC/DC".replace(
    "/", "-"), "a" * 64, "한" * 64, "Ωmega (live) & friends", "x"]
NFD = unicodedata.normalize("NFD", "김경호")


@pytest.mark.parametrize("name", REAL_NAMES)
def test_a_real_name_has_a_short_ascii_folder_name(name: str) -> None:
    safe = layout.safe_name(name)
    assert safe.isascii() and DATASET_NAME.match(safe) and len(safe) <= 64
    assert safe not in (".", "..") and "/" not in safe and " " not in safe
    assert layout.dataset_dir(Path("/ace"), name) == Path("/ace/datasets/acewatchd") / safe
    assert layout.run_dir(Path("/ace"), name, "r1") == Path("/ace/lora_output/acewatchd") / safe \
        / "r1"
    assert layout.tensor_dir_rel(name) == f"./datasets/acewatchd/{safe}/tensors"
    assert layout.run_dir_rel(name, "r1") == f"./lora_output/acewatchd/{safe}/r1"


def test_the_safe_name_is_readable_and_pinned() -> None:
    # Pinned values: a change here moves every existing install's ACE-Step folders.
    assert layout.safe_name("김경호") == "dataset-5c043ad958"
    assert layout.safe_name("Café Tacvba") == "cafe-tacvba-48062cfd5f"
    assert layout.safe_name("bach chorales") == "bach-chorales-375238c6db"


def test_plain_names_keep_their_folder() -> None:
    for name in ("kim_kyungho", "band", "Songs-2024.v2", "A"):
        assert layout.safe_name(name) == name


def test_nfc_and_nfd_are_one_dataset_in_every_process() -> None:
    assert NFD != "김경호"
    assert layout.safe_name(NFD) == layout.safe_name("김경호")
    assert layout.safe_name(unicodedata.normalize("NFD", "Café")) == layout.safe_name("Café")
    # Stable across processes: nothing depends on hash() seeds or the time.
    out = subprocess.run([sys.executable, "-c", "from acewatchd.acestep.layout import "
                          "safe_name; print(safe_name('김경호'))"], capture_output=True,
                         text=True, check=True, env={"PYTHONHASHSEED": "123",
                                                     "PATH": "/usr/bin:/bin",
                                                     "PYTHONPATH": str(Path.cwd())})
    assert out.stdout.strip() == layout.safe_name("김경호")


def test_no_two_names_share_a_folder() -> None:
    names = ["김경호", "김경호 ", "김 경호", "박효신", "Café", "cafe", "Cafe", "café", "CAFÉ",
             "bach chorales", "bach-chorales", "bach_chorales", "Bach Chorales", "bach  chorales",
             "a" * 63 + "é", "a" * 63 + "è", "日本", "中国", "dataset", "dataset-5c043ad958",
             "cafe-" + "0" * 10, "x-0123456789", "x-012345678"]
    safe = [layout.safe_name(n) for n in names]
    assert len(set(safe)) == len(names), dict(zip(names, safe, strict=True))


def test_a_plain_name_that_looks_hashed_is_hashed_too() -> None:
    # "dataset-5c043ad958" is 김경호's safe name; a folder of that name must not share it.
    assert layout.safe_name("dataset-5c043ad958") != "dataset-5c043ad958"
    assert layout.safe_name("x-012345678") == "x-012345678"  # nine digits: not our shape


def test_long_names_stay_within_file_name_limits() -> None:
    for name in ("한" * 64, "é" * 64, "Ab" * 32, "😀" * 64):
        safe = layout.safe_name(name)
        assert len(safe.encode()) <= 64, safe  # a plain name of 64 is its own; hashed: 51
    assert layout.safe_name("é" * 64).startswith("e" * 40 + "-")
    assert layout.safe_name("😀" * 64).startswith("dataset-")


@pytest.mark.parametrize("name", ["김경호", "bach chorales", "Café Tacvba", "a..b", "Ω", "x" * 64,
                                  "it's (live) & more", "~home"])
def test_real_names_are_dataset_names(name: str) -> None:
    assert dataset_arg(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("name", ["..", ".", "../../x", "a/b", "/etc", ".hidden", "", " ",
                                  " lead", "trail ", "a\\b", "a\nb", "a\x00b", "tab\t",
                                  "a\u202eb", "zero\u200bwidth", "\ufeffbom", "x" * 65])
def test_names_that_could_leave_a_folder_are_refused(name: str) -> None:
    with pytest.raises(AcewatchdError, match="is not a dataset name"):
        dataset_arg(name)


def test_an_nfd_name_on_the_command_line_finds_the_nfc_folder(tmp_path: Path) -> None:
    cfg = parse_config(f'[paths]\ndrop = "{tmp_path}/drop"\n', tmp_path / "config.toml")
    (tmp_path / "drop" / "김경호").mkdir(parents=True)
    assert existing_dataset(cfg, NFD) == "김경호"
    assert drop_folder(cfg, dataset_arg(NFD)) == tmp_path / "drop" / "김경호"


def test_an_nfc_name_finds_a_folder_stored_in_nfd(tmp_path: Path) -> None:
    cfg = parse_config(f'[paths]\ndrop = "{tmp_path}/drop"\n', tmp_path / "config.toml")
    (tmp_path / "drop" / NFD).mkdir(parents=True)
    assert existing_dataset(cfg, "김경호") == "김경호"
    assert drop_folder(cfg, "김경호") == tmp_path / "drop" / NFD


def test_a_symlinked_or_missing_folder_is_no_dataset(tmp_path: Path) -> None:
    cfg = parse_config(f'[paths]\ndrop = "{tmp_path}/drop"\n', tmp_path / "config.toml")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "link").symlink_to(tmp_path / "elsewhere")
    for name in ("link", "김경호"):
        with pytest.raises(AcewatchdError, match="no such dataset folder"):
            existing_dataset(cfg, name)


def test_config_tables_take_real_names_in_either_form(tmp_path: Path) -> None:
    text = (f'[datasets."김경호"]\ntag = "kim"\n[datasets."{unicodedata.normalize("NFD", "Café")}"]'
            '\ntag = "cafe"\n[datasets."bach chorales"]\ntag = "bach"\n')
    cfg = parse_config(text, tmp_path / "config.toml")
    assert cfg.dataset("김경호").tag == "kim" and cfg.dataset("Café").tag == "cafe"
    assert cfg.dataset("bach chorales").tag == "bach"


def test_config_refuses_one_name_twice_and_names_that_leave_a_folder(tmp_path: Path) -> None:
    text = f'[datasets."김경호"]\ntag = "a"\n[datasets."{NFD}"]\ntag = "b"\n'
    with pytest.raises(ConfigError, match="named twice"):
        parse_config(text, tmp_path / "config.toml")
    for bad in ("..", "a/b", ".hidden", "trail "):
        with pytest.raises(ConfigError, match="dataset names are folder names"):
            parse_config(f'[datasets."{bad}"]\ntag = "x"\n', tmp_path / "config.toml")


def test_the_nightly_sees_a_decomposed_folder_under_its_nfc_name(tmp_path: Path) -> None:
    from acewatchd.nightly.times import present_datasets

    cfg = parse_config(f'[paths]\ndrop = "{tmp_path}/drop"\n[datasets."김경호"]\nenabled = false\n'
                       '[datasets."bach chorales"]\ntag = "bach"\n', tmp_path / "config.toml")
    for name in (NFD, "bach chorales", "Café", ".hidden", "trail "):
        (tmp_path / "drop" / name).mkdir(parents=True)
    # 김경호's table (found through the NFC key) disables it; names that are not dataset
    # names are never scheduled.
    assert present_datasets(cfg) == ["Café", "bach chorales"]
