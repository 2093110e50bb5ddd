"""Units: progress parsing (mojibake-tolerant), API checking by name, result collection, and
the simulator's file formats (safetensors, torch-format state) and path safety."""

from __future__ import annotations

import copy
import json
import struct
from pathlib import Path

import pytest

from acewatchd.acestep.generation import GenerationRequest, collect_result, request_params
from acewatchd.acestep.progress import is_completed, is_failure, is_stopped, parse_progress
from acewatchd.simulator.context import UnsafePath, safe_path
from acewatchd.simulator.faults import Faults, api_alterations
from acewatchd.simulator.lora import write_adapter
from acewatchd.simulator.training import torch_format

# U+FFFD where ACE-Step f30aee4 lost its emoji (CONTRACT §2)
MOJIBAKE = "\ufffd\ufffd Epoch 12/1000, Step 120, Loss: 0.8123\n\ufffd Elapsed: 3m 2s | ETA: ~4h 1m"


def test_parse_progress_with_mojibake() -> None:
    p = parse_progress(MOJIBAKE)
    assert p is not None
    assert (p.epoch, p.epochs, p.step, p.loss, p.eta) == (12, 1000, 120, 0.8123, "4h 1m")


def test_parse_progress_epoch_summary_and_nothing() -> None:
    p = parse_progress("✅ Epoch 3/100 in 2.1s, Loss: 0.5")
    assert p is not None and (p.epoch, p.step, p.loss) == (3, None, 0.5)
    assert parse_progress("📂 Loaded 3 samples") is None
    assert parse_progress("") is None
    nan = parse_progress("Epoch 1/100, Step 10, Loss: nan")
    assert nan is not None and nan.loss != nan.loss


@pytest.mark.parametrize(("text", "failed", "done", "stopped"), [
    ("❌ Training failed: Error: boom", True, False, False),
    ("\ufffd Training failed: out of memory", True, False, False),
    ("Error: module not found", True, False, False),
    ("✅ Training complete! LoRA saved to ./o/final", False, True, False),
    ("\ufffd\ufffd Training completed! Total time: 3m", False, True, False),
    ("\ufffd Training stopped by user", False, False, True),
    # S/V1 handler errors: U+FFFD instead of ❌, no "Error:" (CONTRACT §9b)
    ("\ufffd Directory not found: ./datasets/preprocessed_tensors", True, False, False),
    ("\ufffd No .pt tensor files found in ./x", True, False, False),
    ("\ufffd Tensor directory not found: ./x", True, False, False),
    ("\ufffd Model not initialized. Please initialize the service first.", True, False, False),
    ("\ufffd No trained model found in ./lora_output", True, False, False),
    ("\ufffd Export failed: disk full", True, False, False),
    ("\ufffd\ufe0f No training in progress", False, False, False),
    # V1 spells its emoji as UTF-8 read as cp1252 ("❌" -> "â\x9dŒ")
    ("\u00e2\x9d\u0152 Directory not found: ../outside", True, False, False),
    ("\u00e2\x9d\u0152 No .pt tensor files found in /etc", True, False, False),
    ("\u00e2\u0153\u2026 Training completed! Total time: 2s", False, True, False),
    # V2
    ("❌ Rejected unsafe tensor directory path: /tmp", True, False, False),
    ("❌ LoRA path not found: ./x", True, False, False),
    ("❌ Adapter name already in use: adapter", True, False, False),
    ("ℹ No training in progress", False, False, False),
    ("⚠️ No LoRA loaded", False, False, False),
    ("⚠️ No LoRA adapter loaded.", False, False, False),
    ("❌ No LoRA adapter loaded. Please load a LoRA first.", True, False, False),
    ("✅ Training completed! Total time: 2s", False, True, False),
    ("⚠️ Checkpoint path not found: ./x, starting fresh", False, False, False),
    ("⏹️ Stopped (epoch 5)", False, False, True),
    ("Epoch 1/100, Step 10, Loss: 0.9", False, False, False),
])
def test_status_classification(text: str, failed: bool, done: bool, stopped: bool) -> None:
    assert (is_failure(text), is_completed(text), is_stopped(text)) == (failed, done, stopped)


def test_request_params_seeds() -> None:
    fixed = request_params(GenerationRequest("c", "", seeds=[4, 5], bpm=90))
    assert fixed["random_seed"] is False and fixed["seed"] == "4,5" and fixed["bpm"] == 90
    assert fixed["lyrics"] == "[Instrumental]"
    rnd = request_params(GenerationRequest("c", "la"))
    assert rnd["random_seed"] is True and rnd["seed"] == "-1" and rnd["bpm"] is None


def test_collect_result_copies_audio_and_loads_metadata(tmp_path: Path) -> None:
    src = tmp_path / "dl" / "abc"
    src.mkdir(parents=True)
    (src / "k1.mp3").write_bytes(b"ID3")
    (src / "k1.json").write_text(json.dumps({"seed": 9}))
    out = [str(src / "k1.mp3"), *[None] * 7, [str(src / "k1.mp3"), str(src / "k1.json")],
           "info", "Generation Complete", "9", *[""] * 26]
    res = collect_result(tuple(out), tmp_path / "dest")
    assert res.audio_files == [tmp_path / "dest" / "k1.mp3"] and res.metadata == [{"seed": 9}]
    assert res.seeds == ["9"] and res.status == "Generation Complete"


def test_safe_path_like_acestep(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert safe_path(root, "./datasets/x") == root / "datasets/x"
    assert safe_path(root, str(root / "a")) == root / "a"
    for bad in ("../x", "/etc", "datasets/../../x"):
        with pytest.raises(UnsafePath, match="Path escapes safe root"):
            safe_path(root, bad)


def test_adapter_safetensors_is_valid(tmp_path: Path) -> None:
    write_adapter(tmp_path, r=4, alpha=8, dropout=0.0, fingerprint="ab" * 32)
    data = (tmp_path / "adapter_model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    assert max(ends) == len(data) - 8 - n
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert "SIMULATOR" in cfg["simulator"]


def test_torch_format_state_loads_with_weights_only(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state = {"epoch": 3, "global_step": 30, "optimizer_state_dict": {},
             "scheduler_state_dict": {}}
    (tmp_path / "s.pt").write_bytes(torch_format(copy.deepcopy(state)))
    assert torch.load(tmp_path / "s.pt", weights_only=True, map_location="cpu") == state


def test_fault_parsing() -> None:
    f = Faults.parse(["error=/generation_wrapper:2", "hang=/load_lora", "slow=4", "drop=100"])
    assert f.errors_on("/generation_wrapper", 2) and not f.errors_on("/generation_wrapper", 1)
    assert f.hang == {"/load_lora"} and f.slow == 4 and f.drop == 100
    dropped, renamed, added = api_alterations(["drop-param=rc@/training_wrapper",
                                               "rename-param=a=alpha@/training_wrapper",
                                               "add-param=x@/load_lora"])
    assert dropped == {"/training_wrapper": {"rc"}}
    assert renamed == {"/training_wrapper": {"a": "alpha"}} and added == {"/load_lora": ["x"]}
    with pytest.raises(ValueError, match="unknown simulator fault"):
        Faults.parse(["explode"])


def test_messages_show_v1_emoji_readably() -> None:
    from acewatchd.acestep.progress import readable

    assert readable("\u00e2\x9d\u0152 Directory not found: ./x") == "❌ Directory not found: ./x"
    assert readable("\u00e2\u0153\u2026 Training completed!") == "✅ Training completed!"
    assert readable("❌ already fine") == "❌ already fine"
