"""checkout: what an ACE-Step folder says about itself, read from fake folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from acewatchd.acestep import checkout, layout, versions
from acewatchd.acestep.checkout import read_checkout, require_training_v2, training_v2_imports
from acewatchd.errors import AcewatchdError

V1_FULL = "c4cdd99" + "0" * 33
V2_FULL = "6d467e4" + "1" * 33
S_FULL = "f30aee4" + "2" * 33
OTHER = "1a2b3c4" + "3" * 33


def fake_git(root: Path, commit: str, *, how: str = "loose", branch: str = "main") -> None:
    git = root / ".git"
    (git / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    if how == "detached":
        (git / "HEAD").write_text(commit + "\n")
        return
    (git / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
    if how == "loose":
        (git / "refs" / "heads" / branch).write_text(commit + "\n")
    else:
        (git / "packed-refs").write_text(
            "# pack-refs with: peeled fully-peeled sorted\n"
            f"{OTHER} refs/heads/other\n{commit} refs/heads/{branch}\n^{OTHER}\n")


def fake_root(root: Path, *, version: str | None = "1.5.0", training_v2: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if version is not None:
        (root / "pyproject.toml").write_text(f'[project]\nname = "ace-step"\nversion = "{version}"\n')
    if training_v2:
        (root / "acestep/training_v2").mkdir(parents=True)
        (root / "acestep/training_v2/__init__.py").write_text('"""fake"""\n')
    return root


@pytest.mark.parametrize("how", ["loose", "packed", "detached"])
def test_commit_from_each_kind_of_head(tmp_path: Path, how: str) -> None:
    root = fake_root(tmp_path)
    fake_git(root, V1_FULL, how=how)
    co = read_checkout(root)
    assert co.commit == V1_FULL and co.known is versions.V1
    assert co.describe() == "1.5.0 at c4cdd99 (V1, 2026-02-14)"
    assert not co.too_old


def test_loose_ref_wins_over_packed(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    fake_git(root, S_FULL, how="packed")
    (root / ".git/refs/heads/main").write_text(V2_FULL + "\n")
    assert read_checkout(root).known is versions.V2


def test_unknown_commit_is_named_as_untested(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    fake_git(root, OTHER.upper())
    co = read_checkout(root)
    assert co.commit == OTHER and co.known is None
    assert co.describe() == "1.5.0 at 1a2b3c4 (not a version acewatchd was tested with)"


def test_no_git_and_broken_files(tmp_path: Path) -> None:
    root = fake_root(tmp_path, version=None)
    co = read_checkout(root)
    assert co.commit is None and co.known is None and co.pyproject_version is None
    assert co.describe().startswith("unknown version (no git commit found")
    (root / "pyproject.toml").write_text("[project\nversion = ")  # not TOML
    assert read_checkout(root).pyproject_version is None
    (root / "pyproject.toml").write_text('[tool.x]\nversion = "9"\n')  # no [project]
    assert read_checkout(root).pyproject_version is None
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("ref: refs/heads/gone\n")  # a ref that is nowhere
    assert read_checkout(root).commit is None
    (root / ".git/HEAD").write_text("not a hash\n")
    assert read_checkout(root).commit is None


def test_git_file_pointing_to_a_worktree_gitdir(tmp_path: Path) -> None:
    main = tmp_path / "main"
    fake_git(main, V2_FULL, how="packed")
    wt = main / ".git/worktrees/ace"
    wt.mkdir(parents=True)
    (wt / "HEAD").write_text("ref: refs/heads/main\n")
    (wt / "commondir").write_text("../..\n")
    root = fake_root(tmp_path / "ace")
    (root / ".git").write_text(f"gitdir: {wt}\n")
    assert read_checkout(root).known is versions.V2


def test_s_like_checkout_is_too_old_and_refused(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "ace", training_v2=False)
    fake_git(root, S_FULL)
    co = read_checkout(root)
    assert co.too_old and co.known is versions.S
    assert co.describe() == "1.5.0 at f30aee4 (S, 2026-02-08)"
    with pytest.raises(AcewatchdError) as err:
        require_training_v2(root)
    text = str(err.value)
    assert str(root) in text and "too old" in text and "acestep.training_v2" in text
    assert versions.UPDATE_HINT in text


def test_training_v2_counts_with_preprocess_only(tmp_path: Path) -> None:
    root = fake_root(tmp_path, training_v2=False)
    (root / "acestep/training_v2").mkdir(parents=True)
    assert read_checkout(root).too_old  # an empty folder is not a package
    (root / "acestep/training_v2/preprocess.py").write_text("")
    assert not read_checkout(root).too_old
    require_training_v2(root)  # no error


def test_layout_acestep_version_still_reads_the_checkout(tmp_path: Path) -> None:
    assert layout.acestep_version(tmp_path) is None
    fake_git(tmp_path, V1_FULL)
    assert layout.acestep_version(tmp_path) == "c4cdd99"
    fake_root(tmp_path, training_v2=False)
    assert layout.acestep_version(tmp_path) == checkout.acestep_version(tmp_path) \
        == "1.5.0 (c4cdd99)"


def fake_python(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_training_v2_imports_runs_acesteps_interpreter_in_its_folder(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "ace")
    seen = tmp_path / "seen"
    py = fake_python(tmp_path / "py-ok", f'pwd > {seen}; printf "%s\\n" "$@" >> {seen}')
    assert training_v2_imports(py, root) == (True, "")
    assert seen.read_text().splitlines() == [str(root), "-c", "import acestep.training_v2"]
    bad = fake_python(tmp_path / "py-bad", 'echo "Traceback" >&2; '
                      'echo "ModuleNotFoundError: No module named \'torch\'" >&2; exit 1')
    assert training_v2_imports(bad, root) == (False, "ModuleNotFoundError: No module named 'torch'")
    silent = fake_python(tmp_path / "py-silent", "exit 3")
    assert training_v2_imports(silent, root) == (False, "exit status 3")
    ok, why = training_v2_imports(tmp_path / "missing", root)
    assert not ok and "cannot run" in why
    slow = fake_python(tmp_path / "py-slow", "exec sleep 5")
    ok, why = training_v2_imports(slow, root, timeout=0.2)
    assert not ok and "did not finish" in why


def test_training_v2_imports_with_a_real_interpreter(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "ace")
    (root / "acestep/__init__.py").write_text("")
    assert training_v2_imports(Path(sys.executable), root) == (True, "")
    (root / "acestep/training_v2/__init__.py").write_text("import no_such_module_here\n")
    ok, why = training_v2_imports(Path(sys.executable), root)
    assert not ok and why == "ModuleNotFoundError: No module named 'no_such_module_here'"
