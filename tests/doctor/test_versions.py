"""doctor, version-aware: which ACE-Step the root holds, whether training_v2 imports there, MPS
precision from 7dadd02 on, and the .env.example fallback. Fake folders only, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from acewatchd.acestep import versions
from acewatchd.acestep.checkout import read_checkout
from acewatchd.doctor import machine as doctor
from acewatchd.doctor.check import Check
from acewatchd.doctor.trainer_precision import check_mps_precision, fp32_guard
from acewatchd.simulator.harness import free_port
from tests.doctor.folders import (
    GUARDED,
    IMPORT_ERROR,
    UNPATCHED,
    fake_acestep,
    write_config,
    write_python,
)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def offline_checks(tmp_path: Path, ace: Path) -> dict[str, Check]:
    """Every check of a config whose ACE-Step server acewatchd would start (none runs)."""
    cfg = write_config(tmp_path / "home", ace, f"http://127.0.0.1:{free_port()}",
                       "manage_server = true\n")
    return by_name(doctor.run_checks(str(cfg), apple_silicon=False))


@pytest.mark.parametrize("version", [versions.V1, versions.V2])
def test_supported_versions_are_named_and_pass(tmp_path: Path,
                                               version: versions.AceStepVersion) -> None:
    checks = offline_checks(tmp_path, fake_acestep(tmp_path / "ace", version=version))
    check = checks["ACE-Step version"]
    assert check.ok, check.render()
    assert check.detail == f"1.5.0 at {version.commit} ({version.label}, {version.date}): supported"
    assert checks["acestep.training_v2 import"].ok
    assert checks["MPS training precision"].ok


def test_s_like_checkout_is_too_old_with_the_update_hint(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace", UNPATCHED, version=versions.S)
    checks = offline_checks(tmp_path, ace)
    check = checks["ACE-Step version"]
    assert not check.ok
    assert "1.5.0 at f30aee4 (S, 2026-02-08)" in check.detail
    assert "too old" in check.detail and "training_v2" in check.detail
    assert check.fix == versions.UPDATE_HINT
    assert "acestep.training_v2 import" not in checks  # nothing to import: said once above


def test_anything_without_training_v2_is_too_old(tmp_path: Path) -> None:
    check = doctor.check_acestep_version(read_checkout(
        fake_acestep(tmp_path / "ace", version=None, training_v2=False)))
    assert not check.ok and "too old" in check.detail and "training_v2" in check.detail
    assert "not a version acewatchd was tested with" in check.detail
    assert check.fix == versions.UPDATE_HINT


def test_s_commit_with_training_v2_is_still_unsupported(tmp_path: Path) -> None:
    check = doctor.check_acestep_version(read_checkout(
        fake_acestep(tmp_path / "ace", version=versions.S, training_v2=True)))
    assert not check.ok and "too old" in check.detail and check.fix == versions.UPDATE_HINT


def test_untested_commit_with_training_v2_passes_with_a_note(tmp_path: Path) -> None:
    check = doctor.check_acestep_version(read_checkout(
        fake_acestep(tmp_path / "ace", version=None)))
    assert check.ok
    assert check.detail.startswith("1.5.0 at 1a2b3c4 (not a version acewatchd was tested with)")
    assert versions.V1.title in check.detail and versions.V2.title in check.detail


def test_training_v2_import_failure_shows_the_error_and_the_fix(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace", version=versions.V1, python_ok=False)
    check = offline_checks(tmp_path, ace)["acestep.training_v2 import"]
    assert not check.ok and check.detail.endswith(IMPORT_ERROR)
    assert f"`uv sync` in {ace}" in check.fix
    write_python(ace / ".venv/bin/python", ok=True)
    assert doctor.check_training_v2_import(ace / ".venv/bin/python", ace).ok


def test_configured_python_is_the_one_run(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace", python_ok=False)  # the venv one would fail
    other = write_python(tmp_path / "bin/python3", ok=True)
    cfg = write_config(tmp_path / "home", ace, f"http://127.0.0.1:{free_port()}",
                       f'manage_server = true\npython = "{other}"\n')
    check = by_name(doctor.run_checks(str(cfg), apple_silicon=False))[
        "acestep.training_v2 import"]
    assert check.ok and str(other) in check.detail


def test_import_check_skipped_without_an_interpreter(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace")
    (ace / ".venv/bin/python").unlink()
    checks = offline_checks(tmp_path, ace)
    assert not checks["ACE-Step venv interpreter"].ok  # says it once, with its fix
    assert "acestep.training_v2 import" not in checks


# --------------------------------------------------------------------------- MPS precision


def test_fp32_guard_means_no_false_alarm(tmp_path: Path) -> None:
    # from 7dadd02 the helpers still say fp16 / "16-mixed" for mps; the guard makes it safe
    check = check_mps_precision(fake_acestep(tmp_path / "ace", GUARDED))
    assert check.ok, check.render()
    assert "_ensure_trainable_params_fp32" in check.detail
    assert "_count_nonfinite_grads" in check.detail
    assert "note:" in check.detail and "_select_compute_dtype" in check.detail


def test_guard_defined_but_never_called_is_no_guard(tmp_path: Path) -> None:
    unused = UNPATCHED + "\ndef _ensure_trainable_params_fp32(module):\n    return 0, 0\n"
    assert fp32_guard(unused) == (False, False)
    check = check_mps_precision(fake_acestep(tmp_path / "ace", unused))
    assert not check.ok and "NaN" in check.detail and "7dadd02" in check.fix


def test_guard_called_through_a_module_counts() -> None:
    source = UNPATCHED + ("\nfrom acestep.training import helpers\n"
                          "def setup(m):\n    helpers._ensure_trainable_params_fp32(m)\n")
    assert fp32_guard(source) == (True, False)


# --------------------------------------------------------------------------- .env


def test_env_example_fallback_passes_with_a_note(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace", env_example="ACESTEP_LM_BACKEND=mlx\n")
    checks = by_name(doctor.check_env_file(ace, apple_silicon=True))
    env = checks["ACE-Step .env"]
    assert env.ok and "falls back to" in env.detail and ".env.example" in env.detail
    assert checks["ACESTEP_LM_BACKEND"].ok  # read from the file ACE-Step will load
    assert all(c.ok for c in doctor.check_env_file(ace, apple_silicon=False))


def test_env_example_fallback_with_the_wrong_backend(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace", env_example="ACESTEP_LM_BACKEND=vllm\n")
    backend = by_name(doctor.check_env_file(ace, apple_silicon=True))["ACESTEP_LM_BACKEND"]
    assert not backend.ok and ".env.example" in backend.detail
    assert "ACESTEP_LM_BACKEND=mlx" in backend.fix and "cp " in backend.fix


def test_env_and_example_both_missing_fails_as_before(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace")
    checks = doctor.check_env_file(ace, apple_silicon=True)
    assert len(checks) == 1 and not checks[0].ok
    assert checks[0].fix == f"cp {ace}/.env.example {ace}/.env and set ACESTEP_LM_BACKEND=mlx"


def test_env_wins_over_example(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace", env="ACESTEP_LM_BACKEND=mlx\n",
                       env_example="ACESTEP_LM_BACKEND=vllm\n")
    checks = by_name(doctor.check_env_file(ace, apple_silicon=True))
    assert checks["ACE-Step .env"].detail == str(ace / ".env")
    assert checks["ACESTEP_LM_BACKEND"].ok
