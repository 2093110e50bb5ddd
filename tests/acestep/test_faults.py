"""Reliability: the client reports "server unavailable" and recovers when the simulator is
stopped and restarted mid-sequence; fault switches (drop, error on the Nth call, hang)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep.client import AceStepClient, GenerationRequest
from acewatchd.acestep.errors import JobFailed, ServerUnavailable
from acewatchd.acestep.layout import checkpoints
from acewatchd.simulator.harness import SimHandle, free_port, running_simulator

TENSORS = "./datasets/acewatchd/x/tensors"
OD = "./lora_output/acewatchd/x/run"
TRAIN: dict[str, Any] = {
    "tensor_dir": TENSORS, "output_dir": OD, "rank": 4, "alpha": 8, "dropout": 0.0,
    "learning_rate": 1e-4, "batch_size": 1, "grad_accum": 1, "save_every": 50, "shift": 3.0,
    "seed": 1}


@pytest.fixture()
def sim(tmp_path: Path) -> Iterator[SimHandle]:
    root = tmp_path / "ace"
    (root / TENSORS).mkdir(parents=True)
    (root / TENSORS / "a.pt").write_bytes(b"placeholder")
    with running_simulator(root, speed=40.0) as handle:
        yield handle


def test_unavailable_then_recovers_after_restart(sim: SimHandle) -> None:
    client = AceStepClient(sim.url, timeout=10, retries=1, backoff=0.05)
    with client:
        assert "1" in client.load_training_dataset(TENSORS)
        sim.stop()
        with pytest.raises(ServerUnavailable, match="unavailable"):
            client.load_training_dataset(TENSORS)
        sim.start()
        client.connect()  # a new session after the restart
        assert "1" in client.load_training_dataset(TENSORS)
    assert sim.call_counts()["/load_training_dataset"] == 2  # the refused call never arrived


def test_connect_to_stopped_server_is_unavailable(tmp_path: Path) -> None:
    client = AceStepClient(f"http://127.0.0.1:{free_port()}/", retries=1, backoff=0.01)
    with pytest.raises(ServerUnavailable):
        client.connect()


def test_refuse_fault_live(sim: SimHandle) -> None:
    sim.set_faults(["refuse"])
    with pytest.raises(ServerUnavailable):
        AceStepClient(sim.url, retries=0).connect()
    sim.set_faults([])
    with AceStepClient(sim.url, retries=0) as client:
        assert client.unload_lora()


def test_stream_dropped_mid_training_then_resume(sim: SimHandle) -> None:
    sim.set_faults(["drop=50"])
    with AceStepClient(sim.url, retries=0) as client, pytest.raises(ServerUnavailable):
        client.train(**TRAIN, epochs=200)
    first = checkpoints(sim.root / OD)[0]
    assert first.epoch == 50 and (first.folder / "adapter").is_dir()
    sim.stop()  # reap the crashed process, then start again (drop was one-shot)
    sim.start()
    with AceStepClient(sim.url, retries=0) as client:
        done = client.train(**TRAIN, epochs=200, resume_from=f"{OD}/checkpoints/{first.name}")
    assert done.status == "completed" and done.last is not None and done.last.epoch == 200
    assert (sim.root / OD / "final/adapter/adapter_model.safetensors").is_file()


def test_error_on_nth_call(sim: SimHandle, tmp_path: Path) -> None:
    sim.set_faults(["error=/generation_wrapper:2"])
    req = GenerationRequest(caption="c", lyrics="", seeds=[3])
    with AceStepClient(sim.url, retries=0) as client:
        client.generate(req, tmp_path / "1")
        with pytest.raises(JobFailed, match="SIMULATOR fault: error on call 2"):
            client.generate(req, tmp_path / "2")
        assert len(client.generate(req, tmp_path / "3").audio_files) == 1
    assert sim.call_counts()["/generation_wrapper"] == 3


def test_hang_times_out_then_clears(sim: SimHandle) -> None:
    sim.set_faults(["hang=/unload_lora"])
    with AceStepClient(sim.url, timeout=1.5, retries=0) as client:
        with pytest.raises(ServerUnavailable, match="no answer"):
            client.unload_lora()
        sim.set_faults([])
        client.timeout = 30
        assert client.unload_lora()


def test_mojibake_statuses_still_classified(sim: SimHandle) -> None:
    sim.set_faults(["mojibake"])  # U+FFFD instead of emoji, as in ACE-Step f30aee4
    with AceStepClient(sim.url, retries=0) as client:
        done = client.train(**TRAIN, epochs=100)
        with pytest.raises(JobFailed, match="\ufffd"):  # refused: failed, not unavailable
            client.train(**{**TRAIN, "tensor_dir": "../elsewhere"}, epochs=100)
    assert done.status == "completed" and "\ufffd" in done.text and "⏱" not in done.text
    assert done.last is not None and done.last.epoch == 100 and done.last.eta is not None


def test_retries_ride_out_a_restart(sim: SimHandle) -> None:
    """Connection refused is retried with backoff; a server back in time answers the call."""
    with AceStepClient(sim.url, timeout=10, retries=6, backoff=0.5) as client:
        client.load_training_dataset(TENSORS)
        sim.stop()
        restart = threading.Thread(target=sim.start)
        restart.start()
        try:
            assert "1" in client.load_training_dataset(TENSORS)  # same client, no connect()
        finally:
            restart.join(120)
    assert sim.call_counts()["/load_training_dataset"] == 2
