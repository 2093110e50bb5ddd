"""The client end to end against the real simulator as each supported ACE-Step version: train,
stop from the same session, resume, export, load the LoRA, generate, unload; the error paths
with each version's own texts (CONTRACT §9b)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep.client import AceStepClient, GenerationRequest
from acewatchd.acestep.errors import JobFailed
from acewatchd.acestep.layout import checkpoints, final_adapter
from acewatchd.acestep.progress import TrainingProgress
from acewatchd.acestep.versions import V1, V2
from acewatchd.simulator.harness import SimHandle, running_simulator
from acewatchd.simulator.lora import write_adapter

OD = "./lora_output/acewatchd/demo/run1"
TENSORS = "./datasets/acewatchd/demo/tensors"
TRAIN: dict[str, Any] = {
    "tensor_dir": TENSORS, "output_dir": OD, "rank": 8, "alpha": 16, "dropout": 0.1,
    "learning_rate": 3e-4, "batch_size": 1, "grad_accum": 1, "save_every": 50, "shift": 3.0,
    "seed": 7}


@pytest.fixture(scope="module", params=[V1.commit, V2.commit], ids=[V1.label, V2.label])
def sim(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    root = tmp_path_factory.mktemp("ace")
    tensors = root / TENSORS
    tensors.mkdir(parents=True)
    for i in range(3):  # the simulator only counts them
        (tensors / f"song{i}.pt").write_bytes(b"SIMULATOR placeholder")
    with running_simulator(root, speed=40.0, version=request.param) as handle:
        yield handle


@pytest.fixture()
def client(sim: SimHandle, tmp_path: Path) -> Iterator[AceStepClient]:
    with AceStepClient(sim.url, timeout=60, retries=1, backoff=0.1,
                       download_dir=tmp_path / "dl") as c:
        yield c


def test_connect_names_the_version(sim: SimHandle, client: AceStepClient) -> None:
    assert client.api_match.contract == sim.version
    assert client.api_match.label in ("V1", "V2") and not client.api_match.warnings
    assert client.limits.max_batch == 8 and client.limits.max_duration == 600


def test_load_training_dataset_counts_tensors(client: AceStepClient) -> None:
    assert "3" in client.load_training_dataset(TENSORS)


def test_refused_paths_are_job_failed_with_acestep_text(client: AceStepClient) -> None:
    with pytest.raises(JobFailed, match="outside|unsafe|not found"):
        client.load_training_dataset("../outside")
    with pytest.raises(JobFailed, match="not found"):      # S/V1: "\ufffd Directory not found"
        client.load_training_dataset("./datasets/nowhere")
    # A refused training is a failure with ACE-Step's text, not "server unavailable".
    with pytest.raises(JobFailed, match="/training_wrapper: .*(unsafe|outside|not found|No valid)"):
        client.train(**{**TRAIN, "tensor_dir": "/etc"}, epochs=100)


def test_train_stop_resume_export_load_generate_unload(sim: SimHandle, client: AceStepClient,
                                                      tmp_path: Path) -> None:
    root = sim.root
    seen: list[TrainingProgress] = []

    stopped_at: list[str] = []

    def stop_after_first_checkpoint(p: TrainingProgress) -> None:
        seen.append(p)
        if p.epoch is not None and p.epoch >= 60 and not stopped_at:
            answer = client.stop_training()  # same client = same session
            if "No training in progress" not in answer:  # asked as the loop began: again
                stopped_at.append(answer)

    client.load_training_dataset(TENSORS)
    stopped = client.train(**TRAIN, epochs=400, on_progress=stop_after_first_checkpoint)
    # Every real version ends a stopped training with "Training completed!" (CONTRACT §9b):
    # only the missing final/ tells it from a finished one.
    assert stopped.status == "completed" and "Training completed!" in stopped.text
    assert stopped.last is not None and 60 <= stopped.last.epoch < 400  # type: ignore[operator]
    assert stopped.last.epochs == 400 and stopped.last.eta
    assert seen[0].epoch == 1 and seen[-1].epoch is not None
    assert final_adapter(root / OD) is None and not (root / OD / "final").exists()
    first = checkpoints(root / OD)[0]
    assert first.epoch == 50 and (first.folder / "adapter" / "adapter_config.json").is_file()
    if sim.version == V2.commit:
        assert first.name.startswith("epoch_50_loss_")

    resumed_from: list[int] = []
    done = client.train(**TRAIN, epochs=100, resume_from=f"{OD}/checkpoints/{first.name}",
                        on_progress=lambda p: resumed_from.append(p.epoch or 0))
    assert done.status == "completed", done.text
    assert resumed_from[0] == 51 and done.last is not None and done.last.epoch == 100
    final = root / OD / "final/adapter"
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16 and config["peft_type"] == "LORA"
    assert (final / "adapter_model.safetensors").stat().st_size > 100
    assert list((root / OD / "logs").glob("version_*/*"))

    assert "exported" in client.export_lora("./lora_output/acewatchd/demo/export", OD)
    assert (root / "lora_output/acewatchd/demo/export/adapter/adapter_config.json").is_file()

    req = GenerationRequest(caption="calm ambient", lyrics="[Instrumental]", seeds=[1, 2],
                            batch_size=2, duration=10)
    assert "loaded" in client.load_lora(f"{OD}/final/adapter")
    assert "loaded" in client.load_lora(f"{OD}/final/adapter")  # again: unloaded first (V2)
    client.set_lora_scale(1.0)
    with_lora = client.generate(req, tmp_path / "with")
    assert len(with_lora.audio_files) == 2 and with_lora.seeds == ["1", "2"]
    assert all(p.parent == tmp_path / "with" and p.stat().st_size > 1000
               for p in with_lora.audio_files)
    assert all(p.suffix == ".mp3" for p in with_lora.audio_files)
    meta = with_lora.metadata
    assert [m["seed"] for m in meta] == [1, 2] and meta[0]["caption"] == "calm ambient"
    assert meta[0]["simulator"]["lora_path"] == f"{OD}/final/adapter"
    assert "unloaded" in client.unload_lora()
    base = client.generate(req, tmp_path / "base")
    assert base.metadata[0]["simulator"]["lora_path"] is None
    assert _freqs(base.metadata) != _freqs(with_lora.metadata)
    assert list((root / "gradio_outputs").glob("batch_*/*.json"))


def _freqs(meta: list[dict[str, Any]]) -> list[float]:
    return [m["simulator"]["freq_hz"] for m in meta]


def test_flac_and_seed_dependent_pitch(client: AceStepClient, tmp_path: Path) -> None:
    req = GenerationRequest(caption="x", lyrics="", seeds=[5], audio_format="flac")
    a = client.generate(req, tmp_path / "a")
    b = client.generate(GenerationRequest(caption="x", lyrics="", seeds=[6],
                                          audio_format="flac"), tmp_path / "b")
    assert a.audio_files[0].suffix == ".flac"
    assert a.audio_files[0].read_bytes()[:4] == b"fLaC"
    assert _freqs(a.metadata) != _freqs(b.metadata)


def test_stop_from_another_session_is_refused(sim: SimHandle, client: AceStepClient) -> None:
    other = AceStepClient(sim.url, retries=0)
    with other:
        answers: list[str] = []

        def from_other_session(p: TrainingProgress) -> None:
            if p.epoch == 5 and not answers:
                answers.append(other.stop_training())
            if p.epoch == 10:
                client.stop_training()

        out = client.train(**{**TRAIN, "output_dir": "./lora_output/acewatchd/demo/run2"},
                           epochs=400, on_progress=from_other_session)
    assert len(answers) == 1 and "No training in progress" in answers[0]
    assert out.last is not None and out.last.epoch >= 10 and out.last.epoch < 400


def test_bad_lora_paths_fail_with_acestep_messages(sim: SimHandle,
                                                   client: AceStepClient) -> None:
    with pytest.raises(JobFailed, match="LoRA path not found"):
        client.load_lora("./lora_output/missing")
    (sim.root / "not_an_adapter").mkdir(exist_ok=True)
    with pytest.raises(JobFailed, match="adapter_config.json"):
        client.load_lora("./not_an_adapter")


def test_second_named_adapter_without_unload_is_refused_at_v2(sim: SimHandle,
                                                              client: AceStepClient) -> None:
    if sim.version != V2.commit:
        pytest.skip("only V2 names its adapters")
    adapter = sim.root / "lora_output/acewatchd/demo/named/final/adapter"
    write_adapter(adapter, r=4, alpha=8, dropout=0.0, fingerprint="ab" * 16)
    rel = "./lora_output/acewatchd/demo/named/final/adapter"
    client.call("/load_lora", lora_path=rel)
    with pytest.raises(JobFailed, match="Adapter name already in use: adapter"):
        client._status_call("/load_lora", lora_path=rel)    # what load_lora avoids
    client.unload_lora()


def test_a_resume_path_the_server_cannot_see_starts_fresh_silently(
        client: AceStepClient) -> None:
    """What V1 and V2 really do (CONTRACT §9b): no warning, epoch 1. The training session must
    notice it from the epochs (tests/nightly/train)."""
    notices: list[str] = []
    epochs: list[int] = []
    client.train(**{**TRAIN, "output_dir": "./lora_output/acewatchd/demo/run4"},
                 epochs=100, resume_from="./lora_output/acewatchd/demo/gone/epoch_50",
                 on_notice=notices.append, on_progress=lambda p: epochs.append(p.epoch or 0))
    assert notices == [] and epochs[0] == 1


def test_ints_are_sent_as_ints(client: AceStepClient) -> None:
    # The simulator fails like ACE-Step's range() on floats; the client must send ints.
    out = client.train(**{**TRAIN, "output_dir": "./lora_output/acewatchd/demo/run3"},
                       epochs=100)
    assert out.status == "completed", out.text


def test_close_leaves_no_threads_or_downloads(sim: SimHandle, tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with AceStepClient(sim.url, retries=0) as c:
        c.generate(GenerationRequest(caption="t", lyrics=""), tmp_path / "out")
        downloads = c._own_download_dir
        assert downloads is not None and any(downloads.rglob("*.mp3"))
    assert not downloads.exists()
    deadline = time.monotonic() + 5  # the simulator's heartbeat interval is 1 s
    while (left := [t for t in threading.enumerate() if t not in before and t.is_alive()]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, [t.name for t in left]


@pytest.mark.parametrize(("field", "value", "words"), [
    ("epochs", 50, "less than minimum value 100"),
    ("save_every", 2000, "greater than maximum value 1000"),
    ("epochs", 5000, "greater than maximum value 4000"),
    ("rank", 2, "less than minimum value 4"),
])
def test_contract_bounds_are_enforced(client: AceStepClient, field: str, value: int,
                                      words: str) -> None:
    args = {**TRAIN, "epochs": 100, field: value}
    with pytest.raises(JobFailed, match=words):
        client.train(**args)


def test_generation_bounds_are_enforced(client: AceStepClient, tmp_path: Path) -> None:
    with pytest.raises(JobFailed, match="greater than maximum value 20"):
        client.generate(GenerationRequest(caption="x", lyrics="", steps=21), tmp_path)


def test_small_gpu_tier_limits_are_read_from_the_server(tmp_path: Path) -> None:
    with running_simulator(tmp_path / "ace", speed=40.0, tier="small") as small, \
            AceStepClient(small.url, timeout=60, retries=0) as c:
        assert (c.limits.max_batch, c.limits.max_duration) == (1, 180)
        with pytest.raises(JobFailed, match="greater than maximum value 1"):
            c.generate(GenerationRequest(caption="x", lyrics="", seeds=[1, 2], batch_size=2),
                       tmp_path / "out")
