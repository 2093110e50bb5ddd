"""A real run on the real simulator through the real acestep client: train on three
ffmpeg-made songs (120 epochs, a checkpoint every 40), render base and each checkpoint, analyse
in the real child. The simulator makes epoch 80 (p = 0.67) the closest to the songs and epoch
120 a near-copy of one song (simulator/style.py); the lora-no-effect fault is the alarm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acewatchd.acestep.client import AceStepClient, GenerationRequest
from acewatchd.acestep.layout import adapter_in, checkpoints, final_adapter, rel
from acewatchd.analysis.runner import run_analysis
from acewatchd.analysis.schema import AnalysisJob, ClipJob
from acewatchd.simulator import style
from acewatchd.simulator.harness import SimHandle, running_simulator
from tests.support.analysis import make_style

DATASET = Path("datasets/acewatchd/demo")
OD = "./lora_output/acewatchd/demo/run1"
SONGS = ("drone", "beat", "arp")
PROMPT, SEEDS = "energetic", [1, 2]


@dataclass
class Trained:
    sim: SimHandle
    songs: list[Path]
    adapters: dict[str, tuple[int | None, str]]  # checkpoint -> (epoch, path for /load_lora)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    root = tmp_path_factory.mktemp("ace")
    audio = root / DATASET / "audio"
    songs = [make_style(audio / f"{name}.mp3", name, seconds=8) for name in SONGS]
    tensors = root / DATASET / "tensors"
    tensors.mkdir(parents=True)
    for song in songs:
        (tensors / f"{song.stem}.pt").write_bytes(b"SIMULATOR placeholder")
    samples = [{"audio_path": str(s), "filename": s.name} for s in songs]
    (root / DATASET / "dataset.json").write_text(json.dumps({"samples": samples}),
                                                 encoding="utf-8")
    with running_simulator(root, speed=50.0) as sim:
        with _client(sim, root.parent / f"{root.name}-dl") as client:
            done = client.train(tensor_dir=f"./{DATASET}/tensors", output_dir=OD, rank=8,
                                alpha=16, dropout=0.1, learning_rate=1e-4, epochs=120,
                                batch_size=1, grad_accum=1, save_every=40, shift=3.0, seed=7)
        assert done.status == "completed", done.text
        run = root / OD
        adapters: dict[str, tuple[int | None, str]] = {}
        for ck in checkpoints(run):
            found = adapter_in(ck.folder)
            assert found is not None
            adapters[f"epoch_{ck.epoch}"] = (ck.epoch, rel(found.relative_to(root)))
        final = final_adapter(run)
        assert final is not None
        adapters["final"] = (None, rel(final.relative_to(root)))
        yield Trained(sim, songs, adapters)


def _client(sim: SimHandle, downloads: Path) -> AceStepClient:
    return AceStepClient(sim.url, timeout=60, retries=1, backoff=0.1, download_dir=downloads)


@pytest.fixture
def client(trained: Trained, tmp_path: Path) -> Iterator[AceStepClient]:
    """One per test: a client's worker threads end with it (the thread-leak check)."""
    with _client(trained.sim, tmp_path / "dl") as c:
        yield c


def _render(t: Trained, client: AceStepClient, dest: Path, checkpoint: str,
            scale: float = 1.0) -> list[ClipJob]:
    epoch, path = t.adapters.get(checkpoint, (None, ""))
    if checkpoint == "base":
        client.unload_lora()
    else:
        client.load_lora(path)
        client.set_lora_scale(scale)
    result = client.generate(GenerationRequest(caption=PROMPT, lyrics="[Instrumental]",
                                                 seeds=SEEDS, batch_size=len(SEEDS),
                                                 duration=10), dest / checkpoint)
    lora = checkpoint != "base"
    return [{"id": f"{PROMPT}-s{seed}-{checkpoint}", "prompt": PROMPT, "seed": seed,
             "variant": "lora" if lora else "base", "checkpoint": checkpoint, "epoch": epoch,
             "scale": scale if lora else None, "path": str(audio)}
            for seed, audio in zip(SEEDS, result.audio_files, strict=True)]


def _job(t: Trained, clips: list[ClipJob]) -> AnalysisJob:
    return {"training": [{"name": s.name, "path": str(s)} for s in t.songs], "clips": clips,
            "threshold": None}


def test_training_remembers_the_songs_in_each_adapter(trained: Trained) -> None:
    assert sorted(trained.adapters) == ["epoch_120", "epoch_40", "epoch_80", "final"]
    for checkpoint, (epoch, path) in trained.adapters.items():
        config = json.loads((trained.sim.root / path / "adapter_config.json").read_text())
        learned = style.Training.from_json(config[style.CONFIG_KEY])
        assert learned is not None and learned.epochs == 120
        assert learned.epoch == (epoch or 120), checkpoint
        assert sorted(Path(a).name for a in learned.audio) == sorted(s.name for s in
                                                                     trained.songs)


def test_the_ranking_puts_the_closest_checkpoint_first_and_flags_the_copy(
        trained: Trained, client: AceStepClient, tmp_path: Path) -> None:
    trained.sim.set_faults([])
    clips = _render(trained, client, tmp_path, "base")
    for checkpoint in ("epoch_40", "epoch_80", "epoch_120"):
        clips += _render(trained, client, tmp_path, checkpoint)
    report = run_analysis(_job(trained, clips), tmp_path / "analysis.json")
    by = {c["checkpoint"]: c for c in report["columns"]}
    assert list(by) == ["epoch_40", "epoch_80", "epoch_120"]
    assert by["epoch_80"]["rank"] == 1 and by["epoch_80"]["copying"] is None
    assert by["epoch_40"]["rank"] == 2 and by["epoch_40"]["copying"] is None
    config = json.loads((trained.sim.root / trained.adapters["epoch_120"][1]
                         / "adapter_config.json").read_text())
    learned = style.Training.from_json(config[style.CONFIG_KEY])
    assert learned is not None
    copied = Path(learned.copied()).name
    copying = by["epoch_120"]["copying"]
    assert copying is not None and copying["song"] == copied and copying["ratio"] < 0.4
    assert by["epoch_120"]["rank"] == 3
    assert not report["no_effect"] and not any(c["no_effect"] for c in report["columns"])
    assert report["advice"] == (f"closest to your songs: epoch 80; epoch 120 may be copying "
                                f"'{copied}'")
    threshold = report["no_effect_threshold"]
    assert all(c["effect"] is not None and c["effect"] > 2 * threshold
               for c in report["columns"])


def test_the_no_effect_fault_raises_the_alarm(trained: Trained, client: AceStepClient,
                                              tmp_path: Path) -> None:
    trained.sim.set_faults(["lora-no-effect"])
    try:
        clips = _render(trained, client, tmp_path, "base")
        clips += _render(trained, client, tmp_path, "final")
        clips += _render(trained, client, tmp_path, "epoch_80", scale=0.5)
    finally:
        trained.sim.set_faults([])
    for base, lora in zip(clips[:2], clips[2:4], strict=True):
        assert Path(base["path"]).read_bytes() == Path(lora["path"]).read_bytes()
    report = run_analysis(_job(trained, clips), tmp_path / "analysis.json")
    assert report["no_effect"] and all(c["no_effect"] for c in report["columns"])
    assert all(c["effect"] == 0.0 for c in report["columns"])
    assert report["advice"].startswith("no audible effect")
