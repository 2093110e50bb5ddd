"""Training at each impersonated version: the real texts (U+FFFD at f30aee4, cp1252 mojibake at
c4cdd99, emoji at 6d467e4), "Training completed!" after a stop with no final/, the checkpoint
layout, resume paths and export, over the real Gradio server and gradio_client."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from acewatchd.simulator.harness import SimHandle, running_simulator
from acewatchd.simulator.training import moji
from tests.simulator.sim import ALL, V1, V2, S, client, statuses, tensors, train, training_args

FFFD = "\ufffd"
ERR = {S: FFFD, V1: moji("❌"), V2: "❌"}
CLOCK = {S: "⏱️", V1: moji("⏱️"), V2: "⏱️"}
STOPPED = {S: "⏹️", V1: moji("⏹️"), V2: "ℹ️"}
DONE = {S: FFFD, V1: moji("✅"), V2: "✅"}
IDLE = {S: FFFD + "\ufe0f No training in progress", V1: "ℹ No training in progress",
        V2: "ℹ No training in progress"}


@pytest.fixture(params=ALL)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sim(sim_for: Callable[..., SimHandle], version: str) -> SimHandle:
    handle = sim_for(version)
    handle.set_faults([])
    return handle


def test_stop_ends_with_training_completed_and_writes_no_final(sim: SimHandle,
                                                               version: str) -> None:
    tensors(sim.root, "stop")
    with client(sim) as c:
        job = c.submit(**training_args(version, tensor_dir="./datasets/stop", ep=1000, se=50,
                                       od="./lora_output/stop"), api_name="/training_wrapper")
        deadline = time.monotonic() + 60
        while not any("Epoch 55/" in s for s in statuses(job.outputs())):
            assert time.monotonic() < deadline and not job.done(), statuses(job.outputs())
            time.sleep(0.05)
        assert c.predict(api_name="/stop_training") == "⏹️ Stopping training..."
        job.result(timeout=60)
        items = list(job.outputs())
        assert c.predict(api_name="/stop_training") == IDLE[version]
    tail = statuses(items)[-2:]
    clock, done = re.escape(CLOCK[version]), re.escape(DONE[version])
    # the handler's clock line of the last trainer line: with an ETA after an "Epoch e/E" one
    assert re.fullmatch(rf"{re.escape(STOPPED[version])} Stopped \({clock} Elapsed: \d+s"
                        rf"( \| ETA: ~[\dms ]+)?\)", tail[0]), tail
    assert re.fullmatch(rf"{done} Training completed! Total time: \d+s", tail[1]), tail
    log = str(items[-1][1]).splitlines()
    assert log[-2:] == [f"{STOPPED[version]} Training stopped by user", tail[1]]
    od = sim.root / "lora_output" / "stop"
    assert not (od / "final").exists()
    assert [p.name for p in (od / "checkpoints").iterdir()][0].startswith("epoch_50")


def test_finished_run_layout_texts_and_fresh_start(sim: SimHandle, version: str) -> None:
    """A resume path that does not exist: f30aee4 warns and starts fresh, the newer handlers
    drop it without a word."""
    tensors(sim.root, "full")
    with client(sim) as c:
        items = train(c, version, tensor_dir="./datasets/full", ep=100, se=50,
                      od="./lora_output/full", rc="./lora_output/nowhere")
    texts = statuses(items)
    od = sim.root / "lora_output" / "full"
    names = sorted(p.name for p in (od / "checkpoints").iterdir())
    if version == V2:
        assert [re.sub(r"_loss_\d\.\d{4}$", "", n) for n in names] == ["epoch_100", "epoch_50"]
        assert not any(t.startswith("✅ Epoch") for t in texts)
    else:
        assert names == ["epoch_100", "epoch_50"]
        assert any(t.startswith("✅ Epoch 1/100 in ") for t in texts)
    for name in names:
        assert (od / "checkpoints" / name / "adapter" / "adapter_config.json").is_file()
        assert (od / "checkpoints" / name / "training_state.pt").is_file()
    assert (od / "final" / "adapter" / "adapter_config.json").is_file()
    epochs = [t for t in texts if t.startswith("Epoch ")]
    clock = re.escape(CLOCK[version])
    assert re.fullmatch(rf"Epoch 1/100, Step 3, Loss: \d\.\d{{4}}\n{clock} Elapsed: \d+s"
                        rf" \| ETA: ~\d+(s|m \d+s)", epochs[0]), epochs[0]
    warned = [t for t in texts if "Checkpoint path not found" in t]
    if version == S:
        assert warned and warned[0].startswith(
            "⚠️ Checkpoint path not found: ./lora_output/nowhere, starting fresh\n")
    else:
        assert not warned
    assert any(t.startswith("✅ Training complete! LoRA saved to ") for t in texts)
    assert re.fullmatch(rf"{re.escape(DONE[version])} Training completed! Total time: \d+s",
                        texts[-1])


def _checkpoint(sim: SimHandle, name: str) -> Path:
    tensors(sim.root, name)
    folder = sim.root / "lora_output" / name
    if not (folder / "final").exists():
        with client(sim) as c:
            train(c, version_of(sim), tensor_dir=f"./datasets/{name}", ep=100, se=50,
                  od=f"./lora_output/{name}")
    return sorted((folder / "checkpoints").glob("epoch_50*"))[0]


def version_of(sim: SimHandle) -> str:
    return sim.version


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_resume_from_a_checkpoint(sim: SimHandle, version: str, absolute: bool) -> None:
    """Every version resumes from a root-relative checkpoint; c4cdd99 ignores an absolute one
    (its _safe_join refuses absolute paths) and starts fresh without a word."""
    ckpt = _checkpoint(sim, "resume")
    rc = str(ckpt) if absolute else "./" + str(ckpt.relative_to(sim.root))
    with client(sim) as c:
        texts = statuses(train(c, version, tensor_dir="./datasets/resume", ep=100, se=50,
                               od=f"./lora_output/resumed-{absolute}", rc=rc))
    first = next(t for t in texts if t.startswith("Epoch "))
    if version == V1 and absolute:
        assert first.startswith("Epoch 1/100,")
        assert not any("Loading checkpoint" in t or "Checkpoint path" in t for t in texts)
        return
    assert first.startswith("Epoch 51/100, Step 153,"), texts
    loading = next(t for t in texts if t.startswith("🔄 Loading checkpoint from "))
    shown = rc if version == S else str(ckpt)
    assert loading.startswith(f"🔄 Loading checkpoint from {shown}...\n")
    assert any(t.startswith("✅ Resumed from epoch 50, step 150, optimizer ✓, scheduler ✓")
               for t in texts)


def test_missing_and_empty_tensor_dirs(sim: SimHandle, version: str) -> None:
    (sim.root / "datasets" / "empty").mkdir(parents=True, exist_ok=True)
    shown = {S: "./datasets/missing", V1: "./datasets/missing",
             V2: str(sim.root / "datasets" / "missing")}[version]
    with client(sim) as c:
        loaded = c.predict(tensor_dir="./datasets/missing", api_name="/load_training_dataset")
        empty = c.predict(tensor_dir="./datasets/empty", api_name="/load_training_dataset")
        texts = statuses(train(c, version, tensor_dir="./datasets/missing"))
    assert loaded == f"{ERR[version]} Directory not found: {shown}"
    assert empty.startswith(f"{ERR[version]} No .pt tensor files found in ")
    assert texts == [f"{ERR[version]} Tensor directory not found: {shown}"]
    if version != V2:
        assert "Error:" not in loaded + texts[0] and "❌" not in loaded + texts[0]


def test_found_tensor_files(sim: SimHandle, version: str) -> None:
    tensors(sim.root, "found", n=2)
    with client(sim) as c:
        text = c.predict(tensor_dir="./datasets/found", api_name="/load_training_dataset")
    loaded = {S: FFFD, V1: moji("📂"), V2: "📂"}[version]
    info = {S: FFFD + "\ufe0f", V1: moji("ℹ️"), V2: "ℹ️"}[version]
    folder = str(sim.root / "datasets" / "found") if version == V2 else "./datasets/found"
    assert text == (f"{loaded} Found 2 tensor files in {folder}\n"
                    f"{info} No manifest.json found - using all .pt files")


def test_export(sim: SimHandle, version: str) -> None:
    _checkpoint(sim, "export")
    with client(sim) as c:
        text = c.predict(export_path="./exports/mine", lora_output_dir="./lora_output/export",
                         api_name="/export_lora")
        absolute = c.predict(export_path="./exports/abs",
                             lora_output_dir=str(sim.root / "lora_output" / "export"),
                             api_name="/export_lora")
        missing = c.predict(export_path="./exports/none", lora_output_dir="./lora_output/no",
                            api_name="/export_lora")
    dest = sim.root / "exports" / "mine"
    assert text == (f"{FFFD} LoRA exported to ./exports/mine" if version == S
                    else f"✅ LoRA exported to {dest}")
    assert (dest / "adapter" / "adapter_config.json").is_file()
    if version == V1:  # c4cdd99's _safe_join refuses any absolute path
        assert absolute == "❌ Invalid LoRA output directory"
    else:
        assert "LoRA exported to" in absolute
    mark = FFFD if version == S else "❌"
    assert missing == f"{mark} No trained model found in ./lora_output/no"


def test_mojibake_fault_still_switches_emoji_off(sim: SimHandle, version: str) -> None:
    sim.set_faults(["mojibake"])
    try:
        with client(sim) as c:
            texts = statuses(train(c, version, tensor_dir="./datasets/missing"))
    finally:
        sim.set_faults([])
    assert texts[0].startswith(ERR[version] if version == V1 else FFFD)
    assert "❌" not in texts[0]


def test_error_fault_at_every_version(sim: SimHandle, version: str) -> None:
    sim.set_faults(["error=/stop_training:*"])
    try:
        with client(sim) as c, pytest.raises(Exception, match="SIMULATOR fault: error on call"):
            c.predict(api_name="/stop_training")
    finally:
        sim.set_faults([])


@pytest.mark.parametrize("fault_version", [S, V2])
def test_drop_fault_kills_the_server_after_the_first_checkpoint(tmp_path: Path,
                                                                fault_version: str) -> None:
    with running_simulator(tmp_path / "ace", faults=["drop"], version=fault_version) as sim:
        tensors(sim.root, "drop")
        with client(sim) as c:
            job = c.submit(**training_args(fault_version, tensor_dir="./datasets/drop", ep=100,
                                           se=50, od="./lora_output/drop"),
                           api_name="/training_wrapper")
            with pytest.raises(Exception):  # noqa: B017 - the stream is lost, how varies
                job.result(timeout=60)
        deadline = time.monotonic() + 20
        while sim.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sim.alive()
        ckpts = list((sim.root / "lora_output" / "drop" / "checkpoints").iterdir())
        assert len(ckpts) == 1 and ckpts[0].name.startswith("epoch_50")
        assert not (sim.root / "lora_output" / "drop" / "final").exists()


def test_hang_fault_holds_a_call_until_lifted(sim: SimHandle, version: str) -> None:
    sim.set_faults(["hang=/stop_training"])
    try:
        with client(sim) as c:
            job = c.submit(api_name="/stop_training")
            time.sleep(0.5)
            assert not job.done()
            sim.set_faults([])
            assert job.result(timeout=30) == IDLE[version]
    finally:
        sim.set_faults([])
