"""How the simulator's LoRA sounds: the blend schedule by epoch and scale, where training
finds the dataset's songs, and generation with real ffmpeg (scale 0 and the lora-no-effect
fault give the base clip byte for byte)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acewatchd.simulator import generate, style
from acewatchd.simulator.context import SimContext
from acewatchd.simulator.faults import Faults, write_control
from tests.support.analysis import make_style


def test_the_blend_rises_fades_then_copies() -> None:
    assert style.weights(0, 10, 1.0) == (1.0, 0.0, 0.0)
    assert style.weights(35, 100, 1.0) == pytest.approx((0.55, 0.45, 0.0))
    assert style.weights(7, 10, 1.0) == pytest.approx((0.1, 0.9, 0.0))  # the closest
    assert style.weights(8, 10, 1.0) == pytest.approx((0.25, 0.75, 0.0))
    assert style.weights(9, 10, 1.0) == pytest.approx((0.1, 0.0, 0.9))
    assert style.weights(10, 10, 0.5) == pytest.approx((0.55, 0.0, 0.45))
    assert style.weights(10, 10, 0.0) == (1.0, 0.0, 0.0)
    assert style.weights(50, 0, 2.0) == pytest.approx((0.1, 0.0, 0.9))  # clamped


def test_the_mix_is_the_style_then_one_song() -> None:
    songs = ("/a.mp3", "/b.mp3")
    middle = style.mix(style.Training(songs, 7, 10, "00000001" + "0" * 56), 1.0)
    assert (middle.style, middle.copy) == (songs, None)
    assert (middle.tone, middle.style_weight) == pytest.approx((0.1, 0.9))
    late = style.Training(songs, 9, 10, "00000001" + "0" * 56)
    assert late.copied() == "/b.mp3"
    blend = style.mix(late, 1.0)
    assert (blend.style, blend.copy) == ((), "/b.mp3")
    assert (blend.tone, blend.copy_weight) == pytest.approx((0.1, 0.9))
    assert style.mix(late, 0.0) == style.BASE and style.BASE.is_base


def test_an_adapters_training_record_round_trips_and_junk_is_ignored() -> None:
    learned = style.Training(("/a.mp3",), 4, 12, "ab" * 32)
    assert style.Training.from_json(json.loads(json.dumps(learned.to_json()))) == learned
    junks: list[object] = [None, [], {"audio": ["/a"]},
                           {"audio": 3, "epoch": 1, "epochs": 2, "run": "ab"},
                           {"audio": ["/a"], "epoch": "x", "epochs": 2, "run": "ab"},
                           {"audio": [], "epoch": 1, "epochs": 2, "run": "ab"}]
    for junk in junks:
        assert style.Training.from_json(junk) is None


def test_training_finds_the_songs_from_dataset_json_else_audio(tmp_path: Path) -> None:
    dataset = tmp_path / "ds"
    tensors = dataset / "tensors"
    tensors.mkdir(parents=True)
    assert style.find_training_audio(tensors) == []
    audio = dataset / "audio"
    audio.mkdir()
    for name in ("b.mp3", "a.flac", "notes.txt"):
        (audio / name).write_bytes(b"x")
    assert [Path(p).name for p in style.find_training_audio(tensors)] == ["a.flac", "b.mp3"]
    doc = {"samples": [{"audio_path": str(audio / "b.mp3")}, {"audio_path": "audio/a.flac"},
                       {"audio_path": "audio/gone.mp3"}]}
    (dataset / "dataset.json").write_text(json.dumps(doc), encoding="utf-8")
    assert style.find_training_audio(tensors) == [str(audio / "b.mp3"), str(audio / "a.flac")]
    (dataset / "dataset.json").write_text("{not json", encoding="utf-8")
    assert len(style.find_training_audio(tensors)) == 2  # falls back to audio/


def test_the_fault_is_known() -> None:
    assert Faults.parse(["lora-no-effect"]).lora_no_effect
    assert not Faults.parse([]).lora_no_effect


def _render(ctx: SimContext) -> tuple[bytes, dict[str, object]]:
    audio, side = generate._one(ctx, {"caption": "calm", "duration": 10}, 3, "mp3")
    return audio.read_bytes(), json.loads(side.read_text(encoding="utf-8"))["simulator"]


def test_generation_blends_and_scale_zero_or_the_fault_is_the_base_clip(tmp_path: Path) -> None:
    songs = tuple(str(make_style(tmp_path / f"{s}.mp3", s, seconds=4)) for s in ("drone", "arp"))
    ctx = SimContext(tmp_path / "root")
    base, _ = _render(ctx)
    ctx.lora.path, ctx.lora.use, ctx.lora.fingerprint = "./x/final/adapter", True, "ab" * 32
    ctx.lora.training = style.Training(songs, 12, 12, "cd" * 32)
    ctx.lora.scale = 1.0
    blended, meta = _render(ctx)
    assert blended != base
    mix = meta["lora_mix"]
    assert isinstance(mix, dict) and mix["tone"] == pytest.approx(0.1)
    assert mix["copy"] == ctx.lora.training.copied() and mix["style"] == []  # a near-copy
    ctx.lora.training = style.Training(songs, 7, 10, "cd" * 32)
    styled, meta = _render(ctx)
    assert styled not in (base, blended)
    assert meta["lora_mix"] == {"tone": 0.1, "style": list(songs), "style_weight": 0.9,
                                "copy": None, "copy_weight": 0.0}
    ctx.lora.training = style.Training(songs, 12, 12, "cd" * 32)
    ctx.lora.scale = 0.0
    assert _render(ctx)[0] == base
    ctx.lora.scale = 1.0
    write_control(ctx.root, ["lora-no-effect"])
    assert _render(ctx)[0] == base
    ctx.lora.training = None  # a hand-written adapter: only its pitch, and the fault still wins
    assert _render(ctx)[0] == base
    write_control(ctx.root, [])
    assert _render(ctx)[0] != base
