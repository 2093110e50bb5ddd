"""The sanitizer on real .pt files: padding NaN/Inf repaired, content NaN reported, malformed
files reported and never fatal, clean files never rewritten; plus the CLI in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acewatchd.nightly.prepare.sanitize import check_file, sanitize_dir

SIX = ("target_latents", "attention_mask", "encoder_hidden_states", "encoder_attention_mask",
       "context_latents", "metadata")


def tensors(dtype: torch.dtype = torch.float16, t: int = 128, frames: int = 100, length: int = 64,
            used: int = 40, hidden: int = 32) -> dict:
    gen = torch.Generator().manual_seed(1)
    mask = torch.zeros(t)
    mask[:frames] = 1
    enc_mask = torch.zeros(length)
    enc_mask[:used] = 1
    return {"target_latents": torch.randn(t, 64, generator=gen).to(dtype),
            "attention_mask": mask.to(dtype),
            "encoder_hidden_states": torch.randn(length, hidden, generator=gen).to(dtype),
            "encoder_attention_mask": enc_mask.to(dtype),
            "context_latents": torch.randn(t, 128, generator=gen).to(dtype),
            "metadata": {"caption": "x", "duration": 4, "bpm": None}}


def save(path: Path, data: object) -> Path:
    torch.save(data, path)
    return path


def stat_of(path: Path) -> tuple[int, int, bytes]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, path.read_bytes()


def test_clean_file_is_left_alone(tmp_path: Path) -> None:
    path = save(tmp_path / "a.pt", tensors())
    before = stat_of(path)
    assert check_file(path).status == "clean"
    assert stat_of(path) == before


@pytest.mark.parametrize(("dtype", "huge"), [(torch.float32, 3e38), (torch.float16, 6e4)])
def test_huge_but_finite_values_are_clean_not_rewritten(tmp_path: Path, dtype: torch.dtype,
                                                        huge: float) -> None:
    data = tensors(dtype)
    data["encoder_hidden_states"][:4] = huge  # the fast sum overflows: a false alarm
    data["context_latents"][:4] = huge
    path = save(tmp_path / "a.pt", data)
    before = stat_of(path)
    assert check_file(path).status == "clean"
    assert stat_of(path) == before


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_padding_nan_and_inf_are_zeroed_keeping_keys_shapes_dtypes(tmp_path: Path,
                                                                  dtype: torch.dtype) -> None:
    data = tensors(dtype)
    original = {k: v.clone() for k, v in data.items() if isinstance(v, torch.Tensor)}
    data["target_latents"][100:] = float("nan")
    data["context_latents"][120, 3] = float("-inf")
    data["encoder_hidden_states"][50, :5] = float("inf")
    path = save(tmp_path / "a.pt", data)
    result = check_file(path)
    assert result.status == "repaired"
    assert result.keys == {"target_latents": 28 * 64, "context_latents": 1,
                           "encoder_hidden_states": 5}
    assert result.values == 28 * 64 + 6
    fixed = torch.load(path, map_location="cpu", weights_only=True)
    assert list(fixed) == list(SIX)
    for key, value in original.items():
        assert fixed[key].dtype == dtype and fixed[key].shape == value.shape
        assert torch.isfinite(fixed[key]).all()
    assert torch.equal(fixed["target_latents"][:100], original["target_latents"][:100])
    assert (fixed["target_latents"][100:] == 0).all()
    assert fixed["context_latents"][120, 3] == 0
    assert torch.equal(fixed["context_latents"][:120], original["context_latents"][:120])
    assert fixed["metadata"] == data["metadata"]
    before = stat_of(path)
    assert check_file(path).status == "clean" and stat_of(path) == before


@pytest.mark.parametrize("key,row", [("target_latents", 5), ("encoder_hidden_states", 0),
                                     ("context_latents", 99)])
def test_non_finite_content_is_reported_broken_and_untouched(tmp_path: Path, key: str,
                                                             row: int) -> None:
    data = tensors()
    data[key][row, 1] = float("nan")
    data["target_latents"][110:] = float("nan")  # padding NaN too: still not "repaired"
    path = save(tmp_path / "a.pt", data)
    before = stat_of(path)
    result = check_file(path)
    assert result.status == "broken" and key in result.reason
    assert stat_of(path) == before


def test_non_finite_mask_is_broken(tmp_path: Path) -> None:
    data = tensors()
    data["attention_mask"][3] = float("nan")
    assert check_file(save(tmp_path / "a.pt", data)).status == "broken"


class NotATensor:
    def __init__(self) -> None:
        self.x = 1


def malformed_files(folder: Path) -> dict[str, str]:
    """name -> a word the reason must contain."""
    save(folder / "list.pt", [torch.zeros(3)])
    save(folder / "tensor.pt", torch.zeros(3))
    partial = tensors()
    del partial["context_latents"]
    save(folder / "missing.pt", partial)
    pickled = tensors()
    pickled["metadata"] = {"obj": NotATensor()}
    save(folder / "pickle.pt", pickled)
    full = save(folder / "full.pt", tensors()).read_bytes()
    (folder / "truncated.pt").write_bytes(full[: len(full) // 2])
    (folder / "full.pt").unlink()
    (folder / "empty.pt").write_bytes(b"")
    (folder / "junk.pt").write_bytes(os.urandom(4096))
    shapes = tensors()
    shapes["context_latents"] = torch.zeros(7, 128, dtype=torch.float16)
    save(folder / "shape.pt", shapes)
    notensor = tensors()
    notensor["attention_mask"] = [1, 1, 0]
    save(folder / "notensor.pt", notensor)
    return {"list.pt": "not a dict", "tensor.pt": "not a dict", "missing.pt": "context_latents",
            "pickle.pt": "weights_only", "truncated.pt": "unreadable", "empty.pt": "unreadable",
            "junk.pt": "", "shape.pt": "shape", "notensor.pt": "not a tensor"}


def test_every_kind_of_malformed_file_is_reported_never_fatal(tmp_path: Path) -> None:
    expected = malformed_files(tmp_path)
    save(tmp_path / "good.pt", tensors())
    report = sanitize_dir(tmp_path)
    by_name = {f["file"]: f for f in report["files"]}
    assert by_name["good.pt"]["status"] == "clean"
    for name, word in expected.items():
        assert by_name[name]["status"] == "malformed", name
        assert word in by_name[name]["reason"], (name, by_name[name]["reason"])
    assert report["summary"] == {"clean": 1, "malformed": len(expected)}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "acewatchd", "sanitize", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_reports_and_exits_by_outcome(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    save(folder / "clean.pt", tensors())
    padded = tensors()
    padded["target_latents"][100:] = float("nan")
    save(folder / "padded.pt", padded)
    done = run_cli(str(folder), "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stderr
    assert "repaired  padded.pt" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"] == {"clean": 1, "repaired": 1}
    (folder / "bad.pt").write_bytes(b"not torch")
    done = run_cli(str(folder))
    assert done.returncode == 1 and "malformed bad.pt" in done.stdout
    done = run_cli(str(tmp_path / "nowhere"))
    assert done.returncode != 0 and "not a folder" in done.stderr


def test_daemon_side_modules_never_import_torch() -> None:
    code = ("import sys, acewatchd.nightly.prepare.prepare, acewatchd.nightly.prepare.staging, acewatchd.commands.sanitize, "
            "acewatchd.acestep.preprocess, acewatchd.acestep.dataset_json, "
            "acewatchd.simulator.stub_acestep; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "False", done.stderr


def _dirty(path: Path) -> Path:
    data = tensors()
    data["target_latents"][100:] = float("nan")
    return save(path, data)


def test_a_repair_that_cannot_be_written_is_reported_and_the_others_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from acewatchd.nightly.prepare import sanitize

    for name in ("a.pt", "b.pt", "c.pt"):
        _dirty(tmp_path / name)
    real = sanitize._save

    def save_but_b(path: Path, data: dict) -> None:
        if path.name == "b.pt":
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(sanitize, "_save", save_but_b)
    report = sanitize_dir(tmp_path)
    by_file = {f["file"]: f for f in report["files"]}
    assert report["summary"] == {"repaired": 2, "malformed": 1}
    assert "could not be written" in by_file["b.pt"]["reason"]
    assert "No space left" in by_file["b.pt"]["reason"]
    for name, finite in (("a.pt", True), ("b.pt", False), ("c.pt", True)):
        fixed = torch.load(tmp_path / name, map_location="cpu", weights_only=True)
        assert bool(torch.isfinite(fixed["target_latents"]).all()) is finite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt", "c.pt"]


def test_one_barrier_per_folder_and_none_when_all_is_clean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from acewatchd.nightly.prepare import sanitize

    calls: list[list[Path]] = []
    monkeypatch.setattr(sanitize, "barrier", lambda folders: calls.append(list(folders)))
    save(tmp_path / "clean.pt", tensors())
    assert sanitize_dir(tmp_path)["summary"] == {"clean": 1} and calls == []
    for i in range(4):
        _dirty(tmp_path / f"d{i}.pt")
    assert sanitize_dir(tmp_path)["summary"] == {"clean": 1, "repaired": 4}
    assert calls == [[tmp_path]]
