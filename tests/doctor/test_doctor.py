"""doctor: each check passing and failing, on fake ACE-Step folders and a real simulator."""

from __future__ import annotations

import argparse
import http.server
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from acewatchd.commands import doctor as doctor_cmd
from acewatchd.doctor import machine as doctor
from acewatchd.doctor.server import check_server
from acewatchd.doctor.trainer_precision import check_mps_precision, unpatched_functions
from acewatchd.simulator.harness import free_port, running_simulator
from tests.doctor.folders import PATCHED, UNPATCHED, fake_acestep, write_config


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def test_precision_unpatched_fails_with_fix(tmp_path: Path) -> None:
    check = check_mps_precision(fake_acestep(tmp_path, UNPATCHED))
    assert not check.ok and "NaN" in check.detail
    assert "32-true" in check.fix and "float32" in check.fix
    assert "_select_compute_dtype" in check.detail and "_select_fabric_precision" in check.detail


def test_precision_patched_passes(tmp_path: Path) -> None:
    assert check_mps_precision(fake_acestep(tmp_path, PATCHED)).ok


def test_precision_half_patched_and_dict_style() -> None:
    half = UNPATCHED.replace('return "16-mixed"', 'return "32-true"')
    assert unpatched_functions(half)[0] == ["_select_compute_dtype"]
    dict_style = ('import torch\ndef _select_compute_dtype(d):\n'
                  '    return {"cuda": torch.bfloat16, "mps": torch.float16}.get(d, torch.float32)\n')
    assert unpatched_functions(dict_style)[0] == ["_select_compute_dtype"]


def test_precision_missing_trainer_fails(tmp_path: Path) -> None:
    assert not check_mps_precision(fake_acestep(tmp_path, trainer=None)).ok


def test_acestep_root_checks(tmp_path: Path) -> None:
    root = fake_acestep(tmp_path / "ace")
    ok = doctor.check_acestep_root(root, root / ".venv/bin/python", root / "checkpoints")
    assert all(c.ok for c in ok) and len(ok) == 3
    (root / ".venv/bin/python").chmod(0o644)
    (root / "checkpoints").rmdir()
    bad = by_name(doctor.check_acestep_root(root, root / ".venv/bin/python",
                                            root / "checkpoints"))
    assert not bad["ACE-Step venv interpreter"].ok and "uv sync" in bad[
        "ACE-Step venv interpreter"].fix
    assert not bad["ACE-Step checkpoints"].ok
    missing = doctor.check_acestep_root(tmp_path / "nope", Path("x"), Path("y"))
    assert len(missing) == 1 and not missing[0].ok


def test_env_file_checks(tmp_path: Path) -> None:
    root = fake_acestep(tmp_path / "ace")
    assert not doctor.check_env_file(root, apple_silicon=True)[0].ok
    (root / ".env").write_text("ACESTEP_LM_BACKEND=vllm\n")
    checks = by_name(doctor.check_env_file(root, apple_silicon=True))
    assert checks["ACE-Step .env"].ok and not checks["ACESTEP_LM_BACKEND"].ok
    assert "ACESTEP_LM_BACKEND=mlx" in checks["ACESTEP_LM_BACKEND"].fix
    (root / ".env").write_text("# comment\nexport ACESTEP_LM_BACKEND='mlx'  # apple\n")
    assert all(c.ok for c in doctor.check_env_file(root, apple_silicon=True))
    (root / ".env").write_text("ACESTEP_LM_BACKEND=vllm\n")
    assert all(c.ok for c in doctor.check_env_file(root, apple_silicon=False))


def test_tools_on_a_path(tmp_path: Path) -> None:
    assert all(c.ok for c in doctor.check_tools())  # ffmpeg is installed for the tests
    empty = tmp_path / "bin"
    empty.mkdir()
    missing = doctor.check_tools(str(empty), "launchd's PATH")
    assert not any(c.ok for c in missing) and "brew install ffmpeg" in missing[0].fix


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_outbox_fails(tmp_path: Path) -> None:
    box = tmp_path / "outbox"
    box.mkdir()
    box.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert not doctor._check_rw("outbox folder", box).ok
    finally:
        box.chmod(0o755)


def test_folders_missing_and_present(tmp_path: Path) -> None:
    assert not doctor._check_rw("drop folder", tmp_path / "missing").ok
    assert doctor._check_rw("drop folder", tmp_path).ok
    assert not list(tmp_path.glob(".acewatchd-doctor-*"))  # its probe file is gone


def test_config_invalid_fails(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text("[train]\nrank = 3\n")
    check, cfg = doctor.check_config(str(bad))
    assert not check.ok and cfg is None and "rank" in check.detail


def test_server_down_and_managed(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert not check_server(url, manage_server=False)[0].ok
    assert check_server(url, manage_server=True)[0].ok


@pytest.fixture()
def foreign_server() -> Iterator[str]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_port_taken_by_something_else(foreign_server: str) -> None:
    checks = check_server(foreign_server, manage_server=False)
    assert not checks[0].ok and "not ACE-Step" in checks[0].detail
    assert checks[0].name.startswith("port ")


def test_doctor_against_simulator_passes_and_altered_api_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the simulator serves ACE-Step's folder itself, so root-relative paths resolve there
    ace = fake_acestep(tmp_path / "ace", PATCHED, "ACESTEP_LM_BACKEND=mlx\n")
    with running_simulator(ace) as sim:
        cfg = write_config(tmp_path / "home", ace, sim.url.rstrip("/"))
        rc = doctor_cmd.run(argparse.Namespace(config=str(cfg)))
        out = capsys.readouterr().out
        assert rc == 0, out
        assert "✓ ACE-Step API: matches the V2 contract" in out and "✗" not in out
        assert "✓ ACE-Step working folder: the server resolves ./datasets/acewatchd/" in out
        assert "✓ ACE-Step version: 1.5.0 at 6d467e4 (V2, 2026-06-26): supported" in out
    with running_simulator(tmp_path / "sim2",
                           faults=["drop-param=param_9@/generation_wrapper"]) as sim:
        cfg = write_config(tmp_path / "home", ace, sim.url.rstrip("/"))
        checks = by_name(doctor.run_checks(str(cfg), apple_silicon=True))
    api = checks["ACE-Step API"]  # every mismatch, each naming its endpoint
    assert not api.ok and "/generation_wrapper" in api.detail, api.render()
    assert "V1 (c4cdd99" in api.fix and "V2 (6d467e4" in api.fix


def test_doctor_exit_code_nonzero_on_unpatched_trainer(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ace = fake_acestep(tmp_path / "ace", UNPATCHED, "ACESTEP_LM_BACKEND=mlx\n")
    cfg = write_config(tmp_path / "home", ace, "http://127.0.0.1:9",
                       "manage_server = true\n")
    assert doctor_cmd.run(argparse.Namespace(config=str(cfg))) == 1
    out = capsys.readouterr().out
    assert "✗ MPS training precision" in out and "fix:" in out


def test_unwritable_folder_reported_even_as_root(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # root bypasses permission bits, so make the probe write itself fail the way EACCES does
    def refuse(*_a: object, **_k: object) -> None:
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(doctor.tempfile, "NamedTemporaryFile", refuse)
    check = doctor._check_rw("outbox folder", tmp_path)
    assert not check.ok and "Permission denied" in check.detail and "chmod" in check.fix
