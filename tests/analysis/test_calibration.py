"""The no-effect threshold and the descriptor on real ffmpeg-made audio: a clip and its
re-encodings (mp3 128k/320k, flac, wav) stay under the threshold and describe alike; clips of
another timbre or rhythm, and the simulator's LoRA clips against its base clips, are over it."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from acewatchd.analysis import decode
from acewatchd.analysis.descriptor import DEFAULT
from acewatchd.analysis.distance import DEFAULT_NO_EFFECT_THRESHOLD, clip_distance
from acewatchd.simulator import generate, style
from tests.support.analysis import CODECS, STYLES, make_style, reencode

RATE = decode.RATE
THRESHOLD = DEFAULT_NO_EFFECT_THRESHOLD


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    """style -> {"source" | codec: decoded PCM}."""
    folder = tmp_path_factory.mktemp("styles")
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in STYLES:
        source = make_style(folder / f"{name}.flac", name, codec="flac")
        out[name] = {"source": decode.decode(source)}
        for codec, (ext, _) in CODECS.items():
            out[name][codec] = decode.decode(reencode(source, folder / f"{name}-{codec}.{ext}",
                                                      codec))
    return out


def test_identical_and_reencoded_clips_are_under_the_threshold(
        audio: dict[str, dict[str, np.ndarray]]) -> None:
    for name, versions in audio.items():
        assert clip_distance(versions["source"], versions["source"], RATE) == 0.0
        for codec in CODECS:
            d = clip_distance(versions[codec], versions["source"], RATE)
            assert d < THRESHOLD / 2, (name, codec, d)  # with a margin: real music is busier


def test_different_audio_is_well_over_the_threshold(
        audio: dict[str, dict[str, np.ndarray]]) -> None:
    for a, b in itertools.combinations(audio, 2):
        d = clip_distance(audio[a]["mp3-128k"], audio[b]["source"], RATE)
        assert d > 4 * THRESHOLD, (a, b, d)


def test_a_quieter_copy_counts_as_an_effect(audio: dict[str, dict[str, np.ndarray]]) -> None:
    pcm = audio["arp"]["source"]
    assert clip_distance(pcm * np.float32(0.5), pcm, RATE) > THRESHOLD  # -6 dB everywhere


def test_the_descriptor_tells_styles_apart_whatever_the_encoding(
        audio: dict[str, dict[str, np.ndarray]]) -> None:
    sources = {name: DEFAULT.describe(v["source"], RATE) for name, v in audio.items()}
    between = min(DEFAULT.distance(sources[a], sources[b])
                  for a, b in itertools.combinations(sources, 2))
    for name, versions in audio.items():
        for codec in CODECS:
            vector = DEFAULT.describe(versions[codec], RATE)
            own = DEFAULT.distance(vector, sources[name])
            assert own < between / 10, (name, codec, own, between)
            nearest = min(sources, key=lambda s: DEFAULT.distance(vector, sources[s]))
            assert nearest == name


def test_the_descriptor_ignores_loudness_and_length(tmp_path: Path) -> None:
    short = decode.decode(make_style(tmp_path / "short.mp3", "beat", seconds=10))
    long = decode.decode(make_style(tmp_path / "long.mp3", "beat", seconds=25))
    other = DEFAULT.describe(decode.decode(make_style(tmp_path / "pad.mp3", "pad")), RATE)
    a, b = DEFAULT.describe(short * np.float32(0.3), RATE), DEFAULT.describe(long, RATE)
    assert DEFAULT.distance(a, b) < DEFAULT.distance(a, other) / 5


def test_simulator_lora_clips_are_over_the_threshold_and_scale_zero_is_base(
        tmp_path: Path) -> None:
    songs = tuple(str(make_style(tmp_path / f"{s}.mp3", s, seconds=6)) for s in ("drone", "beat"))
    freq = generate.pitch("calm", 1, "", 0.0)
    base = tmp_path / "base.mp3"
    generate.synth(base, seconds=10, freq=freq, fmt="mp3")
    base_pcm = decode.decode(base)
    for epoch, scale in ((1, 0.5), (6, 0.5), (12, 1.0)):
        learned = style.Training(songs, epoch, 12, "cd" * 32)
        clip = tmp_path / f"e{epoch}-x{scale}.mp3"
        generate.synth(clip, seconds=10, freq=generate.pitch("calm", 1, learned.run, scale),
                       fmt="mp3", blend=style.mix(learned, scale))
        assert clip_distance(decode.decode(clip), base_pcm, RATE) > 2 * THRESHOLD, (epoch, scale)
    assert style.mix(style.Training(songs, 12, 12, "cd" * 32), 0.0).is_base
    assert generate.pitch("calm", 1, "cd" * 32, 0.0) == freq
