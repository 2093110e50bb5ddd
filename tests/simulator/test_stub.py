"""The stand-in ACE-Step checkout the simulator installs into its root: f30aee4 without
acestep/training_v2 (a preprocessing child fails like the real one), c4cdd99/6d467e4 with
preprocess_audio_files of the real signature, and pyproject.toml plus .git naming the
impersonated commit, without touching a real checkout's files."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from acewatchd.simulator.harness import SimHandle
from acewatchd.simulator.stub_acestep import CHECKOUTS, install
from tests.simulator.sim import ALL, V1, V2, S

SIGNATURE = [("audio_dir", None), ("output_dir", None), ("checkpoint_dir", None),
             ("variant", "'turbo'"), ("max_duration", "240.0"), ("dataset_json", "None"),
             ("device", "'auto'"), ("precision", "'auto'"), ("progress_callback", "None"),
             ("cancel_check", "None")]


def head_commit(root: Path) -> str:
    head = (root / ".git" / "HEAD").read_text(encoding="utf-8").strip()
    assert head.startswith("ref: ")
    return (root / ".git" / head[5:]).read_text(encoding="utf-8").strip()


def test_f30aee4_root_has_no_training_v2(sim_for: Callable[..., SimHandle]) -> None:
    root = sim_for(S).root
    assert (root / "acestep" / "__init__.py").is_file()
    assert not (root / "acestep" / "training_v2").exists()
    done = subprocess.run([sys.executable, "-c", "import acestep.training_v2"], cwd=root,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == \
        "ModuleNotFoundError: No module named 'acestep.training_v2'"


@pytest.mark.parametrize("version", [V1, V2])
def test_training_v2_keeps_the_real_preprocess_signature(tmp_path: Path, version: str) -> None:
    install(tmp_path, version=version)
    source = (tmp_path / "acestep" / "training_v2" / "preprocess.py").read_text("utf-8")
    fn = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)
              and n.name == "preprocess_audio_files")
    names = [a.arg for a in fn.args.args]
    defaults = [None] * (len(names) - len(fn.args.defaults)) + [ast.unparse(d) for d in
                                                                fn.args.defaults]
    assert list(zip(names, defaults, strict=True)) == SIGNATURE


@pytest.mark.parametrize("version", ALL)
def test_checkout_names_the_impersonated_commit(tmp_path: Path, version: str) -> None:
    install(tmp_path, version=V2 if version != V2 else S)  # switching versions rewrites it
    install(tmp_path, version=version)
    assert head_commit(tmp_path) == CHECKOUTS[version]["commit"]
    assert head_commit(tmp_path).startswith(version)
    project = tomllib.loads((tmp_path / "pyproject.toml").read_text("utf-8"))["project"]
    assert project == {"name": "ace-step", "version": "1.5.0", "description": "ACE-Step 1.5"}
    assert (tmp_path / "acestep" / "training_v2").exists() == (version != S)


def test_a_real_checkout_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "9.9"\n', encoding="utf-8")
    install(tmp_path, version=S)
    assert sorted(p.name for p in (tmp_path / ".git").iterdir()) == ["HEAD"]
    assert "9.9" in (tmp_path / "pyproject.toml").read_text("utf-8")


def test_served_roots_name_their_versions(sim_for: Callable[..., SimHandle]) -> None:
    for version in (S, V2):
        assert head_commit(sim_for(version).root) == CHECKOUTS[version]["commit"]
